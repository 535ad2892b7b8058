//! Index arithmetic for data movement: every shape op is "output element i
//! comes from input element map[i]" (or from the fill value).
//!
//! Expressing reshape-free movement ops (broadcast, transpose, slice, pad,
//! reverse) as one index map each keeps them obviously correct, lets the same
//! map move raw bytes (exact for every dtype, NaN payloads included) or
//! decoded lanes, and costs one `usize` per output element.

use tensorc_ir::{Tensor, TensorType};

use crate::InterpError;
use crate::value::Lanes;

/// Marks an output element that takes the fill value (padding).
pub const FILL: usize = usize::MAX;

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    TensorType::new(tensorc_ir::DType::U8, shape.to_vec()).strides()
}

/// Calls `f(flat, index)` for every multi-index of `shape` in row-major order.
pub fn for_each_index(shape: &[usize], mut f: impl FnMut(usize, &[usize])) {
    if shape.contains(&0) {
        return;
    }
    let total: usize = shape.iter().product();
    let mut idx = vec![0usize; shape.len()];
    for flat in 0..total {
        f(flat, &idx);
        // Odometer increment, last axis fastest.
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// The source index of every output element of `out_shape`.
pub fn index_map(out_shape: &[usize], mut src: impl FnMut(&[usize]) -> Option<usize>) -> Vec<usize> {
    let mut map = Vec::with_capacity(out_shape.iter().product());
    for_each_index(out_shape, |_, o| map.push(src(o).unwrap_or(FILL)));
    map
}

/// Map for `broadcast x, shape, axes`: input axis i sits at output axis `axes[i]`;
/// size-1 input axes repeat.
pub fn broadcast_map(in_shape: &[usize], out_shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let st = strides(in_shape);
    index_map(out_shape, |o| {
        Some(
            (0..in_shape.len())
                .map(|i| if in_shape[i] == 1 { 0 } else { o[axes[i]] * st[i] })
                .sum(),
        )
    })
}

/// Map for implicit (numpy) broadcasting: shapes aligned at the trailing axis.
pub fn implicit_broadcast_map(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let lead = out_shape.len() - in_shape.len();
    let axes: Vec<usize> = (lead..out_shape.len()).collect();
    broadcast_map(in_shape, out_shape, &axes)
}

/// Map for a transpose: output axis i is input axis `perm[i]`.
pub fn transpose_map(in_shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let st = strides(in_shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
    index_map(&out_shape, |o| Some(o.iter().zip(perm).map(|(&oi, &p)| oi * st[p]).sum()))
}

pub fn gather_lanes(lanes: &Lanes, map: &[usize]) -> Lanes {
    match lanes {
        Lanes::Int(v) => Lanes::Int(map.iter().map(|&i| v[i]).collect()),
        Lanes::Float(v) => Lanes::Float(map.iter().map(|&i| v[i]).collect()),
    }
}

pub fn gather_vec<T: Copy>(v: &[T], map: &[usize]) -> Vec<T> {
    map.iter().map(|&i| v[i]).collect()
}

/// Builds a tensor of type `out` (same dtype as `src`) by copying element
/// bytes through `map`; `FILL` entries take `fill` (one element's bytes).
pub fn gather_bytes(src: &Tensor, out: TensorType, map: &[usize], fill: Option<&[u8]>) -> Result<Tensor, InterpError> {
    let mut t = Tensor::zeros(out).map_err(|e| InterpError::Internal(e.to_string()))?;
    let w = src.dtype().size_bytes();
    if t.len() != map.len() {
        return Err(InterpError::Internal(format!("index map of {} for {}", map.len(), t.ty())));
    }
    let sb = src.bytes();
    let ob = t.bytes_mut();
    for (k, &i) in map.iter().enumerate() {
        let dst = &mut ob[k * w..(k + 1) * w];
        if i == FILL {
            let f = fill.ok_or_else(|| InterpError::Internal("padding without a pad value".into()))?;
            dst.copy_from_slice(f);
        } else {
            dst.copy_from_slice(&sb[i * w..(i + 1) * w]);
        }
    }
    Ok(t)
}

/// Joins tensors of one dtype along `axis` (their other dims agree).
pub fn concat_bytes(parts: &[Tensor], axis: usize, out: TensorType) -> Result<Tensor, InterpError> {
    let mut t = Tensor::zeros(out).map_err(|e| InterpError::Internal(e.to_string()))?;
    let shape = t.shape().to_vec();
    let w = t.dtype().size_bytes();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut pos = 0;
    let ob = t.bytes_mut();
    // Each outer index holds one contiguous chunk of every part, in order.
    for o in 0..outer {
        for p in parts {
            let chunk = p.shape()[axis] * inner * w;
            ob[pos..pos + chunk].copy_from_slice(&p.bytes()[o * chunk..(o + 1) * chunk]);
            pos += chunk;
        }
    }
    if pos != ob.len() {
        return Err(InterpError::Internal("concatenate sizes disagree".into()));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_broadcast_repeats_size_one_axes() {
        // [3] against [2][3]: rows repeat.
        assert_eq!(implicit_broadcast_map(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        // [2][1] against [2][3]: columns repeat.
        assert_eq!(implicit_broadcast_map(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(implicit_broadcast_map(&[], &[2]), vec![0, 0]);
    }

    #[test]
    fn transpose_of_2x3() {
        // [[0,1,2],[3,4,5]]^T = [[0,3],[1,4],[2,5]]
        assert_eq!(transpose_map(&[2, 3], &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn zero_sized_shapes_visit_nothing() {
        assert!(index_map(&[2, 0, 3], |_| Some(0)).is_empty());
        assert_eq!(index_map(&[], |_| Some(7)), vec![7]);
    }
}

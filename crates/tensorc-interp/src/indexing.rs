//! Data-dependent indexing (spec §4.3): `take`, `gather`, `take_along_axis`, `put_slice`.
//!
//! Indices are clamped into range as the spec says, and values move as raw
//! bytes like every other data-movement op.

use tensorc_ir::{Tensor, TensorType};

use crate::InterpError;
use crate::layout::{gather_bytes, index_map, strides};
use crate::value::{Lanes, convert_tensor, decode};

/// Index values of an integer tensor, clamped into `[0, n)`.
fn clamped_indices(idx: &Tensor, n: usize) -> Result<Vec<usize>, InterpError> {
    if n == 0 {
        return Err(InterpError::Internal("indexing into an empty axis".into()));
    }
    match decode(idx) {
        Lanes::Int(v) => Ok(v.into_iter().map(|i| i.clamp(0, n.saturating_sub(1) as i128) as usize).collect()),
        Lanes::Float(_) => Err(InterpError::Internal(format!("indices of type {}", idx.ty()))),
    }
}

/// `take x, idx, axis:`: x's shape with `axis` replaced by idx's shape;
/// `out[a…, i…, b…] = x[a…, clamp(idx[i…]), b…]`.
pub fn take(x: &Tensor, idx: &Tensor, axis: usize, out: TensorType) -> Result<Tensor, InterpError> {
    let xs = x.shape();
    let r = idx.shape().len();
    let mut want = xs[..axis].to_vec();
    want.extend_from_slice(idx.shape());
    want.extend_from_slice(&xs[axis + 1..]);
    if axis >= xs.len() || want != out.shape || out.dtype != x.dtype() {
        return Err(InterpError::Internal(format!("take from {} with {} into {out}", x.ty(), idx.ty())));
    }
    if out.num_elements() == 0 {
        return Tensor::zeros(out).map_err(|e| InterpError::Internal(e.to_string()));
    }
    let ix = clamped_indices(idx, xs[axis])?;
    let (xst, ist) = (strides(xs), strides(idx.shape()));
    let map = index_map(&out.shape, |o| {
        let i_flat: usize = (0..r).map(|k| o[axis + k] * ist[k]).sum();
        let mut flat = ix[i_flat] * xst[axis];
        flat += (0..axis).map(|a| o[a] * xst[a]).sum::<usize>();
        flat += (axis + 1..xs.len()).map(|a| o[a + r - 1] * xst[a]).sum::<usize>();
        Some(flat)
    });
    gather_bytes(x, out, &map, None)
}

/// `gather x, idx, axes:` (Nx.gather): `idx[…, k]` indexes axis `axes[k]`
/// of x (clamped); the result shape is idx's shape without its last axis,
/// followed by the axes of x that are not indexed, in order.
pub fn gather(x: &Tensor, idx: &Tensor, axes: &[usize], out: TensorType) -> Result<Tensor, InterpError> {
    let (xs, is) = (x.shape(), idx.shape());
    let rest: Vec<usize> = (0..xs.len()).filter(|a| !axes.contains(a)).collect();
    let mut want = is[..is.len().saturating_sub(1)].to_vec();
    want.extend(rest.iter().map(|&a| xs[a]));
    if is.is_empty() || is[is.len() - 1] != axes.len() || axes.iter().any(|&a| a >= xs.len()) || want != out.shape || out.dtype != x.dtype() {
        return Err(InterpError::Internal(format!("gather from {} with {} into {out}", x.ty(), idx.ty())));
    }
    if out.num_elements() == 0 {
        return Tensor::zeros(out).map_err(|e| InterpError::Internal(e.to_string()));
    }
    if axes.iter().any(|&a| xs[a] == 0) {
        return Err(InterpError::Internal("gather from an empty axis".into()));
    }
    let raw = match decode(idx) {
        Lanes::Int(v) => v,
        Lanes::Float(_) => return Err(InterpError::Internal(format!("indices of type {}", idx.ty()))),
    };
    let (xst, k, nb) = (strides(xs), axes.len(), is.len() - 1);
    let bst = strides(&is[..nb]);
    let map = index_map(&out.shape, |o| {
        let b: usize = (0..nb).map(|j| o[j] * bst[j]).sum();
        let mut flat = 0;
        for (j, &a) in axes.iter().enumerate() {
            flat += raw[b * k + j].clamp(0, xs[a] as i128 - 1) as usize * xst[a];
        }
        for (j, &a) in rest.iter().enumerate() {
            flat += o[nb + j] * xst[a];
        }
        Some(flat)
    });
    gather_bytes(x, out, &map, None)
}

/// `take_along_axis x, idx, axis:`: idx has x's rank; `out[i] = x[i with
/// i[axis] = clamp(idx[i])]`; other axes of size 1 in x broadcast.
pub fn take_along_axis(x: &Tensor, idx: &Tensor, axis: usize, out: TensorType) -> Result<Tensor, InterpError> {
    let xs = x.shape();
    let fits = xs.len() == idx.shape().len()
        && axis < xs.len()
        && out.shape == idx.shape()
        && (0..xs.len()).all(|a| a == axis || xs[a] == idx.shape()[a] || xs[a] == 1);
    if !fits || out.dtype != x.dtype() {
        return Err(InterpError::Internal(format!("take_along_axis of {} with {} into {out}", x.ty(), idx.ty())));
    }
    if out.num_elements() == 0 {
        return Tensor::zeros(out).map_err(|e| InterpError::Internal(e.to_string()));
    }
    let ix = clamped_indices(idx, xs[axis])?;
    let xst = strides(xs);
    let mut k = 0;
    let map = index_map(&out.shape, |o| {
        let flat = (0..xs.len())
            .map(|a| if a == axis { ix[k] } else if xs[a] == 1 { 0 } else { o[a] } * xst[a])
            .sum();
        k += 1;
        Some(flat)
    });
    gather_bytes(x, out, &map, None)
}

/// `put_slice x, starts, y`: a copy of x (converted to `out`'s dtype) with y
/// written at `starts`, each clamped so that y fits.
pub fn put_slice(x: &Tensor, starts: &[i64], y: &Tensor, out: TensorType) -> Result<Tensor, InterpError> {
    let (xs, ys) = (x.shape(), y.shape());
    if xs.len() != ys.len() || starts.len() != xs.len() || out.shape != xs || (0..xs.len()).any(|a| ys[a] > xs[a]) {
        return Err(InterpError::Internal(format!("put_slice of {} into {}", y.ty(), x.ty())));
    }
    let (x, y) = (convert_tensor(x, out.dtype)?, convert_tensor(y, out.dtype)?);
    let begin: Vec<usize> = (0..xs.len()).map(|a| starts[a].clamp(0, (xs[a] - ys[a]) as i64) as usize).collect();
    let (xst, yst) = (strides(xs), strides(ys));
    // Elements inside the slice come from y (offset past x's elements).
    let n = x.len();
    let map = index_map(xs, |o| {
        let inside = (0..o.len()).all(|a| o[a] >= begin[a] && o[a] < begin[a] + ys[a]);
        Some(if inside {
            n + (0..o.len()).map(|a| (o[a] - begin[a]) * yst[a]).sum::<usize>()
        } else {
            (0..o.len()).map(|a| o[a] * xst[a]).sum()
        })
    });
    // One source buffer holding x's elements followed by y's.
    let mut both = Vec::with_capacity(x.bytes().len() + y.bytes().len());
    both.extend_from_slice(x.bytes());
    both.extend_from_slice(y.bytes());
    let src = Tensor::from_bytes(TensorType::new(out.dtype, vec![n + y.len()]), &both)
        .map_err(|e| InterpError::Internal(e.to_string()))?;
    gather_bytes(&src, out, &map, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorc_ir::{DType, Scalar};

    fn ti(d: DType, shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_scalars(TensorType::new(d, shape.to_vec()), &v.iter().map(|&x| Scalar::I(x)).collect::<Vec<_>>()).unwrap()
    }

    fn vals(t: &Tensor) -> Vec<i64> {
        t.to_scalars().iter().map(|s| s.as_f64() as i64).collect()
    }

    fn tt(d: DType, shape: &[usize]) -> TensorType {
        TensorType::new(d, shape.to_vec())
    }

    #[test]
    fn take_replaces_the_axis_by_the_index_shape() {
        // x = [[1,2,3],[4,5,6]]
        let x = ti(DType::S32, &[2, 3], &[1, 2, 3, 4, 5, 6]);
        // axis 1 with idx [[2, 0], [1, 9]] (9 clamps to 2) -> shape [2][2][2]
        let idx = ti(DType::S32, &[2, 2], &[2, 0, 1, 9]);
        let r = take(&x, &idx, 1, tt(DType::S32, &[2, 2, 2])).unwrap();
        assert_eq!(vals(&r), [3, 1, 2, 3, 6, 4, 5, 6]);
        // axis 0 with idx [1, -3 (clamps to 0), 1]
        let idx = ti(DType::S64, &[3], &[1, -3, 1]);
        let r = take(&x, &idx, 0, tt(DType::S32, &[3, 3])).unwrap();
        assert_eq!(vals(&r), [4, 5, 6, 1, 2, 3, 4, 5, 6]);
        // scalar index removes the axis
        let r = take(&x, &ti(DType::U8, &[], &[1]), 1, tt(DType::S32, &[2])).unwrap();
        assert_eq!(vals(&r), [2, 5]);
    }

    #[test]
    fn gather_follows_the_nx_doc_examples() {
        let t = ti(DType::S32, &[2, 2], &[1, 2, 3, 4]);
        let idx = ti(DType::S32, &[3, 2], &[1, 1, 0, 1, 1, 0]);
        assert_eq!(vals(&gather(&t, &idx, &[0, 1], tt(DType::S32, &[3])).unwrap()), [4, 2, 3]);
        let idx = ti(DType::S32, &[2, 2, 2], &[1, 1, 0, 0, 1, 0, 0, 1]);
        assert_eq!(vals(&gather(&t, &idx, &[0, 1], tt(DType::S32, &[2, 2])).unwrap()), [4, 1, 3, 2]);
        // gathering subsets: rows 1 and 0
        let t = ti(DType::S32, &[2, 3], &[1, 2, 3, 3, 4, 5]);
        let idx = ti(DType::S32, &[2, 1], &[1, 0]);
        assert_eq!(vals(&gather(&t, &idx, &[0], tt(DType::S32, &[2, 3])).unwrap()), [3, 4, 5, 1, 2, 3]);
        // columns via axes: [1]
        let t = ti(DType::S32, &[2, 3], &[1, 2, 3, 4, 5, 6]);
        let idx = ti(DType::S32, &[4, 1], &[1, 0, 2, 1]);
        assert_eq!(vals(&gather(&t, &idx, &[1], tt(DType::S32, &[4, 2])).unwrap()), [2, 5, 1, 4, 3, 6, 2, 5]);
        // iota {2,1,3} with [[[1],[0],[2]]] on axes [2] -> s32[1][3][2][1]
        let t = ti(DType::S32, &[2, 1, 3], &[0, 1, 2, 3, 4, 5]);
        let idx = ti(DType::S32, &[1, 3, 1], &[1, 0, 2]);
        assert_eq!(vals(&gather(&t, &idx, &[2], tt(DType::S32, &[1, 3, 2, 1])).unwrap()), [1, 4, 0, 3, 2, 5]);
        // out-of-range indices clamp
        let idx = ti(DType::S32, &[2, 1], &[-4, 99]);
        assert_eq!(vals(&gather(&t, &idx, &[2], tt(DType::S32, &[2, 2, 1])).unwrap()), [0, 3, 2, 5]);
    }

    #[test]
    fn take_along_axis_picks_per_row() {
        let x = ti(DType::S32, &[2, 3], &[1, 2, 3, 4, 5, 6]);
        let idx = ti(DType::S32, &[2, 2], &[2, 0, 1, 7]);
        let r = take_along_axis(&x, &idx, 1, tt(DType::S32, &[2, 2])).unwrap();
        assert_eq!(vals(&r), [3, 1, 5, 6]);
        let idx = ti(DType::S32, &[1, 3], &[1, 0, 1]);
        let r = take_along_axis(&x, &idx, 0, tt(DType::S32, &[1, 3])).unwrap();
        assert_eq!(vals(&r), [4, 2, 6]);
    }

    #[test]
    fn put_slice_clamps_starts() {
        let x = ti(DType::S32, &[2, 3], &[1, 2, 3, 4, 5, 6]);
        let y = ti(DType::S8, &[1, 2], &[-1, -2]);
        let r = put_slice(&x, &[1, 0], &y, tt(DType::S32, &[2, 3])).unwrap();
        assert_eq!(vals(&r), [1, 2, 3, -1, -2, 6]);
        // start [5, 5] clamps to [1, 1]
        let r = put_slice(&x, &[5, 5], &y, tt(DType::S32, &[2, 3])).unwrap();
        assert_eq!(vals(&r), [1, 2, 3, 4, -1, -2]);
    }
}

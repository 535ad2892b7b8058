//! Ops that pick elements by computed positions (spec §4.5, §4.7): `top_k`
//! (built from `argsort`, as Nx defines it) and `slice`/`put_slice` whose
//! start indices are scalar tensors read at run time.
//!
//! The sorting and indexing themselves live in `scan` and `indexing`; this
//! file only turns run-time values into the static arguments those take.

use tensorc_ir::{DType, Tensor, TensorType};

use crate::InterpError;
use crate::layout::{gather_bytes, index_map, strides};
use crate::scan::argsort;
use crate::value::{Lanes, decode};

/// `top_k x, k:`: the first k of a stable descending sort along the last
/// axis (NaN first, ties in input order) and their positions as s32.
pub fn top_k(x: &Tensor, k: usize) -> Result<(Tensor, Tensor), InterpError> {
    let shape = x.shape();
    let Some(&n) = shape.last() else {
        return Err(InterpError::Internal("top_k of a scalar".into()));
    };
    if k > n {
        return Err(InterpError::Internal(format!("top_k k={k} of {}", x.ty())));
    }
    let axis = shape.len() - 1;
    let all = argsort(x, axis, true, TensorType::new(DType::S32, shape.to_vec()))?;
    let mut out_shape = shape.to_vec();
    out_shape[axis] = k;
    let rows = x.len().checked_div(n).unwrap_or(0);
    let pos = match decode(&all) {
        Lanes::Int(v) => v,
        Lanes::Float(_) => return Err(InterpError::Internal("argsort gave floats".into())),
    };
    // Output element (row, j) comes from x[row, pos[row, j]].
    let mut map = Vec::with_capacity(rows * k);
    let mut idx_map = Vec::with_capacity(rows * k);
    for r in 0..rows {
        for j in 0..k {
            map.push(r * n + pos[r * n + j] as usize);
            idx_map.push(r * n + j);
        }
    }
    let values = gather_bytes(x, TensorType::new(x.dtype(), out_shape.clone()), &map, None)?;
    let indices = gather_bytes(&all, TensorType::new(DType::S32, out_shape), &idx_map, None)?;
    Ok((values, indices))
}

/// The value of a scalar integer tensor (a run-time start index).
pub fn scalar_index(t: &Tensor) -> Result<i128, InterpError> {
    match decode(t) {
        Lanes::Int(v) if v.len() == 1 => Ok(v[0]),
        _ => Err(InterpError::Internal(format!(
            "start index of type {}",
            t.ty()
        ))),
    }
}

/// Static and run-time start indices merged, each clamped into `[0, dims[i] - lens[i]]`.
pub fn resolve_starts(
    starts: &[Option<usize>],
    dynamic: &[&Tensor],
    dims: &[usize],
    lens: &[usize],
) -> Result<Vec<usize>, InterpError> {
    let mut it = dynamic.iter();
    starts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let v = match s {
                Some(v) => *v as i128,
                None => scalar_index(
                    it.next()
                        .ok_or_else(|| InterpError::Internal("missing start operand".into()))?,
                )?,
            };
            Ok(v.clamp(0, (dims[i] - lens[i]) as i128) as usize)
        })
        .collect()
}

/// `slice` with resolved starts (lengths and strides static).
pub fn slice(
    x: &Tensor,
    starts: &[usize],
    steps: &[usize],
    out: TensorType,
) -> Result<Tensor, InterpError> {
    let st = strides(x.shape());
    let map = index_map(&out.shape, |o| {
        Some(
            (0..o.len())
                .map(|d| (starts[d] + o[d] * steps[d]) * st[d])
                .sum(),
        )
    });
    gather_bytes(x, out, &map, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorc_ir::Scalar;

    fn t(d: DType, shape: &[usize], v: &[f64]) -> Tensor {
        let s: Vec<Scalar> = v
            .iter()
            .map(|&x| {
                if d.is_float() {
                    Scalar::F(x)
                } else {
                    Scalar::I(x as i64)
                }
            })
            .collect();
        Tensor::from_scalars(TensorType::new(d, shape.to_vec()), &s).unwrap()
    }

    fn vals(t: &Tensor) -> Vec<f64> {
        t.to_scalars().iter().map(|s| s.as_f64()).collect()
    }

    #[test]
    fn top_k_takes_the_largest_first() {
        // Nx docs: top_k([1, 3, 4, 2, 7], k: 3) = {[7, 4, 3], [4, 2, 1]}
        let x = t(DType::F32, &[5], &[1.0, 3.0, 4.0, 2.0, 7.0]);
        let (v, i) = top_k(&x, 3).unwrap();
        assert_eq!(vals(&v), [7.0, 4.0, 3.0]);
        assert_eq!(vals(&i), [4.0, 2.0, 1.0]);
        assert_eq!(i.dtype(), DType::S32);
        // per row of the last axis; ties keep input order
        let x = t(DType::S8, &[2, 3], &[5.0, 5.0, 1.0, -1.0, 2.0, 2.0]);
        let (v, i) = top_k(&x, 2).unwrap();
        assert_eq!(vals(&v), [5.0, 5.0, 2.0, 2.0]);
        assert_eq!(vals(&i), [0.0, 1.0, 1.0, 2.0]);
    }

    #[test]
    fn dynamic_starts_clamp() {
        let s = t(DType::S64, &[], &[7.0]);
        let n = t(DType::S32, &[], &[-3.0]);
        assert_eq!(
            resolve_starts(&[None, Some(1), None], &[&s, &n], &[5, 4, 3], &[2, 2, 1]).unwrap(),
            [3, 1, 0]
        );
        // Nx docs: slice([1, 2, 3, 4, 5, 6], [tensor(3)], [2]) = [4, 5]
        let x = t(DType::S32, &[6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let r = slice(&x, &[3], &[1], TensorType::new(DType::S32, vec![2])).unwrap();
        assert_eq!(vals(&r), [4.0, 5.0]);
    }
}

//! Window reductions, cumulative scans and sorting (spec §4.5).
//!
//! Each function takes already-normalized options (as the graph records
//! them), so the evaluator's match arms stay one line each.

use std::cmp::Ordering;

use tensorc_ir::graph::ReduceKind;
use tensorc_ir::{Tensor, TensorType};

use crate::InterpError;
use crate::elementwise::{fmax, fmin};
use crate::layout::{for_each_index, strides};
use crate::value::{Lanes, decode, decode_as, encode, round_to, wrap};

/// How one reduction kind combines values, with its identity (also the
/// padding value of window ops: 0 for sum, 1 for product, −inf/+inf or the
/// integer extremes for max/min).
struct Combine {
    float_init: f64,
    float_op: fn(f64, f64) -> f64,
    int_init: i128,
    int_op: fn(i128, i128) -> i128,
}

fn combine(kind: ReduceKind, out: &TensorType) -> Result<Combine, InterpError> {
    let (lo, hi) = out.dtype.int_range().unwrap_or((0, 0));
    Ok(match kind {
        ReduceKind::Sum => Combine { float_init: 0.0, float_op: |a, b| a + b, int_init: 0, int_op: i128::wrapping_add },
        ReduceKind::Product => Combine { float_init: 1.0, float_op: |a, b| a * b, int_init: 1, int_op: i128::wrapping_mul },
        ReduceKind::Max => Combine { float_init: f64::NEG_INFINITY, float_op: fmax, int_init: lo, int_op: i128::max },
        ReduceKind::Min => Combine { float_init: f64::INFINITY, float_op: fmin, int_init: hi, int_op: i128::min },
        other => return Err(InterpError::Internal(format!("{other:?} is not a window/scan reduction"))),
    })
}

/// `window_sum`/`window_product`/`window_max`/`window_min`: for every output
/// position, combine the window elements in row-major window order; positions
/// in the padding take the identity (so they are skipped).
pub fn window_reduce(
    kind: ReduceKind,
    x: &Tensor,
    window: &[usize],
    win_strides: &[usize],
    padding: &[(i64, i64)],
    dilations: &[usize],
    out: TensorType,
) -> Result<Tensor, InterpError> {
    let d = out.dtype;
    let rank = x.shape().len();
    let shape = x.shape().to_vec();
    let ok = [window.len(), win_strides.len(), padding.len(), dilations.len(), out.rank()].iter().all(|&l| l == rank)
        && !win_strides.contains(&0)
        && !dilations.contains(&0);
    if !ok {
        return Err(InterpError::Internal(format!("window reduction of {} into {out}: bad options", x.ty())));
    }
    let c = combine(kind, &out)?;
    let st = strides(&shape);
    // Input offsets of the window positions for an output index, None in padding.
    let source = |o: &[usize], k: &[usize]| -> Option<usize> {
        let mut flat = 0;
        for a in 0..rank {
            let q = (o[a] * win_strides[a] + k[a] * dilations[a]) as i64 - padding[a].0;
            if q < 0 || q >= shape[a] as i64 {
                return None;
            }
            flat += q as usize * st[a];
        }
        Some(flat)
    };
    let mut windows = Vec::new();
    for_each_index(window, |_, k| windows.push(k.to_vec()));
    let lanes = match decode_as(x, d) {
        Lanes::Float(v) => {
            let mut res = Vec::with_capacity(out.num_elements());
            for_each_index(&out.shape, |_, o| {
                let mut acc = c.float_init;
                for k in &windows {
                    if let Some(s) = source(o, k) {
                        acc = round_to(d, (c.float_op)(acc, v[s]));
                    }
                }
                res.push(acc);
            });
            Lanes::Float(res)
        }
        Lanes::Int(v) => {
            let mut res = Vec::with_capacity(out.num_elements());
            for_each_index(&out.shape, |_, o| {
                let mut acc = c.int_init;
                for k in &windows {
                    if let Some(s) = source(o, k) {
                        acc = (c.int_op)(acc, v[s]);
                    }
                }
                res.push(wrap(d, acc));
            });
            Lanes::Int(res)
        }
    };
    encode(out, &lanes)
}

/// `cumulative_sum`/`_product`/`_max`/`_min` along `axis`: element i combines
/// elements 0..=i (or i.. when `reverse`), accumulated in the result dtype.
pub fn cumulative(kind: ReduceKind, x: &Tensor, axis: usize, reverse: bool, out: TensorType) -> Result<Tensor, InterpError> {
    let d = out.dtype;
    let shape = x.shape();
    if axis >= shape.len() || out.shape != shape {
        return Err(InterpError::Internal(format!("cumulative op of {} into {out}", x.ty())));
    }
    let c = combine(kind, &out)?;
    let (outer, n, inner) = (shape[..axis].iter().product::<usize>(), shape[axis], shape[axis + 1..].iter().product::<usize>());
    // Visit order along the axis for each (outer, inner) line.
    let order: Vec<usize> = if reverse { (0..n).rev().collect() } else { (0..n).collect() };
    let at = |o: usize, k: usize, i: usize| (o * n + k) * inner + i;
    let lanes = match decode_as(x, d) {
        Lanes::Float(v) => {
            let mut res = vec![0.0; v.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = c.float_init;
                    for &k in &order {
                        acc = round_to(d, (c.float_op)(acc, v[at(o, k, i)]));
                        res[at(o, k, i)] = acc;
                    }
                }
            }
            Lanes::Float(res)
        }
        Lanes::Int(v) => {
            let mut res = vec![0; v.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = c.int_init;
                    for &k in &order {
                        acc = wrap(d, (c.int_op)(acc, v[at(o, k, i)]));
                        res[at(o, k, i)] = acc;
                    }
                }
            }
            Lanes::Int(res)
        }
    };
    encode(out, &lanes)
}

/// Element `i` of `x` as a scalar tensor (its bytes copied exactly).
pub(crate) fn element(x: &Tensor, i: usize) -> Result<Tensor, InterpError> {
    let w = x.dtype().size_bytes();
    Tensor::from_bytes(TensorType::scalar(x.dtype()), &x.bytes()[i * w..(i + 1) * w])
        .map_err(|e| InterpError::Internal(e.to_string()))
}

/// The general `reduce x, init, axes:, fn(acc, v)` (and the window form via
/// `window_reduce_with`): `f` is the user's function on scalar tensors of the
/// result dtype, applied in row-major order starting from `init`.
pub fn reduce_with(
    x: &Tensor,
    init: &Tensor,
    axes: &[usize],
    out: TensorType,
    f: &mut dyn FnMut(&Tensor, &Tensor) -> Result<Tensor, InterpError>,
) -> Result<Tensor, InterpError> {
    let d = out.dtype;
    let x = crate::value::convert_tensor(x, d)?;
    let init = crate::value::convert_tensor(init, d)?;
    let shape = x.shape().to_vec();
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    if kept_shape.iter().product::<usize>() != out.num_elements() || init.len() != 1 {
        return Err(InterpError::Internal(format!("reduce of {} into {out}", x.ty())));
    }
    let kst = strides(&kept_shape);
    let mut accs = vec![init.clone(); out.num_elements()];
    let mut err = None;
    for_each_index(&shape, |flat, idx| {
        if err.is_some() {
            return;
        }
        let o: usize = kept.iter().zip(&kst).map(|(&a, s)| idx[a] * s).sum();
        match element(&x, flat).and_then(|v| f(&accs[o], &v)) {
            Ok(r) if r.ty() == &TensorType::scalar(d) => accs[o] = r,
            Ok(r) => err = Some(InterpError::Internal(format!("reduce function returned {}", r.ty()))),
            Err(e) => err = Some(e),
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    let mut bytes = Vec::with_capacity(out.size_bytes());
    accs.iter().for_each(|a| bytes.extend_from_slice(a.bytes()));
    Tensor::from_bytes(out, &bytes).map_err(|e| InterpError::Internal(e.to_string()))
}

/// The order `sort` uses: numeric, with NaN above everything (so NaNs go
/// last ascending and first descending); -0.0 and 0.0 are equal.
fn total(a: &Lanes, i: usize, j: usize) -> Ordering {
    match a {
        Lanes::Int(v) => v[i].cmp(&v[j]),
        Lanes::Float(v) => match (v[i].is_nan(), v[j].is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => v[i].partial_cmp(&v[j]).unwrap_or(Ordering::Equal),
        },
    }
}

/// For each line along `axis`, the stable sorting permutation (source
/// positions along the axis, in output order).
fn sort_permutations(x: &Tensor, axis: usize, descending: bool) -> (Vec<Vec<usize>>, usize, usize, usize) {
    let shape = x.shape();
    let (outer, n, inner) = (shape[..axis].iter().product::<usize>(), shape[axis], shape[axis + 1..].iter().product::<usize>());
    let lanes = decode(x);
    let mut perms = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            let mut p: Vec<usize> = (0..n).collect();
            // `sort_by` is stable, so equal keys keep their input order either way.
            p.sort_by(|&a, &b| {
                let ord = total(&lanes, at(a), at(b));
                if descending { ord.reverse() } else { ord }
            });
            perms.push(p);
        }
    }
    (perms, outer, n, inner)
}

/// `sort x, axis:, direction:` (stable). The values move as raw bytes.
pub fn sort(x: &Tensor, axis: usize, descending: bool, out: TensorType) -> Result<Tensor, InterpError> {
    if axis >= x.shape().len() || out != *x.ty() {
        return Err(InterpError::Internal(format!("sort of {} into {out}", x.ty())));
    }
    let (perms, _, n, inner) = sort_permutations(x, axis, descending);
    let mut map = vec![0usize; x.len()];
    for (line, p) in perms.iter().enumerate() {
        let (o, i) = (line / inner, line % inner);
        for (k, &src) in p.iter().enumerate() {
            map[(o * n + k) * inner + i] = (o * n + src) * inner + i;
        }
    }
    crate::layout::gather_bytes(x, out, &map, None)
}

/// `argsort`: the positions `sort` would take elements from, in `out`'s integer dtype.
pub fn argsort(x: &Tensor, axis: usize, descending: bool, out: TensorType) -> Result<Tensor, InterpError> {
    if axis >= x.shape().len() || out.shape != x.shape() || out.dtype.is_float() {
        return Err(InterpError::Internal(format!("argsort of {} into {out}", x.ty())));
    }
    let (perms, _, n, inner) = sort_permutations(x, axis, descending);
    let mut idx = vec![0i128; x.len()];
    for (line, p) in perms.iter().enumerate() {
        let (o, i) = (line / inner, line % inner);
        for (k, &src) in p.iter().enumerate() {
            idx[(o * n + k) * inner + i] = wrap(out.dtype, src as i128);
        }
    }
    encode(out, &Lanes::Int(idx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorc_ir::{DType, Scalar};

    fn tf(shape: &[usize], v: &[f64]) -> Tensor {
        Tensor::from_scalars(TensorType::new(DType::F32, shape.to_vec()), &v.iter().map(|&x| Scalar::F(x)).collect::<Vec<_>>())
            .unwrap()
    }

    fn ti(d: DType, shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_scalars(TensorType::new(d, shape.to_vec()), &v.iter().map(|&x| Scalar::I(x)).collect::<Vec<_>>()).unwrap()
    }

    fn vals(t: &Tensor) -> Vec<f64> {
        t.to_scalars().iter().map(|s| s.as_f64()).collect()
    }

    fn tt(d: DType, shape: &[usize]) -> TensorType {
        TensorType::new(d, shape.to_vec())
    }

    #[test]
    fn window_sum_and_max() {
        // [[1,2,3],[4,5,6],[7,8,9]] with 2x2 windows, stride 1, valid:
        // sums [[12,16],[24,28]], maxes [[5,6],[8,9]]
        let x = tf(&[3, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let w = |k, pad: &[(i64, i64)], st: &[usize], dil: &[usize], out: &[usize]| {
            vals(&window_reduce(k, &x, &[2, 2], st, pad, dil, tt(DType::F32, out)).unwrap())
        };
        assert_eq!(w(ReduceKind::Sum, &[(0, 0), (0, 0)], &[1, 1], &[1, 1], &[2, 2]), [12.0, 16.0, 24.0, 28.0]);
        assert_eq!(w(ReduceKind::Max, &[(0, 0), (0, 0)], &[1, 1], &[1, 1], &[2, 2]), [5.0, 6.0, 8.0, 9.0]);
        // stride 2 with padding (0,1) on both axes: windows at 0 and 2; the
        // second sees padding (identity): sums [[12, 9], [15, 9]]
        assert_eq!(w(ReduceKind::Sum, &[(0, 1), (0, 1)], &[2, 2], &[1, 1], &[2, 2]), [12.0, 9.0, 15.0, 9.0]);
        // min padding is +inf, so padded windows still give the real min
        assert_eq!(w(ReduceKind::Min, &[(1, 0), (1, 0)], &[2, 2], &[1, 1], &[2, 2]), [1.0, 2.0, 4.0, 5.0]);
        // dilation 2: the window takes corners x[0][0], x[0][2], x[2][0], x[2][2]
        assert_eq!(w(ReduceKind::Product, &[(0, 0), (0, 0)], &[1, 1], &[2, 2], &[1, 1]), [1.0 * 3.0 * 7.0 * 9.0]);
        // integer max of s8 with padding: identity is -128
        let xi = ti(DType::S8, &[3], &[-5, -7, -9]);
        let r = window_reduce(ReduceKind::Max, &xi, &[2], &[1], &[(1, 1)], &[1], tt(DType::S8, &[4])).unwrap();
        assert_eq!(vals(&r), [-5.0, -5.0, -7.0, -9.0]);
    }

    #[test]
    fn cumulative_ops() {
        let x = tf(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let c = |k, axis, rev| vals(&cumulative(k, &x, axis, rev, tt(DType::F32, &[2, 3])).unwrap());
        assert_eq!(c(ReduceKind::Sum, 1, false), [1.0, 3.0, 6.0, 4.0, 9.0, 15.0]);
        assert_eq!(c(ReduceKind::Sum, 0, false), [1.0, 2.0, 3.0, 5.0, 7.0, 9.0]);
        assert_eq!(c(ReduceKind::Sum, 1, true), [6.0, 5.0, 3.0, 15.0, 11.0, 6.0]);
        assert_eq!(c(ReduceKind::Product, 1, false), [1.0, 2.0, 6.0, 4.0, 20.0, 120.0]);
        let y = tf(&[4], &[2.0, 1.0, f64::NAN, 3.0]);
        let m = vals(&cumulative(ReduceKind::Max, &y, 0, false, tt(DType::F32, &[4])).unwrap());
        assert_eq!(m[..2], [2.0, 2.0]);
        assert!(m[2].is_nan() && m[3].is_nan());
        let m = vals(&cumulative(ReduceKind::Min, &y, 0, true, tt(DType::F32, &[4])).unwrap());
        assert!(m[0].is_nan() && m[1].is_nan() && m[2].is_nan());
        assert_eq!(m[3], 3.0);
        // integer cumulative sum wraps in its type
        let xi = ti(DType::S8, &[2], &[100, 100]);
        let r = cumulative(ReduceKind::Sum, &xi, 0, false, tt(DType::S8, &[2])).unwrap();
        assert_eq!(vals(&r), [100.0, -56.0]);
    }

    #[test]
    fn reduce_with_a_user_function() {
        // fn(acc, v) = acc * 10 + v over rows of [[1,2,3],[4,5,6]] from 0: [123, 456]
        let x = ti(DType::S32, &[2, 3], &[1, 2, 3, 4, 5, 6]);
        let zero = ti(DType::S32, &[], &[0]);
        let mut f = |acc: &Tensor, v: &Tensor| {
            let r = acc.get(0).as_f64() as i64 * 10 + v.get(0).as_f64() as i64;
            Ok(ti(DType::S32, &[], &[r]))
        };
        let r = reduce_with(&x, &zero, &[1], tt(DType::S32, &[2]), &mut f).unwrap();
        assert_eq!(vals(&r), [123.0, 456.0]);
        // over axis 0 the order is row-major too: 0*10+1=1, then 1*10+4=14
        let r = reduce_with(&x, &zero, &[0], tt(DType::S32, &[3]), &mut f).unwrap();
        assert_eq!(vals(&r), [14.0, 25.0, 36.0]);
        // empty reduction gives init; errors from the function propagate
        let e = ti(DType::S32, &[0, 2], &[]);
        let r = reduce_with(&e, &ti(DType::S32, &[], &[7]), &[0], tt(DType::S32, &[2]), &mut f).unwrap();
        assert_eq!(vals(&r), [7.0, 7.0]);
        let mut bad = |_: &Tensor, _: &Tensor| Err(InterpError::Unsupported("x".into()));
        assert!(reduce_with(&x, &zero, &[1], tt(DType::S32, &[2]), &mut bad).is_err());
    }

    #[test]
    fn sort_and_argsort() {
        let nan = f64::NAN;
        let x = tf(&[6], &[3.0, nan, -1.0, 3.0, f64::NEG_INFINITY, 0.0]);
        let s = vals(&sort(&x, 0, false, x.ty().clone()).unwrap());
        assert_eq!(s[..5], [f64::NEG_INFINITY, -1.0, 0.0, 3.0, 3.0]);
        assert!(s[5].is_nan());
        let a = argsort(&x, 0, false, tt(DType::S32, &[6])).unwrap();
        // stable: the two 3.0s keep their order (0 before 3)
        assert_eq!(vals(&a), [4.0, 2.0, 5.0, 0.0, 3.0, 1.0]);
        let a = argsort(&x, 0, true, tt(DType::S32, &[6])).unwrap();
        // descending: NaN first, equal 3.0s still in input order
        assert_eq!(vals(&a), [1.0, 0.0, 3.0, 5.0, 2.0, 4.0]);
        // along axis 0 of a [2][2]: columns sorted independently
        let m = ti(DType::S32, &[2, 2], &[5, 1, 2, 7]);
        assert_eq!(vals(&sort(&m, 0, false, m.ty().clone()).unwrap()), [2.0, 1.0, 5.0, 7.0]);
        assert_eq!(vals(&sort(&m, 1, true, m.ty().clone()).unwrap()), [5.0, 1.0, 7.0, 2.0]);
    }
}

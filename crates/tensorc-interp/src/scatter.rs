//! Scatters (spec §4.7, tier 2): `indexed_add`, `indexed_put`,
//! `window_scatter_max` and `window_scatter_min`.
//!
//! Plain loops in update order: update i's window lands at the position
//! its index row names on the indexed axes and at offset 0 on the others.
//! `indexed_add` accumulates one update at a time in the result dtype
//! (integers wrap, floats round after each add); `indexed_put` keeps the last
//! write; an update with an index outside its axis is skipped (XLA's scatter
//! rule, which EXLA follows).

use tensorc_ir::{Tensor, TensorType};

use crate::InterpError;
use crate::layout::{for_each_index, strides};
use crate::value::{Lanes, decode, decode_as, encode, round_to, wrap};

pub fn indexed(
    target: &Tensor,
    indices: &Tensor,
    updates: &Tensor,
    axes: &[usize],
    add: bool,
    out: TensorType,
) -> Result<Tensor, InterpError> {
    // Nx's shorthand (indices [k], updates = one window) is the case n = 1.
    let (indices, updates) = if indices.shape().len() == 1 {
        let mut one = vec![1];
        one.extend_from_slice(updates.shape());
        let bad = || InterpError::Internal("indexed op shorthand reshape".into());
        (
            indices.reshaped(vec![1, indices.len()]).ok_or_else(bad)?,
            updates.reshaped(one).ok_or_else(bad)?,
        )
    } else {
        (indices.clone(), updates.clone())
    };
    let (indices, updates) = (&indices, &updates);
    let (ts, is, us) = (target.shape(), indices.shape(), updates.shape());
    let rest: Vec<usize> = (0..ts.len()).filter(|a| !axes.contains(a)).collect();
    let ok = is.len() == 2
        && is[1] == axes.len()
        && us.len() == rest.len() + 1
        && us[0] == is[0]
        && out.shape == ts
        && rest.iter().enumerate().all(|(m, &a)| us[m + 1] <= ts[a]);
    if !ok {
        return Err(InterpError::Internal(format!(
            "indexed op on {} with {} and {} into {out}",
            target.ty(),
            indices.ty(),
            updates.ty()
        )));
    }
    let Lanes::Int(idx) = decode(indices) else {
        return Err(InterpError::Internal(format!(
            "indices of type {}",
            indices.ty()
        )));
    };
    let d = out.dtype;
    let mut acc = decode_as(target, d);
    let upd = decode_as(updates, d);
    let (n, k) = (is[0], is[1]);
    let st = strides(ts);
    let window = &us[1..];
    let per_update: usize = window.iter().product();
    for i in 0..n {
        let row = &idx[i * k..(i + 1) * k];
        if row
            .iter()
            .zip(axes)
            .any(|(&v, &a)| v < 0 || v >= ts[a] as i128)
        {
            continue;
        }
        let base: usize = row
            .iter()
            .zip(axes)
            .map(|(&v, &a)| v as usize * st[a])
            .sum();
        for_each_index(window, |w_flat, w| {
            let pos = base + rest.iter().zip(w).map(|(&a, &o)| o * st[a]).sum::<usize>();
            let src = i * per_update + w_flat;
            match (&mut acc, &upd) {
                (Lanes::Int(a), Lanes::Int(u)) => {
                    a[pos] = if add {
                        wrap(d, a[pos] + u[src])
                    } else {
                        u[src]
                    }
                }
                (Lanes::Float(a), Lanes::Float(u)) => {
                    a[pos] = if add {
                        round_to(d, a[pos] + u[src])
                    } else {
                        u[src]
                    }
                }
                // decode_as gives both lanes the kind of `d`.
                _ => {}
            }
        });
    }
    encode(out, &acc)
}

/// `window_scatter_max`/`min` (Nx select-and-scatter, as Nx's binary
/// backend defines it): x padded with init; per window the last element
/// (row-major) that is >= (<= for min) the current pick; source values added
/// into a result that starts at init; picks in the padding are dropped.
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the op's operands and options"
)]
pub fn window_scatter(
    x: &Tensor,
    source: &Tensor,
    init: &Tensor,
    max: bool,
    window: &[usize],
    steps: &[usize],
    padding: &[(i64, i64)],
    out: TensorType,
) -> Result<Tensor, InterpError> {
    let (xs, ss) = (x.shape(), source.shape());
    let r = xs.len();
    if window.len() != r
        || steps.len() != r
        || padding.len() != r
        || ss.len() != r
        || out.shape != xs
    {
        return Err(InterpError::Internal(format!(
            "window scatter of {} into {out}",
            x.ty()
        )));
    }
    let d = out.dtype;
    let vals = decode(x);
    let pad = decode_as(init, x.dtype());
    let mut acc = match decode_as(init, d) {
        Lanes::Int(v) => Lanes::Int(vec![v[0]; out.num_elements()]),
        Lanes::Float(v) => Lanes::Float(vec![v[0]; out.num_elements()]),
    };
    let src = decode_as(source, d);
    let st = strides(xs);
    // The element of x at padded coordinates, or the pad value; with its flat index when inside.
    let at = |p: &[i64]| -> (usize, Option<usize>) {
        let mut flat = 0;
        for k in 0..r {
            let o = p[k] - padding[k].0;
            if o < 0 || o >= xs[k] as i64 {
                return (0, None);
            }
            flat += o as usize * st[k];
        }
        (flat, Some(flat))
    };
    let better = |a: usize, b_pad: bool, best: (usize, bool)| -> bool {
        // Compares candidate (x[a] or the pad value) with the current pick.
        let pick = |i: usize, is_pad: bool| -> (Option<f64>, Option<i128>) {
            match (&vals, &pad) {
                (Lanes::Float(v), Lanes::Float(p)) => {
                    (Some(if is_pad { p[0] } else { v[i] }), None)
                }
                (Lanes::Int(v), Lanes::Int(p)) => (None, Some(if is_pad { p[0] } else { v[i] })),
                _ => (None, None),
            }
        };
        match (pick(a, b_pad), pick(best.0, best.1)) {
            ((Some(c), _), (Some(b), _)) => {
                if max {
                    c >= b
                } else {
                    c <= b
                }
            }
            ((_, Some(c)), (_, Some(b))) => {
                if max {
                    c >= b
                } else {
                    c <= b
                }
            }
            _ => false,
        }
    };
    let mut o_flat = 0;
    let mut failed = false;
    for_each_index(ss, |_, o| {
        // (flat index in x, is padding) of the current pick.
        let mut best: Option<(usize, bool)> = None;
        for_each_index(window, |_, w| {
            let p: Vec<i64> = (0..r).map(|k| (o[k] * steps[k] + w[k]) as i64).collect();
            let (flat, inside) = at(&p);
            let cand = (flat, inside.is_none());
            best = match best {
                None => Some(cand),
                Some(b) if better(cand.0, cand.1, b) => Some(cand),
                keep => keep,
            };
        });
        if let Some((flat, false)) = best {
            match (&mut acc, &src) {
                (Lanes::Int(a), Lanes::Int(u)) => a[flat] = wrap(d, a[flat] + u[o_flat]),
                (Lanes::Float(a), Lanes::Float(u)) => a[flat] = round_to(d, a[flat] + u[o_flat]),
                _ => failed = true,
            }
        }
        o_flat += 1;
    });
    if failed {
        return Err(InterpError::Internal(
            "mixed lanes in window scatter".into(),
        ));
    }
    encode(out, &acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorc_ir::{DType, Scalar};

    fn ti(d: DType, shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_scalars(
            TensorType::new(d, shape.to_vec()),
            &v.iter().map(|&x| Scalar::I(x)).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn vals(t: &Tensor) -> Vec<i64> {
        t.to_scalars().iter().map(|s| s.as_f64() as i64).collect()
    }

    #[test]
    fn nx_doc_examples() {
        // Nx.indexed_add(iota({1, 2, 3}), [[0,0,0],[0,1,1],[0,0,0],[0,0,2],[0,1,2]], [1, 3, 1, -2, 5])
        let t = ti(DType::S32, &[1, 2, 3], &[0, 1, 2, 3, 4, 5]);
        let idx = ti(
            DType::S32,
            &[5, 3],
            &[0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 2, 0, 1, 2],
        );
        let u = ti(DType::S32, &[5], &[1, 3, 1, -2, 5]);
        let out = TensorType::new(DType::S32, vec![1, 2, 3]);
        assert_eq!(
            vals(&indexed(&t, &idx, &u, &[0, 1, 2], true, out.clone()).unwrap()),
            [2, 1, 0, 3, 7, 10]
        );
        // put: the last write of a repeated index wins; [0,0,0] gets 1
        assert_eq!(
            vals(&indexed(&t, &idx, &u, &[0, 1, 2], false, out).unwrap()),
            [1, 1, -2, 3, 3, 5]
        );
    }

    #[test]
    fn window_scatter_nx_doc_example() {
        // Nx.window_scatter_max docs: 4x5 input, source [[2, 6], [3, 1]], init 0, window {2, 3},
        // strides [2, 2], :valid -> 8 (= 2 + 6, both windows pick the 9) at [1][2], 3 at [2][2], 1 at [3][3]
        let t = ti(
            DType::S32,
            &[4, 5],
            &[7, 2, 5, 3, 8, 3, 8, 9, 3, 4, 1, 5, 7, 5, 6, 0, 6, 2, 10, 2],
        );
        let src = ti(DType::S32, &[2, 2], &[2, 6, 3, 1]);
        let init = ti(DType::S32, &[], &[0]);
        let out = TensorType::new(DType::S32, vec![4, 5]);
        let r = window_scatter(
            &t,
            &src,
            &init,
            true,
            &[2, 3],
            &[2, 2],
            &[(0, 0), (0, 0)],
            out,
        )
        .unwrap();
        let mut want = vec![0; 20];
        want[7] = 8;
        want[12] = 3;
        want[18] = 1;
        assert_eq!(vals(&r), want);
        // min with ties picks the last one; a pick in the padding (the pad value is init = -9) is dropped
        let x = ti(DType::S8, &[3], &[1, 1, 5]);
        let src = ti(DType::S8, &[2], &[10, 20]);
        let init = ti(DType::S8, &[], &[-9]);
        let out = TensorType::new(DType::S8, vec![3]);
        let r = window_scatter(&x, &src, &init, false, &[2], &[2], &[(0, 1)], out).unwrap();
        assert_eq!(vals(&r), [-9, 1, -9]);
    }

    #[test]
    fn windows_on_other_axes_and_skipped_indices() {
        // target [[0,0,0],[0,0,0]], indices [[1], [5]] on axis 0, updates rows [[1,2],[3,4]]:
        // row 1 gets [1, 2, 0]; index 5 is out of range and skipped.
        let t = ti(DType::S8, &[2, 3], &[0; 6]);
        let idx = ti(DType::U8, &[2, 1], &[1, 5]);
        let u = ti(DType::S8, &[2, 2], &[1, 2, 3, 4]);
        let r = indexed(
            &t,
            &idx,
            &u,
            &[0],
            true,
            TensorType::new(DType::S8, vec![2, 3]),
        )
        .unwrap();
        assert_eq!(vals(&r), [0, 0, 0, 1, 2, 0]);
    }
}

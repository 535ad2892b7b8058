//! Scatters (spec §4.7, tier 2): `indexed_add` and `indexed_put`.
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

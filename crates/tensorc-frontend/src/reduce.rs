//! Contractions and reductions: `dot`, `sum`/`product`/`reduce_max`/
//! `reduce_min`/`all`/`any`, and `argmax`/`argmin`.
//!
//! All are `linalg.generic`s with reduction iterators over a filled
//! accumulator, so operand conversion happens inside the body (no converted
//! copy of the input is materialized) and the iteration order stays
//! sequential, which `argmax`'s tie-breaking relies on.

use tensorc_ir::graph::{BinaryOp, ReduceKind};
use tensorc_ir::types::{DType, TensorType};

use crate::LowerError;
use crate::emit::{GenericOperand, elem, identity_map, tensor_ty};
use crate::lower::{Lowerer, Val};

/// The lowest value of `d` (−inf for floats), the identity of `max`.
pub(crate) fn lowest(d: DType) -> f64 {
    match d.int_range() {
        Some((lo, _)) => lo as f64,
        None => f64::NEG_INFINITY,
    }
}

/// The highest value of `d` (+inf for floats), the identity of `min`.
pub(crate) fn highest(d: DType) -> f64 {
    match d.int_range() {
        Some((_, hi)) => hi as f64,
        None => f64::INFINITY,
    }
}

impl Lowerer<'_> {
    /// A filled accumulator: the constant `v` (f64 for floats; for integers an
    /// exact i128 from `int`) splat over `t`.
    pub(crate) fn filled(&mut self, t: &TensorType, v: f64, int: Option<i128>) -> String {
        let c = match (t.dtype.is_float(), int) {
            (false, Some(i)) => self.e.int_const(t.dtype, i),
            _ => self.e.num_const(t.dtype, v),
        };
        self.e.fill(&c, t)
    }

    /// Nx `dot`: one loop per output axis (batch, free a, free b) followed by
    /// one reduction loop per contracted pair.
    #[allow(clippy::too_many_arguments, reason = "mirrors the op's six operands")]
    pub fn dot(
        &mut self,
        a: &Val,
        b: &Val,
        contract_a: &[usize],
        batch_a: &[usize],
        contract_b: &[usize],
        batch_b: &[usize],
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        if contract_a.len() != contract_b.len() || batch_a.len() != batch_b.len() {
            return Err(LowerError::Internal("dot axes do not pair up".into()));
        }
        let out_rank = ty.rank();
        let nloops = out_rank + contract_a.len();
        // Loop index of each operand axis.
        let axes_map = |rank: usize, contract: &[usize], batch: &[usize], free_start: usize| {
            let mut free = free_start;
            (0..rank)
                .map(|ax| {
                    if let Some(i) = batch.iter().position(|&x| x == ax) {
                        format!("d{i}")
                    } else if let Some(k) = contract.iter().position(|&x| x == ax) {
                        format!("d{}", out_rank + k)
                    } else {
                        free += 1;
                        format!("d{}", free - 1)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let free_a = a.ty.rank() - contract_a.len() - batch_a.len();
        let map_a = axes_map(a.ty.rank(), contract_a, batch_a, batch_a.len());
        let map_b = axes_map(b.ty.rank(), contract_b, batch_b, batch_a.len() + free_a);
        let d = ty.dtype;
        let init = self.filled(ty, 0.0, Some(0));
        // The canonical layouts become named ops, which tensorc's CPU
        // schedules (tiling, packing, vectorization) recognize. Only without
        // conversions: named ops would cast integers with their own rules.
        let nb = batch_a.len();
        let canonical = a.ty.dtype == d
            && b.ty.dtype == d
            && nb <= 1
            && a.ty.rank() == nb + 2
            && b.ty.rank() == nb + 2
            && contract_a == [nb + 1]
            && contract_b == [nb]
            && batch_a.iter().chain(batch_b).enumerate().all(|(i, &x)| x == i % nb.max(1));
        if canonical {
            let op = if nb == 0 { "linalg.matmul" } else { "linalg.batch_matmul" };
            return Ok(self.e.op(&format!(
                "{op} ins({}, {} : {}, {}) outs({init} : {}) -> {}",
                a.name,
                b.name,
                tensor_ty(&a.ty),
                tensor_ty(&b.ty),
                tensor_ty(ty),
                tensor_ty(ty)
            )));
        }
        let outs = [GenericOperand { value: init, ty: ty.clone(), map: identity_map(out_rank) }];
        let mut red = vec![false; out_rank];
        red.resize(nloops, true);
        let (da, db) = (a.ty.dtype, b.ty.dtype);
        Ok(self
            .e
            .generic(nloops, &red, &[a.operand(map_a), b.operand(map_b)], &outs, |e, s| {
                let x = e.convert(&s[0], da, d);
                let y = e.convert(&s[1], db, d);
                let m = e.binary(BinaryOp::Multiply, &x, &y, d);
                vec![e.binary(BinaryOp::Add, &s[2], &m, d)]
            })
            .remove(0))
    }

    /// `sum`/`product`/`reduce_max`/`reduce_min`/`all`/`any` of `x` over
    /// `axes`; the node type `ty` may keep the reduced axes as size 1.
    pub fn reduce(&mut self, x: &Val, kind: ReduceKind, axes: &[usize], ty: &TensorType) -> String {
        let d = ty.dtype;
        let rank = x.ty.rank();
        let kept: Vec<usize> = (0..rank).filter(|i| !axes.contains(i)).collect();
        let red_ty = TensorType::new(d, kept.iter().map(|&i| x.ty.shape[i]).collect::<Vec<_>>());
        let init = match kind {
            ReduceKind::Sum | ReduceKind::Any => self.filled(&red_ty, 0.0, Some(0)),
            ReduceKind::Product | ReduceKind::All => self.filled(&red_ty, 1.0, Some(1)),
            ReduceKind::Max => self.filled(&red_ty, lowest(d), d.int_range().map(|r| r.0)),
            ReduceKind::Min => self.filled(&red_ty, highest(d), d.int_range().map(|r| r.1)),
        };
        let out_map = kept.iter().map(|i| format!("d{i}")).collect::<Vec<_>>().join(", ");
        let outs = [GenericOperand { value: init, ty: red_ty.clone(), map: out_map }];
        let red: Vec<bool> = (0..rank).map(|i| axes.contains(&i)).collect();
        let dx = x.ty.dtype;
        let r = self
            .e
            .generic(rank, &red, &[x.operand(identity_map(rank))], &outs, |e, s| {
                let (v, acc) = (&s[0], &s[1]);
                let r = match kind {
                    ReduceKind::All | ReduceKind::Any => {
                        let t = e.truthy(v, dx);
                        let t = e.bool_to_u8(&t);
                        let op = if kind == ReduceKind::All { "arith.andi" } else { "arith.ori" };
                        e.bin(op, acc, &t, elem(d))
                    }
                    _ => {
                        let v = e.convert(v, dx, d);
                        let op = match kind {
                            ReduceKind::Sum => BinaryOp::Add,
                            ReduceKind::Product => BinaryOp::Multiply,
                            ReduceKind::Max => BinaryOp::Max,
                            _ => BinaryOp::Min,
                        };
                        e.binary(op, acc, &v, d)
                    }
                };
                vec![r]
            })
            .remove(0);
        self.reshape(&Val { name: r, ty: red_ty }, ty)
    }

    /// `argmax`/`argmin`: a generic carrying (best value, its index). A later
    /// element replaces the best when strictly better (tie_break low) or
    /// better-or-equal (high); NaN counts as better than any number.
    pub fn arg_reduce(&mut self, x: &Val, max: bool, axis: Option<usize>, high: bool, ty: &TensorType) -> String {
        let di = ty.dtype;
        let dx = x.ty.dtype;
        let rank = x.ty.rank();
        let reduced: Vec<bool> = (0..rank).map(|i| axis.is_none_or(|a| a == i)).collect();
        let kept: Vec<usize> = (0..rank).filter(|&i| !reduced[i]).collect();
        let kept_shape: Vec<usize> = kept.iter().map(|&i| x.ty.shape[i]).collect();
        let val_ty = TensorType::new(dx, kept_shape.clone());
        let idx_ty = TensorType::new(di, kept_shape);
        let start = if max { lowest(dx) } else { highest(dx) };
        let start_int = dx.int_range().map(|(lo, hi)| if max { lo } else { hi });
        let vinit = self.filled(&val_ty, start, start_int);
        let iinit = self.filled(&idx_ty, 0.0, Some(0));
        let out_map = kept.iter().map(|i| format!("d{i}")).collect::<Vec<_>>().join(", ");
        let outs = [
            GenericOperand { value: vinit, ty: val_ty, map: out_map.clone() },
            GenericOperand { value: iinit, ty: idx_ty.clone(), map: out_map },
        ];
        let (shape, strides) = (x.ty.shape.clone(), x.ty.strides());
        let r = self.e.generic(rank, &reduced, &[x.operand(identity_map(rank))], &outs, |e, s| {
            let (v, best, best_i) = (&s[0], &s[1], &s[2]);
            let idx = match axis {
                Some(k) => e.op(&format!("linalg.index {k} : index")),
                None => e.flat_index(&shape, &strides),
            };
            let i = e.index_to(&idx, di);
            let take = if dx.is_float() {
                let pred = match (max, high) {
                    (true, false) => "ogt",
                    (true, true) => "oge",
                    (false, false) => "olt",
                    (false, true) => "ole",
                };
                let better = e.cmpf(pred, v, best, dx);
                let v_nan = e.cmpf("uno", v, v, dx);
                let nan_wins = if high {
                    v_nan
                } else {
                    // The first NaN wins; later NaNs tie with it.
                    let best_ord = e.cmpf("ord", best, best, dx);
                    e.bin("arith.andi", &v_nan, &best_ord, "i1")
                };
                e.bin("arith.ori", &better, &nan_wins, "i1")
            } else {
                let s = dx.is_signed_int();
                let pred = match (max, high, s) {
                    (true, false, true) => "sgt",
                    (true, true, true) => "sge",
                    (false, false, true) => "slt",
                    (false, true, true) => "sle",
                    (true, false, false) => "ugt",
                    (true, true, false) => "uge",
                    (false, false, false) => "ult",
                    (false, true, false) => "ule",
                };
                e.cmpi(pred, v, best, dx)
            };
            let nv = e.select(&take, v, best, elem(dx));
            let ni = e.select(&take, &i, best_i, elem(di));
            vec![nv, ni]
        });
        self.reshape(&Val { name: r[1].clone(), ty: idx_ty }, ty)
    }
}

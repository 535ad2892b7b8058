//! Contraction and reductions: `dot` (spec §4.4), `sum`/`product`/
//! `reduce_max`/`reduce_min`/`all`/`any` and `argmax`/`argmin` (spec §4.5).

use super::args::describe;
use super::{CResult, FnCx};
use crate::ast::{Stmt, TypeExpr};
use crate::graph::{Op, ReduceKind};
use crate::types::{DType, TensorType, Type};

type Checked = CResult<(Op, Vec<super::ValueId>, Type)>;

impl FnCx<'_> {
    /// `dot a, contract_a, batch_a, b, contract_b, batch_b`.
    pub(crate) fn dot(&mut self, s: &Stmt) -> Checked {
        let args = self.args(s, &[], 6, 6)?;
        let p = &args.pos;
        let a = self.operand(p[0]);
        let b = self.operand(p[3]);
        let (ids, dtype) = self.resolve_group(&[a?, b?])?;
        let (ta, tb) = (self.tensor(ids[0]), self.tensor(ids[1]));
        let ca = self.axes(p[1], ta.rank());
        let ba = self.axes(p[2], ta.rank());
        let cb = self.axes(p[4], tb.rank());
        let bb = self.axes(p[5], tb.rank());
        let (ca, ba, cb, bb) = (ca?, ba?, cb?, bb?);
        let (na, nb) = (describe(p[0]), describe(p[3]));

        if ca.len() != cb.len() {
            return Err(self.err(
                p[4].span,
                format!("'dot' pairs contract axes by position, but {na} lists {} and {nb} lists {}", ca.len(), cb.len()),
            ));
        }
        if ba.len() != bb.len() {
            return Err(self.err(
                p[5].span,
                format!("'dot' needs the same number of batch axes on both sides, got {} and {}", ba.len(), bb.len()),
            ));
        }
        for (axes, e) in [(&ba, p[2]), (&bb, p[5])] {
            if axes.iter().enumerate().any(|(i, &ax)| i != ax) {
                return Err(self.err(e.span, "batch axes must be the leading axes 0..n-1, in order"));
            }
        }
        for (c, bt, e) in [(&ca, &ba, p[1]), (&cb, &bb, p[4])] {
            if let Some(ax) = c.iter().find(|ax| bt.contains(ax)) {
                return Err(self.err(e.span, format!("axis {ax} cannot be both a contract and a batch axis")));
            }
        }
        for (i, (&x, &y)) in ca.iter().zip(&cb).enumerate() {
            if ta.shape[x] != tb.shape[y] {
                return Err(self.err(
                    p[1].span.to(p[4].span),
                    format!(
                        "contract axis pair {i}: axis {x} of {na} ({ta}) has size {} but axis {y} of {nb} ({tb}) has size {}",
                        ta.shape[x], tb.shape[y]
                    ),
                ));
            }
        }
        for (&x, &y) in ba.iter().zip(&bb) {
            if ta.shape[x] != tb.shape[y] {
                return Err(self.err(
                    p[2].span.to(p[5].span),
                    format!(
                        "batch axis {x} has size {} in {na} ({ta}) but {} in {nb} ({tb})",
                        ta.shape[x], tb.shape[y]
                    ),
                ));
            }
        }
        let mut shape: Vec<usize> = ba.iter().map(|&x| ta.shape[x]).collect();
        shape.extend((0..ta.rank()).filter(|x| !ca.contains(x) && !ba.contains(x)).map(|x| ta.shape[x]));
        shape.extend((0..tb.rank()).filter(|y| !cb.contains(y) && !bb.contains(y)).map(|y| tb.shape[y]));
        Ok((
            Op::Dot { contract_a: ca, batch_a: ba, contract_b: cb, batch_b: bb },
            ids,
            Type::Tensor(TensorType::new(dtype, shape)),
        ))
    }

    /// `sum x, axes: [..] | nil, keep_axes: bool` and friends.
    pub(crate) fn reduction(&mut self, s: &Stmt, kind: ReduceKind) -> Checked {
        let a = self.args(s, &["axes", "keep_axes"], 1, 1)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let axes = self.axes_or_nil(a.kw("axes"), t.rank());
        let keep = self.bool_opt(a.kw("keep_axes"), false);
        let (axes, keep_axes) = (axes?, keep?);
        let axes = axes.unwrap_or_else(|| (0..t.rank()).collect());
        let dtype = match kind {
            ReduceKind::Sum | ReduceKind::Product => t.dtype.to_aggregate(),
            ReduceKind::Max | ReduceKind::Min => t.dtype,
            ReduceKind::All | ReduceKind::Any => DType::U8,
        };
        let shape = reduced_shape(&t.shape, &axes, keep_axes);
        Ok((Op::Reduce { kind, axes, keep_axes }, vec![x], Type::Tensor(TensorType::new(dtype, shape))))
    }

    /// `argmax x, axis: k | nil, tie_break: :low | :high, keep_axis: bool`;
    /// the result is s32 unless an integer type is annotated.
    pub(crate) fn arg_reduce(&mut self, s: &Stmt, max: bool) -> Checked {
        let a = self.args(s, &["axis", "tie_break", "keep_axis"], 1, 1)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let axis = self.axis_or_nil(a.kw("axis"), t.rank(), None);
        let tie = self.atom_opt(a.kw("tie_break"), &["low", "high"], "low");
        let keep = self.bool_opt(a.kw("keep_axis"), false);
        let (axis, tie, keep_axis) = (axis?, tie?, keep?);
        let shape = match axis {
            Some(ax) => reduced_shape(&t.shape, &[ax], keep_axis),
            None if keep_axis => {
                let span = a.kw("keep_axis").map_or(s.op.span, |e| e.span);
                return Err(self.err(span, "'keep_axis: true' needs an axis (with `axis: nil` the result is a scalar)"));
            }
            None => Vec::new(),
        };
        let dtype = match &s.ty {
            Some(TypeExpr { ty: Type::Tensor(ann), span }) => {
                if ann.dtype.is_float() {
                    return Err(self.err(*span, format!("'{}' produces integer indices, not {}", s.op.name, ann.dtype)));
                }
                ann.dtype
            }
            _ => DType::S32,
        };
        Ok((
            Op::ArgReduce { max, axis, tie_break_high: tie == "high", keep_axis },
            vec![x],
            Type::Tensor(TensorType::new(dtype, shape)),
        ))
    }
}

/// The shape left after reducing `axes`: removed, or kept as 1.
pub(crate) fn reduced_shape(shape: &[usize], axes: &[usize], keep: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| {
            if !axes.contains(&i) {
                Some(d)
            } else if keep {
                Some(1)
            } else {
                None
            }
        })
        .collect()
}

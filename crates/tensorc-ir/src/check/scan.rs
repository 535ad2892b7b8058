//! Scans and sorting (spec §4.5): `cumulative_sum`, `cumulative_product`,
//! `cumulative_max`, `cumulative_min`, `sort`, `argsort` and `top_k`.
//!
//! Options and defaults follow Nx (`axis: 0`, `reverse: false`,
//! `direction: :asc`, `k: 1`). Cumulative ops keep the operand's type (Nx
//! scans with `Nx.add`/`Nx.multiply`/…, whose result type for two operands of
//! one type is that type); `argsort` gives `s32` unless an integer type is
//! annotated; `top_k` gives the tuple `{values, s32 indices}`.

use super::{CResult, FnCx};
use crate::ast::{Stmt, TypeExpr};
use crate::graph::{Op, ReduceKind, ValueId};
use crate::types::{DType, TensorType, Type};

type Checked = CResult<(Op, Vec<ValueId>, Type)>;

/// The cumulative ops by name, read both ways (checker and printer).
const CUMULATIVE: &[(&str, ReduceKind)] = &[
    ("cumulative_sum", ReduceKind::Sum),
    ("cumulative_product", ReduceKind::Product),
    ("cumulative_max", ReduceKind::Max),
    ("cumulative_min", ReduceKind::Min),
];

pub(crate) fn cumulative_by_name(name: &str) -> Option<ReduceKind> {
    CUMULATIVE.iter().find(|(n, _)| *n == name).map(|&(_, k)| k)
}

/// The spelling of a cumulative op; `ReduceKind`s without one (all/any)
/// never reach a `Cumulative` node, the fallback only keeps this total.
pub(crate) fn cumulative_name(kind: ReduceKind) -> &'static str {
    CUMULATIVE
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("cumulative_sum", |&(n, _)| n)
}

impl FnCx<'_> {
    /// `cumulative_sum x, axis: 0, reverse: false` and friends.
    pub(crate) fn cumulative(&mut self, s: &Stmt, kind: ReduceKind) -> Checked {
        let a = self.args(s, &["axis", "reverse"], 1, 1)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let axis = self.required_axis(a.kw("axis"), &t, s)?;
        let reverse = self.bool_opt(a.kw("reverse"), false)?;
        Ok((
            Op::Cumulative {
                kind,
                axis,
                reverse,
            },
            vec![x],
            Type::Tensor(t),
        ))
    }

    /// `sort x, axis: 0, direction: :asc` (`stable:` is accepted for Nx
    /// compatibility; the sort is always stable) and `argsort` likewise.
    pub(crate) fn sort(&mut self, s: &Stmt, arg: bool) -> Checked {
        let a = self.args(s, &["axis", "direction", "stable"], 1, 1)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let axis = self.required_axis(a.kw("axis"), &t, s);
        let dir = self.atom_opt(a.kw("direction"), &["asc", "desc"], "asc");
        let stable = self.bool_opt(a.kw("stable"), false);
        let (axis, dir, _) = (axis?, dir?, stable?);
        let descending = dir == "desc";
        if !arg {
            return Ok((Op::Sort { axis, descending }, vec![x], Type::Tensor(t)));
        }
        let dtype = self.index_dtype(s)?;
        Ok((
            Op::Argsort { axis, descending },
            vec![x],
            Type::Tensor(t.with_dtype(dtype)),
        ))
    }

    /// `top_k x, k: 1` → `{values, indices}` over the last axis.
    pub(crate) fn top_k(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["k"], 1, 1)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let k = match a.kw("k") {
            Some(e) => (self.int(e)?, e.span),
            None => (1, s.op.span),
        };
        if k.0 < 1 {
            return Err(self.err(k.1, format!("'top_k' needs k of at least 1, got {}", k.0)));
        }
        let Some(&last) = t.shape.last() else {
            return Err(self.err(
                a.pos[0].span,
                format!("'top_k' needs a tensor of rank 1 or more, got {t}"),
            ));
        };
        if k.0 > last as i128 {
            return Err(self.err(
                k.1,
                format!(
                    "'top_k' k = {} is larger than the last axis of {t} (size {last})",
                    k.0
                ),
            ));
        }
        let mut shape = t.shape.clone();
        *shape.last_mut().expect("rank checked above") = k.0 as usize;
        let values = TensorType::new(t.dtype, shape.clone());
        let indices = TensorType::new(DType::S32, shape);
        Ok((
            Op::TopK { k: k.0 as usize },
            vec![x],
            Type::Tuple(vec![Type::Tensor(values), Type::Tensor(indices)]),
        ))
    }

    /// `axis: k` (default 0, not nil) normalized against `t`'s rank; a scalar
    /// has no axis to scan or sort, which is reported at the op.
    pub(crate) fn required_axis(
        &mut self,
        e: Option<&crate::ast::Expr>,
        t: &TensorType,
        s: &Stmt,
    ) -> CResult<usize> {
        let (v, span) = match e {
            Some(e) => (self.int(e)?, e.span),
            None => (0, s.op.span),
        };
        if t.rank() == 0 {
            return Err(self.err(
                span,
                format!("'{}' needs a tensor of rank 1 or more, got {t}", s.op.name),
            ));
        }
        self.axis(v, t.rank(), span)
    }

    /// The integer dtype of an index-producing op: the annotation's, or s32.
    fn index_dtype(&mut self, s: &Stmt) -> CResult<DType> {
        match &s.ty {
            Some(TypeExpr {
                ty: Type::Tensor(ann),
                span,
            }) if ann.dtype.is_float() => Err(self.err(
                *span,
                format!(
                    "'{}' produces integer indices, not {}",
                    s.op.name, ann.dtype
                ),
            )),
            Some(TypeExpr {
                ty: Type::Tensor(ann),
                ..
            }) => Ok(ann.dtype),
            _ => Ok(DType::S32),
        }
    }
}

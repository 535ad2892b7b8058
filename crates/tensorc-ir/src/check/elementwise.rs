//! Element-wise ops (spec §4.2) and the weak-literal rule (§2.1).
//!
//! Operands stay unbroadcast and unconverted in the graph; what this file
//! decides is each literal operand's dtype, the merged compute dtype and the
//! broadcast result shape.

use super::args::describe;
use super::ops::{binary_int_only, unary_int_only, unary_is_math};
use super::{CResult, FnCx, literal_of};
use crate::ast::{Expr, Stmt};
use crate::graph::{BinaryOp, Literal, Op, UnaryOp, ValueId};
use crate::span::Span;
use crate::types::{DType, TensorType, Type, broadcast_shapes, narrowest_int};

/// An operand before weak-literal resolution.
#[derive(Clone, Copy)]
pub(crate) enum Operand {
    Value(ValueId),
    Lit(Literal, Span),
}

type Checked = CResult<(Op, Vec<ValueId>, Type)>;

impl FnCx<'_> {
    /// A tensor operand: a tensor-typed name or a number literal.
    pub(crate) fn operand(&mut self, e: &Expr) -> CResult<Operand> {
        match literal_of(e) {
            Some(lit) => Ok(Operand::Lit(lit, e.span)),
            None => self.tensor_operand(e).map(Operand::Value),
        }
    }

    /// Resolve operands that promote together (spec §2.1): literals take the
    /// weak type given by the merged tensor dtypes, then everything merges.
    /// Returns the operand values (literals materialized) and the merged dtype.
    pub(crate) fn resolve_group(&mut self, operands: &[Operand]) -> CResult<(Vec<ValueId>, DType)> {
        let tensor_dtype = operands
            .iter()
            .filter_map(|o| match o {
                Operand::Value(id) => Some(self.tensor(*id).dtype),
                Operand::Lit(..) => None,
            })
            .reduce(DType::merge);
        let float_group = operands.iter().any(|o| matches!(o, Operand::Lit(Literal::Float(_), _)));
        let mut ids = Vec::new();
        let mut merged: Option<DType> = None;
        for o in operands {
            let (id, dtype) = match *o {
                Operand::Value(id) => (id, self.tensor(id).dtype),
                Operand::Lit(lit, span) => {
                    let dtype = self.weak_dtype(lit, tensor_dtype, float_group, span)?;
                    (self.literal_node(lit, dtype, span), dtype)
                }
            };
            ids.push(id);
            merged = Some(merged.map_or(dtype, |m| DType::merge(m, dtype)));
        }
        Ok((ids, merged.unwrap_or(DType::S32)))
    }

    /// Resolve one operand on its own (no group to promote with).
    pub(crate) fn resolve_single(&mut self, e: &Expr) -> CResult<ValueId> {
        let o = self.operand(e)?;
        Ok(self.resolve_group(&[o])?.0[0])
    }

    fn weak_dtype(&mut self, lit: Literal, tensor: Option<DType>, float_group: bool, span: Span) -> CResult<DType> {
        match (lit, tensor) {
            (_, Some(t)) if t.is_float() => Ok(t),
            (Literal::Float(_), Some(_)) => Ok(DType::F32),
            (Literal::Int(v), Some(t)) => match narrowest_int(v, t.is_unsigned_int()) {
                Some(d) => Ok(d),
                None => Err(self.err(
                    span,
                    format!("literal {v} does not fit any integer type that can be combined with {t}"),
                )),
            },
            (_, None) => self.default_literal_dtype(lit, float_group, span),
        }
    }

    /// The broadcast shape of several values; the error names the first
    /// incompatible pair.
    pub(crate) fn broadcast_all(&mut self, op: &str, ids: &[ValueId], span: Span) -> CResult<Vec<usize>> {
        let mut shape: Vec<usize> = Vec::new();
        for (i, &a) in ids.iter().enumerate() {
            let ta = self.tensor(a);
            for &b in &ids[..i] {
                let tb = self.tensor(b);
                if broadcast_shapes(&tb.shape, &ta.shape).is_none() {
                    return Err(self.err(span, format!("incompatible shapes for '{op}': {tb} and {ta} do not broadcast")));
                }
            }
            // Pairwise compatibility implies compatibility with the running shape.
            shape = broadcast_shapes(&shape, &ta.shape).unwrap_or_default();
        }
        Ok(shape)
    }

    pub(crate) fn unary(&mut self, s: &Stmt, op: UnaryOp) -> Checked {
        let a = self.args(s, &[], 1, 1)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        if unary_int_only(op) && t.dtype.is_float() {
            return Err(self.err(a.pos[0].span, format!("'{}' expects an integer operand, got {t}", s.op.name)));
        }
        let dtype = match op {
            UnaryOp::IsNan | UnaryOp::IsInfinity | UnaryOp::LogicalNot => DType::U8,
            _ if unary_is_math(op) => t.dtype.to_float(),
            _ => t.dtype,
        };
        Ok((Op::Unary(op), vec![x], Type::Tensor(t.with_dtype(dtype))))
    }

    pub(crate) fn binary(&mut self, s: &Stmt, op: BinaryOp) -> Checked {
        let a = self.args(s, &[], 2, 2)?;
        let x = self.operand(a.pos[0]);
        let y = self.operand(a.pos[1]);
        let (x, y) = (x?, y?);
        let (ids, merged) = self.resolve_group(&[x, y])?;
        if binary_int_only(op) && merged.is_float() {
            let (tx, ty) = (self.tensor(ids[0]), self.tensor(ids[1]));
            return Err(self.err(
                s.op.span,
                format!("'{}' expects integer operands, got {tx} and {ty}", s.op.name),
            ));
        }
        let shape = self.broadcast_all(&s.op.name, &ids, s.op.span)?;
        let compute = match op {
            BinaryOp::Divide | BinaryOp::Atan2 => merged.to_float(),
            _ => merged,
        };
        let dtype = if op.is_predicate() { DType::U8 } else { compute };
        Ok((Op::Binary { op, compute }, ids, Type::Tensor(TensorType::new(dtype, shape))))
    }

    pub(crate) fn select(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 3, 3)?;
        let pred = self.resolve_single(a.pos[0]);
        let t = self.operand(a.pos[1]);
        let f = self.operand(a.pos[2]);
        let (pred, t, f) = (pred?, t?, f?);
        let (branches, compute) = self.resolve_group(&[t, f])?;
        let ids = vec![pred, branches[0], branches[1]];
        let shape = self.broadcast_all("select", &ids, s.op.span)?;
        Ok((Op::Select { compute }, ids, Type::Tensor(TensorType::new(compute, shape))))
    }

    pub(crate) fn clip(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 3, 3)?;
        let mut ops = Vec::new();
        for e in &a.pos {
            ops.push(self.operand(e));
        }
        let ops: Vec<Operand> = ops.into_iter().collect::<CResult<_>>()?;
        let (ids, compute) = self.resolve_group(&ops)?;
        let shape = self.broadcast_all("clip", &ids, s.op.span)?;
        Ok((Op::Clip { compute }, ids, Type::Tensor(TensorType::new(compute, shape))))
    }

    pub(crate) fn as_type(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 1, 1)?;
        let x = self.resolve_single(a.pos[0]);
        let target = self.required_annotation(s);
        let (x, target) = (x?, target?);
        let t = self.tensor(x);
        if t.shape != target.shape {
            return Err(self.err(
                s.ty.as_ref().map_or(s.op.span, |t| t.span),
                format!("'as_type' converts the dtype only: operand is {t}, annotation is {target}"),
            ));
        }
        Ok((Op::AsType, vec![x], Type::Tensor(target)))
    }

    pub(crate) fn bitcast(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 1, 1)?;
        if literal_of(a.pos[0]).is_some() {
            return Err(self.err(a.pos[0].span, format!("'bitcast' expects a tensor name, found {}", describe(a.pos[0]))));
        }
        let x = self.tensor_operand(a.pos[0]);
        let target = self.required_annotation(s);
        let (x, target) = (x?, target?);
        let t = self.tensor(x);
        let span = s.ty.as_ref().map_or(s.op.span, |t| t.span);
        if t.shape != target.shape {
            return Err(self.err(span, format!("'bitcast' keeps the shape: operand is {t}, annotation is {target}")));
        }
        if t.dtype.bits() != target.dtype.bits() {
            return Err(self.err(
                span,
                format!(
                    "'bitcast' from {} to {} changes the element width ({} vs {} bits)",
                    t.dtype,
                    target.dtype,
                    t.dtype.bits(),
                    target.dtype.bits()
                ),
            ));
        }
        Ok((Op::Bitcast, vec![x], Type::Tensor(target)))
    }
}

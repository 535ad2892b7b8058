//! Creation ops (spec §4.1: `constant`, `tensor`, `iota`, `eye`) and shape
//! and data movement ops (§4.3: `reshape`, `squeeze`, `broadcast`,
//! `transpose`, `slice`, `pad`, `reverse`, `concatenate`, `stack`).
//!
//! These ops either take their type from the annotation or compute a new
//! shape from integer options; sizes are computed in i128 so that absurd
//! options give "too large" instead of overflowing.

use super::args::describe;
use super::{CResult, Failed, FnCx, literal_of};
use crate::ast::{Expr, ExprKind, Stmt};
use crate::graph::{Literal, Op, ValueId};
use crate::span::Span;
use crate::types::{DType, TensorType, Type};

type Checked = CResult<(Op, Vec<ValueId>, Type)>;

impl FnCx<'_> {
    /// `c = constant 2.5  f32[3][3]`: a splat of one literal.
    pub(crate) fn constant(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 1, 1)?;
        let ty = self.required_annotation(s)?;
        let Some(lit) = literal_of(a.pos[0]) else {
            return Err(self.err(a.pos[0].span, format!("'constant' expects a number, found {}", describe(a.pos[0]))));
        };
        self.check_fits(lit, ty.dtype, a.pos[0].span)?;
        Ok((Op::Constant(lit), Vec::new(), Type::Tensor(ty)))
    }

    /// `t = tensor [[1, 2], [3, 4]]  s32[2][2]`: nested lists in row-major
    /// order that must match the annotated shape.
    pub(crate) fn tensor_literal(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 1, 1)?;
        let ty = self.required_annotation(s)?;
        let mut data = Vec::new();
        self.tensor_data(a.pos[0], &ty, 0, &mut data)?;
        Ok((Op::Tensor(data), Vec::new(), Type::Tensor(ty)))
    }

    fn tensor_data(&mut self, e: &Expr, ty: &TensorType, depth: usize, out: &mut Vec<Literal>) -> CResult<()> {
        if depth == ty.rank() {
            let Some(lit) = literal_of(e) else {
                return Err(self.err(e.span, format!("expected a number in the tensor data, found {}", describe(e))));
            };
            self.check_fits(lit, ty.dtype, e.span)?;
            out.push(lit);
            return Ok(());
        }
        let ExprKind::List(items) = &e.kind else {
            return Err(self.err(
                e.span,
                format!("tensor data does not match {ty}: expected a list of {} at depth {depth}, found {}", ty.shape[depth], describe(e)),
            ));
        };
        if items.len() != ty.shape[depth] {
            return Err(self.err(
                e.span,
                format!(
                    "tensor data does not match {ty}: expected {} elements at depth {depth}, found {}",
                    ty.shape[depth],
                    items.len()
                ),
            ));
        }
        let mut failed = false;
        for i in items {
            if self.tensor_data(i, ty, depth + 1, out).is_err() {
                failed = true;
            }
        }
        if failed { Err(Failed) } else { Ok(()) }
    }

    /// `i = iota nil  s32[2][3]` or `iota 1  f32[2][3]`.
    pub(crate) fn iota(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 0, 1)?;
        let ty = self.required_annotation(s)?;
        let axis = self.axis_or_nil(a.pos.first().copied(), ty.rank(), None)?;
        Ok((Op::Iota(axis), Vec::new(), Type::Tensor(ty)))
    }

    /// `e = eye  f32[3][3]` (batched over leading axes).
    pub(crate) fn eye(&mut self, s: &Stmt) -> Checked {
        self.args(s, &[], 0, 0)?;
        let ty = self.required_annotation(s)?;
        if ty.rank() < 2 {
            let span = s.ty.as_ref().map_or(s.op.span, |t| t.span);
            return Err(self.err(span, format!("'eye' needs a type of rank 2 or more, got {ty}")));
        }
        Ok((Op::Eye, Vec::new(), Type::Tensor(ty)))
    }

    /// `r = reshape x  f32[6][4]`: same dtype and element count.
    pub(crate) fn reshape(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 1, 1)?;
        let x = self.resolve_single(a.pos[0]);
        let ty = self.required_annotation(s);
        let (x, ty) = (x?, ty?);
        let t = self.tensor(x);
        let span = s.ty.as_ref().map_or(s.op.span, |t| t.span);
        if t.dtype != ty.dtype {
            return Err(self.err(span, format!("'reshape' keeps the dtype: operand is {t}, annotation is {ty}")));
        }
        let (n, m) = (t.num_elements(), ty.num_elements());
        if n != m {
            return Err(self.err(span, format!("cannot reshape {t} ({n} elements) to {ty} ({m} elements)")));
        }
        Ok((Op::Reshape, vec![x], Type::Tensor(ty)))
    }

    /// `squeeze x, [0, 2]`; without axes, every size-1 axis.
    pub(crate) fn squeeze(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 1, 2)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let mut axes = match a.pos.get(1) {
            Some(e) => {
                let axes = self.axes(e, t.rank())?;
                for &ax in &axes {
                    if t.shape[ax] != 1 {
                        return Err(self.err(
                            e.span,
                            format!("cannot squeeze axis {ax} of {t}: its size is {}, not 1", t.shape[ax]),
                        ));
                    }
                }
                axes
            }
            None => (0..t.rank()).filter(|&i| t.shape[i] == 1).collect(),
        };
        axes.sort_unstable();
        let shape = (0..t.rank()).filter(|i| !axes.contains(i)).map(|i| t.shape[i]).collect::<Vec<_>>();
        Ok((Op::Squeeze { axes }, vec![x], Type::Tensor(TensorType::new(t.dtype, shape))))
    }

    /// `broadcast x, {2, 3, 4}, [1, 2]`: `axes[i]` is the output axis of
    /// input axis i (default: aligned at the end).
    pub(crate) fn broadcast(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 2, 3)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let mut shape = Vec::new();
        for (d, span) in self.int_list(a.pos[1], true)? {
            shape.push(self.dim(d, span)?);
        }
        let out = TensorType::new(t.dtype, shape);
        self.check_size(&Type::Tensor(out.clone()), a.pos[1].span)?;
        if out.rank() < t.rank() {
            return Err(self.err(a.pos[1].span, format!("cannot broadcast {t} to the lower-rank shape {out}")));
        }
        let axes = match a.pos.get(2) {
            Some(e) => {
                let axes = self.axes(e, out.rank())?;
                if axes.len() != t.rank() {
                    return Err(self.err(
                        e.span,
                        format!("'broadcast' needs one axis per input axis: {t} has rank {}, got {}", t.rank(), axes.len()),
                    ));
                }
                if axes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(self.err(e.span, "broadcast axes must be increasing"));
                }
                axes
            }
            None => (out.rank() - t.rank()..out.rank()).collect(),
        };
        for (i, &ax) in axes.iter().enumerate() {
            if t.shape[i] != 1 && t.shape[i] != out.shape[ax] {
                let span = a.pos.get(2).map_or(a.pos[1].span, |e| e.span);
                return Err(self.err(
                    span,
                    format!(
                        "cannot broadcast {t} to {out}: input axis {i} has size {} but output axis {ax} has size {}",
                        t.shape[i], out.shape[ax]
                    ),
                ));
            }
        }
        Ok((Op::Broadcast { axes }, vec![x], Type::Tensor(out)))
    }

    /// `transpose x, [1, 0]` (default: reverse the axes).
    pub(crate) fn transpose(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 1, 2)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let perm = match a.pos.get(1) {
            Some(e) => {
                let perm = self.axes(e, t.rank())?;
                if perm.len() != t.rank() {
                    return Err(self.err(
                        e.span,
                        format!("'transpose' needs a permutation of all {} axes of {t}, got {}", t.rank(), perm.len()),
                    ));
                }
                perm
            }
            None => (0..t.rank()).rev().collect(),
        };
        let shape = perm.iter().map(|&p| t.shape[p]).collect::<Vec<_>>();
        Ok((Op::Transpose { perm }, vec![x], Type::Tensor(TensorType::new(t.dtype, shape))))
    }

    /// `slice x, starts, lengths, strides`: starts clamp into bounds, a length
    /// larger than its dimension is an error.
    pub(crate) fn slice(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["strides"], 3, 4)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let strides_e = match (a.pos.get(3), a.kw("strides")) {
            (Some(_), Some(k)) => return Err(self.err(k.span, "strides are given twice")),
            (p, k) => p.copied().or(k),
        };
        if let ExprKind::List(items) = &a.pos[1].kind
            && let Some(n) = items.iter().find(|i| matches!(i.kind, ExprKind::Name(_)))
        {
            let _ = n;
            return self.dynamic_slice(s, x);
        }
        let starts = self.int_list(a.pos[1], false)?;
        let lengths = self.int_list(a.pos[2], false)?;
        let strides = match strides_e {
            Some(e) => self.int_list(e, false)?,
            None => vec![(1, Span::default()); t.rank()],
        };
        for (list, e, what) in [(&starts, a.pos[1], "start indices"), (&lengths, a.pos[2], "lengths")] {
            if list.len() != t.rank() {
                return Err(self.err(e.span, format!("'slice' needs {} {what} for {t}, got {}", t.rank(), list.len())));
            }
        }
        if strides.len() != t.rank() {
            let span = strides_e.map_or(s.op.span, |e| e.span);
            return Err(self.err(span, format!("'slice' needs {} strides for {t}, got {}", t.rank(), strides.len())));
        }
        let (mut st, mut ln, mut sd, mut shape) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..t.rank() {
            let dim = t.shape[i] as i128;
            let (len, lspan) = lengths[i];
            if len < 0 {
                return Err(self.err(lspan, format!("slice length {len} is negative")));
            }
            if len > dim {
                return Err(self.err(lspan, format!("slice length {len} is larger than axis {i} of {t} (size {dim})")));
            }
            let (stride, sspan) = strides[i];
            if stride < 1 {
                return Err(self.err(sspan, format!("slice stride {stride} must be at least 1")));
            }
            let start = starts[i].0.clamp(0, dim - len);
            st.push(start as usize);
            ln.push(len as usize);
            sd.push(usize::try_from(stride).unwrap_or(usize::MAX));
            shape.push(if len == 0 { 0 } else { ((len - 1) / stride + 1) as usize });
        }
        Ok((
            Op::Slice { starts: st, lengths: ln, strides: sd },
            vec![x],
            Type::Tensor(TensorType::new(t.dtype, shape)),
        ))
    }

    /// `pad x, value, [{low, high, interior}, ..]`. The result keeps x's
    /// dtype; a literal value must fit it, a tensor value must not promote it.
    pub(crate) fn pad(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 3, 3)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let ve = a.pos[1];
        let v = match literal_of(ve) {
            Some(lit) => {
                self.check_fits(lit, t.dtype, ve.span)?;
                self.literal_node(lit, t.dtype, ve.span)
            }
            None => {
                let v = self.tensor_operand(ve)?;
                let tv = self.tensor(v);
                if tv.rank() != 0 {
                    return Err(self.err(ve.span, format!("the pad value must be a scalar, got {tv}")));
                }
                if DType::merge(t.dtype, tv.dtype) != t.dtype {
                    return Err(self.err(
                        ve.span,
                        format!("pad value of type {tv} would change the result type of {t}; convert it with as_type"),
                    ));
                }
                v
            }
        };
        let ce = a.pos[2];
        let ExprKind::List(items) = &ce.kind else {
            return Err(self.err(ce.span, format!("expected a list of {{low, high, interior}} tuples, found {}", describe(ce))));
        };
        if items.len() != t.rank() {
            return Err(self.err(ce.span, format!("'pad' needs one {{low, high, interior}} per axis of {t}, got {}", items.len())));
        }
        let mut config = Vec::new();
        let mut shape = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let vals = self.int_list(item, true)?;
            if vals.len() != 3 {
                return Err(self.err(item.span, "expected {low, high, interior}"));
            }
            let (lo, hi, interior) = (vals[0].0, vals[1].0, vals[2].0);
            if interior < 0 {
                return Err(self.err(vals[2].1, format!("interior padding {interior} is negative")));
            }
            let d = t.shape[i] as i128;
            let Some(n) = interior.checked_mul((d - 1).max(0)).and_then(|p| p.checked_add(d)).and_then(|p| p.checked_add(lo)).and_then(|p| p.checked_add(hi))
            else {
                return Err(self.err(item.span, "padding is too large"));
            };
            if n < 0 {
                return Err(self.err(item.span, format!("padding makes axis {i} of {t} negative ({n})")));
            }
            let (Ok(lo), Ok(hi), Ok(interior), Ok(n)) =
                (i64::try_from(lo), i64::try_from(hi), i64::try_from(interior), usize::try_from(n))
            else {
                return Err(self.err(item.span, "padding is too large"));
            };
            config.push((lo, hi, interior));
            shape.push(n);
        }
        Ok((Op::Pad { config }, vec![x, v], Type::Tensor(TensorType::new(t.dtype, shape))))
    }

    /// `reverse x, [0]` (default: every axis).
    pub(crate) fn reverse(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 1, 2)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let mut axes = match a.pos.get(1) {
            Some(e) => self.axes(e, t.rank())?,
            None => (0..t.rank()).collect(),
        };
        axes.sort_unstable();
        Ok((Op::Reverse { axes }, vec![x], Type::Tensor(t)))
    }

    /// The operands of `concatenate`/`stack`: a non-empty list, types merged.
    fn tensor_list(&mut self, s: &Stmt, e: &Expr) -> CResult<(Vec<ValueId>, DType)> {
        let ExprKind::List(items) = &e.kind else {
            return Err(self.err(e.span, format!("'{}' expects a list of tensors, found {}", s.op.name, describe(e))));
        };
        if items.is_empty() {
            return Err(self.err(e.span, format!("'{}' needs at least one tensor", s.op.name)));
        }
        let mut ops = Vec::new();
        let mut failed = false;
        for i in items {
            match self.operand(i) {
                Ok(o) => ops.push(o),
                Err(Failed) => failed = true,
            }
        }
        if failed {
            return Err(Failed);
        }
        self.resolve_group(&ops)
    }

    /// `concatenate [a, b], axis: 0`.
    pub(crate) fn concatenate(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["axis"], 1, 1)?;
        let (ids, dtype) = self.tensor_list(s, a.pos[0])?;
        let first = self.tensor(ids[0]);
        if first.rank() == 0 {
            return Err(self.err(a.pos[0].span, "'concatenate' needs tensors of rank 1 or more; use 'stack' for scalars"));
        }
        let axis = self.axis_or_nil(a.kw("axis"), first.rank(), Some(0))?.unwrap_or(0);
        let mut shape = first.shape.clone();
        for &id in &ids[1..] {
            let t = self.tensor(id);
            let compatible = t.rank() == first.rank()
                && (0..t.rank()).all(|i| i == axis || t.shape[i] == first.shape[i]);
            if !compatible {
                return Err(self.err(
                    a.pos[0].span,
                    format!("cannot concatenate {first} and {t} along axis {axis}: the other axes must match"),
                ));
            }
            shape[axis] = match shape[axis].checked_add(t.shape[axis]) {
                Some(n) => n,
                None => return Err(self.err(a.pos[0].span, "concatenated tensor is too large")),
            };
        }
        Ok((Op::Concatenate { axis }, ids, Type::Tensor(TensorType::new(dtype, shape))))
    }

    /// `stack [a, b], axis: 0`: equal shapes, joined on a new axis.
    pub(crate) fn stack(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["axis"], 1, 1)?;
        let (ids, dtype) = self.tensor_list(s, a.pos[0])?;
        let first = self.tensor(ids[0]);
        for &id in &ids[1..] {
            let t = self.tensor(id);
            if t.shape != first.shape {
                return Err(self.err(a.pos[0].span, format!("cannot stack {first} and {t}: shapes must be equal")));
            }
        }
        let axis = self.axis_or_nil(a.kw("axis"), first.rank() + 1, Some(0))?.unwrap_or(0);
        let mut shape = first.shape.clone();
        shape.insert(axis, ids.len());
        Ok((Op::Stack { axis }, ids, Type::Tensor(TensorType::new(dtype, shape))))
    }

    /// A dimension written as an option (non-negative).
    fn dim(&mut self, d: i128, span: Span) -> CResult<usize> {
        match usize::try_from(d) {
            Ok(d) => Ok(d),
            Err(_) if d < 0 => Err(self.err(span, format!("dimension {d} is negative"))),
            Err(_) => Err(self.err(span, format!("dimension {d} is too large"))),
        }
    }
}

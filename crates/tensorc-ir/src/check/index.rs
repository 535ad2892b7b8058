//! Data-dependent indexing (spec §4.3, §4.7): `take`, `take_along_axis`,
//! `gather`, `put_slice`, and `slice`/`put_slice` with tensor start indices.
//!
//! Shapes and option rules follow Nx (`Nx.Shape.take`, `take_along_axis`,
//! `gather`, `put_slice`): index tensors must be integers; `gather`'s
//! `axes:` must be increasing with one entry per element of the indices'
//! last axis (default `[0, 1, …]`); `take_along_axis` needs every
//! non-indexed axis to match. Out-of-range indices are clamped at run time,
//! so indexing into an axis of size 0 (where nothing can be clamped to) is
//! rejected here.

use super::args::describe;
use super::elementwise::Operand;
use super::{CResult, FnCx};
use crate::ast::{Expr, ExprKind, Stmt};
use crate::graph::{Op, ValueId};
use crate::span::Span;
use crate::types::{DType, TensorType, Type};

type Checked = CResult<(Op, Vec<ValueId>, Type)>;

/// Start indices as the printer writes them: integers, and the operand
/// names of the dynamic ones (in order).
pub(crate) fn starts_text(starts: &[Option<usize>], dynamic: &[String]) -> String {
    let mut names = dynamic.iter();
    let items: Vec<String> = starts
        .iter()
        .map(|s| match s {
            Some(v) => v.to_string(),
            None => names.next().cloned().unwrap_or_default(),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// One written start index: a number, or a scalar integer tensor.
enum Start {
    Int(i128),
    Tensor(ValueId),
}

impl FnCx<'_> {
    /// A tensor name whose dtype is an integer (an index tensor).
    fn index_operand(&mut self, e: &Expr, op: &str) -> CResult<ValueId> {
        // A literal index is a scalar of its default integer type (Nx converts numbers to tensors).
        if let ExprKind::Int(v) = e.kind {
            let lit = crate::graph::Literal::Int(v);
            let dtype = self.default_literal_dtype(lit, false, e.span)?;
            return Ok(self.literal_node(lit, dtype, e.span));
        }
        let id = self.tensor_operand(e)?;
        let t = self.tensor(id);
        if !t.dtype.is_int() {
            return Err(self.err(
                e.span,
                format!("'{op}' needs integer indices, but {} is {t}", describe(e)),
            ));
        }
        Ok(id)
    }

    fn nonempty_axis(&mut self, t: &TensorType, axis: usize, span: Span, op: &str) -> CResult<()> {
        if t.shape[axis] == 0 {
            return Err(self.err(
                span,
                format!("'{op}' cannot index axis {axis} of {t}: it has size 0"),
            ));
        }
        Ok(())
    }

    /// `take x, idx, axis: 0`.
    pub(crate) fn take(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["axis"], 2, 2)?;
        let x = self.tensor_operand(a.pos[0]);
        let idx = self.index_operand(a.pos[1], "take");
        let (x, idx) = (x?, idx?);
        let (t, ti) = (self.tensor(x), self.tensor(idx));
        let axis = self.required_axis(a.kw("axis"), &t, s)?;
        let mut shape = t.shape[..axis].to_vec();
        shape.extend_from_slice(&ti.shape);
        shape.extend_from_slice(&t.shape[axis + 1..]);
        let out = TensorType::new(t.dtype, shape);
        if out.checked_num_elements() != Some(0) {
            self.nonempty_axis(&t, axis, a.pos[0].span, "take")?;
        }
        Ok((Op::Take { axis }, vec![x, idx], Type::Tensor(out)))
    }

    /// `take_along_axis x, idx, axis: 0`: idx has x's rank and matches it
    /// on every other axis; the result has idx's shape.
    pub(crate) fn take_along_axis(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["axis"], 2, 2)?;
        let x = self.tensor_operand(a.pos[0]);
        let idx = self.index_operand(a.pos[1], "take_along_axis");
        let (x, idx) = (x?, idx?);
        let (t, ti) = (self.tensor(x), self.tensor(idx));
        let axis = self.required_axis(a.kw("axis"), &t, s)?;
        let matches =
            t.rank() == ti.rank() && (0..t.rank()).all(|i| i == axis || t.shape[i] == ti.shape[i]);
        if !matches {
            return Err(self.err(
                a.pos[1].span,
                format!(
                    "'take_along_axis' needs indices of {t}'s rank that match it on every axis but {axis}, got {ti}"
                ),
            ));
        }
        let out = TensorType::new(t.dtype, ti.shape.clone());
        if out.checked_num_elements() != Some(0) {
            self.nonempty_axis(&t, axis, a.pos[0].span, "take_along_axis")?;
        }
        Ok((Op::TakeAlongAxis { axis }, vec![x, idx], Type::Tensor(out)))
    }

    /// `gather x, idx, axes: [..]` (Nx.gather).
    pub(crate) fn gather(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["axes"], 2, 2)?;
        let x = self.tensor_operand(a.pos[0]);
        let idx = self.index_operand(a.pos[1], "gather");
        let (x, idx) = (x?, idx?);
        let (t, ti) = (self.tensor(x), self.tensor(idx));
        let Some(&n) = ti.shape.last() else {
            return Err(self.err(
                a.pos[1].span,
                format!("'gather' needs indices of rank 1 or more, got {ti}"),
            ));
        };
        if n > t.rank() {
            return Err(self.err(
                a.pos[1].span,
                format!(
                    "the last axis of the indices ({ti}) has size {n}, more than the rank of {t}"
                ),
            ));
        }
        let axes = match a.kw("axes") {
            None => (0..n).collect(),
            Some(e) => {
                let axes = self.axes(e, t.rank())?;
                if axes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(self.err(e.span, "'gather' axes must be in increasing order"));
                }
                if axes.len() != n {
                    return Err(self.err(
                        e.span,
                        format!("'gather' lists {} axes but the last axis of the indices ({ti}) has size {n}", axes.len()),
                    ));
                }
                axes
            }
        };
        let mut shape = ti.shape[..ti.rank() - 1].to_vec();
        shape.extend(
            (0..t.rank())
                .filter(|i| !axes.contains(i))
                .map(|i| t.shape[i]),
        );
        let out = TensorType::new(t.dtype, shape);
        if out.checked_num_elements() != Some(0) {
            for &ax in &axes {
                self.nonempty_axis(&t, ax, a.pos[0].span, "gather")?;
            }
        }
        Ok((Op::Gather { axes }, vec![x, idx], Type::Tensor(out)))
    }

    /// Start indices: a list of integers and names of scalar integer tensors.
    fn starts(&mut self, e: &Expr, rank: usize, op: &str) -> CResult<Vec<Start>> {
        let ExprKind::List(items) = &e.kind else {
            return Err(self.err(
                e.span,
                format!("expected a list of start indices, found {}", describe(e)),
            ));
        };
        if items.len() != rank {
            return Err(self.err(
                e.span,
                format!("'{op}' needs {rank} start indices, got {}", items.len()),
            ));
        }
        let mut out = Vec::new();
        for i in items {
            match &i.kind {
                ExprKind::Int(v) => out.push(Start::Int(*v)),
                ExprKind::Name(_) => {
                    let id = self.index_operand(i, op)?;
                    let t = self.tensor(id);
                    if t.rank() != 0 {
                        return Err(self.err(
                            i.span,
                            format!("a start index must be a scalar, but {} is {t}", describe(i)),
                        ));
                    }
                    out.push(Start::Tensor(id));
                }
                _ => {
                    return Err(self.err(
                        i.span,
                        format!(
                            "expected an integer or a scalar tensor, found {}",
                            describe(i)
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Static starts clamped into `[0, dims[i] - lens[i]]`; dynamic starts
    /// become `None` and their tensors are appended to `operands`.
    fn resolve_starts(
        starts: Vec<Start>,
        dims: &[usize],
        lens: &[usize],
        operands: &mut Vec<ValueId>,
    ) -> Vec<Option<usize>> {
        starts
            .into_iter()
            .enumerate()
            .map(|(i, st)| match st {
                Start::Int(v) => Some(v.clamp(0, (dims[i] - lens[i]) as i128) as usize),
                Start::Tensor(id) => {
                    operands.push(id);
                    None
                }
            })
            .collect()
    }

    /// `put_slice x, [starts], y`: y is written into a copy of x; the result
    /// type is the merge of both (Nx `binary_type`).
    pub(crate) fn put_slice(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 3, 3)?;
        let x = self.tensor_operand(a.pos[0]);
        let y = self.tensor_operand(a.pos[2]);
        let (x, y) = (x?, y?);
        let (t, ty) = (self.tensor(x), self.tensor(y));
        let starts = self.starts(a.pos[1], t.rank(), "put_slice")?;
        if ty.rank() != t.rank() || (0..t.rank()).any(|i| ty.shape[i] > t.shape[i]) {
            return Err(self.err(
                a.pos[2].span,
                format!("'put_slice' needs a slice of the same rank as {t} and no larger on any axis, got {ty}"),
            ));
        }
        let mut operands = vec![x, y];
        let starts = Self::resolve_starts(starts, &t.shape, &ty.shape, &mut operands);
        let out = t.with_dtype(DType::merge(t.dtype, ty.dtype));
        Ok((Op::PutSlice { starts }, operands, Type::Tensor(out)))
    }

    /// `slice x, [starts], [lengths], [strides]` where some start is a scalar
    /// tensor (tier 2); called by `slice` when it sees a name in the starts.
    pub(crate) fn dynamic_slice(&mut self, s: &Stmt, x: ValueId) -> Checked {
        let a = self.args(s, &["strides"], 3, 4)?;
        let t = self.tensor(x);
        let starts = self.starts(a.pos[1], t.rank(), "slice")?;
        let lengths = self.int_list(a.pos[2], false)?;
        let strides = match a.pos.get(3).copied().or(a.kw("strides")) {
            Some(e) => self.int_list(e, false)?,
            None => vec![(1, Span::default()); t.rank()],
        };
        if lengths.len() != t.rank() || strides.len() != t.rank() {
            return Err(self.err(
                s.op.span,
                format!("'slice' needs {} lengths and strides for {t}", t.rank()),
            ));
        }
        let (mut lens, mut steps, mut shape) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..t.rank() {
            let ((len, lspan), (stride, sspan)) = (lengths[i], strides[i]);
            if len < 0 || len > t.shape[i] as i128 {
                return Err(self.err(
                    lspan,
                    format!(
                        "slice length {len} does not fit axis {i} of {t} (size {})",
                        t.shape[i]
                    ),
                ));
            }
            if stride < 1 {
                return Err(self.err(sspan, format!("slice stride {stride} must be at least 1")));
            }
            lens.push(len as usize);
            steps.push(usize::try_from(stride).unwrap_or(usize::MAX));
            shape.push(if len == 0 {
                0
            } else {
                ((len - 1) / stride + 1) as usize
            });
        }
        let mut operands = vec![x];
        let starts = Self::resolve_starts(starts, &t.shape, &lens, &mut operands);
        Ok((
            Op::DynamicSlice {
                starts,
                lengths: lens,
                strides: steps,
            },
            operands,
            Type::Tensor(TensorType::new(t.dtype, shape)),
        ))
    }
}

impl FnCx<'_> {
    /// `indexed_add target, indices, updates, axes: [..]` and `indexed_put`
    /// (Nx.indexed_add/indexed_put with `[n, k]` indices): updates are
    /// `[n, ...w]` where `w` fits the target's non-indexed axes; the result
    /// type is the merge of target and updates.
    pub(crate) fn indexed(&mut self, s: &Stmt, add: bool) -> Checked {
        let a = self.args(s, &["axes"], 3, 3)?;
        let x = self.tensor_operand(a.pos[0]);
        let idx = self.index_operand(a.pos[1], &s.op.name);
        let u = self.operand(a.pos[2]);
        let (x, idx, u) = (x?, idx?, u?);
        // Updates (a literal takes its weak type next to the target) merge with the target.
        let (ids, dtype) = self.resolve_group(&[Operand::Value(x), u])?;
        let u = ids[1];
        let (t, ti, tu) = (self.tensor(x), self.tensor(idx), self.tensor(u));
        // Nx's shorthand: indices [k] name one update whose shape is the window itself.
        let single = ti.rank() == 1;
        if ti.rank() != 2 && !single {
            return Err(self.err(
                a.pos[1].span,
                format!(
                    "'{}' needs indices of shape [n][k] (or [k] for one update), got {ti}",
                    s.op.name
                ),
            ));
        }
        let (n, k) = if single {
            (1, ti.shape[0])
        } else {
            (ti.shape[0], ti.shape[1])
        };
        if k > t.rank() {
            return Err(self.err(
                a.pos[1].span,
                format!(
                    "the indices ({ti}) give {k} coordinates but {t} has rank {}",
                    t.rank()
                ),
            ));
        }
        let axes = match a.kw("axes") {
            None => (0..k).collect::<Vec<_>>(),
            Some(e) => {
                let axes = self.axes(e, t.rank())?;
                if axes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(self.err(
                        e.span,
                        format!("'{}' axes must be in increasing order", s.op.name),
                    ));
                }
                if axes.len() != k {
                    return Err(self.err(
                        e.span,
                        format!(
                            "'{}' lists {} axes but the indices ({ti}) give {k} coordinates",
                            s.op.name,
                            axes.len()
                        ),
                    ));
                }
                axes
            }
        };
        let rest: Vec<usize> = (0..t.rank()).filter(|i| !axes.contains(i)).collect();
        // The update window: updates without their leading [n] axis (none for the shorthand).
        let lead = usize::from(!single);
        let fits = tu.rank() == rest.len() + lead
            && (single || tu.shape[0] == n)
            && rest
                .iter()
                .enumerate()
                .all(|(m, &ax)| tu.shape[m + lead] <= t.shape[ax]);
        if !fits {
            let window: Vec<String> = rest
                .iter()
                .map(|&ax| format!("[≤{}]", t.shape[ax]))
                .collect();
            let lead = if single {
                String::new()
            } else {
                format!("[{n}]")
            };
            return Err(self.err(
                a.pos[2].span,
                format!(
                    "'{}' needs updates of shape {lead}{} for {t} and {ti}, got {tu}",
                    s.op.name,
                    window.concat()
                ),
            ));
        }
        Ok((
            Op::Indexed { add, axes },
            vec![x, idx, u],
            Type::Tensor(t.with_dtype(dtype)),
        ))
    }
}

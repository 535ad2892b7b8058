//! Nested `fn` regions and the ops that take them: the general `reduce`
//! (with a `fn(acc, v)` body or an `&Nx.add/2`-style shorthand), `while` and
//! `cond` (spec §3, §4.5, §4.6).
//!
//! A `fn` becomes a `graph::Region` of the function being checked: its
//! parameters are `Op::Param` nodes of the region, its statements are checked
//! like any other (so they may use, "capture", every name of the enclosing
//! bodies), and its `return` gives the region's results. A `cond` branch
//! written as a value (`p -> {a, b}`) is a region without parameters or
//! statements whose results are those values, so consumers see one form.

use super::args::describe;
use super::elementwise::Operand;
use super::{Binding, CResult, Failed, FnCx};
use crate::ast::{Expr, ExprKind, FnExpr, Stmt};
use crate::graph::{BinaryOp, Op, Region, RegionId, ValueId};
use crate::span::Span;
use crate::types::{DType, TensorType, Type};

type Checked = CResult<(Op, Vec<ValueId>, Type)>;

/// The functions `&Nx.<name>/2` may name, with the op each one means.
pub(crate) const SHORTHANDS: &[(&str, BinaryOp)] = &[
    ("add", BinaryOp::Add),
    ("multiply", BinaryOp::Multiply),
    ("max", BinaryOp::Max),
    ("min", BinaryOp::Min),
    ("logical_and", BinaryOp::LogicalAnd),
    ("logical_or", BinaryOp::LogicalOr),
];

/// A checked region: its id and the type it returns.
pub(crate) struct RegionInfo {
    pub id: RegionId,
    pub ty: Type,
    pub ret_span: Span,
}

impl FnCx<'_> {
    /// Open a new region nested in the current one; returns the previous
    /// current region, to be given back to `close_region`.
    fn open_region(&mut self) -> (usize, RegionId) {
        let id = self.regions.len();
        self.regions.push(Region {
            params: Vec::new(),
            nodes: Vec::new(),
            results: Vec::new(),
            returns_tuple: false,
        });
        let prev = self.current;
        self.current = id;
        self.scopes.push(Default::default());
        (prev, RegionId(id as u32))
    }

    fn close_region(&mut self, prev: usize) {
        self.scopes.pop();
        self.current = prev;
    }

    /// Check `fn(p…) { … }` as a region whose parameters have the types
    /// `params`. `declared` types literal results (a weak `return 0`).
    fn fn_body(
        &mut self,
        f: &FnExpr,
        span: Span,
        params: &[TensorType],
        declared: Option<&Type>,
        what: &str,
    ) -> CResult<RegionInfo> {
        if f.params.len() != params.len() {
            let n = params.len();
            return Err(self.err(
                span,
                format!(
                    "{what} takes {n} parameter{}, but this fn has {}",
                    if n == 1 { "" } else { "s" },
                    f.params.len()
                ),
            ));
        }
        let (prev, rid) = self.open_region();
        for (i, (p, t)) in f.params.iter().zip(params).enumerate() {
            let id = self.push_node(
                Op::Param(i),
                Vec::new(),
                Type::Tensor(t.clone()),
                p.name.clone(),
                p.span,
            );
            self.regions[rid.0 as usize].params.push(id);
            // Parameters may shadow names of the enclosing bodies (each fn is
            // its own scope); a parameter listed twice is an error.
            let scope = self.scopes.last_mut().expect("the region's scope");
            if let Some(first) = scope.get(&p.name) {
                let first = first.span;
                self.diags.push(
                    crate::diag::Diagnostic::error(p.span, format!("parameter '{}' is listed twice", p.name))
                        .with_label(first, "first listed here"),
                );
            } else {
                scope.insert(
                    p.name.clone(),
                    Binding {
                        value: Some(id),
                        span: p.span,
                    },
                );
            }
        }
        let r = self.block(&f.body, declared);
        self.close_region(prev);
        let (results, returns_tuple, ty) = r?;
        let reg = &mut self.regions[rid.0 as usize];
        reg.results = results;
        reg.returns_tuple = returns_tuple;
        Ok(RegionInfo {
            id: rid,
            ty,
            ret_span: f.body.ret_span,
        })
    }

    /// A `cond` branch written as a value (`{a, b}`, a name, a literal): a
    /// region with no parameters whose results are those values.
    fn value_region(&mut self, e: &Expr, declared: Option<&Type>) -> CResult<RegionInfo> {
        let (prev, rid) = self.open_region();
        let r = self.ret(e, declared);
        self.close_region(prev);
        let (results, returns_tuple, ty) = r?;
        let reg = &mut self.regions[rid.0 as usize];
        reg.results = results;
        reg.returns_tuple = returns_tuple;
        Ok(RegionInfo {
            id: rid,
            ty,
            ret_span: e.span,
        })
    }

    /// `&Nx.add/2` and friends: a region of two scalar `dtype` parameters
    /// and one synthetic binary node (the printer writes it back as the shorthand).
    fn shorthand_region(
        &mut self,
        e: &Expr,
        module: &str,
        name: &str,
        arity: u32,
        dtype: DType,
    ) -> CResult<RegionInfo> {
        let op = SHORTHANDS.iter().find(|(n, _)| *n == name).map(|&(_, op)| op);
        let (Some(op), "Nx", 2) = (op, module, arity) else {
            let choices: Vec<String> = SHORTHANDS.iter().map(|(n, _)| format!("&Nx.{n}/2")).collect();
            return Err(self.err(
                e.span,
                format!(
                    "unsupported function reference '&{module}.{name}/{arity}' (expected one of {})",
                    choices.join(", ")
                ),
            ));
        };
        let (prev, rid) = self.open_region();
        let scalar = Type::Tensor(TensorType::scalar(dtype));
        let a = self.push_node(Op::Param(0), Vec::new(), scalar.clone(), String::new(), e.span);
        let b = self.push_node(Op::Param(1), Vec::new(), scalar.clone(), String::new(), e.span);
        let out = if op.is_predicate() {
            Type::Tensor(TensorType::scalar(DType::U8))
        } else {
            scalar
        };
        let r = self.push_node(
            Op::Binary { op, compute: dtype },
            vec![a, b],
            out.clone(),
            String::new(),
            e.span,
        );
        self.close_region(prev);
        let reg = &mut self.regions[rid.0 as usize];
        reg.params = vec![a, b];
        reg.results = vec![r];
        Ok(RegionInfo {
            id: rid,
            ty: out,
            ret_span: e.span,
        })
    }

    /// A combiner function of `reduce` (and other reductions with a `fn`):
    /// `fn(acc, v) { … }` or a shorthand, over scalars of `dtype`, returning
    /// one scalar (converted to `dtype` by consumers). Its body may only use
    /// element-wise ops on scalars, so back ends can inline it into a loop body.
    pub(crate) fn combiner(&mut self, e: &Expr, dtype: DType, op_name: &str) -> CResult<RegionId> {
        let what = format!("the '{op_name}' function");
        let scalar = TensorType::scalar(dtype);
        let r = match &e.kind {
            ExprKind::Fn(f) => self.fn_body(
                f,
                e.span,
                &[scalar.clone(), scalar.clone()],
                Some(&Type::Tensor(scalar)),
                &what,
            )?,
            ExprKind::FnRef { module, name, arity } => self.shorthand_region(e, module, name, *arity, dtype)?,
            _ => {
                return Err(self.err(
                    e.span,
                    format!(
                        "{what} must be a fn(acc, v) {{ … }} or &Nx.add/2, found {}",
                        describe(e)
                    ),
                ));
            }
        };
        match &r.ty {
            Type::Tensor(t) if t.rank() == 0 => {}
            t => return Err(self.err(r.ret_span, format!("{what} must return one scalar, but returns {t}"))),
        }
        self.check_scalar_body(r.id, op_name)?;
        Ok(r.id)
    }

    /// Every node of a combiner body is an element-wise op on scalars.
    fn check_scalar_body(&mut self, rid: RegionId, op_name: &str) -> CResult<()> {
        let nodes = self.regions[rid.0 as usize].nodes.clone();
        let mut failed = false;
        for id in nodes {
            let n = &self.nodes[id.index()];
            let allowed = matches!(
                n.op,
                Op::Param(_)
                    | Op::Constant(_)
                    | Op::Unary(_)
                    | Op::Binary { .. }
                    | Op::Select { .. }
                    | Op::Clip { .. }
                    | Op::AsType
                    | Op::Bitcast
            );
            let scalar = |ty: &Type| matches!(ty, Type::Tensor(t) if t.rank() == 0);
            let operands_scalar = n.operands.iter().all(|o| scalar(&self.nodes[o.index()].ty));
            if !allowed || !scalar(&n.ty) || !operands_scalar {
                let span = n.span;
                self.err(
                    span,
                    format!(
                        "a '{op_name}' function may only compute with element-wise ops on scalars (its body runs once per element)"
                    ),
                );
                failed = true;
            }
        }
        if failed { Err(Failed) } else { Ok(()) }
    }

    /// `reduce x, init, axes: [..] | nil, keep_axes: bool, fn(acc, v) { … }`.
    /// The result type is x's type merged with init's (a literal init is weak), as Nx's `binary_type`.
    pub(crate) fn reduce_fn(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["axes", "keep_axes"], 3, 3)?;
        let x = self.operand(a.pos[0]);
        let init = self.operand(a.pos[1]);
        let (x, init) = (x?, init?);
        if let Operand::Lit(_, span) = x {
            return Err(self.err(span, "'reduce' expects a tensor to reduce, not a literal"));
        }
        let (ids, dtype) = self.resolve_group(&[x, init])?;
        let (t, ti) = (self.tensor(ids[0]), self.tensor(ids[1]));
        if ti.rank() != 0 {
            return Err(self.err(
                a.pos[1].span,
                format!("the initial value of 'reduce' must be a scalar, got {ti}"),
            ));
        }
        let axes = self.axes_or_nil(a.kw("axes"), t.rank());
        let keep = self.bool_opt(a.kw("keep_axes"), false);
        let (axes, keep_axes) = (axes?, keep?);
        let axes = axes.unwrap_or_else(|| (0..t.rank()).collect());
        let body = self.combiner(a.pos[2], dtype, "reduce")?;
        let shape = super::reduce::reduced_shape(&t.shape, &axes, keep_axes);
        Ok((
            Op::ReduceFn { axes, keep_axes, body },
            ids,
            Type::Tensor(TensorType::new(dtype, shape)),
        ))
    }

    /// `while init, fn(..) { cond }, fn(..) { body }`: the state is a tuple
    /// `{a, 0, …}` of tensors (or one tensor, or a tuple-typed name); the
    /// condition returns a scalar, the body a new state of the same type.
    pub(crate) fn while_loop(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 3, 3)?;
        let (operands, state) = self.state(a.pos[0])?;
        let elems = state.flatten();
        let (ce, be) = (a.pos[1], a.pos[2]);
        let (ExprKind::Fn(cf), ExprKind::Fn(bf)) = (&ce.kind, &be.kind) else {
            let bad = if matches!(ce.kind, ExprKind::Fn(_)) { be } else { ce };
            return Err(self.err(
                bad.span,
                format!(
                    "'while' expects a fn for its condition and its body, found {}",
                    describe(bad)
                ),
            ));
        };
        let cond = self.fn_body(cf, ce.span, &elems, None, "the 'while' condition");
        let body = self.fn_body(bf, be.span, &elems, Some(&state), "the 'while' body");
        let (cond, body) = (cond?, body?);
        match &cond.ty {
            Type::Tensor(t) if t.rank() == 0 => {}
            t => {
                return Err(self.err(
                    cond.ret_span,
                    format!("the 'while' condition must return a scalar, but returns {t}"),
                ));
            }
        }
        if body.ty != state {
            return Err(self.err(
                body.ret_span,
                format!(
                    "the 'while' body must return the state type {state}, but returns {}",
                    body.ty
                ),
            ));
        }
        Ok((
            Op::While {
                cond: cond.id,
                body: body.id,
            },
            operands,
            state,
        ))
    }

    /// The initial state of a `while` and its type.
    fn state(&mut self, e: &Expr) -> CResult<(Vec<ValueId>, Type)> {
        let one = |cx: &mut Self, e: &Expr| -> CResult<ValueId> {
            match cx.operand(e)? {
                Operand::Value(id) => Ok(id),
                Operand::Lit(lit, span) => {
                    let d = cx.default_literal_dtype(lit, false, span)?;
                    Ok(cx.literal_node(lit, d, span))
                }
            }
        };
        match &e.kind {
            ExprKind::Tuple(items) => {
                if items.is_empty() {
                    return Err(self.err(e.span, "the 'while' state must hold at least one tensor"));
                }
                let mut ids = Vec::new();
                let mut failed = false;
                for i in items {
                    match one(self, i) {
                        Ok(id) => ids.push(id),
                        Err(Failed) => failed = true,
                    }
                }
                if failed {
                    return Err(Failed);
                }
                let ty = Type::Tuple(ids.iter().map(|&id| self.ty(id).clone()).collect());
                Ok((ids, ty))
            }
            ExprKind::Name(n) => {
                let id = self.lookup(n, e.span)?;
                let ty = self.ty(id).clone();
                if let Type::Tuple(items) = &ty
                    && items.iter().any(|t| matches!(t, Type::Tuple(_)))
                {
                    return Err(self.err(
                        e.span,
                        format!("the 'while' state must be a tuple of tensors, but '{n}' has type {ty}"),
                    ));
                }
                Ok((vec![id], ty))
            }
            _ => {
                let id = one(self, e)?;
                Ok((vec![id], self.ty(id).clone()))
            }
        }
    }

    /// `cond p -> {a, b}, q -> fn() { … }, true -> {c, d}`.
    pub(crate) fn cond(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &[], 1, usize::MAX)?;
        let n = a.pos.len();
        let mut preds = Vec::new();
        let mut branches = Vec::new();
        let mut first: Option<Type> = None;
        let mut failed = false;
        for (i, e) in a.pos.iter().enumerate() {
            let ExprKind::Clause(p, v) = &e.kind else {
                self.err(
                    e.span,
                    format!("'cond' expects clauses `predicate -> value`, found {}", describe(e)),
                );
                failed = true;
                continue;
            };
            let last = i + 1 == n;
            match (&p.kind, last) {
                (ExprKind::Bool(true), true) => {}
                (_, true) => {
                    self.err(p.span, "the last clause of 'cond' must be `true -> …`");
                    failed = true;
                }
                (ExprKind::Bool(true), false) => {
                    self.err(
                        p.span,
                        "only the last clause of 'cond' may be `true` (the clauses after it could never run)",
                    );
                    failed = true;
                }
                _ => match self.predicate(p) {
                    Ok(id) => preds.push(id),
                    Err(Failed) => failed = true,
                },
            }
            let r = match &v.kind {
                ExprKind::Fn(f) => self.fn_body(f, v.span, &[], first.as_ref(), "a 'cond' branch"),
                _ => self.value_region(v, first.as_ref()),
            };
            match r {
                Ok(r) => {
                    match &first {
                        None => first = Some(r.ty.clone()),
                        Some(t0) if *t0 != r.ty => {
                            self.err(
                                r.ret_span,
                                format!(
                                    "all 'cond' branches must have the same type: the first has {t0}, this one {}",
                                    r.ty
                                ),
                            );
                            failed = true;
                        }
                        Some(_) => {}
                    }
                    branches.push(r.id);
                }
                Err(Failed) => failed = true,
            }
        }
        if failed {
            return Err(Failed);
        }
        let ty = first.ok_or_else(|| self.err(s.op.span, "'cond' needs at least one clause"))?;
        Ok((Op::Cond { branches }, preds, ty))
    }

    /// A `cond` predicate: the name of a scalar tensor.
    fn predicate(&mut self, e: &Expr) -> CResult<ValueId> {
        let id = self.tensor_operand(e)?;
        let t = self.tensor(id);
        if t.rank() != 0 {
            return Err(self.err(
                e.span,
                format!("a 'cond' predicate must be a scalar, but {} is {t}", describe(e)),
            ));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use crate::check::compile;
    use crate::printer::print_module;
    use crate::span::SourceFile;

    fn errors(src: &str) -> Vec<String> {
        match compile(&SourceFile::new("t.nxir", src.to_string())) {
            Ok(_) => Vec::new(),
            Err(d) => d.items.iter().map(|d| d.message.clone()).collect(),
        }
    }

    /// Printing is a fixed point and keeps every region form.
    #[test]
    fn regions_print_and_reparse() {
        let src = include_str!("control_sample.nxir");
        let m = compile(&SourceFile::new("t.nxir", src.to_string())).unwrap_or_else(|d| panic!("{:?}", d.items));
        let text = print_module(&m);
        let m2 = compile(&SourceFile::new("t.nxir", text.clone())).unwrap_or_else(|d| panic!("{text}\n{:?}", d.items));
        assert_eq!(print_module(&m2), text);
        for want in [
            "&Nx.multiply/2",
            "fn(acc, v) {\n    m = multiply acc, k  s32\n",
            "cond p -> x, q -> fn() {",
            "}, true -> y  f32[2]",
            "while {0, x}, fn(i, acc) {",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn region_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "def f(x: f32[2]) {\n  r = reduce x, 0, &Nx.divide/2\n  return r\n}\n",
                "unsupported function reference '&Nx.divide/2'",
            ),
            (
                "def f(x: f32[2]) {\n  r = reduce x, x, &Nx.add/2\n  return r\n}\n",
                "the initial value of 'reduce' must be a scalar, got f32[2]",
            ),
            (
                "def f(x: f32[2]) {\n  r = reduce x, 0, fn(a) { return a }\n  return r\n}\n",
                "the 'reduce' function takes 2 parameters, but this fn has 1",
            ),
            (
                "def f(x: f32[2]) {\n  r = reduce x, 0, fn(a, b) { return x }\n  return r\n}\n",
                "the 'reduce' function must return one scalar, but returns f32[2]",
            ),
            (
                "def f(x: f32[2]) {\n  r = reduce x, 0, fn(a, b) { s = sum x\n return s }\n  return r\n}\n",
                "a 'reduce' function may only compute with element-wise ops on scalars",
            ),
            (
                "def f(x: s32) {\n  r = while {x}, fn(i) { return i }, fn(i) { j = add i, 1.0\n return {j} }\n  return r\n}\n",
                "the 'while' body must return the state type {s32}, but returns {f32}",
            ),
            (
                "def f(x: s32[2]) {\n  r = while {x}, fn(i) { return i }, fn(i) { return {i} }\n  return r\n}\n",
                "the 'while' condition must return a scalar, but returns s32[2]",
            ),
            (
                "def f(x: s32) {\n  r = while {x}, fn(i, j) { return i }, fn(i) { return {i} }\n  return r\n}\n",
                "the 'while' condition takes 1 parameter, but this fn has 2",
            ),
            (
                "def f(x: s32) {\n  r = while {x}, x, x\n  return r\n}\n",
                "'while' expects a fn for its condition and its body, found 'x'",
            ),
            (
                "def f(p: u8, x: s32) {\n  r = cond p -> x\n  return r\n}\n",
                "the last clause of 'cond' must be `true -> …`",
            ),
            (
                "def f(p: u8, x: s32) {\n  r = cond true -> x, p -> x\n  return r\n}\n",
                "only the last clause of 'cond' may be `true`",
            ),
            (
                "def f(p: u8[2], x: s32) {\n  r = cond p -> x, true -> x\n  return r\n}\n",
                "a 'cond' predicate must be a scalar, but 'p' is u8[2]",
            ),
            (
                "def f(p: u8, x: s32, y: f32) {\n  r = cond p -> x, true -> y\n  return r\n}\n",
                "all 'cond' branches must have the same type: the first has s32, this one f32",
            ),
            (
                "def f(p: u8, x: s32) {\n  r = cond p -> fn(a) { return a }, true -> x\n  return r\n}\n",
                "a 'cond' branch takes 0 parameters, but this fn has 1",
            ),
            (
                "def f(p: u8, x: s32) {\n  r = cond x\n  return r\n}\n",
                "'cond' expects clauses `predicate -> value`, found 'x'",
            ),
            (
                "def f(x: s32) {\n  r = while {x, x}, fn(i, i) { return i }, fn(i, j) { return {i, j} }\n  return r\n}\n",
                "parameter 'i' is listed twice",
            ),
        ];
        for (src, want) in cases {
            let got = errors(src);
            assert!(
                got.iter().any(|m| m.starts_with(want)),
                "{src}\nexpected {want:?}, got {got:?}"
            );
        }
    }

    /// Names of a fn body stay inside it; parameters may shadow outer names.
    #[test]
    fn scopes() {
        let leak = "def f(x: s32) {\n  r = while {x}, fn(i) { c = less i, 3\n return c }, fn(i) { j = add i, 1\n return {j} }\n  k = add j, 1\n  return k\n}\n";
        assert!(
            errors(leak).iter().any(|m| m.starts_with("unknown name 'j'")),
            "{:?}",
            errors(leak)
        );
        let shadow = "def f(x: s32) {\n  r = while {x}, fn(x) { c = less x, 3\n return c }, fn(x) { j = add x, 1\n return {j} }\n  return r\n}\n";
        assert_eq!(errors(shadow), Vec::<String>::new());
    }
}

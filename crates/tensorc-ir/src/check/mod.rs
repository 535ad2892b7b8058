//! The checker: syntax tree → typed graph (spec §2–§4).
//!
//! It resolves names, infers every value's type (weak literals, promotion,
//! broadcasting), validates options and annotations, and builds the
//! `graph::Module` that the interpreter and the MLIR lowering consume. Errors
//! are collected, not thrown: a failed statement binds its name to a "poison"
//! value so later uses stay quiet, and checking continues with the next
//! statement and the next function.
//!
//! Op families live in submodules (`elementwise`, `shape`, `reduce`); this file
//! holds the module/function walk, name binding and the shared helpers.

mod args;
pub(crate) mod control;
pub(crate) mod conv;
mod elementwise;
pub(crate) mod index;
pub(crate) mod ops;

/// Every operation name the checker knows, implemented or not (the registry
/// test in `tests/registry.rs` compares it with `dialects/nxir/ops.tsv`).
pub fn known_op_names() -> Vec<&'static str> {
    ops::all_names().collect()
}
mod reduce;
pub(crate) mod scan;
mod scatter;
mod shape;
mod linalg;

use std::collections::HashMap;

use crate::ast::{self, Expr, ExprKind, Stmt};
use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::graph::{Function, Literal, Module, Node, Op, Region, ValueId};
use crate::span::{SourceFile, Span};
use crate::types::{DType, TensorType, Type};

/// Parse and check a whole file.
pub fn compile(file: &SourceFile) -> Result<Module, Diagnostics> {
    let (program, diags) = crate::parser::parse(file);
    let fail = |items: Vec<Diagnostic>| Diagnostics { file: file.clone(), items };
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(fail(diags));
    }
    let Some(program) = program else {
        return Err(fail(diags));
    };
    check(file, &program).map_err(fail)
}

/// Check a parsed program. On failure returns every error found.
pub fn check(_file: &SourceFile, program: &ast::Program) -> Result<Module, Vec<Diagnostic>> {
    let mut diags = Vec::new();

    // Function names resolve to their first definition; later ones are errors.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, def) in program.defs.iter().enumerate() {
        if let Some(&first) = index.get(def.name.name.as_str()) {
            diags.push(
                Diagnostic::error(def.name.span, format!("function '{}' is defined twice", def.name.name))
                    .with_label(program.defs[first].name.span, "first defined here"),
            );
        } else {
            index.insert(def.name.name.as_str(), i);
        }
    }

    let order = call_order(program, &index, &mut diags);

    let mut sigs: Vec<Option<Signature>> = vec![None; program.defs.len()];
    let mut functions: Vec<Option<Function>> = vec![None; program.defs.len()];
    for i in order {
        let mut cx = FnCx::new(&sigs, &index, &program.defs);
        let f = cx.function(&program.defs[i]);
        diags.append(&mut cx.diags);
        if let Some(f) = f {
            sigs[i] = Some(Signature {
                params: f.params.iter().map(|(_, t)| t.clone()).collect(),
                result: f.result.clone(),
            });
            functions[i] = Some(f);
        }
    }

    if !diags.is_empty() {
        return Err(diags);
    }
    // No diagnostics means every function checked, so every slot is filled.
    let functions: Option<Vec<Function>> = functions.into_iter().collect();
    match functions {
        Some(functions) => Ok(Module { functions }),
        None => Err(vec![Diagnostic::error(Span::default(), "internal error: a function failed without a diagnostic")]),
    }
}

/// What a caller needs to know about a checked function.
#[derive(Clone, Debug)]
struct Signature {
    params: Vec<TensorType>,
    result: Type,
}

/// Order in which to check functions so that callees come before callers;
/// reports recursion. Functions on a cycle are still returned (their call
/// that closes the cycle then finds no signature and stays quiet).
fn call_order(program: &ast::Program, index: &HashMap<&str, usize>, diags: &mut Vec<Diagnostic>) -> Vec<usize> {
    // callees[i]: (callee index, span of the callee name) for every `call` in def i.
    let callees: Vec<Vec<(usize, Span)>> = program
        .defs
        .iter()
        .map(|d| {
            let mut out = Vec::new();
            collect_calls(&d.body, index, &mut out);
            out
        })
        .collect();

    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Active,
        Done,
    }
    let mut state = vec![State::New; program.defs.len()];
    let mut order = Vec::new();

    // Iterative DFS (programs are user input; deep call chains must not overflow the stack).
    for root in 0..program.defs.len() {
        if state[root] != State::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = State::Active;
        while let Some(&mut (f, ref mut next)) = stack.last_mut() {
            if let Some(&(g, span)) = callees[f].get(*next) {
                *next += 1;
                match state[g] {
                    State::New => {
                        state[g] = State::Active;
                        stack.push((g, 0));
                    }
                    State::Active => {
                        let msg = if g == f {
                            format!("function '{}' calls itself (recursion is not allowed)", program.defs[g].name.name)
                        } else {
                            format!(
                                "call of '{}' from '{}' is recursive (recursion is not allowed)",
                                program.defs[g].name.name, program.defs[f].name.name
                            )
                        };
                        diags.push(Diagnostic::error(span, msg));
                    }
                    State::Done => {}
                }
            } else {
                state[f] = State::Done;
                order.push(f);
                stack.pop();
            }
        }
    }
    order
}

fn collect_calls(block: &ast::Block, index: &HashMap<&str, usize>, out: &mut Vec<(usize, Span)>) {
    for s in &block.stmts {
        let mut first = true;
        for a in &s.args {
            let e = match a {
                ast::Arg::Positional(e) | ast::Arg::Keyword(_, e) => e,
            };
            if s.op.name == "call"
                && first
                && let ExprKind::Name(n) = &e.kind
                && let Some(&g) = index.get(n.as_str())
            {
                out.push((g, e.span));
            }
            first = false;
            collect_calls_expr(e, index, out);
        }
    }
}

fn collect_calls_expr(e: &Expr, index: &HashMap<&str, usize>, out: &mut Vec<(usize, Span)>) {
    match &e.kind {
        ExprKind::Fn(f) => collect_calls(&f.body, index, out),
        ExprKind::List(items) | ExprKind::Tuple(items) => {
            items.iter().for_each(|i| collect_calls_expr(i, index, out))
        }
        ExprKind::Clause(a, b) => {
            collect_calls_expr(a, index, out);
            collect_calls_expr(b, index, out);
        }
        _ => {}
    }
}

/// Marker that a check failed and its diagnostic (if any) is already recorded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failed;

pub(crate) type CResult<T> = Result<T, Failed>;

/// A name's binding: a value, or poison after a failed statement.
#[derive(Clone, Copy)]
struct Binding {
    value: Option<ValueId>,
    span: Span,
}

/// The checker state for one function: its node arena, regions and names.
pub(crate) struct FnCx<'a> {
    sigs: &'a [Option<Signature>],
    index: &'a HashMap<&'a str, usize>,
    defs: &'a [ast::Def],
    pub(crate) diags: Vec<Diagnostic>,
    nodes: Vec<Node>,
    regions: Vec<Region>,
    /// The region new nodes are appended to.
    current: usize,
    scopes: Vec<HashMap<String, Binding>>,
}

impl<'a> FnCx<'a> {
    fn new(sigs: &'a [Option<Signature>], index: &'a HashMap<&'a str, usize>, defs: &'a [ast::Def]) -> Self {
        FnCx {
            sigs,
            index,
            defs,
            diags: Vec::new(),
            nodes: Vec::new(),
            regions: Vec::new(),
            current: 0,
            scopes: vec![HashMap::new()],
        }
    }

    pub(crate) fn err(&mut self, span: Span, msg: impl Into<String>) -> Failed {
        self.diags.push(Diagnostic::error(span, msg));
        Failed
    }

    pub(crate) fn push_node(&mut self, op: Op, operands: Vec<ValueId>, ty: Type, name: String, span: Span) -> ValueId {
        let id = ValueId(self.nodes.len() as u32);
        self.nodes.push(Node { op, operands, ty, name, span });
        self.regions[self.current].nodes.push(id);
        id
    }

    pub(crate) fn ty(&self, id: ValueId) -> &Type {
        &self.nodes[id.index()].ty
    }

    /// The tensor type of a value that is known to be a tensor.
    pub(crate) fn tensor(&self, id: ValueId) -> TensorType {
        match &self.nodes[id.index()].ty {
            Type::Tensor(t) => t.clone(),
            // Operands are checked to be tensors before this is called.
            Type::Tuple(_) => TensorType::scalar(DType::U8),
        }
    }

    /// A synthetic scalar constant for a literal operand.
    pub(crate) fn literal_node(&mut self, lit: Literal, dtype: DType, span: Span) -> ValueId {
        self.push_node(Op::Constant(lit), Vec::new(), Type::Tensor(TensorType::scalar(dtype)), String::new(), span)
    }

    fn lookup_binding(&self, name: &str) -> Option<Binding> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    /// Resolve a name; poisoned names fail quietly.
    pub(crate) fn lookup(&mut self, name: &str, span: Span) -> CResult<ValueId> {
        match self.lookup_binding(name) {
            Some(Binding { value: Some(v), .. }) => Ok(v),
            Some(Binding { value: None, .. }) => Err(Failed),
            None => {
                let mut d = Diagnostic::error(span, format!("unknown name '{name}'"));
                let known: Vec<&str> = self.scopes.iter().flat_map(|s| s.keys().map(String::as_str)).collect();
                // Hints are quadratic in the worst case; skip them for huge or very broken programs.
                let cheap = known.len() <= 10_000 && self.diags.len() < 100;
                if cheap && let Some(best) = closest(name, known) {
                    d = d.with_note(format!("did you mean '{best}'?"));
                }
                self.diags.push(d);
                Err(Failed)
            }
        }
    }

    fn bind(&mut self, name: &ast::Ident, value: Option<ValueId>) {
        if let Some(prev) = self.lookup_binding(&name.name) {
            self.diags.push(
                Diagnostic::error(name.span, format!("'{}' is already defined (every statement binds a fresh name)", name.name))
                    .with_label(prev.span, "first defined here"),
            );
            return;
        }
        let scope = self.scopes.last_mut().expect("at least one scope");
        scope.insert(name.name.clone(), Binding { value, span: name.span });
    }

    /// Reject types whose element count or byte size overflows.
    pub(crate) fn check_size(&mut self, ty: &Type, span: Span) -> CResult<()> {
        for t in ty.flatten() {
            let ok = t
                .checked_num_elements()
                .and_then(|n| n.checked_mul(t.dtype.size_bytes()))
                .is_some_and(|b| b <= isize::MAX as usize);
            if !ok {
                return Err(self.err(span, format!("type {t} is too large")));
            }
        }
        Ok(())
    }

    fn function(&mut self, def: &ast::Def) -> Option<Function> {
        self.regions.push(Region { params: Vec::new(), nodes: Vec::new(), results: Vec::new(), returns_tuple: false });
        let mut params = Vec::new();
        let mut ok = true;
        for (i, p) in def.params.iter().enumerate() {
            let value = match &p.ty.ty {
                Type::Tensor(t) => {
                    if self.check_size(&p.ty.ty, p.ty.span).is_err() {
                        ok = false;
                    }
                    params.push((p.name.name.clone(), t.clone()));
                    let id = self.push_node(Op::Param(i), Vec::new(), p.ty.ty.clone(), p.name.name.clone(), p.name.span);
                    self.regions[0].params.push(id);
                    Some(id)
                }
                Type::Tuple(_) => {
                    self.err(p.ty.span, format!("parameter '{}' must have a tensor type, not a tuple", p.name.name));
                    ok = false;
                    None
                }
            };
            self.bind(&p.name, value);
        }
        if let Some(ret) = &def.ret
            && self.check_size(&ret.ty, ret.span).is_err()
        {
            ok = false;
        }

        let declared = def.ret.as_ref();
        let body = self.block(&def.body, declared.map(|t| &t.ty));
        let result = match body {
            Ok((results, returns_tuple, ty)) => {
                self.regions[0].results = results;
                self.regions[0].returns_tuple = returns_tuple;
                if let Some(decl) = declared
                    && decl.ty != ty
                {
                    self.err(
                        def.body.ret_span,
                        format!("function '{}' is declared to return {} but returns {}", def.name.name, decl.ty, ty),
                    );
                }
                Some(ty)
            }
            Err(Failed) => None,
        };
        if !ok || !self.diags.is_empty() {
            return None;
        }
        Some(Function {
            name: def.name.name.clone(),
            params,
            result: result?,
            nodes: std::mem::take(&mut self.nodes),
            regions: std::mem::take(&mut self.regions),
            span: def.span,
        })
    }

    /// Check a block's statements and its `return`; returns the result values,
    /// whether they were a tuple literal, and the block's type.
    fn block(&mut self, block: &ast::Block, declared: Option<&Type>) -> CResult<(Vec<ValueId>, bool, Type)> {
        for s in &block.stmts {
            let value = self.stmt(s).ok();
            self.bind(&s.name, value);
        }
        self.ret(&block.ret, declared)
    }

    fn ret(&mut self, e: &Expr, declared: Option<&Type>) -> CResult<(Vec<ValueId>, bool, Type)> {
        match &e.kind {
            ExprKind::Tuple(items) => {
                if items.is_empty() {
                    return Err(self.err(e.span, "a function must return at least one value"));
                }
                let decl_items = match declared {
                    Some(Type::Tuple(ts)) if ts.len() == items.len() => Some(ts),
                    _ => None,
                };
                let mut ids = Vec::new();
                let mut failed = false;
                for (i, item) in items.iter().enumerate() {
                    match self.ret_value(item, decl_items.map(|ts| &ts[i])) {
                        Ok(id) => ids.push(id),
                        Err(Failed) => failed = true,
                    }
                }
                if failed {
                    return Err(Failed);
                }
                let ty = Type::Tuple(ids.iter().map(|&id| self.ty(id).clone()).collect());
                Ok((ids, true, ty))
            }
            _ => {
                let id = self.ret_value(e, declared)?;
                Ok((vec![id], false, self.ty(id).clone()))
            }
        }
    }

    /// One returned value: a name, or a literal (weak: it takes the declared
    /// scalar type when there is one).
    fn ret_value(&mut self, e: &Expr, declared: Option<&Type>) -> CResult<ValueId> {
        match &e.kind {
            ExprKind::Name(n) => self.lookup(n, e.span),
            ExprKind::Int(_) | ExprKind::Float(_) => {
                let lit = literal_of(e).expect("number");
                match declared {
                    Some(Type::Tensor(t)) if t.rank() == 0 => {
                        self.check_fits(lit, t.dtype, e.span)?;
                        Ok(self.literal_node(lit, t.dtype, e.span))
                    }
                    _ => {
                        let dtype = self.default_literal_dtype(lit, false, e.span)?;
                        Ok(self.literal_node(lit, dtype, e.span))
                    }
                }
            }
            _ => Err(self.err(e.span, "expected a name or a number to return")),
        }
    }

    /// Check one statement and add its node; returns the bound value.
    fn stmt(&mut self, s: &Stmt) -> CResult<ValueId> {
        let (op, operands, ty) = self.dispatch(s)?;
        if let Some(ann) = &s.ty
            && ann.ty != ty
        {
            return Err(self.err(ann.span, format!("annotated type {} differs from inferred type {}", ann.ty, ty)));
        }
        self.check_size(&ty, s.span)?;
        Ok(self.push_node(op, operands, ty, s.name.name.clone(), s.span))
    }

    fn dispatch(&mut self, s: &Stmt) -> CResult<(Op, Vec<ValueId>, Type)> {
        let name = s.op.name.as_str();
        if let Some(op) = ops::unary_by_name(name) {
            return self.unary(s, op);
        }
        if let Some(op) = ops::binary_by_name(name) {
            return self.binary(s, op);
        }
        if let Some(kind) = ops::reduce_by_name(name) {
            return self.reduction(s, kind);
        }
        if let Some(kind) = scan::cumulative_by_name(name) {
            return self.cumulative(s, kind);
        }
        if let Some(kind) = conv::window_by_name(name) {
            return self.window(s, kind);
        }
        match name {
            "conv" => self.conv(s),
            "window_reduce" => self.window_reduce(s),
            "select" => self.select(s),
            "clip" => self.clip(s),
            "as_type" => self.as_type(s),
            "bitcast" => self.bitcast(s),
            "constant" => self.constant(s),
            "tensor" => self.tensor_literal(s),
            "iota" => self.iota(s),
            "eye" => self.eye(s),
            "reshape" => self.reshape(s),
            "squeeze" => self.squeeze(s),
            "broadcast" => self.broadcast(s),
            "transpose" => self.transpose(s),
            "slice" => self.slice(s),
            "pad" => self.pad(s),
            "reverse" => self.reverse(s),
            "concatenate" => self.concatenate(s),
            "stack" => self.stack(s),
            "dot" => self.dot(s),
            "argmax" => self.arg_reduce(s, true),
            "argmin" => self.arg_reduce(s, false),
            "call" => self.call(s),
            "elem" => self.elem(s),
            "reduce" => self.reduce_fn(s),
            "while" => self.while_loop(s),
            "cond" => self.cond(s),
            "sort" => self.sort(s, false),
            "argsort" => self.sort(s, true),
            "top_k" => self.top_k(s),
            "take" => self.take(s),
            "take_along_axis" => self.take_along_axis(s),
            "gather" => self.gather(s),
            "put_slice" => self.put_slice(s),
            "indexed_add" => self.indexed(s, true),
            "indexed_put" => self.indexed(s, false),
            "window_scatter_max" => self.window_scatter(s, true),
            "window_scatter_min" => self.window_scatter(s, false),
            "triangular_solve" => self.triangular_solve(s),
            _ if ops::UNSUPPORTED.contains(&name) => {
                Err(self.err(s.op.span, format!("unsupported operation '{name}' (not yet implemented)")))
            }
            _ => {
                let mut d = Diagnostic::error(s.op.span, format!("unknown operation '{name}'"));
                if let Some(best) = closest(name, ops::all_names()) {
                    d = d.with_note(format!("did you mean '{best}'?"));
                }
                self.diags.push(d);
                Err(Failed)
            }
        }
    }

    /// The statement's annotation, for ops that cannot infer their type.
    pub(crate) fn required_annotation(&mut self, s: &Stmt) -> CResult<TensorType> {
        match &s.ty {
            Some(ast::TypeExpr { ty: Type::Tensor(t), span }) => {
                self.check_size(&Type::Tensor(t.clone()), *span)?;
                Ok(t.clone())
            }
            Some(ast::TypeExpr { ty, span }) => {
                Err(self.err(*span, format!("'{}' produces a tensor, not the tuple type {ty}", s.op.name)))
            }
            None => Err(self.err(
                s.op.span,
                format!("'{}' needs a result type annotation (e.g. `{} = {} …  f32[2]`)", s.op.name, s.name.name, s.op.name),
            )),
        }
    }

    /// `r = call f, a, b`: arguments must match the callee's parameter types
    /// exactly (a literal argument takes the parameter's dtype).
    fn call(&mut self, s: &Stmt) -> CResult<(Op, Vec<ValueId>, Type)> {
        let a = self.args(s, &[], 1, usize::MAX)?;
        let callee = a.pos[0];
        let ExprKind::Name(fname) = &callee.kind else {
            return Err(self.err(callee.span, "expected the name of a function to call"));
        };
        let Some(&fi) = self.index.get(fname.as_str()) else {
            return Err(self.err(callee.span, format!("unknown function '{fname}'")));
        };
        let nparams = self.defs[fi].params.len();
        let nargs = a.pos.len() - 1;
        if nargs != nparams {
            return Err(self.err(
                s.op.span,
                format!("function '{fname}' expects {nparams} argument{}, got {nargs}", if nparams == 1 { "" } else { "s" }),
            ));
        }
        // The callee failed to check (its errors are reported) or is on a cycle.
        let Some(sig) = self.sigs[fi].clone() else {
            return Err(Failed);
        };
        let mut operands = Vec::new();
        let mut failed = false;
        for (i, (e, pty)) in a.pos[1..].iter().zip(&sig.params).enumerate() {
            let r = match literal_of(e) {
                Some(lit) if pty.rank() == 0 => {
                    self.check_fits(lit, pty.dtype, e.span).map(|_| self.literal_node(lit, pty.dtype, e.span))
                }
                _ => self.tensor_operand(e).and_then(|id| {
                    let t = self.tensor(id);
                    if &t == pty {
                        Ok(id)
                    } else {
                        Err(self.err(
                            e.span,
                            format!("argument {} of '{fname}' expects {pty}, got {t}", i + 1),
                        ))
                    }
                }),
            };
            match r {
                Ok(id) => operands.push(id),
                Err(Failed) => failed = true,
            }
        }
        if failed {
            return Err(Failed);
        }
        Ok((Op::Call { function: fi }, operands, sig.result))
    }

    /// `e = elem t, i`: one element of a tuple value.
    fn elem(&mut self, s: &Stmt) -> CResult<(Op, Vec<ValueId>, Type)> {
        let a = self.args(s, &[], 2, 2)?;
        let ExprKind::Name(n) = &a.pos[0].kind else {
            return Err(self.err(a.pos[0].span, "'elem' expects the name of a tuple value"));
        };
        let id = self.lookup(n, a.pos[0].span)?;
        let index = self.int(a.pos[1])?;
        match self.ty(id).clone() {
            Type::Tuple(items) => {
                let Some(t) = usize::try_from(index).ok().and_then(|i| items.get(i)) else {
                    return Err(self.err(
                        a.pos[1].span,
                        format!("index {index} is out of range for a tuple of {} elements", items.len()),
                    ));
                };
                Ok((Op::Elem { index: index as usize }, vec![id], t.clone()))
            }
            t => Err(self.err(a.pos[0].span, format!("'elem' expects a tuple, but '{n}' has type {t}"))),
        }
    }
}

/// The candidate nearest to `name` by edit distance, if it is close enough
/// to be a likely typo (at most a third of the name's length, and ≤ 2).
fn closest<'n>(name: &str, candidates: impl IntoIterator<Item = &'n str>) -> Option<&'n str> {
    let limit = (name.chars().count() / 3).clamp(1, 2);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        // Ties go to the alphabetically first name so the hint is deterministic.
        if d <= limit && best.is_none_or(|(bd, bc)| d < bd || (d == bd && c < bc)) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The number of a literal expression, if it is one.
pub(crate) fn literal_of(e: &Expr) -> Option<Literal> {
    match e.kind {
        ExprKind::Int(v) => Some(Literal::Int(v)),
        ExprKind::Float(v) => Some(Literal::Float(v)),
        _ => None,
    }
}

/// Spelling of a literal as the printer writes it and the messages show it.
pub(crate) fn literal_text(lit: Literal) -> String {
    match lit {
        Literal::Int(v) => v.to_string(),
        Literal::Float(v) if v.is_nan() => "nan".into(),
        Literal::Float(v) if v == f64::INFINITY => "infinity".into(),
        Literal::Float(v) if v == f64::NEG_INFINITY => "neg_infinity".into(),
        // `{:?}` is the shortest text that reads back to the same f64, and
        // always has a `.` or an exponent.
        Literal::Float(v) => format!("{v:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name in the op tables reaches a checker (or the "unsupported"
    /// diagnostic), never "unknown operation".
    #[test]
    fn every_listed_op_is_dispatched() {
        for name in ops::all_names() {
            let file = SourceFile::new("t.nxir", format!("def f() {{\n  r = {name}\n  return 1\n}}\n"));
            let Err(d) = compile(&file) else { continue };
            assert!(
                d.items.iter().all(|d| !d.message.starts_with("unknown operation")),
                "{name}: {:?}",
                d.items
            );
        }
    }

    #[test]
    fn edit_distance_and_closest() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("ad", ["add", "and", "max"]), Some("add"));
        assert_eq!(closest("sqrtt", ["sqrt", "rsqrt"]), Some("sqrt"));
        assert_eq!(closest("frobnicate", ["add", "sum"]), None);
    }
}

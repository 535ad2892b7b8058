//! Ops with `fn` regions: `while` → `scf.while`, `cond` → nested `scf.if`,
//! and the general `reduce` → a `linalg.generic` whose body is the user's
//! combiner inlined as scalar arithmetic.
//!
//! Tuples are flattened: the loop state and the branch results are lists of
//! tensors carried by the `scf` ops. `scf.if` makes only the taken branch run
//! (its ops live in that branch's block), which is Nx's semantics for `cond`
//! and what keeps an untaken branch's work — or its infinite loop — unobserved.
//! Region values capture enclosing values simply by using their SSA names
//! (neither `scf` region nor a `linalg.generic` body is isolated from above).

use std::collections::HashMap;

use tensorc_ir::graph::{BinaryOp, Function, Node, Op, RegionId, UnaryOp, ValueId};
use tensorc_ir::types::{DType, TensorType};

use crate::LowerError;
use crate::emit::{Emitter, GenericOperand, elem, identity_map, literal_attr, tensor_ty};
use crate::lower::{Lowerer, Val};

fn internal(msg: impl Into<String>) -> LowerError {
    LowerError::Internal(msg.into())
}

/// `(t1, t2)` or the single type, as `scf` result lists are written.
fn type_list(vs: &[Val]) -> String {
    let tys: Vec<String> = vs.iter().map(|v| tensor_ty(&v.ty)).collect();
    if tys.len() == 1 {
        tys[0].clone()
    } else {
        format!("({})", tys.join(", "))
    }
}

/// `%a, %b : t1, t2` as `scf.yield`/`scf.condition` operands.
fn yield_list(vs: &[Val]) -> String {
    let names: Vec<&str> = vs.iter().map(|v| v.name.as_str()).collect();
    let tys: Vec<String> = vs.iter().map(|v| tensor_ty(&v.ty)).collect();
    format!("{} : {}", names.join(", "), tys.join(", "))
}

/// `%r` or `%r:n` for an op with `n` results, and the result names.
fn results(res: &str, like: &[Val]) -> (String, Vec<Val>) {
    let head = if like.len() == 1 {
        res.to_string()
    } else {
        format!("{res}:{}", like.len())
    };
    let vals = like
        .iter()
        .enumerate()
        .map(|(i, v)| Val {
            name: if like.len() == 1 {
                res.to_string()
            } else {
                format!("{res}#{i}")
            },
            ty: v.ty.clone(),
        })
        .collect();
    (head, vals)
}

impl Lowerer<'_> {
    /// Lower a region-carrying node; `ops` are its flattened operands.
    pub(crate) fn control(
        &mut self,
        f: &Function,
        node: &Node,
        ops: &[Val],
        vals: &mut Vec<Vec<Val>>,
    ) -> Result<Vec<Val>, LowerError> {
        match &node.op {
            Op::While { cond, body } => self.while_loop(f, node, ops, *cond, *body, vals),
            Op::Cond { branches } => {
                let tys = node.ty.flatten();
                self.cond_chain(f, node, ops, branches, &tys, vals)
            }
            Op::ReduceFn { axes, body, .. } => {
                let ty = node
                    .ty
                    .as_tensor()
                    .ok_or_else(|| internal("reduce of a tuple type"))?
                    .clone();
                let (x, init) = (ops.first(), ops.get(1));
                let (Some(x), Some(init)) = (x, init) else {
                    return Err(internal("reduce lacks operands"));
                };
                let name = if ty.checked_num_elements() == Some(0) {
                    self.e.empty(&ty)
                } else {
                    self.reduce_fn(f, &x.clone(), &init.clone(), axes, *body, &ty, vals)?
                };
                Ok(vec![Val { name, ty }])
            }
            other => Err(internal(format!("{other:?} is not a region op"))),
        }
    }

    /// `scf.while` over the flattened state: the "before" region runs the
    /// condition, the "after" region the body.
    fn while_loop(
        &mut self,
        f: &Function,
        node: &Node,
        state: &[Val],
        cond: RegionId,
        body: RegionId,
        vals: &mut Vec<Vec<Val>>,
    ) -> Result<Vec<Val>, LowerError> {
        if state.len() != node.ty.flatten().len() {
            return Err(internal("while state does not match its type"));
        }
        // The loop updates its state buffers in place; start it from private
        // copies so a computed initial value that is also used elsewhere
        // (say returned by the def) keeps its value (see `private_copy`).
        let state: Vec<Val> = state.iter().map(|s| self.private_copy(s)).collect();
        let state = &state[..];
        let res = self.e.fresh();
        let before: Vec<Val> = state
            .iter()
            .map(|v| Val {
                name: self.e.fresh(),
                ty: v.ty.clone(),
            })
            .collect();
        let inits: Vec<String> = before
            .iter()
            .zip(state)
            .map(|(b, s)| format!("{} = {}", b.name, s.name))
            .collect();
        let tys: Vec<String> = state.iter().map(|v| tensor_ty(&v.ty)).collect();
        let (head, out) = results(&res, state);
        self.e.line(&format!(
            "{head} = scf.while ({}) : ({}) -> {} {{",
            inits.join(", "),
            tys.join(", "),
            type_list(state)
        ));
        self.e.indent(2);
        let c = self.region(f, cond, &before, vals)?;
        let c = c.first().ok_or_else(|| internal("while condition returns nothing"))?;
        self.e.set_loc(node.span);
        let b = self.predicate(c);
        self.e.stmt(&format!("scf.condition({b}) {}", yield_list(&before)));
        self.e.indent(-2);
        self.e.line("} do {");
        let after: Vec<Val> = state
            .iter()
            .map(|v| Val {
                name: self.e.fresh(),
                ty: v.ty.clone(),
            })
            .collect();
        let decl: Vec<String> = after
            .iter()
            .map(|a| format!("{}: {}", a.name, tensor_ty(&a.ty)))
            .collect();
        self.e.line(&format!("^bb0({}):", decl.join(", ")));
        self.e.indent(2);
        let next = self.region(f, body, &after, vals)?;
        if next.len() != state.len() {
            return Err(internal("while body returns a different state"));
        }
        self.e.set_loc(node.span);
        // One-shot bufferization needs each yielded state tensor to live in
        // its loop-carried buffer: copy the new state into it. With several
        // state tensors a new value may be (a view of) another old one, e.g.
        // when the body permutes the state; copying every new value out
        // first keeps the in-place copies from overwriting a value still to
        // be read.
        let staged: Vec<Val> = if next.len() > 1 {
            next.iter()
                .map(|n| Val {
                    name: self.e.copy_to_fresh(&n.name, &n.ty),
                    ty: n.ty.clone(),
                })
                .collect()
        } else {
            next
        };
        let mut carried = Vec::new();
        for (n, a) in staged.iter().zip(&after) {
            let t = tensor_ty(&a.ty);
            let c = self.e.op(&format!(
                "linalg.copy ins({} : {t}) outs({} : {t}) -> {t}",
                n.name, a.name
            ));
            carried.push(Val {
                name: c,
                ty: a.ty.clone(),
            });
        }
        self.e.stmt(&format!("scf.yield {}", yield_list(&carried)));
        self.e.indent(-2);
        self.e.stmt("}");
        Ok(out)
    }

    /// `v` in a buffer of its own (`bufferization.alloc_tensor … copy`), for
    /// ops that update their operand in place (a `while` state, a scatter
    /// target, a value a `cond` branch passes through). Without it, when the
    /// same value is also a result of the def, `eliminate-empty-tensors`
    /// computes it straight into that result's out-parameter and the in-place
    /// op then overwrites it there: MLIR 22's one-shot analysis does not see
    /// the conflict (found by the generated differential tests; regression
    /// cases `tests/cases/regressions/inplace_*.nxir`). An `alloc_tensor` is
    /// neither folded by `canonicalize` nor replaced by the empty-tensor
    /// elimination, so the copy survives to bufferization.
    pub(crate) fn private_copy(&mut self, v: &Val) -> Val {
        let t = tensor_ty(&v.ty);
        let name = self
            .e
            .op(&format!("bufferization.alloc_tensor() copy({}) : {t}", v.name));
        Val { name, ty: v.ty.clone() }
    }

    /// A scalar predicate tensor as an `i1` (nonzero is true).
    fn predicate(&mut self, p: &Val) -> String {
        let x = self
            .e
            .op(&format!("tensor.extract {}[] : {}", p.name, tensor_ty(&p.ty)));
        self.e.truthy(&x, p.ty.dtype)
    }

    /// Clause i runs when predicate i holds and none before it did:
    /// `scf.if p0 { b0 } else { scf.if p1 { b1 } else { … bn } }`.
    fn cond_chain(
        &mut self,
        f: &Function,
        node: &Node,
        preds: &[Val],
        branches: &[RegionId],
        tys: &[TensorType],
        vals: &mut Vec<Vec<Val>>,
    ) -> Result<Vec<Val>, LowerError> {
        let (Some((&first, rest)), Some((p, later))) = (branches.split_first(), preds.split_first()) else {
            // The last clause (`true -> …`) runs unconditionally.
            // Like every branch's values (see below) they are yielded as
            // private copies; the inner `scf.if` results already are fresh.
            let &last = branches.last().ok_or_else(|| internal("cond without branches"))?;
            let values = self.region(f, last, &[], vals)?;
            return Ok(values.iter().map(|v| self.private_copy(v)).collect());
        };
        self.e.set_loc(node.span);
        let c = self.predicate(p);
        let like: Vec<Val> = tys
            .iter()
            .map(|t| Val {
                name: String::new(),
                ty: t.clone(),
            })
            .collect();
        let res = self.e.fresh();
        let (head, out) = results(&res, &like);
        self.e.line(&format!(
            "{head} = scf.if {c} -> ({}) {{",
            tys.iter().map(tensor_ty).collect::<Vec<_>>().join(", ")
        ));
        self.e.indent(2);
        let then = self.region(f, first, &[], vals)?;
        self.e.set_loc(node.span);
        let then: Vec<Val> = then.iter().map(|v| self.private_copy(v)).collect();
        self.e.stmt(&format!("scf.yield {}", yield_list(&then)));
        self.e.indent(-2);
        self.e.line("} else {");
        self.e.indent(2);
        let other = self.cond_chain(f, node, later, rest, tys, vals)?;
        self.e.set_loc(node.span);
        self.e.stmt(&format!("scf.yield {}", yield_list(&other)));
        self.e.indent(-2);
        self.e.stmt("}");
        Ok(out)
    }

    /// Nx's general reduce: the output starts as init (converted to the
    /// result dtype) and every element, converted too, is folded in with the
    /// combiner in loop (row-major) order, so init enters each group once.
    #[allow(clippy::too_many_arguments, reason = "the node's parts, unpacked once by the caller")]
    fn reduce_fn(
        &mut self,
        f: &Function,
        x: &Val,
        init: &Val,
        axes: &[usize],
        body: RegionId,
        ty: &TensorType,
        vals: &mut [Vec<Val>],
    ) -> Result<String, LowerError> {
        let d = ty.dtype;
        let rank = x.ty.rank();
        let kept: Vec<usize> = (0..rank).filter(|i| !axes.contains(i)).collect();
        let red_ty = TensorType::new(d, kept.iter().map(|&i| x.ty.shape[i]).collect::<Vec<_>>());
        let init = self.convert_tensor(init, d);
        let s = self
            .e
            .op(&format!("tensor.extract {}[] : {}", init.name, tensor_ty(&init.ty)));
        let red: Vec<bool> = (0..rank).map(|i| axes.contains(&i)).collect();
        // Over no axes the body must not read its output: fused into a
        // broadcasting consumer it would fold init in again per consumer
        // element (see reduce.rs). It starts from the init scalar instead.
        let reduces = red.contains(&true);
        let start = s.clone();
        let fill = if reduces { self.e.fill(&s, &red_ty) } else { self.e.empty(&red_ty) };
        let captured = self.captured_scalars(f, body, vals)?;
        let out_map = kept.iter().map(|i| format!("d{i}")).collect::<Vec<_>>().join(", ");
        let outs = [GenericOperand {
            value: fill,
            ty: red_ty.clone(),
            map: out_map,
        }];
        let dx = x.ty.dtype;
        let mut failure = None;
        let r = self
            .e
            .generic(rank, &red, &[x.operand(identity_map(rank))], &outs, |e, s| {
                let v = e.convert(&s[0], dx, d);
                let acc = if reduces { &s[1] } else { &start };
                match combine(e, f, body, acc, &v, &captured, d) {
                    Ok(r) => vec![r],
                    Err(err) => {
                        failure = Some(err);
                        vec![s[1].clone()]
                    }
                }
            })
            .remove(0);
        if let Some(err) = failure {
            return Err(err);
        }
        Ok(self.reshape(&Val { name: r, ty: red_ty }, ty))
    }

    /// Scalars (rank-0 tensors) that a combiner region reads from enclosing
    /// regions, extracted before the loop that inlines it.
    pub(crate) fn captured_scalars(
        &mut self,
        f: &Function,
        rid: RegionId,
        vals: &[Vec<Val>],
    ) -> Result<HashMap<ValueId, String>, LowerError> {
        let r = f.region(rid);
        let mut out = HashMap::new();
        for &id in &r.nodes {
            for &o in &f.node(id).operands {
                if r.nodes.contains(&o) || out.contains_key(&o) {
                    continue;
                }
                let v = vals
                    .get(o.index())
                    .and_then(|v| v.first())
                    .ok_or_else(|| internal("capture before definition"))?;
                if v.ty.rank() != 0 {
                    return Err(internal("a combiner captures a non-scalar"));
                }
                let s = self
                    .e
                    .op(&format!("tensor.extract {}[] : {}", v.name, tensor_ty(&v.ty)));
                out.insert(o, s);
            }
        }
        Ok(out)
    }
}

/// Inline a combiner region (two scalar parameters, element-wise scalar ops)
/// on the scalars `acc` and `v`; returns its result converted to `d`.
pub(crate) fn combine(
    e: &mut Emitter,
    f: &Function,
    rid: RegionId,
    acc: &str,
    v: &str,
    captured: &HashMap<ValueId, String>,
    d: DType,
) -> Result<String, LowerError> {
    let r = f.region(rid);
    let mut sv: HashMap<ValueId, String> = captured.clone();
    for (&p, a) in r.params.iter().zip([acc, v]) {
        sv.insert(p, a.to_string());
    }
    let dtype = |id: ValueId| {
        f.node(id)
            .ty
            .as_tensor()
            .map(|t| t.dtype)
            .ok_or_else(|| internal("tuple in a combiner"))
    };
    for &id in &r.nodes {
        let n = f.node(id);
        if matches!(n.op, Op::Param(_)) {
            continue;
        }
        let nd = dtype(id)?;
        let mut ins = Vec::new();
        for &o in &n.operands {
            let s = sv
                .get(&o)
                .cloned()
                .ok_or_else(|| internal("combiner operand not lowered"))?;
            ins.push((s, dtype(o)?));
        }
        let value = scalar_node(e, &n.op, &ins, nd)?;
        sv.insert(id, value);
    }
    let &res = r.results.first().ok_or_else(|| internal("combiner returns nothing"))?;
    let s = sv
        .get(&res)
        .cloned()
        .ok_or_else(|| internal("combiner result not lowered"))?;
    Ok(e.convert(&s, dtype(res)?, d))
}

/// One element-wise node on scalars `ins` (value, dtype), producing dtype `d`
/// with the same conversions as the tensor lowering of that node.
pub(crate) fn scalar_node(e: &mut Emitter, op: &Op, ins: &[(String, DType)], d: DType) -> Result<String, LowerError> {
    let arg = |i: usize| {
        ins.get(i)
            .cloned()
            .ok_or_else(|| internal("combiner node lacks an operand"))
    };
    Ok(match op {
        Op::Constant(lit) => e.op(&format!("arith.constant {} : {}", literal_attr(d, *lit), elem(d))),
        Op::Unary(u) => {
            let (x, din) = arg(0)?;
            let compute = if matches!(u, UnaryOp::IsNan | UnaryOp::IsInfinity | UnaryOp::LogicalNot) {
                din
            } else {
                d
            };
            let x = e.convert(&x, din, compute);
            e.unary(*u, &x, compute)
        }
        Op::Binary { op, compute } => {
            let ((a, da), (b, db)) = (arg(0)?, arg(1)?);
            let x = e.convert(&a, da, *compute);
            let y = e.convert(&b, db, *compute);
            let r = e.binary(*op, &x, &y, *compute);
            let rd = if op.is_predicate() { DType::U8 } else { *compute };
            e.convert(&r, rd, d)
        }
        Op::Select { compute } => {
            let ((p, dp), (a, da), (b, db)) = (arg(0)?, arg(1)?, arg(2)?);
            let c = e.truthy(&p, dp);
            let x = e.convert(&a, da, *compute);
            let y = e.convert(&b, db, *compute);
            let r = e.select(&c, &x, &y, elem(*compute));
            e.convert(&r, *compute, d)
        }
        Op::Clip { compute } => {
            let ((a, da), (l, dl), (h, dh)) = (arg(0)?, arg(1)?, arg(2)?);
            let v = e.convert(&a, da, *compute);
            let lo = e.convert(&l, dl, *compute);
            let hi = e.convert(&h, dh, *compute);
            let m = e.binary(BinaryOp::Max, &v, &lo, *compute);
            let r = e.binary(BinaryOp::Min, &m, &hi, *compute);
            e.convert(&r, *compute, d)
        }
        Op::AsType => {
            let (x, din) = arg(0)?;
            e.convert(&x, din, d)
        }
        Op::Bitcast => {
            let (x, din) = arg(0)?;
            if elem(din) == elem(d) {
                x
            } else {
                e.cast("arith.bitcast", &x, elem(din), elem(d))
            }
        }
        other => return Err(LowerError::Unsupported(format!("{other:?} inside a reduce function"))),
    })
}

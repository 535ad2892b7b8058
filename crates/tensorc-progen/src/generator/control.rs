//! Control flow: `while` loops with a bounded trip count and `cond` with
//! one or two predicates, each written on one line (`;` between nested
//! statements) so the program keeps the one-statement-per-line form the
//! shrinker edits.
//!
//! A loop's state is an `s32` counter (starting at the literal 0) and one
//! or two tensors; the condition compares the counter with a small constant
//! (and sometimes also with a captured scalar, which makes the trip count
//! data-dependent but still at most that constant); the body applies one or
//! two element-wise ops that keep the state's type, to the state and to
//! captured values, and may rotate the tensors. The model runs the body's
//! interval arithmetic for every possible trip count and keeps the union.
//! `cond` predicates are exact, so both implementations take the same branch.
//! Nested names start with the statement's own name (`v7a`, `v7c0`), so they
//! never clash with the body's `v<n>`/`p<n>` names or the shrinker's `q<n>`.

use super::{Gen, Val};
use crate::model::{self, max_abs, normalize, unit};
use tensorc_ir::types::broadcast_shapes;
use tensorc_ir::{DType, TensorType};

/// The `KNOWN_BUGS` variants of `while` and `cond`: a computed value as a
/// loop's initial state or a branch's value (see `KNOWN_BUGS`).
const STATE_BUG: &str = "while:computed_state";
const BRANCH_BUG: &str = "cond:computed_value";

/// A loop-body op on the first state tensor.
#[derive(Clone, Copy, Debug)]
enum Step {
    Half,
    Negate,
    Triple,
    /// `op a, y` with y a captured value (pool index), the second state
    /// tensor (`None`), or a literal.
    With(&'static str, Operand),
}

#[derive(Clone, Copy, Debug)]
enum Operand {
    Captured(usize),
    Second,
    Lit(f64),
}

/// Range and error of a state tensor, as the model tracks it.
#[derive(Clone, Copy, Debug)]
struct Span3 {
    lo: f64,
    hi: f64,
    err: f64,
}

impl Span3 {
    fn of(v: &Val) -> Self {
        Span3 {
            lo: v.lo,
            hi: v.hi,
            err: v.err,
        }
    }
    fn union(self, o: Span3) -> Span3 {
        Span3 {
            lo: self.lo.min(o.lo),
            hi: self.hi.max(o.hi),
            err: self.err.max(o.err),
        }
    }
}

impl Gen<'_> {
    /// `s = while {0, a[, b]}, fn(i, a[, b]) { … }, fn(i, a[, b]) { … }`.
    pub(super) fn while_loop(&mut self) -> Option<()> {
        if !["while", "less", "add"].iter().all(|op| self.allowed(op)) {
            return None;
        }
        // While the known bug is open, states start from parameters only
        // (inputs are never written in place; see KNOWN_BUGS).
        let any = self.allowed(STATE_BUG);
        let x = self.pick_or_param(|v| {
            (any || v.name.starts_with('p')) && (v.exact() || model::is_finite_range(v.lo, v.hi))
        })?;
        let a = self.pool[x].clone();
        let t = a.ty.clone();
        let second = if self.rng.chance(0.4) {
            let found = self
                .pick_any(|v| v.ty == t && v.name != a.name && (any || v.name.starts_with('p')));
            Some(match found {
                Some(b) => b,
                None => self.new_param(t.clone()),
            })
        } else {
            None
        };
        let k = self.rng.below(4);
        let lim = if self.rng.chance(0.3) && self.allowed("logical_and") {
            self.pick_any(|v| v.ty.rank() == 0 && v.ty.dtype.is_int() && v.exact())
        } else {
            None
        };
        // The body: one or two steps, in order, on the first tensor.
        let mut steps = Vec::new();
        for _ in 0..1 + self.rng.below(2) {
            steps.push(self.step(&a, second.is_some())?);
        }
        let rotate = second.is_some() && self.rng.chance(0.5);
        // Model: the state after 0..=k iterations, united.
        let d = t.dtype;
        let mut sa = Span3::of(&a);
        let mut sb = second.map(|b| Span3::of(&self.pool[b]));
        let (mut ua, mut ub) = (sa, sb);
        for _ in 0..k {
            let mut cur = sa;
            for &st in &steps {
                cur = self.apply(st, cur, sb, d)?;
            }
            if rotate {
                sb = Some(sa);
            }
            sa = cur;
            ua = ua.union(sa);
            ub = match (ub, sb) {
                (Some(u), Some(s)) => Some(u.union(s)),
                _ => None,
            };
        }
        for s in [Some(ua), ub].into_iter().flatten() {
            if s.err > model::budget(d, s.lo, s.hi) {
                return None;
            }
        }
        // Text.
        let name = self.fresh();
        let (pi, pa, pb) = (format!("{name}i"), format!("{name}a"), format!("{name}b"));
        let params = if second.is_some() {
            format!("{pi}, {pa}, {pb}")
        } else {
            format!("{pi}, {pa}")
        };
        let mut cond = format!("{name}c0 = less {pi}, {k}");
        let mut ret = format!("{name}c0");
        if let Some(l) = lim {
            let ln = self.pool[l].name.clone();
            cond.push_str(&format!(
                "; {name}c1 = less {pi}, {ln}; {name}c2 = logical_and {name}c0, {name}c1"
            ));
            ret = format!("{name}c2");
        }
        let mut body = format!("{name}j = add {pi}, 1");
        let mut cur = pa.clone();
        for (n, &st) in steps.iter().enumerate() {
            let out = format!("{name}t{n}");
            let rhs = match st {
                Step::Half => format!("multiply {cur}, 0.5"),
                Step::Negate => format!("negate {cur}"),
                Step::Triple => format!("multiply {cur}, 3"),
                Step::With(op, o) => {
                    let y = match o {
                        Operand::Captured(c) => self.pool[c].name.clone(),
                        Operand::Second => pb.clone(),
                        Operand::Lit(v) => {
                            if d.is_float() {
                                format!("{v:?}")
                            } else {
                                format!("{}", v as i64)
                            }
                        }
                    };
                    format!("{op} {cur}, {y}")
                }
            };
            body.push_str(&format!("; {out} = {rhs}"));
            cur = out;
        }
        let state_out = match second {
            None => format!("{{{name}j, {cur}}}"),
            Some(_) if rotate => format!("{{{name}j, {cur}, {pa}}}"),
            Some(_) => format!("{{{name}j, {cur}, {pb}}}"),
        };
        let init = match second {
            None => format!("{{0, {}}}", a.name),
            Some(b) => format!("{{0, {}, {}}}", a.name, self.pool[b].name),
        };
        let tys = match second {
            None => format!("{{s32, {t}}}"),
            Some(_) => format!("{{s32, {t}, {t}}}"),
        };
        let nan = a.nan || second.is_some_and(|b| self.pool[b].nan);
        self.region_inputs.push((x, STATE_BUG));
        if let Some(b) = second {
            self.region_inputs.push((b, STATE_BUG));
        }
        self.lines.push(format!(
            "  {name} = while {init}, fn({params}) {{ {cond}; return {ret} }}, fn({params}) {{ {body}; return {state_out} }}  {tys}"
        ));
        if self.rng.chance(0.3) {
            self.push(
                format!("elem {name}, 0"),
                TensorType::scalar(DType::S32),
                0.0,
                k as f64,
                0.0,
            );
        }
        let e = self.push(format!("elem {name}, 1"), t.clone(), ua.lo, ua.hi, ua.err);
        self.pool[e].nan |= nan || d.is_float() && !model::is_finite_range(ua.lo, ua.hi);
        if let Some(ub) = ub
            && self.rng.chance(0.6)
        {
            let e = self.push(format!("elem {name}, 2"), t, ub.lo, ub.hi, ub.err);
            self.pool[e].nan |= nan;
        }
        Some(())
    }

    /// One body step for a state tensor like `a` (whose type it keeps).
    fn step(&mut self, a: &Val, second: bool) -> Option<Step> {
        let d = a.ty.dtype;
        let shape = a.ty.shape.clone();
        let ops: &[&str] = if d.is_float() {
            &["add", "subtract", "max", "min"]
        } else {
            &["add", "subtract", "max", "min", "bitwise_xor", "multiply"]
        };
        let st = match self.rng.below(6) {
            0 if d.is_float() => Step::Half,
            0 => Step::Triple,
            1 => Step::Negate,
            _ => {
                let op = ops[self.rng.below(ops.len())];
                let o = match self.rng.below(3) {
                    0 if second => Operand::Second,
                    1 => Operand::Lit(if d.is_float() {
                        0.5
                    } else {
                        1.0 + self.rng.below(3) as f64
                    }),
                    _ => {
                        let c = self.pick_any(|v| {
                            v.ty.dtype == d
                                && v.exact()
                                && broadcast_shapes(&shape, &v.ty.shape).as_deref()
                                    == Some(&shape[..])
                        });
                        match c {
                            Some(c) => Operand::Captured(c),
                            None => Operand::Lit(1.0),
                        }
                    }
                };
                Step::With(op, o)
            }
        };
        let op = match st {
            Step::Half | Step::Triple => "multiply",
            Step::Negate => "negate",
            Step::With(op, _) => op,
        };
        self.allowed(op).then_some(st)
    }

    /// The model of one step: range and error after it.
    fn apply(&self, st: Step, a: Span3, b: Option<Span3>, d: DType) -> Option<Span3> {
        let y = |o: Operand| -> Option<Span3> {
            match o {
                Operand::Captured(c) => Some(Span3::of(&self.pool[c])),
                Operand::Second => b,
                Operand::Lit(v) => Some(Span3 {
                    lo: v,
                    hi: v,
                    err: 0.0,
                }),
            }
        };
        let u = unit(d);
        let round = |e: f64, m: f64| if e > 0.0 { e + u * m } else { 0.0 };
        let full = Span3 {
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY,
            err: 0.0,
        };
        let out = match st {
            Step::Half => Span3 {
                lo: a.lo / 2.0,
                hi: a.hi / 2.0,
                err: a.err / 2.0,
            },
            Step::Negate if d.is_unsigned_int() => full,
            Step::Negate => Span3 {
                lo: -a.hi,
                hi: -a.lo,
                err: a.err,
            },
            Step::Triple => full,
            Step::With(op, o) => {
                let y = y(o)?;
                match op {
                    "add" => {
                        let (lo, hi) = (a.lo + y.lo, a.hi + y.hi);
                        Span3 {
                            lo,
                            hi,
                            err: round(a.err + y.err, max_abs(lo, hi)),
                        }
                    }
                    "subtract" => {
                        let (lo, hi) = (a.lo - y.hi, a.hi - y.lo);
                        Span3 {
                            lo,
                            hi,
                            err: round(a.err + y.err, max_abs(lo, hi)),
                        }
                    }
                    "max" => Span3 {
                        lo: a.lo.max(y.lo),
                        hi: a.hi.max(y.hi),
                        err: a.err.max(y.err),
                    },
                    "min" => Span3 {
                        lo: a.lo.min(y.lo),
                        hi: a.hi.min(y.hi),
                        err: a.err.max(y.err),
                    },
                    _ => full,
                }
            }
        };
        if out.err > 0.0 && !model::is_finite_range(a.lo, a.hi) {
            return None;
        }
        let (lo, hi) = normalize(d, out.lo.min(out.hi), out.hi.max(out.lo));
        let err = if d.is_float() { out.err } else { 0.0 };
        if err > model::budget(d, lo, hi) {
            return None;
        }
        Some(Span3 { lo, hi, err })
    }

    /// `r = cond p -> …, [q -> …,] true -> …` over one or two result tensors.
    pub(super) fn cond(&mut self) -> Option<()> {
        if !self.allowed("cond") {
            return None;
        }
        let mut preds = Vec::new();
        for _ in 0..1 + self.rng.below(2) {
            preds.push(self.predicate_scalar()?);
        }
        let any = self.allowed(BRANCH_BUG);
        let first = self.pick_or_param(|v| any || v.name.starts_with('p'))?;
        let mut tys = vec![self.pool[first].ty.clone()];
        if self.rng.chance(0.5) {
            let s = self.pick_or_param(|v| any || v.name.starts_with('p'))?;
            tys.push(self.pool[s].ty.clone());
        }
        let name = self.fresh();
        let mut clauses = Vec::new();
        let mut spans: Vec<Option<Span3>> = vec![None; tys.len()];
        let mut nan = false;
        for c in 0..=preds.len() {
            // The values this branch returns (before its optional op).
            let mut vals = Vec::new();
            for (k, ty) in tys.iter().enumerate() {
                let v = if c == 0 && k == 0 {
                    first
                } else {
                    match self.pick_any(|v| v.ty == *ty && (any || v.name.starts_with('p'))) {
                        Some(v) if self.rng.chance(0.7) => v,
                        _ => self.new_param(ty.clone()),
                    }
                };
                vals.push(v);
            }
            let names: Vec<String> = vals.iter().map(|&v| self.pool[v].name.clone()).collect();
            self.region_inputs
                .extend(vals.iter().map(|&v| (v, BRANCH_BUG)));
            let mut outs: Vec<Span3> = vals.iter().map(|&v| Span3::of(&self.pool[v])).collect();
            nan |= vals.iter().any(|&v| self.pool[v].nan);
            let text = if self.rng.chance(0.4)
                && ["negate", "abs", "multiply", "add"]
                    .iter()
                    .all(|op| self.allowed(op))
            {
                // fn() { t = op x; return {t, y} }: an op that keeps the type.
                let d = tys[0].dtype;
                let (rhs, out) = match self.rng.below(3) {
                    0 => (
                        format!("negate {}", names[0]),
                        self.apply(Step::Negate, outs[0], None, d),
                    ),
                    1 => (format!("abs {}", names[0]), {
                        let s = outs[0];
                        let wraps = d.is_signed_int();
                        Some(if wraps {
                            Span3 {
                                lo: f64::NEG_INFINITY,
                                hi: f64::INFINITY,
                                err: 0.0,
                            }
                        } else {
                            Span3 {
                                lo: model::min_abs(s.lo, s.hi),
                                hi: max_abs(s.lo, s.hi),
                                err: s.err,
                            }
                        })
                    }),
                    _ => {
                        let lit = if d.is_float() { 0.5 } else { 1.0 };
                        let rhs = if d.is_float() {
                            format!("multiply {}, {lit:?}", names[0])
                        } else {
                            format!("add {}, 1", names[0])
                        };
                        let st = if d.is_float() {
                            Step::Half
                        } else {
                            Step::With("add", Operand::Lit(lit))
                        };
                        (rhs, self.apply(st, outs[0], None, d))
                    }
                };
                outs[0] = out?;
                let mut ret = vec![format!("{name}f{c}")];
                ret.extend(names[1..].iter().cloned());
                let ret = if ret.len() == 1 {
                    ret[0].clone()
                } else {
                    format!("{{{}}}", ret.join(", "))
                };
                format!("fn() {{ {name}f{c} = {rhs}; return {ret} }}")
            } else if names.len() == 1 {
                names[0].clone()
            } else {
                format!("{{{}}}", names.join(", "))
            };
            for (k, o) in outs.into_iter().enumerate() {
                spans[k] = Some(match spans[k] {
                    None => o,
                    Some(s) => s.union(o),
                });
            }
            let p = if c < preds.len() {
                self.pool[preds[c]].name.clone()
            } else {
                "true".to_string()
            };
            clauses.push(format!("{p} -> {text}"));
        }
        let spans: Vec<Span3> = spans.into_iter().collect::<Option<_>>()?;
        for (s, ty) in spans.iter().zip(&tys) {
            if s.err > model::budget(ty.dtype, s.lo, s.hi) {
                return None;
            }
        }
        let rhs = format!("cond {}", clauses.join(", "));
        if tys.len() == 1 {
            let s = spans[0];
            let e = self.push_named(name, rhs, tys[0].clone(), s.lo, s.hi, s.err);
            self.pool[e].nan |= nan;
            return Some(());
        }
        let tt: Vec<String> = tys.iter().map(|t| t.to_string()).collect();
        self.lines
            .push(format!("  {name} = {rhs}  {{{}}}", tt.join(", ")));
        for (k, (s, ty)) in spans.iter().zip(&tys).enumerate() {
            if k == 0 || self.rng.chance(0.7) {
                let e = self.push(format!("elem {name}, {k}"), ty.clone(), s.lo, s.hi, s.err);
                self.pool[e].nan |= nan;
            }
        }
        Some(())
    }

    /// A scalar predicate for `cond`: an exact scalar of any dtype (nonzero
    /// is true; NaN is nonzero), or `any`/`all` of an exact tensor.
    fn predicate_scalar(&mut self) -> Option<usize> {
        if self.rng.chance(0.5)
            && let Some(s) = self.pick_any(|v| v.ty.rank() == 0 && v.exact())
        {
            return Some(s);
        }
        let x = self.pick_or_param(|v| v.exact())?;
        let op = if self.rng.chance(0.5) { "any" } else { "all" };
        if !self.allowed(op) {
            return None;
        }
        let name = self.pool[x].name.clone();
        Some(self.push(
            format!("{op} {name}"),
            TensorType::scalar(DType::U8),
            0.0,
            1.0,
            0.0,
        ))
    }
}

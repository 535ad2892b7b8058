//! Reading a statement's operands and options: counts, keywords, integer
//! lists, axes, atoms, booleans, and literals that must fit a dtype.
//!
//! Every op checker goes through these helpers so that the same mistake gets
//! the same message whichever op it is made in.

use super::{CResult, Failed, FnCx, literal_text};
use crate::ast::{Arg, Expr, ExprKind, Ident, Stmt};
use crate::graph::{Literal, ValueId};
use crate::span::Span;
use crate::types::{DType, Type};

/// A statement's arguments split into positional operands and keyword options.
pub(crate) struct Args<'s> {
    pub pos: Vec<&'s Expr>,
    kw: Vec<(&'s Ident, &'s Expr)>,
}

impl<'s> Args<'s> {
    /// The value of keyword option `key`, if given.
    pub fn kw(&self, key: &str) -> Option<&'s Expr> {
        self.kw.iter().find(|(k, _)| k.name == key).map(|&(_, e)| e)
    }
}

impl FnCx<'_> {
    /// Split `s`'s arguments, checking the positional count is in
    /// `min..=max` and every keyword is one of `keys`, given once.
    pub(crate) fn args<'s>(&mut self, s: &'s Stmt, keys: &[&str], min: usize, max: usize) -> CResult<Args<'s>> {
        let mut a = Args { pos: Vec::new(), kw: Vec::new() };
        let mut failed = false;
        for arg in &s.args {
            match arg {
                Arg::Positional(e) => a.pos.push(e),
                Arg::Keyword(k, e) => {
                    if !keys.contains(&k.name.as_str()) {
                        let msg = if keys.is_empty() {
                            format!("'{}' takes no options, got '{}'", s.op.name, k.name)
                        } else {
                            format!("unknown option '{}' for '{}' (expected {})", k.name, s.op.name, keys.join(", "))
                        };
                        self.err(k.span, msg);
                        failed = true;
                    } else if a.kw.iter().any(|(k2, _)| k2.name == k.name) {
                        self.err(k.span, format!("option '{}' is given twice", k.name));
                        failed = true;
                    } else {
                        a.kw.push((k, e));
                    }
                }
            }
        }
        let n = a.pos.len();
        if n < min || n > max {
            let expected = if min == max {
                format!("{min} operand{}", if min == 1 { "" } else { "s" })
            } else if max == usize::MAX {
                format!("at least {min} operand{}", if min == 1 { "" } else { "s" })
            } else {
                format!("{min} to {max} operands")
            };
            self.err(s.op.span, format!("'{}' expects {expected}, got {n}", s.op.name));
            failed = true;
        }
        if failed { Err(Failed) } else { Ok(a) }
    }

    /// An operand that must be a tensor-typed name (literals are handled by the caller).
    pub(crate) fn tensor_operand(&mut self, e: &Expr) -> CResult<ValueId> {
        match &e.kind {
            ExprKind::Name(n) => {
                let id = self.lookup(n, e.span)?;
                if let Type::Tuple(_) = self.ty(id) {
                    let t = self.ty(id).clone();
                    return Err(self.err(e.span, format!("'{n}' is a tuple {t}; use `elem` to take one element")));
                }
                Ok(id)
            }
            _ => Err(self.err(e.span, format!("expected a tensor name, found {}", describe(e)))),
        }
    }

    pub(crate) fn int(&mut self, e: &Expr) -> CResult<i128> {
        match e.kind {
            ExprKind::Int(v) => Ok(v),
            _ => Err(self.err(e.span, format!("expected an integer, found {}", describe(e)))),
        }
    }

    /// A list `[a, b]` of integers (a tuple `{a, b}` too when `tuple_ok`).
    pub(crate) fn int_list(&mut self, e: &Expr, tuple_ok: bool) -> CResult<Vec<(i128, Span)>> {
        let items = match &e.kind {
            ExprKind::List(items) => items,
            ExprKind::Tuple(items) if tuple_ok => items,
            _ => return Err(self.err(e.span, format!("expected a list of integers, found {}", describe(e)))),
        };
        let mut out = Vec::new();
        for i in items {
            out.push((self.int(i)?, i.span));
        }
        Ok(out)
    }

    /// Normalize one axis (negative counts from the end).
    pub(crate) fn axis(&mut self, v: i128, rank: usize, span: Span) -> CResult<usize> {
        let r = rank as i128;
        let a = if v < 0 { v + r } else { v };
        if a < 0 || a >= r {
            return Err(self.err(span, format!("axis {v} is out of range for a tensor of rank {rank}")));
        }
        Ok(a as usize)
    }

    /// A list of distinct axes, normalized, in the order written.
    pub(crate) fn axes(&mut self, e: &Expr, rank: usize) -> CResult<Vec<usize>> {
        let list = self.int_list(e, false)?;
        let mut out: Vec<usize> = Vec::new();
        for (v, span) in list {
            let a = self.axis(v, rank, span)?;
            if out.contains(&a) {
                return Err(self.err(span, format!("axis {v} is listed twice")));
            }
            out.push(a);
        }
        Ok(out)
    }

    /// `axes: nil | [..]` (absent means nil): sorted axes, `None` for all.
    pub(crate) fn axes_or_nil(&mut self, e: Option<&Expr>, rank: usize) -> CResult<Option<Vec<usize>>> {
        match e {
            None => Ok(None),
            Some(Expr { kind: ExprKind::Nil, .. }) => Ok(None),
            Some(e) => {
                let mut axes = self.axes(e, rank)?;
                axes.sort_unstable();
                Ok(Some(axes))
            }
        }
    }

    /// `axis: k | nil` (absent gives `default`).
    pub(crate) fn axis_or_nil(&mut self, e: Option<&Expr>, rank: usize, default: Option<i128>) -> CResult<Option<usize>> {
        let v = match e {
            None => default,
            Some(Expr { kind: ExprKind::Nil, .. }) => None,
            Some(e) => Some(self.int(e)?),
        };
        match v {
            None => Ok(None),
            Some(v) => Ok(Some(self.axis(v, rank, e.map_or(Span::default(), |e| e.span))?)),
        }
    }

    pub(crate) fn bool_opt(&mut self, e: Option<&Expr>, default: bool) -> CResult<bool> {
        match e {
            None => Ok(default),
            Some(Expr { kind: ExprKind::Bool(b), .. }) => Ok(*b),
            Some(e) => Err(self.err(e.span, format!("expected true or false, found {}", describe(e)))),
        }
    }

    /// An atom option that must be one of `allowed` (absent gives `default`).
    pub(crate) fn atom_opt(&mut self, e: Option<&Expr>, allowed: &[&str], default: &'static str) -> CResult<String> {
        let Some(e) = e else { return Ok(default.to_string()) };
        match &e.kind {
            ExprKind::Atom(a) if allowed.contains(&a.as_str()) => Ok(a.clone()),
            _ => {
                let choices: Vec<String> = allowed.iter().map(|a| format!(":{a}")).collect();
                Err(self.err(e.span, format!("expected one of {}, found {}", choices.join(", "), describe(e))))
            }
        }
    }

    /// A literal converted to `dtype` explicitly (`constant`, `tensor`, pad
    /// values, call arguments) must be representable in it.
    pub(crate) fn check_fits(&mut self, lit: Literal, dtype: DType, span: Span) -> CResult<()> {
        if literal_fits(lit, dtype) {
            Ok(())
        } else {
            Err(self.err(span, format!("literal {} does not fit {dtype}", literal_text(lit))))
        }
    }

    /// The type of a literal with no tensor next to it: s32 for integers
    /// (wider when it does not fit), f32 for floats, or f32 for an integer
    /// when `float_group` (another literal of its group is a float).
    pub(crate) fn default_literal_dtype(&mut self, lit: Literal, float_group: bool, span: Span) -> CResult<DType> {
        match lit {
            Literal::Float(_) => Ok(DType::F32),
            Literal::Int(_) if float_group => Ok(DType::F32),
            Literal::Int(v) => {
                for d in [DType::S32, DType::S64, DType::U64] {
                    if literal_fits(lit, d) {
                        return Ok(d);
                    }
                }
                Err(self.err(span, format!("literal {v} does not fit any integer type")))
            }
        }
    }
}

/// Largest finite value of each float dtype.
fn float_max(d: DType) -> f64 {
    match d {
        DType::F16 => 65504.0,
        DType::BF16 => 3.389_531_389_251_535_5e38,
        DType::F32 => f32::MAX as f64,
        _ => f64::MAX,
    }
}

/// Whether a literal is representable in `dtype`: integers in range, floats
/// only in float dtypes and without overflowing to infinity.
pub(crate) fn literal_fits(lit: Literal, dtype: DType) -> bool {
    match (lit, dtype.int_range()) {
        (Literal::Int(v), Some((lo, hi))) => lo <= v && v <= hi,
        (Literal::Int(v), None) => (v as f64).abs() <= float_max(dtype),
        (Literal::Float(_), Some(_)) => false,
        (Literal::Float(v), None) => !v.is_finite() || v.abs() <= float_max(dtype),
    }
}

/// How an argument is described in "expected …, found …" messages.
pub(crate) fn describe(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Name(n) => format!("'{n}'"),
        ExprKind::Int(v) => format!("the integer {v}"),
        ExprKind::Float(v) => format!("the number {}", literal_text(Literal::Float(*v))),
        ExprKind::Atom(a) => format!(":{a}"),
        ExprKind::Nil => "nil".into(),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::List(_) => "a list".into(),
        ExprKind::Tuple(_) => "a tuple".into(),
        ExprKind::Fn(_) | ExprKind::FnRef { .. } => "a function".into(),
        ExprKind::Clause(..) => "a cond clause".into(),
    }
}

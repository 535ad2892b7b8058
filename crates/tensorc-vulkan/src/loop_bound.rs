//! An upper bound of the loop iterations one invocation of a kernel runs,
//! computed on the outlined `gpu.func` (structured `scf` loops, before the
//! SPIR-V conversion).
//!
//! It exists because lavapipe (Mesa's CPU driver) silently stops a kernel
//! invocation's loops after 65535 iterations in total: the runtime refuses a
//! function whose kernel may run longer there (`Kernel::loop_iterations`),
//! so that the result is an error, never a wrong value. The bound counts
//! every back edge the way such a per-invocation limiter does: a loop of `n`
//! trips whose body runs `b` iterations of inner loops counts `n * (1 + b)`,
//! loops one after another add. A loop whose trip count is not a constant
//! (or an `scf.while`) makes the bound unknown, which the runtime treats as
//! "may exceed".

use crate::FileLoc;
use crate::ir;
use mlir_sys::{MlirOperation, MlirValue};

/// The bound of the ops of every region of `op` (a `gpu.func`), and the
/// source position of the outermost loop that contributes most (the
/// statement an error names). `None` as the bound: not known at compile time.
pub(crate) fn kernel_loop_bound(op: MlirOperation) -> (Option<u64>, Option<FileLoc>) {
    let mut at: Option<(Option<u64>, Option<FileLoc>)> = None;
    let total = regions_bound(op, &mut |loop_op, b| {
        // Keep the largest (unknown counts as largest) outermost loop.
        let better = match &at {
            None => true,
            Some((None, _)) => false,
            Some((Some(old), _)) => b.is_none_or(|n| n > *old),
        };
        if better {
            at = Some((b, ir::op_location(loop_op)));
        }
    });
    (total, at.and_then(|(_, l)| l))
}

/// Sum of the bounds of all ops in all regions of `op`; `top` sees each
/// loop found at this nesting level with its own bound.
fn regions_bound(
    op: MlirOperation,
    top: &mut dyn FnMut(MlirOperation, Option<u64>),
) -> Option<u64> {
    // SAFETY: reading the structure of a live op.
    let regions = unsafe { mlir_sys::mlirOperationGetNumRegions(op) };
    let mut total = Some(0u64);
    for r in 0..regions {
        for inner in ir::body_ops(op, r) {
            let b = op_bound(inner, top);
            total = add(total, b);
        }
    }
    total
}

/// The iterations `op` runs, loops nested inside it included.
fn op_bound(op: MlirOperation, top: &mut dyn FnMut(MlirOperation, Option<u64>)) -> Option<u64> {
    let name = ir::op_name(op);
    let mut ignore = |_: MlirOperation, _: Option<u64>| {};
    match name.as_str() {
        "scf.for" => {
            let body = regions_bound(op, &mut ignore);
            let b = mul(trip_count(op), add(Some(1), body));
            top(op, b);
            b
        }
        "scf.while" => {
            // Only a loop whose condition is the constant false (a `while`
            // that never runs, folded into a kernel) has a known bound: its
            // condition region, once.
            let before = ir::body_ops(op, 0);
            let never = before.last().is_some_and(|&t| {
                ir::op_name(t) == "scf.condition"
                    && ir::operands(t).first().and_then(|&c| ir::constant_int(c)) == Some(0)
            });
            let b = if never {
                before
                    .iter()
                    .try_fold(0, |acc, &o| add(Some(acc), op_bound(o, &mut ignore)))
            } else {
                None
            };
            top(op, b);
            b
        }
        // Anything else with regions (scf.if, scf.parallel nested in a
        // kernel, scf.execute_region): its regions run at most once each,
        // so their loops add up.
        _ => regions_bound(op, top),
    }
}

/// An upper bound of the trip count of an `scf.for` with a constant step:
/// bounds that depend on enclosing loop variables (triangular loops, merge
/// chunks `min(i + w, n)`) are bounded over those variables' ranges.
fn trip_count(op: MlirOperation) -> Option<u64> {
    let o = ir::operands(op);
    let step = ir::constant_int(*o.get(2)?)?;
    if step <= 0 {
        return None;
    }
    let span = diff_hi(*o.get(1)?, *o.first()?, 0)?;
    if span <= 0 {
        return Some(0);
    }
    Some((span as u64).div_ceil(step as u64))
}

/// How deep the bound evaluation follows definitions (far above what the
/// lowering produces; it only keeps a hostile chain from recursing long).
const MAX_DEPTH: u32 = 32;

/// A value as `constant + sum(coefficient * atom)`; atoms are values the
/// linear form does not look through, keyed by `ir::value_key`.
struct Linear {
    constant: i64,
    terms: Vec<(usize, MlirValue, i64)>,
}

impl Linear {
    fn add(&mut self, other: Linear, sign: i64) -> Option<()> {
        self.constant = self
            .constant
            .checked_add(other.constant.checked_mul(sign)?)?;
        for (k, v, c) in other.terms {
            let c = c.checked_mul(sign)?;
            match self.terms.iter_mut().find(|t| t.0 == k) {
                Some(t) => t.2 = t.2.checked_add(c)?,
                None => self.terms.push((k, v, c)),
            }
        }
        self.terms.retain(|t| t.2 != 0);
        Some(())
    }
}

fn def_name(v: MlirValue) -> Option<(MlirOperation, String)> {
    let d = ir::defining_op(v)?;
    Some((d, ir::op_name(d)))
}

fn linear(v: MlirValue, depth: u32) -> Option<Linear> {
    if let Some(c) = ir::constant_int(v) {
        return Some(Linear {
            constant: c,
            terms: Vec::new(),
        });
    }
    let atom = || Linear {
        constant: 0,
        terms: vec![(ir::value_key(v), v, 1)],
    };
    let Some((d, name)) = def_name(v) else {
        return Some(atom());
    };
    if depth > MAX_DEPTH {
        return None;
    }
    let o = ir::operands(d);
    match name.as_str() {
        "arith.addi" | "arith.subi" => {
            let mut l = linear(o[0], depth + 1)?;
            l.add(
                linear(o[1], depth + 1)?,
                if name == "arith.addi" { 1 } else { -1 },
            )?;
            Some(l)
        }
        "arith.muli" => {
            let (x, c) = match (ir::constant_int(o[0]), ir::constant_int(o[1])) {
                (_, Some(c)) => (o[0], c),
                (Some(c), _) => (o[1], c),
                _ => return Some(atom()),
            };
            let mut l = Linear {
                constant: 0,
                terms: Vec::new(),
            };
            l.add(linear(x, depth + 1)?, c)?;
            Some(l)
        }
        "arith.index_cast" | "arith.index_castui" => linear(o[0], depth + 1),
        _ => Some(atom()),
    }
}

/// The range (lowest, highest; each `None` when unbounded) of the linear
/// form `l`, from its atoms' ranges.
fn linear_range(l: &Linear, depth: u32) -> (Option<i64>, Option<i64>) {
    let (mut lo, mut hi) = (Some(l.constant), Some(l.constant));
    for &(_, v, c) in &l.terms {
        let (alo, ahi) = atom_range(v, depth + 1);
        let (tlo, thi) = if c > 0 { (alo, ahi) } else { (ahi, alo) };
        lo = lo
            .zip(tlo)
            .and_then(|(a, t)| a.checked_add(t.checked_mul(c)?));
        hi = hi
            .zip(thi)
            .and_then(|(a, t)| a.checked_add(t.checked_mul(c)?));
    }
    (lo, hi)
}

fn range(v: MlirValue, depth: u32) -> (Option<i64>, Option<i64>) {
    match linear(v, depth) {
        Some(l) => linear_range(&l, depth),
        None => (None, None),
    }
}

/// The range of a value the linear form does not look through.
fn atom_range(v: MlirValue, depth: u32) -> (Option<i64>, Option<i64>) {
    if depth > MAX_DEPTH {
        return (None, None);
    }
    // SAFETY: structure queries on a live value, each guarded by its kind.
    unsafe {
        if mlir_sys::mlirValueIsABlockArgument(v) {
            let parent =
                mlir_sys::mlirBlockGetParentOperation(mlir_sys::mlirBlockArgumentGetOwner(v));
            if mlir_sys::mlirBlockArgumentGetArgNumber(v) == 0 && ir::op_name(parent) == "scf.for" {
                // The induction variable: lb <= iv < ub.
                let o = ir::operands(parent);
                let lo = range(o[0], depth + 1).0;
                let hi = range(o[1], depth + 1).1.and_then(|h| h.checked_sub(1));
                return (lo, hi);
            }
            return (None, None);
        }
    }
    let Some((d, name)) = def_name(v) else {
        return (None, None);
    };
    let o = ir::operands(d);
    let r = |i: usize| range(o[i], depth + 1);
    let min = |a: Option<i64>, b: Option<i64>| a.zip(b).map(|(a, b)| a.min(b));
    let max = |a: Option<i64>, b: Option<i64>| a.zip(b).map(|(a, b)| a.max(b));
    let either = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    };
    match name.as_str() {
        "gpu.thread_id" | "gpu.block_id" | "gpu.global_id" => (Some(0), None),
        "arith.minsi" | "arith.minui" => {
            let ((alo, ahi), (blo, bhi)) = (r(0), r(1));
            (min(alo, blo), either(ahi, bhi, i64::min))
        }
        "arith.maxsi" | "arith.maxui" => {
            let ((alo, ahi), (blo, bhi)) = (r(0), r(1));
            (either(alo, blo, i64::max), max(ahi, bhi))
        }
        "arith.select" => {
            let ((alo, ahi), (blo, bhi)) = (r(1), r(2));
            (min(alo, blo), max(ahi, bhi))
        }
        "arith.divsi" | "arith.divui" | "arith.floordivsi" | "arith.ceildivsi" => {
            match ir::constant_int(o[1]) {
                // Division by a positive constant is monotone; the ceil
                // and floor variants move a bound by at most one.
                Some(c) if c > 0 => {
                    let (lo, hi) = r(0);
                    (
                        lo.map(|l| l.div_euclid(c) - 1),
                        hi.map(|h| h.div_euclid(c) + 1),
                    )
                }
                _ => (None, None),
            }
        }
        "arith.remsi" | "arith.remui" => match ir::constant_int(o[1]) {
            Some(c) if c > 0 => {
                let nonneg = r(0).0.is_some_and(|l| l >= 0) || name == "arith.remui";
                (Some(if nonneg { 0 } else { 1 - c }), Some(c - 1))
            }
            _ => (None, None),
        },
        _ => (None, None),
    }
}

/// An upper bound of `a - b`. A `min` on `a` (or a `max` on `b`) bounds the
/// difference by each operand; otherwise common terms cancel (`min(i + 2, n)
/// - i` is at most 2).
fn diff_hi(a: MlirValue, b: MlirValue, depth: u32) -> Option<i64> {
    if depth > MAX_DEPTH {
        return None;
    }
    if let Some((d, name)) = def_name(a)
        && matches!(name.as_str(), "arith.minsi" | "arith.minui")
    {
        let o = ir::operands(d);
        let x = diff_hi(o[0], b, depth + 1);
        let y = diff_hi(o[1], b, depth + 1);
        return match (x, y) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
    }
    if let Some((d, name)) = def_name(b)
        && matches!(name.as_str(), "arith.maxsi" | "arith.maxui")
    {
        let o = ir::operands(d);
        let x = diff_hi(a, o[0], depth + 1);
        let y = diff_hi(a, o[1], depth + 1);
        return match (x, y) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
    }
    let mut l = linear(a, depth + 1)?;
    l.add(linear(b, depth + 1)?, -1)?;
    linear_range(&l, depth + 1).1
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a?.saturating_add(b?))
}

fn mul(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(0), _) | (_, Some(0)) => Some(0),
        (Some(x), Some(y)) => Some(x.saturating_mul(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::module;
    use crate::{Limits, compile_kernels};

    /// A kernel's bound and the (line, column) of its dominant loop.
    type Bound = (Option<u64>, Option<(usize, usize)>);

    /// Each kernel's bound.
    fn bounds(src: &str) -> Vec<Bound> {
        let (m, text) = module(src);
        let c = compile_kernels(&m, &text, &Limits::default()).expect("compiles");
        c.kernels
            .iter()
            .map(|k| {
                (
                    k.loop_iterations,
                    k.loop_at.as_ref().map(|l| (l.line, l.col)),
                )
            })
            .collect()
    }

    #[test]
    fn a_scan_counts_every_element() {
        let src = "def f(x: f32[70000]) -> f32[70000] {\n  s = cumulative_sum x\n  return s\n}\n";
        // A copy kernel, then the scan in one invocation.
        assert_eq!(
            bounds(src),
            vec![(Some(0), None), (Some(70000), Some((2, 3)))]
        );
    }

    #[test]
    fn nested_loops_count_every_back_edge() {
        // One invocation: 8 outer trips, each 1 + 300 inner ones.
        let src = "def f(x: s32[8][300]) -> s32 {\n  s = sum x, axes: nil, keep_axes: false\n  return s\n}\n";
        assert_eq!(bounds(src), vec![(Some(8 * 301), Some((2, 3)))]);
    }

    #[test]
    fn a_row_reduction_loops_once_per_row_element() {
        // The 8 rows are parallel (one per invocation): 300 per invocation.
        let src = "def f(x: f32[8][300]) -> f32[8] {\n  s = sum x, axes: [1], keep_axes: false\n  return s\n}\n";
        let b = bounds(src);
        assert!(b.iter().all(|(n, _)| n.is_some_and(|n| n <= 300)), "{b:?}");
        assert!(b.iter().any(|(n, _)| *n == Some(300)), "{b:?}");
    }

    #[test]
    fn elementwise_kernels_do_not_loop() {
        let src =
            "def f(x: f32[4][8], y: f32[4][8]) -> f32[4][8] {\n  z = add x, y\n  return z\n}\n";
        assert_eq!(bounds(src), vec![(Some(0), None)]);
    }
}

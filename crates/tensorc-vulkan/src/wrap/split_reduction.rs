//! Long reductions as two parallel stages instead of one invocation
//! looping over every element: to a scalar, and along rows into a rank-1
//! result.
//!
//! A reduction to a rank-0 buffer reaches `wrap.rs` as an initializing
//! store and a sequential loop whose body loads the accumulator, combines it
//! with one associative, commutative op (`arith.addf`, `arith.muli`,
//! `arith.maximumf`, `arith.andi`, ...) and stores it back. Run as one
//! invocation, that is slow, and on lavapipe wrong past 65535 iterations
//! (its loop limiter; `loop_bound.rs` then refuses it). Here the loop's
//! iterations are cut into chunks: a first kernel reduces each chunk into
//! its own element of a new buffer (one invocation per chunk), a second
//! combines the partial results into the accumulator. A row reduction
//! (`scf.parallel` over rows around the loop, accumulating into `%acc[%r]`)
//! gets partial results per (row, chunk), each chunk starting from the
//! combining op's identity, and one invocation per row combining them into
//! the row's accumulator. Integer results are
//! exact (wrapping addition and multiplication are associative); float sums
//! and products are reassociated, as any parallel reduction is.

use super::{Function, defined, indent, index_constant, op_of, uses};

/// Combining ops that may be reassociated and reordered.
const COMBINERS: &[&str] = &[
    "arith.addf",
    "arith.mulf",
    "arith.addi",
    "arith.muli",
    "arith.maximumf",
    "arith.minimumf",
    "arith.maxnumf",
    "arith.minnumf",
    "arith.maxsi",
    "arith.minsi",
    "arith.maxui",
    "arith.minui",
    "arith.andi",
    "arith.ori",
    "arith.xori",
];

/// Loop iterations (inner loops included) below which a reduction stays
/// in one invocation: splitting costs a launch and a buffer.
const MIN_SPLIT: u64 = 16384;

/// Iterations one invocation of the first stage runs (inner loops included).
const CHUNK: u64 = 4096;

/// The most partial results: the second stage loops over them in one
/// invocation, which must stay far below lavapipe's limit.
const MAX_CHUNKS: u64 = 32768;

/// The reduction recognized in a run: the statement index of its
/// initializing store and the two kernels (and their constants and buffer)
/// replacing it and the loop after it.
pub(super) struct Split {
    pub start: usize,
    pub lines: Vec<String>,
}

/// Finds the first `store init → acc[]; scf.for ...` pair in `run` (one
/// run of host statements that would become one single-invocation kernel)
/// whose loop is a long reduction into `acc`, such that no value defined
/// before the pair is used from it on (so the run can be cut there).
pub(super) fn find(func: &Function, run: &[Vec<&str>], pad: &str, tag: usize) -> Option<Split> {
    for s in 0..run.len().saturating_sub(1) {
        let Some(lines) = two_stage(func, &run[s], &run[s + 1], pad, tag) else {
            continue;
        };
        let rest: String = run[s..]
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        let crossing = run[..s]
            .iter()
            .flat_map(|st| defined(st[0]))
            .any(|name| uses(&rest, &name));
        if !crossing {
            return Some(Split { start: s, lines });
        }
    }
    None
}

/// `memref.store %v, %acc[] : memref<T>` → (`%v`, `%acc`, `T`).
fn scalar_store(line: &str) -> Option<(&str, &str, &str)> {
    let t = line.trim().strip_prefix("memref.store ")?;
    let (v, rest) = t.split_once(", ")?;
    let (acc, rest) = rest.split_once("[] : memref<")?;
    let ty = rest.split_once('>')?.0;
    (!ty.contains('x') && !ty.contains(',')).then_some((v, acc, ty))
}

/// The loop header's (iv, lower, upper, step) names.
fn for_header(line: &str) -> Option<(&str, &str, &str, &str)> {
    let t = line.trim().strip_prefix("scf.for ")?;
    let t = t.strip_suffix('{')?.trim_end();
    let (iv, rest) = t.split_once(" = ")?;
    let (lb, rest) = rest.split_once(" to ")?;
    let (ub, step) = rest.split_once(" step ")?;
    // No iter_args or result types: a plain loop over memory.
    (!step.contains(' ')).then_some((iv, lb, ub, step))
}

/// A long reduction loop recognized by `analyze`.
struct Reduction<'a> {
    /// The loop's induction variable.
    iv: &'a str,
    /// Its trip count.
    n: u64,
    /// The loop body (without header and closing brace).
    body: &'a [&'a str],
    /// The combining op.
    op: &'a str,
    /// Iterations of the loop per chunk, and the number of chunks.
    chunk: u64,
    chunks: u64,
}

/// `lp` (an `scf.for` statement) as a long reduction into the accumulator
/// element `acc_ref` (`%acc[...] : memref<...>`): bounds 0 to N step 1,
/// inner loops with constant trip counts, at least `MIN_SPLIT` iterations
/// in all, and exactly one load and one store of the accumulator joined by
/// one combining op that nothing else reads.
fn analyze<'a>(
    func: &Function,
    lp: &'a [&'a str],
    acc: &str,
    acc_ref: &str,
) -> Option<Reduction<'a>> {
    if lp.len() < 3 || op_of(lp[0]) != "scf.for" {
        return None;
    }
    let (iv, lb, ub, step) = for_header(lp[0])?;
    if index_constant(func, lb)? != 0 || index_constant(func, step)? != 1 {
        return None;
    }
    let n = index_constant(func, ub)?;
    let body = &lp[1..lp.len() - 1];
    let mut inner = 1u64;
    for l in body.iter().filter(|l| op_of(l) == "scf.for") {
        let (_, ilb, iub, istep) = for_header(l)?;
        let (a, b, c) = (
            index_constant(func, ilb)?,
            index_constant(func, iub)?,
            index_constant(func, istep)?,
        );
        if c == 0 {
            return None;
        }
        inner = inner.checked_mul(b.saturating_sub(a).div_ceil(c).max(1))?;
    }
    if n.checked_mul(inner)? < MIN_SPLIT {
        return None;
    }
    let touching: Vec<&str> = body.iter().copied().filter(|l| uses(l, acc)).collect();
    let [load, store] = touching.as_slice() else {
        return None;
    };
    let loaded = defined(load).pop()?;
    if op_of(load) != "memref.load" || !load.contains(acc_ref) {
        return None;
    }
    let (v, rest) = store
        .trim()
        .strip_prefix("memref.store ")?
        .split_once(", ")?;
    if !rest.starts_with(acc_ref) {
        return None;
    }
    let users = |name: &str| body.iter().filter(|l| uses(l, name)).count();
    let comb = body
        .iter()
        .find(|l| defined(l).first().map(String::as_str) == Some(v))?;
    let op = op_of(comb);
    if !COMBINERS.contains(&op) || users(&loaded) != 2 || users(v) != 2 {
        return None;
    }
    let operands = comb.split_once(&format!("{op} "))?.1.split_once(" : ")?.0;
    let (x, y) = operands.split_once(", ")?;
    if x != loaded && y.split_whitespace().next() != Some(loaded.as_str()) {
        return None;
    }
    let chunk = (CHUNK / inner).max(1);
    let chunks = n.div_ceil(chunk);
    if !(2..=MAX_CHUNKS).contains(&chunks) {
        return None;
    }
    Some(Reduction {
        iv,
        n,
        body,
        op,
        chunk,
        chunks,
    })
}

/// The first-stage loop over one chunk: constants `c1`, `ch`, `cn` and
/// chunk index `p` given; the body's accumulator becomes `part_ref`.
fn chunk_loop(
    red: &Reduction,
    lp0: &str,
    acc_ref: &str,
    part_ref: &str,
    names: [&str; 7],
    pad: &str,
) -> Vec<String> {
    let [c1, ch, cn, p, lo, hi0, hi] = names;
    let iv = red.iv;
    let mut out = vec![
        format!("{pad}{lo} = arith.muli {p}, {ch} : index"),
        format!("{pad}{hi0} = arith.addi {lo}, {ch} : index"),
        format!("{pad}{hi} = arith.minui {hi0}, {cn} : index"),
        format!("{pad}scf.for {iv} = {lo} to {hi} step {c1} {{"),
    ];
    let shift = indent(lp0);
    for l in red.body {
        let rebased = format!("{pad}{}", &l[shift.min(indent(l))..]);
        out.push(rebased.replace(acc_ref, part_ref));
    }
    out.push(format!("{pad}}}"));
    out
}

fn two_stage(
    func: &Function,
    init: &[&str],
    lp: &[&str],
    pad: &str,
    tag: usize,
) -> Option<Vec<String>> {
    if init.len() != 1 {
        return None;
    }
    let (init_v, acc, ty) = scalar_store(init[0])?;
    // Constants only: the stores are repeated inside kernels.
    if !func.text.lines().any(|l| {
        l.trim_start()
            .starts_with(&format!("{init_v} = arith.constant "))
    }) {
        return None;
    }
    let acc_ref = format!("{acc}[] : memref<{ty}>");
    let red = analyze(func, lp, acc, &acc_ref)?;
    let (n, op, chunk, chunks) = (red.n, red.op, red.chunk, red.chunks);
    let prefix = format!("%tensorc_r{tag}");
    let t = |s: &str| format!("{prefix}_{s}");
    let names = StageNames::new(&prefix);
    let part_ty = format!("memref<{chunks}x{ty}>");
    let inner_pad = format!("{pad}  ");
    let mut out = names.index_constants(pad, chunks, chunk, n);
    let StageNames {
        c0,
        c1,
        cc,
        ch,
        cn,
        part,
        p,
        lo,
        hi0,
        hi,
    } = names;
    out.extend([
        format!("{pad}{part} = memref.alloc() : {part_ty}"),
        // Stage 1: one invocation per chunk.
        format!("{pad}scf.parallel ({p}) = ({c0}) to ({cc}) step ({c1}) {{"),
        format!("{inner_pad}memref.store {init_v}, {part}[{p}] : {part_ty}"),
    ]);
    let part_ref = format!("{part}[{p}] : {part_ty}");
    out.extend(chunk_loop(
        &red,
        lp[0],
        &acc_ref,
        &part_ref,
        [&c1, &ch, &cn, &p, &lo, &hi0, &hi],
        &inner_pad,
    ));
    out.push(format!("{inner_pad}scf.reduce"));
    out.push(format!("{pad}}}"));
    // Stage 2: one invocation combines the partial results.
    let (w, q, a, b, r) = (t("w"), t("q"), t("a"), t("b"), t("r"));
    out.extend([
        format!("{pad}scf.parallel ({w}) = ({c0}) to ({c1}) step ({c1}) {{"),
        format!("{inner_pad}memref.store {init_v}, {acc_ref}"),
        format!("{inner_pad}scf.for {q} = {c0} to {cc} step {c1} {{"),
        format!("{inner_pad}  {a} = memref.load {part}[{q}] : {part_ty}"),
        format!("{inner_pad}  {b} = memref.load {acc_ref}"),
        format!("{inner_pad}  {r} = {op} {b}, {a} : {ty}"),
        format!("{inner_pad}  memref.store {r}, {acc_ref}"),
        format!("{inner_pad}}}"),
        format!("{inner_pad}scf.reduce"),
        format!("{pad}}}"),
    ]);
    Some(out)
}

/// The SSA names both stages' rewrites use, prefixed so that several
/// rewrites in one function never clash: the index constants 0, 1, the
/// chunk count, the chunk size and the length, the partial-results
/// buffer, the chunk index and a chunk's bounds (`lo`, `hi0` before and
/// `hi` after clamping to the length).
struct StageNames {
    c0: String,
    c1: String,
    cc: String,
    ch: String,
    cn: String,
    part: String,
    p: String,
    lo: String,
    hi0: String,
    hi: String,
}

impl StageNames {
    fn new(prefix: &str) -> StageNames {
        let t = |s: &str| format!("{prefix}_{s}");
        StageNames {
            c0: t("c0"),
            c1: t("c1"),
            cc: t("chunks"),
            ch: t("chunk"),
            cn: t("n"),
            part: t("part"),
            p: t("p"),
            lo: t("lo"),
            hi0: t("hi0"),
            hi: t("hi"),
        }
    }

    /// The lines defining the index constants, at `pad`.
    fn index_constants(&self, pad: &str, chunks: u64, chunk: u64, n: u64) -> Vec<String> {
        [
            (&self.c0, 0),
            (&self.c1, 1),
            (&self.cc, chunks),
            (&self.ch, chunk),
            (&self.cn, n),
        ]
        .iter()
        .map(|(name, v)| format!("{pad}{name} = arith.constant {v} : index"))
        .collect()
    }
}

/// The identity of `op` on `ty` as an `arith.constant` value (f32, f64 and
/// integers only): each chunk of a row starts from it, because the row's
/// own initial value is stored by an earlier kernel.
fn identity(op: &str, ty: &str) -> Option<String> {
    let float = matches!(ty, "f32" | "f64");
    let bits: u32 = if float {
        0
    } else {
        ty.strip_prefix('i')?
            .parse()
            .ok()
            .filter(|b| (2..=64).contains(b))?
    };
    let inf = |neg: bool| match (ty, neg) {
        ("f32", false) => "0x7F800000",
        ("f32", true) => "0xFF800000",
        (_, false) => "0x7FF0000000000000",
        (_, true) => "0xFFF0000000000000",
    };
    Some(match op {
        "arith.addf" if float => "0.0".into(),
        "arith.mulf" if float => "1.0".into(),
        "arith.maximumf" if float => inf(true).into(),
        "arith.minimumf" if float => inf(false).into(),
        "arith.addi" | "arith.ori" | "arith.xori" | "arith.maxui" if !float => "0".into(),
        "arith.muli" if !float => "1".into(),
        "arith.andi" | "arith.minui" if !float => "-1".into(),
        "arith.maxsi" if !float => format!("{}", -(1i128 << (bits - 1))),
        "arith.minsi" if !float => format!("{}", (1i128 << (bits - 1)) - 1),
        _ => return None,
    })
}

/// A kernel `scf.parallel (%r) = (0) to (R) step (1) { scf.for ... }`
/// whose loop reduces into `%acc[%r]` (a reduction along a long axis into
/// a rank-1 result) as two kernels: partial results per (row, chunk), then
/// one invocation per row combining them into the row's accumulator (which
/// keeps the initial value an earlier kernel stored). `None` when the
/// kernel is not of that form.
pub(super) fn rows(func: &Function, kernel: &[&str], tag: usize) -> Option<Vec<String>> {
    let m = kernel.len();
    if m < 5 || !kernel[m - 2].trim_start().starts_with("scf.reduce") {
        return None;
    }
    let header = kernel[0].trim();
    let pad = " ".repeat(indent(kernel[0]));
    let rest = header.strip_prefix("scf.parallel (")?;
    let (r, rest) = rest.split_once(") = (")?;
    let (lb, rest) = rest.split_once(") to (")?;
    let (ub, rest) = rest.split_once(") step (")?;
    let step = rest.strip_suffix(") {")?;
    if r.contains(',') || index_constant(func, lb)? != 0 || index_constant(func, step)? != 1 {
        return None;
    }
    let rows = index_constant(func, ub)?;
    let lp = &kernel[1..m - 2];
    // The kernel's body is exactly the loop.
    if !lp.last()?.trim_start().starts_with('}') || indent(lp.last()?) != indent(lp[0]) {
        return None;
    }
    let store = lp
        .iter()
        .find(|l| l.trim_start().starts_with("memref.store "))?;
    let (_, rest) = store
        .trim()
        .strip_prefix("memref.store ")?
        .split_once(", ")?;
    let (acc, rest) = rest.split_once(&format!("[{r}] : memref<"))?;
    let ty = rest.split_once('>')?.0.strip_prefix(&format!("{rows}x"))?;
    if ty.contains('x') {
        return None;
    }
    let acc_ref = format!("{acc}[{r}] : memref<{rows}x{ty}>");
    let red = analyze(func, lp, acc, &acc_ref)?;
    // Few enough (row, chunk) pairs for any launch and a small buffer; more
    // rows keep the one-invocation-per-row kernel.
    if rows.checked_mul(red.chunks)? > MAX_CHUNKS {
        return None;
    }
    let ident = identity(red.op, ty)?;
    let (op, chunk, chunks, n) = (red.op, red.chunk, red.chunks, red.n);
    let prefix = format!("%tensorc_s{tag}");
    let t = |s: &str| format!("{prefix}_{s}");
    let names = StageNames::new(&prefix);
    let id = t("id");
    let part_ty = format!("memref<{rows}x{chunks}x{ty}>");
    let inner_pad = format!("{pad}  ");
    let mut out = names.index_constants(&pad, chunks, chunk, n);
    let StageNames {
        c0,
        c1,
        cc,
        ch,
        cn,
        part,
        p,
        lo,
        hi0,
        hi,
    } = names;
    out.extend([
        format!("{pad}{id} = arith.constant {ident} : {ty}"),
        format!("{pad}{part} = memref.alloc() : {part_ty}"),
        // Stage 1: one invocation per (row, chunk).
        format!(
            "{pad}scf.parallel ({r}, {p}) = ({lb}, {c0}) to ({ub}, {cc}) step ({step}, {c1}) {{"
        ),
        format!("{inner_pad}memref.store {id}, {part}[{r}, {p}] : {part_ty}"),
    ]);
    let part_ref = format!("{part}[{r}, {p}] : {part_ty}");
    out.extend(chunk_loop(
        &red,
        lp[0],
        &acc_ref,
        &part_ref,
        [&c1, &ch, &cn, &p, &lo, &hi0, &hi],
        &inner_pad,
    ));
    out.push(format!("{inner_pad}scf.reduce"));
    out.push(format!("{pad}}}"));
    // Stage 2: one invocation per row combines its partial results.
    let (q, a, b, x) = (t("q"), t("a"), t("b"), t("x"));
    out.extend([
        format!("{pad}scf.parallel ({r}) = ({lb}) to ({ub}) step ({step}) {{"),
        format!("{inner_pad}scf.for {q} = {c0} to {cc} step {c1} {{"),
        format!("{inner_pad}  {a} = memref.load {part}[{r}, {q}] : {part_ty}"),
        format!("{inner_pad}  {b} = memref.load {acc_ref}"),
        format!("{inner_pad}  {x} = {op} {b}, {a} : {ty}"),
        format!("{inner_pad}  memref.store {x}, {acc_ref}"),
        format!("{inner_pad}}}"),
        format!("{inner_pad}scf.reduce"),
        format!("{pad}}}"),
    ]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::tests::{module, spirv_val};
    use crate::{Limits, compile_kernels};

    fn kernels(src: &str) -> crate::Compiled {
        let (m, text) = module(src);
        let c = compile_kernels(&m, &text, &Limits::default()).expect("compiles");
        spirv_val(&c).unwrap();
        c
    }

    #[test]
    fn a_long_sum_becomes_two_kernels_within_the_loop_limit() {
        let c = kernels(
            "def f(x: f32[70000]) -> f32 {\n  s = sum x, axes: nil, keep_axes: false\n  return s\n}\n",
        );
        assert_eq!(c.kernels.len(), 2, "partial sums, then their combination");
        // 70000 / 4096 → 18 chunks of 4096: stage 1 loops 4096 times per
        // invocation, stage 2 over the 18 partial results.
        let bounds: Vec<Option<u64>> = c.kernels.iter().map(|k| k.loop_iterations).collect();
        assert_eq!(bounds, [Some(4096), Some(18)]);
    }

    #[test]
    fn a_long_row_reduction_becomes_two_stages() {
        let c = kernels(
            "def f(x: f32[2][70000]) -> f32[2] {\n  s = sum x, axes: [1], keep_axes: false\n  return s\n}\n",
        );
        // The initial values, partial sums per (row, chunk of 4096), then
        // per row the combination of its 18 partial results.
        let bounds: Vec<Option<u64>> = c.kernels.iter().map(|k| k.loop_iterations).collect();
        assert_eq!(bounds, [Some(0), Some(4096), Some(18)]);
    }

    #[test]
    fn short_reductions_stay_one_kernel_and_argmax_splits_in_two_reductions() {
        let src = "def f(x: f32[1000]) -> f32 {\n  s = sum x, axes: nil, keep_axes: false\n  return s\n}\n";
        assert_eq!(kernels(src).kernels.len(), 1, "{src}");
        // `argmax` is two reductions since the frontend's `reduce.rs` splits
        // it (the maximum, then the first index holding it, a `minsi`
        // over indices): both are recognized and each runs as two stages
        // within the loop limit, where the one-generic form looped over all
        // 70000 elements in one kernel.
        let c = kernels("def f(x: f32[70000]) -> s32 {\n  s = argmax x\n  return s\n}\n");
        let bounds: Vec<Option<u64>> = c.kernels.iter().map(|k| k.loop_iterations).collect();
        assert_eq!(bounds, [Some(4096), Some(18), Some(4096), Some(18)]);
    }
}

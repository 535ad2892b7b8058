//! The transform-dialect step that fuses row-wise chains (softmax,
//! layernorm: last-axis reductions, the broadcasts of their results and the
//! element-wise ops around them) into one loop over rows, so the input is
//! read from memory once and the output written once.
//!
//! Why: without it each op of such a chain is a separate pass over the
//! whole tensor (W5 softmax: the row maximum, `exp(x - max)` into a 16 MiB
//! temporary, its row sums, the division: about six passes over 16 MiB),
//! and the steps that read a row result through a broadcast map
//! (`(d0, d1) -> (d0, 0)`) were not vectorized at all. Fused, one row at a
//! time goes through the whole chain while it sits in L1.
//!
//! Which ops: `tensorc-row-fuse-mark` (`row_fuse.rs`, Rust: the decision
//! needs to read indexing maps and follow use chains, which the match ops
//! cannot) tags the last op of each chain, the *root*, with
//! `tensorc.rowfuse_k<loops>_d<split>_t<chunk>` and the ops it fuses, the
//! *members*, with `tensorc.rowfuse_m`. For each root this library:
//! 1. with `chunk > 0`, tiles the root's row loop `split` into an
//!    `scf.forall` of `chunk` rows (threads: the forall becomes a
//!    thread-pool call like the parallel step's, passes.md "Threads") and
//!    fuses the members into it;
//! 2. tiles the root (the chunk's tile, or the whole op) by one row along
//!    each of its first `loops` loops (`[B][S][D]`: `B` and `S`) into
//!    `scf.for`s and fuses the members into the innermost (skipped for
//!    chunks of one row of it). Tiling a loop of one row makes no loop to
//!    fuse into, so the marker picks row loops whose innermost has two rows
//!    or more, and never tags a chain of one row.
//!
//! Fusion is `fuse_into_containing_op` of the members handle, repeated
//! `ROUNDS` times: reductions read their input through a
//! `tensor.expand_shape` (the frontend's keep-axes form), so a member only
//! becomes fusable once the slice of the reshape has been bubbled above it
//! (`bubble_up_extract_slice`) and CSE has merged the identical slices of
//! one producer (a producer used twice in the loop is otherwise tiled
//! twice). Slices of `tensor.empty` fold into row-sized empties
//! (`fold_tensor_empty`), so the temporaries are one row, not the whole
//! tensor. A member that cannot be fused stays whole before the loop: the
//! result is the same, only slower (each step runs in `failures(suppress)`).
//!
//! One row per iteration keeps every op inside static-shaped (no remainder
//! tile, whatever the row count), which the kernel schedules need to
//! vectorize them: reductions split into partial sums, element-wise and
//! broadcast steps in 16 lanes (the marker tags broadcasting element-wise
//! generics for the element-wise schedule). The library runs before the
//! parallel step, whose marker then sees one-row ops (too small to split).

use std::fmt::Write as _;

use crate::parallel_schedule::MAX_TARGET;

/// The entry point of this library (preloaded beside the others; its
/// symbols have the `tensorc_rf_` prefix).
pub const ENTRY: &str = "tensorc_rowfuse_main";

/// The unit attribute of the ops fused into a root's row loop.
pub const MEMBER: &str = "tensorc.rowfuse_m";

/// How many times fusion, reshape bubbling and CSE are repeated per loop:
/// one per reshape on the longest producer path of a chain, plus one (W5
/// and W8 need two; one more for margin).
pub const ROUNDS: usize = 3;

/// The most leading loops a chain is tiled along (`[B][S][D]`: `B` and
/// `S`).
pub const MAX_ROW_LOOPS: usize = 2;

/// Rows per step of the innermost row loop in chains over short rows (the
/// marker's choice, `row_fuse::short_rows`): the reductions over a tile
/// of this many rows are left to the scalar lowering, which LLVM
/// vectorizes across the rows (`reduction_schedule::SCALAR_ROW_MAX`); one
/// row per step, each row's reduction is a chain of dependent horizontal
/// steps. Softmax over 100000×10 f32, one thread: 1.40 → 0.98 ms.
pub const SHORT_ROWS_STEP: u64 = 16;

/// The tag of a chain root tiled along its first `loops` loops, whose loop
/// `split` is cut into threads' chunks of `chunk` rows (`0`: no split, one
/// thread; `split` is then 0), `step` rows per step of the innermost row
/// loop (1, or `SHORT_ROWS_STEP`).
pub fn root_tag(loops: usize, split: usize, chunk: u64, step: u64) -> String {
    let suffix = if step == 1 { String::new() } else { format!("_s{step}") };
    format!("tensorc.rowfuse_k{loops}_d{split}_t{chunk}{suffix}")
}

/// The (row loops, split loop, chunk, step) tuples the library has an
/// action for: steps of `SHORT_ROWS_STEP` rows only with no chunks or
/// chunks of more rows (the marker never picks a single step).
pub fn actions() -> Vec<(usize, usize, u64, u64)> {
    let mut all = Vec::new();
    for step in [1, SHORT_ROWS_STEP] {
        for k in 1..=MAX_ROW_LOOPS {
            for d in 0..k {
                for t in chunk_sizes() {
                    if (t > 0 || d == 0) && (step == 1 || t == 0 || t > step) {
                        all.push((k, d, t, step));
                    }
                }
            }
        }
    }
    all
}

/// The chunk sizes the library has an action for: 0, then powers of two up
/// to `MAX_TARGET`.
pub fn chunk_sizes() -> Vec<u64> {
    let mut sizes = vec![0];
    let mut t = 1;
    while t <= MAX_TARGET {
        sizes.push(t);
        t *= 2;
    }
    sizes
}

/// The whole library.
pub fn row_fuse_schedule() -> String {
    let mut s = String::from("module attributes {transform.with_named_sequence} {\n");
    s.push_str(crate::matmul_schedule::PEEL_EACH_DEFINITION);
    // One fusion round: fuse every member with a use inside `%loop` (the
    // members handle is matched in `%scope`, so it covers the clones a
    // previous level fused), then bubble slices above reshapes, fold
    // slices of empties and merge identical slices. CSE runs on the loop
    // only: over the whole function it merged two identical chains (one
    // program computing the same row chain twice; nothing merges them
    // earlier, see `opt_pipeline`), erasing ops of a chain whose root a
    // later `foreach` iteration still held, and `fuse_into_containing_op`
    // then read freed ops (a segfault; generated seed 65183). The slices it
    // must merge are all inside the loop. The loop must exist:
    // fusing into an empty handle is a definite error, which
    // `failures(suppress)` does not catch (see the row loops below).
    let _ = writeln!(
        s,
        "  transform.named_sequence @tensorc_rf_round(%f: !transform.any_op {{transform.readonly}}, %scope: !transform.any_op {{transform.readonly}}, %loop: !transform.any_op {{transform.readonly}}) {{\n\
         \x20   transform.sequence %f : !transform.any_op failures(suppress) {{\n\
         \x20   ^bb1(%a: !transform.any_op):\n\
         \x20     %m = transform.structured.match attributes{{{MEMBER}}} in %scope : (!transform.any_op) -> !transform.any_op\n\
         \x20     %fused, %nl = transform.structured.fuse_into_containing_op %m into %loop : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
         \x20   }}\n\
         \x20   transform.apply_patterns to %f {{\n\
         \x20     transform.apply_patterns.tensor.bubble_up_extract_slice\n\
         \x20     transform.apply_patterns.tensor.fold_tensor_empty\n\
         \x20     transform.apply_patterns.canonicalization\n\
         \x20   }} : !transform.any_op\n\
         \x20   transform.apply_cse to %loop : !transform.any_op\n\
         \x20   transform.yield\n\
         \x20 }}"
    );
    let rounds = |scope: &str, lp: &str| {
        format!(
            "    transform.include @tensorc_rf_round failures(suppress) (%f, {scope}, {lp}) : (!transform.any_op, !transform.any_op, !transform.any_op) -> ()\n"
        )
        .repeat(ROUNDS)
    };
    // One sequence per shape of action: the chunk size is a parameter
    // (`%t`), not part of the name, so the 127 actions share 12 sequences
    // (the library is preloaded, parsed and verified on every compile: one
    // sequence per chunk size was 176 KB of it). Each tag's include passes
    // its size as a `transform.param.constant`, which the tiling ops read
    // as the same static size they were given as a literal before.
    let mut shapes = Vec::new();
    let mut body = String::new();
    for (k, d, t, step) in actions() {
        let shape = ActionShape::of(k, d, t, step);
        let name = shape.name();
        if !shapes.contains(&shape) {
            write_action(&mut s, &shape, &rounds);
            shapes.push(shape);
        }
        let (param, arg_type) = if t == 0 {
            (String::new(), String::new())
        } else {
            (format!(", %t{t}"), ", !transform.param<i64>".to_owned())
        };
        let _ = writeln!(
            body,
            "    %m_{k}_{d}_{t}_{step} = transform.structured.match attributes{{{tag}}} in %arg0 : (!transform.any_op) -> !transform.any_op\n\
             \x20   transform.foreach %m_{k}_{d}_{t}_{step} : !transform.any_op {{\n\
             \x20   ^bb0(%r: !transform.any_op):\n\
             \x20     transform.include @{name} failures(suppress) (%r{param}) : (!transform.any_op{arg_type}) -> ()\n\
             \x20   }}",
            tag = root_tag(k, d, t, step)
        );
    }
    // Every chunk size has actions (one-row steps take them all).
    let params: String = chunk_sizes()
        .into_iter()
        .filter(|&t| t > 0)
        .map(|t| format!("    %t{t} = transform.param.constant {t} : i64 -> !transform.param<i64>\n"))
        .collect();
    let _ = writeln!(
        s,
        "  transform.named_sequence @{ENTRY}(%arg0: !transform.any_op) {{\n{params}{body}    transform.yield\n  }}\n}}"
    );
    s
}

/// What an action does, all but its chunk size: the row loops `k`, the
/// split loop `d` (none for unsplit chains), the rows per step of the
/// innermost row loop, and whether it tiles rows at all (not in chunks of
/// one row of the innermost row loop).
#[derive(PartialEq)]
struct ActionShape {
    k: usize,
    split: Option<usize>,
    step: u64,
    row_loop: bool,
}

impl ActionShape {
    fn of(k: usize, d: usize, t: u64, step: u64) -> Self {
        ActionShape { k, split: (t > 0).then_some(d), step, row_loop: !(t == 1 && d == k - 1) }
    }

    /// The sequence's symbol.
    fn name(&self) -> String {
        let (k, step) = (self.k, self.step);
        match (self.split, self.row_loop) {
            (None, _) => format!("tensorc_rf_k{k}_whole_s{step}"),
            (Some(d), true) => format!("tensorc_rf_k{k}_d{d}_s{step}"),
            (Some(d), false) => format!("tensorc_rf_k{k}_d{d}_one_row"),
        }
    }
}

/// The sequence of one action shape; split ones take the chunk's rows as
/// `%t`.
fn write_action(s: &mut String, a: &ActionShape, rounds: &dyn Fn(&str, &str) -> String) {
    let k = a.k;
    let param = if a.split.is_some() { ", %t: !transform.param<i64> {transform.readonly}" } else { "" };
    let _ = write!(
        s,
        "  transform.named_sequence @{}(%r: !transform.any_op {{transform.consumed}}{param}) {{\n\
         \x20   %f = transform.get_parent_op %r {{isolated_from_above}} : (!transform.any_op) -> !transform.any_op\n",
        a.name()
    );
    let (rows_of, scope) = match a.split {
        None => ("%r", "%f"),
        Some(d) => {
            let _ = write!(
                s,
                "    %chunk, %forall = transform.structured.tile_using_forall %r tile_sizes [{}%t] : (!transform.any_op, !transform.param<i64>) -> (!transform.any_op, !transform.any_op)\n{}",
                "0, ".repeat(d),
                rounds("%f", "%forall")
            );
            ("%chunk", "%forall")
        }
    };
    // One row at a time along every row loop (`step` rows along the
    // innermost); the members are fused into the innermost. It always
    // has two rows or more (the marker picks the row loops so), except
    // in chunks of one row of it: then there is no loop to fuse into,
    // and the chunk is already one row. Steps of several rows are
    // peeled, so the full steps' ops are static-shaped (their
    // temporaries allocated once, not per step).
    if a.row_loop {
        let mut sizes = vec!["1".to_owned(); k];
        sizes[k - 1] = a.step.to_string();
        let _ = write!(
            s,
            "    %row, %rows:{k} = transform.structured.tile_using_for {rows_of} tile_sizes [{}] : (!transform.any_op) -> ({})\n{}",
            sizes.join(", "),
            vec!["!transform.any_op"; k + 1].join(", "),
            rounds(scope, &format!("%rows#{}", k - 1))
        );
        if a.step > 1 {
            crate::matmul_schedule::peel_each(s, &format!("%rows#{}", k - 1), "    ");
        }
    }
    s.push_str("    transform.yield\n  }\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_action_per_row_loops_split_and_chunk_with_rounds_at_each_level() {
        let s = row_fuse_schedule();
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        assert!(s.contains(&format!("@{ENTRY}(")));
        let sizes = chunk_sizes();
        assert_eq!(sizes.len(), MAX_TARGET.trailing_zeros() as usize + 2);
        // One row loop: split it or not; two: split either, or neither;
        // for steps of one row, and for steps of SHORT_ROWS_STEP rows
        // with chunks of no fewer rows.
        let n1 = sizes.len() + (2 * sizes.len() - 1);
        let big = sizes.iter().filter(|&&t| t > SHORT_ROWS_STEP).count();
        let n16 = (1 + big) + (1 + 2 * big);
        let n = actions().len();
        assert_eq!(n, n1 + n16);
        // Every action's tag is matched once, and its sequence included
        // (plus the shared peel sequence's own `foreach`, `peel_each`).
        assert_eq!(s.matches("transform.foreach ").count(), n + 1);
        assert!(s.contains("attributes{tensorc.rowfuse_k2_d1_t64_s16}"), "{s}");
        assert!(!s.contains("rowfuse_k1_d0_t8_s16"), "{s}");
        assert!(!s.contains("rowfuse_k1_d0_t16_s16"), "{s}");
        assert!(s.contains("rowfuse_k1_d0_t32_s16"), "{s}");
        assert!(s.contains("attributes{tensorc.rowfuse_k1_d0_t0}"));
        assert!(s.contains("attributes{tensorc.rowfuse_k2_d1_t8}"));
        assert!(!s.contains("rowfuse_k2_d1_t0"));
        // Sequences per shape, the chunk size a parameter: per step, whole
        // chains (k = 1, 2) and splits of loop d < k (three); chunks of
        // one row of the innermost row loop (k = 1, 2, one-row steps) too.
        let sequences = s.matches("  transform.named_sequence @tensorc_rf_k").count();
        assert_eq!(sequences, 2 * (2 + 3) + MAX_ROW_LOOPS);
        assert_eq!(s.matches("tile_using_forall").count(), 2 * 3 + MAX_ROW_LOOPS);
        assert!(s.contains("tile_using_forall %r tile_sizes [%t] : (!transform.any_op, !transform.param<i64>)"));
        assert!(s.contains("tile_using_forall %r tile_sizes [0, %t] "));
        // No row loop in chunks of one row of the innermost row loop.
        assert_eq!(s.matches("tile_using_for %").count(), sequences - MAX_ROW_LOOPS);
        // Steps of 16 rows along the innermost row loop, peeled.
        assert!(s.contains("tile_using_for %r tile_sizes [16] "), "{s}");
        assert!(s.contains("tile_using_for %chunk tile_sizes [1, 16] "), "{s}");
        assert_eq!(crate::matmul_schedule::peel_count(&s), 2 + 3);
        assert!(s.contains("tile_using_for %r tile_sizes [1] "));
        assert!(s.contains("tile_using_for %chunk tile_sizes [1, 1] "));
        assert!(s.contains(", %rows#1) : "));
        let includes = s.matches("transform.include @tensorc_rf_round").count();
        // Rounds after each forall and each row loop.
        assert_eq!(includes, ROUNDS * (2 * 3 + MAX_ROW_LOOPS + sequences - MAX_ROW_LOOPS));
        // Each chunk size is one parameter, passed by the tags that use it.
        for t in sizes.iter().skip(1) {
            let constant = format!("%t{t} = transform.param.constant {t} : i64 -> !transform.param<i64>\n");
            assert_eq!(s.matches(&constant).count(), 1, "{t}");
        }
        assert!(s.contains(
            "attributes{tensorc.rowfuse_k2_d1_t64_s16} in %arg0 : (!transform.any_op) -> !transform.any_op\n\
             \x20   transform.foreach %m_2_1_64_16 : !transform.any_op {\n\
             \x20   ^bb0(%r: !transform.any_op):\n\
             \x20     transform.include @tensorc_rf_k2_d1_s16 failures(suppress) (%r, %t64) : (!transform.any_op, !transform.param<i64>) -> ()"
        ));
        assert!(s.contains("transform.include @tensorc_rf_k1_whole_s1 failures(suppress) (%r) : (!transform.any_op) -> ()"));
        assert!(s.contains("transform.include @tensorc_rf_k2_d1_one_row failures(suppress) (%r, %t1) : "));
    }
}

//! The transform-dialect step that makes multi-threading possible: it cuts
//! the ops that `tensorc-parallel-mark` (`parallel_mark.rs`) tagged into an
//! `scf.forall` of chunks along the tagged loop.
//!
//! After bufferization, `scf-forall-to-parallel` turns each forall into an
//! `scf.parallel`, and `tensorc-outline-parallel` (`outline_parallel.rs`)
//! turns that into a call of the runtime's thread pool. The step runs before
//! the other schedules (matmul, element-wise, reductions, convolutions), which
//! then see each chunk as an op of its own and schedule it as before.
//!
//! Chunks stay static: `multitile_sizes` picks two adjacent sizes (at most
//! the tag's target) that cover the loop exactly, `split` cuts the op in two
//! there, and each part is tiled with its own size. The later schedules only
//! vectorize static shapes, so a forall with a ragged last chunk
//! (`affine.min`) would turn their vector code back into scalar loops.
//!
//! Which op, which loop and which size is decided in Rust (`parallel_mark.rs`:
//! the transform dialect can neither see whether an indexing map is monotonic
//! nor multiply loop extents). The tag names the loop and the target size,
//! `tensorc.par_d<loop>_t<size>`; this library has one action per pair, for
//! loops `0..=MAX_DIM` and power-of-two sizes up to `MAX_TARGET`. Without the
//! marking pass (as under `mlir-opt`) nothing is tagged and nothing changes.
//! The thread count is a run-time setting, so nothing here depends on it.
//!
//! Full reductions (a 1-D loop that is a reduction, as in `sum` to a scalar)
//! have no parallel loop to cut. The marking pass tags them
//! `tensorc.par_r<chunks>` (after slicing off a remainder so that `chunks`
//! divides the length), and the action for that tag makes one: upstream
//! `split_reduction` reshapes the input to `chunks` contiguous rows, reduces
//! each row into its own partial result (a parallel loop over the rows, a
//! reduction along each) and combines the partials with the original init
//! in a second, small reduction; the rows are then tiled into an
//! `scf.forall`. The number of chunks is fixed at compile time, so the
//! result is the same whatever the thread count (only reassociated against
//! the unsplit sum).

use std::fmt::Write as _;

/// The entry point of this library (preloaded beside the other schedules,
/// whose symbols are distinct: preloaded libraries merge).
pub const ENTRY: &str = "tensorc_parallel_main";

/// The `mapping` of the chunk loop of an op's first part (chunks of the
/// smaller size). A mapping keeps MLIR's canonicalizer from inlining a loop
/// of one chunk; `tensorc-merge-chunks` (`merge_chunks.rs`) joins the two
/// parts' loops and removes both mappings. (`scf.forall` takes only GPU
/// mappings; nothing here runs on a GPU, nor reads them but that pass.)
pub const FIRST_PART: &str = "#gpu.thread<x>";

/// The `mapping` of the chunk loop of an op's second part (see
/// `FIRST_PART`).
pub const SECOND_PART: &str = "#gpu.thread<y>";

/// Largest loop index that can be split.
pub const MAX_DIM: usize = 2;

/// Largest target chunk size (a power of two).
pub const MAX_TARGET: u64 = 1 << 22;

/// Largest number of partial results of a split full reduction (a power of
/// two; the library has one action per power of two from 2 up to it).
pub const MAX_REDUCTION_CHUNKS: u64 = 64;

/// The tag of an op to split along loop `dim` into chunks of about `chunk`.
pub fn tag(dim: usize, chunk: u64) -> String {
    format!("tensorc.par_d{dim}_t{chunk}")
}

/// The tag of a full 1-D reduction to split into `chunks` partial results
/// (`chunks` divides its length).
pub fn reduction_tag(chunks: u64) -> String {
    format!("tensorc.par_r{chunks}")
}

/// The whole library: one action per (loop, size), and the entry point that
/// applies each to the ops with its tag.
pub fn parallel_schedule() -> String {
    let mut s = String::from("module attributes {transform.with_named_sequence} {\n");
    let mut body = String::new();
    for d in 0..=MAX_DIM {
        let lead = "0, ".repeat(d);
        let mut t = 1u64;
        while t <= MAX_TARGET {
            let _ = writeln!(
                s,
                "  transform.named_sequence @tensorc_par_d{d}_t{t}(%op: !transform.any_op {{transform.consumed}}) {{\n\
                 \x20   %low, %high, %at = transform.structured.multitile_sizes %op {{ dimension = {d}, target_size = {t}, divisor = 1 }} : (!transform.any_op) -> !transform.param<i64>\n\
                 \x20   %parts = transform.structured.split %op after %at {{ dimension = {d} }} : !transform.any_op, !transform.param<i64>\n\
                 \x20   %a, %b = transform.split_handle %parts {{fail_on_payload_too_small = false}} : (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
                 \x20   %ta, %fa = transform.structured.tile_using_forall %a tile_sizes [{lead}%low] (mapping = [{FIRST_PART}]) : (!transform.any_op, !transform.param<i64>) -> (!transform.any_op, !transform.any_op)\n\
                 \x20   %tb, %fb = transform.structured.tile_using_forall %b tile_sizes [{lead}%high] (mapping = [{SECOND_PART}]) : (!transform.any_op, !transform.param<i64>) -> (!transform.any_op, !transform.any_op)\n\
                 \x20   transform.yield\n\
                 \x20 }}"
            );
            let _ = writeln!(
                body,
                "    %m_d{d}_t{t} = transform.structured.match attributes{{{}}} in %arg0 : (!transform.any_op) -> !transform.any_op\n\
                 \x20   transform.foreach %m_d{d}_t{t} : !transform.any_op {{\n\
                 \x20   ^bb0(%op: !transform.any_op):\n\
                 \x20     transform.include @tensorc_par_d{d}_t{t} failures(propagate) (%op) : (!transform.any_op) -> ()\n\
                 \x20   }}",
                tag(d, t)
            );
            t *= 2;
        }
    }
    let mut c = 2u64;
    while c <= MAX_REDUCTION_CHUNKS {
        // `split_factor` without `inner_parallel` is the number of rows
        // (contiguous, each reduced on its own), inserted as loop 0.
        let _ = writeln!(
            s,
            "  transform.named_sequence @tensorc_par_r{c}(%op: !transform.any_op {{transform.consumed}}) {{\n\
             \x20   %init, %fill, %rows, %combine = transform.structured.split_reduction %op {{ split_factor = {c}, insert_split_dimension = 0 }} : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)\n\
             \x20   %t, %f = transform.structured.tile_using_forall %rows tile_sizes [1] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
             \x20   transform.yield\n\
             \x20 }}"
        );
        let _ = writeln!(
            body,
            "    %m_r{c} = transform.structured.match attributes{{{}}} in %arg0 : (!transform.any_op) -> !transform.any_op\n\
             \x20   transform.foreach %m_r{c} : !transform.any_op {{\n\
             \x20   ^bb0(%op: !transform.any_op):\n\
             \x20     transform.include @tensorc_par_r{c} failures(propagate) (%op) : (!transform.any_op) -> ()\n\
             \x20   }}",
            reduction_tag(c)
        );
        c *= 2;
    }
    let _ = writeln!(
        s,
        "  transform.named_sequence @{ENTRY}(%arg0: !transform.any_op) {{\n{body}    transform.yield\n  }}\n}}"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_action_per_loop_and_size() {
        let s = parallel_schedule();
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        assert!(s.contains(&format!("@{ENTRY}(")));
        let sizes = MAX_TARGET.trailing_zeros() as usize + 1;
        // Full reductions: one action per power of two from 2 up to the maximum.
        let reductions = MAX_REDUCTION_CHUNKS.trailing_zeros() as usize;
        assert_eq!(s.matches("multitile_sizes").count(), (MAX_DIM + 1) * sizes);
        assert_eq!(
            s.matches("transform.foreach ").count(),
            (MAX_DIM + 1) * sizes + reductions
        );
        // Loop 1 keeps loop 0 whole; the tag names loop and size.
        assert!(s.contains("tile_sizes [0, %low]"));
        assert!(s.contains("attributes{tensorc.par_d1_t64}"));
        assert!(s.contains("target_size = 64,"));
        assert_eq!(s.matches("split_reduction").count(), reductions);
        assert!(s.contains("attributes{tensorc.par_r2}"));
        assert!(s.contains(&format!("attributes{{{}}}", reduction_tag(MAX_REDUCTION_CHUNKS))));
        assert!(!s.contains("tensorc.par_r1}"));
        assert!(s.contains("split_factor = 64, insert_split_dimension = 0"));
    }
}

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

use std::fmt::Write as _;

/// The entry point of this library (preloaded beside the other schedules,
/// whose symbols are distinct: preloaded libraries merge).
pub const ENTRY: &str = "tensorc_parallel_main";

/// Largest loop index that can be split.
pub const MAX_DIM: usize = 2;

/// Largest target chunk size (a power of two).
pub const MAX_TARGET: u64 = 1 << 22;

/// The tag of an op to split along loop `dim` into chunks of about `chunk`.
pub fn tag(dim: usize, chunk: u64) -> String {
    format!("tensorc.par_d{dim}_t{chunk}")
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
                 \x20   %ta, %fa = transform.structured.tile_using_forall %a tile_sizes [{lead}%low] : (!transform.any_op, !transform.param<i64>) -> (!transform.any_op, !transform.any_op)\n\
                 \x20   %tb, %fb = transform.structured.tile_using_forall %b tile_sizes [{lead}%high] : (!transform.any_op, !transform.param<i64>) -> (!transform.any_op, !transform.any_op)\n\
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
        assert_eq!(s.matches("multitile_sizes").count(), (MAX_DIM + 1) * sizes);
        assert_eq!(
            s.matches("transform.foreach ").count(),
            (MAX_DIM + 1) * sizes
        );
        // Loop 1 keeps loop 0 whole; the tag names loop and size.
        assert!(s.contains("tile_sizes [0, %low]"));
        assert!(s.contains("attributes{tensorc.par_d1_t64}"));
        assert!(s.contains("target_size = 64,"));
    }
}

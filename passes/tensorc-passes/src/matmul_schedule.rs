//! The transform-dialect schedule that tiles and vectorizes matmul-class ops
//! (`linalg.matmul`, `linalg.batch_matmul`) on the CPU.
//!
//! Generated from Rust (the tile sizes are parameters, not copied text) and
//! handed to MLIR's `transform-interpreter` through a script file, so the
//! whole CPU path stays a pipeline *string* that both `mlir-opt` and the
//! in-process pass manager run (see `pipeline.rs`).
//!
//! Strategy (cpu-pipeline.md §1.3, schedule (b1)): an `m_tile`×`n_tile`
//! register tile, K by 1, vectorize into `vector.contract`s, then hoist the
//! accumulator reads/writes out of the K loop so the tile stays in registers.
//! Sizes that are not tile multiples are handled by *peeling*: each tiled M
//! and N loop is split into full tiles plus one static remainder tile, so
//! every tile has a static shape and vectorizes (nothing is masked and no
//! element is computed twice). A loop that needs no peeling (the tile divides
//! the size, or the size is smaller than one tile) makes `loop.peel` fail;
//! each peel runs in its own `failures(suppress)` sequence, so that failure
//! only means "nothing to peel". Only ops whose loops all have at least one
//! iteration are scheduled (see `matcher`); the others stay scalar loops.
//!
//! Large matmuls are not tiled here: the packing step of `packed_matmul.rs`
//! has already turned them into packs, a packed contraction and an unpack,
//! cut into N and K cache blocks, and `add_packed` (called from this
//! schedule's entry point) tiles those into 8×32 register tiles and tags
//! the tiles `tensorc.vec`.
//!
//! Only the matmul tiles and the packed schedule's tiles are vectorized
//! (`structured.vectorize` on the re-matched, now static-shaped tiles). `vectorize_children_and_apply_patterns`
//! would vectorize every static linalg op of the function *whole*: a
//! 16M-element element-wise generic became one 16M-lane vector and took
//! 5.9 s to compile. Element-wise ops, fills and reductions stay loops until
//! they get a tiled schedule of their own. `reduction_to_contract` runs on
//! its own, right after vectorizing and before any canonicalization: the
//! canonicalizer folds the size-1 K reduction into a plain `mulf`+`addf`
//! (no contraction, hence no FMA; cpu-pipeline.md §1.6). With the transfer
//! permutation and sink patterns beside it (the set that
//! `vectorize_children_and_apply_patterns` uses) the contraction comes out
//! as 8×1·1×32, reading A and B without broadcasts in the transfer maps.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::packed_matmul::{PackedMatmul, add_packed};

/// Register tile sizes for matmul-class ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulTiles {
    /// Rows of C per tile (one `vbroadcastss` of A each per K step).
    pub m: u32,
    /// Columns of C per tile (a multiple of the 16-lane f32 AVX-512 vector).
    pub n: u32,
}

impl Default for MatmulTiles {
    /// 8×32: 16 zmm accumulators, the tile that matched OpenBLAS at 1024³
    /// (cpu-pipeline.md §0, row (b1)).
    fn default() -> Self {
        MatmulTiles { m: 8, n: 32 }
    }
}

/// Appends the schedule for every op named `op` whose iteration space is
/// `batch_dims` parallel batch dimensions followed by (M, N, K).
fn tile_op(out: &mut String, op: &str, batch_dims: usize, tiles: MatmulTiles, id: &str) {
    let rank = batch_dims + 3;
    // Batch dimensions are tiled by 1 so each tile is one 2-D matmul.
    let mut outer: Vec<String> = vec!["1".into(); batch_dims];
    outer.push(tiles.m.to_string());
    outer.push(tiles.n.to_string());
    outer.push("0".into());
    let mut k: Vec<&str> = vec!["0"; rank - 1];
    k.push("1");
    let loops = batch_dims + 2;
    let loop_types = vec!["!transform.any_op"; loops + 1].join(", ");
    let _ = writeln!(
        out,
        "    %{id} = transform.structured.match ops{{[\"{op}\"]}} attributes{{{TAG}}} in %root : (!transform.any_op) -> !transform.any_op"
    );
    let _ = writeln!(
        out,
        "    %{id}_t, %{id}_l:{loops} = transform.structured.tile_using_for %{id} tile_sizes [{}] : (!transform.any_op) -> ({loop_types})",
        outer.join(", ")
    );
    let _ = writeln!(
        out,
        "    %{id}_k, %{id}_kl = transform.structured.tile_using_for %{id}_t tile_sizes [{}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)",
        k.join(", ")
    );
    // Peel N (innermost tiled loop) before M: peeling consumes only the
    // loop it is given, so the handle to the enclosing M loop stays valid.
    for which in [batch_dims + 1, batch_dims] {
        peel_each(out, &format!("%{id}_l#{which}"), "    ");
    }
}

/// Appends, at indentation `indent`, the peeling of every `scf.for` in
/// `handle` into full tiles plus one static remainder. A loop that needs no
/// peeling (the step divides the trip count, or there is one iteration)
/// makes `loop.peel` fail; each peel runs in its own `failures(suppress)`
/// sequence, so that failure only means "nothing to peel".
pub(crate) fn peel_each(out: &mut String, handle: &str, indent: &str) {
    let body = format!(
        "transform.foreach {handle} : !transform.any_op {{\n\
         \x20 ^bb0(%l: !transform.any_op):\n\
         \x20   transform.sequence %l : !transform.any_op failures(suppress) {{\n\
         \x20   ^bb1(%l2: !transform.any_op):\n\
         \x20     %for = transform.cast %l2 : !transform.any_op to !transform.op<\"scf.for\">\n\
         \x20     %main, %rest = transform.loop.peel %for : (!transform.op<\"scf.for\">) -> (!transform.any_op, !transform.any_op)\n\
         \x20   }}\n\
         }}"
    );
    for line in body.lines() {
        let _ = writeln!(out, "{indent}{line}");
    }
}

/// The attribute that marks the ops this schedule may transform. Tiling
/// copies it onto the tiles, so the tiles are found again for vectorizing.
const TAG: &str = "tensorc.schedule";

/// Appends a matcher named `name` for ops `op` (with `rank` loops) whose every
/// loop has at least one iteration. Zero-size loops are left to the scalar
/// lowering: MLIR 22's `tile_using_for` segfaults on a matmul with K = 0
/// (`tests/cases/ops/dot.nxir`, `empty_contraction`), and a vector type cannot
/// have a zero-size dimension anyway.
fn matcher(out: &mut String, op: &str, rank: usize, name: &str) {
    let _ = writeln!(
        out,
        "  transform.named_sequence @{name}(%op: !transform.any_op {{transform.readonly}}) -> !transform.any_op {{\n\
         \x20   transform.match.operation_name %op [\"{op}\"] : !transform.any_op\n\
         \x20   %zero = transform.param.constant 0 : i64 -> !transform.param<i64>\n\
         \x20   transform.match.structured %op : !transform.any_op {{\n\
         \x20   ^bb0(%s: !transform.any_op):"
    );
    for d in 0..rank {
        let _ = writeln!(
            out,
            "      %d{d} = transform.match.structured.dim %s[{d}] : (!transform.any_op) -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi gt %d{d}, %zero : !transform.param<i64>"
        );
    }
    out.push_str(
        "      transform.match.structured.yield
    }
    transform.yield %op : !transform.any_op
  }
",
    );
}

/// The whole schedule: tile and peel every matmul and batch matmul, tile
/// what the packing step made of the large matmuls (`packed_matmul.rs`),
/// then fold the now-static tile sizes, vectorize, and hoist accumulators.
pub fn matmul_schedule(tiles: MatmulTiles, packed: PackedMatmul) -> String {
    let mut s = String::new();
    s.push_str("module attributes {transform.with_named_sequence} {\n");
    matcher(&mut s, "linalg.matmul", 3, "tensorc_nonempty_matmul");
    matcher(
        &mut s,
        "linalg.batch_matmul",
        4,
        "tensorc_nonempty_batch_matmul",
    );
    let _ = writeln!(
        s,
        "  transform.named_sequence @tensorc_tag(%op: !transform.any_op {{transform.readonly}}) {{\n\
         \x20   transform.annotate %op \"{TAG}\" : !transform.any_op\n\
         \x20   transform.yield\n\
         \x20 }}"
    );
    // `foreach_match` consumes the root handle and returns the updated one,
    // so the rest of the schedule works on `%root`, its result.
    s.push_str(
        "  transform.named_sequence @__transform_main(%arg0: !transform.any_op) {
    %root = transform.foreach_match in %arg0
        @tensorc_nonempty_matmul -> @tensorc_tag,
        @tensorc_nonempty_batch_matmul -> @tensorc_tag
        : (!transform.any_op) -> !transform.any_op\n",
    );
    tile_op(&mut s, "linalg.matmul", 0, tiles, "mm");
    tile_op(&mut s, "linalg.batch_matmul", 1, tiles, "bmm");
    add_packed(&mut s, packed);
    // Canonicalize *before* vectorizing: peeling leaves `affine.min` tile
    // sizes that only fold to constants under canonicalization, and the
    // vectorizer skips any op whose shape is still dynamic at that point.
    s.push_str(
        "    %f = transform.structured.match ops{[\"func.func\"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %f {
      transform.apply_patterns.canonicalization
    } : !transform.any_op
    %tiles = transform.structured.match ops{[\"linalg.matmul\", \"linalg.batch_matmul\"]} attributes{tensorc.schedule} in %root : (!transform.any_op) -> !transform.any_op
    transform.structured.vectorize %tiles : !transform.any_op
    %ptiles = transform.structured.match attributes{tensorc.vec} in %root : (!transform.any_op) -> !transform.any_op
    transform.structured.vectorize %ptiles : !transform.any_op
    %fc = transform.structured.match ops{[\"func.func\"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %fc {
      transform.apply_patterns.vector.reduction_to_contract
      transform.apply_patterns.vector.transfer_permutation_patterns
      transform.apply_patterns.vector.sink_ops
    } : !transform.any_op
    %fv = transform.structured.match ops{[\"func.func\"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %fv {
      transform.apply_patterns.canonicalization
      transform.apply_patterns.tensor.fold_tensor_subset_ops_into_vector_transfers
    } : !transform.any_op
    transform.apply_cse to %fv : !transform.any_op
    %loops = transform.structured.match ops{[\"scf.for\"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.loop.hoist_loop_invariant_subsets %loops : !transform.any_op
    transform.yield
  }
}
",
    );
    s
}

/// Writes `script` to a file named after its content in the system's
/// temporary directory and returns the path. The name depends only on the
/// content, so concurrent compilations agree on it; the file is written to a
/// unique name first and renamed into place, so no reader sees it half
/// written.
pub fn script_file(script: &str) -> std::io::Result<PathBuf> {
    // FNV-1a: stable across runs and Rust versions (unlike `DefaultHasher`).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in script.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let dir = std::env::temp_dir();
    let path = dir.join(format!("tensorc-schedule-{h:016x}.mlir"));
    if std::fs::read_to_string(&path).is_ok_and(|s| s == script) {
        return Ok(path);
    }
    let tmp = dir.join(format!(
        "tensorc-schedule-{h:016x}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, script)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_tiles_with_the_requested_sizes() {
        let s = matmul_schedule(MatmulTiles { m: 4, n: 16 }, PackedMatmul::default());
        assert!(s.contains("tile_sizes [4, 16, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 1]"), "{s}");
        assert!(s.contains("tile_sizes [1, 4, 16, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 0, 1]"), "{s}");
        assert_eq!(s.matches('{').count(), s.matches('}').count());
        // Two peels (N then M) per op kind, five in the packed step.
        assert_eq!(s.matches("transform.loop.peel").count(), 4 + 5);
        // The packed schedule's tiles are vectorized by the tag it gives them.
        assert!(s.contains(&format!(
            "match attributes{{{}}} in %root",
            crate::packed_matmul::VEC
        )));
        // Every loop of each op kind is checked for being non-empty.
        assert_eq!(s.matches("transform.match.param.cmpi gt").count(), 3 + 4);
    }

    #[test]
    fn script_file_round_trips_and_is_stable() {
        let s = matmul_schedule(MatmulTiles::default(), PackedMatmul::default());
        let a = script_file(&s).unwrap();
        let b = script_file(&s).unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::read_to_string(a).unwrap(), s);
    }
}

//! The transform-dialect schedule for element-wise (all-parallel)
//! `linalg.generic`s on the CPU, and the small script builder that the
//! element-wise, reduction and convolution schedules share.
//!
//! Why a schedule: `convert-linalg-to-loops` turns an element-wise generic
//! into scalar loops, and LLVM does not vectorize them reliably (W4 ran at
//! 1 GB/s). Vectorizing a whole op is no answer either: a 16M-element
//! generic became one 16M-lane vector and took 5.9 s to compile. So every
//! all-parallel generic is *tiled first* — outer loops by 1, the innermost
//! loop by `lanes` elements (16 f32 = one AVX-512 register) — and only the
//! tiles are vectorized. The innermost loop is peeled, so the last partial
//! tile is a static remainder that vectorizes too: no masks, and no lane
//! ever computes an element twice or outside the tensor.
//!
//! Which ops: `linalg.generic`s whose loops are all parallel and all have a
//! static, non-zero size, of rank 1 to `MAX_RANK`. Everything else (named
//! ops, dynamic or empty shapes, higher ranks) keeps the scalar lowering.
//! A tile the vectorizer refuses stays a loop: each tile is vectorized in
//! its own `failures(suppress)` sequence. Gathers (`tensor.extract` in the
//! body) become vector gathers (`vectorize_each`).
//!
//! The library uses its own entry point (`ENTRY`) and symbol names with the
//! `tensorc_k_` prefix, so it can be preloaded beside the matmul schedule's
//! library (preloaded libraries are merged; a symbol defined twice is an
//! error) and run by a second `transform-interpreter{entry-point=...}`.
//!
//! Math functions (`tanh`, `exp`, …) inside a vectorized tile stay
//! `math` ops on vectors; MLIR 22 registers its polynomial approximations
//! only as a test pass, so they are lowered as before (LLVM intrinsics or
//! libm calls, element by element). See docs/passes.md.

use std::fmt::Write as _;

use crate::conv_schedule::{ConvTiles, add_convs, vectorize_convs};
use crate::lane_scan_schedule::{add_lane_scans, vectorize_lane_scans};
use crate::reduction_schedule::{
    ReductionTiles, add_outer_reductions, add_reductions, hoist_accumulators,
    vectorize_outer_reductions, vectorize_reductions,
};

/// The entry point of the kernel schedule library.
pub const ENTRY: &str = "tensorc_kernels_main";

/// Largest rank of element-wise generic that gets a schedule.
pub const MAX_RANK: usize = 8;

/// A transform library under construction: named matcher/action sequences,
/// the `foreach_match` pairs that tag payload ops, and the body of the entry
/// point that transforms the tagged ops.
#[derive(Default)]
pub struct Library {
    sequences: String,
    matches: Vec<(String, String)>,
    body: String,
}

impl Library {
    /// Adds a matcher named `name` for `op` (an operation name), with
    /// `predicates` (lines inside `transform.match.structured`, over the
    /// structured handle `%s`, with `%zero` an i64 param 0), and an action
    /// that tags the matched op with the unit attribute `tag`.
    pub fn tagging_matcher(&mut self, name: &str, op: &str, predicates: &str, tag: &str) {
        let _ = writeln!(
            self.sequences,
            "  transform.named_sequence @{name}(%op: !transform.any_op {{transform.readonly}}) -> !transform.any_op {{\n\
             \x20   transform.match.operation_name %op [\"{op}\"] : !transform.any_op\n\
             \x20   %zero = transform.param.constant 0 : i64 -> !transform.param<i64>\n\
             \x20   transform.match.structured %op : !transform.any_op {{\n\
             \x20   ^bb0(%s: !transform.any_op):\n\
             {predicates}\
             \x20     transform.match.structured.yield\n\
             \x20   }}\n\
             \x20   transform.yield %op : !transform.any_op\n\
             \x20 }}\n\
             \x20 transform.named_sequence @{name}_tag(%op: !transform.any_op {{transform.readonly}}) {{\n\
             \x20   transform.annotate %op \"{tag}\" : !transform.any_op\n\
             \x20   transform.yield\n\
             \x20 }}"
        );
        self.matches.push((name.to_owned(), format!("{name}_tag")));
    }

    /// Appends lines to the entry point's body (after tagging; the payload
    /// root handle is `%root`).
    pub fn body(&mut self) -> &mut String {
        &mut self.body
    }

    /// The whole library as MLIR text.
    pub fn finish(&self) -> String {
        let mut s = String::from("module attributes {transform.with_named_sequence} {\n");
        s.push_str(crate::matmul_schedule::PEEL_EACH_DEFINITION);
        s.push_str(&self.sequences);
        let pairs: Vec<String> = self
            .matches
            .iter()
            .map(|(m, a)| format!("@{m} -> @{a}"))
            .collect();
        let _ = writeln!(
            s,
            "  transform.named_sequence @{ENTRY}(%arg0: !transform.any_op) {{"
        );
        if pairs.is_empty() {
            s.push_str(
                "    %root = transform.cast %arg0 : !transform.any_op to !transform.any_op\n",
            );
        } else {
            // `foreach_match` consumes the root handle and returns the
            // updated one, so the body works on `%root`, its result.
            let _ = writeln!(
                s,
                "    %root = transform.foreach_match in %arg0\n        {}\n        : (!transform.any_op) -> !transform.any_op",
                pairs.join(",\n        ")
            );
        }
        s.push_str(&self.body);
        s.push_str("    transform.yield\n  }\n}\n");
        s
    }
}

/// Predicate lines (for `Library::tagging_matcher`) that require every one
/// of the `rank` loops to have a static size of at least one.
pub fn nonempty_dims(rank: usize) -> String {
    let mut s = String::new();
    for d in 0..rank {
        let _ = writeln!(
            s,
            "      %d{d} = transform.match.structured.dim %s[{d}] : (!transform.any_op) -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi gt %d{d}, %zero : !transform.param<i64>"
        );
    }
    s
}

/// Predicate lines that require every input and init indexing map to be a
/// projected permutation (no offsets, strides, reversals or constants).
/// MLIR 22's tiling computes wrong slice sizes for any op with a reversed
/// map (`-d0 + 4`, from `reverse`), even for loops tiled by 1 or not at all,
/// and the match ops cannot tell a reversal from a unit-dimension broadcast
/// (`(d0, 0)`, from `keep_axes` results): both fail `projected_permutation`,
/// so broadcasting generics stay scalar loops too. Folding unit dimensions
/// first (`linalg-fold-unit-extent-dims`) would turn the broadcasts into
/// projections, but as a pass it breaks windowed generics with unit
/// dimensions and, within the tiles, reversed maps (both tried).
pub const PERMUTATION_MAPS: &str = "      transform.match.structured.input %s[all] {projected_permutation} : !transform.any_op\n\
\x20     transform.match.structured.init %s[all] {projected_permutation} : !transform.any_op\n";

/// A predicate line that requires loops `0..k` to be parallel (none when
/// `k` is 0).
pub fn leading_parallel(k: usize) -> String {
    if k == 0 {
        return String::new();
    }
    let dims: Vec<String> = (0..k).map(|d| d.to_string()).collect();
    format!(
        "      transform.match.structured.dim %s[{}] {{parallel}} : !transform.any_op\n",
        dims.join(", ")
    )
}

/// Predicate lines that require the structured op to have exactly `rank`
/// loops.
pub fn rank_is(rank: usize) -> String {
    format!(
        "      %rank = transform.match.structured.rank %s : (!transform.any_op) -> !transform.param<i64>\n\
         \x20     %want = transform.param.constant {rank} : i64 -> !transform.param<i64>\n\
         \x20     transform.match.param.cmpi eq %rank, %want : !transform.param<i64>\n"
    )
}

/// Appends a peel of every `scf.for` in handle `%{loops}`: full tiles plus
/// one static remainder iteration. A loop that needs no peeling (the step
/// divides the trip count, or a single partial iteration) makes `loop.peel`
/// fail, which only means "nothing to peel", hence `failures(suppress)`.
pub fn peel_each(out: &mut String, loops: &str) {
    crate::matmul_schedule::peel_each(out, &format!("%{loops}"), "    ");
}

/// Appends a `structured.vectorize` of every op in handle `%{ops}`, each in
/// its own `failures(suppress)` sequence: an op the vectorizer refuses
/// (dynamic shape after all) stays as it is and is lowered to loops later.
/// `vectorize_nd_extract` lets a tile that reads through `tensor.extract`
/// (`take`, `take_along_axis`: the frontend clamps their indices, so every
/// lane reads inside the table) become vector gathers instead of staying a
/// scalar loop: `take` of 8192 rows of 512 f32 from a 50000-row table went
/// from 1.35 to 0.85 ms on one thread (0.75 → 1.19× NumPy).
pub fn vectorize_each(out: &mut String, ops: &str) {
    let _ = writeln!(
        out,
        "    transform.foreach %{ops} : !transform.any_op {{\n\
         \x20   ^bb0(%v: !transform.any_op):\n\
         \x20     transform.sequence %v : !transform.any_op failures(suppress) {{\n\
         \x20     ^bb1(%v2: !transform.any_op):\n\
         \x20       transform.structured.vectorize %v2 {{vectorize_nd_extract}} : !transform.any_op\n\
         \x20     }}\n\
         \x20   }}"
    );
}

/// Appends a match of the `linalg.generic`s tagged `tag` (rank `rank`) as
/// `%{h}`, tiled by 1 in every loop but the innermost and by `lanes` in that
/// one (tiles `%{h}_t`, loops `%{h}_l`), the innermost loop peeled.
pub fn tile_by_lanes(out: &mut String, h: &str, tag: &str, rank: usize, lanes: u32) {
    let mut sizes = vec!["1".to_owned(); rank - 1];
    sizes.push(lanes.to_string());
    tile_and_peel(out, h, tag, &sizes, rank - 1);
}

/// Appends a match of the `linalg.generic`s tagged `tag` as `%{h}`, tiled
/// by `sizes` (tiles `%{h}_t`, one loop `%{h}_l#i` per non-zero size), and
/// the peeling of loop `peel` of those.
pub fn tile_and_peel(out: &mut String, h: &str, tag: &str, sizes: &[String], peel: usize) {
    let loops = sizes.iter().filter(|s| *s != "0").count();
    let loop_types = vec!["!transform.any_op"; loops + 1].join(", ");
    let _ = writeln!(
        out,
        "    %{h} = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{tag}}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   %{h}_t, %{h}_l:{loops} = transform.structured.tile_using_for %{h} tile_sizes [{sizes}] : (!transform.any_op) -> ({loop_types})",
        sizes = sizes.join(", "),
    );
    peel_each(out, &format!("{h}_l#{peel}"));
}

/// Appends a match of the `linalg.generic`s tagged `tag` as `%{h}` and the
/// vectorization of each (`vectorize_each`).
pub fn vectorize_tagged(out: &mut String, h: &str, tag: &str) {
    let _ = writeln!(
        out,
        "    %{h} = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{tag}}} in %root : (!transform.any_op) -> !transform.any_op"
    );
    vectorize_each(out, h);
}

/// Appends a greedy application of `patterns` (lines of
/// `transform.apply_patterns.*`) to every function, through a fresh handle
/// named `%{name}`.
pub fn apply_to_functions(out: &mut String, name: &str, patterns: &[&str]) {
    let _ = writeln!(
        out,
        "    %{name} = transform.structured.match ops{{[\"func.func\"]}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.apply_patterns to %{name} {{"
    );
    for p in patterns {
        let _ = writeln!(out, "      transform.apply_patterns.{p}");
    }
    let _ = writeln!(out, "    }} : !transform.any_op");
}

/// Tile sizes of the element-wise schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementwiseTiles {
    /// Elements of the innermost loop per tile (the vector length).
    pub lanes: u32,
}

impl Default for ElementwiseTiles {
    /// 16 elements: one 512-bit register of f32 (the host has AVX-512F;
    /// cpu-pipeline.md), two of f64, a fraction of one for narrower types.
    fn default() -> Self {
        ElementwiseTiles { lanes: 16 }
    }
}

/// The tag of element-wise generics of rank `rank`.
pub fn tag(rank: usize) -> String {
    format!("tensorc.ew{rank}")
}

/// Adds the element-wise matchers and the tiling (outer loops by 1, the
/// innermost by `lanes`, peeled) to `lib`. The tiles are vectorized by
/// `vectorize_tagged`, after the caller has canonicalized the tile sizes.
pub fn add_elementwise(lib: &mut Library, tiles: ElementwiseTiles) {
    for rank in 1..=MAX_RANK {
        let predicates = format!(
            "{}      transform.match.structured.dim %s[all] {{parallel}} : !transform.any_op\n{PERMUTATION_MAPS}{}",
            rank_is(rank),
            nonempty_dims(rank)
        );
        lib.tagging_matcher(
            &format!("tensorc_k_ew{rank}"),
            "linalg.generic",
            &predicates,
            &tag(rank),
        );
    }
    let body = lib.body();
    for rank in 1..=MAX_RANK {
        tile_by_lanes(body, &format!("ew{rank}"), &tag(rank), rank, tiles.lanes);
    }
}

/// Appends the vectorization of every element-wise tile (they keep their
/// tag through tiling and peeling).
pub fn vectorize_elementwise(lib: &mut Library) {
    let body = lib.body();
    for rank in 1..=MAX_RANK {
        vectorize_tagged(body, &format!("ewv{rank}"), &tag(rank));
    }
}

/// The kernel schedule library: element-wise generics (this file),
/// reductions over the innermost loop and over outer ones
/// (`reduction_schedule.rs`) and channels-last
/// convolutions (`conv_schedule.rs`) tiled and vectorized. Tile sizes are canonicalized to constants before
/// vectorizing (peeling leaves `affine.min` sizes that only fold under
/// canonicalization, and the vectorizer skips dynamic shapes), and unit
/// dimensions of the tiles' vectors are cast away afterwards so transfers
/// are plain rank-1 loads and stores.
pub fn kernel_schedule(conv: ConvTiles) -> String {
    let mut lib = Library::default();
    add_elementwise(&mut lib, ElementwiseTiles::default());
    add_reductions(&mut lib, ReductionTiles::default());
    add_outer_reductions(&mut lib, ElementwiseTiles::default().lanes);
    add_convs(&mut lib, conv);
    add_lane_scans(&mut lib);
    apply_to_functions(lib.body(), "kf", &["canonicalization"]);
    vectorize_elementwise(&mut lib);
    vectorize_reductions(&mut lib);
    vectorize_outer_reductions(&mut lib);
    vectorize_convs(&mut lib, conv);
    vectorize_lane_scans(&mut lib);
    apply_to_functions(
        lib.body(),
        "kv",
        &[
            "vector.cast_away_vector_leading_one_dim",
            "canonicalization",
            "tensor.fold_tensor_subset_ops_into_vector_transfers",
        ],
    );
    lib.body()
        .push_str("    transform.apply_cse to %kv : !transform.any_op\n");
    hoist_accumulators(&mut lib);
    // Loop-invariant code out of the tiles' loops, still on tensors, where
    // reads are pure: a broadcast row value and what a fused body computes
    // from it alone (layernorm's `rsqrt(var / n + eps)`: a division and a
    // square root per 16 lanes otherwise) move out of the loop over the row.
    // Only `scf.for` (the schedules' loops): not the threads' foralls, not
    // `scf.while`.
    lib.body().push_str(
        "    %kloops = transform.structured.match ops{[\"scf.for\"]} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.apply_licm to %kloops : !transform.any_op\n",
    );
    lib.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> String {
        let mut lib = Library::default();
        add_elementwise(&mut lib, ElementwiseTiles { lanes: 8 });
        vectorize_elementwise(&mut lib);
        lib.finish()
    }

    #[test]
    fn every_rank_is_tiled_by_one_then_lanes() {
        let s = library();
        assert!(s.contains("tile_sizes [8] "), "{s}");
        assert!(s.contains("tile_sizes [1, 1, 8] "), "{s}");
        assert!(s.contains(&format!("tile_sizes [{}8] ", "1, ".repeat(MAX_RANK - 1))));
        // One peel and one vectorize per rank; every loop of every rank is
        // checked for being non-empty.
        assert_eq!(crate::matmul_schedule::peel_count(&s), MAX_RANK);
        assert_eq!(
            s.matches("transform.structured.vectorize ").count(),
            MAX_RANK
        );
        let dims: usize = (1..=MAX_RANK).sum();
        assert_eq!(s.matches("transform.match.param.cmpi gt").count(), dims);
        assert_eq!(s.matches('{').count(), s.matches('}').count());
        assert!(s.contains(&format!("@{ENTRY}(")));
    }

    #[test]
    fn an_empty_library_is_still_a_valid_entry_point() {
        let s = Library::default().finish();
        assert!(s.contains("transform.cast %arg0"), "{s}");
        assert!(!s.contains("foreach_match"), "{s}");
    }
}

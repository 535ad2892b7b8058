//! The transform-dialect schedule for lane-wise scans: `linalg.generic`s
//! whose innermost loop is parallel and at most `MAX_LANES` long, whose
//! second-innermost loop is a reduction, and which carry two results (the
//! frontend's one-pass `argmax`/`argmin`: per lane of a line viewed as
//! `[chunks, lanes]`, the best element so far and its index; see
//! `reduce.rs` in `tensorc-frontend`).
//!
//! Why: their body (a compare and two selects on two results) is not one
//! combiner, so neither the reduction schedules nor the vectorizer take the
//! op (the vectorizer vectorizes a reduction only through a recognized
//! combiner per result), and it stayed scalar loops. But along the chunks
//! the scan is just an element-wise update of the two lane vectors: the
//! schedule tiles every loop but the lanes by 1 (the chunk loop becomes an
//! `scf.for` carrying the two results), folds the now unit-sized loops
//! away (`fold_unit_extent_dims_via_slices`, applied inside the tiled loop
//! nest only), and the remaining all-parallel op over the lanes vectorizes:
//! one `vector<lanes>` compare and two selects per chunk, whose reads and
//! writes of the results `hoist_accumulators` then hoists out of the chunk
//! loop into registers. Nothing is reassociated: each lane still sees its
//! elements in index order.
//!
//! Ops with one result, or a longer lane loop (one vector of the whole
//! line), are left to the other schedules.

use std::fmt::Write as _;

use crate::elementwise_schedule::{
    Library, MAX_RANK, leading_parallel, nonempty_dims, rank_is, vectorize_tagged,
};

/// Longest lane loop scheduled: 128 f32 lanes are eight AVX-512 registers
/// per result.
pub const MAX_LANES: u32 = 128;

/// The tag of lane-wise scans of rank `rank`.
fn tag(rank: usize) -> String {
    format!("tensorc.lane{rank}")
}

/// The tag of the vectorizable per-chunk updates the tiling leaves.
const UPDATE_TAG: &str = "tensorc.lanev";

/// Adds the lane-scan matchers and the tiling and unit-loop folding to
/// `lib`; `vectorize_lane_scans` vectorizes the updates.
pub fn add_lane_scans(lib: &mut Library) {
    for rank in 2..=MAX_RANK {
        let mut predicates = rank_is(rank);
        predicates.push_str(
            "      transform.match.structured.dim %s[-1] {parallel} : !transform.any_op\n\
             \x20     transform.match.structured.dim %s[-2] {reduction} : !transform.any_op\n",
        );
        predicates.push_str(&leading_parallel(rank - 2));
        let _ = write!(
            predicates,
            "      %ninit = transform.match.structured.num_inits %s : (!transform.any_op) -> !transform.param<i64>\n\
             \x20     %two = transform.param.constant 2 : i64 -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi eq %ninit, %two : !transform.param<i64>\n\
             \x20     transform.match.structured.input %s[all] {{permutation}} : !transform.any_op\n\
             \x20     transform.match.structured.init %s[all] {{projected_permutation}} : !transform.any_op\n"
        );
        predicates.push_str(&nonempty_dims(rank));
        let _ = writeln!(
            predicates,
            "      %lanes = transform.param.constant {MAX_LANES} : i64 -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi le %d{}, %lanes : !transform.param<i64>",
            rank - 1
        );
        lib.tagging_matcher(&format!("tensorc_k_lane{rank}"), "linalg.generic", &predicates, &tag(rank));
    }
    let body = lib.body();
    for rank in 2..=MAX_RANK {
        let mut sizes = vec!["1"; rank - 1];
        sizes.push("0");
        let loop_types = vec!["!transform.any_op"; rank].join(", ");
        let _ = writeln!(
            body,
            "    %lane{rank} = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{t}}} in %root : (!transform.any_op) -> !transform.any_op\n\
             \x20   transform.foreach %lane{rank} : !transform.any_op {{\n\
             \x20   ^bb0(%l: !transform.any_op):\n\
             \x20     transform.sequence %l : !transform.any_op failures(suppress) {{\n\
             \x20     ^bb1(%l2: !transform.any_op):\n\
             \x20       %lt, %ll:{n} = transform.structured.tile_using_for %l2 tile_sizes [{sizes}] : (!transform.any_op) -> ({loop_types})\n\
             \x20       transform.apply_patterns to %ll#0 {{\n\
             \x20         transform.apply_patterns.linalg.fold_unit_extent_dims_via_slices\n\
             \x20       }} : !transform.any_op\n\
             \x20       %lu = transform.structured.match ops{{[\"linalg.generic\"]}} in %ll#0 : (!transform.any_op) -> !transform.any_op\n\
             \x20       transform.annotate %lu \"{UPDATE_TAG}\" : !transform.any_op\n\
             \x20     }}\n\
             \x20   }}",
            t = tag(rank),
            n = rank - 1,
            sizes = sizes.join(", "),
        );
    }
}

/// Appends the vectorization of the per-chunk updates.
pub fn vectorize_lane_scans(lib: &mut Library) {
    vectorize_tagged(lib.body(), "lanev", UPDATE_TAG);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_tile_all_but_the_lanes_and_fold_unit_loops() {
        let mut lib = Library::default();
        add_lane_scans(&mut lib);
        vectorize_lane_scans(&mut lib);
        let s = lib.finish();
        assert!(s.contains("tile_sizes [1, 0] "), "{s}");
        assert!(s.contains(&format!("tile_sizes [{}0] ", "1, ".repeat(MAX_RANK - 1))), "{s}");
        assert_eq!(s.matches("fold_unit_extent_dims_via_slices").count(), MAX_RANK - 1);
        assert!(s.contains("transform.match.param.cmpi eq %ninit, %two"), "{s}");
        assert!(s.contains(&format!("attributes{{{UPDATE_TAG}}}")), "{s}");
    }
}

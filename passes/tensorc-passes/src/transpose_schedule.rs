//! The transform-dialect schedule for `linalg.transpose` on the CPU: cache-
//! and register-blocked transposes, with vector loads and stores along the
//! contiguous axis of both the input and the output.
//!
//! Why: left to `convert-linalg-to-loops`, a transpose is a scalar loop nest
//! that writes the output in order and reads the input with a stride of a
//! whole row per element. For power-of-two row lengths those reads map to the
//! same cache sets, and a 2048×2048 f32 transpose took 23 ms (16 MiB in and
//! out, about 1 ms of memory traffic). So the two axes that matter — the
//! output axis holding the input's innermost one (`q`) and the output's own
//! innermost axis — are tiled into square blocks of one vector register's
//! worth (16×16 for 32-bit elements), every other axis by one. Each block is
//! vectorized into 16 contiguous row reads of the input, a transpose in
//! registers and 16 contiguous row writes of the output; a 16×16 f32 block
//! is lowered through MLIR's `shuffle_16x16` strategy (AVX-512 unpack and
//! 128-bit lane shuffles: 2048² went from 23 ms to 1.6 ms on the benchmark
//! machine; the element-wise lowering of the same blocks took 2.3 ms).
//!
//! A transpose that keeps the innermost axis in place (`q` is the last
//! output axis: batch and head permutations such as `[0, 2, 1, 3]`) moves
//! whole contiguous rows. When a row is at most `copy_lanes` elements (four
//! registers; the frontend tags only those), it is tiled one row at a time
//! and each row is vectorized at once, while its shape is still static:
//! one vector read and one vector write per row (`[8][197][12][64]` f32,
//! `[0, 2, 1, 3]`: 0.18 ms as scalar loops, 0.084 ms). It must be vectorized before any canonicalization,
//! which folds a row transpose (a permutation of unit axes) into a slice
//! copy that bufferizes to a `memcpy` call per row; and the row's slices are
//! folded into its transfers first, or canonicalization folds the
//! read-then-write back into the same copy. Longer rows keep the scalar
//! loop nest, whose innermost loop over the row LLVM vectorizes itself:
//! it was faster than either form on `[256][300][257]` f32, `[1, 0, 2]`
//! (4.1 ms, against 6.2 ms for whole-row vectors and 5.3 ms for 64-element
//! chunks through `memcpy`).
//!
//! Remainders: both tiled loops are peeled, so the last partial block of
//! each is a static remainder block that vectorizes too (its transpose is
//! lowered element-wise); nothing is masked or computed twice. The parallel
//! step (`parallel_schedule.rs`) has already cut large transposes into
//! static chunks along an outer axis, so this schedule sees each chunk as a
//! transpose of its own.
//!
//! Which ops: the transform dialect's matchers cannot read a transpose's
//! permutation, so the frontend tags every transpose it emits with the facts
//! the tiling needs, `tensorc.transpose_r<rank>_q<q>_b<bits>` (`tag`), and
//! only transposes whose every axis is non-empty (tiling an empty loop is
//! not safe in MLIR 22, see `matmul_schedule.rs`). Untagged transposes
//! keep the scalar lowering.
//!
//! The library has its own entry point (`ENTRY`) and runs after the
//! parallel step and before the matmul schedule, so the only vector ops its
//! function-wide patterns see are its own (the pack transposes of
//! `packed_matmul.rs` are lowered later, by the matmul schedule).

use std::fmt::Write as _;

use crate::elementwise_schedule::{apply_to_functions, peel_each, vectorize_each};

/// The entry point of the transpose library.
pub const ENTRY: &str = "tensorc_transpose_main";

/// Largest rank of transpose that gets a schedule.
pub const MAX_RANK: usize = 6;

/// Element widths the schedule has tiles for (every `.nxir` dtype).
pub const BITS: [u32; 4] = [8, 16, 32, 64];

/// The attribute every scheduled transpose gets before tiling (tiling and
/// peeling copy it onto the blocks), so the blocks of every kind are found
/// again in one match for vectorizing.
const BLOCK: &str = "tensorc.transpose_block";

/// The tag the frontend puts on a transpose of rank `rank` whose output
/// axis `q` is the input's innermost axis, with elements of `bits` bits.
pub fn tag(rank: usize, q: usize, bits: u32) -> String {
    format!("tensorc.transpose_r{rank}_q{q}_b{bits}")
}

/// The side of the square block for elements of `bits` bits: 512 bits per
/// row (one AVX-512 register) for 32- and 64-bit elements, 16 rows of 256
/// bits for 16-bit ones and 32 of 256 bits for bytes (measured on 2048²
/// f64, f16 and 4096² s8: 8×8 f64 3.9 ms vs 16×16 5.2 ms; 16×16 and 32×32
/// f16 1.3 ms both; 32×32 s8 4.3 ms vs 16×16 5.2 ms and 64×64 6.8 ms).
pub fn block_side(bits: u32) -> u32 {
    match bits {
        8 => 32,
        16 | 32 => 16,
        _ => 8,
    }
}

/// The longest row (in elements) that a transpose keeping the innermost
/// axis moves as one vector: four 512-bit registers.
pub fn copy_lanes(bits: u32) -> u32 {
    2048 / bits
}

/// Tile sizes of a tagged transpose (one per output axis; 0: not tiled).
pub fn tile_sizes(rank: usize, q: usize, bits: u32) -> Vec<u32> {
    let mut sizes = vec![1; rank];
    if q + 1 == rank {
        sizes[rank - 1] = 0;
    } else {
        sizes[q] = block_side(bits);
        sizes[rank - 1] = block_side(bits);
    }
    sizes
}

/// Appends the tiling of the transposes tagged `tag(rank, q, bits)`.
/// Blocks: the tiled loops peeled innermost first (peeling consumes only
/// the loop it is given, so the handle to the outer one stays valid). Row
/// copies (`q` last): one row per tile, vectorized at once. The frontend
/// tags a row copy only when its rows are at most `copy_lanes` elements
/// (a length check in the schedule would need a match op, and in MLIR 22 a
/// failed match inside a `failures(suppress)` sequence does not stop it).
fn tile(out: &mut String, rank: usize, q: usize, bits: u32) {
    let id = format!("tr{rank}_{q}_{bits}");
    let sizes = tile_sizes(rank, q, bits);
    let list = sizes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "    %{id} = transform.structured.match ops{{[\"linalg.transpose\"]}} attributes{{{}}} in %root : (!transform.any_op) -> !transform.any_op",
        tag(rank, q, bits)
    );
    if q + 1 == rank {
        let loop_types = vec!["!transform.any_op"; rank].join(", ");
        let _ = writeln!(
            out,
            "    transform.foreach %{id} : !transform.any_op {{\n\
             \x20   ^bb0(%c: !transform.any_op):\n\
             \x20     %t, %l:{loops} = transform.structured.tile_using_for %c tile_sizes [{list}] : (!transform.any_op) -> ({loop_types})\n\
             \x20     transform.structured.vectorize %t : !transform.any_op\n\
             \x20   }}",
            loops = rank - 1,
        );
        return;
    }
    let loop_types = vec!["!transform.any_op"; rank + 1].join(", ");
    let _ = writeln!(
        out,
        "    transform.annotate %{id} \"{BLOCK}\" : !transform.any_op\n\
         \x20   %{id}_t, %{id}_l:{rank} = transform.structured.tile_using_for %{id} tile_sizes [{list}] : (!transform.any_op) -> ({loop_types})"
    );
    for d in (0..rank).rev().filter(|&d| sizes[d] > 1) {
        peel_each(out, &format!("{id}_l#{d}"));
    }
}

/// The whole library: tile every tagged transpose, fold the peeled blocks'
/// sizes to constants, vectorize the blocks, turn their permuted reads into
/// plain row reads and a `vector.transpose`, and lower that in registers.
pub fn transpose_schedule() -> String {
    let mut s = String::from("module attributes {transform.with_named_sequence} {\n");
    s.push_str(crate::matmul_schedule::PEEL_EACH_DEFINITION);
    let _ = writeln!(
        s,
        "  transform.named_sequence @{ENTRY}(%arg0: !transform.any_op) {{\n\
         \x20   %root = transform.cast %arg0 : !transform.any_op to !transform.any_op"
    );
    for rank in 2..=MAX_RANK {
        for q in 0..rank {
            for bits in BITS {
                tile(&mut s, rank, q, bits);
            }
        }
    }
    // The vectorized rows read and write through slices of the whole
    // tensors; folded into the transfers now, canonicalization cannot fold
    // them back into a slice copy.
    apply_to_functions(
        &mut s,
        "trs",
        &["tensor.fold_tensor_subset_ops_into_vector_transfers"],
    );
    // Peeling leaves `affine.min` block sizes that only fold to constants
    // under canonicalization; the vectorizer skips dynamic shapes.
    apply_to_functions(&mut s, "trf", &["canonicalization"]);
    let _ = writeln!(
        s,
        "    %trb = transform.structured.match ops{{[\"linalg.transpose\"]}} attributes{{{BLOCK}}} in %root : (!transform.any_op) -> !transform.any_op"
    );
    vectorize_each(&mut s, "trb");
    // The vectorizer reads a block through a permuted `transfer_read`, which
    // would lower to one scalar load per element; the permutation patterns
    // make it a read of whole input rows followed by a `vector.transpose`.
    apply_to_functions(&mut s, "trp", &["vector.transfer_permutation_patterns"]);
    apply_to_functions(
        &mut s,
        "trc",
        &[
            "vector.cast_away_vector_leading_one_dim",
            "canonicalization",
            "tensor.fold_tensor_subset_ops_into_vector_transfers",
        ],
    );
    apply_to_functions(
        &mut s,
        "trl",
        &["vector.lower_transpose lowering_strategy = \"shuffle_16x16\""],
    );
    s.push_str("    transform.yield\n  }\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_square_on_the_two_moving_axes() {
        assert_eq!(tile_sizes(2, 0, 32), vec![16, 16]);
        assert_eq!(tile_sizes(3, 0, 64), vec![8, 1, 8]);
        assert_eq!(tile_sizes(4, 2, 8), vec![1, 1, 32, 32]);
        assert_eq!(tile_sizes(4, 1, 16), vec![1, 16, 1, 16]);
        // The innermost axis stays: one row at a time.
        assert_eq!(tile_sizes(4, 3, 32), vec![1, 1, 1, 0]);
        assert_eq!(tile_sizes(2, 1, 8), vec![1, 0]);
    }

    #[test]
    fn every_tag_is_tiled_and_peeled() {
        let s = transpose_schedule();
        let kinds: usize = (2..=MAX_RANK).sum::<usize>() * BITS.len();
        assert_eq!(
            s.matches("transform.structured.tile_using_for").count(),
            kinds
        );
        // Two peeled loops per block kind; row copies (q = rank - 1) are
        // tiled one row at a time, not peeled, and vectorized at once.
        let copies = (2..=MAX_RANK).count() * BITS.len();
        assert_eq!(
            crate::matmul_schedule::peel_count(&s),
            2 * (kinds - copies)
        );
        assert!(s.contains("tile_sizes [1, 1, 0]"), "{s}");
        assert!(s.contains(&tag(3, 1, 32)), "{s}");
        assert!(s.contains("tile_sizes [16, 1, 16]"), "{s}");
        assert!(s.contains("lowering_strategy = \"shuffle_16x16\""), "{s}");
        assert_eq!(
            s.matches("transform.structured.vectorize ").count(),
            1 + copies
        );
        assert_eq!(s.matches('{').count(), s.matches('}').count());
        assert!(s.contains(&format!("@{ENTRY}(")));
    }
}

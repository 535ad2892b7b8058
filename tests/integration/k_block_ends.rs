//! `tensorc-k-block-ends` (`passes/tensorc-passes/src/k_block_ends.rs`):
//! the first K block of a packed product writes C (no zero fill) and the
//! last runs the element-wise epilogue on the register tiles.
//!
//! - the pass's input and output on the real pipeline's IR of a small
//!   W6-like product (bias + relu, two K blocks), by snapshot and by
//!   counts: the fill and the epilogue nest gone, one `scf.if` choosing
//!   zeros in the first block, one running the epilogue in the last;
//! - a product whose last K block is peeled after the K loop (K not a
//!   multiple of the block): the loop's first block writes C, the peeled
//!   block runs the epilogue;
//! - AVX2's tiles: a tile loop and the narrower tile peeled after it
//!   cover C between them (a 2-panel tile, and a 1-panel one whose write
//!   drops two unit dimensions); a padded product keeps its two unpack
//!   reads and loses its fill;
//! - interpreter-vs-CPU runs, one, two and three threads, of products rewritten
//!   both ways, one way (no epilogue; a single K block) and not at all.

use crate::harness::{EdgeSet, bias_relu, cpu_ir_between, cpu_ir_between_for, differential_all};
use tensorc_passes::pipeline::{DROP_ZERO_FILL, K_BLOCK_ENDS, VectorIsa};

/// The IR before and after the pass.
fn before_and_after(name: &str, source: &str) -> (String, String) {
    cpu_ir_between(name, source, DROP_ZERO_FILL, K_BLOCK_ENDS)
}

#[test]
fn first_block_writes_and_last_runs_the_epilogue() {
    let (before, after) = before_and_after("kbe.nxir", &bias_relu("f32", 64, 256, 1024));
    // Before: a fill of zeros, the product, and the epilogue nest reading
    // the packed C by `floordiv`.
    assert!(before.contains("vector.transfer_write %cst, "), "the fill: {before}");
    assert_eq!(before.matches("floordiv").count(), 2, "{before}");
    assert!(!before.contains("scf.if"), "{before}");
    // After: the fill's loop is gone (one scf.forall left: the product's),
    // zeros chosen in the first block (K loop at 0), the epilogue run per
    // 8×16 tile in the last block (at 128) and its nest gone (the copies
    // index the result by multiplying, nothing is divided).
    assert_eq!(before.matches("scf.forall").count(), 2, "{before}");
    assert_eq!(after.matches("scf.forall").count(), 1, "{after}");
    assert_eq!(after.matches("scf.if").count(), 2, "{after}");
    assert_eq!(after.matches("arith.maximumf").count(), 2, "{after}");
    assert_eq!(after.matches("vector.extract %").count() - before.matches("vector.extract %").count(), 2);
    assert!(after.contains("arith.cmpi eq"), "{after}");
    assert!(!after.contains("floordiv"), "{after}");
    insta::assert_snapshot!("k_block_ends_pass", format!("// before\n{before}\n// after\n{after}"));
}

/// K = 300 is two blocks of 128 in the K loop and a third of 44 peeled
/// after it, with its own tile writing C: the loop's first block writes C
/// and the peeled block runs the epilogue, without a condition.
#[test]
fn a_peeled_last_block_runs_the_epilogue() {
    let (before, after) = before_and_after("kbe_partial.nxir", &bias_relu("f32", 64, 300, 1024));
    assert!(before.contains("vector.transfer_write %cst, "), "the fill: {before}");
    assert!(!after.contains("vector.transfer_write %cst, "), "{after}");
    assert_eq!(after.matches("= scf.if").count(), 1, "{after}");
    assert_eq!(after.matches("scf.if").count(), 1, "{after}");
    assert!(!after.contains("floordiv"), "{after}");
    assert_eq!(after.matches("arith.maximumf").count(), 2, "{after}");
}

#[test]
fn rewritten_products_agree_with_the_interpreter() {
    let batched = "def main(a: f32[2][64][256], b: f32[2][256][1024]) -> f32[2][64][1024] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n";
    let scaled = "def main(x: f32[64][256], w: f32[256][1024], b: f32[1024]) -> f32[64][1024] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  s = multiply y, 2.0\n  return s\n}\n";
    let two_uses = "def main(x: f32[64][256], w: f32[256][1024], b: f32[1024]) {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  return {h, z}\n}\n";
    let programs = [
        // Both rewrites: two K blocks, an epilogue.
        ("bias_relu", bias_relu("f32", 64, 256, 1024), 1e-4),
        ("bias_relu_s32", bias_relu("s32", 80, 256, 1024), 0.0),
        ("scaled", scaled.to_owned(), 1e-4),
        // One block: no K loop, the read and the write unconditional.
        ("one_block", bias_relu("f32", 64, 128, 2048), 1e-4),
        // Rows not a multiple of the 8-row panel: padded C, peeled nests.
        ("rows_100", bias_relu("f32", 100, 256, 1024), 1e-4),
        // No epilogue (C is the result, in place): the fill only.
        ("plain", "def main(a: f32[128][512], b: f32[512][1024]) -> f32[128][1024] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n".to_owned(), 1e-4),
        ("batched", batched.to_owned(), 1e-4),
        // The product's value used twice: no fused epilogue.
        ("two_uses", two_uses.to_owned(), 1e-4),
        // The last block peeled after the K loop.
        ("partial_block", bias_relu("f32", 64, 300, 1024), 1e-4),
        ("partial_block_s32", bias_relu("s32", 72, 300, 1024), 0.0),
    ];
    let failures = crate::threads::on_threads(&[1, 2, 3], || differential_all(&programs, EdgeSet::Mild, 5));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Which of the programs above the pass rewrote, and how: the first
/// block's zeros (`scf.if` with a vector result) and the epilogue (an
/// `scf.if` without one).
#[test]
fn the_rewrites_apply_where_expected() {
    let count = |source: &str| {
        let (_, after) = before_and_after("kbe_count.nxir", source);
        let zeros = after.matches("= scf.if").count();
        let epilogues = after.matches("scf.if").count() - zeros;
        (zeros, epilogues)
    };
    assert_eq!(count(&bias_relu("f32", 64, 256, 1024)), (1, 1));
    assert_eq!(count(&bias_relu("s32", 80, 256, 1024)), (1, 1));
    // One K block: nothing to choose, both rewrites unconditional.
    let (before, after) = before_and_after("kbe_one.nxir", &bias_relu("f32", 64, 128, 2048));
    assert_ne!(before, after);
    assert!(!after.contains("scf.if"), "{after}");
    assert!(!after.contains("floordiv"), "{after}");
    assert!(before.contains("vector.transfer_write %cst, "), "the fill: {before}");
    assert!(!after.contains("vector.transfer_write %cst, "), "{after}");
    let plain = "def main(a: f32[128][512], b: f32[512][1024]) -> f32[128][1024] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n";
    assert_eq!(count(plain), (1, 0));
}

/// AVX2's packed schedule (`PackedMatmul::for_isa`): 4×24 register tiles
/// (three 8-wide panels) over N chunks of 32 panels end in a 2-panel tile
/// peeled after the tile loop, and chunks of 28 panels (896 columns) in a
/// 1-panel one, `1×1×4×8`, written through an extract of two unit
/// dimensions. Each tile loop and its peeled tile cover C between them:
/// the fill goes (a sum chosen in the first block per site) and the
/// epilogue runs on both in the last block.
#[test]
fn avx2_tile_loops_and_their_peeled_tiles_cover_c() {
    for (n, tiles) in [(1024, "vector<2x4x8xf32>"), (896, "vector<1x1x4x8xf32>")] {
        let (before, after) = cpu_ir_between_for(
            VectorIsa::Avx2,
            "kbe_avx2.nxir",
            &bias_relu("f32", 64, 256, n),
            DROP_ZERO_FILL,
            K_BLOCK_ENDS,
        );
        assert!(before.contains(tiles), "{n}: {before}");
        assert!(before.contains("vector<1x3x4x8xf32>"), "{n}: {before}");
        assert!(before.contains("vector.transfer_write %cst, "), "{n}: the fill: {before}");
        assert!(!after.contains("vector.transfer_write %cst, "), "{n}: {after}");
        assert_eq!(before.matches("floordiv").count(), 2, "{n}: {before}");
        assert!(!after.contains("floordiv"), "{n}: {after}");
        // A sum chosen in the first block and the epilogue in the last, at
        // each of the two sites.
        assert_eq!(after.matches("= scf.if").count(), 2, "{n}: {after}");
        assert_eq!(after.matches("scf.if").count(), 4, "{n}: {after}");
    }
}

/// A product whose M is not a multiple of the panel height (100 rows on
/// AVX-512's 8-row panels) unpacks its packed C in two nests (the whole
/// row panels, then the partial last one): both read C after the product,
/// so its zero fill still goes, and the unpack stays.
#[test]
fn a_padded_product_loses_its_fill_and_keeps_its_unpack() {
    let plain = "def main(a: f32[100][512], b: f32[512][1024]) -> f32[100][1024] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n";
    let (before, after) = cpu_ir_between("kbe_padded.nxir", plain, DROP_ZERO_FILL, K_BLOCK_ENDS);
    assert!(before.contains("vector.transfer_write %cst, "), "the fill: {before}");
    assert!(!after.contains("vector.transfer_write %cst, "), "{after}");
    assert_eq!(after.matches("= scf.if").count(), 1, "{after}");
    assert_eq!(
        before.matches("vector.transfer_read %alloc").count(),
        after.matches("vector.transfer_read %alloc").count(),
        "the unpack's reads stay: {after}"
    );
}

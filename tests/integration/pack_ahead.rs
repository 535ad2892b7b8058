//! `tensorc-pack-ahead` (`passes/tensorc-passes/src/pack_ahead.rs`): the
//! register tiles of a packed product copy the next K block of B into a
//! second buffer, a slice each.
//!
//! - the pass's input and output on the real pipeline's IR of a small
//!   product (two K blocks), by snapshot and by counts: a second buffer
//!   and its dealloc, the first block packed before the K loop, the tiles
//!   reading the buffer an `arith.select` picks, the per-tile copy and its
//!   prefetch, no pack left in the loop;
//! - a product with a partial last K block (peeled: a copy of the block
//!   after the loop packs the original buffer again) is rewritten too;
//! - interpreter-vs-CPU runs, one, two and three threads, of products with one,
//!   two, several and partial K blocks, with and without an epilogue,
//!   f32 and s32, a batch.

use crate::harness::{EdgeSet, bias_relu, cpu_ir_between, differential_all};
use tensorc_passes::pipeline::{K_BLOCK_ENDS, PACK_AHEAD};

fn dot(m: usize, k: usize, n: usize) -> String {
    format!(
        "def main(a: f32[{m}][{k}], b: f32[{k}][{n}]) -> f32[{m}][{n}] {{\n  c = dot a, [1], [], b, [0], []\n  return c\n}}\n"
    )
}

/// The IR before and after the pass.
fn before_and_after(name: &str, source: &str) -> (String, String) {
    cpu_ir_between(name, source, K_BLOCK_ENDS, PACK_AHEAD)
}

#[test]
fn tiles_pack_the_next_block_into_a_second_buffer() {
    let (before, after) = before_and_after("pa.nxir", &dot(64, 256, 1024));
    let buffer = "memref.alloc() {alignment = 64 : i64} : memref<32x128x16xf32>";
    assert_eq!(before.matches(buffer).count(), 1, "{before}");
    assert_eq!(after.matches(buffer).count(), 2, "{after}");
    assert_eq!(
        after.matches("memref.dealloc").count(),
        before.matches("memref.dealloc").count() + 1,
        "{after}"
    );
    // One pack (16×1×16 reads, transposed) in both: in the loop before,
    // before the loop after.
    assert_eq!(before.matches("vector.transpose %").count(), 2, "A's pack and B's: {before}");
    assert_eq!(after.matches("vector.transpose %").count(), 2, "{after}");
    // The K loop's body starts with the choice of buffers.
    let k_loop = after.find("arith.select").expect("the K loop");
    let b_pack = after.rfind("vector<16x1x16xf32>").expect("B's pack");
    assert!(b_pack < k_loop, "B's pack before the K loop: {after}");
    // The buffers the block reads and fills, chosen by the block's parity.
    assert_eq!(after.matches("arith.select").count(), 3, "{after}");
    assert!(after.contains("arith.remui"), "{after}");
    // The copy: 16-float rows of B into the other buffer, one per step,
    // with a prefetch of the rows four tiles on.
    assert!(after.contains("vector<16xf32>, memref<32x128x16xf32>"), "{after}");
    assert_eq!(
        after.matches("memref.prefetch").count(),
        before.matches("memref.prefetch").count() + 1,
        "{after}"
    );
    insta::assert_snapshot!("pack_ahead_pass", format!("// before\n{before}\n// after\n{after}"));
}

/// K = 300: two blocks of 128 in the loop, the third (44 rows) peeled
/// after it, packing into the first buffer itself.
#[test]
fn a_peeled_last_block_keeps_its_own_pack() {
    let (before, after) = before_and_after("pa_partial.nxir", &dot(64, 300, 1024));
    assert_ne!(before, after);
    let buffers = |ir: &str| ir.matches("memref.alloc() {alignment = 64 : i64} : memref<32x128x16xf32>").count();
    assert_eq!(buffers(&after), buffers(&before) + 1, "{after}");
    assert_eq!(after.matches("arith.select").count(), 3, "{after}");
}

#[test]
fn products_packed_ahead_agree_with_the_interpreter() {
    let programs = [
        ("two_blocks", dot(64, 256, 1024), 1e-4),
        ("four_blocks", dot(128, 512, 1024), 1e-4),
        ("one_block", dot(64, 128, 2048), 1e-4),
        ("partial_block", dot(64, 300, 1024), 1e-4),
        ("bias_relu", bias_relu("f32", 64, 384, 1024), 1e-4),
        ("rows_100", bias_relu("f32", 100, 256, 1024), 1e-4),
        (
            "s32",
            "def main(a: s32[80][256], b: s32[256][1024]) -> s32[80][1024] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n".to_owned(),
            0.0,
        ),
        (
            "batched",
            "def main(a: f32[2][64][256], b: f32[2][256][1024]) -> f32[2][64][1024] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n".to_owned(),
            1e-4,
        ),
    ];
    let failures = crate::threads::on_threads(&[1, 2, 3], || differential_all(&programs, EdgeSet::Mild, 13));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

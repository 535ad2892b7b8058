//! Unpacked products cut into N blocks (`n_block` and `add_n_blocks` in
//! `passes/tensorc-passes/src/matmul_schedule.rs`, tagged by
//! `tensorc-pack-mark`): B larger than L2 and K short enough for A's 8-row
//! slab to stay in L1.
//!
//! - after the matmul schedule, a 512×300·300×1000 product runs its register
//!   tiles inside a loop over 384-column blocks of B (two full blocks and
//!   a peeled one of 232 columns: 7 register tiles and an 8-column one), all
//!   vectorized;
//! - interpreter-vs-CPU runs on one, two and three threads of blocked
//!   products (each checked to be blocked first): a peeled last block
//!   whose width 32 does not divide, a width that divides N (nothing
//!   peeled) with W6's bias + relu epilogue, the narrowest blocks (K over
//!   1024 and near the bound), f64 (64-column blocks), s32 and s64, rows
//!   no register tile divides; and a product just outside the rule
//!   (K = 1441, checked not blocked) for contrast;
//! - 64-bit products with K over 720, cut into N blocks and K blocks
//!   (`k_block`), checked blocked and run the same way.

use crate::harness::{EdgeSet, cpu_ir_upto, differential_all};
use crate::prefetch_panels::dot;
use tensorc::Stage;
use tensorc_passes::matmul_schedule::N_BLOCKS;

#[test]
fn blocked_product_tiles_each_block() {
    let source = dot(512, 300, 1000);
    let opt = tensorc::emit("nblock.nxir", &source, Stage::Opt)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let after = cpu_ir_upto(
        "nblock.nxir",
        &source,
        &opt,
        "transform-interpreter,canonicalize,cse,",
    );
    // The block loop over N: full 384-column blocks, then the last one.
    assert!(after.contains("%c384 = arith.constant 384 : index"), "{after}");
    assert!(after.contains("to %c768 step %c384"), "{after}");
    // Within a full block, 12 register tiles of 32 columns; in the last
    // (232 = 7 × 32 + 8), 7 and one of 8 columns.
    assert!(after.contains("to %c384 step %c32"), "{after}");
    assert!(after.contains("to %c224 step %c32"), "{after}");
    assert!(after.contains("vector<8x8xf32>"), "{after}");
    assert!(after.contains("vector<8x32xf32>"), "{after}");
    // Every tile vectorized: no matmul op left.
    assert!(!after.contains("linalg.matmul"), "{after}");
}

/// The IR of `source` after the matmul schedule.
fn after_matmul_step(name: &str, source: &str) -> String {
    let opt = tensorc::emit(name, source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    cpu_ir_upto(name, source, &opt, "transform-interpreter,canonicalize,cse,")
}

#[test]
fn blocked_products_agree_with_the_interpreter() {
    let bias_relu = "def main(x: f32[300][400], w: f32[400][960], b: f32[960]) -> f32[300][960] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n";
    // (name, program, the block loop's step, or None when not blocked)
    let programs = [
        // 384-column blocks: 1000 = 2 × 384 + 232 (peeled, 7 × 32 + 8);
        // 300 rows: threads take row chunks, a 4-row remainder tile.
        ("peeled_block", dot(300, 300, 1000), Some(384)),
        // 320-column blocks dividing N = 960, with the epilogue.
        ("dividing_bias_relu", bias_relu.to_owned(), Some(320)),
        // K over 1024: 128-column blocks, 300 = 2 × 128 + 44 (32 + 12).
        ("narrowest_blocks", dot(261, 1030, 300), Some(128)),
        // K = 1200 (near the bound): 128-column blocks, the last of 88
        // columns (600 = 4 × 128 + 88); enough rows for row chunks (with
        // 150 the threads split N and every chunk is one block).
        ("long_k_blocks", dot(512, 1200, 600), Some(128)),
        // f64: 64-column blocks for K = 700 (B over 1 MiB at half the
        // columns), 300 = 4 × 64 + 44 in 8×16 register tiles.
        ("f64_blocks", dot(512, 700, 300).replace("f32", "f64"), Some(64)),
        // Integers: s32 like f32 (1202 rows of B: 128-column blocks),
        // s64 like f64 (297: 192 columns, 1914 = 9 × 192 + 186).
        ("s32_blocks", dot(369, 1202, 302).replace("f32", "s32"), Some(128)),
        ("s64_blocks", dot(603, 297, 1914).replace("f32", "s64"), Some(192)),
        // K = 1441: not cut (an 8-row slab of A would outgrow L1).
        ("long_k_unblocked", dot(130, 1441, 260), None),
    ];
    for (name, source, step) in &programs {
        let after = after_matmul_step(&format!("{name}.nxir"), source);
        let blocked = N_BLOCKS.iter().any(|w| after.contains(&format!("step %c{w} ")));
        match step {
            Some(w) => assert!(after.contains(&format!("step %c{w} ")), "{name}: {after}"),
            None => assert!(!blocked, "{name}: {after}"),
        }
    }
    let programs: Vec<(&str, String, f64)> = programs.into_iter().map(|(n, s, _)| (n, s, 1e-4)).collect();
    let failures = crate::threads::on_threads(&[1, 2, 3], || {
        differential_all(&programs, EdgeSet::Mild, 5)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}


/// 64-bit products whose rows of A are too long for N blocks alone (K over
/// 720) are cut into N blocks of 512 columns and those into K blocks of
/// 128 rows (`k_block`): each checked to have both block loops, then run
/// against the interpreter on one, two and three threads. Their C is not
/// written by the tiles' sums alone (`tensorc-drop-zero-fill` skips them:
/// every K block but the first adds to C).
#[test]
fn k_blocked_products_agree_with_the_interpreter() {
    let bias_relu = "def main(x: f64[260][900], w: f64[900][600], b: f64[600]) -> f64[260][600] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n";
    let programs = [
        // N 700 = 512 + 188 and K 800 = 6 × 128 + 32, both peeled; 300
        // rows: the usual row chunks.
        ("f64_k_blocks", dot(300, 800, 700).replace("f32", "f64")),
        // Both block sizes dividing (nothing peeled), 512 rows: 4 chunks
        // of 128 rows (`parallel_mark::k_blocked_rows`).
        ("s64_k_blocks_dividing", dot(512, 1024, 1024).replace("f32", "s64")),
        // With W6's epilogue.
        ("f64_k_blocks_bias_relu", bias_relu.to_owned()),
    ];
    for (name, source) in &programs {
        let after = after_matmul_step(&format!("{name}.nxir"), source);
        // A block loop of one full iteration (700 = 512 + 188) is folded
        // away: its op's 512 columns remain.
        let n_blocks = after.contains("step %c512 ") || after.contains("x512x");
        assert!(n_blocks && after.contains("step %c128 "), "{name}: {after}");
    }
    let programs: Vec<(&str, String, f64)> = programs.into_iter().map(|(n, s)| (n, s, 1e-9)).collect();
    let failures = crate::threads::on_threads(&[1, 2, 3], || {
        differential_all(&programs, EdgeSet::Mild, 5)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

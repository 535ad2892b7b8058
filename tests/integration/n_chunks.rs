//! Packed products whose threads split N (`PackedMatmul::n_chunk`,
//! `passes/tensorc-passes/src/packed_matmul.rs`): an `scf.forall` of equal
//! N chunks, each packing its own B blocks inside its own K block loop.
//!
//! - interpreter-vs-CPU runs on one, two and three threads (three: more
//!   threads than divide the chunks evenly) of products with two chunks of
//!   16 panels, four of 24 with the bias + relu epilogue, a batch, M not a
//!   multiple of the panel and K in a full and a partial block, and two
//!   products that cannot split N (2000 and 1030 columns, few rows);
//! - the W2-like product calls the thread pool three times (A's pack, C's
//!   fill, the chunks), its register tiles all in an outlined body;
//! - `tensorc-parallel-mark` leaves the ops inside an `scf.forall` alone;
//! - a product whose N cannot be split and whose A has few panels splits
//!   each block along B panels in whole 8×32 register tiles;
//! - products whose N cannot be split but whose A panels halve into chunks
//!   of at least 64 (`PackedMatmul::splits_m`) run as an `scf.forall` of
//!   two M chunks, each blocked and packing its own B blocks: against the
//!   interpreter on one, two and three threads (a padded A panel, partial
//!   N and K blocks, the bias + relu epilogue), and every register tile in
//!   one outlined body (one fork-join for the product).

use crate::harness::{EdgeSet, before_and_after, differential_all};
use crate::prefetch_panels::dot;

#[test]
fn n_chunked_products_agree_with_the_interpreter() {
    let programs = [
        // 512 columns: two chunks of 16 panels; 67 rows (a padded panel),
        // K = 300 (two full blocks and one of 44).
        ("two_chunks", dot(67, 300, 512), 1e-4),
        (
            // 1536 columns: four chunks of 24 panels, with W6's epilogue.
            "four_chunks_bias_relu",
            "def main(x: f32[130][200], w: f32[200][1536], b: f32[1536]) -> f32[130][1536] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n"
                .to_owned(),
            1e-4,
        ),
        (
            // A batch becomes a loop of products, each split in chunks.
            "batched",
            "def main(a: f32[3][72][150], b: f32[3][150][1024]) -> f32[3][72][1024] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n"
                .to_owned(),
            1e-4,
        ),
        // 2000 columns (125 panels) cannot be split evenly: the threads
        // split each block, along B panels two at a time with 5 A panels.
        ("b_panels_2000", dot(40, 1600, 2000), 1e-4),
        // A padded panel of B (1030 columns), B over 12 MiB.
        ("b_panels_1030", dot(33, 3100, 1030), 1e-4),
        // 1020 rows: 128 A panels, the last padded, in two M chunks of 64;
        // K = 1601 leaves a K block of 65, N = 2000 one of 29 panels.
        ("m_chunks", dot(1020, 1601, 2000), 1e-4),
        (
            "m_chunks_bias_relu",
            "def main(x: f32[1024][1600], w: f32[1600][2000], b: f32[2000]) -> f32[1024][2000] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n"
                .to_owned(),
            1e-4,
        ),
    ];
    let failures = crate::threads::on_threads(&[1, 2, 3], || {
        differential_all(&programs, EdgeSet::Mild, 11)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One fork-join for the product: splitting A panels instead made two per
/// (N block, K block) pair, four call sites in this program. The other is
/// A's pack (C's zero fill, a third, goes: `tensorc-k-block-ends`). The
/// 16 FMAs (one 8×32 register tile) are all in outlined bodies.
#[test]
fn w2_like_product_forks_once() {
    let llvm = crate::harness::avx512_llvm_dialect("w2like.nxir", &dot(256, 1024, 1024));
    let main = &llvm[llvm.find("llvm.func @main(").expect("main")..];
    let main = &main[..main.find("\n  }\n").expect("end of main")];
    assert_eq!(
        main.matches("llvm.call @tensorc_parallel_for").count(),
        2,
        "{main}"
    );
    assert!(!main.contains("llvm.intr.fmuladd"), "{main}");
    assert_eq!(llvm.matches("llvm.intr.fmuladd").count(), 16, "{llvm}");
}

/// 2000³ splits M in two chunks: every register tile of every block (full
/// and partial N and K blocks) is in the one outlined chunk body, where
/// splitting each block's A panels outlined each block kind on its own and
/// forked twice per (N block, K block) pair.
#[test]
fn m_split_product_runs_every_block_in_one_fork() {
    let llvm = crate::harness::avx512_llvm_dialect("m2000.nxir", &dot(2000, 2000, 2000));
    let outlined: Vec<&str> = llvm.split("llvm.func @__tensorc_par_").skip(1).collect();
    let with_tiles = outlined
        .iter()
        .filter(|b| b.contains("llvm.intr.fmuladd"))
        .count();
    assert_eq!(with_tiles, 1, "{llvm}");
    // Full and partial N and K blocks: 8×32 tiles and the 8×16 tile of the
    // odd last N block (29 panels), each once per K block kind.
    let tiles = outlined
        .iter()
        .find(|b| b.contains("llvm.intr.fmuladd"))
        .map(|b| b.matches("llvm.intr.fmuladd").count());
    assert_eq!(tiles, Some(2 * (16 + 16 + 8)), "{llvm}");
}

#[test]
fn parallel_mark_leaves_ops_in_a_forall_alone() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::parallel_mark;
    tensorc_mlir::register_external_pass(parallel_mark::NAME, parallel_mark::create);
    // The same large fill at function level and in a chunk of a forall.
    let input = r#"module {
  func.func @f(%e: tensor<2x512x512xf32>) -> (tensor<512x512xf32>, tensor<2x512x512xf32>) {
    %z = arith.constant 0.0 : f32
    %t = tensor.empty() : tensor<512x512xf32>
    %whole = linalg.fill ins(%z : f32) outs(%t : tensor<512x512xf32>) -> tensor<512x512xf32>
    %r = scf.forall (%i) in (2) shared_outs(%o = %e) -> (tensor<2x512x512xf32>) {
      %s = tensor.extract_slice %o[%i, 0, 0] [1, 512, 512] [1, 1, 1] : tensor<2x512x512xf32> to tensor<512x512xf32>
      %chunk = linalg.fill ins(%z : f32) outs(%s : tensor<512x512xf32>) -> tensor<512x512xf32>
      scf.forall.in_parallel {
        tensor.parallel_insert_slice %chunk into %o[%i, 0, 0] [1, 512, 512] [1, 1, 1] : tensor<512x512xf32> into tensor<2x512x512xf32>
      }
    }
    return %whole, %r : tensor<512x512xf32>, tensor<2x512x512xf32>
  }
}
"#;
    let mlir = Mlir::new();
    let (_, _, after) = before_and_after(&mlir, input, parallel_mark::NAME);
    assert_eq!(after.matches("tensorc.par_d").count(), 1, "{after}");
    let forall = &after[after.find("scf.forall").expect("forall")..];
    assert!(!forall.contains("tensorc.par_"), "{after}");
}

/// 100×2000·2000×2000: 13 A panels and 125 B panels. The parallel step
/// splits each block along B panels, two per chunk, so the register tiles
/// in the outlined chunks are 8×32 (16 FMAs per k); in one-panel chunks
/// they were 8×16 (8 FMAs), 20 % slower. 125 panels are 62 chunks of two
/// and one of one (the parallel step's two sizes); `tensorc-merge-chunks`
/// puts that one in the same parallel loop, so a body with both parts has
/// 16 + 8 FMAs.
#[test]
fn few_rows_keep_whole_register_tiles() {
    let llvm = crate::harness::avx512_llvm_dialect("m100.nxir", &dot(100, 2000, 2000));
    let outlined: Vec<&str> = llvm.split("llvm.func @__tensorc_par_").skip(1).collect();
    let tiles: Vec<usize> = outlined
        .iter()
        .map(|b| b.matches("llvm.intr.fmuladd").count())
        .filter(|&n| n > 0)
        .collect();
    assert!(!tiles.is_empty() && tiles.iter().all(|&n| n == 16 || n == 16 + 8), "{tiles:?}\n{llvm}");
}

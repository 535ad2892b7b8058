//! Matrix products with few result columns (frontend `reduce.rs` `narrow`,
//! tagged `NARROW_KEY`; `tensorc-row-fuse-mark` gives them the reduction
//! schedule's `tensorc.mvn` tags). Their results against the interpreter
//! are checked by `tests/cases/ops/dot_narrow.nxir` and here on one and two
//! threads; here also what the kernel step makes of them.

use crate::harness::{EdgeSet, cpu_ir_upto, differential_all};
use tensorc::Stage;

fn product(m: usize, k: usize, n: usize) -> String {
    format!("def main(a: f32[{m}][{k}], b: f32[{k}][{n}]) -> f32[{m}][{n}] {{\n  c = dot a, [1], [], b, [0], []\n  return c\n}}\n")
}

/// Two rows of A and all 8 columns per block: the partial sums are one
/// `2×8×16` vector, A is read once per block, and no generic is left to
/// the scalar lowering; 16 columns take one row per block.
#[test]
fn narrow_products_reduce_all_columns_of_a_block_of_rows() {
    for (n, partials) in [(8, "vector<2x8x16xf32>"), (16, "vector<16x16xf32>")] {
        let source = product(64, 256, n);
        let opt = tensorc::emit("narrow.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(opt.contains("tensorc.narrow_n"), "{opt}");
        assert!(!opt.contains("linalg.matmul"), "{opt}");
        let after = cpu_ir_upto("narrow.nxir", &source, &opt, "entry-point=tensorc_kernels_main}");
        assert!(after.contains(partials), "{n} columns: {after}");
        assert!(!after.contains("linalg.generic"), "{n} columns: {after}");
    }
}

/// A batch of narrow products: the batch loop tiled by 1, then blocks as
/// for one product.
#[test]
fn batched_narrow_products_are_blocked_alike() {
    let source = "def main(a: f32[4][64][256], b: f32[4][256][8]) -> f32[4][64][8] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n";
    let opt = tensorc::emit("batched.nxir", source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(opt.contains("tensorc.narrow_n") && !opt.contains("batch_matmul"), "{opt}");
    let after = cpu_ir_upto("batched.nxir", source, &opt, "entry-point=tensorc_kernels_main}");
    assert!(after.contains("vector<2x8x16xf32>"), "{after}");
    assert!(!after.contains("linalg.generic"), "{after}");
}

/// Wide products and B of over 40 KiB with more than 8 columns stay
/// matrix products.
#[test]
fn wide_or_large_products_stay_matrix_products() {
    for (m, k, n) in [(64, 256, 17), (256, 1024, 16), (64, 32, 8)] {
        let opt = tensorc::emit("wide.nxir", &product(m, k, n), Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(opt.contains("linalg.matmul") && !opt.contains("tensorc.narrow_n"), "{m}×{k}·{n}: {opt}");
    }
}

/// Against the interpreter: odd rows (a remainder block of one row), a
/// remainder of the 16-lane partials, every column count from 2 to 16, on
/// one and two threads.
#[test]
fn narrow_products_agree_with_the_interpreter() {
    let programs: Vec<(String, String, f64)> = (2..=16)
        .map(|n| (format!("narrow_{n}"), product(3 + 2 * n, 64 + 7 * n, n), 1e-5))
        .collect();
    let programs: Vec<(&str, String, f64)> = programs.iter().map(|(a, b, t)| (a.as_str(), b.clone(), *t)).collect();
    let failures = crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::Mild, 7));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A narrow product whose A is over `MATVEC_STREAM_BYTES` (from memory)
/// prefetches the rows of A ahead (`tensorc-prefetch-rows`' block reads),
/// with blocks of two rows (8 columns) and of one (12); one whose A fits
/// in L3 does not. Results agree with the interpreter.
#[test]
fn streamed_narrow_products_prefetch_rows_of_a() {
    use tensorc_passes::reduction_schedule::MATVEC_STREAM_BYTES;
    for (m, k, n) in [(2049, 2048, 8), (5601, 768, 12), (1024, 1024, 8)] {
        let source = product(m, k, n);
        let streamed = (m * k * 4) as u64 > MATVEC_STREAM_BYTES;
        let opt = tensorc::emit("stream.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(opt.contains("tensorc.narrow_n"), "{m}×{k}·{n}");
        let llvm = tensorc::emit("stream.nxir", &source, Stage::LlvmDialect).unwrap_or_else(|e| panic!("{}", e.render()));
        assert_eq!(llvm.contains("llvm.intr.prefetch"), streamed, "{m}×{k}·{n}");
    }
    let programs = [("stream_8", product(2049, 2048, 8), 1e-4)];
    let failures = differential_all(&programs, EdgeSet::None, 3);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A narrow product whose A is computed (a relu fused into it by the
/// `opt` stage, which makes a new op without the frontend's tag) is still
/// blocked by the narrow schedule (`row_fuse::narrow_product` reads the
/// maps), with bias and relu after it; against the interpreter.
#[test]
fn narrow_products_with_a_fused_producer_keep_their_schedule() {
    let source = "def main(a: f32[64][256], b: f32[256][10], c: f32[10]) -> f32[64][10] {\n  r = max a, 0.0\n  y = dot r, [1], [], b, [0], []\n  z = add y, c\n  w = max z, 0.0\n  return w\n}\n";
    let opt = tensorc::emit("fused.nxir", source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(!opt.contains("tensorc.narrow_n"), "the fusion keeps the tag now; the map test is untested: {opt}");
    let after = cpu_ir_upto("fused.nxir", source, &opt, "entry-point=tensorc_kernels_main}");
    assert!(after.contains("vector<10x16xf32>"), "{after}");
    let programs = [("fused", source.to_string(), 1e-5)];
    let failures = crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::Mild, 9));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

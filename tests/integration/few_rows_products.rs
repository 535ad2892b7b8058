//! Products of 2 to 4 rows of A with a B from memory (frontend `reduce.rs`
//! `few_rows_product`, tagged by `tensorc-name-contractions` through
//! `reduction_schedule::tag_few_rows`, split in strips of N by
//! `tensorc-matvec`, their block sums fused by `tensorc-fused-row-sums`):
//! what the passes make of them, and their results against the
//! interpreter on one and two threads.

use crate::harness::{EdgeSet, cpu_ir_upto, differential_all};
use tensorc::Stage;

fn product(m: usize, k: usize, n: usize) -> String {
    format!("def main(a: f32[{m}][{k}], b: f32[{k}][{n}]) -> f32[{m}][{n}] {{\n  c = dot a, [1], [], b, [0], []\n  return c\n}}\n")
}

/// Blocks of four rows of B; no named product; after the kernel step no
/// generic is left, and each block's sums are FMAs (no `multi_reduction`
/// after the fusing pass).
#[test]
fn few_rows_of_a_large_b_stream_it_in_blocks() {
    for (m, k, n) in [(2, 2048, 2048), (3, 2050, 2047), (4, 2048, 2048), (4, 1025, 4099)] {
        let source = product(m, k, n);
        let opt = tensorc::emit("few.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(opt.contains("tensorc.few_rows"), "{m}×{k}·{n}: {opt}");
        assert!(!opt.contains("linalg.matmul"), "{m}×{k}·{n}: {opt}");
        let kernels = cpu_ir_upto("few.nxir", &source, &opt, "entry-point=tensorc_kernels_main}");
        assert!(!kernels.contains("linalg.generic"), "{m}×{k}·{n}: {kernels}");
        assert!(kernels.contains(&format!("vector<4x{m}x16xf32>")), "{m}×{k}·{n}: {kernels}");
        // Strips of N for threads, 1024 columns or more (not the marker's
        // 64), when N makes two; never chunks of M or K.
        let split = cpu_ir_upto("few.nxir", &source, &opt, "tensorc-matvec,");
        assert_eq!(split.contains("tensorc.par_d2_t"), n >= 2048, "{m}×{k}·{n}: {split}");
        assert!(!split.contains("tensorc.par_d2_t512") && !split.contains("tensorc.par_d2_t64"), "{m}×{k}·{n}: {split}");
        assert!(!split.contains("tensorc.par_d0") && !split.contains("tensorc.par_d1"), "{m}×{k}·{n}: {split}");
        let fused = cpu_ir_upto("few.nxir", &source, &opt, "tensorc-fused-row-sums,");
        assert!(fused.contains("vector.fma") && !fused.contains("vector.multi_reduction"), "{m}×{k}·{n}: {fused}");
    }
}

/// Five rows and a B that fits in L3 stay matrix products.
#[test]
fn other_products_are_not_few_row_products() {
    for (m, k, n) in [(5, 2048, 2048), (4, 1024, 1024), (2, 1024, 2048)] {
        let opt = tensorc::emit("other.nxir", &product(m, k, n), Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(opt.contains("linalg.matmul") && !opt.contains("tensorc.few_rows"), "{m}×{k}·{n}: {opt}");
    }
}

/// A producer of A fused into the product (a new op, without any tag the
/// frontend could give) is still a few-row product: the loop order says so.
#[test]
fn a_fused_producer_keeps_the_few_row_schedule() {
    let source = "def main(a: f32[4][2048], b: f32[2048][2048]) -> f32[4][2048] {\n  r = max a, 0.0\n  c = dot r, [1], [], b, [0], []\n  return c\n}\n";
    let opt = tensorc::emit("fused.nxir", source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(opt.contains("tensorc.few_rows") && opt.contains("arith.maximumf"), "{opt}");
    let kernels = cpu_ir_upto("fused.nxir", source, &opt, "entry-point=tensorc_kernels_main}");
    assert!(!kernels.contains("linalg.generic"), "{kernels}");
}

/// Against the interpreter: remainders of K (blocks of 4 and 2) and of N
/// (16 lanes), 2 to 4 rows, a fused relu, one and two threads.
#[test]
fn few_row_products_agree_with_the_interpreter() {
    let programs = [
        ("few_2", product(2, 2048, 2048), 1e-4),
        ("few_3", product(3, 2050, 2047), 1e-4),
        ("few_4", product(4, 1025, 4099), 1e-4),
        (
            "few_relu",
            "def main(a: f32[3][2051], b: f32[2051][2049]) -> f32[3][2049] {\n  r = max a, 0.0\n  c = dot r, [1], [], b, [0], []\n  return c\n}\n".to_owned(),
            1e-4,
        ),
    ];
    let failures = crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::None, 5));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

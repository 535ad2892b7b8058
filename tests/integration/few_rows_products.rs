//! Products of 2 to 4 rows of A with a B of 128 KiB or more, and of 5 to
//! 8 rows with a B of 8 MiB or more in two groups of rows
//! (`tensorc-matvec`'s `few_rows_plan`, `split_into_few_rows`: a generic
//! over `[K][M][N]` tagged `tensorc.few_rows`, split in strips of N; its
//! block sums fused by
//! `tensorc-fused-row-sums`): what the passes make of them, and their
//! results against the interpreter on one and two threads. The frontend
//! and Vulkan keep the named product (`tests/cases/ops/dot_few_rows.nxir`).

use crate::harness::{EdgeSet, cpu_ir_upto, differential_all};
use tensorc::Stage;

fn product(m: usize, k: usize, n: usize) -> String {
    format!("def main(a: f32[{m}][{k}], b: f32[{k}][{n}]) -> f32[{m}][{n}] {{\n  c = dot a, [1], [], b, [0], []\n  return c\n}}\n")
}

/// The named product becomes the generic, tagged; blocks of four rows of
/// B after the kernel step, no generic left; each block's sums are FMAs
/// (no `multi_reduction` after the fusing pass); N split in wide strips.
#[test]
fn few_rows_of_a_large_b_stream_it_in_blocks() {
    for (m, k, n) in [(2, 2048, 2048), (3, 2050, 2047), (4, 2048, 2048), (4, 1025, 4099), (3, 129, 257)] {
        let source = product(m, k, n);
        let opt = tensorc::emit("few.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(opt.contains("linalg.matmul"), "{m}×{k}·{n}: {opt}");
        // Strips of N for threads, 1024 columns or more (not the marker's
        // 64), when N makes two; never chunks of M or K.
        let split = cpu_ir_upto("few.nxir", &source, &opt, "tensorc-matvec,");
        assert!(split.contains("tensorc.few_rows") && !split.contains("linalg.matmul"), "{m}×{k}·{n}: {split}");
        assert!(split.contains("fastmath<contract>"), "{m}×{k}·{n}: {split}");
        assert_eq!(split.contains("tensorc.par_d2_t"), n >= 2048, "{m}×{k}·{n}: {split}");
        assert!(!split.contains("tensorc.par_d2_t512") && !split.contains("tensorc.par_d2_t64"), "{m}×{k}·{n}: {split}");
        assert!(!split.contains("tensorc.par_d0") && !split.contains("tensorc.par_d1"), "{m}×{k}·{n}: {split}");
        let kernels = cpu_ir_upto("few.nxir", &source, &opt, "entry-point=tensorc_kernels_main}");
        assert!(!kernels.contains("linalg.generic"), "{m}×{k}·{n}: {kernels}");
        assert!(kernels.contains(&format!("vector<4x{m}x16xf32>")), "{m}×{k}·{n}: {kernels}");
        let fused = cpu_ir_upto("few.nxir", &source, &opt, "tensorc-fused-row-sums,");
        assert!(fused.contains("vector.fma") && !fused.contains("vector.multi_reduction"), "{m}×{k}·{n}: {fused}");
    }
}

/// Five to eight rows with a B of 8 MiB or more and N of two strips for
/// threads: two few-row products on slices of A and C (4 + 4, 4 + 3, 3 +
/// 3, 3 + 2 rows), each streaming B.
#[test]
fn five_to_eight_rows_of_a_large_b_are_two_few_row_products() {
    for (m, k, n, groups) in [(8, 1025, 2049, [4, 4]), (7, 1024, 2048, [4, 3]), (6, 1024, 2048, [3, 3]), (5, 1025, 2049, [3, 2])] {
        let source = product(m, k, n);
        let opt = tensorc::emit("split.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        let split = cpu_ir_upto("split.nxir", &source, &opt, "tensorc-matvec,");
        assert!(!split.contains("linalg.matmul"), "{m}×{k}·{n}: {split}");
        assert_eq!(split.matches("tensorc.few_rows").count(), 2, "{m}×{k}·{n}: {split}");
        for rows in groups {
            assert!(split.contains(&format!("tensor<{rows}x{k}xf32>")), "{m}×{k}·{n}: {split}");
        }
        assert_eq!(split.matches("tensor.insert_slice").count(), 2, "{m}×{k}·{n}: {split}");
    }
}

/// Five rows and a B under 8 MiB, eight rows with N of one strip, nine
/// rows, and a B under 128 KiB stay matrix products.
#[test]
fn other_products_are_not_few_row_products() {
    for (m, k, n) in [(5, 1024, 2047), (8, 4096, 1024), (9, 2048, 2048), (4, 100, 300), (2, 64, 256)] {
        let source = product(m, k, n);
        let opt = tensorc::emit("other.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        let split = cpu_ir_upto("other.nxir", &source, &opt, "tensorc-matvec,");
        assert!(split.contains("linalg.matmul") && !split.contains("tensorc.few_rows"), "{m}×{k}·{n}: {split}");
    }
}

/// Against the interpreter: remainders of K (blocks of 4 and 2) and of N
/// (16 lanes), 2 to 4 rows, 5 and 8 rows split in two, a fused relu, one
/// and two threads.
#[test]
fn few_row_products_agree_with_the_interpreter() {
    let programs = [
        ("few_2", product(2, 2048, 2048), 1e-4),
        ("few_small", product(4, 129, 257), 1e-5),
        ("few_3", product(3, 2050, 2047), 1e-4),
        ("few_4", product(4, 1025, 4099), 1e-4),
        ("split_5", product(5, 1025, 2049), 1e-4),
        ("split_8", product(8, 1025, 2049), 1e-4),
        (
            "few_relu",
            "def main(a: f32[3][2051], b: f32[2051][2049]) -> f32[3][2049] {\n  r = max a, 0.0\n  c = dot r, [1], [], b, [0], []\n  return c\n}\n".to_owned(),
            1e-4,
        ),
    ];
    let failures = crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::None, 5));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

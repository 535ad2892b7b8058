//! Matrix·vector products and outer-axis reductions (issue 6):
//! `tensorc-matvec` (`passes/tensorc-passes/src/matvec.rs`) and the blocked
//! outer-axis reductions of `reduction_schedule.rs`.
//!
//! - interpreter-vs-CPU runs of every shape family the pass rewrites
//!   (vector·matrix, matrix·vector, 1-D operands either side, transposed
//!   layouts, batches of one and of several, odd sizes, sizes split for
//!   threads), of the ones it must leave alone (a handful of rows, a dot of
//!   two vectors, an outer product), in f32, f64, f16, bf16, s32 and mixed
//!   dtypes, and of outer-axis reductions (blocked rows with remainders,
//!   wide strips for threads, chunks of rows with partial results for
//!   rows too narrow for strips, rank 3, max/min/mean);
//! - the pass before and after (snapshot): contractions rewritten and
//!   tagged, the marker's narrow split of a sum over axis 0 widened;
//! - the 1-D vector·matrix product (scalar loops over the matrix's columns
//!   before) is vectorized.

use crate::harness::{EdgeSet, Settings, before_and_after, differential};
use tensorc::Stage;

/// `dot a, [ca], [], b, [cb], []` of `a: <at>`, `b: <bt>` into `<ot>`.
fn dot(at: &str, ca: usize, bt: &str, cb: usize, ot: &str) -> String {
    format!(
        "def main(a: {at}, b: {bt}) -> {ot} {{\n  c = dot a, [{ca}], [], b, [{cb}], []\n  return c\n}}\n"
    )
}

/// A batched `dot` (batch axis 0 on both sides).
fn batched(at: &str, bt: &str, ot: &str) -> String {
    format!(
        "def main(a: {at}, b: {bt}) -> {ot} {{\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}}\n"
    )
}

fn reduce(op: &str, xt: &str, axes: &str, ot: &str) -> String {
    format!("def main(x: {xt}) -> {ot} {{\n  s = {op} x, axes: [{axes}]\n  return s\n}}\n")
}

fn programs() -> Vec<(&'static str, String, f64)> {
    vec![
        // Vector·matrix: rows accumulated in blocks of 8 (300 = 37·8 + 4),
        // 16 lanes (257 = 16·16 + 1).
        ("vecmat_1x300x257", dot("f32[1][300]", 1, "f32[300][257]", 0, "f32[1][257]"), 1e-4),
        ("vecmat_1x2050x1100", dot("f32[1][2050]", 1, "f32[2050][1100]", 0, "f32[1][1100]"), 1e-4),
        // Wide enough for strips of 1024 columns (threads; 2500 = 833 +
        // 833 + 834).
        ("vecmat_1x300x2500", dot("f32[1][300]", 1, "f32[300][2500]", 0, "f32[1][2500]"), 1e-4),
        ("vecmat_1x7x5", dot("f32[1][7]", 1, "f32[7][5]", 0, "f32[1][5]"), 1e-5),
        // Matrix·vector: one reduction per row (1001 = 15·64 + 41).
        ("matvec_999x1001x1", dot("f32[999][1001]", 1, "f32[1001][1]", 0, "f32[999][1]"), 1e-4),
        ("matvec_5x40x1", dot("f32[5][40]", 1, "f32[40][1]", 0, "f32[5][1]"), 1e-5),
        // Blocks of 4 rows with a remainder of 3, 32 partials per row with
        // a remainder of 1.
        ("matvec_7x65x1", dot("f32[7][65]", 1, "f32[65][1]", 0, "f32[7][1]"), 1e-5),
        // 1-D operands: the frontend's contraction generics.
        ("vec_times_matrix_1d", dot("f32[777]", 0, "f32[777][1030]", 0, "f32[1030]"), 1e-4),
        ("matrix_times_vec_1d", dot("f32[513][1000]", 1, "f32[1000]", 0, "f32[513]"), 1e-4),
        // Transposed layouts: the matrix contracted over its other axis.
        ("vec_times_matrix_t", dot("f32[300]", 0, "f32[450][300]", 1, "f32[450]"), 1e-4),
        ("matrix_t_times_vec", dot("f32[300][450]", 0, "f32[300]", 0, "f32[450]"), 1e-4),
        ("row_times_matrix_t", dot("f32[1][256]", 1, "f32[500][256]", 1, "f32[1][500]"), 1e-4),
        // Batches: of one (the batch loop is dropped), of several.
        ("batch_one_vecmat", batched("f32[1][1][200]", "f32[1][200][333]", "f32[1][1][333]"), 1e-4),
        ("batch_vecmat", batched("f32[6][1][130]", "f32[6][130][70]", "f32[6][1][70]"), 1e-4),
        ("batch_matvec", batched("f32[3][50][129]", "f32[3][129][1]", "f32[3][50][1]"), 1e-4),
        ("batch_one_matvec", batched("f32[1][700][300]", "f32[1][300][1]", "f32[1][700][1]"), 1e-4),
        // Other dtypes.
        ("vecmat_f64", dot("f64[1][100]", 1, "f64[100][77]", 0, "f64[1][77]"), 1e-12),
        ("matvec_s32", dot("s32[33][70]", 1, "s32[70][1]", 0, "s32[33][1]"), 0.0),
        ("vecmat_s32_1d", dot("s32[90]", 0, "s32[90][65]", 0, "s32[65]"), 0.0),
        ("vecmat_f16", dot("f16[1][64]", 1, "f16[64][40]", 0, "f16[1][40]"), 2e-2),
        ("matvec_bf16", dot("bf16[9][50]", 1, "bf16[50][1]", 0, "bf16[9][1]"), 1e-1),
        ("mixed_s32_f32", dot("s32[1][50]", 1, "f32[50][30]", 0, "f32[1][30]"), 1e-4),
        // Left to the matmul schedules: a handful of rows, a dot of two
        // vectors, an outer product.
        ("five_rows", dot("f32[5][300]", 1, "f32[300][129]", 0, "f32[5][129]"), 1e-4),
        ("row_times_column", dot("f32[1][300]", 1, "f32[300][1]", 0, "f32[1][1]"), 1e-4),
        ("outer_product", dot("f32[1][1]", 1, "f32[1][500]", 0, "f32[1][500]"), 1e-6),
        // Outer-axis reductions: blocks of 8 rows with a remainder, odd
        // widths, wide strips for threads, rank 3, several reduced axes.
        ("sum_axis0_300x1999", reduce("sum", "f32[300][1999]", "0", "f32[1999]"), 1e-4),
        ("sum_axis0_2050x1500", reduce("sum", "f32[2050][1500]", "0", "f32[1500]"), 1e-3),
        ("sum_axis0_301x2500", reduce("sum", "f32[301][2500]", "0", "f32[2500]"), 1e-4),
        ("max_axis0_77x4100", reduce("reduce_max", "f32[77][4100]", "0", "f32[4100]"), 0.0),
        ("min_axis0_s32", reduce("reduce_min", "s32[13][100]", "0", "s32[100]"), 0.0),
        ("sum_axis0_rank3", reduce("sum", "f32[9][33][70]", "0", "f32[33][70]"), 1e-5),
        ("sum_axes01_rank3", reduce("sum", "f32[8][9][50]", "0, 1", "f32[50]"), 1e-4),
        // The reduction second, after a parallel loop: blocks of rows too.
        ("sum_axis1_rank3", reduce("sum", "f32[5][37][70]", "1", "f32[5][70]"), 1e-5),
        ("sum_axis0_f64_3x5", reduce("sum", "f64[3][5]", "0", "f64[5]"), 1e-12),
        // Rows too narrow for two strips, split into chunks of rows with
        // partial results (`row_chunks`): 8 chunks of 375 rows (blocks of 8
        // with a remainder of 7 each), a keep-axes 3-D form, integers.
        ("sum_axis0_row_chunks", reduce("sum", "f32[3000][1999]", "0", "f32[1999]"), 1e-3),
        ("max_axis0_row_chunks", reduce("reduce_max", "f32[4096][1][130]", "0", "f32[1][130]"), 0.0),
        ("sum_axis0_row_chunks_s32", reduce("sum", "s32[2048][257]", "0", "s32[257]"), 0.0),
        (
            "mean_axis0",
            "def main(x: f32[1001][513]) -> f32[513] {\n  s = sum x, axes: [0]\n  m = divide s, 1001.0\n  return m\n}\n"
                .to_owned(),
            1e-5,
        ),
    ]
}

#[test]
fn matvec_shapes_and_outer_reductions_agree_with_the_interpreter() {
    let mut failures = Vec::new();
    for (name, source, tolerance) in programs() {
        let settings = Settings {
            tolerance,
            inputs: EdgeSet::Mild,
            seeds: vec![7],
        };
        for f in differential(&format!("{name}.nxir"), &source, &settings) {
            failures.push(format!("{name}: {f}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn matvec_pass_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::{matvec, parallel_mark};
    tensorc_mlir::register_external_pass(parallel_mark::NAME, parallel_mark::create);
    tensorc_mlir::register_external_pass(matvec::NAME, matvec::create);
    let source = "def vecmat(a: f32[1][64], b: f32[64][2048]) -> f32[1][2048] {
  c = dot a, [1], [], b, [0], []
  return c
}
def matvec(a: f32[40][600], b: f32[600][1]) -> f32[40][1] {
  c = dot a, [1], [], b, [0], []
  return c
}
def column_sums(x: f32[64][2048]) -> f32[2048] {
  s = sum x, axes: [0]
  return s
}
";
    let opt = tensorc::emit("matvec.nxir", source, Stage::Opt)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let mlir = Mlir::new();
    let (mut m, _, marked) = before_and_after(&mlir, &opt, parallel_mark::NAME);
    // The marker cuts the matmul with M = 1 and the column sums into
    // 256-column strips.
    assert_eq!(marked.matches("tensorc.par_d1_t256").count(), 2, "{marked}");
    mlir.run_pipeline(&mut m, matvec::NAME, "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let after = mlir.print(&m, tensorc_mlir::PrintOptions::default());
    assert!(!after.contains("linalg.matmul"), "{after}");
    // Vector·matrix: rows accumulated in blocks; matrix·vector: rows
    // reduced several at a time, each with partial sums and a tree.
    assert_eq!(after.matches("tensorc.oredb2").count(), 1, "{after}");
    assert_eq!(after.matches("tensorc.mvr2").count(), 1, "{after}");
    // Both wide ops in 1024-column strips now, the rows of the product in
    // the marker's chunks.
    assert_eq!(after.matches("tensorc.par_d1_t1024").count(), 2, "{after}");
    assert!(!after.contains("tensorc.par_d1_t256"), "{after}");
    // The unit axes are views.
    assert!(after.contains("tensor.collapse_shape"), "{after}");
    assert!(after.contains("tensor.expand_shape"), "{after}");
    insta::assert_snapshot!(
        "matvec_pass",
        format!("// marked\n{marked}\n// after\n{after}")
    );
}

/// Before the pass the frontend's generics for 1-D operands stayed scalar
/// loops (the vector·matrix one reading the matrix column by column).
#[test]
fn one_dimensional_products_are_vectorized() {
    let source = dot("f32[777]", 0, "f32[777][1030]", 0, "f32[1030]");
    let llvm = tensorc::emit("vecmat1d.nxir", &source, Stage::LlvmDialect)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(llvm.contains("vector<16xf32>"), "{llvm}");
    // Matrix·vector: 32 partial sums per row.
    let source = dot("f32[513][1000]", 1, "f32[1000]", 0, "f32[513]");
    let llvm = tensorc::emit("matvec1d.nxir", &source, Stage::LlvmDialect)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(llvm.contains("vector<32xf32>"), "{llvm}");
}

/// Matrices over `MATVEC_STREAM_BYTES` (from memory) are reduced two rows
/// at a time with prefetches of the rows ahead (`tensorc-prefetch-rows`);
/// smaller ones four at a time without. Odd row counts leave a remainder
/// block; results agree with the interpreter on one and two threads.
#[test]
fn streamed_matrices_go_two_rows_at_a_time() {
    use tensorc_passes::reduction_schedule::{MATVEC_STREAM_BYTES, MATVEC_STREAM_ROWS};
    let cases: [(&str, String, u64); 4] = [
        ("stream_2d", dot("f32[8193][1024]", 1, "f32[1024]", 0, "f32[8193]"), 8193 * 1024 * 4),
        ("stream_batched", batched("f32[64][511][256]", "f32[64][256]", "f32[64][511]"), 64 * 511 * 256 * 4),
        ("stream_f64", dot("f64[4097][1030]", 1, "f64[1030]", 0, "f64[4097]"), 4097 * 1030 * 8),
        ("l3_2d", dot("f32[2048][1024]", 1, "f32[1024]", 0, "f32[2048]"), 2048 * 1024 * 4),
    ];
    for (name, source, bytes) in &cases {
        let streamed = *bytes > MATVEC_STREAM_BYTES;
        assert_eq!(streamed, name.starts_with("stream"), "{name}");
        let rel = format!("{name}.nxir");
        let opt = tensorc::emit(&rel, source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        let tagged = crate::harness::cpu_ir_upto(&rel, source, &opt, "tensorc-matvec,");
        // The tag `tensorc.mvr<rank>` (four rows) or `…x2` (two).
        let two = tagged
            .split("tensorc.mvr")
            .skip(1)
            .any(|t| t.trim_start_matches(|c: char| c.is_ascii_digit()).starts_with(&format!("x{MATVEC_STREAM_ROWS}")));
        assert!(tagged.contains("tensorc.mvr"), "{name}: {tagged}");
        assert_eq!(two, streamed, "{name}");
        let llvm = tensorc::emit(&rel, source, Stage::LlvmDialect).unwrap_or_else(|e| panic!("{}", e.render()));
        assert_eq!(llvm.contains("llvm.intr.prefetch"), streamed, "{name}");
    }
    let settings = Settings { tolerance: 1e-4, inputs: EdgeSet::None, seeds: vec![11] };
    let failures = crate::threads::on_threads(&[1, 2], || {
        cases.iter().flat_map(|(name, source, _)| differential(&format!("{name}.nxir"), source, &settings)).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

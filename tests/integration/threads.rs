//! Multi-threading (issue 6 point 4): the parallel schedule, the Rust pass
//! `tensorc-outline-parallel` and the runtime's thread pool.
//!
//! - the pass on a small hand-written module, before and after (snapshot),
//!   and that its output lowers to the LLVM dialect with no casts left;
//! - interpreter-vs-CPU runs with 1 and 2 threads on matmuls of odd sizes,
//!   an element-wise chain, reductions over either axis, a convolution,
//!   batch matmuls and a reverse (whose loops must not be split);
//! - results bit-identical whatever the thread count (chunk boundaries are
//!   fixed at compile time: an element-wise or row chunk computes each
//!   element as one thread would, and a split full reduction always has
//!   the same partial results, combined in the same order);
//! - full reductions to a scalar split into partial results
//!   (`parallel_mark::reduction_chunks`): every dtype, odd lengths (a
//!   remainder the split leaves to a last step), lengths at and around the
//!   split threshold and shorter than the thread count, integer results
//!   exact, f16/bf16 sums on inputs whose every partial sum is exact;
//! - `tensorc run --threads N`.
//!
//! The thread count is process-wide; the tests that change it hold `SETTING`.
//! (The other tests of this binary run with the default, every core.)

use crate::harness::{EdgeSet, Settings, before_and_after, compile_for, differential};
use std::sync::Mutex;
use tensorc::{CompileOptions, Target, Tensor};

pub(crate) static SETTING: Mutex<()> = Mutex::new(());

/// Runs `check` with tensorc on each of `counts` threads (holding
/// `SETTING`, the default restored afterwards) and returns its messages,
/// each prefixed with the thread count.
pub(crate) fn on_threads(counts: &[usize], mut check: impl FnMut() -> Vec<String>) -> Vec<String> {
    let _g = SETTING.lock().unwrap_or_else(|e| e.into_inner());
    let mut failures = Vec::new();
    for &threads in counts {
        tensorc::set_num_threads(threads);
        failures.extend(check().into_iter().map(|f| format!("{threads} thread(s), {f}")));
    }
    tensorc::set_num_threads(0);
    failures
}

/// Programs whose every parallel form is exercised: the matmul M split (odd
/// sizes, one row, fewer rows than a chunk), row-parallel element-wise and
/// reduction generics, a reduction over the first axis (split along the
/// second), a batch-1 convolution (split along output rows), matmuls, and
/// outer loops too short to split (a matrix-vector product, three rows, a
/// batch of two), split along a later loop.
const PROGRAMS: &[(&str, &str)] = &[
    (
        "matmul_1x1x1",
        "def main(a: f32[1][1], b: f32[1][1]) -> f32[1][1] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n",
    ),
    (
        "matmul_7x13x5",
        "def main(a: f32[7][13], b: f32[13][5]) -> f32[7][5] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n",
    ),
    (
        "matmul_257x255x129",
        "def main(a: f32[257][129], b: f32[129][255]) -> f32[257][255] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n",
    ),
    // Packed matmuls (packed_matmul.rs) with sizes no block divides: A's
    // pack, B's block packs and the fused epilogue run as
    // `tensorc.parallel_for` loops, whose bodies must write only their own
    // slice (a shared temporary raced in an earlier version).
    (
        "packed_matmul_odd",
        "def main(a: f32[1001][517], b: f32[517][1024]) -> f32[1001][1024] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n",
    ),
    // An unpacked product whose B (700 x 500) exceeds L2: M in chunks of
    // 32 rows (parallel_mark::matmul_min_rows), the last one partial.
    (
        "wide_b_row_chunks",
        "def main(a: f32[1001][700], b: f32[700][500]) -> f32[1001][500] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n",
    ),
    (
        "packed_bias_relu_odd",
        "def main(x: f32[250][600], w: f32[600][1024], b: f32[1024]) -> f32[250][1024] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n",
    ),
    (
        "elementwise_chain",
        "def main(x: f32[300][1000], y: f32[1000]) -> f32[300][1000] {
  a = add x, y
  b = exp a
  c = multiply b, x
  d = max c, 0.5
  return d
}
",
    ),
    (
        "softmax_rows",
        "def main(x: f32[300][1000]) -> f32[300][1000] {
  m = reduce_max x, axes: [1], keep_axes: true
  d = subtract x, m
  e = exp d
  s = sum e, axes: [1], keep_axes: true
  y = divide e, s
  return y
}
",
    ),
    (
        "column_sums",
        "def main(x: f64[2000][37]) -> f64[37] {\n  s = sum x, axes: [0]\n  return s\n}\n",
    ),
    (
        // 4096 rows of 1000 (too narrow for two 1024-column strips): 64
        // chunks of 64 rows, each a partial row of sums.
        "narrow_column_sums",
        "def main(x: f32[4096][1000]) -> f32[1000] {\n  s = sum x, axes: [0]\n  return s\n}\n",
    ),
    (
        "vector_add_1d",
        "def main(a: s32[100003], b: s32[100003]) -> s32[100003] {\n  c = add a, b\n  return c\n}\n",
    ),
    (
        "conv_nhwc_batch1",
        "def main(x: f32[1][16][16][8], w: f32[3][3][8][4]) -> f32[1][14][14][4] {
  y = conv x, w, input_permutation: [0, 3, 1, 2], kernel_permutation: [3, 2, 0, 1], output_permutation: [0, 3, 1, 2]
  return y
}
",
    ),
    (
        "batch_matmul",
        "def one(a: f32[1][200][64], b: f32[1][64][48]) -> f32[1][200][48] {
  c = dot a, [2], [0], b, [1], [0]
  return c
}

def many(a: f32[6][40][30], b: f32[6][30][20]) -> f32[6][40][20] {
  c = dot a, [2], [0], b, [1], [0]
  return c
}
",
    ),
    (
        // M = 1: split along N instead (chunks of at least 64 columns).
        "matvec",
        "def main(a: f32[1][512], b: f32[512][1000]) -> f32[1][1000] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n",
    ),
    (
        // Three rows: split along the columns.
        "three_long_rows",
        "def main(x: f32[3][100000], y: f32[3][100000]) -> f32[3][100000] {\n  a = multiply x, y\n  b = exp a\n  return b\n}\n",
    ),
    (
        // A batch of two: split along M.
        "batch_of_two",
        "def main(a: f32[2][512][64], b: f32[2][64][64]) -> f32[2][512][64] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n",
    ),
    (
        // Indexing maps that decrease (-d0 + 299) must not be split (MLIR's
        // tiling computes wrong slices for them); the transpose may be.
        "reverse_transpose",
        "def main(x: f32[300][200]) -> f32[200][300] {
  v = reverse x, [0, 1]
  t = transpose v, [1, 0]
  return t
}
",
    ),
];

#[test]
fn cpu_agrees_with_the_interpreter_on_one_and_two_threads() {
    let _g = SETTING.lock().unwrap_or_else(|e| e.into_inner());
    let mut failures = Vec::new();
    for threads in [1, 2] {
        tensorc::set_num_threads(threads);
        assert_eq!(tensorc::num_threads(), threads);
        for (name, source) in PROGRAMS {
            // Packed matmuls sum each K block of 256 apart and add it to C
            // (tensorc-late-accumulate): f32 reassociation over 500+ terms
            // moves results by a few 1e-5 of (1 + |c|) from the
            // interpreter's one sequential sum.
            // So does `wide_b_row_chunks` (K = 700) on AVX2 targets, which
            // pack every product past the size thresholds.
            // Column sums of 4096 rows in chunks (partial rows added up
            // after) against one sequential sum: a few 1e-5 too.
            let blocked = name.starts_with("packed") || *name == "wide_b_row_chunks";
            let settings = Settings {
                tolerance: if blocked || *name == "narrow_column_sums" { 1e-4 } else { 1e-5 },
                inputs: EdgeSet::None,
                seeds: vec![11],
            };
            for f in differential(&format!("{name}.nxir"), source, &settings) {
                failures.push(format!("{threads} thread(s), {name}: {f}"));
            }
        }
    }
    tensorc::set_num_threads(0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A full reduction of `x: <dtype>[n]` to a scalar.
fn full_reduction(op: &str, dtype: &str, n: usize) -> String {
    format!("def main(x: {dtype}[{n}]) -> {dtype} {{\n  s = {op} x, axes: nil, keep_axes: false\n  return s\n}}\n")
}

/// A reduction of `x: <dtype>[rows][n]` over its last axis.
fn row_reduction(op: &str, dtype: &str, rows: usize, n: usize) -> String {
    format!("def main(x: {dtype}[{rows}][{n}]) -> {dtype}[{rows}] {{\n  s = {op} x, axes: [1]\n  return s\n}}\n")
}

/// (name, op, dtype, length, split): full reductions around the split. The
/// split needs `parallel_mark::MIN_WORK` (2^15) elements; 100003 gives 4
/// partials and a remainder of 3, 32769 two partials and a remainder of 1,
/// 2^16 four partials and no remainder.
const FULL_REDUCTIONS: &[(&str, &str, &str, usize, bool)] = &[
    ("sum_f32_odd", "sum", "f32", 100_003, true),
    ("sum_f64_pow2", "sum", "f64", 1 << 16, true),
    ("sum_s32_odd", "sum", "s32", 100_003, true),
    ("sum_s64_threshold", "sum", "s64", 1 << 15, true),
    ("max_s8", "reduce_max", "s8", 40_961, true),
    ("product_s64", "product", "s64", 32_769, true),
    ("max_f32", "reduce_max", "f32", 70_001, true),
    ("min_f64", "reduce_min", "f64", 65_537, true),
    ("min_s16", "reduce_min", "s16", 32_769, true),
    ("max_u32", "reduce_max", "u32", 50_000, true),
    ("sum_f32_below_threshold", "sum", "f32", (1 << 15) - 1, false),
    ("sum_f32_shorter_than_the_threads", "sum", "f32", 3, false),
    ("max_s32_one", "reduce_max", "s32", 1, false),
];

/// Split full reductions against the interpreter on 1, 2 and 3 threads
/// (integers exactly; floats within 1e-4 relative, far below what a lost
/// or doubled chunk or remainder would change), bit-identical across
/// thread counts, and on the pool exactly when long enough.
#[test]
fn full_reductions_split_into_partial_results() {
    let _g = SETTING.lock().unwrap_or_else(|e| e.into_inner());
    let settings = Settings {
        tolerance: 1e-4,
        inputs: EdgeSet::None,
        seeds: vec![3],
    };
    let mut failures = Vec::new();
    // Reductions over the last axis of few rows are split the same way
    // (3 rows of 50001: 8 partials per row and a remainder of 1).
    let rows = [
        ("rows_sum_f32", row_reduction("sum", "f32", 3, 50_001)),
        ("rows_max_s32", row_reduction("reduce_max", "s32", 2, 40_000)),
        ("one_row_min_f64", row_reduction("reduce_min", "f64", 1, 70_001)),
    ];
    let cases = FULL_REDUCTIONS
        .iter()
        .map(|&(name, op, dtype, n, split)| (name, full_reduction(op, dtype, n), split))
        .chain(rows.into_iter().map(|(name, source)| (name, source, true)));
    for (name, source, split) in cases {
        let llvm = tensorc::emit(name, &source, tensorc::Stage::LlvmDialect)
            .unwrap_or_else(|e| panic!("{name}: {}", e.render()));
        let calls = llvm.matches("llvm.call @tensorc_parallel_for(").count();
        if (calls > 0) != split {
            failures.push(format!("{name}: {calls} parallel calls, split expected: {split}"));
        }
        let mut results = Vec::new();
        for threads in [1, 2, 3] {
            tensorc::set_num_threads(threads);
            for f in differential(&format!("{name}.nxir"), &source, &settings) {
                failures.push(format!("{threads} thread(s), {name}: {f}"));
            }
            let program = tensorc::compile_str(name, &source, &CompileOptions::default()).unwrap();
            let f = program.entry(None).unwrap();
            let types: Vec<_> = f.params().iter().map(|(_, t)| t.clone()).collect();
            let (_, inputs) = crate::harness::seeded_inputs(&types, &[5]).remove(0);
            results.push(f.call(&inputs).unwrap().remove(0));
        }
        if results.iter().any(|r| r.bytes() != results[0].bytes()) {
            failures.push(format!("{name}: results differ between thread counts"));
        }
    }
    tensorc::set_num_threads(0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// f16 and bf16 sums accumulate in their own precision, so a reassociated
/// sum of random inputs differs from the interpreter's by rounding far
/// above any useful tolerance. These inputs keep every partial sum the
/// code forms (runs of consecutive elements, and vector lanes taking every
/// 64th, 64 being 1 mod 3) between -1 and 1, so exact in both types:
/// x[i] = 1, -1, 0 for i mod 3 = 0, 1, 2. The sum of 100003 elements is
/// known: 33335 ones minus 33334 minus ones = 1.
#[test]
fn half_precision_full_sums_are_exact_on_exact_inputs() {
    use tensorc::{DType, Scalar, TensorType};
    let _g = SETTING.lock().unwrap_or_else(|e| e.into_inner());
    let n = 100_003;
    for (dtype, dt) in [("f16", DType::F16), ("bf16", DType::BF16)] {
        let source = full_reduction("sum", dtype, n);
        let values: Vec<Scalar> = (0..n)
            .map(|i| Scalar::F([1.0, -1.0, 0.0][i % 3]))
            .collect();
        let x = Tensor::from_scalars(TensorType::new(dt, vec![n]), &values).unwrap();
        let interp = compile_for("s.nxir", &source, Target::Interp);
        let want = interp.entry(None).unwrap().call(&[x.clone()]).unwrap();
        assert_eq!(want[0].get(0), Scalar::F(1.0), "{dtype}: the interpreter");
        let cpu = tensorc::compile_str("s.nxir", &source, &CompileOptions::default()).unwrap();
        let llvm = tensorc::emit("s.nxir", &source, tensorc::Stage::LlvmDialect).unwrap();
        assert!(llvm.contains("llvm.call @tensorc_parallel_for("), "{dtype}: not split");
        for threads in [1, 2, 3] {
            tensorc::set_num_threads(threads);
            let got = cpu.entry(None).unwrap().call(&[x.clone()]).unwrap();
            assert_eq!(got[0].get(0), Scalar::F(1.0), "{dtype}, {threads} thread(s)");
        }
    }
    tensorc::set_num_threads(0);
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    let _g = SETTING.lock().unwrap_or_else(|e| e.into_inner());
    for (name, source) in PROGRAMS {
        let program = tensorc::compile_str(name, source, &CompileOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {}", e.render()));
        for fname in program.functions() {
            let f = program.entry(Some(fname)).unwrap();
            let types: Vec<_> = f.params().iter().map(|(_, t)| t.clone()).collect();
            let (_, inputs) = crate::harness::seeded_inputs(&types, &[5]).remove(0);
            let run = |threads: usize| -> Vec<Tensor> {
                tensorc::set_num_threads(threads);
                f.call(&inputs).unwrap()
            };
            let one = run(1);
            // Two threads three times: a race shows up only now and then.
            for threads in [2, 3, 8, 2, 2] {
                let many = run(threads);
                for (a, b) in one.iter().zip(&many) {
                    assert!(
                        a.bytes() == b.bytes(),
                        "{name}/{fname}: {threads} threads differ from 1"
                    );
                }
            }
        }
    }
    tensorc::set_num_threads(0);
}

/// Which ops run on the pool: the generated code of the large programs
/// calls `tensorc_parallel_for` (at least once: an op whose loop does not
/// divide into equal chunks becomes two foralls), the small matmul's does
/// not (below the work threshold, `parallel_mark::MIN_WORK`). That the
/// reverse is never split is checked by its differential run above (split,
/// it does not compile).
#[test]
fn large_ops_run_on_the_pool_small_ones_do_not() {
    for (name, parallel) in [
        ("matmul_1x1x1", false),
        ("matmul_7x13x5", false),
        ("matmul_257x255x129", true),
        ("packed_matmul_odd", true),
        ("packed_bias_relu_odd", true),
        ("elementwise_chain", true),
        ("softmax_rows", true),
        // Outer-axis reductions of rows narrower than two 1024-element
        // strips split their rows into chunks with partial results
        // (`tensorc-matvec`, `row_chunks`) when they hold a megabyte of
        // f32 or more; smaller ones run whole on one thread.
        ("column_sums", false),
        ("narrow_column_sums", true),
        ("vector_add_1d", true),
        ("conv_nhwc_batch1", true),
        ("batch_matmul", true),
        ("matvec", false),
        ("three_long_rows", true),
        ("batch_of_two", true),
        ("reverse_transpose", true),
    ] {
        let source = PROGRAMS.iter().find(|p| p.0 == name).unwrap().1;
        let llvm = tensorc::emit(name, source, tensorc::Stage::LlvmDialect)
            .unwrap_or_else(|e| panic!("{name}: {}", e.render()));
        let calls = llvm.matches("llvm.call @tensorc_parallel_for(").count();
        assert_eq!(calls > 0, parallel, "{name}: {calls} calls");
    }
}

/// `CompileOptions::threads` sets the process-wide count.
#[test]
fn compile_options_set_the_thread_count() {
    let _g = SETTING.lock().unwrap_or_else(|e| e.into_inner());
    let opts = CompileOptions {
        target: Target::Cpu,
        threads: Some(3),
        ..Default::default()
    };
    tensorc::compile_str("t.nxir", PROGRAMS[0].1, &opts).unwrap();
    assert_eq!(tensorc::num_threads(), 3);
    tensorc::set_num_threads(0);
}

/// A module after bufferization, in the form the pass meets: a 1-D parallel
/// loop capturing two memrefs, a float, an index and constants, one whose
/// bounds are not constants (and whose body holds a nested parallel loop),
/// and a 2-D loop the pass leaves alone.
const PASS_INPUT: &str = r#"module {
  func.func @f(%a: memref<8x4xf32>, %b: memref<8x4xf32>, %s: f32, %n: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      scf.for %j = %c0 to %c4 step %c1 {
        %x = memref.load %a[%i, %j] : memref<8x4xf32>
        %y = arith.mulf %x, %s : f32
        memref.store %y, %b[%i, %j] : memref<8x4xf32>
      }
      scf.reduce
    }
    scf.parallel (%i) = (%c1) to (%n) step (%c2) {
      scf.parallel (%j) = (%c0) to (%c4) step (%c1) {
        %k = arith.minui %i, %n : index
        %x = memref.load %a[%k, %j] : memref<8x4xf32>
        memref.store %x, %b[%i, %j] : memref<8x4xf32>
        scf.reduce
      }
      scf.reduce
    }
    scf.parallel (%i, %j) = (%c0, %c0) to (%c8, %c4) step (%c1, %c1) {
      %x = memref.load %a[%i, %j] : memref<8x4xf32>
      memref.store %x, %b[%i, %j] : memref<8x4xf32>
      scf.reduce
    }
    return
  }
}
"#;

#[test]
fn outline_parallel_pass_before_and_after() {
    use tensorc_mlir::{Mlir, PrintOptions};
    use tensorc_passes::outline_parallel;
    tensorc_mlir::register_external_pass(outline_parallel::NAME, outline_parallel::create);
    let mlir = Mlir::new();
    let (mut m, before, after) = before_and_after(&mlir, PASS_INPUT, outline_parallel::NAME);
    // Two loops outlined (the 2-D one stays), the runtime declared once.
    assert_eq!(
        after.matches("call @tensorc_parallel_for(").count(),
        2,
        "{after}"
    );
    assert_eq!(
        after
            .matches("func.func private @tensorc_parallel_for(")
            .count(),
        1,
        "{after}"
    );
    assert_eq!(after.matches("scf.parallel (%").count(), 4, "{after}");
    insta::assert_snapshot!(
        "outline_parallel",
        format!("// before\n{before}\n// after\n{after}")
    );
    // The rest of the lowering takes it: every cast the pass added cancels.
    mlir.run_pipeline(
        &mut m,
        "expand-strided-metadata,lower-affine,convert-scf-to-cf,finalize-memref-to-llvm,convert-to-llvm,reconcile-unrealized-casts",
        "test",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let llvm = mlir.print(&m, PrintOptions::default());
    assert!(!llvm.contains("unrealized_conversion_cast"), "{llvm}");
    assert!(
        llvm.contains("llvm.mlir.addressof @__tensorc_par_0"),
        "{llvm}"
    );
    assert!(llvm.contains("llvm.call @tensorc_parallel_for("), "{llvm}");
}

/// A loop that reads vectors defined outside it (loop-invariant reads the
/// clean-up hoisted out of a tiled matmul's chunks: a 1×3 and a 4-lane
/// vector): they travel in the context struct in their LLVM form (before,
/// such a loop was left alone and ran on one thread), and the casts cancel
/// in the rest of the lowering.
const VECTOR_CAPTURES: &str = r#"module {
  func.func @f(%a: memref<8x4xf32>, %b: memref<8x3xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    %p = ub.poison : f32
    %r = vector.transfer_read %a[%c0, %c0], %p {in_bounds = [true]} : memref<8x4xf32>, vector<3xf32>
    %w = vector.broadcast %r : vector<3xf32> to vector<1x3xf32>
    %q = vector.transfer_read %a[%c1, %c0], %p {in_bounds = [true]} : memref<8x4xf32>, vector<4xf32>
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %x = vector.transfer_read %b[%i, %c0], %p {in_bounds = [true, true]} : memref<8x3xf32>, vector<1x3xf32>
      %y = arith.addf %x, %w : vector<1x3xf32>
      vector.transfer_write %y, %b[%i, %c0] {in_bounds = [true, true]} : vector<1x3xf32>, memref<8x3xf32>
      vector.transfer_write %q, %a[%i, %c0] {in_bounds = [true]} : vector<4xf32>, memref<8x4xf32>
      scf.reduce
    }
    return
  }
}
"#;

#[test]
fn outline_parallel_passes_vector_captures() {
    use tensorc_mlir::{Mlir, PrintOptions};
    use tensorc_passes::outline_parallel;
    tensorc_mlir::register_external_pass(outline_parallel::NAME, outline_parallel::create);
    let mlir = Mlir::new();
    let (mut m, _, after) = before_and_after(&mlir, VECTOR_CAPTURES, outline_parallel::NAME);
    assert_eq!(after.matches("call @tensorc_parallel_for(").count(), 1, "{after}");
    // The loop moved into the outlined function; the context struct holds
    // the two memrefs and both vectors, the 1×3 one as an array of rows.
    let f = &after[..after.find("func.func private @__tensorc_par_0").unwrap()];
    assert!(!f.contains("scf.parallel"), "{after}");
    assert!(after.contains("array<1 x vector<3xf32>>, vector<4xf32>"), "{after}");
    mlir.run_pipeline(
        &mut m,
        "convert-vector-to-scf{full-unroll target-rank=1},convert-vector-to-llvm,expand-strided-metadata,lower-affine,convert-scf-to-cf,finalize-memref-to-llvm,convert-to-llvm,reconcile-unrealized-casts",
        "test",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let llvm = mlir.print(&m, PrintOptions::default());
    assert!(!llvm.contains("unrealized_conversion_cast"), "{llvm}");
    assert!(llvm.contains("llvm.call @tensorc_parallel_for("), "{llvm}");
}

/// Loops whose iterations allocate and free buffers of their own: the
/// static one freed in the iteration moves out of the loop (allocated once
/// per call of the outlined function, freed after its loop); one of a
/// dynamic size, one over 16 KiB and one not freed in the iteration's
/// block stay.
const SCRATCH: &str = r#"module {
  func.func @f(%a: memref<8x16xf32>, %n: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    %true = arith.constant true
    %p = ub.poison : f32
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      %s = memref.alloc() {alignment = 64 : i64} : memref<16xf32>
      %d = memref.alloc(%n) : memref<?xf32>
      %k = memref.alloc() : memref<4xf32>
      %big = memref.alloc() : memref<8192xf32>
      %x = vector.transfer_read %a[%i, %c0], %p {in_bounds = [true]} : memref<8x16xf32>, vector<16xf32>
      vector.transfer_write %x, %s[%c0] {in_bounds = [true]} : vector<16xf32>, memref<16xf32>
      %y = vector.transfer_read %s[%c0], %p {in_bounds = [true]} : memref<16xf32>, vector<16xf32>
      %z = arith.addf %x, %y : vector<16xf32>
      vector.transfer_write %z, %a[%i, %c0] {in_bounds = [true]} : vector<16xf32>, memref<8x16xf32>
      memref.dealloc %s : memref<16xf32>
      memref.dealloc %d : memref<?xf32>
      memref.dealloc %big : memref<8192xf32>
      scf.if %true {
        memref.dealloc %k : memref<4xf32>
      }
      scf.reduce
    }
    return
  }
}
"#;

#[test]
fn outline_parallel_hoists_per_iteration_scratch() {
    use tensorc_passes::outline_parallel;
    tensorc_mlir::register_external_pass(outline_parallel::NAME, outline_parallel::create);
    let mlir = tensorc_mlir::Mlir::new();
    let (_, _, after) = before_and_after(&mlir, SCRATCH, outline_parallel::NAME);
    let body = &after[after.find("func.func private @__tensorc_par_0").expect("outlined")..];
    let lp = body.find("scf.parallel").expect("the loop");
    let end = body.find("scf.reduce").expect("the loop's end");
    // The static buffer: allocated before the loop, freed after it.
    let alloc = body.find("memref.alloc() {alignment = 64 : i64} : memref<16xf32>").expect("kept");
    assert!(alloc < lp, "{after}");
    let free = body.find("memref.dealloc %alloc : memref<16xf32>").expect("freed");
    assert!(free > end, "{after}");
    // The dynamic one and the one freed in a nested block stay in the loop.
    let dynamic = body.find("memref<?xf32>").expect("kept");
    assert!(dynamic > lp && dynamic < end, "{after}");
    let nested = body.find("memref<4xf32>").expect("kept");
    assert!(nested > lp && nested < end, "{after}");
    let big = body.find("memref<8192xf32>").expect("kept");
    assert!(big > lp && big < end, "{after}");
}

/// Reductions as `tensorc-parallel-mark` meets them (linalg on tensors):
/// full ones whose length the chunk count does not divide (cut into a
/// tagged head and a remainder step) or divides (tagged as it is); ones it
/// does not split into partials: too short, a body that is not a single
/// combiner (an `absf` before the add); row sums: 4 rows of 100001 (split
/// into partials, remainder cut along the last axis), 16 rows (split
/// along the rows instead).
const MARK_INPUT: &str = r#"#id = affine_map<(d0) -> (d0)>
#scalar = affine_map<(d0) -> ()>
#rows = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
module {
  func.func @f(%x: tensor<100003xf32>, %y: tensor<65536xi32>, %z: tensor<100xf32>, %w: tensor<4x100001xf32>, %s: tensor<f32>, %i: tensor<i32>, %v: tensor<4xf32>, %u: tensor<16x5000xf32>, %t: tensor<16xf32>) -> (tensor<f32>, tensor<i32>, tensor<f32>, tensor<f32>, tensor<4xf32>, tensor<16xf32>) {
    %0 = linalg.generic {indexing_maps = [#id, #scalar], iterator_types = ["reduction"]} ins(%x : tensor<100003xf32>) outs(%s : tensor<f32>) {
    ^bb0(%in: f32, %out: f32):
      %r = arith.addf %out, %in : f32
      linalg.yield %r : f32
    } -> tensor<f32>
    %1 = linalg.generic {indexing_maps = [#id, #scalar], iterator_types = ["reduction"]} ins(%y : tensor<65536xi32>) outs(%i : tensor<i32>) {
    ^bb0(%in: i32, %out: i32):
      %r = arith.maxsi %in, %out : i32
      linalg.yield %r : i32
    } -> tensor<i32>
    %2 = linalg.generic {indexing_maps = [#id, #scalar], iterator_types = ["reduction"]} ins(%z : tensor<100xf32>) outs(%s : tensor<f32>) {
    ^bb0(%in: f32, %out: f32):
      %r = arith.addf %out, %in : f32
      linalg.yield %r : f32
    } -> tensor<f32>
    %3 = linalg.generic {indexing_maps = [#id, #scalar], iterator_types = ["reduction"]} ins(%x : tensor<100003xf32>) outs(%s : tensor<f32>) {
    ^bb0(%in: f32, %out: f32):
      %a = math.absf %in : f32
      %r = arith.addf %out, %a : f32
      linalg.yield %r : f32
    } -> tensor<f32>
    %4 = linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]} ins(%w : tensor<4x100001xf32>) outs(%v : tensor<4xf32>) {
    ^bb0(%in: f32, %out: f32):
      %r = arith.addf %out, %in : f32
      linalg.yield %r : f32
    } -> tensor<4xf32>
    %5 = linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]} ins(%u : tensor<16x5000xf32>) outs(%t : tensor<16xf32>) {
    ^bb0(%in: f32, %out: f32):
      %r = arith.minimumf %out, %in : f32
      linalg.yield %r : f32
    } -> tensor<16xf32>
    return %0, %1, %2, %3, %4, %5 : tensor<f32>, tensor<i32>, tensor<f32>, tensor<f32>, tensor<4xf32>, tensor<16xf32>
  }
}
"#;

#[test]
fn parallel_mark_splits_full_reductions() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::parallel_mark;
    tensorc_mlir::register_external_pass(parallel_mark::NAME, parallel_mark::create);
    let mlir = Mlir::new();
    let (m, before, after) = before_and_after(&mlir, MARK_INPUT, parallel_mark::NAME);
    // 100003 elements: 4 partials over the first 100000, the last 3 after.
    assert!(after.contains("tensorc.par_r4"), "{after}");
    assert!(after.contains("[100000] [3] [1]"), "{after}");
    // 65536 = 4 * 16384: tagged as it is.
    assert_eq!(after.matches("tensorc.par_r4").count(), 2, "{after}");
    // 4 rows of 100001: 16 partials per row over the first 100000 columns.
    assert_eq!(after.matches("tensorc.par_r16").count(), 1, "{after}");
    assert!(after.contains("[0, 100000] [4, 1] [1, 1]"), "{after}");
    assert_eq!(after.matches("tensor.extract_slice").count(), 4, "{after}");
    // 16 rows: split along the rows (the parallel loop; 4 chunks of 4).
    assert_eq!(after.matches("tensorc.par_d0_t4}").count(), 1, "{after}");
    insta::assert_snapshot!(
        "parallel_mark_full_reductions",
        format!("// before\n{before}\n// after\n{after}")
    );
    mlir.verify(&m, "test").unwrap_or_else(|e| panic!("{e}\n{after}"));
}

/// A program with a parallel loop: `tensorc run --threads N` prints the same
/// results for every N; `--threads 0` is a usage error.
#[test]
fn cli_threads_option() {
    let dir = std::env::temp_dir().join(format!("tensorc-threads-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("m.nxir");
    std::fs::write(&file, PROGRAMS[2].1).unwrap();
    let run = |threads: &str| {
        std::process::Command::new(crate::cli::tensorc_bin())
            .env("TENSORC_CACHE_DIR", crate::cli::suite_cache_dir())
            .args(["run", "--limit", "0", "--threads", threads])
            .arg(&file)
            .output()
            .unwrap()
    };
    let one = run("1");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let two = run("2");
    assert!(
        two.status.success(),
        "{}",
        String::from_utf8_lossy(&two.stderr)
    );
    assert_eq!(one.stdout, two.stdout);
    assert!(String::from_utf8_lossy(&one.stdout).contains("f32[257][255]"));
    let zero = run("0");
    assert_eq!(zero.status.code(), Some(2));
    let err = String::from_utf8_lossy(&zero.stderr);
    assert!(
        err.contains("invalid value '0' for '--threads <N>'"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

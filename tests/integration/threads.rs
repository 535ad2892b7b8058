//! Multi-threading (issue 6 point 4): the parallel schedule, the Rust pass
//! `tensorc-outline-parallel` and the runtime's thread pool.
//!
//! - the pass on a small hand-written module, before and after (snapshot),
//!   and that its output lowers to the LLVM dialect with no casts left;
//! - interpreter-vs-CPU runs with 1 and 2 threads on matmuls of odd sizes,
//!   an element-wise chain, reductions over either axis, a convolution,
//!   batch matmuls and a reverse (whose loops must not be split);
//! - results bit-identical whatever the thread count (no reduction is ever
//!   split across threads, so every element is computed in the same order);
//! - `tensorc run --threads N`.
//!
//! The thread count is process-wide; the tests that change it hold `SETTING`.
//! (The other tests of this binary run with the default, every core.)

use crate::harness::{EdgeSet, Settings, differential};
use std::sync::Mutex;
use tensorc::{CompileOptions, Target, Tensor};

static SETTING: Mutex<()> = Mutex::new(());

/// Programs whose every parallel form is exercised: the matmul M split (odd
/// sizes, one row, fewer rows than a chunk), row-parallel element-wise and
/// reduction generics, a reduction over the first axis (split along the
/// second), a batch-1 convolution (split along output rows) and matmuls.
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
    let settings = Settings {
        tolerance: 1e-5,
        inputs: EdgeSet::None,
        seeds: vec![11],
    };
    let mut failures = Vec::new();
    for threads in [1, 2] {
        tensorc::set_num_threads(threads);
        assert_eq!(tensorc::num_threads(), threads);
        for (name, source) in PROGRAMS {
            for f in differential(&format!("{name}.nxir"), source, &settings) {
                failures.push(format!("{threads} thread(s), {name}: {f}"));
            }
        }
    }
    tensorc::set_num_threads(0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
            for threads in [2, 3, 8] {
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
        ("elementwise_chain", true),
        ("softmax_rows", true),
        ("column_sums", true),
        ("vector_add_1d", true),
        ("conv_nhwc_batch1", true),
        ("batch_matmul", true),
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
    let mut m = mlir.parse(PASS_INPUT, "test").unwrap();
    let before = mlir.print(&m, PrintOptions::default());
    mlir.run_pipeline(&mut m, outline_parallel::NAME, "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let after = mlir.print(&m, PrintOptions::default());
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

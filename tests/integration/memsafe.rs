//! Memory safety of generated code (issue 7 point 4): representative programs
//! run under valgrind's memcheck, through the ahead-of-time path (a C driver
//! linked against the program's static archive) and the JIT path (`tensorc
//! run`), with zero errors allowed and results compared with the interpreter.
//!
//! Valgrind rather than AddressSanitizer because ASan only checks code it
//! instrumented — the C driver — while memcheck watches every load and store,
//! including those of the generated code. The driver hands the generated code
//! heap buffers of exactly the documented size (C ABI), so a read or write one
//! element past an input or output, or into a zero-sized tensor's buffer, is
//! an "invalid read/write" error. A planted one-element-short output buffer
//! shows that the setup does report such writes.
//!
//! valgrind 3.19 cannot read the DWARF 5 debug info of the Rust binaries, so
//! the JIT run uses a copy of the CLI with its debug info stripped. Valgrind's
//! emulated CPU has no AVX-512, so the JIT (which targets the host CPU)
//! generates AVX2 code under it; the artifacts use their portable baseline.
//! These tests need valgrind (`cargo xtask setup` installs it): without it
//! they fail, never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tensorc::{AotOptions, ArtifactKind, CompileOptions, Target, Tensor, TensorType, compile_artifacts};

use crate::cli::{scratch, show};
use crate::harness::compare;

/// Tolerance against the interpreter: the programs are small, so float
/// reassociation in the generated code moves results by a few ulps at most.
const TOLERANCE: f64 = 1e-5;
/// The input seed of every run (the same inputs `tensorc run --seed` makes).
const SEED: u64 = 3;

/// The representative programs: (name, source). Shapes are chosen so that
/// tiles leave remainders and some tensors have zero elements.
const PROGRAMS: &[(&str, &str)] = &[
    (
        "matmul_remainders",
        "def mm(a: f32[7][13], b: f32[13][5]) -> f32[7][5] {
  c = dot a, [1], [], b, [0], []
  return c
}

def mm_large(a: f32[33][65], b: f32[65][17]) -> f32[33][17] {
  c = dot a, [1], [], b, [0], []
  return c
}

def batched(a: f64[3][5][9], b: f64[3][9][7]) -> f64[3][5][7] {
  c = dot a, [2], [0], b, [1], [0]
  return c
}
",
    ),
    (
        "zero_sized",
        "def zeros(a: f32[0][3], b: f32[3], c: s32[4][0], d: u8[0], e: u8[3]) -> {f32[0][3], s32[4], s32[0][4], u8[3], f32[0][2]} {
  x = add a, b
  s = sum c, axes: [1]
  t = transpose c, [1, 0]
  k = concatenate [d, e], axis: 0
  w = constant 1.0  f32[3][2]
  m = dot a, [1], [], w, [0], []
  return {x, s, t, k, m}
}
",
    ),
    (
        "copies",
        "def copies(x: f32[5][6], y: s32[3], u: f32[2][2]) -> {f32[3][2], s32[7], f64[3][9], f32[5][6], f32[6][5]} {
  s = slice x, [0, 1], [5, 4], [2, 3]
  p = pad y, -1, [{0, 0, 2}]
  z = as_type x  f64[5][6]
  q = pad z, 0.0, [{-1, -1, 0}, {1, 2, 0}]
  r = put_slice x, [3, 4], u
  v = reverse x, [0, 1]
  t = transpose v, [1, 0]
  c = concatenate [s, s], axis: 0
  return {s, p, q, r, t}
}
",
    ),
    (
        "sort",
        "def sorts(x: f32[9], y: f32[3][5], z: s32[7]) -> {f32[9], f32[3][5], s32[7]} {
  a = sort x
  b = sort y, axis: 1, direction: :desc
  c = argsort z
  return {a, b, c}
}
",
    ),
    (
        "conv",
        "def conv_pad_dilate(x: f32[1][2][7][6], k: f32[3][2][3][2]) -> f32[1][3][6][7] {
  y = conv x, k, padding: [{1, 2}, {2, 1}], kernel_dilation: [2, 2], strides: [1, 1]
  return y
}

def conv_input_dilation(x: f32[1][2][3][3], k: f32[1][2][2][2]) -> f32[1][1][4][4] {
  y = conv x, k, input_dilation: [2, 2]
  return y
}
",
    ),
    (
        "gather_scatter",
        "def gather_points(x: f32[4][5], idx: s32[6][2]) -> f32[6] {
  r = gather x, idx
  return r
}

def scatter_rows(t: f32[5][3], idx: s64[4][1], u: f32[4][3]) -> f32[5][3] {
  r = indexed_add t, idx, u
  return r
}
",
    ),
    (
        "while_loop",
        "def doubling(x: f32[3][5]) -> {s32, f32[3][5]} {
  s = while {0, x}, fn(i, a) {
    c = less i, 5
    return c
  }, fn(i, a) {
    j = add i, 1
    b = multiply a, 2.0
    return {j, b}
  }
  return s
}
",
    ),
    (
        "reductions",
        "def reductions(x: f32[17][33], y: s32[5][7][3]) -> {f32[17], f32, s32[7], f32[16][32]} {
  a = reduce_max x, axes: [1]
  b = sum x, axes: nil
  c = sum y, axes: [0, 2]
  w = window_sum x, {2, 2}
  return {a, b, c, w}
}
",
    ),
];

/// Fails (never skips) when valgrind is missing: CI must have it.
fn require_valgrind() {
    let ok = Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "valgrind is required for the memory-safety tests and was not found (`cargo xtask setup` installs it)");
}

/// The one block memcheck may see as possibly lost: the thread-local
/// storage of the runtime pool's workers, which are still alive (asleep,
/// waiting for the next parallel loop) when the program exits.
const LIVE_WORKERS: &str = "{
   tensorc-pool-live-worker-tls
   Memcheck:Leak
   match-leak-kinds: possible
   fun:calloc
   ...
   fun:_dl_allocate_tls
   ...
   fun:tensorc_parallel_for
}
";

/// memcheck's options: any error (invalid access, use of uninitialized
/// values in a branch, a definite or possible leak) makes the exit code 99.
fn memcheck(dir: &Path, program: &Path, args: &[&str], leaks: bool) -> Output {
    let supp = dir.join("live-workers.supp");
    std::fs::write(&supp, LIVE_WORKERS).unwrap();
    let mut cmd = Command::new("valgrind");
    cmd.args(["--error-exitcode=99", "--track-origins=yes", "-q"]);
    cmd.arg(format!("--suppressions={}", supp.display()));
    cmd.arg(if leaks { "--leak-check=full" } else { "--leak-check=no" });
    cmd.arg(program).args(args).current_dir(dir);
    cmd.output().expect("run valgrind")
}

/// One compiled `def` of a program: its name, inputs and the interpreter's results.
struct Case {
    name: String,
    inputs: Vec<Tensor>,
    want: Vec<Tensor>,
}

/// Every `def` of `source` with seeded inputs and the interpreter's results.
fn reference(file: &str, source: &str) -> Vec<Case> {
    let opts = CompileOptions { target: Target::Interp, ..Default::default() };
    let p = tensorc::compile_str(file, source, &opts).unwrap_or_else(|e| panic!("{}", e.render()));
    p.functions()
        .into_iter()
        .map(|name| {
            let f = p.entry(Some(name)).unwrap();
            let inputs: Vec<Tensor> = f
                .params()
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| tensorc_ir::random::random_tensor(ty, SEED, i as u64))
                .collect();
            let want = f.call(&inputs).unwrap_or_else(|e| panic!("{file} {name}: {}", e.render()));
            Case { name: name.to_string(), inputs, want }
        })
        .collect()
}

/// A C program that reads each input of each function from `f<j>_in<i>.bin`
/// into a heap buffer of exactly its size, calls `tensorc_<name>`, and writes
/// each result to `f<j>_out<k>.bin`, then releases the workspace cache. `short_output` plants a bug: the first
/// result buffer of the first function is one element too small.
fn driver(header: &str, cases: &[Case], short_output: bool) -> String {
    let mut c = format!(
        "#include <stdio.h>\n#include <stdlib.h>\n#include \"{header}\"\n
static void *load(const char *path, size_t n) {{
  void *p = malloc(n);
  FILE *f = fopen(path, \"rb\");
  if ((n && !p) || !f || fread(p, 1, n, f) != n) {{ fprintf(stderr, \"cannot read %s\\n\", path); exit(3); }}
  fclose(f);
  return p;
}}

static void save(const char *path, const void *p, size_t n) {{
  FILE *f = fopen(path, \"wb\");
  if (!f || fwrite(p, 1, n, f) != n) {{ fprintf(stderr, \"cannot write %s\\n\", path); exit(4); }}
  fclose(f);
}}

int main(void) {{
"
    );
    for (j, case) in cases.iter().enumerate() {
        let mut args = Vec::new();
        for (i, t) in case.inputs.iter().enumerate() {
            c += &format!("  void *f{j}_in{i} = load(\"f{j}_in{i}.bin\", {});\n", t.bytes().len());
            args.push(format!("f{j}_in{i}"));
        }
        let sizes: Vec<usize> = case
            .want
            .iter()
            .enumerate()
            .map(|(k, w)| {
                let n = w.bytes().len();
                if short_output && j == 0 && k == 0 { n - w.dtype().size_bytes() } else { n }
            })
            .collect();
        for (k, n) in sizes.iter().enumerate() {
            c += &format!("  void *f{j}_out{k} = malloc({n});\n");
            args.push(format!("f{j}_out{k}"));
        }
        c += &format!("  if (tensorc_{}({}) != 0) return 2;\n", case.name, args.join(", "));
        for (k, n) in sizes.iter().enumerate() {
            c += &format!("  save(\"f{j}_out{k}.bin\", f{j}_out{k}, {n});\n");
        }
        for a in &args {
            c += &format!("  free({a});\n");
        }
    }
    // Temporaries come from the runtime's caching workspace (c-abi.md);
    // releasing it makes every block unreachable-free, so a leak is a leak.
    c += "  tensorc_release_workspace();\n  return 0;\n}\n";
    c
}

/// Builds `source`'s static archive and header and a driver linked against
/// them in a fresh directory, with the input files written; returns the
/// directory and the reference cases.
fn build_aot(name: &str, source: &str, short_output: bool) -> (PathBuf, Vec<Case>) {
    let dir = scratch(name);
    let file = format!("{name}.nxir");
    let cases = reference(&file, source);
    let outputs = [
        (ArtifactKind::Static, dir.join(format!("{name}.a"))),
        (ArtifactKind::Header, dir.join(format!("{name}.h"))),
    ];
    compile_artifacts(&file, source, &AotOptions::default(), &outputs)
        .unwrap_or_else(|e| panic!("{name}: {}", e.render()));
    for (j, case) in cases.iter().enumerate() {
        for (i, t) in case.inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("f{j}_in{i}.bin")), t.bytes()).unwrap();
        }
    }
    std::fs::write(dir.join("driver.c"), driver(&format!("{name}.h"), &cases, short_output)).unwrap();
    let cc = Command::new("cc")
        .args(["-O1", "-g", "-Wall", "-Werror", "-I.", "driver.c"])
        .arg(format!("{name}.a"))
        .args(["-lm", "-o", "driver"])
        .current_dir(&dir)
        .output()
        .expect("run cc");
    assert!(cc.status.success(), "{name}: cc failed\n{}", show(&cc));
    (dir, cases)
}

/// Reads result `k` of function `j` as written by the driver.
fn result(dir: &Path, j: usize, k: usize, ty: &TensorType) -> Tensor {
    let bytes = std::fs::read(dir.join(format!("f{j}_out{k}.bin"))).unwrap();
    Tensor::from_bytes(ty.clone(), &bytes).unwrap_or_else(|e| panic!("f{j}_out{k}: {e}"))
}

#[test]
fn aot_code_is_memcheck_clean_and_correct() {
    require_valgrind();
    let mut failures = Vec::new();
    for (name, source) in PROGRAMS {
        let (dir, cases) = build_aot(name, source, false);
        let o = memcheck(&dir, &dir.join("driver"), &[], true);
        if !o.status.success() {
            failures.push(format!("{name}: memcheck failed\n{}", show(&o)));
            continue;
        }
        for (j, case) in cases.iter().enumerate() {
            for (k, w) in case.want.iter().enumerate() {
                if let Err(msg) = compare(&result(&dir, j, k, w.ty()), w, TOLERANCE) {
                    failures.push(format!("{name} {} result {k}: {msg}", case.name));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The control: an output buffer one element short makes the generated code
/// write past a heap block, which memcheck must report (exit 99, "Invalid
/// write"). Without this, a memcheck setup that sees nothing would pass.
#[test]
fn memcheck_reports_a_short_output_buffer() {
    require_valgrind();
    let (name, source) = PROGRAMS[0];
    let (dir, _) = build_aot(name, source, true);
    let o = memcheck(&dir, &dir.join("driver"), &[], true);
    assert_eq!(o.status.code(), Some(99), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Invalid write"), "{}", show(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The JIT path: `tensorc run` of one program that gathers a matmul with
/// remainders, zero-sized tensors, strided copies, a sort and a loop, under
/// memcheck (compiling under valgrind is slow, so one run covers them all).
/// Leaks are not checked here: LLVM keeps process-lifetime allocations.
/// `--no-cache`: the code must come from the in-process JIT, not from a
/// shared library the compile cache built earlier (and nothing is written
/// to the user's cache directory).
#[test]
fn jit_code_is_memcheck_clean_and_correct() {
    require_valgrind();
    let source = "def main(a: f32[7][13], b: f32[13][5], z: f32[0][3], y: s32[3], x: f32[9]) -> {f32[7][5], f32[3], s32[7], f32[9], f32[2][7][5]} {
  c = dot a, [1], [], b, [0], []
  s = sum z, axes: [0]
  p = pad y, -1, [{0, 0, 2}]
  o = sort x, direction: :desc
  r = while {0, c}, fn(i, m) {
    k = less i, 3
    return k
  }, fn(i, m) {
    j = add i, 1
    n = add m, 1.0
    return {j, n}
  }
  l = elem r, 1
  e = stack [c, l], axis: 0
  return {c, s, p, o, e}
}
";
    let dir = scratch("jit");
    std::fs::write(dir.join("prog.nxir"), source).unwrap();
    // valgrind cannot read the CLI's DWARF 5 debug info: run a stripped copy.
    let cli = dir.join("tensorc");
    let strip = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(crate::cli::tensorc_bin())
        .arg(&cli)
        .output()
        .expect("run objcopy");
    assert!(strip.status.success(), "objcopy failed\n{}", show(&strip));
    let seed = SEED.to_string();
    let o = memcheck(&dir, &cli, &run_args(&seed), false);
    // The stripped copy is as large as the CLI: never leave it behind.
    let _ = std::fs::remove_file(&cli);
    assert!(o.status.success(), "memcheck failed\n{}", show(&o));
    compare_cli_results(&dir, source);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tensorc run` of `prog.nxir` on the inputs of `seed`, compiled in process
/// (`--no-cache`), with its results in `out/` for `compare_cli_results`.
fn run_args(seed: &str) -> [&str; 7] {
    ["run", "prog.nxir", "--no-cache", "--seed", seed, "--output-dir", "out"]
}

/// The `.npy` files `tensorc run --seed SEED --output-dir out` wrote in
/// `dir` against the interpreter's results for `main` of `source`.
fn compare_cli_results(dir: &Path, source: &str) {
    let cases = reference("prog.nxir", source);
    for (k, w) in cases[0].want.iter().enumerate() {
        let bytes = std::fs::read(dir.join("out").join(format!("out{k}.npy"))).unwrap();
        let got = tensorc_ir::npy::read_npy(&bytes).unwrap_or_else(|e| panic!("out{k}.npy: {e}"));
        if let Err(msg) = compare(&got, w, TOLERANCE) {
            panic!("result {k}: {msg}");
        }
    }
}

/// Found by `cargo xtask fuzz` (generated program, seed 270; shrunk by hand
/// to `tests/cases/regressions/abort_bf16_compare_u64.nxir`): JIT-compiling a
/// bf16 comparison with a u64 scalar, widened to u16, aborts the process in
/// LLVM's instruction selection on this AVX-512 host ("LLVM ERROR: Cannot
/// select: v16f32 = X86ISD::CMPP"), exit 134. Artifacts for the portable
/// baseline CPU compile it. Fixed by comparing bf16 in f32 (frontend
/// `Emitter::cmpf`); run as a subprocess, so a regression fails only this test.
#[test]
fn jit_compiles_a_bf16_compare_with_a_u64_scalar() {
    runs_like_the_interpreter_in_a_subprocess("regressions/abort_bf16_compare_u64.nxir", "bf16-abort");
}

/// Found by `cargo xtask fuzz` (generated program, seed 61096; shrunk by
/// hand to `tests/cases/regressions/abort_bf16_ceil_9.nxir`): bf16 `ceil`,
/// `floor`, `abs`, `sqrt` and `round` of a 3×3 tensor read from memory
/// became LLVM intrinsics on `<9 x bfloat>`, and LLVM's instruction
/// selection aborted ("Do not know how to soft promote this operator's
/// operand!"). Fixed by computing bf16 math ops in f32
/// (`math-extend-to-supported-types` in the CPU lowering pipeline).
#[test]
fn jit_compiles_bf16_vector_ops_llvm_aborted_on() {
    runs_like_the_interpreter_in_a_subprocess("regressions/abort_bf16_ceil_9.nxir", "bf16-ceil-abort");
}

/// Found by the generated differential test (seed 31159, session 29, on a
/// Zen 5; shrunk by hand to `tests/cases/regressions/abort_bf16_select_9.nxir`):
/// a `select` between bf16 tensors of 3×3 became a `select` of `<9 x
/// bfloat>`, on which LLVM's instruction selection aborted ("Do not know how
/// to soft promote this operator's operand!"). Fixed by selecting the i16
/// bit patterns (`tensorc-bf16-selects`).
#[test]
fn jit_compiles_a_bf16_select_llvm_aborted_on() {
    runs_like_the_interpreter_in_a_subprocess("regressions/abort_bf16_select_9.nxir", "bf16-select-abort");
}

/// Runs the case `rel` with `tensorc run` in a subprocess (an LLVM abort
/// fails this test alone) and compares its results with the interpreter's.
fn runs_like_the_interpreter_in_a_subprocess(rel: &str, scratch_name: &str) {
    let source = crate::harness::read_case(rel);
    let dir = scratch(scratch_name);
    std::fs::write(dir.join("prog.nxir"), &source).unwrap();
    let seed = SEED.to_string();
    let o = Command::new(crate::cli::tensorc_bin())
        .args(run_args(&seed))
        .current_dir(&dir)
        .output()
        .expect("run tensorc");
    assert!(o.status.success(), "{rel}\n{}", show(&o));
    compare_cli_results(&dir, &source);
    let _ = std::fs::remove_dir_all(&dir);
}

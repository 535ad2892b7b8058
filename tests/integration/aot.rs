//! Ahead-of-time artifacts (issue 4, docs/aot.md, docs/c-abi.md): shared
//! libraries, static archives, objects and headers built through the facade
//! (the path `tensorc compile` takes), compiled into C programs with the
//! system C compiler and run. Expected values are hand-computed or computed
//! by the C program itself (`examples/c/mlp_main.c`), never taken from the
//! artifact under test. Also checks what the artifacts depend on (libc and
//! libm only, no LLVM/MLIR) and every error `compile` adds.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::scratch;
use tensorc::{AotOptions, ArtifactKind, SourceFile, Tensor, compile_artifacts};

/// The workspace root (examples and the shared bench workloads live there).
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Builds `kinds` for `source` into `dir/base.<ext>`; returns the paths by kind.
fn build(
    dir: &Path,
    base: &str,
    source: &str,
    kinds: &[ArtifactKind],
    opts: &AotOptions,
) -> Result<Vec<PathBuf>, tensorc::Error> {
    let outputs: Vec<(ArtifactKind, PathBuf)> = kinds
        .iter()
        .map(|&k| (k, dir.join(format!("{base}.{}", k.extension()))))
        .collect();
    compile_artifacts(&format!("{base}.nxir"), source, opts, &outputs)?;
    Ok(outputs.into_iter().map(|(_, p)| p).collect())
}

/// Runs a command in `dir`, panicking with its output on failure; returns stdout.
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `driver` to `dir/driver.c`, builds it with warnings as errors
/// against `link` (archives and flags), runs it and returns its stdout.
fn run_driver(dir: &Path, driver: &str, link: &[&str]) -> String {
    std::fs::write(dir.join("driver.c"), driver).unwrap();
    let mut args = vec!["-O2", "-Wall", "-Werror", "-I.", "driver.c"];
    args.extend_from_slice(link);
    args.extend_from_slice(&["-o", "driver"]);
    run(dir, "cc", &args);
    run(dir, "./driver", &[])
}

/// The interpreter's result of the first function of `source` (two
/// parameters) on the inputs of `seed`, which are written to `dir/a.bin` and
/// `dir/b.bin` for a C driver to load.
fn reference_with_input_files(dir: &Path, file: &str, source: &str, seed: u64) -> Tensor {
    let module = tensorc_ir::check::compile(&SourceFile::new(file, source)).unwrap();
    let types: Vec<_> = module.functions[0]
        .params
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    let (_, inputs) = crate::harness::seeded_inputs(&types, &[seed]).remove(0);
    std::fs::write(dir.join("a.bin"), inputs[0].bytes()).unwrap();
    std::fs::write(dir.join("b.bin"), inputs[1].bytes()).unwrap();
    tensorc_interp::run(&module, &module.functions[0].name, &inputs)
        .unwrap()
        .remove(0)
}

/// The raw result a C driver wrote to `dir/name` agrees with `want`.
fn assert_output_file_matches(dir: &Path, name: &str, want: &Tensor, what: &str) {
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let got = Tensor::from_bytes(want.ty().clone(), &bytes).unwrap();
    crate::harness::compare(&got, want, 1e-4)
        .unwrap_or_else(|e| panic!("{what} differs from the interpreter: {e}"));
}

/// The start of a C driver linked with `-Wl,--wrap=malloc`: every `malloc`
/// of 64 KiB or more adds one to `large`.
const COUNT_LARGE_MALLOCS: &str = "#include <stdio.h>
#include <stdlib.h>
void *__real_malloc(size_t n);
static int large;
void *__wrap_malloc(size_t n) {
  if (n >= 65536) large++;
  return __real_malloc(n);
}
";

/// Building only a header for an identity `def` named `def` (a name an
/// artifact's exports reserve) fails with an error containing `says`.
fn assert_reserved_def(scratch_name: &str, def: &str, says: &str) {
    let dir = scratch(scratch_name);
    let source = format!("def {def}(x: f32[2]) -> f32[2] {{\n  return x\n}}\n");
    let err = build(
        &dir,
        "r",
        &source,
        &[ArtifactKind::Header],
        &AotOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(says), "{err}");
}

/// `examples/c/mlp_main.c` against the `.so` and, separately, the `.a` of
/// `examples/mlp.nxir`: the C program computes the same MLP in double
/// precision and exits non-zero on any mismatch.
#[test]
fn c_example_runs_against_shared_and_static_mlp() {
    let dir = scratch("mlp");
    let source = std::fs::read_to_string(repo().join("examples/mlp.nxir")).unwrap();
    let kinds = [
        ArtifactKind::Shared,
        ArtifactKind::Static,
        ArtifactKind::Header,
    ];
    build(&dir, "mlp", &source, &kinds, &AotOptions::default()).expect("build mlp artifacts");
    let main_c = repo().join("examples/c/mlp_main.c");
    let main_c = main_c.to_str().unwrap();
    run(
        &dir,
        "cc",
        &[
            "-O2", "-Wall", "-Werror", "-I.", main_c, "./mlp.so", "-lm", "-o", "with_so",
        ],
    );
    let out = run(&dir, "./with_so", &[]);
    assert!(out.ends_with("ok\n"), "{out}");
    run(
        &dir,
        "cc",
        &["-O2", "-I.", main_c, "mlp.a", "-lm", "-o", "with_a"],
    );
    let out = run(&dir, "./with_a", &[]);
    assert!(out.ends_with("ok\n"), "{out}");
    // The header is valid C++ too (extern "C").
    run(&dir, "c++", &["-fsyntax-only", "-x", "c++", "mlp.h"]);
}

/// The shared library needs nothing beyond libc/libm: no LLVM, MLIR or tensorc.
#[test]
fn shared_library_depends_only_on_libc_and_libm() {
    let dir = scratch("deps");
    let source = std::fs::read_to_string(repo().join("examples/mlp.nxir")).unwrap();
    build(
        &dir,
        "mlp",
        &source,
        &[ArtifactKind::Shared],
        &AotOptions::default(),
    )
    .unwrap();
    let undefined = run(&dir, "nm", &["-D", "--undefined-only", "mlp.so"]);
    // Names the generated code and the runtime may use, all in libc/libm
    // (plus the weak symbols every glibc shared object references).
    let allowed = [
        "malloc",
        "free",
        "memcpy",
        "memmove",
        "memset",
        "expf",
        "exp",
        "logf",
        "log",
        "tanhf",
        "tanh",
        "powf",
        "pow",
        "sqrtf",
        "sqrt",
        "__cxa_finalize",
        "__gmon_start__",
        // The thread pool (runtime/tensorc_pool.c): pthreads (in libc since
        // glibc 2.34), the thread-count default and thread-local storage.
        "pthread_create",
        "pthread_attr_init",
        "pthread_attr_setdetachstate",
        "pthread_attr_destroy",
        "pthread_mutex_lock",
        "pthread_mutex_unlock",
        "pthread_cond_wait",
        "pthread_cond_broadcast",
        "sched_yield",
        "getenv",
        "strtol",
        "sysconf",
        "__tls_get_addr",
        "_ITM_deregisterTMCloneTable",
        "_ITM_registerTMCloneTable",
    ];
    for line in undefined.lines() {
        let name = line.split_whitespace().last().unwrap_or("");
        let name = name.split('@').next().unwrap();
        assert!(
            allowed.contains(&name),
            "unexpected undefined symbol {name} in:\n{undefined}"
        );
    }
    let ldd = run(&dir, "ldd", &["./mlp.so"]);
    for line in ldd.lines() {
        let lib = line.split_whitespace().next().unwrap_or("");
        assert!(
            lib.starts_with("linux-vdso")
                || lib.starts_with("libc.so")
                || lib.starts_with("libm.so")
                || lib.contains("ld-linux"),
            "unexpected dependency {lib}:\n{ldd}"
        );
    }
    // Only the C entry points are exported: no `main`, no `_mlir_ciface_*`,
    // nothing of the runtime but `tensorc_release_workspace` and the thread count.
    let defined = run(&dir, "nm", &["-D", "--defined-only", "mlp.so"]);
    let names: Vec<&str> = defined
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(
        names,
        vec![
            "tensorc_get_num_threads",
            "tensorc_main",
            "tensorc_release_workspace",
            "tensorc_set_num_threads"
        ],
        "{defined}"
    );
}

/// Two functions, several dtypes, a rank-0 input, a tuple result and a
/// `put_slice` (a strided copy, through the artifact's `memrefCopy`), linked
/// from the static archive and from the object file. Values by hand:
/// put_slice [10,20,30,40] at [1] with [7,8] = [10,7,8,40];
/// u8 [1,2,200] + itself = [2,4,144] (400 wraps mod 256); 1.5 * 1.5 = 2.25.
#[test]
fn several_functions_dtypes_and_a_scalar_from_c() {
    let dir = scratch("two");
    let source = "def put(x: s32[4], u: s32[2]) -> s32[4] {
  r = put_slice x, [1], u
  return r
}

def pair(a: u8[3], b: f64) -> {u8[3], f64} {
  c = add a, a
  d = multiply b, b
  return {c, d}
}
";
    let kinds = [
        ArtifactKind::Object,
        ArtifactKind::Static,
        ArtifactKind::Header,
    ];
    build(&dir, "two", source, &kinds, &AotOptions::default()).unwrap();
    let header = std::fs::read_to_string(dir.join("two.h")).unwrap();
    assert!(header.contains("#ifndef TENSORC_TWO_H"), "{header}");
    assert!(header.contains("extern \"C\""), "{header}");
    assert!(
        header.contains("int tensorc_put(const int32_t *x, const int32_t *u, int32_t *out0);"),
        "{header}"
    );
    assert!(
        header.contains(
            "int tensorc_pair(const uint8_t *a, const double *b, uint8_t *out0, double *out1);"
        ),
        "{header}"
    );
    assert!(
        header.contains(" *   u: input s32[2] (2 elements, row-major)"),
        "{header}"
    );
    let driver = r#"#include <stdio.h>
#include "two.h"
int main(void) {
  int32_t x[4] = {10, 20, 30, 40}, u[2] = {7, 8}, r[4] = {0};
  uint8_t a[3] = {1, 2, 200}, c[3] = {0};
  double b = 1.5, d = 0;
  if (tensorc_put(x, u, r) != 0 || tensorc_pair(a, &b, c, &d) != 0) return 2;
  printf("%d %d %d %d | %d %d %d | %.4f\n", r[0], r[1], r[2], r[3], c[0], c[1], c[2], d);
  return 0;
}
"#;
    std::fs::write(dir.join("driver.c"), driver).unwrap();
    let expected = "10 7 8 40 | 2 4 144 | 2.2500\n";
    run(
        &dir,
        "cc",
        &["-I.", "driver.c", "two.a", "-lm", "-o", "with_a"],
    );
    assert_eq!(run(&dir, "./with_a", &[]), expected);
    run(
        &dir,
        "cc",
        &["-I.", "driver.c", "two.o", "-lm", "-o", "with_o"],
    );
    assert_eq!(run(&dir, "./with_o", &[]), expected);
}

/// `--cpu` names: the portable levels and `native` all give working code.
#[test]
fn cpu_levels_build() {
    let dir = scratch("cpus");
    let source = "def f(x: f32[8]) -> f32[8] {\n  y = add x, x\n  return y\n}\n";
    for cpu in ["native", "x86-64-v2", "x86-64-v3"] {
        if cpu.starts_with("x86") && !cfg!(target_arch = "x86_64") {
            continue;
        }
        let opts = AotOptions {
            triple: None,
            cpu: Some(cpu.into()),
        };
        let paths = build(&dir, cpu, source, &[ArtifactKind::Object], &opts)
            .unwrap_or_else(|e| panic!("{cpu}: {}", e.render()));
        let bytes = std::fs::read(&paths[0]).unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF", "{cpu}");
    }
}

/// Cross-compilation: an AArch64 relocatable ELF object (e_machine 183).
#[test]
fn aarch64_object() {
    let dir = scratch("arm");
    let source = std::fs::read_to_string(repo().join("examples/mlp.nxir")).unwrap();
    let opts = AotOptions {
        triple: Some("aarch64-unknown-linux-gnu".into()),
        cpu: None,
    };
    let paths = build(&dir, "mlp", &source, &[ArtifactKind::Object], &opts)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let elf = std::fs::read(&paths[0]).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit");
    assert_eq!(u16::from_le_bytes([elf[16], elf[17]]), 1, "ET_REL");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183, "EM_AARCH64");
}

fn build_error(kinds: &[ArtifactKind], triple: Option<&str>, cpu: Option<&str>) -> String {
    let dir = scratch("err");
    let source = "def f(x: f32[2]) -> f32[2] {\n  return x\n}\n";
    let opts = AotOptions {
        triple: triple.map(Into::into),
        cpu: cpu.map(Into::into),
    };
    match build(&dir, "f", source, kinds, &opts) {
        Ok(_) => panic!("expected an error for {kinds:?} {triple:?} {cpu:?}"),
        Err(e) => e.render(),
    }
}

#[test]
fn unknown_triple_is_an_error() {
    let msg = build_error(&[ArtifactKind::Object], Some("foo-bar-baz"), None);
    assert!(
        msg.starts_with("error: unsupported target triple 'foo-bar-baz'"),
        "{msg}"
    );
}

#[test]
fn cross_libraries_are_an_error() {
    let msg = build_error(
        &[ArtifactKind::Shared],
        Some("aarch64-unknown-linux-gnu"),
        None,
    );
    assert!(msg.contains("only `--emit obj` is supported"), "{msg}");
    assert!(msg.contains("`--emit shared`"), "{msg}");
}

#[test]
fn native_cpu_for_another_target_is_an_error() {
    let msg = build_error(
        &[ArtifactKind::Object],
        Some("aarch64-unknown-linux-gnu"),
        Some("native"),
    );
    assert!(msg.contains("--cpu native describes this machine"), "{msg}");
}

/// An unknown `--cpu` is refused (LLVM alone would only warn and use a
/// generic CPU): through the library, and as a usage error (exit 2) of
/// `tensorc compile` that lists the valid forms, checked per target.
#[test]
fn unknown_cpu_is_an_error() {
    let msg = build_error(&[ArtifactKind::Object], None, Some("pentium9"));
    assert!(msg.starts_with("error: unknown CPU 'pentium9' for "), "{msg}");
    assert!(msg.contains(": --cpu takes native, "), "{msg}");

    let dir = scratch("cpu");
    std::fs::write(dir.join("f.nxir"), "def f(x: f32[2]) -> f32[2] {\n  return x\n}\n").unwrap();
    let compile = |args: &[&str]| {
        Command::new(crate::cli::tensorc_bin())
            .args(["compile", "f.nxir", "--emit", "obj", "-o", "f.o"])
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run tensorc")
    };
    let out = compile(&["--cpu", "pentium9", "--target-triple", "x86_64-unknown-linux-gnu"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: unknown CPU 'pentium9' for x86_64: --cpu takes native, x86-64-v2, \
             x86-64-v3, x86-64-v4, or one of LLVM's x86_64 CPU names: alderlake, "
        ),
        "{stderr}"
    );
    assert!(stderr.contains(", skylake, "), "{stderr}");
    assert!(!dir.join("f.o").exists(), "nothing is written");
    // The names are the target's: an x86 CPU is unknown to AArch64.
    let out = compile(&["--cpu", "skylake", "--target-triple", "aarch64-unknown-linux-gnu"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: unknown CPU 'skylake' for aarch64: --cpu takes native, generic, or one of LLVM's aarch64 CPU names: a64fx, "),
        "{stderr}"
    );
    let out = compile(&["--cpu", "neoverse-n1", "--target-triple", "aarch64-unknown-linux-gnu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `tensorc emit --cpu` shows the code for that CPU (AVX-512 registers for
/// x86-64-v4, none for x86-64-v3, whatever the host); an unknown CPU is a
/// usage error as for `compile`, and so is `--cpu` with the Vulkan stages.
#[test]
fn emit_takes_a_cpu() {
    let dir = scratch("emit-cpu");
    std::fs::write(dir.join("f.nxir"), "def f(x: f32[64][64]) -> f32[64][64] {\n  y = exp x\n  return y\n}\n").unwrap();
    let emit = |args: &[&str]| {
        Command::new(crate::cli::tensorc_bin())
            .args(["emit", "f.nxir"])
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run tensorc")
    };
    let asm = |cpu: &str| {
        let out = emit(&["--stage", "asm", "--cpu", cpu]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(asm("x86-64-v4").contains("zmm"));
    assert!(!asm("x86-64-v3").contains("zmm") && asm("x86-64-v3").contains("ymm"));
    let out = emit(&["--stage", "opt", "--cpu", "pentium9"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: unknown CPU 'pentium9' for x86_64: --cpu takes native, "), "{stderr}");
    for args in [["--target", "vulkan", "--stage", "linalg"], ["--target", "cpu", "--stage", "spirv"]] {
        let out = emit(&[&args[..], &["--cpu", "x86-64-v3"]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(
            stderr,
            "error: --cpu is for the CPU target; the Vulkan kernels (`--target vulkan`, `--stage spirv`) do not depend on it\n"
        );
    }
}

#[test]
fn unwritable_output_is_an_error() {
    let source = "def f(x: f32[2]) -> f32[2] {\n  return x\n}\n";
    let out = PathBuf::from("/nonexistent-dir/f.h");
    let err = compile_artifacts(
        "f.nxir",
        source,
        &AotOptions::default(),
        &[(ArtifactKind::Header, out)],
    )
    .unwrap_err();
    assert!(
        err.render().starts_with("error: /nonexistent-dir/f.h: "),
        "{}",
        err.render()
    );
}

#[test]
fn program_errors_are_diagnostics() {
    let err = compile_artifacts(
        "bad.nxir",
        "def f(x: f32[2]) -> f32[2] {\n  return y\n}\n",
        &AotOptions::default(),
        &[(ArtifactKind::Header, scratch("bad").join("bad.h"))],
    )
    .unwrap_err();
    assert!(err.render().starts_with("bad.nxir:2:"), "{}", err.render());
}

/// The workspace (c-abi.md, "Memory the call allocates"): a matmul whose
/// 256x256 f32 result (256 KiB) is only a temporary, reduced into the
/// output. A C driver links the static archive with `-Wl,--wrap=malloc`, so
/// every `malloc` the artifact makes goes through a counter the driver owns
/// (not the runtime's own bookkeeping), and records the large (>= 64 KiB)
/// mallocs of each call: the first call may allocate the temporary, the next
/// ones must not; after `tensorc_release_workspace()` it is allocated again.
/// Every call's result is compared with the interpreter.
#[test]
fn steady_state_calls_do_not_malloc_large_temporaries() {
    let dir = scratch("workspace");
    let source = "def main(a: f32[256][256], b: f32[256][256]) -> f32[256] {
  c = dot a, [1], [], b, [0], []
  s = sum c, axes: [1]
  return s
}
";
    let kinds = [ArtifactKind::Static, ArtifactKind::Header];
    build(&dir, "ws", source, &kinds, &AotOptions::default()).unwrap();
    let want = reference_with_input_files(&dir, "ws.nxir", source, 7);
    let driver = [
        COUNT_LARGE_MALLOCS,
        r#"#include "ws.h"
static float a[256 * 256], b[256 * 256], s[256];
static void load(const char *path, float *p) {
  FILE *f = fopen(path, "rb");
  if (!f || fread(p, sizeof(float), 256 * 256, f) != 256 * 256) exit(3);
  fclose(f);
}
static void call(int i) {
  char name[32];
  FILE *f;
  large = 0;
  if (tensorc_main(a, b, s) != 0) exit(2);
  printf(" %d", large);
  snprintf(name, sizeof name, "out%d.bin", i);
  f = fopen(name, "wb");
  if (!f || fwrite(s, sizeof(float), 256, f) != 256) exit(4);
  fclose(f);
}
int main(void) {
  int i;
  load("a.bin", a);
  load("b.bin", b);
  printf("large mallocs per call:");
  for (i = 0; i < 4; i++) call(i);
  tensorc_release_workspace();
  printf(" | released:");
  call(4);
  printf("\n");
  return 0;
}
"#,
    ]
    .concat();
    let out = run_driver(&dir, &driver, &["ws.a", "-Wl,--wrap=malloc", "-lm"]);
    assert_eq!(
        out, "large mallocs per call: 1 0 0 0 | released: 1\n",
        "the temporary must be allocated once, then reused"
    );
    for i in 0..5 {
        assert_output_file_matches(&dir, &format!("out{i}.bin"), &want, &format!("call {i}"));
    }
}

/// A `def release_workspace` would collide with the runtime's exported
/// `tensorc_release_workspace`.
#[test]
fn a_def_named_release_workspace_is_an_error() {
    assert_reserved_def(
        "reserved",
        "release_workspace",
        "`def release_workspace` cannot be compiled to an artifact: its entry point would be \
         `tensorc_release_workspace`, the runtime function every artifact exports \
         (docs/c-abi.md); rename the def",
    );
}

/// Two artifacts' static archives linked into one program: no duplicate
/// symbol (`tensorc_release_workspace` is weak), and one shared workspace
/// (c-abi.md, "Several artifacts"): `g`'s temporary has the size of `f`'s, so
/// after `f` has run once, `g`'s first call already reuses `f`'s buffer.
/// Results are compared with values the driver computes itself.
#[test]
fn statically_linked_artifacts_share_one_workspace() {
    let dir = scratch("shared-ws");
    // Row sums and row maxima of x·x: each a 256x256 f32 (256 KiB) temporary.
    let f = "def f(x: f32[256][256]) -> f32[256] {\n  c = dot x, [1], [], x, [0], []\n  s = sum c, axes: [1]\n  return s\n}\n";
    let g = "def g(x: f32[256][256]) -> f32[256] {\n  c = dot x, [1], [], x, [0], []\n  m = reduce_max c, axes: [1]\n  return m\n}\n";
    let kinds = [ArtifactKind::Static, ArtifactKind::Header];
    build(&dir, "fa", f, &kinds, &AotOptions::default()).unwrap();
    build(&dir, "ga", g, &kinds, &AotOptions::default()).unwrap();
    let driver = [
        COUNT_LARGE_MALLOCS,
        r#"#include "fa.h"
#include "ga.h"
enum { N = 256 };
static float x[N * N], s[N];
static double c[N * N];
int main(void) {
  int i, j, k, bad = 0;
  /* Small integers: every sum below is exact in f32, in any order. */
  for (i = 0; i < N * N; i++) x[i] = (float)(i % 7);
  for (i = 0; i < N; i++)
    for (j = 0; j < N; j++)
      for (c[i * N + j] = 0, k = 0; k < N; k++) c[i * N + j] += (double)x[i * N + k] * x[k * N + j];
  large = 0;
  if (tensorc_f(x, s) != 0) return 2;
  printf("f: %d", large);
  for (i = 0; i < N; i++) {
    double want = 0;
    for (j = 0; j < N; j++) want += c[i * N + j];
    bad += s[i] != want;
  }
  large = 0;
  if (tensorc_g(x, s) != 0) return 2;
  printf(", g: %d", large);
  for (i = 0; i < N; i++) {
    double want = c[i * N];
    for (j = 1; j < N; j++) want = c[i * N + j] > want ? c[i * N + j] : want;
    bad += s[i] != want;
  }
  tensorc_release_workspace();
  large = 0;
  if (tensorc_g(x, s) != 0) return 2;
  printf(", g after release: %d, wrong: %d\n", large, bad);
  return 0;
}
"#,
    ]
    .concat();
    assert_eq!(
        run_driver(&dir, &driver, &["fa.a", "ga.a", "-Wl,--wrap=malloc", "-lm"]),
        "f: 1, g: 0, g after release: 1, wrong: 0\n"
    );
}

/// Threads in an artifact (c-abi.md, "Threads"): a C driver calls a matmul
/// of odd sizes and an element-wise chain with `tensorc_set_num_threads(1)`,
/// then 3, then the default, linked from the static archive. Each element is
/// computed by one thread in the same order whatever the count, so the
/// results must be bit-identical; the first is compared with the interpreter.
#[test]
fn thread_count_is_settable_and_results_do_not_depend_on_it() {
    let dir = scratch("threads");
    let source = "def main(a: f32[257][129], b: f32[129][255]) -> f32[257][255] {
  c = dot a, [1], [], b, [0], []
  d = tanh c
  e = multiply d, c
  return e
}
";
    let kinds = [ArtifactKind::Static, ArtifactKind::Header];
    build(&dir, "th", source, &kinds, &AotOptions::default()).unwrap();
    let header = std::fs::read_to_string(dir.join("th.h")).unwrap();
    assert!(header.contains("void tensorc_set_num_threads(int n);"), "{header}");
    assert!(header.contains("int tensorc_get_num_threads(void);"), "{header}");
    let want = reference_with_input_files(&dir, "th.nxir", source, 3);
    let driver = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "th.h"
#define NA (257 * 129)
#define NB (129 * 255)
#define NC (257 * 255)
static float a[NA], b[NB], c1[NC], c3[NC], cd[NC];
static void load(const char *path, float *p, int n) {
  FILE *f = fopen(path, "rb");
  if (!f || fread(p, sizeof(float), n, f) != (size_t)n) exit(3);
  fclose(f);
}
int main(void) {
  FILE *f;
  load("a.bin", a, NA);
  load("b.bin", b, NB);
  tensorc_set_num_threads(1);
  if (tensorc_get_num_threads() != 1 || tensorc_main(a, b, c1) != 0) return 2;
  tensorc_set_num_threads(3);
  if (tensorc_get_num_threads() != 3 || tensorc_main(a, b, c3) != 0) return 2;
  tensorc_set_num_threads(0);
  if (tensorc_get_num_threads() < 1 || tensorc_main(a, b, cd) != 0) return 2;
  f = fopen("c.bin", "wb");
  if (!f || fwrite(c1, sizeof(float), NC, f) != NC) return 4;
  fclose(f);
  printf("3 threads %s, default %s\n", memcmp(c1, c3, sizeof c1) ? "differ" : "same",
         memcmp(c1, cd, sizeof c1) ? "differ" : "same");
  return 0;
}
"#;
    assert_eq!(
        run_driver(&dir, driver, &["th.a", "-lm", "-lpthread"]),
        "3 threads same, default same\n"
    );
    assert_output_file_matches(&dir, "c.bin", &want, "c.bin");
}

/// A `def set_num_threads` would collide with the exported thread-count function.
#[test]
fn a_def_named_set_num_threads_is_an_error() {
    assert_reserved_def(
        "reserved-threads",
        "set_num_threads",
        "`def set_num_threads` cannot be compiled to an artifact: its entry point would be \
         `tensorc_set_num_threads`, the thread-count function every artifact exports \
         (docs/c-abi.md); rename the def",
    );
}

/// A result of 8 MiB (`tensorc-stream-stores`'s threshold) is written with
/// non-temporal stores when its buffer is 64-byte aligned and with
/// ordinary ones when it is not: a C driver calls a softmax into an
/// aligned buffer and into one 4 bytes past an aligned address, on one and
/// two threads; the four results are the same bytes and agree with the
/// interpreter.
#[test]
fn streamed_results_are_right_in_aligned_and_unaligned_buffers() {
    let dir = scratch("stream");
    let source = "def main(a: f32[2048][1024], b: f32[1024]) -> f32[2048][1024] {
  x = add a, b
  m = reduce_max x, axes: [1], keep_axes: true
  d = subtract x, m
  e = exp d
  s = sum e, axes: [1], keep_axes: true
  y = divide e, s
  return y
}
";
    let kinds = [ArtifactKind::Static, ArtifactKind::Header];
    build(&dir, "st", source, &kinds, &AotOptions::default()).unwrap();
    let want = reference_with_input_files(&dir, "st.nxir", source, 5);
    let driver = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "st.h"
#define NA (2048 * 1024)
#define NB 1024
static void load(const char *path, float *p, int n) {
  FILE *f = fopen(path, "rb");
  if (!f || fread(p, sizeof(float), n, f) != (size_t)n) exit(3);
  fclose(f);
}
int main(void) {
  float *a = malloc(sizeof(float) * NA), *b = malloc(sizeof(float) * NB);
  char *raw = aligned_alloc(64, sizeof(float) * (NA + 16));
  float *aligned = aligned_alloc(64, sizeof(float) * NA), *off = (float *)(raw + 4);
  float *first = malloc(sizeof(float) * NA);
  int same = 1, t;
  FILE *f;
  if (!a || !b || !raw || !aligned || !first) return 5;
  load("a.bin", a, NA);
  load("b.bin", b, NB);
  for (t = 1; t <= 2; t++) {
    tensorc_set_num_threads(t);
    memset(aligned, 0, sizeof(float) * NA);
    memset(off, 0, sizeof(float) * NA);
    if (tensorc_main(a, b, aligned) != 0 || tensorc_main(a, b, off) != 0) return 2;
    if (t == 1) memcpy(first, aligned, sizeof(float) * NA);
    same &= !memcmp(first, aligned, sizeof(float) * NA) && !memcmp(first, off, sizeof(float) * NA);
  }
  f = fopen("y.bin", "wb");
  if (!f || fwrite(first, sizeof(float), NA, f) != NA) return 4;
  fclose(f);
  printf("%s\n", same ? "same" : "differ");
  return 0;
}
"#;
    assert_eq!(run_driver(&dir, driver, &["st.a", "-lm", "-lpthread"]), "same\n");
    assert_output_file_matches(&dir, "y.bin", &want, "y.bin");
}

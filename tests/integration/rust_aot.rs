//! `tensorc-build` end to end (issue 4 point 5, docs/aot.md "Shipping a
//! model from Rust"): `examples/rust-aot` is built with Cargo, offline,
//! against the `tensorc` binary of this checkout, then run; it checks the
//! models' results against plain-Rust computations itself and exits non-zero
//! on a mismatch. The example's binary must not depend on LLVM or MLIR. Also
//! a model error failing `tensorc-build` with tensorc's located diagnostic.

use std::path::PathBuf;
use std::process::Command;

use crate::aot::repo;

/// A directory under this test binary's target directory (`target/<dir>`):
/// kept between runs, so the example's dependencies are compiled once.
fn target_subdir(dir: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // .../target/<profile>/deps/integration-<hash>
    exe.ancestors()
        .nth(3)
        .expect("target dir")
        .join(dir)
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn rust_aot_example_builds_runs_and_needs_no_llvm() {
    let tensorc = crate::cli::tensorc_bin();
    let target = target_subdir("rust-aot");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let manifest = repo().join("examples/rust-aot/Cargo.toml");
    let out = Command::new(cargo)
        .args(["build", "--offline", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .env("TENSORC", tensorc)
        // The generated Rust must compile without a warning.
        .env("RUSTFLAGS", "-D warnings")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo build for examples/rust-aot");
    assert!(
        out.status.success(),
        "building examples/rust-aot failed:\n{}",
        output_text(&out)
    );

    let exe = target.join("debug").join("rust-aot");
    let run = Command::new(&exe).output().expect("run the example");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "the example failed:\n{}", output_text(&run));
    assert!(stdout.starts_with("row 0: probs "), "{stdout}");
    assert!(
        stdout.contains("refused: `out0` has 11 elements, the model needs exactly 12"),
        "{stdout}"
    );
    assert!(stdout.ends_with("ok\n"), "{stdout}");

    // What the binary loads: the C and Rust runtimes only.
    let ldd = Command::new("ldd").arg(&exe).output().expect("run ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    for line in ldd.lines() {
        let lib = line.split_whitespace().next().unwrap_or("");
        assert!(
            ["linux-vdso", "libc.so", "libm.so", "libgcc_s.so", "ld-linux", "/lib64/ld-linux"]
                .iter()
                .any(|ok| lib.starts_with(ok)),
            "unexpected dependency {lib}:\n{ldd}"
        );
    }
    // No LLVM or MLIR code linked in statically either (the `tensorc_*`
    // entry points and their local `_mlir_ciface_*` kernels are expected).
    let nm = Command::new("nm")
        .args(["-C", "--defined-only"])
        .arg(&exe)
        .output()
        .expect("run nm");
    let nm = String::from_utf8_lossy(&nm.stdout);
    assert!(nm.contains(" T tensorc_main"), "entry point missing");
    let foreign: Vec<&str> = nm
        .lines()
        .filter(|l| l.contains("llvm::") || l.contains("mlir::") || l.contains(" LLVM"))
        .take(5)
        .collect();
    assert!(foreign.is_empty(), "LLVM/MLIR symbols in the example: {foreign:?}");
    // Debug build with debug info, std and ndarray: a few MB (tensorc itself,
    // with LLVM and MLIR, is hundreds).
    let size = std::fs::metadata(&exe).expect("example binary").len();
    assert!(size < 16 << 20, "the example is {size} bytes");
}

/// A model that does not type-check fails the build with tensorc's
/// `file:line:col` diagnostic as the message.
#[test]
fn rust_aot_model_error_is_tensorc_diagnostic() {
    let dir = target_subdir("rust-aot-error");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.nxir");
    std::fs::write(&bad, "def f(x: f32[3]) -> f32[3] {\n  y = frobnicate x\n  return y\n}\n")
        .unwrap();
    let err = tensorc_build::Build::new()
        .file(&bad)
        .tensorc(crate::cli::tensorc_bin())
        .out_dir(&dir)
        .cargo_metadata(false)
        .try_compile("bad")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("tensorc failed to compile {}", bad.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:2:7: error: ", bad.display())),
        "{err}"
    );
    assert!(err.contains("frobnicate"), "{err}");
    assert!(!dir.join("bad.rs").exists(), "no Rust is generated for a failed model");
}

//! Helpers shared by the integration tests: the LLVM 22 tools and lowering a
//! source text.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use tensorc_ir::SourceFile;

pub const BIN: &str = "/usr/lib/llvm-22/bin";
pub const LIB: &str = "/usr/lib/llvm-22/lib";

/// Path of an LLVM tool. A missing tool fails the test (never skips it).
pub fn tool(name: &str) -> String {
    let p = Path::new(BIN).join(name);
    assert!(p.exists(), "{} is missing: run `cargo xtask setup` to install LLVM/MLIR 22", p.display());
    p.to_string_lossy().into_owned()
}

/// Run `tool args` with `input` on stdin; Err(stderr) on failure.
pub fn pipe(tool: &str, args: &[&str], input: &str) -> Result<String, String> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {tool}: {e}"))?;
    child.stdin.take().expect("piped").write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Check and lower `src`; panics with the rendered diagnostics if it does not check.
pub fn lower_source(name: &str, src: &str) -> (tensorc_ir::Module, String) {
    let file = SourceFile::new(name, src);
    let module = match tensorc_ir::check::compile(&file) {
        Ok(m) => m,
        Err(d) => panic!("does not check:\n{}", tensorc_ir::render::render(&d)),
    };
    let mlir = tensorc_frontend::lower(&module, &file).unwrap_or_else(|e| panic!("{e}"));
    (module, mlir)
}

/// Verify `mlir`, run the full CPU pipeline and translate to LLVM IR.
/// Returns the LLVM-dialect module.
///
/// Temporaries are allocated with plain `malloc`/`free` here, not through
/// tensorc's workspace functions (`_mlir_memref_to_llvm_*`, the pipeline's
/// `use-generic-functions`): these modules run under `mlir-runner`, which has
/// only MLIR's runner utilities, not tensorc's C runtime. The workspace
/// itself is tested in `tensorc-cpu`; everything else is the real pipeline.
pub fn verify_and_lower_to_llvm(mlir: &str) -> Result<String, String> {
    let opt = tool("mlir-opt");
    pipe(&opt, &[], mlir).map_err(|e| format!("verifier:\n{e}"))?;
    let generic = "finalize-memref-to-llvm{use-generic-functions=true use-aligned-alloc=true}";
    let full = tensorc_passes::full_cpu_pipeline();
    assert!(full.contains(generic), "the CPU pipeline no longer names `{generic}`: update this helper");
    let pipeline = full.replace(generic, "finalize-memref-to-llvm");
    let llvm = pipe(&opt, &[&format!("--pass-pipeline={pipeline}")], mlir).map_err(|e| format!("pipeline:\n{e}"))?;
    pipe(&tool("mlir-translate"), &["--mlir-to-llvmir"], &llvm).map_err(|e| format!("mlir-translate:\n{e}"))?;
    Ok(llvm)
}

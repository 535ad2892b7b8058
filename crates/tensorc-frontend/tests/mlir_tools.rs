//! Every lowered program must pass the MLIR verifier and lower completely to
//! LLVM IR through tensorc's CPU pipeline. Checked with the real LLVM 22
//! tools (`mlir-opt`, `mlir-translate`) so the frontend itself stays
//! LLVM-free. A missing tool is a failure, not a skip: the tools are part of
//! the development setup (`cargo xtask setup`).

mod common;

use std::path::{Path, PathBuf};

use tensorc_ir::SourceFile;

/// The shared `.nxir` op cases of the workspace (`tests/cases/ops`) plus this
/// crate's own extra cases.
fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [root.join("../../tests/cases/ops"), root.join("tests/cases")] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "nxir")));
        }
    }
    files.sort();
    files
}

/// Lower one file; None when the checker rejects it (not this crate's concern).
fn lower_file(path: &Path) -> Option<Result<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let file = SourceFile::new(path.file_name()?.to_string_lossy(), text);
    let module = tensorc_ir::check::compile(&file).ok()?;
    Some(tensorc_frontend::lower(&module, &file).map_err(|e| e.to_string()))
}

#[test]
fn every_case_verifies_and_lowers_to_llvm_ir() {
    let only = std::env::var("CASE").ok();
    let (mut lowered, mut unchecked, mut failures) = (0, Vec::new(), Vec::new());
    for path in cases() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let mlir = match lower_file(&path) {
            None if path.starts_with(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")) => {
                failures.push(format!("{name}: this crate's own case does not type-check"));
                continue;
            }
            None => {
                unchecked.push(name);
                continue;
            }
            Some(Err(e)) => {
                failures.push(format!("{name}: lowering failed: {e}"));
                continue;
            }
            Some(Ok(m)) => m,
        };
        lowered += 1;
        if let Err(e) = common::verify_and_lower_to_llvm(&mlir) {
            failures.push(format!("{name}: {e}"));
        }
    }
    if !unchecked.is_empty() {
        eprintln!("not checked by tensorc-ir yet (skipped here): {}", unchecked.join(", "));
    }
    assert!(failures.is_empty(), "{} of {lowered} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(lowered > 0 || only.is_some(), "no case was lowered");
}

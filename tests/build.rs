//! Turns every case file under `cases/` into named tests, so adding a case is
//! adding a file and each case passes or fails on its own (`cargo test ops_run_add`).
//! `cases/ops/X.nxir` gives `ops_nxir_X`, `ops_linalg_X` and `ops_run_X`;
//! `cases/errors/X.nxir` gives `errors_X`.

use std::fmt::Write as _;
use std::path::Path;

/// The case stems of `dir`. An unreadable or empty case directory fails the
/// build instead of yielding no tests: a silently shrunken suite (seen when
/// several checkouts shared one target dir) would pass while testing nothing.
fn case_stems(dir: &Path) -> Vec<String> {
    let rd = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read test cases in {}: {e}", dir.display()));
    let mut stems: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "nxir"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    assert!(!stems.is_empty(), "no .nxir test cases in {}", dir.display());
    // Sorted so the generated file does not depend on directory order.
    stems.sort();
    stems
}

/// A Rust identifier from a file stem (case files use snake_case already).
fn ident(stem: &str) -> String {
    stem.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out = String::new();
    for (dir, kinds) in [
        ("ops", &["nxir", "linalg", "run"][..]),
        ("errors", &["error"][..]),
    ] {
        let d = root.join(dir);
        println!("cargo:rerun-if-changed={}", d.display());
        for stem in case_stems(&d) {
            for kind in kinds {
                let name = if *kind == "error" {
                    format!("errors_{}", ident(&stem))
                } else {
                    format!("{dir}_{kind}_{}", ident(&stem))
                };
                let func = match *kind {
                    "nxir" => "check_nxir",
                    "linalg" => "check_linalg",
                    "run" => "check_run",
                    _ => "check_error",
                };
                writeln!(out, "#[test]\nfn {name}() {{\n    crate::harness::{func}(\"{dir}/{stem}.nxir\");\n}}\n").unwrap();
            }
        }
    }
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("cases.rs");
    std::fs::write(dest, out).expect("write generated tests");
}

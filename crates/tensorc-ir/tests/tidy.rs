//! Tidy checks: architecture invariants from `docs/ARCHITECTURE.md`, as plain tests.
//!
//! They read the workspace's Cargo manifests (and ask `cargo tree` for the
//! transitive picture) so that a dependency that breaks the layering fails CI
//! instead of slowly turning a seconds-long build into a minutes-long one.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates that pull LLVM, MLIR or Vulkan into a build.
const HEAVY: &[&str] = &["melior", "mlir-sys", "inkwell", "llvm-sys", "ash", "tblgen"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Every package name in the normal+build dependency tree of `package`.
fn dependency_names(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["tree", "--offline", "-p", package, "-e", "normal,build", "--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn assert_light(package: &str) {
    let deps = dependency_names(package);
    assert!(deps.iter().any(|d| d == package), "cargo tree did not list {package} itself: {deps:?}");
    let heavy: Vec<_> = deps.iter().filter(|d| HEAVY.contains(&d.as_str())).collect();
    assert!(heavy.is_empty(), "{package} must stay LLVM-free but depends on {heavy:?}");
}

#[test]
fn ir_is_llvm_free() {
    assert_light("tensorc-ir");
}

#[test]
fn interpreter_is_llvm_free() {
    assert_light("tensorc-interp");
}

#[test]
fn frontend_is_llvm_free() {
    assert_light("tensorc-frontend");
}

#[test]
fn xtask_is_llvm_free() {
    assert_light("xtask");
}

/// A build-dependency of user crates: it drives the tensorc binary instead.
#[test]
fn tensorc_build_is_llvm_free() {
    assert_light("tensorc-build");
}

/// Each crate folder's name is its package name.
#[test]
fn crate_folders_are_named_after_packages() {
    let root = workspace_root();
    let mut checked = 0;
    for group in ["crates", "passes"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            let dir = entry.unwrap().path();
            let manifest = dir.join("Cargo.toml");
            if !manifest.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&manifest).unwrap();
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("name = \"").and_then(|r| r.strip_suffix('"')))
                .unwrap_or_else(|| panic!("no package name in {}", manifest.display()));
            assert_eq!(name, dir.file_name().unwrap().to_str().unwrap(), "folder/package mismatch");
            checked += 1;
        }
    }
    assert!(checked >= 7, "expected the workspace crates, found {checked}");
}

/// The frontend and the back ends never depend on each other; only `tensorc` composes them.
#[test]
fn frontend_and_backends_are_independent() {
    let frontend = dependency_names("tensorc-frontend");
    assert!(!frontend.iter().any(|d| d == "tensorc-cpu"), "frontend depends on the CPU back end");
    let cpu = dependency_names("tensorc-cpu");
    assert!(!cpu.iter().any(|d| d == "tensorc-frontend"), "CPU back end depends on the frontend");
}

/// `.tvk` artifacts load and run without MLIR or LLVM: the Vulkan runtime's
/// only heavy dependency is `ash`, whose libvulkan is loaded at run time.
#[test]
fn vulkan_runtime_is_mlir_free() {
    let deps = dependency_names("tensorc-vulkan-rt");
    assert!(deps.iter().any(|d| d == "tensorc-vulkan-rt"), "cargo tree did not list tensorc-vulkan-rt: {deps:?}");
    let heavy: Vec<_> = deps.iter().filter(|d| d.as_str() != "ash" && HEAVY.contains(&d.as_str())).collect();
    assert!(heavy.is_empty(), "tensorc-vulkan-rt must stay MLIR- and LLVM-free but depends on {heavy:?}");
}

//! The shared benchmark programs (`../shared/bench/*.nxir` beside the repo)
//! must type-check (w09's `conv` included, now that it is implemented), and the ones small enough for a
//! debug build agree between the CPU JIT and the interpreter (w09 is run by
//! `known_conv`; the 1024/2048 matmuls, w04 and w07 are too big for a debug run).

use std::path::PathBuf;

use tensorc::{CompileOptions, Stage, Target};

use crate::harness::{Settings, differential};

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench")
}

fn bench_files() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(bench_dir())
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", bench_dir().display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "nxir"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                std::fs::read_to_string(&p).expect("bench file is UTF-8"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_bench_file_checks() {
    let files = bench_files();
    assert!(
        files.len() >= 10,
        "expected the ten shared benchmarks, found {}",
        files.len()
    );
    for (name, src) in files {
        // conv landed with the op-set work, so w09 must check like the rest.
        if let Err(e) = tensorc::emit(&name, &src, Stage::Nxir) {
            panic!("{name} does not check:\n{}", e.render());
        }
    }
}

/// CPU vs interpreter on the actual benchmark file, one random seed and no edge set
/// (these are performance programs; the op cases cover edge values).
fn run_bench(prefix: &str) {
    let (name, src) = bench_files()
        .into_iter()
        .find(|(n, _)| n.starts_with(prefix))
        .expect("bench file");
    // Matmuls accumulate thousands of products; allow for reassociation.
    let settings = Settings {
        tolerance: 1e-4,
        inputs: crate::harness::EdgeSet::None,
        seeds: vec![0],
    };
    let failures = differential(&name, &src, &settings);
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
    // And the CPU program compiles with default options too.
    assert!(
        tensorc::compile_str(
            &name,
            &src,
            &CompileOptions {
                target: Target::Cpu,
                ..Default::default()
            }
        )
        .is_ok()
    );
}

#[test]
fn bench_w01_cpu_matches_interp() {
    run_bench("w01");
}

#[test]
fn bench_w10_cpu_matches_interp() {
    run_bench("w10");
}

/// 1G multiply-adds: about 15 s in a debug build, the slowest test here.
#[test]
fn bench_w06_cpu_matches_interp() {
    run_bench("w06");
}

#[test]
fn bench_w05_cpu_matches_interp() {
    run_bench("w05");
}

#[test]
fn bench_w08_cpu_matches_interp() {
    run_bench("w08");
}

//! The shared benchmark programs (`../shared/bench/*.nxir` beside the repo)
//! must type-check (w09's `conv` included, now that it is implemented), and the ones small enough for a
//! debug build agree between the CPU JIT and the interpreter (w09 is run by
//! `known_conv`; the 1024/2048 matmuls, w04 and w07 are too big for a debug run).
//! On Vulkan (lavapipe), every workload that fits the device's limits agrees
//! with the interpreter (issue 5), and the one that does not (w07's 256 MiB
//! input) is refused with the limit named.

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

/// Vulkan vs interpreter on a benchmark file, one random seed, no edge set.
/// Skipped (loudly, by `have_driver`) only outside CI when no driver exists.
fn run_bench_vulkan(prefix: &str) {
    if !crate::vulkan::have_driver() {
        return;
    }
    let (name, src) = bench_files()
        .into_iter()
        .find(|(n, _)| n.starts_with(prefix))
        .expect("bench file");
    let interp = crate::harness::compile_for(&name, &src, Target::Interp);
    let vulkan = crate::harness::compile_for(&name, &src, Target::Vulkan);
    let mut failures = Vec::new();
    for f in interp.functions() {
        let fi = interp.entry(Some(f)).expect("interp function");
        let fv = vulkan.entry(Some(f)).expect("vulkan function");
        let types: Vec<_> = fi.params().iter().map(|(_, t)| t.clone()).collect();
        for (label, inputs) in crate::harness::seeded_inputs(&types, &[0]) {
            let want = fi.call(&inputs).unwrap_or_else(|e| panic!("{name}: {}", e.render()));
            let got = fv
                .call(&inputs)
                .unwrap_or_else(|e| panic!("{name} on Vulkan: {}", e.render()));
            assert_eq!(got.len(), want.len(), "{name}: result count");
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                // Sums of up to 4096 products, reassociated differently.
                if let Err(msg) = crate::harness::compare(g, w, 1e-4) {
                    failures.push(format!("{f} [{label}] result {k}: {msg}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{name} on Vulkan:\n{}", failures.join("\n"));
}

#[test]
fn bench_w01_vulkan_matches_interp() {
    run_bench_vulkan("w01");
}

#[test]
fn bench_w04_vulkan_matches_interp() {
    run_bench_vulkan("w04");
}

#[test]
fn bench_w05_vulkan_matches_interp() {
    run_bench_vulkan("w05");
}

/// 1G multiply-adds in the interpreter (about 15 s in a debug build).
#[test]
fn bench_w06_vulkan_matches_interp() {
    run_bench_vulkan("w06");
}

#[test]
fn bench_w08_vulkan_matches_interp() {
    run_bench_vulkan("w08");
}

#[test]
fn bench_w09_vulkan_matches_interp() {
    run_bench_vulkan("w09");
}

#[test]
fn bench_w10_vulkan_matches_interp() {
    run_bench_vulkan("w10");
}

/// w02 (1024³) also fits; w03 (2048³, 8G multiply-adds) would take minutes
/// in the debug interpreter and is left to `cargo xtask bench`-style runs.
#[test]
fn bench_w02_vulkan_matches_interp() {
    run_bench_vulkan("w02");
}

/// w07's input is 256 MiB, over lavapipe's 128 MiB `maxStorageBufferRange`:
/// refused with the size and the limit, never run on part of the data.
#[test]
fn bench_w07_on_vulkan_names_the_buffer_limit() {
    if !crate::vulkan::have_driver() {
        return;
    }
    let (name, src) = bench_files()
        .into_iter()
        .find(|(n, _)| n.starts_with("w07"))
        .expect("bench file");
    let result = tensorc::compile_str(
        &name,
        &src,
        &CompileOptions {
            target: Target::Vulkan,
            ..Default::default()
        },
    )
    .and_then(|p| {
        let f = p.entry(None)?;
        let types: Vec<_> = f.params().iter().map(|(_, t)| t.clone()).collect();
        let inputs = crate::harness::seeded_inputs(&types, &[0]).remove(0).1;
        f.call(&inputs)
    });
    let msg = match result {
        Ok(_) => panic!("w07 ran on a device whose buffers are too small for its input"),
        Err(e) => e.render(),
    };
    assert!(
        msg.contains("268435456 bytes") && msg.contains("maxStorageBufferRange"),
        "{msg}"
    );
}

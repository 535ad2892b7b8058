//! lavapipe's loop limit: Mesa's CPU driver silently ends a kernel
//! invocation's loops after 65535 iterations in total, so a kernel that may
//! loop longer must be refused with an error naming the statement, the
//! bound and the device (through the library, the CLI and a `.tvk`
//! artifact), never run to a wrong value; kernels under the limit run and
//! agree with the interpreter. Skips loudly without a driver (fails under
//! `CI`), like the other Vulkan tests.

use crate::cli::{scratch, write};
use crate::harness::compare;
use crate::vulkan::have_driver;
use crate::vulkan_cli::{compile_tvk, fails_with, tensorc};
use tensorc::{CompileOptions, Error, Target};

/// A scan along 70000 elements: one invocation loops 70000 times.
const SCAN: &str =
    "def main(x: f32[70000]) -> f32[70000] {\n  r = cumulative_sum x\n  return r\n}\n";

/// Whether the tests run on lavapipe (their default, see `vulkan.rs`).
fn on_lavapipe() -> bool {
    ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|f| f.contains("lvp_icd")))
}

/// Runs `main` of `source` on Vulkan and in the interpreter on seeded
/// random inputs: the Vulkan result, and the interpreter's.
fn run_both(
    name: &str,
    source: &str,
) -> (Result<Vec<tensorc::Tensor>, Error>, Vec<tensorc::Tensor>) {
    let opts = |target| CompileOptions {
        target,
        ..Default::default()
    };
    let vk = tensorc::compile_str(name, source, &opts(Target::Vulkan))
        .unwrap_or_else(|e| panic!("{name}: {}", e.render()));
    let f = vk.entry(Some("main")).expect("main");
    let inputs: Vec<tensorc::Tensor> = f
        .params()
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| {
            tensorc_ir::random::try_random_tensor(ty, 7, i as u64).expect("random input")
        })
        .collect();
    let got = f.call(&inputs);
    let module =
        tensorc_ir::check::compile(&tensorc::SourceFile::new(name, source)).expect("source checks");
    let want = tensorc_interp::run(&module, "main", &inputs).expect("interp");
    (got, want)
}

#[test]
fn a_kernel_over_the_loop_limit_is_refused_not_wrong() {
    if !have_driver() {
        return;
    }
    match run_both("scan.nxir", SCAN) {
        (Err(Error::Unsupported(msg)), _) => {
            for needle in [
                "scan.nxir:2:3: `cumulative_sum` runs up to 70000 loop iterations",
                "more than the 65535",
                "llvmpipe",
                "'main' cannot run on this Vulkan device",
            ] {
                assert!(msg.contains(needle), "lacks {needle:?}: {msg}");
            }
        }
        (Err(e), _) => panic!("not the loop-limit error: {}", e.render()),
        (Ok(got), want) => {
            // Another device (no limiter) must compute the right values.
            assert!(!on_lavapipe(), "lavapipe ran a kernel over its loop limit");
            compare(&got[0], &want[0], 1e-3).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let messages = tensorc::vulkan_validation_messages();
    assert!(messages.is_empty(), "{}", messages.join("\n"));
}

#[test]
fn kernels_under_the_loop_limit_run() {
    if !have_driver() {
        return;
    }
    for (name, source) in [
        (
            "scan.nxir",
            "def main(x: s32[65000]) -> s32[65000] {\n  r = cumulative_sum x\n  return r\n}\n",
        ),
        (
            "rows.nxir",
            "def main(x: f32[2][65000]) -> f32[2] {\n  s = sum x, axes: [1], keep_axes: false\n  return s\n}\n",
        ),
    ] {
        let (got, want) = run_both(name, source);
        let got = got.unwrap_or_else(|e| panic!("{name}: {}", e.render()));
        compare(&got[0], &want[0], 1e-4).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Long reductions to a scalar (odd lengths, integer and float, a nested
/// loop nest, a reduction followed by more work in the same kernel run) and
/// along a long inner axis into a rank-1 result:
/// split into two parallel stages, they run on lavapipe and agree with the
/// interpreter (integers exactly, floats up to reassociation).
const LONG_REDUCTIONS: &str = "
def sum_f32(x: f32[70001]) -> f32 {
  s = sum x, axes: nil, keep_axes: false
  return s
}
def sum_s32(x: s32[200000]) -> s32 {
  s = sum x, axes: nil, keep_axes: false
  return s
}
def product_wraps(x: s32[70001]) -> s32 {
  y = bitwise_or x, 1
  s = product y, axes: nil, keep_axes: false
  return s
}
def max_f32(x: f32[99999]) -> f32 {
  s = reduce_max x, axes: nil, keep_axes: false
  return s
}
def min_s32(x: s32[70001]) -> s32 {
  s = reduce_min x, axes: nil, keep_axes: false
  return s
}
def all_any(x: u8[70001]) -> {u8, u8} {
  a = all x, axes: nil, keep_axes: false
  b = any x, axes: nil, keep_axes: false
  return {a, b}
}
def nested_f32(x: f32[300][301]) -> f32 {
  s = sum x, axes: nil, keep_axes: false
  return s
}
def rows_sum(x: f32[2][70001]) -> f32[2] {
  s = sum x, axes: [1], keep_axes: false
  return s
}
def rows_max(x: s32[3][70001]) -> s32[3] {
  s = reduce_max x, axes: [1], keep_axes: false
  return s
}
def rows_min_f64(x: f64[2][65537]) -> f64[2] {
  s = reduce_min x, axes: [1], keep_axes: false
  return s
}
def rows_all(x: u8[2][70001]) -> u8[2] {
  s = all x, axes: [1], keep_axes: false
  return s
}
def then_scaled(x: f64[131071]) -> f64 {
  s = sum x, axes: nil, keep_axes: false
  t = multiply s, 0.5
  return t
}
";

#[test]
fn long_reductions_agree_with_the_interpreter() {
    if !have_driver() {
        return;
    }
    let opts = |target| CompileOptions {
        target,
        ..Default::default()
    };
    let vk = tensorc::compile_str("long.nxir", LONG_REDUCTIONS, &opts(Target::Vulkan))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let module =
        tensorc_ir::check::compile(&tensorc::SourceFile::new("long.nxir", LONG_REDUCTIONS))
            .expect("source checks");
    for name in vk.functions() {
        let f = vk.entry(Some(name)).expect("function");
        for seed in [1, 2] {
            let inputs: Vec<tensorc::Tensor> = f
                .params()
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| {
                    tensorc_ir::random::try_random_tensor(ty, seed, i as u64).expect("input")
                })
                .collect();
            let want = tensorc_interp::run(&module, name, &inputs).expect("interp");
            let got = f
                .call(&inputs)
                .unwrap_or_else(|e| panic!("{name}: {}", e.render()));
            assert_eq!(got.len(), want.len(), "{name}");
            for (g, w) in got.iter().zip(&want) {
                compare(g, w, 1e-4).unwrap_or_else(|e| panic!("{name} seed {seed}: {e}"));
            }
        }
    }
    let messages = tensorc::vulkan_validation_messages();
    assert!(messages.is_empty(), "{}", messages.join("\n"));
}

#[test]
fn the_cli_refuses_a_kernel_over_the_loop_limit() {
    if !have_driver() || !on_lavapipe_for_subprocesses() {
        return;
    }
    let dir = scratch("vk-loop-limit");
    write(&dir, "scan.nxir", SCAN);
    let o = tensorc(&["run", "scan.nxir", "--target", "vulkan"], &dir);
    fails_with(
        &o,
        &[
            "scan.nxir:2:3: `cumulative_sum` runs up to 70000 loop iterations",
            "65535",
            "llvmpipe",
        ],
    );
    // An artifact keeps the bound and the statement's position.
    compile_tvk(&dir, "scan", SCAN);
    let o = tensorc(&["run", "scan.tvk"], &dir);
    fails_with(
        &o,
        &[
            "scan.nxir:2:3: runs up to 70000 loop iterations",
            "65535",
            "llvmpipe",
        ],
    );
}

/// The CLI's subprocesses get lavapipe unless the caller chose a driver.
fn on_lavapipe_for_subprocesses() -> bool {
    let chosen = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    !chosen || on_lavapipe()
}

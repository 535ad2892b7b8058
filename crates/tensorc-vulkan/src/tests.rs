//! Unit tests of the lowering and runtime on small hand-checked programs.
//! Runtime tests need a Vulkan driver: without one they say so and return
//! (under `CI` they fail, CI always has lavapipe).

use super::*;
use std::sync::Arc;
use tensorc_ir::{DType, Scalar, SourceFile, Tensor, TensorType};

pub(crate) fn module(src: &str) -> (tensorc_ir::Module, String) {
    let file = SourceFile::new("t.nxir", src);
    let m = tensorc_ir::check::compile(&file).expect("program checks");
    let text = tensorc_frontend::lower(&m, &file).expect("lowers");
    (m, text)
}

/// Runs `spirv-val` on every kernel; Err with its message on failure.
pub(crate) fn spirv_val(c: &Compiled) -> Result<(), String> {
    for k in &c.kernels {
        // Unique per call: tests run in parallel threads of one process, and
        // their kernels share module names, so a name of pid and module
        // alone let one test remove or overwrite another's file
        // (`a_long_row_reduction_becomes_two_stages` failed now and then).
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "tensorc-vk-{}-{n}-{}",
            std::process::id(),
            k.module
        ));
        let bytes: Vec<u8> = k.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        std::fs::write(&dir, bytes).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("spirv-val")
            .args(["--target-env", "vulkan1.1"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("could not run spirv-val: {e}"))?;
        let _ = std::fs::remove_file(&dir);
        if !out.status.success() {
            return Err(format!(
                "{}: {}{}",
                k.module,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

const ADD: &str =
    "def f(x: f32[4][8], y: f32[4][8]) -> f32[4][8] {\n  z = add x, y\n  return z\n}\n";

#[test]
fn add_lowers_to_one_valid_kernel() {
    let (m, text) = module(ADD);
    let c = compile_kernels(&m, &text, &Limits::default()).unwrap();
    assert_eq!(c.kernels.len(), 1);
    assert_eq!(c.kernels[0].bindings, 3);
    assert_eq!(c.kernels[0].words[0], 0x0723_0203, "SPIR-V magic number");
    spirv_val(&c).unwrap();
    let s = &c.schedules[0];
    assert_eq!(s.buffers[0].kind, BufferKind::Input(0));
    assert_eq!(s.buffers[2].kind, BufferKind::Output(0));
    assert_eq!(s.buffers[2].bytes, 4 * 8 * 4);
}

fn gpu_or_skip() -> Option<Arc<Gpu>> {
    match Gpu::shared() {
        Ok(g) => Some(g),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have a Vulkan driver: {e}"
            );
            eprintln!("SKIPPED: no Vulkan driver ({e})");
            None
        }
    }
}

#[test]
fn add_runs_on_the_device() {
    let Some(_) = gpu_or_skip() else { return };
    let (m, text) = module(ADD);
    let vm = compile_module(&m, &text).unwrap();
    let ty = TensorType::new(DType::F32, vec![4, 8]);
    let x = Tensor::from_scalars(
        ty.clone(),
        &(0..32).map(|i| Scalar::F(i as f64)).collect::<Vec<_>>(),
    )
    .unwrap();
    let y = Tensor::from_scalars(
        ty.clone(),
        &(0..32)
            .map(|i| Scalar::F(0.5 * i as f64))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut out = vec![Tensor::zeros(ty).unwrap()];
    vm.call("f", &[&x, &y], &mut out).unwrap();
    for i in 0..32 {
        assert_eq!(out[0].get(i).as_f64(), 1.5 * i as f64);
    }
    // Second call reuses the buffers and command buffer.
    vm.call("f", &[&y, &y], &mut out).unwrap();
    assert_eq!(out[0].get(31).as_f64(), 31.0);
}

#[test]
fn no_validation_errors() {
    // Runs after (or alongside) the other tests in this process; any message
    // the layer reported for them is a failure.
    let Some(_) = gpu_or_skip() else { return };
    let (m, text) = module(ADD);
    let vm = compile_module(&m, &text).unwrap();
    let ty = TensorType::new(DType::F32, vec![4, 8]);
    let x = Tensor::zeros(ty.clone()).unwrap();
    let mut out = vec![Tensor::zeros(ty).unwrap()];
    vm.call("f", &[&x, &x], &mut out).unwrap();
    let msgs = validation_messages();
    assert!(msgs.is_empty(), "validation layer reported: {msgs:#?}");
}

/// Every kernel of every op case that the Vulkan lowering accepts passes
/// `spirv-val` for Vulkan 1.1; a case it rejects is rejected as unsupported.
#[test]
fn every_emitted_kernel_passes_spirv_val() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/ops");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    let (mut kernels, mut failures) = (0, Vec::new());
    for p in paths {
        let src = std::fs::read_to_string(&p).unwrap();
        let file = SourceFile::new(p.display().to_string(), src);
        let Ok(m) = tensorc_ir::check::compile(&file) else {
            continue;
        };
        let Ok(text) = tensorc_frontend::lower(&m, &file) else {
            continue;
        };
        match compile_kernels(&m, &text, &Limits::default()) {
            Ok(c) => {
                kernels += c.kernels.len();
                if let Err(e) = spirv_val(&c) {
                    failures.push(format!("{}: {e}", p.display()));
                }
            }
            Err(VulkanError::Unsupported(_) | VulkanError::UnsupportedOp { .. }) => {}
            Err(e) => failures.push(format!("{}: {e}", p.display())),
        }
    }
    assert!(kernels > 100, "only {kernels} kernels were checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// 2^24 elements need 131072 workgroups of 128 invocations, more than the
/// 65535 per dimension that devices guarantee: the lowering must pick
/// larger workgroups (lavapipe allows 1024) so every launch fits.
#[test]
fn a_large_launch_stays_within_the_workgroup_count_limit() {
    let Some(gpu) = gpu_or_skip() else { return };
    let n = 1usize << 24;
    let (m, text) = module(&format!(
        "def f(x: f32[{n}]) -> f32[{n}] {{\n  y = add x, x\n  return y\n}}\n"
    ));
    let limits = gpu.limits();
    let c = compile_kernels(&m, &text, &limits).unwrap();
    for s in &c.schedules {
        for step in &s.steps {
            if let Step::Dispatch { groups, .. } = step {
                for d in 0..3 {
                    assert!(groups[d] <= limits.max_groups[d], "{groups:?}");
                }
            }
        }
    }
    let vm = compile_module(&m, &text).unwrap();
    let ty = TensorType::new(DType::F32, vec![n]);
    let mut x = Tensor::zeros(ty.clone()).unwrap();
    for (i, c) in x.bytes_mut().chunks_exact_mut(4).enumerate() {
        c.copy_from_slice(&((i % 1000) as f32).to_le_bytes());
    }
    let mut out = vec![Tensor::zeros(ty).unwrap()];
    vm.call("f", &[&x], &mut out).unwrap();
    for i in [0, 1, 999, 1000, n / 2 + 7, n - 1] {
        assert_eq!(
            out[0].get(i).as_f64(),
            2.0 * (i % 1000) as f64,
            "element {i}"
        );
    }
}

/// An op without a SPIR-V lowering (no `.nxir` op produces one today, so
/// the frontend's `is_nan` compare is swapped for `math.isnormal`, which
/// neither `convert-math-to-spirv` nor tensorc's math passes handle) is
/// reported as unsupported, naming the MLIR op, at the source statement.
#[test]
fn an_op_without_a_spirv_lowering_is_unsupported_at_its_statement() {
    let (m, text) = module("def f(x: f32[4]) -> u8[4] {\n  y = is_nan x\n  return y\n}\n");
    let at = text.find("arith.cmpf uno, ").expect("is_nan's compare");
    let end = at + text[at..].find(" : f32").expect("its type");
    let operand = text[at..end]["arith.cmpf uno, ".len()..]
        .split(',')
        .next()
        .expect("an operand")
        .to_owned();
    let text = format!("{}math.isnormal {operand}{}", &text[..at], &text[end..]);
    match compile_kernels(&m, &text, &Limits::default()) {
        Err(VulkanError::UnsupportedOp { mlir_op, at, .. }) => {
            assert_eq!(mlir_op, "math.isnormal");
            let at = at.expect("a source location");
            assert_eq!((at.file.as_str(), at.line), ("t.nxir", 2));
        }
        other => panic!("expected an unsupported op, got {other:?}"),
    }
}

/// An f64 `remainder` runs on 64-bit integers (exact `fmod`), so the
/// function asks the device for `shaderInt64` as well (through s64).
#[test]
fn f64_remainder_needs_int64() {
    let (m, _) =
        module("def f(x: f64[4], y: f64[4]) -> f64[4] {\n  z = remainder x, y\n  return z\n}\n");
    assert_eq!(dtypes(&m.functions[0]), [DType::F64, DType::S64]);
    let (m, _) = module("def f(x: f64[4], y: f64[4]) -> f64[4] {\n  z = add x, y\n  return z\n}\n");
    assert_eq!(dtypes(&m.functions[0]), [DType::F64]);
}

/// The f64 math functions are written out with i64 exponent-bit arithmetic
/// (`vulkan_math_f64`), so they need `shaderInt64` too; their f32 forms and
/// f64 `sqrt` do not.
#[test]
fn f64_math_functions_need_int64() {
    for body in [
        "y = exp x",
        "y = sigmoid x",
        "y = erf_inv x",
        "y = pow x, x",
        "y = atan2 x, x",
    ] {
        let (m, _) = module(&format!(
            "def f(x: f64[4]) -> f64[4] {{\n  {body}\n  return y\n}}\n"
        ));
        assert_eq!(dtypes(&m.functions[0]), [DType::F64, DType::S64], "{body}");
    }
    let (m, _) = module("def f(x: f64[4]) -> f64[4] {\n  y = sqrt x\n  return y\n}\n");
    assert_eq!(dtypes(&m.functions[0]), [DType::F64]);
    let (m, _) = module("def f(x: f32[4]) -> f32[4] {\n  y = exp x\n  return y\n}\n");
    assert_eq!(dtypes(&m.functions[0]), [DType::F32]);
}

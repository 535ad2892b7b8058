//! The Vulkan back end: `.nxir` programs as SPIR-V compute kernels dispatched
//! through Vulkan, on any GPU with a driver (and on Mesa's lavapipe in CI).
//!
//! This crate is the compiler half: `lower` turns the frontend's MLIR into
//! SPIR-V kernels and a per-function host schedule, with no device needed,
//! and `compile_module`/`compile_artifact` check the program against the
//! target and build a `VulkanModule` or a `.tvk` artifact. The runtime half
//! (schedules, the `.tvk` format, the device side on `ash`, `VulkanModule`)
//! is the MLIR-free `tensorc-vulkan-rt`, re-exported here so callers see one
//! crate.

mod ir;
mod loop_bound;
pub mod lower;
mod wrap;

pub use lower::Upto;
pub use tensorc_vulkan_rt::{
    Artifact, ArtifactError, ArtifactFunction, Buffer, BufferKind, Compiled, Entry, FileLoc, Gpu,
    Kernel, Limits, Schedule, Step, VulkanError, VulkanModule, runtime, schedule, tvk,
    validation_messages,
};

use tensorc_ir::{DType, Module};
use tensorc_mlir::MlirError;

/// An MLIR failure (a tensorc bug) as the runtime crate's error, which
/// cannot name MLIR types.
pub(crate) fn mlir_error(e: MlirError) -> VulkanError {
    VulkanError::Mlir {
        stage: e.stage.clone(),
        message: e.to_string(),
    }
}

/// A location from MLIR diagnostics as the runtime crate's `FileLoc`.
pub(crate) fn file_loc(l: &tensorc_mlir::FileLoc) -> FileLoc {
    FileLoc {
        file: l.file.clone(),
        line: l.line,
        col: l.col,
    }
}

/// The name of this target in messages.
pub const TARGET: &str = "vulkan";

/// SPIR-V kernels and schedules of a module, with no device: what
/// `emit --stage spirv` and the `spirv-val` tests use.
pub fn compile_kernels(
    module: &Module,
    mlir_text: &str,
    limits: &Limits,
) -> Result<Compiled, VulkanError> {
    // Larger workgroups (tiles) until every launch fits the device's
    // workgroup-count limit.
    let mut limits = *limits;
    let compiled = loop {
        match lower::lower(mlir_text, &limits, Upto::Binary) {
            Err(VulkanError::TooManyWorkgroups(_))
                if limits.invocations * 2 <= limits.max_invocations =>
            {
                limits.invocations *= 2;
            }
            other => break other?.1,
        }
    };
    let mut compiled =
        compiled.ok_or_else(|| VulkanError::Internal("no binary produced".into()))?;
    for s in &mut compiled.schedules {
        let f = module
            .functions
            .iter()
            .find(|f| f.name == s.function)
            .ok_or_else(|| {
                VulkanError::Internal(format!("schedule for unknown function `{}`", s.function))
            })?;
        let n_in = f.params.len();
        for b in &mut s.buffers {
            if let BufferKind::Input(i) = b.kind
                && i >= n_in
            {
                b.kind = BufferKind::Output(i - n_in);
            }
        }
    }
    Ok(compiled)
}

/// A `.tvk` artifact of the whole module, compiled with no device: the
/// workgroup limits are the Vulkan spec's guaranteed minimums
/// (`Limits::default()`), so the artifact runs on every device that has the
/// dtypes it uses (checked on load). Unlike an in-process compile, every
/// function must be supported: an artifact never silently lacks a `def`.
pub fn compile_artifact(
    module: &Module,
    mlir_text: &str,
    tensorc_version: &str,
) -> Result<Artifact, VulkanError> {
    let compiled = compile_kernels(module, mlir_text, &Limits::default())?;
    Ok(Artifact {
        tensorc_version: tensorc_version.to_owned(),
        functions: module
            .functions
            .iter()
            .map(|f| ArtifactFunction {
                name: f.name.clone(),
                params: f.params.clone(),
                result: f.result.clone(),
                dtypes: dtypes(f),
                program: 0,
            })
            .collect(),
        programs: vec![compiled],
    })
}

/// Every dtype a function computes with (parameters, intermediates, results).
fn dtypes(f: &tensorc_ir::Function) -> Vec<DType> {
    let mut out: Vec<DType> = Vec::new();
    let tys = f
        .params
        .iter()
        .map(|(_, t)| t.clone())
        .chain(f.nodes.iter().flat_map(|n| n.ty.flatten()));
    for t in tys {
        if !out.contains(&t.dtype) {
            out.push(t.dtype);
        }
    }
    // An f64 `remainder` is computed on 64-bit integers (the exact `fmod`
    // of `tensorc_passes::vulkan_math`), so it needs `shaderInt64` too.
    let f64_rem = f.nodes.iter().any(|n| {
        matches!(
            n.op,
            tensorc_ir::graph::Op::Binary {
                op: tensorc_ir::graph::BinaryOp::Remainder,
                compute: DType::F64,
            }
        )
    });
    // So are the f64 math functions (`tensorc_passes::vulkan_math_f64`
    // builds powers of two and splits exponents on the i64 bits).
    let f64_math = f.nodes.iter().any(|n| {
        use tensorc_ir::graph::{BinaryOp, Op, UnaryOp::*};
        let unary = matches!(
            n.op,
            Op::Unary(
                Exp | Expm1
                    | Log
                    | Log1p
                    | Sigmoid
                    | Sin
                    | Cos
                    | Tan
                    | Asin
                    | Acos
                    | Atan
                    | Sinh
                    | Cosh
                    | Tanh
                    | Asinh
                    | Acosh
                    | Atanh
                    | Cbrt
                    | Erf
                    | Erfc
                    | ErfInv
            )
        ) && n.ty.flatten().iter().any(|t| t.dtype == DType::F64);
        unary
            || matches!(
                n.op,
                Op::Binary {
                    op: BinaryOp::Pow | BinaryOp::Atan2,
                    compute: DType::F64,
                }
            )
    });
    if (f64_rem || f64_math) && !out.contains(&DType::S64) {
        out.push(DType::S64);
    }
    out
}

/// Whether an error is a limit of the target for this program (as opposed
/// to a missing driver, a Vulkan failure or a tensorc bug).
fn is_unsupported(e: &VulkanError) -> bool {
    matches!(
        e,
        VulkanError::Unsupported(_)
            | VulkanError::UnsupportedOp { .. }
            | VulkanError::DeviceFeature(_)
            | VulkanError::TooManyWorkgroups(_)
    )
}

/// The frontend's module with only the public function `name` (calls are
/// inlined, so every function stands alone). The frontend prints each
/// `func.func` at two spaces of indentation, closed by `  }`.
fn only_function(mlir_text: &str, name: &str) -> String {
    let mut out = String::with_capacity(mlir_text.len());
    let mut skipping = false;
    let header = format!("  func.func @{name}(");
    for line in mlir_text.lines() {
        if line.starts_with("  func.func @") {
            skipping = !line.starts_with(&header);
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
        if skipping && line.starts_with("  }") {
            skipping = false;
        }
    }
    out
}

/// Compiles `mlir_text` (the frontend's lowering of `module`) for the
/// process-wide default device. Functions compile together; when that fails
/// on something Vulkan cannot do, each function is compiled on its own, so
/// that one unsupported function does not stop the others (calling it
/// reports the reason). Fails when no function can run on the device.
pub fn compile_module(module: &Module, mlir_text: &str) -> Result<VulkanModule, VulkanError> {
    let gpu = Gpu::shared()?;
    let check = |f: &tensorc_ir::Function| -> Result<(), VulkanError> {
        for d in dtypes(f) {
            gpu.check_dtype(d)?;
        }
        Ok(())
    };
    let checks: Vec<Result<(), VulkanError>> = module.functions.iter().map(check).collect();
    let entry = |f: &tensorc_ir::Function, program| Entry {
        name: f.name.clone(),
        params: f.params.clone(),
        results: f.flat_results(),
        program,
    };
    if checks.iter().all(Result::is_ok) {
        match compile_kernels(module, mlir_text, &gpu.limits()) {
            Ok(compiled) => {
                let programs = vec![runtime::Program::new(&gpu, compiled)?];
                let functions = module.functions.iter().map(|f| entry(f, Ok(0))).collect();
                return Ok(VulkanModule::from_parts(gpu, programs, functions));
            }
            Err(e) if is_unsupported(&e) && module.functions.len() > 1 => {}
            Err(e) => return Err(e),
        }
    }
    let mut programs = Vec::new();
    let mut functions = Vec::new();
    for (f, checked) in module.functions.iter().zip(checks) {
        let result = checked.and_then(|()| {
            compile_kernels(module, &only_function(mlir_text, &f.name), &gpu.limits())
        });
        let program = match result {
            Ok(compiled) => {
                programs.push(runtime::Program::new(&gpu, compiled)?);
                Ok(programs.len() - 1)
            }
            Err(e) if is_unsupported(&e) => Err(e),
            Err(e) => return Err(e),
        };
        functions.push(entry(f, program));
    }
    if programs.is_empty() {
        let first = functions.into_iter().find_map(|f| f.program.err());
        return Err(
            first.unwrap_or_else(|| VulkanError::Internal("a module without functions".into()))
        );
    }
    Ok(VulkanModule::from_parts(gpu, programs, functions))
}

#[cfg(test)]
mod tests;

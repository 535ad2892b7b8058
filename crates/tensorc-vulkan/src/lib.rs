//! The Vulkan back end: `.nxir` programs as SPIR-V compute kernels dispatched
//! through Vulkan, on any GPU with a driver (and on Mesa's lavapipe in CI).
//!
//! `lower` turns the frontend's MLIR into SPIR-V kernels and a per-function
//! host schedule (`schedule`), with no device needed; `runtime` loads
//! libvulkan at run time (the binary never links it), picks a device and runs
//! schedules. `VulkanModule` ties the two to the typed graph, which gives each
//! function's signature and the dtypes to check against the device.

mod ir;
pub mod lower;
pub mod runtime;
pub mod schedule;
pub mod tvk;
mod wrap;

pub use lower::{Limits, Upto};
pub use runtime::{Gpu, validation_messages};
pub use schedule::{Buffer, BufferKind, Compiled, Kernel, Schedule, Step};
pub use tensorc_mlir::FileLoc;
pub use tvk::{Artifact, ArtifactError, ArtifactFunction};

use std::sync::Arc;
use tensorc_ir::{DType, Module, Tensor, TensorType};
use tensorc_mlir::MlirError;

/// The name of this target in messages.
pub const TARGET: &str = "vulkan";

#[derive(Debug, thiserror::Error)]
pub enum VulkanError {
    /// MLIR rejected something tensorc produced (a tensorc bug).
    #[error(transparent)]
    Mlir(#[from] MlirError),
    /// No usable Vulkan loader, driver or device.
    #[error("no Vulkan driver found: {0}")]
    NoDriver(String),
    /// The program uses something this target cannot run.
    #[error("the Vulkan target does not support {0}")]
    Unsupported(String),
    /// An operation of the program became MLIR `mlir_op`, which has no
    /// Vulkan lowering; `at` is the statement it came from.
    #[error("the Vulkan target does not support {what} (it needs `{mlir_op}`)")]
    UnsupportedOp {
        mlir_op: String,
        what: String,
        at: Option<tensorc_mlir::FileLoc>,
    },
    /// A kernel launch needs more workgroups than the device allows, even
    /// with the largest workgroups.
    #[error("the Vulkan target does not support {0}")]
    TooManyWorkgroups(String),
    /// The device lacks a feature a dtype needs.
    #[error("{0}")]
    DeviceFeature(String),
    /// The caller's tensors do not match the signature.
    #[error("{0}")]
    Args(String),
    /// A Vulkan call failed.
    #[error("Vulkan error: {0}")]
    Vulkan(String),
    /// A tensorc bug in the Vulkan lowering.
    #[error("{0}")]
    Internal(String),
}

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
    for f in &module.functions {
        reject_inexact_ops(f)?;
        // bf16 is the one dtype no device can run (see `Gpu::check_dtype`).
        if dtypes(f).contains(&DType::BF16) {
            return Err(VulkanError::Unsupported(format!(
                "dtype bf16 (in '{}'; SPIR-V 1.3 has no bf16 arithmetic)",
                f.name
            )));
        }
    }
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
    out
}

/// Ops whose SPIR-V lowering compiles but does not give Nx's results on
/// Vulkan are rejected up front, so that whatever runs is right.
fn reject_inexact_ops(f: &tensorc_ir::Function) -> Result<(), VulkanError> {
    use tensorc_ir::graph::{BinaryOp, Op, UnaryOp};
    for n in &f.nodes {
        let (op, why) = match n.op {
            // OpFRem is imprecise for huge or infinite operands on lavapipe
            // and the Vulkan OpSRem rewrite differs from Nx for negative values.
            Op::Binary {
                op: BinaryOp::Remainder,
                ..
            } => ("remainder", "arith.remf/arith.remsi"),
            // GLSL.std.450 Pow is undefined for negative bases and x = 0, y <= 0.
            Op::Binary {
                op: BinaryOp::Pow,
                compute,
            } if compute.is_float() => ("pow", "spirv.GL.Pow"),
            // Vulkan allows GLSL.std.450 Asin/Acos errors around 1e-4 (lavapipe has them).
            Op::Unary(UnaryOp::Asin) => ("asin", "spirv.GL.Asin"),
            Op::Unary(UnaryOp::Acos) => ("acos", "spirv.GL.Acos"),
            // Its kernel (a loop-carried substitution inside a sequential
            // loop) is right at the GPU-dialect level but gives wrong values
            // after SPIR-V conversion on lavapipe; rejected until understood.
            Op::TriangularSolve { .. } => ("triangular_solve", "scf.for iter_args in SPIR-V"),
            _ => continue,
        };
        return Err(VulkanError::UnsupportedOp {
            mlir_op: why.into(),
            what: format!("`{op}` (in '{}', `{}`)", f.name, n.name),
            at: None,
        });
    }
    Ok(())
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

/// The same unsupported-kind error again (each call of a rejected function reports it).
fn repeat(e: &VulkanError) -> VulkanError {
    match e {
        VulkanError::Unsupported(m) => VulkanError::Unsupported(m.clone()),
        VulkanError::UnsupportedOp { mlir_op, what, at } => VulkanError::UnsupportedOp {
            mlir_op: mlir_op.clone(),
            what: what.clone(),
            at: at.clone(),
        },
        VulkanError::DeviceFeature(m) => VulkanError::DeviceFeature(m.clone()),
        VulkanError::TooManyWorkgroups(m) => VulkanError::TooManyWorkgroups(m.clone()),
        other => VulkanError::Internal(other.to_string()),
    }
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

struct Entry {
    name: String,
    params: Vec<(String, TensorType)>,
    results: Vec<TensorType>,
    /// The program that holds the function, or why it cannot run on Vulkan.
    program: Result<usize, VulkanError>,
}

/// A module compiled for one device, ready to call. Functions compile
/// together; when that fails on something Vulkan cannot do, each function
/// is compiled on its own, so that one unsupported function does not stop
/// the others (calling it reports the reason).
pub struct VulkanModule {
    gpu: Arc<Gpu>,
    programs: Vec<runtime::Program>,
    functions: Vec<Entry>,
}

impl VulkanModule {
    /// Compiles `mlir_text` (the frontend's lowering of `module`) for the
    /// process-wide default device. Fails when no function can run on it.
    pub fn compile(module: &Module, mlir_text: &str) -> Result<VulkanModule, VulkanError> {
        let gpu = Gpu::shared()?;
        let check = |f: &tensorc_ir::Function| -> Result<(), VulkanError> {
            reject_inexact_ops(f)?;
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
                    return Ok(VulkanModule {
                        gpu,
                        programs,
                        functions,
                    });
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
        Ok(VulkanModule {
            gpu,
            programs,
            functions,
        })
    }

    /// Loads a decoded `.tvk` artifact onto the process-wide default device
    /// (no MLIR involved). A function whose dtypes the device lacks is kept
    /// and reports why when called, as in `compile`; fails when none can run.
    pub fn from_artifact(artifact: Artifact) -> Result<VulkanModule, VulkanError> {
        let gpu = Gpu::shared()?;
        let mut programs = Vec::with_capacity(artifact.programs.len());
        for compiled in artifact.programs {
            programs.push(runtime::Program::new(&gpu, compiled)?);
        }
        let mut functions = Vec::with_capacity(artifact.functions.len());
        for f in artifact.functions {
            let program = f
                .dtypes
                .iter()
                .try_for_each(|&d| gpu.check_dtype(d))
                .map(|()| f.program);
            functions.push(Entry {
                name: f.name,
                results: f.result.flatten(),
                params: f.params,
                program,
            });
        }
        if functions.iter().all(|f| f.program.is_err()) {
            let first = functions.into_iter().find_map(|f| f.program.err());
            return Err(first
                .unwrap_or_else(|| VulkanError::Internal("an artifact without functions".into())));
        }
        Ok(VulkanModule {
            gpu,
            programs,
            functions,
        })
    }

    /// The device the module runs on.
    pub fn device_name(&self) -> &str {
        self.gpu.name()
    }

    /// Runs function `name`, writing its results into `outputs`.
    pub fn call(
        &self,
        name: &str,
        inputs: &[&Tensor],
        outputs: &mut [Tensor],
    ) -> Result<(), VulkanError> {
        let f = self
            .functions
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| VulkanError::Args(format!("no function named '{name}'")))?;
        let program = f.program.as_ref().map_err(repeat)?;
        if inputs.len() != f.params.len() {
            return Err(VulkanError::Args(format!(
                "'{name}' takes {} inputs, got {}",
                f.params.len(),
                inputs.len()
            )));
        }
        for (t, (p, ty)) in inputs.iter().zip(&f.params) {
            if t.ty() != ty {
                return Err(VulkanError::Args(format!(
                    "input '{p}' must be {ty}, got {}",
                    t.ty()
                )));
            }
        }
        if outputs.len() != f.results.len()
            || outputs.iter().zip(&f.results).any(|(o, r)| o.ty() != r)
        {
            return Err(VulkanError::Args(format!(
                "the outputs of '{name}' do not match its result types"
            )));
        }
        self.programs[*program].run(name, inputs, outputs)
    }
}

#[cfg(test)]
mod tests;

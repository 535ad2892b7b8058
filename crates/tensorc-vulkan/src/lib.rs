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
mod wrap;

pub use lower::{Limits, Upto};
pub use runtime::{Gpu, validation_messages};
pub use tensorc_mlir::FileLoc;
pub use schedule::{Buffer, BufferKind, Compiled, Kernel, Schedule, Step};

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
pub fn compile_kernels(module: &Module, mlir_text: &str, limits: &Limits) -> Result<Compiled, VulkanError> {
    // Larger workgroups (tiles) until every launch fits the device's
    // workgroup-count limit.
    let mut limits = *limits;
    let compiled = loop {
        match lower::lower(mlir_text, &limits, Upto::Binary) {
            Err(VulkanError::TooManyWorkgroups(_)) if limits.invocations * 2 <= limits.max_invocations => {
                limits.invocations *= 2;
            }
            other => break other?.1,
        }
    };
    let mut compiled = compiled.ok_or_else(|| VulkanError::Internal("no binary produced".into()))?;
    for s in &mut compiled.schedules {
        let f = module
            .functions
            .iter()
            .find(|f| f.name == s.function)
            .ok_or_else(|| VulkanError::Internal(format!("schedule for unknown function `{}`", s.function)))?;
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

/// Every dtype a function computes with (parameters, intermediates, results).
fn dtypes(module: &Module) -> Vec<DType> {
    let mut out: Vec<DType> = Vec::new();
    for f in &module.functions {
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
    }
    out
}

/// Ops whose SPIR-V lowering compiles but does not give Nx's results on
/// Vulkan are rejected up front, so that whatever runs is right.
fn reject_inexact_ops(module: &Module) -> Result<(), VulkanError> {
    use tensorc_ir::graph::{BinaryOp, Op};
    for f in &module.functions {
        for n in &f.nodes {
            if let Op::Binary { op: BinaryOp::Remainder, .. } = n.op {
                // OpFRem is imprecise for huge or infinite operands on lavapipe
                // and the Vulkan OpSRem rewrite differs from Nx for negative values.
                return Err(VulkanError::UnsupportedOp {
                    mlir_op: "arith.remf/arith.remsi".into(),
                    what: format!("`remainder` (in '{}', `{}`)", f.name, n.name),
                    at: None,
                });
            }
        }
    }
    Ok(())
}

/// A module compiled for one device, ready to call.
pub struct VulkanModule {
    gpu: Arc<Gpu>,
    program: runtime::Program,
    functions: Vec<(String, Vec<(String, TensorType)>, Vec<TensorType>)>,
}

impl VulkanModule {
    /// Compiles `mlir_text` (the frontend's lowering of `module`) for the
    /// process-wide default device.
    pub fn compile(module: &Module, mlir_text: &str) -> Result<VulkanModule, VulkanError> {
        reject_inexact_ops(module)?;
        let gpu = Gpu::shared()?;
        for d in dtypes(module) {
            gpu.check_dtype(d)?;
        }
        let compiled = compile_kernels(module, mlir_text, &gpu.limits())?;
        let program = runtime::Program::new(&gpu, compiled)?;
        let functions = module
            .functions
            .iter()
            .map(|f| (f.name.clone(), f.params.clone(), f.flat_results()))
            .collect();
        Ok(VulkanModule {
            gpu,
            program,
            functions,
        })
    }

    /// The device the module runs on.
    pub fn device_name(&self) -> &str {
        self.gpu.name()
    }

    /// Runs function `name`, writing its results into `outputs`.
    pub fn call(&self, name: &str, inputs: &[&Tensor], outputs: &mut [Tensor]) -> Result<(), VulkanError> {
        let (_, params, results) = self
            .functions
            .iter()
            .find(|f| f.0 == name)
            .ok_or_else(|| VulkanError::Args(format!("no function named '{name}'")))?;
        if inputs.len() != params.len() {
            return Err(VulkanError::Args(format!(
                "'{name}' takes {} inputs, got {}",
                params.len(),
                inputs.len()
            )));
        }
        for (t, (p, ty)) in inputs.iter().zip(params) {
            if t.ty() != ty {
                return Err(VulkanError::Args(format!("input '{p}' must be {ty}, got {}", t.ty())));
            }
        }
        if outputs.len() != results.len() || outputs.iter().zip(results).any(|(o, r)| o.ty() != r) {
            return Err(VulkanError::Args(format!("the outputs of '{name}' do not match its result types")));
        }
        self.program.run(name, inputs, outputs)
    }
}

#[cfg(test)]
mod tests;

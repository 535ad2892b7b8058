//! The Vulkan runtime, apart from the compiler: everything needed to load a
//! `.tvk` artifact and run it, with no MLIR or LLVM in the dependency graph
//! (only `tensorc-ir`, `ash` and `thiserror`; `crates/tensorc-ir/tests/tidy.rs`
//! keeps it that way).
//!
//! `schedule` is the compiled form of a module (SPIR-V words and host
//! schedules), `tvk` its file format, `runtime` the device side on `ash`
//! (libvulkan is loaded at run time), and `VulkanModule` ties compiled
//! programs to function signatures. `tensorc-vulkan` (the MLIR half) builds
//! the same types from source and re-exports all of this.

pub mod runtime;
pub mod schedule;
pub mod tvk;

pub use runtime::{Gpu, validation_messages};
pub use schedule::{Buffer, BufferKind, Compiled, Kernel, Schedule, Step};
pub use tvk::{Artifact, ArtifactError, ArtifactFunction};

use std::sync::Arc;
use tensorc_ir::{Tensor, TensorType};

/// A source position (`file`, 1-based line and column) an error points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLoc {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum VulkanError {
    /// MLIR rejected something tensorc produced (a tensorc bug) in `stage`;
    /// the compiler half turns its `MlirError`s into this, so that the
    /// runtime half needs no MLIR type.
    #[error("{message}")]
    Mlir { stage: String, message: String },
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
        at: Option<FileLoc>,
    },
    /// A kernel launch needs more workgroups than the device allows, even
    /// with the largest workgroups.
    #[error("the Vulkan target does not support {0}")]
    TooManyWorkgroups(String),
    /// The device lacks a feature a dtype needs.
    #[error("{0}")]
    DeviceFeature(String),
    /// A kernel may loop longer per invocation than the device's driver
    /// allows without ending the loops early (lavapipe's loop limiter);
    /// refused so that the caller never gets a wrong value.
    /// `bound` is the kernel's bound (`None`: unknown), `at` the statement
    /// of its dominant loop.
    #[error(
        "'{function}' cannot run on {device}: a kernel{} runs {}, more than this driver's limit of {limit} (the driver would silently stop the loops early and return wrong values); use another device or --target cpu",
        at.as_ref().map(|l| format!(" (the statement at {}:{}:{})", l.file, l.line, l.col)).unwrap_or_default(),
        bound.map(|n| format!("up to {n} loop iterations per invocation")).unwrap_or_else(|| "a number of loop iterations per invocation not known at compile time".to_owned())
    )]
    LoopLimit {
        function: String,
        device: String,
        bound: Option<u64>,
        limit: u64,
        at: Option<FileLoc>,
    },
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

/// What the lowering needs to know about the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Invocations per workgroup to start with (the tile size of the
    /// outermost parallel dimension).
    pub invocations: u32,
    /// The most invocations per workgroup the device allows
    /// (maxComputeWorkGroupInvocations and maxComputeWorkGroupSize); larger
    /// tiles are tried up to this when a launch needs too many workgroups.
    pub max_invocations: u32,
    /// maxComputeWorkGroupCount.
    pub max_groups: [u32; 3],
}

impl Default for Limits {
    /// Values every Vulkan device supports (the spec's required minimums),
    /// so code compiled without a device runs on any of them.
    fn default() -> Limits {
        Limits {
            invocations: 128,
            max_invocations: 128,
            max_groups: [65535; 3],
        }
    }
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

/// One function of a `VulkanModule`: its signature and where it runs.
pub struct Entry {
    pub name: String,
    pub params: Vec<(String, TensorType)>,
    pub results: Vec<TensorType>,
    /// The program that holds the function, or why it cannot run on Vulkan.
    pub program: Result<usize, VulkanError>,
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
    /// A module from programs already created on `gpu` and the functions
    /// they hold (what the compiler half builds after compiling).
    pub fn from_parts(
        gpu: Arc<Gpu>,
        programs: Vec<runtime::Program>,
        functions: Vec<Entry>,
    ) -> VulkanModule {
        VulkanModule {
            gpu,
            programs,
            functions,
        }
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

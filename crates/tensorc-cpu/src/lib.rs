//! The CPU back end: MLIR from the frontend to native code in this process.
//!
//! `lower` runs the optimization and CPU lowering pipelines on the frontend's
//! MLIR text (used both by the JIT and by `emit` of the intermediate stages);
//! `CpuModule` JIT-compiles the result and calls it with memref descriptors
//! that point at the caller's tensors (see `abi`); `cache` keeps that code
//! between runs as shared libraries, so a program compiles once.

pub mod abi;
pub mod aot;
pub mod cache;
mod jit;
pub mod runtime;
pub mod threads;

pub use jit::{CpuFunction, CpuModule};
pub use tensorc_mlir::{Mlir, MlirError, MlirModule};

/// Failures of the CPU back end.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// MLIR rejected something tensorc produced: a tensorc bug, with MLIR's diagnostics.
    #[error(transparent)]
    Mlir(#[from] MlirError),
    /// The caller's tensors do not match the function's signature.
    #[error("{0}")]
    Args(String),
    /// Generated code calls functions nothing provides.
    #[error("the generated code calls functions that are not available at run time: {}", .0.join(", "))]
    MissingSymbols(Vec<String>),
    /// The typed graph has a function the compiled code lacks.
    #[error(
        "the JIT could not produce code for `{0}` (an unresolved symbol in the generated code; \
         LLVM printed the name on stderr)"
    )]
    MissingEntry(String),
}

/// The two textual pass pipelines the CPU path runs, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipelines {
    /// Tensor-level optimization (the `opt` stage).
    pub opt: String,
    /// Bufferization and lowering to the LLVM dialect (the `llvm-dialect` stage).
    pub lowering: String,
    /// Steps appended to `lowering` when the code generator's target has
    /// AVX-512F (`for_target`); empty for none.
    pub avx512: String,
    /// The bufferization and lowering used instead of `lowering` when the
    /// code generator's target lacks AVX-512F (`for_target`): the same
    /// steps with register tiles for 16 ymm registers
    /// (`tensorc_passes::pipeline::VectorIsa`); empty to use `lowering`.
    pub narrow: String,
}

impl Pipelines {
    /// The simplest correct pipelines (cpu-pipeline.md §1.2): no tiling or
    /// vectorization, scalar loops. The reference point the real pipelines in
    /// `tensorc-passes` must agree with.
    pub fn naive() -> Pipelines {
        Pipelines {
            opt: "builtin.module(canonicalize,cse)".into(),
            lowering: NAIVE_LOWERING.into(),
            avx512: String::new(),
            narrow: String::new(),
        }
    }

    /// The pipelines to run for code generated for `target` (the host's
    /// triple and CPU by default): `lowering` ends with the `avx512` steps
    /// when LLVM compiles AVX-512F for that target
    /// (`tensorc_mlir::target_has_avx512`), and is `narrow` (when not empty)
    /// when it does not; `avx512` and `narrow` are then spent.
    pub fn for_target(&self, target: &tensorc_mlir::CodegenTarget<'_>) -> Pipelines {
        let mut p = self.clone();
        let wide = tensorc_mlir::target_has_avx512(target);
        if wide && !p.avx512.is_empty() {
            p.lowering = format!("{},{}", p.lowering, p.avx512);
        } else if !wide && !p.narrow.is_empty() {
            p.lowering = std::mem::take(&mut p.narrow);
        }
        p.avx512.clear();
        p.narrow.clear();
        p
    }
}

/// Bufferize (results written straight into the out-params), lower linalg to
/// loops and everything to the LLVM dialect. Temporaries are allocated
/// through the runtime's workspace (`use-generic-functions`, see
/// `runtime/tensorc_workspace.c`), as in the real pipeline.
pub const NAIVE_LOWERING: &str = "builtin.module(eliminate-empty-tensors,\
one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},\
drop-equivalent-buffer-results,buffer-deallocation-pipeline,convert-bufferization-to-memref,\
convert-linalg-to-loops,expand-strided-metadata,lower-affine,convert-scf-to-cf,\
finalize-memref-to-llvm{use-generic-functions=true use-aligned-alloc=true},convert-math-to-llvm,convert-to-llvm,reconcile-unrealized-casts)";

/// How far `lower` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upto {
    /// Parse and verify the frontend output only.
    Linalg,
    /// After the optimization pipeline.
    Opt,
    /// After lowering to the LLVM dialect.
    LlvmDialect,
}

/// Parses the frontend's MLIR, marks its tensor arguments read-only and runs
/// the pipelines up to `upto`, verifying after every step (a failure names
/// the stage and is a tensorc bug).
pub fn lower<'c>(
    mlir: &'c Mlir,
    text: &str,
    pipelines: &Pipelines,
    upto: Upto,
) -> Result<MlirModule<'c>, MlirError> {
    let mut m = mlir.parse(text, "lower")?;
    // Inputs are borrowed from the caller: bufferization must never write into them.
    mlir.mark_tensor_arguments_read_only(&mut m, "lower")?;
    if upto == Upto::Linalg {
        return Ok(m);
    }
    mlir.run_pipeline(&mut m, &pipelines.opt, "opt")?;
    if upto == Upto::Opt {
        return Ok(m);
    }
    mlir.run_pipeline(&mut m, &pipelines.lowering, "cpu-lowering")?;
    Ok(m)
}

#[cfg(test)]
mod tests;

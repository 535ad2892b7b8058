//! Lowering of the typed graph to MLIR (linalg, tensor, arith, math) as text.
//!
//! The frontend prints MLIR instead of building it through an MLIR binding so
//! that it stays LLVM-free: it builds and tests in seconds, and its output is
//! deterministic text that snapshot tests can review. `tensorc-mlir` parses
//! and verifies the text and runs the pass pipelines.
//!
//! ABI of every emitted entry point (one per `def`): the inputs as `tensor`
//! arguments, then one out-param `memref` per flattened result, no return
//! values; results are written with `bufferization.materialize_in_destination
//! ... restrict writable`, which lets bufferization compute straight into the
//! caller's buffers. Unsigned integers are signless `iN`; each op picks its
//! signedness from the dtype. Every op carries `loc("file":line:col)` of the
//! statement it came from.

mod conv;
mod conv_transposed;
mod control;
mod emit;
mod fastmath;
mod index;
mod linalg;
mod lower;
mod merge_sort;
mod radix_sort;
mod reduce;
mod scalar;
mod scan;
mod scatter;
mod top_k;

use std::fmt;

use tensorc_ir::graph::Module;
use tensorc_ir::span::SourceFile;

/// The unit attribute on `argmax`/`argmin`'s index reduction (the second of
/// `reduce.rs`'s two passes). It reads the first pass's result broadcast
/// along the reduced axis, which the reduction schedule's matchers refuse
/// (`tensorc-row-fuse-mark` gives short ones the schedule's tag; the same
/// string as `tensorc_passes::reduction_schedule::ARG_KEY`, checked by a test).
pub const ARG_KEY: &str = "tensorc.arg_key";

/// The unit attribute on a matrix product with few columns written as a
/// reduction over rows of A and of Bᵀ (`reduce.rs`, `narrow_product`):
/// `tensorc-row-fuse-mark` gives it the matrix-vector schedule (the same
/// string as `tensorc_passes::reduction_schedule::NARROW_KEY`).
pub const NARROW_KEY: &str = "tensorc.narrow_n";

/// Why a checked module could not be lowered. Every variant is a tensorc bug
/// or an unimplemented feature, never a user error: the checker has already
/// accepted the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LowerError {
    /// A construct the lowering does not handle yet.
    Unsupported(String),
    /// The graph broke an invariant the checker promises.
    Internal(String),
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LowerError::Unsupported(m) => write!(f, "lowering to MLIR: unsupported: {m}"),
            LowerError::Internal(m) => write!(f, "internal error in the MLIR lowering: {m}"),
        }
    }
}

impl std::error::Error for LowerError {}

/// The vector registers of the machine the code is for, as far as the
/// frontend needs them: a few lowerings keep their whole state in
/// registers and size it to fit (the lane-wise `argmax` scan's lanes,
/// `reduce.rs`). The frontend stays ISA-agnostic otherwise; the CPU
/// pipelines choose tiles per ISA themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VectorRegisters {
    /// Bytes per register.
    pub bytes: usize,
    /// Registers the code may use.
    pub count: usize,
}

impl VectorRegisters {
    /// AVX-512: 32 registers of 64 bytes.
    pub const AVX512: VectorRegisters = VectorRegisters { bytes: 64, count: 32 };
    /// AVX2 (and any narrower x86-64 or other target): 16 registers of 32 bytes.
    pub const AVX2: VectorRegisters = VectorRegisters { bytes: 32, count: 16 };
}

/// Lower every function of `module` to one MLIR module (text), shaped for
/// AVX-512 registers (`lower_for`): what the frontend's own tests and the
/// Vulkan target use.
pub fn lower(module: &Module, file: &SourceFile) -> Result<String, LowerError> {
    lower_for(module, file, VectorRegisters::AVX512)
}

/// Lower every function of `module` to one MLIR module (text) for a machine
/// with vector registers `regs`.
pub fn lower_for(module: &Module, file: &SourceFile, regs: VectorRegisters) -> Result<String, LowerError> {
    let mut l = lower::Lowerer::new(emit::Emitter::new(file), module, regs);
    for f in &module.functions {
        l.function(f)?;
    }
    let body = std::mem::take(&mut l.e.out);
    Ok(format!("module {{\n{body}}}\n"))
}

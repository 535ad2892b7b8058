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

use std::fmt;

use tensorc_ir::graph::Module;
use tensorc_ir::span::SourceFile;

/// The unit attribute on `argmax`/`argmin`'s index reduction (the second of
/// `reduce.rs`'s two passes). It reads the first pass's result broadcast
/// along the reduced axis, which the reduction schedule's matchers refuse
/// (`tensorc-row-fuse-mark` gives short ones the schedule's tag; the same
/// string as `tensorc_passes::reduction_schedule::ARG_KEY`, checked by a test).
pub const ARG_KEY: &str = "tensorc.arg_key";

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

/// Lower every function of `module` to one MLIR module (text).
pub fn lower(module: &Module, file: &SourceFile) -> Result<String, LowerError> {
    let mut l = lower::Lowerer::new(emit::Emitter::new(file), module);
    for f in &module.functions {
        l.function(f)?;
    }
    let body = std::mem::take(&mut l.e.out);
    Ok(format!("module {{\n{body}}}\n"))
}

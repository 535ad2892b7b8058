//! The `.nxir` language: types, syntax, checking and printing (spec §1–§5),
//! plus the `Tensor` value type and its `.npy` file format.
//!
//! Architecture Invariant: this crate depends on no LLVM, MLIR or Vulkan crate,
//! so the language and everything built only on it test in seconds.

pub mod ast;
pub mod check;
pub mod diag;
pub mod graph;
pub mod lexer;
pub mod npy;
pub mod parser;
pub mod printer;
pub mod random;
pub mod render;
pub mod span;
pub mod tensor;
pub mod types;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use graph::{Function, Module, Node, Op, ValueId};
pub use span::{SourceFile, Span};
pub use tensor::{Scalar, Tensor};
pub use types::{DType, TensorType, Type};

//! tensorc's own MLIR pass pipeline definitions (and, later, Rust-written
//! passes). This crate is LLVM-free: pipelines are strings that both
//! `mlir-opt` and `tensorc-mlir`'s in-process pass manager parse.

pub mod matmul_schedule;
pub mod pipeline;

pub use pipeline::{cpu_lowering_pipeline, full_cpu_pipeline, opt_pipeline};

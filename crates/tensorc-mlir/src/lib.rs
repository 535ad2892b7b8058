//! The one crate that talks to MLIR (melior / mlir-sys).

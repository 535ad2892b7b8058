//! Lowering of the typed graph to MLIR (linalg, tensor, arith, math) as text.

//! The f32 math functions the frontend writes out in `arith` ops (exp,
//! expm1, tanh, sigmoid, log, log1p, erf)
//! (`crates/tensorc-frontend/src/fastmath.rs`, so that they vectorize) on
//! the CPU against the interpreter, on the dense f32 sweep of the Vulkan
//! math tests (every exponent with several mantissas, both signs, subnormals,
//! a fine grid on [-4, 4], the special values), with the error bound in ulps
//! asserted. The op cases' tolerance (1e-5 relative) is much looser, and the
//! frontend's unit tests measure a Rust model of the steps, not the code
//! LLVM generates from them (FMAs, vector instructions).

use crate::vulkan_math::{f32_sweep, unary_on};
use tensorc::{DType, Target};

/// Bounds are the measured worst errors, rounded up; the interpreter is
/// libm's f32 function (or f64 rounded once).
#[test]
fn cpu_fastmath_sweeps_agree_with_the_interpreter() {
    let values = f32_sweep();
    let mut report = Vec::new();
    for (op, bound) in [("exp", 1), ("tanh", 3), ("sigmoid", 2), ("log", 1), ("log1p", 2), ("expm1", 3), ("erf", 1)] {
        let worst = unary_on(Target::Cpu, op, DType::F32, &values, bound);
        report.push(format!("{op}: {worst} ulps"));
    }
    eprintln!("cpu f32 math, worst errors: {}", report.join("; "));
}

//! The f32 math functions the frontend writes out in `arith` ops (exp,
//! expm1, tanh, sigmoid, log, log1p, erf)
//! (`crates/tensorc-frontend/src/fastmath.rs`, so that they vectorize), and
//! `sin`/`cos`/`tan`, which `tensorc-vector-trig` computes in vector arithmetic
//! for vectors of lanes below 2^19 (`passes/tensorc-passes/src/vector_trig.rs`), on
//! the CPU against the interpreter, on the dense f32 sweep of the Vulkan
//! math tests (every exponent with several mantissas, both signs, subnormals,
//! a fine grid on [-4, 4], the special values), with the error bound in ulps
//! asserted. The op cases' tolerance (1e-5 relative) is much looser, and the
//! frontend's unit tests measure a Rust model of the steps, not the code
//! LLVM generates from them (FMAs, vector instructions).

use crate::vulkan_math::{f32_sweep, unary_on};
use tensorc::{DType, Target};

/// Bounds are the measured worst errors, rounded up; the interpreter is
/// libm's f32 function (or f64 rounded once). `sinh`'s 2 ulps are the
/// interpreter's: at x = −0.8471 the compiled value is the correctly
/// rounded one (f64 `sinh` rounded once), the interpreter's is 2 ulps off.
#[test]
fn cpu_fastmath_sweeps_agree_with_the_interpreter() {
    let values = f32_sweep();
    let mut report = Vec::new();
    for (op, bound) in [("exp", 1), ("tanh", 3), ("sigmoid", 2), ("log", 1), ("log1p", 2), ("expm1", 3), ("erf", 1), ("sin", 1), ("cos", 1), ("tan", 1), ("atan", 1), ("asin", 1), ("acos", 1), ("sinh", 2), ("cosh", 2)] {
        let worst = unary_on(Target::Cpu, op, DType::F32, &values, bound);
        report.push(format!("{op}: {worst} ulps"));
    }
    eprintln!("cpu f32 math, worst errors: {}", report.join("; "));
}

/// `sin`, `cos` and `tan` where the reduction by π/2 is hardest: the f32 values
/// nearest to multiples of π/2 (and their neighbours) up to the expansion's
/// range, both sides of its bound 2^19, and ±0: within one ulp of the
/// interpreter (f64 `sin`/`cos` rounded once).
#[test]
fn cpu_sin_and_cos_near_multiples_of_half_pi() {
    let mut values = vec![0.0, -0.0];
    for k in (1..330_000i64).step_by(997).chain([1, 2, 3, 4, 255, 256, 4096, 65_535, 333_000]) {
        let x = (k as f64 * std::f64::consts::FRAC_PI_2) as f32;
        for y in [x, f32::from_bits(x.to_bits() - 1), f32::from_bits(x.to_bits() + 1)] {
            values.push(f64::from(y));
            values.push(-f64::from(y));
        }
    }
    let bound = 524_288f32;
    for y in [f32::from_bits(bound.to_bits() - 1), bound, f32::from_bits(bound.to_bits() + 1)] {
        values.push(f64::from(y));
        values.push(-f64::from(y));
    }
    for op in ["sin", "cos", "tan"] {
        unary_on(Target::Cpu, op, DType::F32, &values, 1);
    }
}

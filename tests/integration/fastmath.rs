//! The f32 math functions the frontend writes out in `arith` ops (exp,
//! expm1, tanh, sigmoid, log, log1p, erf, asinh, acosh, atanh, cbrt, and
//! the `log` inside `erf_inv`)
//! (`crates/tensorc-frontend/src/fastmath.rs`, so that they vectorize), and
//! `sin`/`cos`/`tan`, which `tensorc-vector-trig` computes in vector arithmetic
//! for vectors of lanes below 2^19 (`passes/tensorc-passes/src/vector_trig.rs`), on
//! the CPU against the interpreter, on the dense f32 sweep of the Vulkan
//! math tests (every exponent with several mantissas, both signs, subnormals,
//! a fine grid on [-4, 4], the special values), with the error bound in ulps
//! asserted. The op cases' tolerance (1e-5 relative) is much looser, and the
//! frontend's unit tests measure a Rust model of the steps, not the code
//! LLVM generates from them (FMAs, vector instructions).

use crate::vulkan_math::{asinh_of_huge_values, binary_on, f32_sweep, pair_values, unary_on};
use tensorc::{DType, Target};

/// Bounds are the measured worst errors, rounded up; the interpreter is
/// libm's f32 function (or f64 rounded once). `sinh`'s 2 ulps are the
/// interpreter's: at x = −0.8471 the compiled value is the correctly
/// rounded one (f64 `sinh` rounded once), the interpreter's is 2 ulps off.
/// `asinh`'s 3 are 1.8 of the expansion (its unit test's bound is 2 against
/// f64) and 1.2 of the interpreter's (Rust's f32 `asinh`) at x = −0.2252.
/// `erf_inv`'s 3 are Giles' f32 polynomial's own (the same with libm's
/// `log` inside, measured before the frontend's `log` replaced it).
#[test]
fn cpu_fastmath_sweeps_agree_with_the_interpreter() {
    let values = f32_sweep();
    let mut report = Vec::new();
    for (op, bound) in [("exp", 1), ("tanh", 3), ("sigmoid", 2), ("log", 1), ("log1p", 2), ("expm1", 3), ("erf", 1), ("sin", 1), ("cos", 1), ("tan", 1), ("atan", 1), ("asin", 1), ("acos", 1), ("sinh", 2), ("cosh", 2), ("asinh", 3), ("acosh", 2), ("atanh", 2), ("cbrt", 1), ("erf_inv", 3)] {
        // The interpreter's f32 `asinh` (Rust's) overflows to inf from
        // 2^127 on; those inputs are checked against ln 2|x| below.
        let values: Vec<f64> = values.iter().copied().filter(|v| op != "asinh" || !(v.abs() >= 2f64.powi(127))).collect();
        let worst = unary_on(Target::Cpu, op, DType::F32, &values, bound);
        report.push(format!("{op}: {worst} ulps"));
    }
    eprintln!("cpu f32 math, worst errors: {}", report.join("; "));
    asinh_of_huge_values(Target::Cpu);
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

/// `pow` and `atan2` of f32 vectors (`tensorc-vector-trig`'s f64
/// expansions) on every pair of the binary sweep's values (NaN, ±inf, ±0,
/// odd and even integers, subnormal to huge magnitudes), so every one of
/// C's special cases meets every other: within one ulp of the interpreter
/// (libm's `powf`/`atan2f`).
#[test]
fn cpu_pow_and_atan2_pair_sweeps_agree_with_the_interpreter() {
    let mut values = pair_values();
    // Magnitudes 1.31^k of both signs, for accuracy away from the specials.
    values.extend((-45..45).map(|k: i32| f64::from((1.31f64.powi(k) * if k % 2 == 0 { 1.0 } else { -1.0 }) as f32)));
    for op in ["pow", "atan2"] {
        let worst = binary_on(Target::Cpu, op, DType::F32, &values, 1);
        eprintln!("cpu f32 {op}, worst error over {} pairs: {worst} ulps", values.len() * values.len());
    }
}

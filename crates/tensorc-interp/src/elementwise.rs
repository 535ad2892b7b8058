//! Element-wise ops on single values: Nx's exact semantics, one function per op.
//!
//! Integers arrive as in-range `i128` values of the compute dtype and results
//! are wrapped back into it; floats arrive as `f64` values exactly
//! representable in the compute dtype and results are rounded back into it.
//! Math functions on f32 call Rust's f32 functions where they exist, so the
//! oracle matches what a libm-based f32 kernel computes.

use tensorc_ir::DType;
use tensorc_ir::graph::{BinaryOp, UnaryOp};

use crate::special;
use crate::value::{bit_pattern, round_to, wrap};

/// A unary op that keeps the operand's dtype, on an integer.
pub fn unary_int(op: UnaryOp, d: DType, x: i128) -> Option<i128> {
    use UnaryOp::*;
    let bits = d.bits();
    Some(match op {
        Negate => wrap(d, -x),
        Abs => wrap(d, x.abs()),
        Sign => x.signum(),
        Floor | Ceil | Round => x,
        BitwiseNot => wrap(d, !x),
        PopulationCount => bit_pattern(d, x).count_ones() as i128,
        CountLeadingZeros => {
            let p = bit_pattern(d, x);
            (bits - (128 - p.leading_zeros())) as i128
        }
        _ => return None,
    })
}

/// A unary op on a float of dtype `d` (for math ops `d` is the result float type).
pub fn unary_float(op: UnaryOp, d: DType, x: f64) -> Option<f64> {
    use UnaryOp::*;
    let r = match op {
        Negate => -x,
        Abs => x.abs(),
        // -1, 0 or 1; NaN stays NaN and a zero keeps its sign (as XLA's sign).
        Sign => {
            if x.is_nan() || x == 0.0 {
                x
            } else {
                1f64.copysign(x)
            }
        }
        Floor => x.floor(),
        Ceil => x.ceil(),
        // Rust's `round` is half away from zero, as Nx's.
        Round => x.round(),
        // Computed in f64 and rounded once: at least as accurate as any f32 kernel.
        Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Rsqrt => 1.0 / x.sqrt(),
        Erf => special::erf(x),
        Erfc => special::erfc(x),
        ErfInv => special::erf_inv(x),
        // std's formulas are inaccurate near ±1; ours are, for every width.
        Acosh => special::acosh(x),
        Atanh => special::atanh(x),
        _ => {
            if d == DType::F64 {
                math_f64(op, x)?
            } else {
                // f32, and f16/bf16 which compute in f32 and round.
                math_f32(op, x as f32)? as f64
            }
        }
    };
    Some(round_to(d, r))
}

fn math_f64(op: UnaryOp, x: f64) -> Option<f64> {
    use UnaryOp::*;
    Some(match op {
        Exp => x.exp(),
        Expm1 => x.exp_m1(),
        Log => x.ln(),
        Log1p => x.ln_1p(),
        Sin => x.sin(),
        Cos => x.cos(),
        Tan => x.tan(),
        Asin => x.asin(),
        Acos => x.acos(),
        Atan => x.atan(),
        Sinh => x.sinh(),
        Cosh => x.cosh(),
        Tanh => x.tanh(),
        Asinh => x.asinh(),
        Sqrt => x.sqrt(),
        Cbrt => x.cbrt(),
        _ => return None,
    })
}

fn math_f32(op: UnaryOp, x: f32) -> Option<f32> {
    use UnaryOp::*;
    Some(match op {
        Exp => x.exp(),
        Expm1 => x.exp_m1(),
        Log => x.ln(),
        Log1p => x.ln_1p(),
        Sin => x.sin(),
        Cos => x.cos(),
        Tan => x.tan(),
        Asin => x.asin(),
        Acos => x.acos(),
        Atan => x.atan(),
        Sinh => x.sinh(),
        Cosh => x.cosh(),
        Tanh => x.tanh(),
        Asinh => x.asinh(),
        Sqrt => x.sqrt(),
        Cbrt => x.cbrt(),
        _ => return None,
    })
}

/// `is_nan`, `is_infinity`, `logical_not` on a float: a 0/1 result.
pub fn predicate_float(op: UnaryOp, x: f64) -> Option<bool> {
    Some(match op {
        UnaryOp::IsNan => x.is_nan(),
        UnaryOp::IsInfinity => x.is_infinite(),
        UnaryOp::LogicalNot => x == 0.0,
        _ => return None,
    })
}

pub fn predicate_int(op: UnaryOp, x: i128) -> Option<bool> {
    Some(match op {
        UnaryOp::IsNan | UnaryOp::IsInfinity => false,
        UnaryOp::LogicalNot => x == 0,
        _ => return None,
    })
}

/// Integer `base^exp` with wrapping; a negative exponent gives 0 unless |base| = 1.
fn int_pow(d: DType, base: i128, exp: i128) -> i128 {
    if exp < 0 {
        return match base {
            1 => 1,
            -1 => {
                if exp % 2 == 0 {
                    1
                } else {
                    -1
                }
            }
            _ => 0,
        };
    }
    // Square-and-multiply; wrapping modulo 2^128 agrees with modulo 2^bits.
    let (mut acc, mut b, mut e) = (1i128, base, exp as u128);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.wrapping_mul(b);
        }
        b = b.wrapping_mul(b);
        e >>= 1;
    }
    wrap(d, acc)
}

/// A binary op on integers of compute dtype `d`. Predicates give 0/1.
pub fn binary_int(op: BinaryOp, d: DType, a: i128, b: i128) -> Option<i128> {
    use BinaryOp::*;
    let bits = d.bits() as i128;
    let flag = |c: bool| c as i128;
    Some(match op {
        Add => wrap(d, a + b),
        Subtract => wrap(d, a - b),
        Multiply => wrap(d, a.wrapping_mul(b)),
        Pow => int_pow(d, a, b),
        // C `%`: the sign of the dividend; x % 0 = x. (MIN % -1 is 0 in i128.)
        Remainder => {
            if b == 0 {
                a
            } else {
                a % b
            }
        }
        // Truncating; x / 0 is all ones (-1 signed); MIN / -1 wraps to MIN.
        Quotient => {
            if b == 0 {
                wrap(d, -1)
            } else {
                wrap(d, a / b)
            }
        }
        Min => a.min(b),
        Max => a.max(b),
        BitwiseAnd => wrap(d, a & b),
        BitwiseOr => wrap(d, a | b),
        BitwiseXor => wrap(d, a ^ b),
        LeftShift => {
            if (0..bits).contains(&b) {
                wrap(d, a << b)
            } else {
                0
            }
        }
        // Arithmetic for signed (values are sign-extended in i128), logical
        // for unsigned (values are non-negative). Out of range: all sign bits.
        RightShift => {
            if (0..bits).contains(&b) {
                a >> b
            } else if a < 0 {
                -1
            } else {
                0
            }
        }
        Equal => flag(a == b),
        NotEqual => flag(a != b),
        Less => flag(a < b),
        LessEqual => flag(a <= b),
        Greater => flag(a > b),
        GreaterEqual => flag(a >= b),
        LogicalAnd => flag(a != 0 && b != 0),
        LogicalOr => flag(a != 0 || b != 0),
        LogicalXor => flag((a != 0) != (b != 0)),
        // Float-only ops never reach here from a checked graph.
        Divide | Atan2 => return None,
    })
}

/// NaN-propagating maximum; +0 is above -0 (as `arith.maximumf`).
pub fn fmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() { b } else { a }
    } else {
        a.max(b)
    }
}

/// NaN-propagating minimum; -0 is below +0 (as `arith.minimumf`).
pub fn fmin(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() { a } else { b }
    } else {
        a.min(b)
    }
}

/// The result of a float binary op of compute dtype `d`. Predicates are 0.0/1.0.
pub fn binary_float(op: BinaryOp, d: DType, a: f64, b: f64) -> Option<f64> {
    use BinaryOp::*;
    let flag = |c: bool| if c { 1.0 } else { 0.0 };
    let narrow = d != DType::F64;
    let r = match op {
        Add => a + b,
        Subtract => a - b,
        Multiply => a * b,
        Divide => a / b,
        // fmod is exact, so computing it in f64 is exact for narrower types too.
        Remainder => a % b,
        Pow if narrow => (a as f32).powf(b as f32) as f64,
        Pow => a.powf(b),
        Atan2 if narrow => (a as f32).atan2(b as f32) as f64,
        Atan2 => a.atan2(b),
        Min => fmin(a, b),
        Max => fmax(a, b),
        // IEEE comparisons: false on NaN except `not_equal`.
        Equal => return Some(flag(a == b)),
        NotEqual => return Some(flag(a != b)),
        Less => return Some(flag(a < b)),
        LessEqual => return Some(flag(a <= b)),
        Greater => return Some(flag(a > b)),
        GreaterEqual => return Some(flag(a >= b)),
        // Nonzero (NaN included) is true.
        LogicalAnd => return Some(flag(a != 0.0 && b != 0.0)),
        LogicalOr => return Some(flag(a != 0.0 || b != 0.0)),
        LogicalXor => return Some(flag((a != 0.0) != (b != 0.0))),
        Quotient | BitwiseAnd | BitwiseOr | BitwiseXor | LeftShift | RightShift => return None,
    };
    Some(round_to(d, r))
}

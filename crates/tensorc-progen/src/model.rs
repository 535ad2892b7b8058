//! The numeric model that keeps generated programs free of legitimate
//! interpreter-vs-CPU disagreements.
//!
//! The reference interpreter and the compiled code agree bit for bit on
//! integer ops, on correctly rounded float ops (`+ - * /`, conversions,
//! `min`/`max`, data movement) of identical inputs, and on every
//! discontinuous op of identical inputs. They may differ by a few ulps on
//! math functions (libm vs. MLIR's polynomial approximations) and on float
//! reductions (summation order). The generator therefore tracks, for every
//! value, a conservative interval `[lo, hi]` holding all its elements and a
//! bound `err` on |interp − cpu|; `err == 0` means "bit-identical on both
//! sides". Discontinuous ops (comparisons, `floor`, float→int `as_type`,
//! `argmax`, …) are only applied to values with `err == 0`, math functions
//! only inside well-conditioned domains (operands are clipped into them), and
//! no op may push `err` past the dtype's budget — a fraction of the
//! tolerance the differential test compares with.

use tensorc_ir::DType;

/// Ulps a math function may differ by between two implementations.
pub const MATH_ULPS: f64 = 16.0;

/// Magnitudes beyond this are treated as "may overflow to infinity".
pub const HUGE: f64 = 1e30;

/// The tolerance the differential test compares results of this dtype with
/// (relative plus absolute, see `floats_agree` in the integration harness).
pub fn tolerance(d: DType) -> f64 {
    match d {
        DType::F64 => 1e-10,
        DType::F16 | DType::BF16 => 1e-2,
        _ => 1e-4,
    }
}

/// The largest `err` a generated value may carry: a third of the tolerance,
/// so the model's own slack (ulp counts are estimates) cannot cause failures.
/// A value that may leave the dtype's finite range gets no budget at all:
/// whether an inexact computation overflows to infinity depends on its
/// rounding (a sum may overflow in one order and not in another).
pub fn budget(d: DType, lo: f64, hi: f64) -> f64 {
    // NaN bounds count as unbounded.
    let m = max_abs(lo, hi);
    if d.is_float() && (m.is_nan() || m >= finite_limit(d)) {
        return 0.0;
    }
    tolerance(d) / 3.0 * (1.0 + min_abs(lo, hi))
}

/// The magnitude past which a value of float dtype `d` is treated as
/// possibly infinite: the dtype's largest finite value, capped at `HUGE`.
pub fn finite_limit(d: DType) -> f64 {
    match d {
        DType::F16 => 65504.0,
        _ => HUGE,
    }
}

/// Ulps a math function may differ by between two implementations of dtype
/// `d`. Half types are computed in f32 and rounded once, so two
/// implementations differ by at most one ulp of the half type.
pub fn math_ulps(d: DType) -> f64 {
    match d {
        DType::F16 | DType::BF16 => 2.0,
        _ => MATH_ULPS,
    }
}

/// `v` rounded to dtype `d` (to nearest even), as a literal of that dtype holds it.
pub fn round_to(d: DType, v: f64) -> f64 {
    use tensorc_ir::tensor::{f16_bits_to_f64, f32_to_bf16_bits, f64_to_f16_bits};
    match d {
        DType::F32 => v as f32 as f64,
        DType::F16 => f16_bits_to_f64(f64_to_f16_bits(v)),
        DType::BF16 => f32::from_bits((f32_to_bf16_bits(v as f32) as u32) << 16) as f64,
        _ => v,
    }
}

/// Whether a literal of value `v` is held exactly by float dtype `d` (and
/// is finite there), so the value the generator reasons about is the value
/// both implementations see.
pub fn exact_in(d: DType, v: f64) -> bool {
    let r = round_to(d, v);
    r == v && r.is_finite() && r.abs() < finite_limit(d)
}

/// Unit roundoff of a float dtype (0 for integers: they are exact).
pub fn unit(d: DType) -> f64 {
    match d {
        DType::F64 => f64::EPSILON / 2.0,
        DType::F32 => f32::EPSILON as f64 / 2.0,
        DType::F16 => 1.0 / 2048.0,
        DType::BF16 => 1.0 / 256.0,
        _ => 0.0,
    }
}

pub fn max_abs(lo: f64, hi: f64) -> f64 {
    lo.abs().max(hi.abs())
}

/// The smallest magnitude in `[lo, hi]`.
pub fn min_abs(lo: f64, hi: f64) -> f64 {
    if lo <= 0.0 && hi >= 0.0 {
        0.0
    } else {
        lo.abs().min(hi.abs())
    }
}

pub fn is_finite_range(lo: f64, hi: f64) -> bool {
    lo.is_finite() && hi.is_finite() && max_abs(lo, hi) < HUGE
}

/// A range made valid for its dtype: integers that may leave the dtype's
/// range may wrap anywhere in it; floats that may overflow become unbounded.
pub fn normalize(d: DType, lo: f64, hi: f64) -> (f64, f64) {
    if let Some((min, max)) = d.int_range() {
        let (min, max) = (min as f64, max as f64);
        if lo.is_nan() || hi.is_nan() || lo < min || hi > max {
            return (min, max);
        }
        return (lo.floor(), hi.ceil());
    }
    let lim = finite_limit(d);
    let lo = if lo.is_nan() || lo < -lim {
        f64::NEG_INFINITY
    } else {
        lo
    };
    let hi = if hi.is_nan() || hi > lim {
        f64::INFINITY
    } else {
        hi
    };
    (lo, hi)
}

/// Interval product (infinities make the result unbounded).
pub fn mul_range(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    if !is_finite_range(a.0, a.1) || !is_finite_range(b.0, b.1) {
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    let c = [a.0 * b.0, a.0 * b.1, a.1 * b.0, a.1 * b.1];
    (
        c.iter().copied().fold(f64::INFINITY, f64::min),
        c.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// A unary math function as the generator sees it: the domain its operand
/// is clipped into (bounds are dyadic, so exact in every float dtype), and
/// how to bound its image and its derivative on a sub-interval.
pub struct MathFn {
    pub name: &'static str,
    pub domain: (f64, f64),
    eval: Eval,
}

enum Eval {
    /// A smooth function `f64 -> f64` from std: image and slope are sampled.
    Std(fn(f64) -> f64),
    /// No std implementation (erf family): a fixed image and Lipschitz bound on the domain.
    Fixed { lo: f64, hi: f64, lip: f64 },
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn rsqrt(x: f64) -> f64 {
    1.0 / x.sqrt()
}

pub const MATH: &[MathFn] = &[
    MathFn {
        name: "exp",
        domain: (-4.0, 2.0),
        eval: Eval::Std(f64::exp),
    },
    MathFn {
        name: "expm1",
        domain: (-4.0, 2.0),
        eval: Eval::Std(f64::exp_m1),
    },
    MathFn {
        name: "log",
        domain: (0.25, 8.0),
        eval: Eval::Std(f64::ln),
    },
    MathFn {
        name: "log1p",
        domain: (-0.5, 8.0),
        eval: Eval::Std(f64::ln_1p),
    },
    MathFn {
        name: "sigmoid",
        domain: (-6.0, 6.0),
        eval: Eval::Std(sigmoid),
    },
    MathFn {
        name: "sin",
        domain: (-6.0, 6.0),
        eval: Eval::Std(f64::sin),
    },
    MathFn {
        name: "cos",
        domain: (-6.0, 6.0),
        eval: Eval::Std(f64::cos),
    },
    MathFn {
        name: "tan",
        domain: (-1.25, 1.25),
        eval: Eval::Std(f64::tan),
    },
    MathFn {
        name: "asin",
        domain: (-0.875, 0.875),
        eval: Eval::Std(f64::asin),
    },
    MathFn {
        name: "acos",
        domain: (-0.875, 0.875),
        eval: Eval::Std(f64::acos),
    },
    MathFn {
        name: "atan",
        domain: (-6.0, 6.0),
        eval: Eval::Std(f64::atan),
    },
    MathFn {
        name: "sinh",
        domain: (-3.0, 3.0),
        eval: Eval::Std(f64::sinh),
    },
    MathFn {
        name: "cosh",
        domain: (-3.0, 3.0),
        eval: Eval::Std(f64::cosh),
    },
    MathFn {
        name: "tanh",
        domain: (-6.0, 6.0),
        eval: Eval::Std(f64::tanh),
    },
    MathFn {
        name: "asinh",
        domain: (-6.0, 6.0),
        eval: Eval::Std(f64::asinh),
    },
    MathFn {
        name: "acosh",
        domain: (1.125, 8.0),
        eval: Eval::Std(f64::acosh),
    },
    MathFn {
        name: "atanh",
        domain: (-0.875, 0.875),
        eval: Eval::Std(f64::atanh),
    },
    MathFn {
        name: "sqrt",
        domain: (0.25, 16.0),
        eval: Eval::Std(f64::sqrt),
    },
    MathFn {
        name: "rsqrt",
        domain: (0.25, 16.0),
        eval: Eval::Std(rsqrt),
    },
    MathFn {
        name: "cbrt",
        domain: (0.25, 16.0),
        eval: Eval::Std(f64::cbrt),
    },
    // erf' = 2/sqrt(pi) e^(-x^2) <= 1.1284; erf_inv' = sqrt(pi)/2 e^(erf_inv(x)^2),
    // 3.43 at |x| = 0.875 (erf_inv(0.875) ~ 1.0848): bounds rounded up.
    MathFn {
        name: "erf",
        domain: (-6.0, 6.0),
        eval: Eval::Fixed {
            lo: -1.0,
            hi: 1.0,
            lip: 1.13,
        },
    },
    MathFn {
        name: "erfc",
        domain: (-6.0, 6.0),
        eval: Eval::Fixed {
            lo: 0.0,
            hi: 2.0,
            lip: 1.13,
        },
    },
    MathFn {
        name: "erf_inv",
        domain: (-0.875, 0.875),
        eval: Eval::Fixed {
            lo: -1.1,
            hi: 1.1,
            lip: 3.0,
        },
    },
];

impl MathFn {
    /// Image interval and Lipschitz bound of the function on `[lo, hi]`
    /// (a sub-interval of the domain). Sampling is fine here: every function
    /// is smooth and monotone or gently periodic on its domain, and both
    /// results are padded.
    pub fn image(&self, lo: f64, hi: f64) -> (f64, f64, f64) {
        match self.eval {
            Eval::Fixed { lo, hi, lip } => (lo, hi, lip),
            Eval::Std(f) => {
                const N: usize = 256;
                let (mut ilo, mut ihi, mut lip) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
                let h = ((hi - lo) / N as f64).max(1e-9);
                for i in 0..=N {
                    let x = lo + (hi - lo) * i as f64 / N as f64;
                    let y = f(x);
                    ilo = ilo.min(y);
                    ihi = ihi.max(y);
                    // One-sided difference quotients inside the interval.
                    let (a, b) = if x + h <= hi { (x, x + h) } else { (x - h, x) };
                    if a >= lo {
                        lip = lip.max(((f(b) - f(a)) / (b - a)).abs());
                    }
                }
                // Between samples a function with slope <= lip moves at most lip * h / 2.
                let lip = lip * 1.25 + 1e-3;
                let pad = lip * h / 2.0 + 1e-6 * (1.0 + max_abs(ilo, ihi));
                (ilo - pad, ihi + pad, lip)
            }
        }
    }
}

#[cfg(test)]
pub fn math_fn(name: &str) -> Option<&'static MathFn> {
    MATH.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_slopes_match_hand_values() {
        // exp on [0, 1]: image [1, e], slope at most e (padded).
        let (lo, hi, lip) = math_fn("exp").unwrap().image(0.0, 1.0);
        assert!(lo <= 1.0 && lo > 0.99 && (std::f64::consts::E..2.73).contains(&hi));
        assert!((std::f64::consts::E..4.0).contains(&lip));
        // sin on [-6, 6] covers [-1, 1]; slope at most 1.
        let (lo, hi, lip) = math_fn("sin").unwrap().image(-6.0, 6.0);
        assert!(lo <= -0.9999 && hi >= 0.9999 && (1.0..1.3).contains(&lip));
        // sqrt on [0.25, 16]: slope 1/(2 sqrt(0.25)) = 1 at the left end.
        let (lo, hi, lip) = math_fn("sqrt").unwrap().image(0.25, 16.0);
        assert!(lo <= 0.5 && hi >= 4.0 && (1.0..1.3).contains(&lip));
    }

    #[test]
    fn every_domain_bound_is_exact_in_f32() {
        for m in MATH {
            for b in [m.domain.0, m.domain.1] {
                assert_eq!(b as f32 as f64, b, "{}", m.name);
            }
        }
    }

    #[test]
    fn half_types_round_literals_and_overflow_early() {
        assert!(exact_in(DType::F16, 300.5) && !exact_in(DType::BF16, 300.5));
        assert_eq!(round_to(DType::BF16, 300.5), 300.0);
        assert!(!exact_in(DType::F16, 70000.0) && exact_in(DType::F32, 70000.0));
        assert_eq!(normalize(DType::F16, -1.0, 70000.0).1, f64::INFINITY);
        assert_eq!(budget(DType::F16, 0.0, 70000.0), 0.0);
        assert!(budget(DType::F32, 0.0, 70000.0) > 0.0);
    }

    #[test]
    fn normalize_wraps_and_overflows() {
        assert_eq!(normalize(DType::U8, -1.0, 3.0), (0.0, 255.0));
        assert_eq!(normalize(DType::S8, -3.0, 3.0), (-3.0, 3.0));
        assert_eq!(normalize(DType::F32, -1.0, 1e31).1, f64::INFINITY);
        assert_eq!(min_abs(-1.0, 2.0), 0.0);
        assert_eq!(min_abs(0.5, 2.0), 0.5);
    }
}

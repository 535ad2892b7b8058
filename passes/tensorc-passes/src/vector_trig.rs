//! `tensorc-vector-trig`: `math.sin`, `math.cos`, `math.tan` (and the other
//! functions below) of f32 vectors computed
//! in vector arithmetic when every lane is in range, with the libm call per
//! lane kept for the vectors that are not.
//!
//! Why: nothing lowers a vector `sin` or `cos` but `convert-math-to-libm`,
//! one `sinf` call per lane: `sin` over 4M f32 took 16 ms on one thread,
//! NumPy (its own vectorized `sin`) 3.7 ms; `tan` 36.7 ms against 1.5.
//!
//! How: each `math.sin`/`math.cos`/`math.tan` of a 1-D f32 vector becomes an `scf.if`
//! on whether some lane has `|x| ≥ 2^19` or is NaN. Those vectors keep the
//! op (libm per lane, exact for any argument: its reduction handles huge
//! ones); the others run the expansion below, whose ops are cloned from a
//! function written in MLIR text (`expansion`) into the branch. The
//! expansion works in f64: `k = roundeven(x · 2/π)`, `r = x − k·h − k·l`
//! with `h` π/2 rounded to 33 bits (so `k·h` is exact for `|k| < 2^20`,
//! which `|x| < 2^19` keeps) and `l` the f64 rest, then Taylor polynomials
//! of `sin r` and `cos r` on `|r| ≤ π/4` (truncation below 10^-11 relative)
//! and the quadrant `k mod 4` picking `±sin r` or `±cos r` (`tan`: `sin r /
//! cos r` or `−cos r / sin r` by the quadrant's parity); the result is
//! rounded to f32 once, so it is the correctly rounded value except within
//! about 10^-11 relative of a rounding boundary. `sin(±0)` returns the
//! zero itself (the reduction turns −0 into +0).
//!
//! `math.atan`, `math.asin`, `math.acos` (`inverse_expansion`),
//! `math.sinh` and `math.cosh` (`hyperbolic_expansion`) of 1-D f32 vectors
//! become their f64 expansion with no branch: it holds for every argument
//! (for 4M f32 `atan` took 40 ms, `sinh` 54 ms; NumPy 1.3 and 1.5).
//!
//! `math.powf` and `math.atan2` of two 1-D f32 vectors (`pow_expansion`,
//! `atan2_expansion`) likewise become f64 expansions with no branch, C's
//! special cases selected (4M f32: 25 and 91 ms as libm calls per lane;
//! NumPy 2.1 for both).
//!
//! It runs after `convert-vector-to-scf` (1-D vectors), before the math
//! lowerings.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::HashMap;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::VECTOR_TRIG;

/// Vectors with a lane of at least this magnitude (or NaN) call libm.
pub const RANGE: f64 = 524_288.0;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Compute f32 vector trigonometric, hyperbolic, pow and atan2 functions in vector arithmetic",
        &[DialectHandle::arith(), DialectHandle::scf()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { expand(module) };
            true
        },
    )
}

/// The functions this pass expands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Atan,
    Asin,
    Acos,
    Sinh,
    Cosh,
    Pow,
    Atan2,
}

impl Func {
    /// The `math` op it expands.
    pub fn op(self) -> &'static str {
        match self {
            Func::Sin => "math.sin",
            Func::Cos => "math.cos",
            Func::Tan => "math.tan",
            Func::Atan => "math.atan",
            Func::Asin => "math.asin",
            Func::Acos => "math.acos",
            Func::Sinh => "math.sinh",
            Func::Cosh => "math.cosh",
            Func::Pow => "math.powf",
            Func::Atan2 => "math.atan2",
        }
    }

    /// How many operands the op has.
    fn arity(self) -> usize {
        if matches!(self, Func::Pow | Func::Atan2) { 2 } else { 1 }
    }

    /// Whether some arguments must go to libm (the reduction by π/2 holds
    /// below `RANGE`); the other expansions hold everywhere.
    fn guarded(self) -> bool {
        matches!(self, Func::Sin | Func::Cos | Func::Tan)
    }

    /// Every function this pass expands.
    const ALL: [Func; 10] = [
        Func::Sin,
        Func::Cos,
        Func::Tan,
        Func::Atan,
        Func::Asin,
        Func::Acos,
        Func::Sinh,
        Func::Cosh,
        Func::Pow,
        Func::Atan2,
    ];
}

/// The expansion of `f` of a `vector<{n}xf32>` as a function `@f` in MLIR
/// text.
pub fn expansion(n: i64, f: Func) -> String {
    match f {
        Func::Sin | Func::Cos | Func::Tan => trig_expansion(n, f),
        Func::Atan | Func::Asin | Func::Acos => inverse_expansion(n, f),
        Func::Sinh | Func::Cosh => hyperbolic_expansion(n, f),
        Func::Pow => pow_expansion(n),
        Func::Atan2 => atan2_expansion(n),
    }
}

/// The expansion of `sin`, `cos` or `tan` (see the module comment).
fn trig_expansion(n: i64, f: Func) -> String {
    let cos = f == Func::Cos;
    let Start { t, d, i, mut s, .. } = Start::new(n);
    let c = |v: f64| f64_constant(v, &d);
    // Taylor coefficients of sin r / r and cos r in r², highest first.
    let sin: Vec<f64> = (0..6).rev().map(|j| sign(j) / factorial(2 * j + 1)).collect();
    let cosine: Vec<f64> = (0..7).rev().map(|j| sign(j) / factorial(2 * j)).collect();
    s.push_str(&format!("  %inv = {}\n", c(std::f64::consts::FRAC_2_PI)));
    s.push_str(&format!("  %kx = arith.mulf %xd, %inv : {d}\n"));
    s.push_str(&format!("  %k = math.roundeven %kx : {d}\n"));
    s.push_str(&format!("  %hi = {}\n", c(1.570_796_326_734_125_6)));
    s.push_str(&format!("  %lo = {}\n", c(6.077_100_506_506_192e-11)));
    s.push_str(&format!("  %kh = arith.mulf %k, %hi : {d}\n"));
    s.push_str(&format!("  %r1 = arith.subf %xd, %kh : {d}\n"));
    s.push_str(&format!("  %kl = arith.mulf %k, %lo : {d}\n"));
    s.push_str(&format!("  %r = arith.subf %r1, %kl : {d}\n"));
    s.push_str(&format!("  %r2 = arith.mulf %r, %r : {d}\n"));
    let sin_over_r = horner(&mut s, "s", "%r2", &sin, &d);
    s.push_str(&format!("  %sin = arith.mulf {sin_over_r}, %r : {d}\n"));
    let cos_r = horner(&mut s, "c", "%r2", &cosine, &d);
    s.push_str(&format!("  %ki = arith.fptosi %k : {d} to {i}\n"));
    let shift = if cos { 1 } else { 0 };
    s.push_str(&format!("  %shift = arith.constant dense<{shift}> : {i}\n"));
    s.push_str(&format!("  %q = arith.addi %ki, %shift : {i}\n"));
    s.push_str(&format!("  %one = arith.constant dense<1> : {i}\n"));
    s.push_str(&format!("  %two = arith.constant dense<2> : {i}\n"));
    s.push_str(&format!("  %zero = arith.constant dense<0> : {i}\n"));
    s.push_str(&format!("  %odd = arith.andi %q, %one : {i}\n"));
    s.push_str(&format!("  %swap = arith.cmpi ne, %odd, %zero : {i}\n"));
    s.push_str(&format!("  %half = arith.andi %q, %two : {i}\n"));
    s.push_str(&format!("  %flip = arith.cmpi ne, %half, %zero : {i}\n"));
    if f == Func::Tan {
        // tan x = sin r / cos r in even quadrants, −cos r / sin r in odd.
        s.push_str(&format!("  %sc = arith.divf %sin, {cos_r} : {d}\n"));
        s.push_str(&format!("  %cs = arith.divf {cos_r}, %sin : {d}\n"));
        s.push_str(&format!("  %ncs = arith.negf %cs : {d}\n"));
        s.push_str(&format!("  %w = arith.select %swap, %ncs, %sc : vector<{n}xi1>, {d}\n"));
    } else {
        s.push_str(&format!("  %v = arith.select %swap, {cos_r}, %sin : vector<{n}xi1>, {d}\n"));
        s.push_str(&format!("  %nv = arith.negf %v : {d}\n"));
        s.push_str(&format!("  %w = arith.select %flip, %nv, %v : vector<{n}xi1>, {d}\n"));
    }
    s.push_str(&format!("  %y = arith.truncf %w : {d} to {t}\n"));
    if cos {
        s.push_str(&format!("  return %y : {t}\n}}\n"));
    } else {
        // `r = x - k·h` is +0 for x = -0 (−0 − (−0) = +0): zeros are their
        // own sine and tangent.
        s.push_str(&format!("  %fz = arith.constant dense<0.0> : {t}\n"));
        s.push_str(&format!("  %isz = arith.cmpf oeq, %x, %fz : {t}\n"));
        s.push_str(&format!("  %z = arith.select %isz, %x, %y : vector<{n}xi1>, {t}\n"));
        s.push_str(&format!("  return %z : {t}\n}}\n"));
    }
    s
}

/// The terms of atan's Taylor series kept on `|t| ≤ tan(π/12)` (the last
/// dropped term, `t^19/19`, is below 10^-12).
const ATAN_TERMS: usize = 9;

/// The expansion of `atan`, `asin` or `acos` of a `vector<{n}xf32>` as a
/// function `@f` in MLIR text, in f64: `asin x = atan(x / √(1 − x²))`
/// (exact operands for f32 `x`; `±1` gives `±π/2` through `x/0 = ±∞`,
/// `|x| > 1` NaN through the square root), `acos x = π/2 − asin x`. `atan`
/// reduces `|x|` to at most 1 (`π/2 − atan(1/|x|)`; `∞` gives `π/2`), then
/// to `|t| ≤ tan(π/12)` (`π/6 + atan((t√3 − 1)/(t + √3))`), sums the Taylor
/// series and takes `x`'s sign (`copysign`: `atan(−0) = −0`). NaN
/// propagates through every step, so no lane needs libm.
fn inverse_expansion(n: i64, f: Func) -> String {
    let Start { t, d, b, mut s, .. } = Start::new(n);
    let c = |v: f64| f64_constant(v, &d);
    s.push_str(&format!("  %one = {}\n", c(1.0)));
    s.push_str(&format!("  %half_pi = {}\n", c(std::f64::consts::FRAC_PI_2)));
    let arg = if f == Func::Atan {
        "%xd"
    } else {
        s.push_str(&format!("  %sq = arith.mulf %xd, %xd : {d}\n"));
        s.push_str(&format!("  %omsq = arith.subf %one, %sq : {d}\n"));
        s.push_str(&format!("  %root = math.sqrt %omsq : {d}\n"));
        s.push_str(&format!("  %ratio = arith.divf %xd, %root : {d}\n"));
        "%ratio"
    };
    s.push_str(&format!("  %ax = math.absf {arg} : {d}\n"));
    s.push_str(&format!("  %inv = arith.cmpf ogt, %ax, %one : {d}\n"));
    s.push_str(&format!("  %rec = arith.divf %one, %ax : {d}\n"));
    s.push_str(&format!("  %t0 = arith.select %inv, %rec, %ax : {b}, {d}\n"));
    atan_unit(&mut s, "%t0", "%a1", &d, &b);
    s.push_str(&format!("  %comp = arith.subf %half_pi, %a1 : {d}\n"));
    s.push_str(&format!("  %a2 = arith.select %inv, %comp, %a1 : {b}, {d}\n"));
    s.push_str(&format!("  %signed = math.copysign %a2, {arg} : {d}\n"));
    let result = if f == Func::Acos {
        s.push_str(&format!("  %acos = arith.subf %half_pi, %signed : {d}\n"));
        "%acos"
    } else {
        "%signed"
    };
    s.push_str(&format!("  %y = arith.truncf {result} : {d} to {t}\n  return %y : {t}\n}}\n"));
    s
}

/// Appends `{out} = atan({t})` for `{t}` in [0, 1] (f64 vectors `d`, i1
/// vectors `b`; `%one` defined): above `tan(π/12)` by `π/6 + atan((t√3 −
/// 1)/(t + √3))`, then the Taylor series.
fn atan_unit(s: &mut String, t: &str, out: &str, d: &str, b: &str) {
    let c = |v: f64| f64_constant(v, d);
    s.push_str(&format!("  %tan12 = {}\n", c(0.267_949_192_431_122_7)));
    s.push_str(&format!("  %big = arith.cmpf ogt, {t}, %tan12 : {d}\n"));
    s.push_str(&format!("  %sqrt3 = {}\n", c(3f64.sqrt())));
    s.push_str(&format!("  %u = arith.mulf {t}, %sqrt3 : {d}\n"));
    s.push_str(&format!("  %num = arith.subf %u, %one : {d}\n"));
    s.push_str(&format!("  %den = arith.addf {t}, %sqrt3 : {d}\n"));
    s.push_str(&format!("  %shifted = arith.divf %num, %den : {d}\n"));
    s.push_str(&format!("  %r = arith.select %big, %shifted, {t} : {b}, {d}\n"));
    s.push_str(&format!("  %r2 = arith.mulf %r, %r : {d}\n"));
    let coeffs: Vec<f64> = (0..ATAN_TERMS).rev().map(|j| sign(j) / (2 * j + 1) as f64).collect();
    let p = horner(s, "p", "%r2", &coeffs, d);
    s.push_str(&format!("  %at = arith.mulf {p}, %r : {d}\n"));
    s.push_str(&format!("  %sixth_pi = {}\n", c(std::f64::consts::FRAC_PI_6)));
    s.push_str(&format!("  %at6 = arith.addf %at, %sixth_pi : {d}\n"));
    s.push_str(&format!("  {out} = arith.select %big, %at6, %at : {b}, {d}\n"));
}

/// The expansion of `atan2(x, y)` (the angle of the point `(y, x)`: `x` is
/// the ordinate, as in the op's operand order) of two `vector<{n}xf32>` as
/// a function `@f` in MLIR text, in f64: `atan` of `min(|x|, |y|) /
/// max(|x|, |y|)` (two infinities give 1) by `atan_unit`, `π/2 −` it when
/// `|x| > |y|`, `π −` that when `y`'s sign bit is set, then `x`'s sign.
/// Zero over zero is NaN here; the frontend selects C's signed results for
/// it around the op. NaN propagates (`minimumf`/`maximumf` keep it).
fn atan2_expansion(n: i64) -> String {
    let Start { t, d, b, mut s, .. } = Start::binary(n);
    let c = |v: f64| f64_constant(v, &d);
    s.push_str(&format!("  %one = {}\n", c(1.0)));
    s.push_str(&format!("  %ax = math.absf %xd : {d}\n"));
    s.push_str(&format!("  %ay = math.absf %yd : {d}\n"));
    s.push_str(&format!("  %lo = arith.minimumf %ax, %ay : {d}\n"));
    s.push_str(&format!("  %hi = arith.maximumf %ax, %ay : {d}\n"));
    s.push_str(&format!("  %q = arith.divf %lo, %hi : {d}\n"));
    s.push_str(&format!("  %inf = {}\n", c(f64::INFINITY)));
    s.push_str(&format!("  %lo_inf = arith.cmpf oeq, %lo, %inf : {d}\n"));
    s.push_str(&format!("  %t0 = arith.select %lo_inf, %one, %q : {b}, {d}\n"));
    atan_unit(&mut s, "%t0", "%a1", &d, &b);
    s.push_str(&format!("  %half_pi = {}\n", c(std::f64::consts::FRAC_PI_2)));
    s.push_str(&format!("  %steep = arith.cmpf ogt, %ax, %ay : {d}\n"));
    s.push_str(&format!("  %comp = arith.subf %half_pi, %a1 : {d}\n"));
    s.push_str(&format!("  %a2 = arith.select %steep, %comp, %a1 : {b}, {d}\n"));
    s.push_str(&format!("  %pi = {}\n", c(std::f64::consts::PI)));
    s.push_str(&format!("  %ys = math.copysign %one, %yd : {d}\n"));
    s.push_str(&format!("  %zero = {}\n", c(0.0)));
    s.push_str(&format!("  %left = arith.cmpf olt, %ys, %zero : {d}\n"));
    s.push_str(&format!("  %back = arith.subf %pi, %a2 : {d}\n"));
    s.push_str(&format!("  %a3 = arith.select %left, %back, %a2 : {b}, {d}\n"));
    s.push_str(&format!("  %signed = math.copysign %a3, %xd : {d}\n"));
    s.push_str(&format!("  %z = arith.truncf %signed : {d} to {t}\n  return %z : {t}\n}}\n"));
    s
}

/// The terms of `ln m = 2·atanh(s)`'s series kept for `s = (m − 1)/(m + 1)`,
/// `m` in [√½, √2) (|s| ≤ 0.172; the first dropped term, `s^19/19`, is
/// below 10^-15 of `s`).
const LOG_TERMS: usize = 9;

/// The expansion of `pow(x, y)` of two `vector<{n}xf32>` as a function `@f`
/// in MLIR text, in f64: `e^{y·ln|x|}` (`ln` from the exponent bits and
/// `2·atanh(s)`'s series, `e^t` by `exp_of` with `t` clamped to ±200: f64 keeps `y·ln|x|` accurate however large `y` is),
/// rounded to f32 once; then C's rules: the sign of a negative `x` (sign
/// bit, so −0 too) raised to an odd integer, NaN for a finite negative `x`
/// and a non-integer `y`, 1 for `y = ±0`, `x = 1` and `x = −1` with `y =
/// ±inf`, NaN for any other NaN operand; zeros and infinities follow from
/// `ln 0 = −inf`, `ln inf = inf` and `e^{±inf}`.
fn pow_expansion(n: i64) -> String {
    let Start { t, d, b, i, mut s } = Start::binary(n);
    let c = |v: f64| f64_constant(v, &d);
    let int = |v: i64| format!("arith.constant dense<{v}> : {i}");
    s.push_str(&format!("  %one = {}\n", c(1.0)));
    s.push_str(&format!("  %ax = math.absf %xd : {d}\n"));
    // |x| = 2^k·m, m in [√½, √2): shifting the bits by those of √½ puts
    // the exponent's boundary there (f32 subnormals are normal in f64).
    s.push_str(&format!("  %bits = arith.bitcast %ax : {d} to {i}\n"));
    s.push_str(&format!("  %off = {}\n", int(std::f64::consts::FRAC_1_SQRT_2.to_bits() as i64)));
    s.push_str(&format!("  %ix = arith.subi %bits, %off : {i}\n"));
    s.push_str(&format!("  %c52 = {}\n", int(52)));
    s.push_str(&format!("  %k = arith.shrsi %ix, %c52 : {i}\n"));
    s.push_str(&format!("  %mask = {}\n", int((1i64 << 52) - 1)));
    s.push_str(&format!("  %mant = arith.andi %ix, %mask : {i}\n"));
    s.push_str(&format!("  %mbits = arith.addi %mant, %off : {i}\n"));
    s.push_str(&format!("  %m = arith.bitcast %mbits : {i} to {d}\n"));
    s.push_str(&format!("  %f = arith.subf %m, %one : {d}\n"));
    s.push_str(&format!("  %mp1 = arith.addf %m, %one : {d}\n"));
    s.push_str(&format!("  %sl = arith.divf %f, %mp1 : {d}\n"));
    s.push_str(&format!("  %sl2 = arith.mulf %sl, %sl : {d}\n"));
    let coeffs: Vec<f64> = (0..LOG_TERMS).rev().map(|j| 2.0 / (2 * j + 1) as f64).collect();
    let p = horner(&mut s, "l", "%sl2", &coeffs, &d);
    s.push_str(&format!("  %lm = arith.mulf {p}, %sl : {d}\n"));
    s.push_str(&format!("  %kf = arith.sitofp %k : {i} to {d}\n"));
    s.push_str(&format!("  %ln2 = {}\n", c(std::f64::consts::LN_2)));
    s.push_str(&format!("  %kl = arith.mulf %kf, %ln2 : {d}\n"));
    s.push_str(&format!("  %lx0 = arith.addf %kl, %lm : {d}\n"));
    s.push_str(&format!("  %zero = {}\n", c(0.0)));
    s.push_str(&format!("  %inf = {}\n", c(f64::INFINITY)));
    s.push_str(&format!("  %ninf = {}\n", c(f64::NEG_INFINITY)));
    s.push_str(&format!("  %is0 = arith.cmpf oeq, %ax, %zero : {d}\n"));
    s.push_str(&format!("  %lx1 = arith.select %is0, %ninf, %lx0 : {b}, {d}\n"));
    s.push_str(&format!("  %isinf = arith.cmpf oeq, %ax, %inf : {d}\n"));
    s.push_str(&format!("  %lx2 = arith.select %isinf, %inf, %lx1 : {b}, {d}\n"));
    // A NaN's bits read as a finite logarithm: keep the NaN.
    s.push_str(&format!("  %xnan = arith.cmpf uno, %ax, %ax : {d}\n"));
    s.push_str(&format!("  %lx = arith.select %xnan, %ax, %lx2 : {b}, {d}\n"));
    s.push_str(&format!("  %tt = arith.mulf %yd, %lx : {d}\n"));
    s.push_str(&format!("  %lim = {}\n", c(200.0)));
    s.push_str(&format!("  %nlim = {}\n", c(-200.0)));
    s.push_str(&format!("  %hi_c = arith.minimumf %tt, %lim : {d}\n"));
    s.push_str(&format!("  %tc = arith.maximumf %hi_c, %nlim : {d}\n"));
    let e = exp_of(&mut s, "e", "%tc", &d, &i);
    // The sign and C's special cases.
    s.push_str(&format!("  %yr = math.roundeven %yd : {d}\n"));
    s.push_str(&format!("  %yint = arith.cmpf oeq, %yr, %yd : {d}\n"));
    s.push_str(&format!("  %half = {}\n", c(0.5)));
    s.push_str(&format!("  %yh = arith.mulf %yd, %half : {d}\n"));
    s.push_str(&format!("  %yhr = math.roundeven %yh : {d}\n"));
    s.push_str(&format!("  %yheven = arith.cmpf one, %yhr, %yh : {d}\n"));
    s.push_str(&format!("  %yodd = arith.andi %yint, %yheven : {b}\n"));
    s.push_str(&format!("  %xs = math.copysign %one, %xd : {d}\n"));
    s.push_str(&format!("  %xneg = arith.cmpf olt, %xs, %zero : {d}\n"));
    s.push_str(&format!("  %flip = arith.andi %xneg, %yodd : {b}\n"));
    s.push_str(&format!("  %ne = arith.negf {e} : {d}\n"));
    s.push_str(&format!("  %r1 = arith.select %flip, %ne, {e} : {b}, {d}\n"));
    s.push_str(&format!("  %nan = {}\n", c(f64::NAN)));
    s.push_str(&format!("  %tnan = arith.cmpf uno, %tt, %tt : {d}\n"));
    s.push_str(&format!("  %r2 = arith.select %tnan, %nan, %r1 : {b}, {d}\n"));
    s.push_str(&format!("  %xlt = arith.cmpf olt, %xd, %zero : {d}\n"));
    s.push_str(&format!("  %xfin = arith.cmpf ogt, %xd, %ninf : {d}\n"));
    s.push_str(&format!("  %notint = arith.cmpf une, %yr, %yd : {d}\n"));
    s.push_str(&format!("  %bad0 = arith.andi %xlt, %xfin : {b}\n"));
    s.push_str(&format!("  %bad = arith.andi %bad0, %notint : {b}\n"));
    s.push_str(&format!("  %r3 = arith.select %bad, %nan, %r2 : {b}, {d}\n"));
    s.push_str(&format!("  %y0 = arith.cmpf oeq, %yd, %zero : {d}\n"));
    s.push_str(&format!("  %x1 = arith.cmpf oeq, %xd, %one : {d}\n"));
    s.push_str(&format!("  %ax1 = arith.cmpf oeq, %ax, %one : {d}\n"));
    s.push_str(&format!("  %ay = math.absf %yd : {d}\n"));
    s.push_str(&format!("  %yinf = arith.cmpf oeq, %ay, %inf : {d}\n"));
    s.push_str(&format!("  %m1inf = arith.andi %ax1, %yinf : {b}\n"));
    s.push_str(&format!("  %u0 = arith.ori %y0, %x1 : {b}\n"));
    s.push_str(&format!("  %unit = arith.ori %u0, %m1inf : {b}\n"));
    s.push_str(&format!("  %r4 = arith.select %unit, %one, %r3 : {b}, {d}\n"));
    s.push_str(&format!("  %z = arith.truncf %r4 : {d} to {t}\n  return %z : {t}\n}}\n"));
    s
}

/// The terms of exp's Taylor series kept on `|r| ≤ ln 2 / 2` (the first
/// dropped, `r^11/11!`, is below 10^-12).
const EXP_TERMS: usize = 11;

/// The expansion of `sinh` or `cosh` of a `vector<{n}xf32>` as a function
/// `@f` in MLIR text, in f64: `x` clamped to `±100` (beyond ±89.5 the f32
/// result is infinite either way, and the clamp keeps the integer steps
/// defined for ±∞), `e^x` and `e^−x` as `2^k · e^r` (`k = roundeven(x /
/// ln 2)`, `r = x − k·ln 2` in two parts, Taylor series, `2^k` built in the
/// exponent bits), then their half difference or half sum. For `|x| <
/// 2^−12` `sinh x` is `x + x³/6` (the difference would cancel; `sinh(−0)`
/// is −0). NaN lanes return `x`.
fn hyperbolic_expansion(n: i64, f: Func) -> String {
    let Start { t, d, b, i, mut s } = Start::new(n);
    let c = |v: f64| f64_constant(v, &d);
    s.push_str(&format!("  %lim = {}\n", c(100.0)));
    s.push_str(&format!("  %nlim = {}\n", c(-100.0)));
    s.push_str(&format!("  %hi_c = arith.minimumf %xd, %lim : {d}\n"));
    s.push_str(&format!("  %xc = arith.maximumf %hi_c, %nlim : {d}\n"));
    let pexp = exp_of(&mut s, "p", "%xc", &d, &i);
    s.push_str(&format!("  %nx = arith.negf %xc : {d}\n"));
    let mexp = exp_of(&mut s, "m", "%nx", &d, &i);
    s.push_str(&format!("  %half = {}\n", c(0.5)));
    let y = if f == Func::Cosh {
        s.push_str(&format!("  %sum = arith.addf {pexp}, {mexp} : {d}\n"));
        s.push_str(&format!("  %h = arith.mulf %sum, %half : {d}\n"));
        "%h"
    } else {
        s.push_str(&format!("  %diff = arith.subf {pexp}, {mexp} : {d}\n"));
        s.push_str(&format!("  %hd = arith.mulf %diff, %half : {d}\n"));
        s.push_str(&format!("  %x3 = arith.mulf %xd, %xd : {d}\n"));
        s.push_str(&format!("  %sixth = {}\n", c(1.0 / 6.0)));
        s.push_str(&format!("  %x3s = arith.mulf %x3, %sixth : {d}\n"));
        s.push_str(&format!("  %x3x = arith.mulf %x3s, %xd : {d}\n"));
        s.push_str(&format!("  %small_v = arith.addf %xd, %x3x : {d}\n"));
        s.push_str(&format!("  %ax = math.absf %xd : {d}\n"));
        s.push_str(&format!("  %tiny = {}\n", c(1.0 / 4096.0)));
        s.push_str(&format!("  %is_small = arith.cmpf olt, %ax, %tiny : {d}\n"));
        s.push_str(&format!("  %sh_v = arith.select %is_small, %small_v, %hd : {b}, {d}\n"));
        "%sh_v"
    };
    s.push_str(&format!("  %y = arith.truncf {y} : {d} to {t}\n"));
    s.push_str(&format!("  %nan = arith.cmpf uno, %x, %x : {t}\n"));
    s.push_str(&format!("  %z = arith.select %nan, %x, %y : vector<{n}xi1>, {t}\n"));
    s.push_str(&format!("  return %z : {t}\n}}\n"));
    s
}

/// Appends `e^{arg}` for f64 vectors `d` (i64 vectors `i`) with `|arg|`
/// at most 700 (callers clamp, so `2^k` is a normal f64): `2^k · e^r`,
/// `k = roundeven(arg / ln 2)`, `r = arg − k·ln 2` in two parts, the
/// Taylor series of `e^r`, `2^k` built in the exponent bits; its values
/// are named `%{name}…`. Returns the result's name.
fn exp_of(s: &mut String, name: &str, arg: &str, d: &str, i: &str) -> String {
    let c = |v: f64| f64_constant(v, d);
    let coeffs: Vec<f64> = (0..EXP_TERMS).rev().map(|j| 1.0 / factorial(j)).collect();
    s.push_str(&format!("  %{name}inv = {}\n", c(std::f64::consts::LOG2_E)));
    s.push_str(&format!("  %{name}kx = arith.mulf {arg}, %{name}inv : {d}\n"));
    s.push_str(&format!("  %{name}k = math.roundeven %{name}kx : {d}\n"));
    s.push_str(&format!("  %{name}ln2hi = {}\n", c(0.693_147_180_369_123_8)));
    s.push_str(&format!("  %{name}ln2lo = {}\n", c(1.908_214_929_270_587_7e-10)));
    s.push_str(&format!("  %{name}a = arith.mulf %{name}k, %{name}ln2hi : {d}\n"));
    s.push_str(&format!("  %{name}r1 = arith.subf {arg}, %{name}a : {d}\n"));
    s.push_str(&format!("  %{name}b = arith.mulf %{name}k, %{name}ln2lo : {d}\n"));
    s.push_str(&format!("  %{name}r = arith.subf %{name}r1, %{name}b : {d}\n"));
    let e = horner(s, &format!("{name}e"), &format!("%{name}r"), &coeffs, &d);
    s.push_str(&format!("  %{name}ki = arith.fptosi %{name}k : {d} to {i}\n"));
    s.push_str(&format!("  %{name}bias = arith.constant dense<1023> : {i}\n"));
    s.push_str(&format!("  %{name}eb = arith.addi %{name}ki, %{name}bias : {i}\n"));
    s.push_str(&format!("  %{name}sh = arith.constant dense<52> : {i}\n"));
    s.push_str(&format!("  %{name}bits = arith.shli %{name}eb, %{name}sh : {i}\n"));
    s.push_str(&format!("  %{name}two = arith.bitcast %{name}bits : {i} to {d}\n"));
    s.push_str(&format!("  %{name}exp = arith.mulf {e}, %{name}two : {d}\n"));
    format!("%{name}exp")
}

/// The vector types of an expansion over `n` lanes (f32 `t`, f64 `d`, i1
/// `b`, i64 `i`) and its text so far: the function's head and its
/// arguments in f64 (`%x` as `%xd`, `%y` as `%yd`).
struct Start {
    t: String,
    d: String,
    b: String,
    i: String,
    s: String,
}

impl Start {
    /// A function of `%x`.
    fn new(n: i64) -> Start {
        Start::of(n, &["x"])
    }

    /// A function of `%x` and `%y`.
    fn binary(n: i64) -> Start {
        Start::of(n, &["x", "y"])
    }

    fn of(n: i64, args: &[&str]) -> Start {
        let (t, d) = (format!("vector<{n}xf32>"), format!("vector<{n}xf64>"));
        let params: Vec<String> = args.iter().map(|a| format!("%{a}: {t}")).collect();
        let mut s = format!("func.func @f({}) -> {t} {{\n", params.join(", "));
        for a in args {
            s.push_str(&format!("  %{a}d = arith.extf %{a} : {t} to {d}\n"));
        }
        Start { b: format!("vector<{n}xi1>"), i: format!("vector<{n}xi64>"), t, d, s }
    }
}

/// An `arith.constant` splat of `v` of the f64 vector type `d`.
fn f64_constant(v: f64, d: &str) -> String {
    format!("arith.constant dense<{}> : {d}", bits(v))
}

/// An f64 constant as its bits (MLIR reads a hexadecimal float literal as
/// the bit pattern: exact, whatever the decimal printing).
fn bits(v: f64) -> String {
    format!("0x{:016X}", v.to_bits())
}

fn sign(j: usize) -> f64 {
    if j % 2 == 0 { 1.0 } else { -1.0 }
}

fn factorial(n: usize) -> f64 {
    (1..=n).map(|v| v as f64).product()
}

/// Appends `p({var})` for coefficients `coeffs` (highest power first) in
/// Horner form, its values named `%{name}…`; returns the result's name.
fn horner(s: &mut String, name: &str, var: &str, coeffs: &[f64], d: &str) -> String {
    let c = |v: f64| f64_constant(v, d);
    s.push_str(&format!("  %{name}0 = {}\n", c(coeffs[0])));
    for (j, &k) in coeffs.iter().enumerate().skip(1) {
        s.push_str(&format!("  %{name}m{j} = arith.mulf %{name}{}, {var} : {d}\n", j - 1));
        s.push_str(&format!("  %{name}k{j} = {}\n", c(k)));
        s.push_str(&format!("  %{name}{j} = arith.addf %{name}m{j}, %{name}k{j} : {d}\n"));
    }
    format!("%{name}{}", coeffs.len() - 1)
}

/// Rewrites every op of `Func::ALL` on a 1-D f32 vector in `module`;
/// returns how many.
///
/// # Safety
/// `module` must be a live `builtin.module`.
pub unsafe fn expand(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        let mut templates: HashMap<(i64, Func), MlirModule> = HashMap::new();
        let ctx = mlirOperationGetContext(module);
        let mut found = Vec::new();
        walk(module, |op| {
            let name = op_name(op);
            if let Some(f) = Func::ALL.into_iter().find(|f| f.op() == name) {
                found.push((op, f));
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        for (op, f) in found {
            let x = mlirOperationGetOperand(op, 0);
            let t = mlirValueGetType(x);
            if !mlirTypeIsAVector(t)
                || mlirShapedTypeGetRank(t) != 1
                || !mlirTypeIsAF32(mlirShapedTypeGetElementType(t))
            {
                continue;
            }
            let n = mlirShapedTypeGetDimSize(t, 0);
            let template = *templates
                .entry((n, f))
                .or_insert_with(|| mlirModuleCreateParse(ctx, string_ref(&expansion(n, f))));
            if template.ptr.is_null() {
                continue;
            }
            if f.guarded() {
                guard(op, x, t, template);
            } else {
                let args: Vec<MlirValue> = (0..f.arity()).map(|k| mlirOperationGetOperand(op, k as isize)).collect();
                let y = clone_body(template, &args, |o| {
                    mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(op), op, o)
                });
                mlirValueReplaceAllUsesOfWith(result(op), y);
                mlirOperationDestroy(op);
            }
            count += 1;
        }
        for (_, m) in templates {
            if !m.ptr.is_null() {
                mlirModuleDestroy(m);
            }
        }
        count
    }
}

/// Replaces `op` (of vector `x`, type `t`) by `scf.if (some lane out of
/// range) { op } else { the template's body }`.
unsafe fn guard(op: MlirOperation, x: MlirValue, t: MlirType, template: MlirModule) {
    unsafe {
        let ctx = mlirOperationGetContext(op);
        let loc = mlirOperationGetLocation(op);
        let n = mlirShapedTypeGetDimSize(t, 0);
        let bool_t = parse_type(ctx, &format!("vector<{n}xi1>")).expect("i1 vector type");
        let i1 = mlirIntegerTypeGet(ctx, 1);
        let abs = insert_before(op, build(ctx, "math.absf", loc, &[x], &[t], &[]));
        let range = attr(ctx, &format!("dense<0x{:08X}> : {}", (RANGE as f32).to_bits(), print_type(t)));
        let limit = insert_before(op, build(ctx, "arith.constant", loc, &[], &[t], &[("value", range)]));
        // `uge`: true for NaN too, which libm handles.
        let uge = attr(ctx, "10 : i64");
        let out = insert_before(
            op,
            build(ctx, "arith.cmpf", loc, &[abs, limit], &[bool_t], &[("predicate", uge)]),
        );
        let kind = attr(ctx, "#vector.kind<or>");
        let any = insert_before(op, build(ctx, "vector.reduction", loc, &[out], &[i1], &[("kind", kind)]));
        let branch_op = build_if(op, any, &[t]);
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(op), op, branch_op);
        // Then: the op itself (libm per lane).
        let then_block = branch(branch_op, 0);
        let then_yield = build(ctx, "scf.yield", loc, &[result(op)], &[], &[]);
        mlirBlockAppendOwnedOperation(then_block, then_yield);
        mlirOperationMoveBefore(op, then_yield);
        // Else: the template's body with its argument mapped to `x`.
        let else_block = branch(branch_op, 1);
        let last = clone_body(template, &[x], |o| mlirBlockAppendOwnedOperation(else_block, o));
        mlirBlockAppendOwnedOperation(else_block, build(ctx, "scf.yield", loc, &[last], &[], &[]));
        // Every use of the op's result outside the new branch reads the if.
        let value = result(op);
        for (user, at) in uses(value) {
            if mlirOperationGetParentOperation(user).ptr != branch_op.ptr {
                mlirOperationSetOperand(user, at, mlirOperationGetResult(branch_op, 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion as a function of `x` in f64 (the steps the template
    /// writes, in the same order), against the standard library's `sin`
    /// and `cos` of the f32 value.
    #[test]
    fn template_steps_are_accurate() {
        let text = expansion(16, Func::Sin);
        assert!(text.contains("math.roundeven") && text.contains("arith.truncf"), "{text}");
        assert!(expansion(3, Func::Cos).contains("vector<3xf64>"));
        assert_eq!(expansion(4, Func::Tan).matches("arith.divf").count(), 2);
        let sin: Vec<f64> = (0..6).rev().map(|j| sign(j) / factorial(2 * j + 1)).collect();
        let cos: Vec<f64> = (0..7).rev().map(|j| sign(j) / factorial(2 * j)).collect();
        let poly = |c: &[f64], r2: f64| c.iter().fold(0.0, |acc, &k| acc * r2 + k);
        let model = |x: f32, f: Func| -> f32 {
            let cosine = f == Func::Cos;
            let xd = f64::from(x);
            let k = (xd * std::f64::consts::FRAC_2_PI).round_ties_even();
            let r = (xd - k * 1.570_796_326_734_125_6) - k * 6.077_100_506_506_192e-11;
            let r2 = r * r;
            let (s, c) = (poly(&sin, r2) * r, poly(&cos, r2));
            let q = k as i64 + i64::from(cosine);
            let y = if f == Func::Tan {
                (if q & 1 != 0 { -c / s } else { s / c }) as f32
            } else {
                let v = if q & 1 != 0 { c } else { s };
                (if q & 2 != 0 { -v } else { v }) as f32
            };
            if !cosine && x == 0.0 { x } else { y }
        };
        let mut worst = 0u32;
        for i in 0..200_000 {
            let x = (i as f32 - 100_000.0) * 5.2;
            let xd = f64::from(x);
            for (f, want) in [(Func::Sin, xd.sin() as f32), (Func::Cos, xd.cos() as f32), (Func::Tan, xd.tan() as f32)] {
                let got = model(x, f);
                let ulps = (got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs() as u32;
                worst = worst.max(ulps);
            }
        }
        assert!(worst <= 1, "worst {worst} ulps");
        assert_eq!(model(-0.0, Func::Sin).to_bits(), (-0.0f32).to_bits());
        assert_eq!(model(-0.0, Func::Tan).to_bits(), (-0.0f32).to_bits());
        assert!(bits(1.0) == "0x3FF0000000000000");
    }
}

/// Clones the ops of `template`'s function body, its arguments mapped to
/// `args`, each handed to `place` (which inserts it) in order; returns the
/// clone of the returned value.
unsafe fn clone_body(template: MlirModule, args: &[MlirValue], place: impl Fn(MlirOperation)) -> MlirValue {
    unsafe {
        let loc = mlirValueGetLocation(args[0]);
        let func = mlirBlockGetFirstOperation(mlirModuleGetBody(template));
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
        let mut map: HashMap<usize, MlirValue> = HashMap::new();
        for (k, &arg) in args.iter().enumerate() {
            map.insert(mlirBlockGetArgument(body, k as isize).ptr as usize, arg);
        }
        let mut last = args[0];
        for inner in block_ops(body) {
            if op_name(inner) == "func.return" {
                last = *map.get(&(mlirOperationGetOperand(inner, 0).ptr as usize)).unwrap_or(&last);
                continue;
            }
            let copy = mlirOperationClone(inner);
            for k in 0..mlirOperationGetNumOperands(copy) {
                let v = mlirOperationGetOperand(copy, k);
                if let Some(&m) = map.get(&(v.ptr as usize)) {
                    mlirOperationSetOperand(copy, k, m);
                }
            }
            mlirOperationSetLocation(copy, loc);
            place(copy);
            for k in 0..mlirOperationGetNumResults(inner) {
                map.insert(mlirOperationGetResult(inner, k).ptr as usize, mlirOperationGetResult(copy, k));
            }
        }
        last
    }
}

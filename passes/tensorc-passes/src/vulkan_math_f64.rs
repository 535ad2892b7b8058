//! `tensorc-vulkan-expand-math-f64`: rewrites every scalar f64 `math.*`
//! transcendental function into f64 arithmetic that SPIR-V has, so that f64
//! programs run on Vulkan.
//!
//! Why: GLSL.std.450 (what `convert-math-to-spirv` produces) has `Exp`,
//! `Log`, `Sin`, `Atan`, … only for 16- and 32-bit floats, so an f64 `math.exp`
//! has no Vulkan lowering at all. Plain f64 add/sub/mul/div, `floor`, `sqrt`,
//! `abs`, compares, selects and 64-bit integer bit manipulation are all
//! native (with `shaderFloat64` and `shaderInt64`), and with them each
//! function is written out the classic way: range reduction, then a
//! polynomial (Taylor coefficients, exact rationals rounded once), then
//! reconstruction, with NaN, ±inf and ±0 selected to the interpreter's (C
//! libm's) answers. Accuracy, checked against Rust's libm and the
//! interpreter over ~100000 arguments per function by the unit tests
//! below: a few ulps (the bounds are in `tests::BOUNDS`). Two documented
//! limits: sin/cos/tan reduce by π/2 in three parts, exact while
//! |x| < 3·10⁶ and give some value in [-1, 1] far beyond (Vulkan leaves
//! GLSL precision there undefined too); and devices that flush f64 subnormals
//! (lavapipe) flush the subnormal inputs and results of these functions.
//!
//! Each expansion is written once, generically over [`Ops`] (the handful of
//! operations it needs). The pass implements `Ops` by building MLIR `arith`
//! and `math` ops in front of the op it replaces; the unit tests implement
//! it with plain `f64` arithmetic, which is how the accuracy is measured
//! without a GPU. No fused multiply-add is used: `math-expand-ops` would
//! split it anyway, and every step here is accurate without one. The
//! expansions rely on exact IEEE steps (two-sum, Dekker's product,
//! Cody–Waite), so every op they create carries the location name
//! `tensorc.exact`, and `tensorc-vulkan-exact-float` (`vulkan_math.rs`)
//! decorates their SPIR-V arithmetic `NoContraction`, which stops the driver
//! from reassociating or fusing it.
//!
//! Functions: `exp`, `expm1`, `log`, `log1p`, `sin`, `cos`, `tan`, `atan`,
//! `sinh`, `cosh`, `tanh`, `asinh`, `acosh`, `atanh`, `erf`, `erfc`, `asin`,
//! `acos`, `cbrt`, `atan2` and `powf` (f64 `erf_inv` and `sigmoid` are built
//! by the frontend from `erf`, `exp` and `log`).
//! Anchored on `builtin.module`, it rewrites ops anywhere (in the Vulkan
//! pipeline they are inside `gpu.module` kernels); vector and non-f64 ops are
//! left alone.

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-vulkan-expand-math-f64";

/// The ops the pass rewrites (when their operands and result are `f64`).
pub const EXPANDED: &[&str] = &[
    "math.exp",
    "math.expm1",
    "math.log",
    "math.log1p",
    "math.sin",
    "math.cos",
    "math.tan",
    "math.atan",
    "math.sinh",
    "math.cosh",
    "math.tanh",
    "math.asinh",
    "math.acosh",
    "math.atanh",
    "math.erf",
    "math.erfc",
    "math.asin",
    "math.acos",
    "math.cbrt",
    "math.atan2",
    "math.powf",
];

/// The functions the CPU's pass (`tensorc-expand-math-f64`, first in the
/// CPU lowering) leaves to libm; it expands the others, whose error bound
/// is a few ulps everywhere (`tests::BOUNDS`). Why: on the CPU an f64 `math.exp` became
/// a libm call per element, which no vectorizer can widen: `exp` of 1M f64
/// took 2.48 ms on one thread, XLA 0.33; as arithmetic the element-wise
/// schedule vectorizes it (8 lanes on AVX-512). Left to libm: `sin`, `cos`
/// and `tan` (the three-part reduction is exact only below 3·10⁶), `atan2`
/// and `powf` (not in the bounds table).
pub const LIBM_ON_CPU: &[&str] = &["math.sin", "math.cos", "math.tan", "math.atan2", "math.powf"];

/// Whether the CPU's pass expands `name`: `EXPANDED` but `LIBM_ON_CPU`.
pub fn expanded_on_cpu(name: &str) -> bool {
    EXPANDED.contains(&name) && !LIBM_ON_CPU.contains(&name)
}

/// The CPU pass's name in tensorc's pipeline strings.
pub const NAME_CPU: &str = crate::pipeline::EXPAND_MATH_F64;

/// f64 binary arithmetic.
#[derive(Clone, Copy, Debug)]
pub enum FBin {
    Add,
    Sub,
    Mul,
    Div,
}

/// f64 unary operations SPIR-V has natively.
#[derive(Clone, Copy, Debug)]
pub enum FUn {
    Neg,
    Abs,
    Floor,
    Sqrt,
}

/// i64 binary operations (for exponent bits).
#[derive(Clone, Copy, Debug)]
pub enum IBin {
    Add,
    Sub,
    And,
    Or,
    Shl,
    /// Arithmetic shift right.
    Shr,
}

/// f64 comparisons; ordered ones are false when an operand is NaN.
#[derive(Clone, Copy, Debug)]
pub enum Cmp {
    Olt,
    Ogt,
    Oge,
    Oeq,
    /// Not equal, or either operand is NaN.
    Une,
    /// Either operand is NaN.
    Uno,
}

/// What an expansion is written in: f64 values `F`, i64 values `I` and
/// booleans `B`.
pub trait Ops {
    type F: Copy;
    type I: Copy;
    type B: Copy;
    fn c(&mut self, v: f64) -> Self::F;
    fn ci(&mut self, v: i64) -> Self::I;
    fn fbin(&mut self, op: FBin, a: Self::F, b: Self::F) -> Self::F;
    fn fun(&mut self, op: FUn, a: Self::F) -> Self::F;
    fn ibin(&mut self, op: IBin, a: Self::I, b: Self::I) -> Self::I;
    fn cmp(&mut self, p: Cmp, a: Self::F, b: Self::F) -> Self::B;
    fn or(&mut self, a: Self::B, b: Self::B) -> Self::B;
    fn and(&mut self, a: Self::B, b: Self::B) -> Self::B;
    fn sel(&mut self, c: Self::B, a: Self::F, b: Self::F) -> Self::F;
    fn bits(&mut self, a: Self::F) -> Self::I;
    fn float_of_bits(&mut self, a: Self::I) -> Self::F;
    /// Truncation to i64; like SPIR-V's `OpConvertFToS`, only used on
    /// finite values inside the i64 range (anything else is undefined).
    fn f2i(&mut self, a: Self::F) -> Self::I;
    fn i2f(&mut self, a: Self::I) -> Self::F;

    fn add(&mut self, a: Self::F, b: Self::F) -> Self::F {
        self.fbin(FBin::Add, a, b)
    }
    fn sub(&mut self, a: Self::F, b: Self::F) -> Self::F {
        self.fbin(FBin::Sub, a, b)
    }
    fn mul(&mut self, a: Self::F, b: Self::F) -> Self::F {
        self.fbin(FBin::Mul, a, b)
    }
    fn div(&mut self, a: Self::F, b: Self::F) -> Self::F {
        self.fbin(FBin::Div, a, b)
    }
    /// `a * b + c`, in two roundings here; the CPU's pass fuses it (one
    /// rounding, never less accurate) for the polynomials' Horner steps.
    fn fma(&mut self, a: Self::F, b: Self::F, c: Self::F) -> Self::F {
        let m = self.mul(a, b);
        self.add(m, c)
    }
    /// `a + k` for a constant `k`.
    fn addc(&mut self, a: Self::F, k: f64) -> Self::F {
        let k = self.c(k);
        self.add(a, k)
    }
    /// `a * k` for a constant `k`.
    fn mulc(&mut self, a: Self::F, k: f64) -> Self::F {
        let k = self.c(k);
        self.mul(a, k)
    }
    /// `a <p> k` for a constant `k`.
    fn cmpc(&mut self, p: Cmp, a: Self::F, k: f64) -> Self::B {
        let k = self.c(k);
        self.cmp(p, a, k)
    }
    /// `if c { k } else { b }` for a constant `k`.
    fn selc(&mut self, c: Self::B, k: f64, b: Self::F) -> Self::F {
        let k = self.c(k);
        self.sel(c, k, b)
    }
}

/// Largest f64 below 2^-1022 is subnormal.
const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
/// ln 2 with its last 32 significand bits cleared: `k * LN2_HI` is exact for
/// every |k| < 2^32.
const LN2_HI: f64 = f64::from_bits(std::f64::consts::LN_2.to_bits() & !0xFFFF_FFFF);
/// ln 2 - LN2_HI: the cleared bits, plus ln 2 - fl(ln 2) = 2.3190468138462996e-17.
const LN2_LO: f64 = (std::f64::consts::LN_2 - LN2_HI) + 2.319_046_813_846_299_6e-17;
/// π/2 in three parts: `P1` (21 bits, `k * P1` exact for |k| < 2^32), `P2`
/// (the other 32 bits of fl(π/2), `k * P2` exact for |k| < 2^21) and `P3`
/// = π/2 - fl(π/2).
const P1: f64 = f64::from_bits(std::f64::consts::FRAC_PI_2.to_bits() & !0xFFFF_FFFF);
const P2: f64 = std::f64::consts::FRAC_PI_2 - P1;
const P3: f64 = 6.123_233_995_736_766e-17;
/// Above this, asinh(x) = ln(2x) and acosh(x) = ln(2x) to within half an ulp.
const HUGE_ARG: f64 = 268_435_456.0; // 2^28
/// Beyond this |x|, tanh is ±1 and sinh/cosh = e^|x|/2 (e^-|x| is below an ulp).
const EXP_BIG: f64 = 22.0;
/// erf/erfc: the fitted erfc series below, its continued fraction above.
const ERF_SPLIT: f64 = 2.0;
/// Terms of the erf series (used up to 1) and levels of the erfc continued
/// fraction (used from `ERF_SPLIT`): enough for < 1 ulp of truncation at
/// the ends, measured by the unit tests.
const ERF_TERMS: usize = 22;
const ERF_CF_LEVELS: usize = 60;

/// 1/n!, correctly rounded (n! is exact in f64 up to 22!).
fn inv_fact(n: u32) -> f64 {
    1.0 / (1..=n).map(f64::from).product::<f64>()
}

/// c[0] + z (c[1] + z (c[2] + …)) (Horner).
fn poly<O: Ops>(o: &mut O, z: O::F, c: &[f64]) -> O::F {
    let (last, rest) = c.split_last().expect("a polynomial has coefficients");
    let mut p = o.c(*last);
    for &k in rest.iter().rev() {
        let k = o.c(k);
        p = o.fma(p, z, k);
    }
    p
}

/// min(max(x, lo), hi), NaN staying NaN.
fn clamp<O: Ops>(o: &mut O, x: O::F, lo: f64, hi: f64) -> O::F {
    let below = o.cmpc(Cmp::Olt, x, lo);
    let x = o.selc(below, lo, x);
    let above = o.cmpc(Cmp::Ogt, x, hi);
    o.selc(above, hi, x)
}

/// |mag| with the sign bit of `sign`.
fn copysign<O: Ops>(o: &mut O, mag: O::F, sign: O::F) -> O::F {
    let m = o.bits(mag);
    let s = o.bits(sign);
    let abs_mask = o.ci(i64::MAX);
    let sign_mask = o.ci(i64::MIN);
    let m = o.ibin(IBin::And, m, abs_mask);
    let s = o.ibin(IBin::And, s, sign_mask);
    let r = o.ibin(IBin::Or, m, s);
    o.float_of_bits(r)
}

/// `y`, except `x` itself where x is ±0 (odd functions keep the zero's sign).
fn keep_zero<O: Ops>(o: &mut O, x: O::F, y: O::F) -> O::F {
    let z = o.cmpc(Cmp::Oeq, x, 0.0);
    o.sel(z, x, y)
}

/// `y`, except NaN where x is NaN.
fn keep_nan<O: Ops>(o: &mut O, x: O::F, y: O::F) -> O::F {
    let n = o.cmp(Cmp::Uno, x, x);
    o.sel(n, x, y)
}

/// 2^k for an integer -1022 <= k <= 1023, from its exponent bits.
fn pow2<O: Ops>(o: &mut O, k: O::I) -> O::F {
    let bias = o.ci(1023);
    let e = o.ibin(IBin::Add, k, bias);
    let s = o.ci(52);
    let b = o.ibin(IBin::Shl, e, s);
    o.float_of_bits(b)
}

/// p · 2^k for |k| <= 2044, in two steps so neither factor leaves the
/// normal range and results round once into the subnormals or to ±inf.
fn ldexp<O: Ops>(o: &mut O, p: O::F, k: O::I) -> O::F {
    let one = o.ci(1);
    let h = o.ibin(IBin::Shr, k, one);
    let l = o.ibin(IBin::Sub, k, h);
    let a = pow2(o, h);
    let b = pow2(o, l);
    let y = o.mul(p, a);
    o.mul(y, b)
}

/// x = k ln2 + r with k an integer (as f64) and |r| <= ln2/2 (Cody–Waite).
fn reduce_ln2<O: Ops>(o: &mut O, x: O::F) -> (O::F, O::F) {
    let t = o.mulc(x, std::f64::consts::LOG2_E);
    let t = o.addc(t, 0.5);
    let k = o.fun(FUn::Floor, t);
    let hi = o.mulc(k, LN2_HI);
    let lo = o.mulc(k, LN2_LO);
    let r = o.sub(x, hi);
    (k, o.sub(r, lo))
}

/// e^x.
pub fn exp<O: Ops>(o: &mut O, x: O::F) -> O::F {
    // Beyond these e^x is 0 or inf; clamping keeps k (an i64) defined.
    let xc = clamp(o, x, -746.0, 710.0);
    let (k, r) = reduce_ln2(o, xc);
    let c: Vec<f64> = (0..=13).map(inv_fact).collect();
    let p = poly(o, r, &c);
    let ki = o.f2i(k);
    let y = ldexp(o, p, ki);
    keep_nan(o, x, y)
}

/// e^x - 1, accurate near 0.
pub fn expm1<O: Ops>(o: &mut O, x: O::F) -> O::F {
    // Below -40 the result rounds to -1; above 710 it is inf.
    let xc = clamp(o, x, -40.0, 710.0);
    let (k, r) = reduce_ln2(o, xc);
    // q = e^r - 1 = r + r² (1/2! + r/3! + …)
    let c: Vec<f64> = (2..=14).map(inv_fact).collect();
    let p = poly(o, r, &c);
    let rr = o.mul(r, r);
    let t = o.mul(rr, p);
    let q = o.add(r, t);
    // e^x - 1 = 2 (2^(k-1) q + (2^(k-1) - 1/2)): 2^(k-1) stays finite for
    // k = 1024, and the sum rounds once.
    let ki = o.f2i(k);
    let one = o.ci(1);
    let km1 = o.ibin(IBin::Sub, ki, one);
    let t2 = pow2(o, km1);
    let a = o.mul(t2, q);
    let b = o.addc(t2, -0.5);
    let u = o.add(a, b);
    let y = o.mulc(u, 2.0);
    let y = keep_zero(o, x, y);
    keep_nan(o, x, y)
}

/// x = 2^e (1 + f) with sqrt(1/2) <= 1 + f < sqrt(2), for finite x > 0
/// (subnormals included); e is returned as an f64.
fn log_parts<O: Ops>(o: &mut O, x: O::F) -> (O::F, O::F) {
    let sub = o.cmpc(Cmp::Olt, x, MIN_NORMAL);
    let scaled = o.mulc(x, 18_014_398_509_481_984.0); // 2^54
    let xs = o.sel(sub, scaled, x);
    let zero = o.c(0.0);
    let adj = o.selc(sub, -54.0, zero);
    let b = o.bits(xs);
    let s52 = o.ci(52);
    let eb = o.ibin(IBin::Shr, b, s52);
    let bias = o.ci(1023);
    let eb = o.ibin(IBin::Sub, eb, bias);
    let e = o.i2f(eb);
    let mant = o.ci(0x000F_FFFF_FFFF_FFFF);
    let one_bits = o.ci(0x3FF0_0000_0000_0000);
    let mb = o.ibin(IBin::And, b, mant);
    let mb = o.ibin(IBin::Or, mb, one_bits);
    let m = o.float_of_bits(mb);
    let big = o.cmpc(Cmp::Ogt, m, std::f64::consts::SQRT_2);
    let half = o.mulc(m, 0.5);
    let m = o.sel(big, half, m);
    let inc = o.selc(big, 1.0, zero);
    let e = o.add(e, inc);
    let e = o.add(e, adj);
    (e, o.addc(m, -1.0))
}

/// ln x as an unevaluated sum hi + lo (|lo| <= ulp(hi)), for finite x > 0.
fn log_hi_lo<O: Ops>(o: &mut O, x: O::F) -> (O::F, O::F) {
    let (e, f) = log_parts(o, x);
    // ln(1+f) = 2 atanh(s), s = f/(2+f); with 2s = f - s f this is
    // f - s (f - T), T = 2s²/3 + 2s⁴/5 + … (|s| <= 0.1716).
    let d = o.addc(f, 2.0);
    let s = o.div(f, d);
    let z = o.mul(s, s);
    let c: Vec<f64> = (1..=11).map(|k| 2.0 / f64::from(2 * k + 1)).collect();
    let p = poly(o, z, &c);
    let t = o.mul(z, p);
    let ft = o.sub(f, t);
    let sft = o.mul(s, ft);
    let elo = o.mulc(e, LN2_LO);
    let corr = o.sub(sft, elo);
    // e ln2_hi + f exactly (two-sum), then minus the small correction.
    let ehi = o.mulc(e, LN2_HI);
    let (s1, e1) = two_sum(o, ehi, f);
    let hi = o.sub(s1, corr);
    let d = o.sub(s1, hi);
    let d = o.sub(d, corr);
    (hi, o.add(d, e1))
}

/// a + b = s + e exactly (Knuth's two-sum).
fn two_sum<O: Ops>(o: &mut O, a: O::F, b: O::F) -> (O::F, O::F) {
    let s = o.add(a, b);
    let bb = o.sub(s, a);
    let aa = o.sub(s, bb);
    let db = o.sub(b, bb);
    let da = o.sub(a, aa);
    (s, o.add(da, db))
}

/// a · b = p + e exactly (Dekker's product, no FMA needed), for
/// |a|, |b| < 2^996.
fn two_prod<O: Ops>(o: &mut O, a: O::F, b: O::F) -> (O::F, O::F) {
    let p = o.mul(a, b);
    let (ah, al) = split(o, a);
    let (bh, bl) = split(o, b);
    let t = o.mul(ah, bh);
    let e = o.sub(t, p);
    let t = o.mul(ah, bl);
    let e = o.add(e, t);
    let t = o.mul(al, bh);
    let e = o.add(e, t);
    let t = o.mul(al, bl);
    (p, o.add(e, t))
}

/// a = hi + lo with hi holding the top 26 significand bits (Veltkamp).
fn split<O: Ops>(o: &mut O, a: O::F) -> (O::F, O::F) {
    let t = o.mulc(a, 134_217_729.0); // 2^27 + 1
    let u = o.sub(t, a);
    let hi = o.sub(t, u);
    (hi, o.sub(a, hi))
}

/// ln x.
pub fn log<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let (hi, lo) = log_hi_lo(o, x);
    let y = o.add(hi, lo);
    let neg = o.cmpc(Cmp::Olt, x, 0.0);
    let y = o.selc(neg, f64::NAN, y);
    let zero = o.cmpc(Cmp::Oeq, x, 0.0);
    let y = o.selc(zero, f64::NEG_INFINITY, y);
    let inf = o.cmpc(Cmp::Oeq, x, f64::INFINITY);
    let y = o.selc(inf, f64::INFINITY, y);
    keep_nan(o, x, y)
}

/// ln(1 + x), accurate near 0.
pub fn log1p<O: Ops>(o: &mut O, x: O::F) -> O::F {
    // u = fl(1 + x); ln(1 + x) = ln u + (x - (u - 1)) / u to first order.
    let u = o.addc(x, 1.0);
    let um1 = o.addc(u, -1.0);
    let lost = o.sub(x, um1);
    let c = o.div(lost, u);
    let l = log(o, u);
    let y = o.add(l, c);
    let m1 = o.cmpc(Cmp::Oeq, x, -1.0);
    let y = o.selc(m1, f64::NEG_INFINITY, y);
    let inf = o.cmpc(Cmp::Oeq, x, f64::INFINITY);
    let y = o.selc(inf, f64::INFINITY, y);
    keep_zero(o, x, y)
}

/// x = k π/2 + r, |r| <= π/4 (for |x| < 3·10⁶; beyond, approximately);
/// returns r and k mod 4 (as f64).
fn reduce_half_pi<O: Ops>(o: &mut O, x: O::F) -> (O::F, O::F) {
    let t = o.mulc(x, std::f64::consts::FRAC_2_PI);
    let t = o.addc(t, 0.5);
    let k = o.fun(FUn::Floor, t);
    let a = o.mulc(k, P1);
    let r = o.sub(x, a);
    let b = o.mulc(k, P2);
    let r = o.sub(r, b);
    let c = o.mulc(k, P3);
    let r = o.sub(r, c);
    // Far beyond 3·10⁶ the reduction is meaningless (and k·P1 may overflow):
    // keep r in the kernels' range so the result stays a finite value.
    let r = clamp(o, r, -1.0, 1.0);
    let k4 = o.mulc(k, 0.25);
    let k4 = o.fun(FUn::Floor, k4);
    let k4 = o.mulc(k4, 4.0);
    (r, o.sub(k, k4))
}

/// sin r and cos r for |r| <= π/4 (Taylor to r¹⁷ and r¹⁶).
fn sin_cos_kernel<O: Ops>(o: &mut O, r: O::F) -> (O::F, O::F) {
    let z = o.mul(r, r);
    let sc: Vec<f64> = (1..=8)
        .map(|k| inv_fact(2 * k + 1) * if k % 2 == 1 { -1.0 } else { 1.0 })
        .collect();
    let sp = poly(o, z, &sc);
    let rz = o.mul(r, z);
    let st = o.mul(rz, sp);
    let s = o.add(r, st);
    // cos r = 1 - (z/2 - z² (1/4! - z/6! + …))
    let cc: Vec<f64> = (2..=8)
        .map(|k| inv_fact(2 * k) * if k % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let cp = poly(o, z, &cc);
    let zz = o.mul(z, z);
    let ct = o.mul(zz, cp);
    let hz = o.mulc(z, 0.5);
    let d = o.sub(hz, ct);
    let one = o.c(1.0);
    (s, o.sub(one, d))
}

/// NaN for ±inf and NaN, else `y`.
fn finite_or_nan<O: Ops>(o: &mut O, x: O::F, y: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    let finite = o.cmpc(Cmp::Olt, a, f64::INFINITY);
    let nan = o.c(f64::NAN);
    o.sel(finite, y, nan)
}

/// What sin, cos and tan of x start from: sin r and cos r of the reduced
/// argument, the quadrant q (0 to 3, as an f64), whether q is 1 and whether
/// it is odd.
struct Quadrant<F, B> {
    s: F,
    c: F,
    q: F,
    q1: B,
    odd: B,
}

fn quadrant<O: Ops>(o: &mut O, x: O::F) -> Quadrant<O::F, O::B> {
    let (r, q) = reduce_half_pi(o, x);
    let (s, c) = sin_cos_kernel(o, r);
    let q1 = o.cmpc(Cmp::Oeq, q, 1.0);
    let q3 = o.cmpc(Cmp::Oeq, q, 3.0);
    let odd = o.or(q1, q3);
    Quadrant { s, c, q, q1, odd }
}

/// sin x.
pub fn sin<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let Quadrant { s, c, q, odd, .. } = quadrant(o, x);
    // q: 0 → s, 1 → c, 2 → -s, 3 → -c
    let v = o.sel(odd, c, s);
    let neg = o.cmpc(Cmp::Oge, q, 2.0);
    let nv = o.fun(FUn::Neg, v);
    let y = o.sel(neg, nv, v);
    let y = keep_zero(o, x, y);
    finite_or_nan(o, x, y)
}

/// cos x.
pub fn cos<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let Quadrant { s, c, q, q1, odd } = quadrant(o, x);
    // q: 0 → c, 1 → -s, 2 → -c, 3 → s
    let q2 = o.cmpc(Cmp::Oeq, q, 2.0);
    let v = o.sel(odd, s, c);
    let neg = o.or(q1, q2);
    let nv = o.fun(FUn::Neg, v);
    let y = o.sel(neg, nv, v);
    finite_or_nan(o, x, y)
}

/// tan x.
pub fn tan<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let Quadrant { s, c, odd, .. } = quadrant(o, x);
    // even q: s/c; odd q: -c/s
    let even_v = o.div(s, c);
    let ns = o.fun(FUn::Neg, s);
    let odd_v = o.div(c, ns);
    let y = o.sel(odd, odd_v, even_v);
    let y = keep_zero(o, x, y);
    finite_or_nan(o, x, y)
}

/// t / (1 + sqrt(1 + t²)) = tan(atan(t)/2).
fn halve_atan_arg<O: Ops>(o: &mut O, t: O::F) -> O::F {
    let tt = o.mul(t, t);
    let a = o.addc(tt, 1.0);
    let s = o.fun(FUn::Sqrt, a);
    let d = o.addc(s, 1.0);
    o.div(t, d)
}

/// atan x.
pub fn atan<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    let inv = o.cmpc(Cmp::Ogt, a, 1.0);
    let one = o.c(1.0);
    let ra = o.div(one, a);
    let t = o.sel(inv, ra, a);
    // Two halvings take [0, 1] to [0, tan(π/16)] where the series converges fast.
    let t = halve_atan_arg(o, t);
    let t = halve_atan_arg(o, t);
    let z = o.mul(t, t);
    let c: Vec<f64> = (1..=12)
        .map(|k| if k % 2 == 1 { -1.0 } else { 1.0 } / f64::from(2 * k + 1))
        .collect();
    let p = poly(o, z, &c);
    let tz = o.mul(t, z);
    let tp = o.mul(tz, p);
    let v = o.add(t, tp);
    let v = o.mulc(v, 4.0);
    // atan a = π/2 - atan(1/a)
    let pio2 = o.c(std::f64::consts::FRAC_PI_2);
    let w = o.sub(pio2, v);
    let w = o.addc(w, P3);
    let y = o.sel(inv, w, v);
    copysign(o, y, x)
}

/// sinh x.
pub fn sinh<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    let big = o.cmpc(Cmp::Ogt, a, EXP_BIG);
    let small_a = o.selc(big, EXP_BIG, a);
    // (e^a - e^-a)/2 = (E + E/(E+1))/2 with E = e^a - 1.
    let e = expm1(o, small_a);
    let e1 = o.addc(e, 1.0);
    let q = o.div(e, e1);
    let s = o.add(e, q);
    let small = o.mulc(s, 0.5);
    let large = exp_half_squared(o, a);
    let y = o.sel(big, large, small);
    copysign(o, y, x)
}

/// e^a / 2 as (e^(a/2) / 2) e^(a/2), finite up to the largest sinh/cosh.
fn exp_half_squared<O: Ops>(o: &mut O, a: O::F) -> O::F {
    let ha = o.mulc(a, 0.5);
    let h = exp(o, ha);
    let hh = o.mulc(h, 0.5);
    o.mul(hh, h)
}

/// cosh x.
pub fn cosh<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    let big = o.cmpc(Cmp::Ogt, a, EXP_BIG);
    let small_a = o.selc(big, EXP_BIG, a);
    let e = exp(o, small_a);
    let one = o.c(1.0);
    let re = o.div(one, e);
    let s = o.add(e, re);
    let small = o.mulc(s, 0.5);
    let large = exp_half_squared(o, a);
    o.sel(big, large, small)
}

/// tanh x.
pub fn tanh<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    let big = o.cmpc(Cmp::Ogt, a, EXP_BIG);
    let small_a = o.selc(big, EXP_BIG, a);
    // tanh a = E / (E + 2) with E = e^(2a) - 1.
    let a2 = o.mulc(small_a, 2.0);
    let e = expm1(o, a2);
    let d = o.addc(e, 2.0);
    let v = o.div(e, d);
    let y = o.selc(big, 1.0, v);
    copysign(o, y, x)
}

/// ln(a) + ln 2 = ln(2a) without overflow, for large a.
fn log_twice<O: Ops>(o: &mut O, a: O::F) -> O::F {
    let l = log(o, a);
    o.addc(l, std::f64::consts::LN_2)
}

/// asinh x.
pub fn asinh<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    let big = o.cmpc(Cmp::Ogt, a, HUGE_ARG);
    let sa = o.selc(big, 1.0, a);
    // asinh a = log1p(a + a²/(1 + sqrt(1 + a²)))
    let aa = o.mul(sa, sa);
    let r = o.addc(aa, 1.0);
    let r = o.fun(FUn::Sqrt, r);
    let d = o.addc(r, 1.0);
    let q = o.div(aa, d);
    let w = o.add(sa, q);
    let small = log1p(o, w);
    let large = log_twice(o, a);
    let y = o.sel(big, large, small);
    copysign(o, y, x)
}

/// acosh x.
pub fn acosh<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let big = o.cmpc(Cmp::Ogt, x, HUGE_ARG);
    let sx = o.selc(big, 1.0, x);
    // acosh x = log1p(t + sqrt(t (x + 1))), t = x - 1 (exact near 1).
    let t = o.addc(sx, -1.0);
    let xp = o.addc(sx, 1.0);
    let p = o.mul(t, xp);
    let r = o.fun(FUn::Sqrt, p);
    let w = o.add(t, r);
    let small = log1p(o, w);
    let large = log_twice(o, x);
    let y = o.sel(big, large, small);
    let below = o.cmpc(Cmp::Olt, x, 1.0);
    o.selc(below, f64::NAN, y)
}

/// atanh x.
pub fn atanh<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    // atanh a = log1p(2a/(1-a))/2; below 1/2 as log1p(2a + 2a²/(1-a))/2,
    // whose terms are both small and exact-ish.
    let small = o.cmpc(Cmp::Olt, a, 0.5);
    let one = o.c(1.0);
    let om = o.sub(one, a);
    let a2 = o.mulc(a, 2.0);
    let aa2 = o.mul(a2, a);
    let q = o.div(aa2, om);
    let ws = o.add(a2, q);
    let wl = o.div(a2, om);
    let w = o.sel(small, ws, wl);
    let l = log1p(o, w);
    let y = o.mulc(l, 0.5);
    copysign(o, y, x)
}

/// e^(-a²) with a² carried as an exact sum hi + lo (Dekker's product), so
/// the rounding of a² does not cost a·a·ulp of relative error.
fn exp_neg_square<O: Ops>(o: &mut O, a: O::F) -> O::F {
    let (hi, lo) = two_prod(o, a, a);
    let nhi = o.fun(FUn::Neg, hi);
    let e = exp(o, nhi);
    let one = o.c(1.0);
    let f = o.sub(one, lo);
    o.mul(e, f)
}

/// erf a for 0 <= a <= 1 (a clamped there): (2/√π) e^(-a²) Σ (2a²)^n a /
/// (2n+1)!! — all terms positive, so no cancellation.
fn erf_series<O: Ops>(o: &mut O, a: O::F) -> O::F {
    let sa = clamp(o, a, 0.0, 1.0);
    let mut c = Vec::with_capacity(ERF_TERMS);
    let mut df = 1.0f64;
    for n in 0..ERF_TERMS {
        df *= (2 * n + 1) as f64;
        c.push(1.0 / df);
    }
    let aa = o.mul(sa, sa);
    let z = o.mulc(aa, 2.0);
    let p = poly(o, z, &c);
    let s = o.mul(sa, p);
    let e = exp_neg_square(o, sa);
    let s = o.mulc(s, std::f64::consts::FRAC_2_SQRT_PI);
    o.mul(s, e)
}

/// erfc a for 0.5 <= a <= 2 (a clamped there): e^(-a²) times the fitted
/// series `ERFC_MID`.
fn erfc_mid<O: Ops>(o: &mut O, a: O::F) -> O::F {
    let m = clamp(o, a, 0.5, ERF_SPLIT);
    let t = o.addc(m, -1.25);
    let t = o.mulc(t, 1.0 / 0.75);
    let r = chebyshev(o, t, &ERFC_MID);
    let g = exp_neg_square(o, m);
    o.mul(g, r)
}

/// erfc a for a >= 2 (a clamped to [2, 30]; e^(-a²) underflows to 0 long
/// before 30).
fn erfc_tail<O: Ops>(o: &mut O, a: O::F) -> O::F {
    let t = clamp(o, a, ERF_SPLIT, 30.0);
    erfc_fraction(o, t, ERF_CF_LEVELS)
}

/// erf x: the series up to 1, 1 - erfc above (the fitted series up to 2,
/// the continued fraction beyond; erfc(6) is below half an ulp of 1).
pub fn erf<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    let series = erf_series(o, a);
    let one = o.c(1.0);
    let m = erfc_mid(o, a);
    let mid = o.sub(one, m);
    let t = erfc_tail(o, a);
    let tail = o.sub(one, t);
    let above1 = o.cmpc(Cmp::Ogt, a, 1.0);
    let y = o.sel(above1, mid, series);
    let big = o.cmpc(Cmp::Ogt, a, ERF_SPLIT);
    let y = o.sel(big, tail, y);
    copysign(o, y, x)
}

/// erfc a for a >= 2 (where `levels` levels of the continued fraction
/// converge): e^(-a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))).
fn erfc_fraction<O: Ops>(o: &mut O, a: O::F, levels: usize) -> O::F {
    let mut f = a;
    for k in (1..=levels).rev() {
        let q = o.c(k as f64 * 0.5);
        let q = o.div(q, f);
        f = o.add(a, q);
    }
    let e = exp_neg_square(o, a);
    let e = o.mulc(e, 0.5 * std::f64::consts::FRAC_2_SQRT_PI);
    o.div(e, f)
}

/// erfc(x)·e^(x²) on [0.5, 2] as a Chebyshev series in t = (x - 1.25)/0.75,
/// fitted for tensorc: interpolation at 48 Chebyshev nodes of values
/// computed to 60 digits, cut where the terms fall below 1e-19.
const ERFC_MID: [f64; 23] = [
    0.4006822530639845,
    -0.17395587897748596,
    0.03383702540740585,
    -0.006032263577025819,
    0.001000274118215681,
    -0.0001558965252433288,
    2.3014442396758424e-05,
    -3.2375421924541957e-06,
    4.360702485858127e-07,
    -5.645684833789816e-08,
    7.048623263203286e-09,
    -8.509612327566787e-10,
    9.957554366871612e-11,
    -1.1316613855047257e-11,
    1.2513369992930791e-12,
    -1.3483678086194079e-13,
    1.4178345509581745e-14,
    -1.4566964654246537e-15,
    1.4639564848603663e-16,
    -1.4406081509350508e-17,
    1.3893934243911832e-18,
    -1.314421430456738e-19,
    1.2207086091918848e-20,
];

/// Σ c_k T_k(t) (Clenshaw's recurrence).
fn chebyshev<O: Ops>(o: &mut O, t: O::F, c: &[f64]) -> O::F {
    let t2 = o.mulc(t, 2.0);
    let mut b1 = o.c(0.0);
    let mut b2 = o.c(0.0);
    for &k in c[1..].iter().rev() {
        let m = o.mul(t2, b1);
        let d = o.sub(m, b2);
        let b0 = o.addc(d, k);
        b2 = b1;
        b1 = b0;
    }
    let m = o.mul(t, b1);
    let d = o.sub(m, b2);
    o.addc(d, c[0])
}

/// erfc x, with relative accuracy in the tail: for a = |x|, 1 - erf a
/// below 0.5 (no cancellation there), e^(-a²)·(fitted series) up to 2, the
/// continued fraction above; erfc(-a) = 2 - erfc(a).
pub fn erfc<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    let s = erf_series(o, a);
    let one = o.c(1.0);
    let low = o.sub(one, s);
    let mid = erfc_mid(o, a);
    let tail = erfc_tail(o, a);
    let in_mid = o.cmpc(Cmp::Oge, a, 0.5);
    let y = o.sel(in_mid, mid, low);
    let big = o.cmpc(Cmp::Ogt, a, ERF_SPLIT);
    let y = o.sel(big, tail, y);
    let two = o.c(2.0);
    let reflected = o.sub(two, y);
    let neg = o.cmpc(Cmp::Olt, x, 0.0);
    o.sel(neg, reflected, y)
}

/// asin x = atan(x / sqrt((1 - x)(1 + x))).
pub fn asin<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let one = o.c(1.0);
    let a = o.sub(one, x);
    let b = o.addc(x, 1.0);
    let d = o.mul(a, b);
    let r = o.fun(FUn::Sqrt, d);
    let t = o.div(x, r);
    atan(o, t)
}

/// acos x = 2 atan(sqrt((1 - x)/(1 + x))).
pub fn acos<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let one = o.c(1.0);
    let a = o.sub(one, x);
    let b = o.addc(x, 1.0);
    let q = o.div(a, b);
    let r = o.fun(FUn::Sqrt, q);
    let t = atan(o, r);
    o.mulc(t, 2.0)
}

/// π in two parts.
const PI_LO: f64 = 2.0 * P3;

/// atan2(y, x) with C's results for zeros, infinities and NaN.
pub fn atan2<O: Ops>(o: &mut O, y: O::F, x: O::F) -> O::F {
    let ay = o.fun(FUn::Abs, y);
    let ax = o.fun(FUn::Abs, x);
    let t = o.div(ay, ax);
    let base = atan(o, t);
    // inf/inf: π/4; 0/0 (and 0/anything): 0.
    let yinf = o.cmpc(Cmp::Oeq, ay, f64::INFINITY);
    let xinf = o.cmpc(Cmp::Oeq, ax, f64::INFINITY);
    let both = o.and(yinf, xinf);
    let base = o.selc(both, std::f64::consts::FRAC_PI_4, base);
    let yzero = o.cmpc(Cmp::Oeq, ay, 0.0);
    let base = o.selc(yzero, 0.0, base);
    // x with its sign bit set (-0 included): the angle from the negative axis.
    let one = o.c(1.0);
    let sx = copysign(o, one, x);
    let xneg = o.cmpc(Cmp::Olt, sx, 0.0);
    let pi = o.c(std::f64::consts::PI);
    let w = o.sub(pi, base);
    let w = o.addc(w, PI_LO);
    let r = o.sel(xneg, w, base);
    let r = copysign(o, r, y);
    let r = keep_nan(o, x, r);
    keep_nan(o, y, r)
}

/// cbrt x: e^(ln|x| / 3), then one Newton step (the error of the first
/// guess is ~1e-13 at most, squared by the step).
pub fn cbrt<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.fun(FUn::Abs, x);
    let l = log(o, a);
    let l3 = o.mulc(l, 1.0 / 3.0);
    let y0 = exp(o, l3);
    // y0 - (y0 - a/y0²)/3: no overflow of y0³ near the largest values.
    let yy = o.mul(y0, y0);
    let q = o.div(a, yy);
    let d = o.sub(y0, q);
    let d = o.mulc(d, 1.0 / 3.0);
    let y = o.sub(y0, d);
    let inf = o.cmpc(Cmp::Oeq, a, f64::INFINITY);
    let y = o.selc(inf, f64::INFINITY, y);
    let y = copysign(o, y, x);
    keep_zero(o, x, y)
}

/// pow(x, y) with C's (and Nx's) results for every special case. The
/// magnitude is e^(y ln|x|) with ln|x| and the product carried in two
/// parts, so the error grows only slowly with |y ln|x||.
pub fn pow<O: Ops>(o: &mut O, x: O::F, y: O::F) -> O::F {
    let ax = o.fun(FUn::Abs, x);
    // The general formula on a finite non-zero base and a finite exponent;
    // the other cases are selected below.
    let pos = o.cmpc(Cmp::Ogt, ax, 0.0);
    let fin = o.cmpc(Cmp::Olt, ax, f64::INFINITY);
    let g = o.and(pos, fin);
    let two = o.c(2.0);
    let axs = o.sel(g, ax, two);
    let ys = clamp(o, y, -1e200, 1e200);
    let (lh, ll) = log_hi_lo(o, axs);
    let (ph, pl) = two_prod(o, ys, lh);
    let t = o.mul(ys, ll);
    let pl = o.add(pl, t);
    let aph = o.fun(FUn::Abs, ph);
    let moderate = o.cmpc(Cmp::Olt, aph, 800.0);
    let zero = o.c(0.0);
    let pl = o.sel(moderate, pl, zero);
    let e = exp(o, ph);
    let onep = o.addc(pl, 1.0);
    let mag = o.mul(e, onep);
    // y = ±inf: 1 for |x| = 1, else 0 or inf by whether |x| < 1 and y > 0.
    let inf = o.c(f64::INFINITY);
    let ypos = o.cmpc(Cmp::Ogt, y, 0.0);
    let lt1 = o.cmpc(Cmp::Olt, ax, 1.0);
    let vpos = o.sel(lt1, zero, inf);
    let vneg = o.sel(lt1, inf, zero);
    let vinf = o.sel(ypos, vpos, vneg);
    let eq1 = o.cmpc(Cmp::Oeq, ax, 1.0);
    let vinf = o.selc(eq1, 1.0, vinf);
    let ay = o.fun(FUn::Abs, y);
    let yinf = o.cmpc(Cmp::Oeq, ay, f64::INFINITY);
    let mag = o.sel(yinf, vinf, mag);
    // x = ±inf: inf for y > 0, 0 for y < 0; x = ±0: the reverse.
    let xinf = o.cmpc(Cmp::Oeq, ax, f64::INFINITY);
    let v = o.sel(ypos, inf, zero);
    let mag = o.sel(xinf, v, mag);
    let xzero = o.cmpc(Cmp::Oeq, ax, 0.0);
    let v = o.sel(ypos, zero, inf);
    let mag = o.sel(xzero, v, mag);
    // Negative for a base with its sign bit set and an odd integer exponent.
    let fy = o.fun(FUn::Floor, y);
    let yint = o.cmp(Cmp::Oeq, fy, y);
    let half = o.mulc(y, 0.5);
    let fh = o.fun(FUn::Floor, half);
    let hfrac = o.cmp(Cmp::Une, fh, half);
    let yodd = o.and(yint, hfrac);
    let one = o.c(1.0);
    let sx = copysign(o, one, x);
    let xneg = o.cmpc(Cmp::Olt, sx, 0.0);
    let negate = o.and(xneg, yodd);
    let nmag = o.fun(FUn::Neg, mag);
    let r = o.sel(negate, nmag, mag);
    // A negative finite base and a non-integer exponent: NaN.
    let xlt0 = o.cmpc(Cmp::Olt, x, 0.0);
    let xfin = o.cmpc(Cmp::Ogt, x, f64::NEG_INFINITY);
    let negfin = o.and(xlt0, xfin);
    let ynonint = o.cmp(Cmp::Une, fy, y);
    let bad = o.and(negfin, ynonint);
    let r = o.selc(bad, f64::NAN, r);
    let r = keep_nan(o, x, r);
    let r = keep_nan(o, y, r);
    // pow(x, ±0) = 1 and pow(1, y) = 1, even for NaN.
    let y0 = o.cmpc(Cmp::Oeq, y, 0.0);
    let r = o.selc(y0, 1.0, r);
    let x1 = o.cmpc(Cmp::Oeq, x, 1.0);
    o.selc(x1, 1.0, r)
}

/// The expansion of `name` applied to `args`, or `None` for an op this pass
/// does not rewrite.
pub fn expand<O: Ops>(o: &mut O, name: &str, args: &[O::F]) -> Option<O::F> {
    let f: fn(&mut O, O::F) -> O::F = match name {
        "math.exp" => exp,
        "math.expm1" => expm1,
        "math.log" => log,
        "math.log1p" => log1p,
        "math.sin" => sin,
        "math.cos" => cos,
        "math.tan" => tan,
        "math.atan" => atan,
        "math.sinh" => sinh,
        "math.cosh" => cosh,
        "math.tanh" => tanh,
        "math.asinh" => asinh,
        "math.acosh" => acosh,
        "math.atanh" => atanh,
        "math.erf" => erf,
        "math.erfc" => erfc,
        "math.asin" => asin,
        "math.acos" => acos,
        "math.cbrt" => cbrt,
        "math.atan2" | "math.powf" => {
            let g: fn(&mut O, O::F, O::F) -> O::F = if name == "math.atan2" { atan2 } else { pow };
            return match args {
                [a, b] => Some(g(o, *a, *b)),
                _ => None,
            };
        }
        _ => return None,
    };
    match args {
        [x] => Some(f(o, *x)),
        _ => None,
    }
}

#[cfg(feature = "melior")]
pub use pass::{create, create_cpu};

#[cfg(feature = "melior")]
mod pass {
    use super::*;
    use crate::external_pass::{PassId, module_pass};
    use crate::raw::*;
    use melior::pass::Pass;
    use mlir_sys::*;
    use std::collections::HashMap;

    static PASS_ID: PassId = PassId::new();

    /// Creates the pass (anchored on `builtin.module`).
    pub fn create() -> Pass {
        module_pass(
            &PASS_ID,
            NAME,
            "Rewrite f64 math functions into f64 arithmetic SPIR-V has",
            &[],
            |module| {
                // SAFETY: `module_pass` passes the live module the pass runs on.
                unsafe { expand_all(module, |name| EXPANDED.contains(&name), false) };
                true
            },
        )
    }

    static CPU_PASS_ID: PassId = PassId::new();

    /// Creates the CPU's pass (`expanded_on_cpu`; anchored on `builtin.module`).
    pub fn create_cpu() -> Pass {
        module_pass(
            &CPU_PASS_ID,
            NAME_CPU,
            "Rewrite f64 math functions into f64 arithmetic the vectorizer widens",
            &[],
            |module| {
                // SAFETY: `module_pass` passes the live module the pass runs on.
                unsafe { expand_all(module, expanded_on_cpu, true) };
                true
            },
        )
    }

    /// Builds the expansion's ops in front of `before`, in its block.
    struct Emit {
        ctx: MlirContext,
        block: MlirBlock,
        before: MlirOperation,
        loc: MlirLocation,
        f64t: MlirType,
        i64t: MlirType,
        i1t: MlirType,
        /// Constants already built for this expansion, by bits.
        fconsts: HashMap<u64, MlirValue>,
        /// Whether `fma` is one `math.fma` (the CPU: a latency of one FMA
        /// per Horner step instead of a multiply and an add; f64 `exp` of 1M
        /// elements see docs/benchmarks.md). Not on Vulkan, whose exact
        /// steps are decorated `NoContraction`.
        fused: bool,
        iconsts: HashMap<i64, MlirValue>,
    }

    impl Emit {
        fn op(
            &mut self,
            name: &str,
            operands: &[MlirValue],
            ty: MlirType,
            attrs: &[(&str, MlirAttribute)],
        ) -> MlirValue {
            // SAFETY: `before` is a live op in `block`; the new op is
            // inserted (owned by the block) before it is used.
            unsafe {
                let op = build(self.ctx, name, self.loc, operands, &[ty], attrs);
                mlirBlockInsertOwnedOperationBefore(self.block, self.before, op);
                result(op)
            }
        }
    }

    impl Ops for Emit {
        type F = MlirValue;
        type I = MlirValue;
        type B = MlirValue;

        fn c(&mut self, v: f64) -> MlirValue {
            if let Some(&c) = self.fconsts.get(&v.to_bits()) {
                return c;
            }
            // SAFETY: a float attribute of the live context's f64 type.
            let a = unsafe { mlirFloatAttrDoubleGet(self.ctx, self.f64t, v) };
            let c = self.op("arith.constant", &[], self.f64t, &[("value", a)]);
            self.fconsts.insert(v.to_bits(), c);
            c
        }

        fn ci(&mut self, v: i64) -> MlirValue {
            if let Some(&c) = self.iconsts.get(&v) {
                return c;
            }
            // SAFETY: an integer attribute of the live context's i64 type.
            let a = unsafe { mlirIntegerAttrGet(self.i64t, v) };
            let c = self.op("arith.constant", &[], self.i64t, &[("value", a)]);
            self.iconsts.insert(v, c);
            c
        }

        fn fbin(&mut self, op: FBin, a: MlirValue, b: MlirValue) -> MlirValue {
            let name = match op {
                FBin::Add => "arith.addf",
                FBin::Sub => "arith.subf",
                FBin::Mul => "arith.mulf",
                FBin::Div => "arith.divf",
            };
            self.op(name, &[a, b], self.f64t, &[])
        }

        fn fma(&mut self, a: MlirValue, b: MlirValue, c: MlirValue) -> MlirValue {
            if self.fused {
                self.op("math.fma", &[a, b, c], self.f64t, &[])
            } else {
                let m = self.mul(a, b);
                self.add(m, c)
            }
        }

        fn fun(&mut self, op: FUn, a: MlirValue) -> MlirValue {
            let name = match op {
                FUn::Neg => "arith.negf",
                FUn::Abs => "math.absf",
                FUn::Floor => "math.floor",
                FUn::Sqrt => "math.sqrt",
            };
            self.op(name, &[a], self.f64t, &[])
        }

        fn ibin(&mut self, op: IBin, a: MlirValue, b: MlirValue) -> MlirValue {
            let name = match op {
                IBin::Add => "arith.addi",
                IBin::Sub => "arith.subi",
                IBin::And => "arith.andi",
                IBin::Or => "arith.ori",
                IBin::Shl => "arith.shli",
                IBin::Shr => "arith.shrsi",
            };
            self.op(name, &[a, b], self.i64t, &[])
        }

        fn cmp(&mut self, p: Cmp, a: MlirValue, b: MlirValue) -> MlirValue {
            // arith::CmpFPredicate's values.
            let code = match p {
                Cmp::Oeq => 1,
                Cmp::Une => 13,
                Cmp::Ogt => 2,
                Cmp::Oge => 3,
                Cmp::Olt => 4,
                Cmp::Uno => 14,
            };
            // SAFETY: an i64 integer attribute of the live context.
            let attr = unsafe { mlirIntegerAttrGet(self.i64t, code) };
            self.op("arith.cmpf", &[a, b], self.i1t, &[("predicate", attr)])
        }

        fn or(&mut self, a: MlirValue, b: MlirValue) -> MlirValue {
            self.op("arith.ori", &[a, b], self.i1t, &[])
        }

        fn and(&mut self, a: MlirValue, b: MlirValue) -> MlirValue {
            self.op("arith.andi", &[a, b], self.i1t, &[])
        }

        fn sel(&mut self, c: MlirValue, a: MlirValue, b: MlirValue) -> MlirValue {
            self.op("arith.select", &[c, a, b], self.f64t, &[])
        }

        fn bits(&mut self, a: MlirValue) -> MlirValue {
            self.op("arith.bitcast", &[a], self.i64t, &[])
        }

        fn float_of_bits(&mut self, a: MlirValue) -> MlirValue {
            self.op("arith.bitcast", &[a], self.f64t, &[])
        }

        fn f2i(&mut self, a: MlirValue) -> MlirValue {
            self.op("arith.fptosi", &[a], self.i64t, &[])
        }

        fn i2f(&mut self, a: MlirValue) -> MlirValue {
            self.op("arith.sitofp", &[a], self.f64t, &[])
        }
    }

    /// Rewrites every scalar f64 op under `root` whose name `takes`.
    ///
    /// # Safety
    /// `root` must be a live operation.
    unsafe fn expand_all(root: MlirOperation, takes: impl Fn(&str) -> bool, fused: bool) {
        unsafe {
            let mut found = Vec::new();
            walk(root, |op| {
                let name = op_name(op);
                if takes(&name)
                    && mlirOperationGetNumResults(op) == 1
                    && mlirTypeIsAF64(mlirValueGetType(result(op)))
                    && (0..mlirOperationGetNumOperands(op))
                        .all(|i| mlirTypeIsAF64(mlirValueGetType(mlirOperationGetOperand(op, i))))
                {
                    found.push((op, name));
                }
                MlirWalkResult_MlirWalkResultAdvance
            });
            for (op, name) in found {
                let ctx = mlirOperationGetContext(op);
                let mut e = Emit {
                    ctx,
                    block: mlirOperationGetBlock(op),
                    before: op,
                    // Marked for `tensorc-vulkan-exact-float`, which makes
                    // the float arithmetic exact (`NoContraction`) in SPIR-V.
                    loc: mlirLocationNameGet(
                        ctx,
                        string_ref(crate::vulkan_math::EXACT_LOC),
                        mlirOperationGetLocation(op),
                    ),
                    f64t: mlirF64TypeGet(ctx),
                    i64t: mlirIntegerTypeGet(ctx, 64),
                    i1t: mlirIntegerTypeGet(ctx, 1),
                    fconsts: HashMap::new(),
                    iconsts: HashMap::new(),
                    fused,
                };
                let args: Vec<MlirValue> = (0..mlirOperationGetNumOperands(op))
                    .map(|i| mlirOperationGetOperand(op, i))
                    .collect();
                if let Some(y) = expand(&mut e, &name, &args) {
                    mlirValueReplaceAllUsesOfWith(result(op), y);
                    mlirOperationDestroy(op);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ops` on plain f64 values: runs an expansion on the CPU exactly as the
    /// emitted ops compute it (IEEE double, round to nearest; `fma` fused
    /// as the CPU's pass emits it, or two roundings as on Vulkan).
    struct Eval {
        fused: bool,
    }

    impl Ops for Eval {
        type F = f64;
        type I = i64;
        type B = bool;
        fn c(&mut self, v: f64) -> f64 {
            v
        }
        fn ci(&mut self, v: i64) -> i64 {
            v
        }
        fn fma(&mut self, a: f64, b: f64, c: f64) -> f64 {
            if self.fused { a.mul_add(b, c) } else { a * b + c }
        }
        fn fbin(&mut self, op: FBin, a: f64, b: f64) -> f64 {
            match op {
                FBin::Add => a + b,
                FBin::Sub => a - b,
                FBin::Mul => a * b,
                FBin::Div => a / b,
            }
        }
        fn fun(&mut self, op: FUn, a: f64) -> f64 {
            match op {
                FUn::Neg => -a,
                FUn::Abs => a.abs(),
                FUn::Floor => a.floor(),
                FUn::Sqrt => a.sqrt(),
            }
        }
        fn ibin(&mut self, op: IBin, a: i64, b: i64) -> i64 {
            match op {
                IBin::Add => a.wrapping_add(b),
                IBin::Sub => a.wrapping_sub(b),
                IBin::And => a & b,
                IBin::Or => a | b,
                IBin::Shl => {
                    assert!((0..64).contains(&b), "shift by {b}");
                    a << b
                }
                IBin::Shr => {
                    assert!((0..64).contains(&b), "shift by {b}");
                    a >> b
                }
            }
        }
        fn cmp(&mut self, p: Cmp, a: f64, b: f64) -> bool {
            match p {
                Cmp::Olt => a < b,
                Cmp::Ogt => a > b,
                Cmp::Oge => a >= b,
                Cmp::Oeq => a == b,
                Cmp::Une => a != b,
                Cmp::Uno => a.is_nan() || b.is_nan(),
            }
        }
        fn or(&mut self, a: bool, b: bool) -> bool {
            a || b
        }
        fn and(&mut self, a: bool, b: bool) -> bool {
            a && b
        }
        fn sel(&mut self, c: bool, a: f64, b: f64) -> f64 {
            if c { a } else { b }
        }
        fn bits(&mut self, a: f64) -> i64 {
            a.to_bits() as i64
        }
        fn float_of_bits(&mut self, a: i64) -> f64 {
            f64::from_bits(a as u64)
        }
        fn f2i(&mut self, a: f64) -> i64 {
            // Undefined on the GPU outside the range: a garbage value here,
            // so an expansion that depended on it would fail its test.
            if a.abs() < 9.0e18 {
                a as i64
            } else {
                0x5A5A_5A5A_5A5A_5A5A
            }
        }
        fn i2f(&mut self, a: i64) -> f64 {
            a as f64
        }
    }

    /// An expansion at `x`, with the CPU's fused (`fused`) or Vulkan's
    /// Horner steps.
    fn run_as(fused: bool, name: &str, x: f64) -> f64 {
        expand(&mut Eval { fused }, name, &[x]).expect("expanded op")
    }

    /// Distance in units in the last place (0 for equal values and for two NaNs).
    fn ulps(a: f64, b: f64) -> f64 {
        if a.is_nan() && b.is_nan() || a == b {
            return 0.0;
        }
        if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
            return f64::INFINITY;
        }
        let key = |v: f64| {
            let i = v.to_bits() as i64;
            if i < 0 { i64::MIN - i } else { i }
        };
        (key(a) as i128 - key(b) as i128).unsigned_abs() as f64
    }

    /// A deterministic spread of arguments: uniform in [lo, hi] and, for
    /// ranges around zero, log-uniform magnitudes down to 1e-300.
    fn args(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut v = Vec::with_capacity(2 * n);
        for _ in 0..n {
            v.push(lo + (hi - lo) * next());
        }
        if lo < 0.0 && hi > 0.0 || lo == 0.0 {
            for _ in 0..n {
                let m = 10f64.powf(-300.0 * next());
                let m = m * hi.abs().min(1.0);
                v.push(if lo < 0.0 && next() < 0.5 { -m } else { m });
            }
        }
        v
    }

    /// Per function: the reference (the interpreter's f64 function), argument
    /// ranges, and the largest error allowed in ulps.
    type Case = (&'static str, fn(f64) -> f64, &'static [(f64, f64)], f64);
    const BOUNDS: &[Case] = &[
        ("math.exp", f64::exp, &[(-745.0, 709.7), (-1.0, 1.0)], 1.0),
        (
            "math.expm1",
            f64::exp_m1,
            &[(-50.0, 709.7), (-1.0, 1.0)],
            2.0,
        ),
        ("math.log", f64::ln, &[(0.0, 4.0), (0.0, 1e300)], 1.0),
        ("math.log1p", f64::ln_1p, &[(-1.0, 1.0), (0.0, 1e300)], 1.0),
        ("math.sin", f64::sin, &[(-1e5, 1e5), (-4.0, 4.0)], 1.0),
        ("math.cos", f64::cos, &[(-1e5, 1e5), (-4.0, 4.0)], 1.0),
        ("math.tan", f64::tan, &[(-1e5, 1e5), (-1.6, 1.6)], 3.0),
        (
            "math.atan",
            f64::atan,
            &[(-1e3, 1e3), (-2.0, 2.0), (0.0, 1e300)],
            4.0,
        ),
        ("math.sinh", f64::sinh, &[(-710.0, 710.0), (-2.0, 2.0)], 3.0),
        ("math.cosh", f64::cosh, &[(-710.0, 710.0), (-2.0, 2.0)], 3.0),
        ("math.tanh", f64::tanh, &[(-25.0, 25.0), (-1.0, 1.0)], 3.0),
        (
            "math.asinh",
            f64::asinh,
            &[(-1e3, 1e3), (-2.0, 2.0), (0.0, 1e300)],
            3.0,
        ),
        (
            "math.acosh",
            tensorc_interp::special::acosh,
            &[(1.0, 3.0), (1.0, 1e300)],
            2.0,
        ),
        (
            "math.atanh",
            tensorc_interp::special::atanh,
            &[(-1.0, 1.0)],
            2.0,
        ),
        (
            "math.erf",
            tensorc_interp::special::erf,
            &[(-7.0, 7.0), (-1.0, 1.0)],
            4.0,
        ),
        (
            "math.erfc",
            tensorc_interp::special::erfc,
            &[(-7.0, 30.0), (-1.0, 1.0), (0.4, 2.1)],
            4.0,
        ),
        ("math.asin", f64::asin, &[(-1.0, 1.0)], 5.0),
        ("math.acos", f64::acos, &[(-1.0, 1.0)], 4.0),
        ("math.cbrt", f64::cbrt, &[(-1e3, 1e3), (0.0, 1e300)], 1.0),
    ];

    const BINARY: &[&str] = &["math.atan2", "math.powf"];

    /// Both forms: Vulkan's (two roundings per Horner step) and the CPU's
    /// (fused).
    #[test]
    fn every_expansion_is_accurate_to_a_few_ulps() {
        let mut report = Vec::new();
        for fused in [false, true] {
            for &(name, reference, ranges, bound) in BOUNDS {
                let mut worst = (0.0, 0.0);
                for &(lo, hi) in ranges {
                    for x in args(lo, hi, 20_000) {
                        let e = ulps(run_as(fused, name, x), reference(x));
                        if e > worst.0 {
                            worst = (e, x);
                        }
                    }
                }
                eprintln!("{name} (fused {fused}): worst {} ulps at {:e}", worst.0, worst.1);
                if worst.0 > bound {
                    report.push(format!(
                        "{name}({:e}) = {:e} (fused {fused}), reference {:e}: {} ulps > {bound}",
                        worst.1,
                        run_as(fused, name, worst.1),
                        reference(worst.1),
                        worst.0
                    ));
                }
            }
        }
        assert!(report.is_empty(), "{}", report.join("\n"));
    }

    #[test]
    fn special_values_match_the_interpreter_exactly() {
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::MAX,
            -f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            1e-300,
            710.0,
            -746.0,
            1e30,
            -1e19,
        ];
        let mut bad = Vec::new();
        for (fused, &(name, reference, _, _)) in [false, true].into_iter().flat_map(|f| BOUNDS.iter().map(move |c| (f, c))) {
            for x in specials {
                let (got, want) = (run_as(fused, name, x), reference(x));
                // Exactly the interpreter's NaN/inf/zero (with its sign);
                // finite values within the function's bound, except for the
                // reductions of huge trig arguments (documented as approximate).
                let same_kind = got.is_nan() == want.is_nan()
                    && (got.is_infinite() == want.is_infinite())
                    && (want != 0.0
                        || (got == 0.0 && got.is_sign_negative() == want.is_sign_negative()))
                    && (!want.is_infinite() || got == want);
                let trig_huge =
                    ["math.sin", "math.cos", "math.tan"].contains(&name) && x.abs() > 1e6;
                // std's asinh overflows to inf above ~9e307 (it forms 2|x|);
                // the true value is about 710.
                if name == "math.asinh" && x.is_finite() && x.abs() > 9e307 {
                    assert!(
                        (got.abs() - 710.475_860_073_943_9).abs() < 1e-12,
                        "asinh({x:e}) = {got}"
                    );
                    continue;
                }
                if trig_huge && x.is_finite() {
                    assert!(
                        got.is_finite() && got.abs() <= 1.0
                            || name == "math.tan" && got.is_finite(),
                        "{name}({x:e}) = {got}"
                    );
                }
                let close = trig_huge || !want.is_finite() || ulps(got, want) <= 2.0;
                if !same_kind || !close {
                    bad.push(format!("{name}({x:e}) = {got:e}, interpreter {want:e}"));
                }
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn every_listed_op_expands_and_no_other() {
        for name in EXPANDED {
            let args: &[f64] = if BINARY.contains(name) {
                &[0.5, 0.25]
            } else {
                &[0.5]
            };
            assert!(expand(&mut Eval { fused: false }, name, args).is_some(), "{name}");
            assert!(expand(&mut Eval { fused: false }, name, &[0.5; 3]).is_none(), "{name}");
        }
        assert!(expand(&mut Eval { fused: false }, "math.sqrt", &[0.5]).is_none());
        assert!(expand(&mut Eval { fused: false }, "math.exp", &[0.5, 1.0]).is_none());
    }

    #[test]
    fn the_split_constants_are_what_they_claim() {
        // k * HI exact: HI has at most 21 significant bits.
        assert_eq!(LN2_HI.to_bits() & 0xFFFF_FFFF, 0);
        assert_eq!(P1.to_bits() & 0xFFFF_FFFF, 0);
        assert_eq!(
            LN2_HI + (std::f64::consts::LN_2 - LN2_HI),
            std::f64::consts::LN_2
        );
        assert_eq!(P1 + P2, std::f64::consts::FRAC_PI_2);
        // The low parts are the right size: ln2 - fl(ln2) ≈ 2.3e-17, π/2 - fl(π/2) ≈ 6.1e-17.
        assert!((LN2_LO - (std::f64::consts::LN_2 - LN2_HI) - 2.319e-17).abs() < 1e-20);
        assert!((P3 - 6.1232e-17).abs() < 1e-20);
    }

    /// The binary functions on a grid of arguments (every pair of a spread
    /// of values and the special ones), against libm.
    #[test]
    fn atan2_and_pow_match_libm() {
        let mut vals = args(-50.0, 50.0, 300);
        vals.extend(args(0.0, 2.0, 100));
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.0,
            -2.0,
            0.5,
            -0.5,
            3.0,
            -3.0,
            1e300,
            -1e300,
            5e-324,
            1e-300,
        ];
        vals.extend(specials);
        let mut bad = Vec::new();
        let mut worst = [(0.0f64, 0.0, 0.0); 2];
        for &a in &vals {
            for &b in &vals {
                let pairs = [("math.atan2", a.atan2(b)), ("math.powf", a.powf(b))];
                for (i, (name, want)) in pairs.into_iter().enumerate() {
                    let got = expand(&mut Eval { fused: false }, name, &[a, b]).expect("binary op");
                    let e = ulps(got, want);
                    if e > worst[i].0 {
                        worst[i] = (e, a, b);
                    }
                    // NaN, infinities and zeros (with their signs) exactly.
                    let exact = !want.is_finite() || want == 0.0;
                    let ok = if exact {
                        got.is_nan() == want.is_nan()
                            && (want.is_nan()
                                || got == want && got.is_sign_negative() == want.is_sign_negative())
                    } else if name == "math.powf" {
                        // ln|x| carries ~2^-58 of relative error, which the
                        // product with y magnifies.
                        let k = (b * a.abs().ln()).abs();
                        e <= 4.0 + if k.is_finite() { k / 16.0 } else { 0.0 }
                    } else {
                        e <= 4.0
                    };
                    if !ok {
                        bad.push(format!(
                            "{name}({a:e}, {b:e}) = {got:e}, libm {want:e} ({e} ulps)"
                        ));
                    }
                }
            }
        }
        eprintln!("atan2 worst {:?}, pow worst {:?}", worst[0], worst[1]);
        bad.truncate(20);
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}

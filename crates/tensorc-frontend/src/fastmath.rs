//! `exp` and `tanh` of f32 written out in `arith`/`math.floor` ops, so that
//! they vectorize.
//!
//! `math.exp`/`math.tanh` reach LLVM as intrinsics that the x86 back end
//! turns into one libm call per lane: a vectorized element-wise loop (W4's
//! `tanh`, W5's softmax) then runs at scalar libm speed. MLIR 22 has
//! polynomial expansions of these ops only as a test pass that the C API
//! does not register, so the frontend writes them out itself: a range
//! reduction to `2^n · e^r` with `|r| ≤ ln2/2`, the Taylor series of `e^r`
//! (coefficients 1/k!), and the power of two built from its exponent bits.
//! Measured against f64 references over 4 million inputs (a NumPy model of
//! exactly these steps): `exp` is within 1 ulp for normal results and
//! within one subnormal step below them, `tanh` within 3 ulps; both well
//! inside the 16-ulp budget the differential tests allow math functions.
//! NaN, ±inf, ±0 and overflow/underflow give the IEEE results.

use tensorc_ir::types::DType;

use crate::emit::Emitter;

/// ln 2 split so that `n · LN2_HI` is exact for the |n| ≤ 150 used here
/// (LN2_HI has 9 significant bits): Cody and Waite's reduction.
const LN2_HI: f64 = 0.693359375;
const LN2_LO: f64 = -2.121944400546905827679e-4;

impl Emitter<'_> {
    /// `x · log2(e)` rounded to an integer (as f32), and `r = x − n·ln 2`.
    fn reduce_ln2(&mut self, x: &str) -> (String, String) {
        let d = DType::F32;
        let log2e = self.float_const(d, std::f64::consts::LOG2_E);
        let half = self.float_const(d, 0.5);
        let scaled = self.bin("arith.mulf", x, &log2e, "f32");
        let shifted = self.bin("arith.addf", &scaled, &half, "f32");
        let n = self.un("math.floor", &shifted, "f32");
        let hi = self.float_const(d, LN2_HI);
        let lo = self.float_const(d, LN2_LO);
        let nh = self.bin("arith.mulf", &n, &hi, "f32");
        let r = self.bin("arith.subf", x, &nh, "f32");
        let nl = self.bin("arith.mulf", &n, &lo, "f32");
        let r = self.bin("arith.subf", &r, &nl, "f32");
        (n, r)
    }

    /// Horner evaluation of `c[0] + r·(c[1] + r·(…))`, innermost first.
    fn horner(&mut self, r: &str, coefficients: &[f64]) -> String {
        let mut rev = coefficients.iter().rev();
        let last = rev.next().copied().unwrap_or(0.0);
        let mut acc = self.float_const(DType::F32, last);
        for &c in rev {
            let m = self.bin("arith.mulf", &acc, r, "f32");
            let k = self.float_const(DType::F32, c);
            acc = self.bin("arith.addf", &m, &k, "f32");
        }
        acc
    }

    /// 2^n for an f32 integer `n` in [-126, 127], from its exponent bits.
    fn pow2(&mut self, n: &str) -> String {
        let i = self.cast("arith.fptosi", n, "f32", "i32");
        self.pow2_int(&i)
    }

    fn pow2_int(&mut self, i: &str) -> String {
        let bias = self.int_const(DType::S32, 127);
        let e = self.bin("arith.addi", i, &bias, "i32");
        let sh = self.int_const(DType::S32, 23);
        let bits = self.bin("arith.shli", &e, &sh, "i32");
        self.cast("arith.bitcast", &bits, "i32", "f32")
    }

    /// The Taylor coefficients 1/k! for k = 0..=n.
    fn inverse_factorials(n: usize) -> Vec<f64> {
        let mut c = vec![1.0];
        for k in 1..=n {
            let prev = c[k - 1];
            c.push(prev / k as f64);
        }
        c
    }

    /// `e^x` of an f32 scalar.
    pub fn exp_f32(&mut self, x: &str) -> String {
        let d = DType::F32;
        // Clamped so that 2^n stays representable as two normal factors:
        // below -104 the result rounds to 0, above 89 it overflows to inf
        // either way. `minnumf`/`maxnumf` drop a NaN; it is put back last.
        let lo = self.float_const(d, -104.0);
        let hi = self.float_const(d, 89.0);
        let xc = self.bin("arith.maxnumf", x, &lo, "f32");
        let xc = self.bin("arith.minnumf", &xc, &hi, "f32");
        let (n, r) = self.reduce_ln2(&xc);
        // |r| ≤ 0.3466: the r^8/8! term left out is below 0.1 ulp.
        let p = self.horner(&r, &Self::inverse_factorials(7));
        // n ∈ [-150, 129] is applied in two halves, each a normal 2^k, so
        // results that are subnormal or overflow are rounded only once.
        let ni = self.cast("arith.fptosi", &n, "f32", "i32");
        let one = self.int_const(DType::S32, 1);
        let n1 = self.bin("arith.shrsi", &ni, &one, "i32");
        let n2 = self.bin("arith.subi", &ni, &n1, "i32");
        let s1 = self.pow2_int(&n1);
        let s2 = self.pow2_int(&n2);
        let y = self.bin("arith.mulf", &p, &s1, "f32");
        let y = self.bin("arith.mulf", &y, &s2, "f32");
        let nan = self.cmpf("uno", x, x, d);
        self.select(&nan, x, &y, "f32")
    }

    /// `tanh x` of an f32 scalar, as `m / (m + 2)` with `m = e^{2|x|} − 1`
    /// (no cancellation for small |x|: `m` comes from the series of
    /// `e^r − 1`), then the sign of x.
    pub fn tanh_f32(&mut self, x: &str) -> String {
        let d = DType::F32;
        let ax = self.un("math.absf", x, "f32");
        let two = self.float_const(d, 2.0);
        let t = self.bin("arith.mulf", &ax, &two, "f32");
        // tanh(9) rounds to 1 in f32; the clamp keeps 2^n small (n ≤ 26).
        let cap = self.float_const(d, 18.0);
        let t = self.bin("arith.minnumf", &t, &cap, "f32");
        let (n, r) = self.reduce_ln2(&t);
        // q = e^r − 1 = r·(1 + r/2 + r²/6 + … + r^7/8!).
        let c: Vec<f64> = Self::inverse_factorials(8).into_iter().skip(1).collect();
        let inner = self.horner(&r, &c);
        let q = self.bin("arith.mulf", &inner, &r, "f32");
        // m = 2^n·(1 + q) − 1 = 2^n·q + (2^n − 1); 2^n − 1 is exact for n ≤ 24.
        let s = self.pow2(&n);
        let one = self.float_const(d, 1.0);
        let sq = self.bin("arith.mulf", &s, &q, "f32");
        let sm1 = self.bin("arith.subf", &s, &one, "f32");
        let m = self.bin("arith.addf", &sq, &sm1, "f32");
        let den = self.bin("arith.addf", &m, &two, "f32");
        let th = self.bin("arith.divf", &m, &den, "f32");
        let zero = self.float_const(d, 0.0);
        let neg = self.cmpf("olt", x, &zero, d);
        let nth = self.un("arith.negf", &th, "f32");
        let signed = self.select(&neg, &nth, &th, "f32");
        // ±0 and NaN are their own tanh (this keeps -0.0 and the NaN payload).
        let keep = self.cmpf("ueq", x, &zero, d);
        self.select(&keep, x, &signed, "f32")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_factorials_are_one_over_k_factorial() {
        let c = Emitter::inverse_factorials(5);
        assert_eq!(c, vec![1.0, 1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0]);
    }

    #[test]
    fn ln2_split_sums_to_ln2_and_its_high_part_is_short() {
        assert!((LN2_HI + LN2_LO - std::f64::consts::LN_2).abs() < 1e-15);
        // 9 significant bits: n·LN2_HI is exact in f32 for |n| < 2^15.
        assert_eq!((LN2_HI * 512.0).fract(), 0.0);
    }
}

//! Scalar semantics of every element-wise op, emitted inside `linalg.generic`
//! bodies.
//!
//! This is where Nx's rules (spec §4.2) meet MLIR's signless integers and
//! poison-producing ops: signedness is chosen per op from the dtype, and every
//! op that could trap or yield poison (division by zero, `MIN / -1`, shifts by
//! the width or more, out-of-range float→int casts) gets its operand selected
//! into a safe range *before* the op runs, then the Nx result selected after.

use tensorc_ir::graph::{BinaryOp, UnaryOp};
use tensorc_ir::types::DType;

use crate::emit::{Emitter, elem};

impl Emitter<'_> {
    /// Convert a scalar from `from` to `to` with Nx's `as_type` rule.
    pub fn convert(&mut self, v: &str, from: DType, to: DType) -> String {
        let (f, t) = (elem(from), elem(to));
        if from == to {
            return v.to_string();
        }
        match (from.is_float(), to.is_float()) {
            (false, false) => {
                if from.bits() == to.bits() {
                    v.to_string()
                } else if from.bits() > to.bits() {
                    self.cast("arith.trunci", v, f, t)
                } else if from.is_signed_int() {
                    self.cast("arith.extsi", v, f, t)
                } else {
                    self.cast("arith.extui", v, f, t)
                }
            }
            (false, true) => {
                let op = if from.is_signed_int() { "arith.sitofp" } else { "arith.uitofp" };
                self.cast(op, v, f, t)
            }
            (true, true) => {
                if from.bits() == to.bits() {
                    // f16 <-> bf16: same width, different formats; f32 holds both exactly.
                    let w = self.cast("arith.extf", v, f, "f32");
                    self.cast("arith.truncf", &w, "f32", t)
                } else if from.bits() < to.bits() {
                    self.cast("arith.extf", v, f, t)
                } else if from == DType::F64 && to == DType::BF16 {
                    // Through f32, as the interpreter converts: a direct
                    // f64 -> bf16 truncation is a libcall (`__truncdfbf2`)
                    // that the JIT cannot resolve.
                    let w = self.cast("arith.truncf", v, f, "f32");
                    self.cast("arith.truncf", &w, "f32", t)
                } else {
                    self.cast("arith.truncf", v, f, t)
                }
            }
            (true, false) => self.float_to_int(v, from, to),
        }
    }

    /// Truncation toward zero that saturates and maps NaN to 0. `fptosi` is
    /// poison out of range, so the input is first selected into range.
    fn float_to_int(&mut self, v: &str, from: DType, to: DType) -> String {
        // Half-precision inputs widen first so the range bounds are representable.
        let (v, from) = if from.bits() < 32 {
            (self.convert(v, from, DType::F32), DType::F32)
        } else {
            (v.to_string(), from)
        };
        let (lo, hi) = to.int_range().expect("integer dtype");
        let t = elem(to);
        // Exclusive upper bound hi + 1 is a power of two, exact in any float.
        let lo_f = self.float_const(from, lo as f64);
        let hi_f = self.float_const(from, (hi + 1) as f64);
        let below = self.cmpf("olt", &v, &lo_f, from);
        let above = self.cmpf("oge", &v, &hi_f, from);
        let nan = self.cmpf("uno", &v, &v, from);
        let in_lo = self.cmpf("oge", &v, &lo_f, from);
        let in_hi = self.cmpf("olt", &v, &hi_f, from);
        let inside = self.bin("arith.andi", &in_lo, &in_hi, "i1");
        let zero_f = self.float_const(from, 0.0);
        let safe = self.select(&inside, &v, &zero_f, elem(from));
        let op = if to.is_signed_int() { "arith.fptosi" } else { "arith.fptoui" };
        let r = self.cast(op, &safe, elem(from), t);
        let min = self.int_const(to, lo);
        let max = self.int_const(to, hi);
        let zero = self.int_const(to, 0);
        let r = self.select(&above, &max, &r, t);
        let r = self.select(&below, &min, &r, t);
        self.select(&nan, &zero, &r, t)
    }

    /// `x != 0` as i1 (NaN counts as true: it is not zero).
    pub fn truthy(&mut self, v: &str, d: DType) -> String {
        if d.is_float() {
            let z = self.float_const(d, 0.0);
            self.cmpf("une", v, &z, d)
        } else {
            let z = self.int_const(d, 0);
            self.cmpi("ne", v, &z, d)
        }
    }

    /// i1 → u8 0/1.
    pub fn bool_to_u8(&mut self, b: &str) -> String {
        self.cast("arith.extui", b, "i1", "i8")
    }

    /// A unary op on `x` of dtype `d` (already the float type for math ops).
    pub fn unary(&mut self, op: UnaryOp, x: &str, d: DType) -> String {
        use UnaryOp::*;
        let t = elem(d);
        let float = d.is_float();
        match op {
            Negate if float => self.un("arith.negf", x, t),
            Negate => {
                let z = self.int_const(d, 0);
                self.bin("arith.subi", &z, x, t)
            }
            Abs if float => self.un("math.absf", x, t),
            Abs if d.is_signed_int() => self.un("math.absi", x, t),
            Abs => x.to_string(),
            Sign => self.sign(x, d),
            Floor | Ceil | Round if !float => x.to_string(),
            Floor => self.un("math.floor", x, t),
            Ceil => self.un("math.ceil", x, t),
            Round => self.un("math.round", x, t),
            BitwiseNot => {
                let ones = self.int_const(d, -1);
                self.bin("arith.xori", x, &ones, t)
            }
            PopulationCount => self.un("math.ctpop", x, t),
            CountLeadingZeros => self.un("math.ctlz", x, t),
            // f32 exp, expm1, tanh, log, log1p, erf, asinh, acosh, atanh and cbrt in
            // vectorizable arith (fastmath.rs).
            Exp if d == DType::F32 => self.exact(|e| e.exp_f32(x)),
            Exp => self.un("math.exp", x, t),
            Expm1 if d != DType::F64 => self.in_f32(x, d, |e, v| e.expm1_f32(v)),
            Expm1 => self.un("math.expm1", x, t),
            Log if d == DType::F32 => self.exact(|e| e.log_f32(x)),
            Log => self.un("math.log", x, t),
            Log1p if d != DType::F64 => self.in_f32(x, d, |e, v| e.log1p_f32(v)),
            Log1p => self.un("math.log1p", x, t),
            Sigmoid => {
                let n = self.un("arith.negf", x, t);
                let e = if d == DType::F32 { self.exact(|e| e.exp_f32(&n)) } else { self.un("math.exp", &n, t) };
                let one = self.float_const(d, 1.0);
                let s = self.bin("arith.addf", &one, &e, t);
                self.bin("arith.divf", &one, &s, t)
            }
            Sin => self.un("math.sin", x, t),
            Cos => self.un("math.cos", x, t),
            Tan => self.un("math.tan", x, t),
            Asin => self.un("math.asin", x, t),
            Acos => self.un("math.acos", x, t),
            Atan => self.un("math.atan", x, t),
            Sinh => self.un("math.sinh", x, t),
            Cosh => self.un("math.cosh", x, t),
            Tanh if d == DType::F32 => self.exact(|e| e.tanh_f32(x)),
            Tanh => self.un("math.tanh", x, t),
            Asinh if d != DType::F64 => self.in_f32(x, d, |e, v| e.asinh_f32(v)),
            Asinh => self.un("math.asinh", x, t),
            Acosh if d != DType::F64 => self.in_f32(x, d, |e, v| e.acosh_f32(v)),
            Acosh => self.un("math.acosh", x, t),
            Atanh if d != DType::F64 => self.in_f32(x, d, |e, v| e.atanh_f32(v)),
            Atanh => self.un("math.atanh", x, t),
            Sqrt => self.un("math.sqrt", x, t),
            Rsqrt => self.un("math.rsqrt", x, t),
            Cbrt if d != DType::F64 => self.in_f32(x, d, |e, v| e.cbrt_f32(v)),
            Cbrt => self.un("math.cbrt", x, t),
            Erf if d == DType::F32 => self.exact(|e| e.erf_f32(x)),
            Erf => self.un("math.erf", x, t),
            Erfc => self.un("math.erfc", x, t),
            ErfInv => self.erf_inv(x, d),
            IsNan => {
                let c = if float { self.cmpf("uno", x, x, d) } else { self.bool_const(false) };
                self.bool_to_u8(&c)
            }
            IsInfinity => {
                let c = if float {
                    let a = self.un("math.absf", x, t);
                    let inf = self.float_const(d, f64::INFINITY);
                    self.cmpf("oeq", &a, &inf, d)
                } else {
                    self.bool_const(false)
                };
                self.bool_to_u8(&c)
            }
            LogicalNot => {
                let c = self.truthy(x, d);
                let tr = self.bool_const(true);
                let n = self.bin("arith.xori", &c, &tr, "i1");
                self.bool_to_u8(&n)
            }
        }
    }

    /// An f32 expansion of `fastmath.rs`, run under [`Emitter::exact`], on
    /// `x` of the float type `d`, `widened` (f16's own arithmetic lost
    /// small arguments: Vulkan's f16 `atanh(2^-12)` and `log1p(2^-11)`
    /// were 0).
    fn in_f32(&mut self, x: &str, d: DType, f: impl FnOnce(&mut Self, &str) -> String) -> String {
        self.widened(x, d, |e, v| e.exact(|e| f(e, v)))
    }

    /// `f` of `x` (float type `d`) computed in f32: f16 and bf16 widened
    /// first and the result rounded back once.
    fn widened(&mut self, x: &str, d: DType, f: impl FnOnce(&mut Self, &str) -> String) -> String {
        if d == DType::F32 {
            return f(self, x);
        }
        let w = self.convert(x, d, DType::F32);
        let r = f(self, &w);
        self.convert(&r, DType::F32, d)
    }

    /// -1, 0 or 1; NaN (and ±0) pass through unchanged.
    fn sign(&mut self, x: &str, d: DType) -> String {
        let t = elem(d);
        let zero = self.num_const(d, 0.0);
        let one = self.num_const(d, 1.0);
        if d.is_unsigned_int() {
            let nz = self.cmpi("ne", x, &zero, d);
            return self.select(&nz, &one, &zero, t);
        }
        let minus = self.num_const(d, -1.0);
        let (pos, neg, rest) = if d.is_float() {
            (self.cmpf("ogt", x, &zero, d), self.cmpf("olt", x, &zero, d), x.to_string())
        } else {
            (self.cmpi("sgt", x, &zero, d), self.cmpi("slt", x, &zero, d), zero.clone())
        };
        let r = self.select(&neg, &minus, &rest, t);
        self.select(&pos, &one, &r, t)
    }

    /// Inverse error function: M. Giles' single-precision rational-free
    /// polynomial approximation ("Approximating the erfinv function", GPU
    /// Computing Gems, 2011), refined for f64 with Newton steps on `erf`.
    /// ±1 give ±infinity, |x| > 1 gives NaN.
    fn erf_inv(&mut self, x: &str, d: DType) -> String {
        // Half-precision: compute in f32 and round once at the end.
        if d.bits() < 32 {
            return self.widened(x, d, |e, v| e.erf_inv(v, DType::F32));
        }
        let t = elem(d);
        const CENTRAL: [f64; 9] = [
            2.81022636e-08,
            3.43273939e-07,
            -3.5233877e-06,
            -4.39150654e-06,
            0.00021858087,
            -0.00125372503,
            -0.00417768164,
            0.246640727,
            1.50140941,
        ];
        const TAIL: [f64; 9] = [
            -0.000200214257,
            0.000100950558,
            0.00134934322,
            -0.00367342844,
            0.00573950773,
            -0.0076224613,
            0.00943887047,
            1.00167406,
            2.83297682,
        ];
        let one = self.float_const(d, 1.0);
        // w = -log((1 - x)(1 + x))
        let a = self.bin("arith.subf", &one, x, t);
        let b = self.bin("arith.addf", &one, x, t);
        let ab = self.bin("arith.mulf", &a, &b, t);
        // f32: the frontend's `log` (a libm call per lane otherwise: 4M
        // f32 took 11 ms on one thread).
        let l = if d == DType::F32 { self.exact(|e| e.log_f32(&ab)) } else { self.un("math.log", &ab, t) };
        let w = self.un("arith.negf", &l, t);
        let five = self.float_const(d, 5.0);
        let central = self.cmpf("olt", &w, &five, d);
        let c25 = self.float_const(d, 2.5);
        let wc = self.bin("arith.subf", &w, &c25, t);
        let sq = self.un("math.sqrt", &w, t);
        let c3 = self.float_const(d, 3.0);
        let wt = self.bin("arith.subf", &sq, &c3, t);
        let horner = |e: &mut Self, coeffs: &[f64], z: &str| {
            let mut p = e.float_const(d, coeffs[0]);
            for &c in &coeffs[1..] {
                let k = e.float_const(d, c);
                let m = e.bin("arith.mulf", &p, z, t);
                p = e.bin("arith.addf", &k, &m, t);
            }
            p
        };
        let pc = horner(self, &CENTRAL, &wc);
        let pt = horner(self, &TAIL, &wt);
        let p = self.select(&central, &pc, &pt, t);
        let mut r = self.bin("arith.mulf", &p, x, t);
        if d == DType::F64 {
            // Newton on f(r) = erf(r) - x, f'(r) = 2/sqrt(pi) * exp(-r^2).
            let k = self.float_const(d, std::f64::consts::FRAC_2_SQRT_PI);
            for _ in 0..2 {
                let e = self.un("math.erf", &r, t);
                let f = self.bin("arith.subf", &e, x, t);
                let r2 = self.bin("arith.mulf", &r, &r, t);
                let nr2 = self.un("arith.negf", &r2, t);
                let ex = self.un("math.exp", &nr2, t);
                let fp = self.bin("arith.mulf", &k, &ex, t);
                let step = self.bin("arith.divf", &f, &fp, t);
                r = self.bin("arith.subf", &r, &step, t);
            }
        }
        let ax = self.un("math.absf", x, t);
        let is_one = self.cmpf("oeq", &ax, &one, d);
        let inf = self.float_const(d, f64::INFINITY);
        let sinf = self.bin("math.copysign", &inf, x, t);
        self.select(&is_one, &sinf, &r, t)
    }

    /// A binary op on `a`, `b` already converted to `c`. Predicates return u8.
    pub fn binary(&mut self, op: BinaryOp, a: &str, b: &str, c: DType) -> String {
        use BinaryOp::*;
        let t = elem(c);
        let float = c.is_float();
        let signed = c.is_signed_int();
        let pick = |f: &'static str, s: &'static str, u: &'static str| {
            if float {
                f
            } else if signed {
                s
            } else {
                u
            }
        };
        match op {
            Add => self.bin(pick("arith.addf", "arith.addi", "arith.addi"), a, b, t),
            Subtract => self.bin(pick("arith.subf", "arith.subi", "arith.subi"), a, b, t),
            Multiply => self.bin(pick("arith.mulf", "arith.muli", "arith.muli"), a, b, t),
            Divide => self.bin("arith.divf", a, b, t),
            Atan2 => self.atan2(a, b, c),
            Max => self.bin(pick("arith.maximumf", "arith.maxsi", "arith.maxui"), a, b, t),
            Min => self.bin(pick("arith.minimumf", "arith.minsi", "arith.minui"), a, b, t),
            BitwiseAnd => self.bin("arith.andi", a, b, t),
            BitwiseOr => self.bin("arith.ori", a, b, t),
            BitwiseXor => self.bin("arith.xori", a, b, t),
            Pow if float => self.bin("math.powf", a, b, t),
            Pow => self.int_pow(a, b, c),
            Remainder if float => self.bin("arith.remf", a, b, t),
            Remainder | Quotient => self.int_div(op == Quotient, a, b, c),
            LeftShift | RightShift => self.shift(op == LeftShift, a, b, c),
            Equal | NotEqual | Less | LessEqual | Greater | GreaterEqual => {
                let p = if float {
                    let pred = match op {
                        Equal => "oeq",
                        NotEqual => "une",
                        Less => "olt",
                        LessEqual => "ole",
                        Greater => "ogt",
                        _ => "oge",
                    };
                    self.cmpf(pred, a, b, c)
                } else {
                    let pred = match (op, signed) {
                        (Equal, _) => "eq",
                        (NotEqual, _) => "ne",
                        (Less, true) => "slt",
                        (Less, false) => "ult",
                        (LessEqual, true) => "sle",
                        (LessEqual, false) => "ule",
                        (Greater, true) => "sgt",
                        (Greater, false) => "ugt",
                        (_, true) => "sge",
                        (_, false) => "uge",
                    };
                    self.cmpi(pred, a, b, c)
                };
                self.bool_to_u8(&p)
            }
            LogicalAnd | LogicalOr | LogicalXor => {
                let x = self.truthy(a, c);
                let y = self.truthy(b, c);
                let o = match op {
                    LogicalAnd => "arith.andi",
                    LogicalOr => "arith.ori",
                    _ => "arith.xori",
                };
                let r = self.bin(o, &x, &y, "i1");
                self.bool_to_u8(&r)
            }
        }
    }

    /// `atan2(a, b)` with C's (and Nx's) signed-zero results when both are
    /// zero: `atan2(±0, +0) = ±0`, `atan2(±0, -0) = ±π`. The library call
    /// gets these right, but MLIR 22's canonicalizer folds `math.atan2` of
    /// two constant zeros to NaN, which happens whenever fusion lets it see
    /// zeros computed upstream; selecting the answer keeps it right either way.
    fn atan2(&mut self, a: &str, b: &str, c: DType) -> String {
        let t = elem(c);
        let r = self.bin("math.atan2", a, b, t);
        let zero = self.float_const(c, 0.0);
        let a_zero = self.cmpf("oeq", a, &zero, c);
        let b_zero = self.cmpf("oeq", b, &zero, c);
        let both = self.bin("arith.andi", &a_zero, &b_zero, "i1");
        // b's sign bit: copysign(1, b) is -1 exactly when it is set.
        let one = self.float_const(c, 1.0);
        let b_sign = self.bin("math.copysign", &one, b, t);
        let b_neg = self.cmpf("olt", &b_sign, &zero, c);
        let pi = self.float_const(c, std::f64::consts::PI);
        let magnitude = self.select(&b_neg, &pi, &zero, t);
        let at_zero = self.bin("math.copysign", &magnitude, a, t);
        self.select(&both, &at_zero, &r, t)
    }

    /// `quotient`/`remainder` on integers, never trapping: the divisor is
    /// replaced by 1 whenever it is 0 or the division is `MIN / -1`, and the
    /// Nx result for those cases is selected afterwards.
    fn int_div(&mut self, quotient: bool, a: &str, b: &str, c: DType) -> String {
        let t = elem(c);
        let zero = self.int_const(c, 0);
        let one = self.int_const(c, 1);
        let by_zero = self.cmpi("eq", b, &zero, c);
        let r = if c.is_signed_int() {
            let (min, _) = c.int_range().expect("integer dtype");
            let min = self.int_const(c, min);
            let m1 = self.int_const(c, -1);
            let a_min = self.cmpi("eq", a, &min, c);
            let b_m1 = self.cmpi("eq", b, &m1, c);
            let overflow = self.bin("arith.andi", &a_min, &b_m1, "i1");
            let bad = self.bin("arith.ori", &by_zero, &overflow, "i1");
            // With the divisor 1, MIN / 1 = MIN and MIN % 1 = 0: Nx's results.
            let safe = self.select(&bad, &one, b, t);
            self.bin(if quotient { "arith.divsi" } else { "arith.remsi" }, a, &safe, t)
        } else {
            let safe = self.select(&by_zero, &one, b, t);
            self.bin(if quotient { "arith.divui" } else { "arith.remui" }, a, &safe, t)
        };
        // x / 0 is -1 (all ones for unsigned); x % 0 is x.
        let on_zero = if quotient { self.int_const(c, -1) } else { a.to_string() };
        self.select(&by_zero, &on_zero, &r, t)
    }

    /// Shifts by a count outside `[0, bits)` give 0 (or -1 for a negative
    /// signed value shifted right); the count is made safe first because
    /// LLVM shifts by ≥ width are poison.
    fn shift(&mut self, left: bool, a: &str, b: &str, c: DType) -> String {
        let t = elem(c);
        let bits = self.int_const(c, c.bits() as i128);
        // Unsigned compare: negative counts are huge, so out of range too.
        let inside = self.cmpi("ult", b, &bits, c);
        let zero = self.int_const(c, 0);
        let safe = self.select(&inside, b, &zero, t);
        if left {
            let r = self.bin("arith.shli", a, &safe, t);
            self.select(&inside, &r, &zero, t)
        } else if c.is_signed_int() {
            let r = self.bin("arith.shrsi", a, &safe, t);
            let top = self.int_const(c, c.bits() as i128 - 1);
            let fill = self.bin("arith.shrsi", a, &top, t);
            self.select(&inside, &r, &fill, t)
        } else {
            let r = self.bin("arith.shrui", a, &safe, t);
            self.select(&inside, &r, &zero, t)
        }
    }

    /// Exact (wrapping) integer power. `math.ipowi` treats its exponent as
    /// signed, so only non-negative exponents below 2^(bits-1) go to it; a
    /// negative signed exponent gives 0 unless the base is ±1, and an unsigned
    /// exponent with its top bit set is split as b^lo * (b^(2^(bits-2)))^2.
    fn int_pow(&mut self, a: &str, b: &str, c: DType) -> String {
        let t = elem(c);
        let bits = c.bits() as i128;
        if c.is_signed_int() {
            let zero = self.int_const(c, 0);
            let one = self.int_const(c, 1);
            let neg = self.cmpi("slt", b, &zero, c);
            let e = self.select(&neg, &zero, b, t);
            let p = self.bin("math.ipowi", a, &e, t);
            // Negative exponent: 1 for base 1, ±1 for base -1 by parity, else 0.
            let m1 = self.int_const(c, -1);
            let is_one = self.cmpi("eq", a, &one, c);
            let is_m1 = self.cmpi("eq", a, &m1, c);
            let odd_bit = self.bin("arith.andi", b, &one, t);
            let odd = self.cmpi("ne", &odd_bit, &zero, c);
            let m1_pow = self.select(&odd, &m1, &one, t);
            let r = self.select(&is_m1, &m1_pow, &zero, t);
            let r = self.select(&is_one, &one, &r, t);
            self.select(&neg, &r, &p, t)
        } else {
            let low_mask = self.int_const(c, (1i128 << (bits - 1)) - 1);
            let lo = self.bin("arith.andi", b, &low_mask, t);
            let p = self.bin("math.ipowi", a, &lo, t);
            let quarter = self.int_const(c, 1i128 << (bits - 2));
            let q = self.bin("math.ipowi", a, &quarter, t);
            let q2 = self.bin("arith.muli", &q, &q, t);
            let with_top = self.bin("arith.muli", &p, &q2, t);
            let top = self.cmpi("ugt", b, &low_mask, c);
            self.select(&top, &with_top, &p, t)
        }
    }
}

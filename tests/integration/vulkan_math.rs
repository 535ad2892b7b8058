//! `tensorc-vulkan-expand-math` (`tensorc_passes::vulkan_math`): the pass
//! before and after on hand-written kernels (snapshots), and each expansion
//! on Vulkan (lavapipe) against the interpreter on dense input sweeps —
//! every f16 value, tens of thousands of f32 values across all magnitudes,
//! every s8 pair — with the error bound in ulps asserted, which is much
//! tighter than the op cases' tolerance in `vulkan.rs`.

use crate::harness::{FLOAT_SPECIALS, before_and_after, compile_for, mantissa_sweep};
use tensorc::{DType, Scalar, Target, Tensor, TensorType};
use tensorc_mlir::{Mlir, PrintOptions};
use tensorc_passes::vulkan_math;

/// Runs the pass on `input`, returning the module before and after.
fn expand(input: &str) -> (String, String) {
    tensorc_mlir::register_external_pass(vulkan_math::NAME, vulkan_math::create);
    let mlir = Mlir::new();
    let (mut m, before, after) = before_and_after(&mlir, input, vulkan_math::NAME);
    // Everything the pass emits has a SPIR-V lowering.
    mlir.run_pipeline(
        &mut m,
        "math-expand-ops,arith-expand,convert-math-to-spirv,convert-arith-to-spirv",
        "test",
    )
    .unwrap_or_else(|e| panic!("the expansion does not lower to SPIR-V: {e}"));
    let spirv = mlir.print(&m, PrintOptions::default());
    // (f64 math is left for the f64 pass.)
    for line in spirv.lines().filter(|l| l.contains(" math.")) {
        assert!(line.contains("f64"), "not lowered: {line}");
    }
    (before, after)
}

#[test]
fn vulkan_math_pass_integers() {
    let (before, after) = expand(
        r#"module {
  func.func @f(%a: i16, %b: i32, %c: i32, %d: index, %e: i8) -> (i16, i32, index, i8) {
    %0 = math.ctpop %a : i16
    %1 = arith.remsi %b, %c : i32
    %2 = arith.remsi %d, %d : index
    %3 = math.ipowi %e, %e : i8
    return %0, %1, %2, %3 : i16, i32, index, i8
  }
}
"#,
    );
    // The index remainder is not a kernel value the pass handles.
    assert!(!after.contains("math.ctpop") && !after.contains("math.ipowi"));
    assert_eq!(after.matches("arith.remsi").count(), 1);
    insta::assert_snapshot!(
        "vulkan_math_integers",
        format!("// before\n{before}\n// after\n{after}")
    );
}

#[test]
fn vulkan_math_pass_asin_f32_and_cbrt_f16() {
    let (before, after) = expand(
        r#"module {
  func.func @f(%a: f32, %b: f16, %c: f64) -> (f32, f16, f64) {
    %0 = math.asin %a : f32
    %1 = math.cbrt %b : f16
    %2 = math.cbrt %c : f64
    return %0, %1, %2 : f32, f16, f64
  }
}
"#,
    );
    // f64 is left to the f64 pass.
    assert!(!after.contains("math.asin") && after.matches("math.cbrt").count() == 1);
    insta::assert_snapshot!(
        "vulkan_math_asin_cbrt",
        format!("// before\n{before}\n// after\n{after}")
    );
}

/// The larger expansions are checked for what they leave (nothing of the
/// original op) and, above, that they lower; their values are checked on
/// the device below.
#[test]
fn vulkan_math_pass_removes_every_op() {
    let (_, after) = expand(
        r#"module {
  func.func @f(%a: f32, %b: f32, %h: f16) -> (f32, f32, f32, f32, f32, f32, f16) {
    %0 = math.erf %a : f32
    %1 = math.erfc %a : f32
    %2 = math.acos %a : f32
    %3 = math.atan2 %a, %b : f32
    %4 = math.powf %a, %b : f32
    %5 = arith.remf %a, %b : f32
    %6 = math.powf %h, %h : f16
    return %0, %1, %2, %3, %4, %5, %6 : f32, f32, f32, f32, f32, f32, f16
  }
}
"#,
    );
    for op in [
        "math.erf ",
        "math.erfc",
        "math.acos",
        "math.atan2",
        "math.powf",
        "arith.remf",
    ] {
        assert!(!after.contains(op), "{op} left:\n{after}");
    }
}

/// `tensorc-vulkan-vec4` computes some element-wise loops on `vector<4xf32>`:
/// the float expansions are lane-wise (the same ops on vectors, splat
/// constants) and lower to SPIR-V; `fmod`'s loop stays scalar-only.
#[test]
fn vulkan_math_pass_expands_vectors() {
    let (_, after) = expand(
        r#"module {
  func.func @f(%a: vector<4xf32>, %b: vector<4xf32>, %h: vector<4xf16>) -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf16>, vector<4xf32>) {
    %0 = math.atan %a : vector<4xf32>
    %1 = math.erf %a : vector<4xf32>
    %2 = math.erfc %a : vector<4xf32>
    %3 = math.cbrt %a : vector<4xf32>
    %4 = math.atan2 %a, %b : vector<4xf32>
    %5 = math.powf %a, %b : vector<4xf32>
    %6 = math.asin %h : vector<4xf16>
    %7 = arith.remf %a, %b : vector<4xf32>
    return %0, %1, %2, %3, %4, %5, %6, %7 : vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf16>, vector<4xf32>
  }
}
"#,
    );
    for op in [
        "math.atan ",
        "math.erf ",
        "math.erfc",
        "math.cbrt",
        "math.atan2",
        "math.powf",
        "math.asin",
    ] {
        assert!(!after.contains(op), "{op} left:\n{after}");
    }
    assert_eq!(after.matches("arith.remf").count(), 1, "{after}");
    assert!(after.contains("dense<"), "splat constants:\n{after}");
}

/// In SPIR-V the kernels' float arithmetic carries `NoContraction`
/// (`tensorc-vulkan-exact-float`): an expansion's (without it lavapipe's
/// NIR folded `pow`'s two-float sums, 79 ulps off) and plain arithmetic's
/// (NIR folded `(x · −2048) · −2048` in f16 into one product that
/// overflows: seed 36273), but not a dot product's multiply-accumulate,
/// which a driver may fuse.
#[test]
fn vulkan_float_arithmetic_is_no_contraction_in_spirv() {
    let spirv = |src: &str| {
        tensorc::emit("nc.nxir", src, tensorc::Stage::Spirv)
            .unwrap_or_else(|e| panic!("{}", e.render()))
    };
    let counts = |text: &str, op: &str| {
        let all = text.lines().filter(|l| l.contains(op)).count();
        let marked = text.lines().filter(|l| l.contains(op) && l.contains("no_contraction")).count();
        (all, marked)
    };
    let pow = spirv("def f(x: f32[4], y: f32[4]) -> f32[4] {\n  z = pow x, y\n  return z\n}\n");
    let (fmul, marked) = counts(&pow, "spirv.FMul");
    assert!(fmul > 10 && marked == fmul, "{marked} of {fmul} FMul marked:\n{pow}");
    let plain = spirv(
        "def f(x: f16[4], y: f16[4]) -> f16[4] {\n  z = multiply x, -2048.0\n  \
         w = multiply z, -2048.0\n  v = add w, y\n  return v\n}\n",
    );
    assert_eq!(counts(&plain, "spirv.FMul"), (2, 2), "{plain}");
    assert_eq!(counts(&plain, "spirv.FAdd"), (1, 1), "{plain}");
    // The dot's accumulation (an FAdd of the loop-carried sum and an FMul
    // of two loads) stays free; the scaling after the loop does not.
    let dot = spirv(
        "def f(a: f32[4][8], b: f32[8][4]) -> f32[4][4] {\n  c = dot a, [1], [], b, [0], []\n  \
         d = multiply c, 3.0\n  return d\n}\n",
    );
    assert_eq!(counts(&dot, "spirv.FMul"), (2, 1), "{dot}");
    assert_eq!(counts(&dot, "spirv.FAdd"), (1, 0), "{dot}");
    // A sum of products of computed values is marked whole: only a
    // product of loaded values may be fused into the accumulation.
    let sum = spirv(
        "def f(a: f32[4][8]) -> f32[4] {\n  b = multiply a, 2.0\n  c = multiply b, a\n  \
         s = sum c, axes: [1]\n  return s\n}\n",
    );
    let (fmul, marked) = counts(&sum, "spirv.FMul");
    assert!(fmul >= 2 && marked == fmul, "{marked} of {fmul} FMul marked:\n{sum}");
    let (fadd, marked) = counts(&sum, "spirv.FAdd");
    assert!(fadd >= 1 && marked == fadd, "{marked} of {fadd} FAdd marked:\n{sum}");
}

fn compile(source: &str, target: Target) -> tensorc::Program {
    compile_for("sweep.nxir", source, target)
}

/// Runs `source`'s `f` on `target` (Vulkan, or the CPU for the frontend's
/// f32 expansions: `fastmath.rs`) and in the interpreter.
fn both(target: Target, source: &str, inputs: &[Tensor]) -> (Tensor, Tensor) {
    let run = |target| {
        compile(source, target)
            .entry(Some("f"))
            .unwrap()
            .call(inputs)
            .unwrap_or_else(|e| panic!("{}", e.render()))
            .remove(0)
    };
    (run(target), run(Target::Interp))
}

/// Distance in units in the last place of `dtype` between two values of
/// it (0 for two NaNs; results below the smallest normal, which lavapipe
/// flushes to zero, count as equal when both are that small).
fn ulps(dtype: DType, a: f64, b: f64) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    let tiny = match dtype {
        DType::F16 => 6.103_515_625e-5,
        DType::F64 => f64::MIN_POSITIVE,
        _ => f64::from(f32::MIN_POSITIVE),
    };
    if a.abs() < tiny && b.abs() < tiny {
        return 0;
    }
    // Ordered integer images of the bit patterns.
    let key = |v: f64| -> i64 {
        let (bits, sign) = match dtype {
            DType::F16 => (i64::from(tensorc_ir::tensor::f64_to_f16_bits(v)), 0x8000),
            DType::F64 => (
                v.to_bits() as i64 & i64::MAX,
                i64::from(v.is_sign_negative()),
            ),
            _ => (i64::from((v as f32).to_bits()), 0x8000_0000),
        };
        if dtype == DType::F64 {
            return if sign != 0 { -bits } else { bits };
        }
        if bits & sign != 0 {
            -(bits & (sign - 1))
        } else {
            bits
        }
    };
    key(a).abs_diff(key(b))
}

/// Asserts every element is within `bound` ulps; returns the worst.
fn check(
    what: &str,
    dtype: DType,
    inputs: &[Tensor],
    got: &Tensor,
    want: &Tensor,
    bound: u64,
) -> u64 {
    let mut worst = (0, 0);
    for i in 0..got.len() {
        let (Scalar::F(g), Scalar::F(w)) = (got.get(i), want.get(i)) else {
            panic!("{what}: not floats");
        };
        let d = ulps(dtype, g, w);
        if d > worst.0 {
            worst = (d, i);
        }
    }
    let (d, i) = worst;
    let args: Vec<String> = inputs.iter().map(|t| format!("{:?}", t.get(i))).collect();
    assert!(
        d <= bound,
        "{what} {dtype}: {d} ulps at ({}): compiled {:?}, interpreter {:?}",
        args.join(", "),
        got.get(i),
        want.get(i)
    );
    d
}

/// A flat tensor of `values` as `dtype`.
pub(crate) fn tensor(dtype: DType, values: &[f64]) -> Tensor {
    let s: Vec<Scalar> = values.iter().map(|&v| Scalar::F(v)).collect();
    Tensor::from_scalars(TensorType::new(dtype, vec![values.len()]), &s).unwrap()
}

/// f32 inputs: both signs of every exponent with several mantissas, a dense
/// grid on [-4, 4], and the special values.
pub(crate) fn f32_sweep() -> Vec<f64> {
    let mut v = FLOAT_SPECIALS.to_vec();
    v.extend(mantissa_sweep(-149..=127, |x| f64::from(x as f32)));
    for k in -40_000..=40_000 {
        v.push(f64::from((k as f64 / 10_000.0) as f32));
    }
    v.push(f64::from(f32::MAX));
    v.push(f64::from(f32::MIN));
    v
}

/// Every finite and special f16 value.
fn f16_all() -> Vec<f64> {
    (0..=u16::MAX)
        .map(tensorc_ir::tensor::f16_bits_to_f64)
        .collect()
}

pub(crate) fn unary(op: &str, dtype: DType, values: &[f64], bound: u64) -> u64 {
    unary_on(Target::Vulkan, op, dtype, values, bound)
}

/// `op` of every value of `values` on `target`, within `bound` ulps of the
/// interpreter; returns the worst.
pub(crate) fn unary_on(target: Target, op: &str, dtype: DType, values: &[f64], bound: u64) -> u64 {
    let n = values.len();
    let src = format!("def f(x: {dtype}[{n}]) -> {dtype}[{n}] {{\n  y = {op} x\n  return y\n}}\n");
    let inputs = [tensor(dtype, values)];
    let (got, want) = both(target, &src, &inputs);
    check(op, dtype, &inputs, &got, &want, bound)
}

/// Every pair of `values` (as two flat tensors), on Vulkan.
pub(crate) fn binary(op: &str, dtype: DType, values: &[f64], bound: u64) -> u64 {
    binary_on(Target::Vulkan, op, dtype, values, bound)
}

/// Every pair of `values` (as two flat tensors), on `target`.
pub(crate) fn binary_on(target: Target, op: &str, dtype: DType, values: &[f64], bound: u64) -> u64 {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for &x in values {
        for &y in values {
            a.push(x);
            b.push(y);
        }
    }
    let n = a.len();
    let src = format!(
        "def f(x: {dtype}[{n}], y: {dtype}[{n}]) -> {dtype}[{n}] {{\n  z = {op} x, y\n  return z\n}}\n"
    );
    let inputs = [tensor(dtype, &a), tensor(dtype, &b)];
    let (got, want) = both(target, &src, &inputs);
    check(op, dtype, &inputs, &got, &want, bound)
}

/// Values for the binary sweeps: specials, integers (odd and even, for
/// `pow`), and magnitudes from subnormal to huge.
pub(crate) fn pair_values() -> Vec<f64> {
    let mut v = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0];
    for x in [
        1.0,
        2.0,
        3.0,
        0.5,
        0.7,
        1.5,
        2.5,
        10.0,
        100.0,
        1e-3,
        1e-20,
        1e-40,
        3e9,
        1e20,
        1e30,
        0.999_999,
        1.000_001,
        7.0,
        1e6,
        16_777_217.0,
        33.3,
    ] {
        let x = f64::from(x as f32);
        v.push(x);
        v.push(-x);
    }
    v
}

/// Bounds (in ulps) are what the expansions reach on lavapipe, rounded up;
/// the interpreter is libm's f32 function (or f64 rounded once).
#[test]
fn vulkan_math_unary_sweeps_agree_with_the_interpreter() {
    if !crate::vulkan::have_driver() {
        return;
    }
    let f32v = f32_sweep();
    let f16v = f16_all();
    let mut report = Vec::new();
    for (op, b32, b16) in [
        ("erf", 2, 1),
        ("erfc", 4, 1),
        ("cbrt", 1, 1),
        ("asin", 2, 1),
        ("acos", 2, 1),
        ("atan", 2, 1),
        ("log", 2, 1),
        ("asinh", 3, 1),
        ("acosh", 3, 1),
        ("atanh", 2, 1),
        ("log1p", 1, 1),
        ("expm1", 2, 1),
        ("sin", 2, 1),
        ("cos", 2, 1),
        ("tan", 3, 1),
    ] {
        // The oracle's f32 `asinh` (Rust's) overflows to inf from 2^127 on
        // (it forms 2|x|): those inputs are checked against ln 2|x| below.
        let values: Vec<f64> = if op == "asinh" {
            f32v.iter()
                .copied()
                .filter(|v| !(v.abs() >= 2f64.powi(127)))
                .collect()
        } else {
            f32v.clone()
        };
        let w32 = unary(op, DType::F32, &values, b32);
        let w16 = unary(op, DType::F16, &f16v, b16);
        report.push(format!("{op}: f32 {w32} ulps, f16 {w16}"));
    }
    eprintln!("vulkan math, worst errors: {}", report.join("; "));
    asinh_of_huge_values(Target::Vulkan);
}

/// `asinh` from 2^127 on, where the interpreter's f32 `asinh` overflows:
/// within one ulp of ln 2|x| on `target`.
pub(crate) fn asinh_of_huge_values(target: Target) {
    let huge = [2f64.powi(127), -1.5 * 2f64.powi(127), f64::from(f32::MAX)];
    let n = huge.len();
    let src = format!("def f(x: f32[{n}]) -> f32[{n}] {{\n  y = asinh x\n  return y\n}}\n");
    let got = compile(&src, target)
        .entry(Some("f"))
        .unwrap()
        .call(&[tensor(DType::F32, &huge)])
        .unwrap_or_else(|e| panic!("{}", e.render()))
        .remove(0);
    for (i, &x) in huge.iter().enumerate() {
        let want = f64::from(((2.0 * x.abs()).ln().copysign(x)) as f32);
        let Scalar::F(g) = got.get(i) else {
            panic!("not a float")
        };
        assert!(ulps(DType::F32, g, want) <= 1, "asinh({x}): {g} vs {want}");
    }
}

#[test]
fn vulkan_math_binary_sweeps_agree_with_the_interpreter() {
    if !crate::vulkan::have_driver() {
        return;
    }
    let v = pair_values();
    let mut report = Vec::new();
    for (op, b32, b16) in [("atan2", 2, 1), ("pow", 2, 1), ("remainder", 0, 0)] {
        let w32 = binary(op, DType::F32, &v, b32);
        let w16 = binary(op, DType::F16, &v, b16);
        report.push(format!("{op}: f32 {w32} ulps, f16 {w16}"));
    }
    // f64 remainder is the same exact algorithm on 64-bit integers.
    let mut v64 = v.clone();
    v64.extend([
        1e300,
        -1e300,
        1e-310,
        -5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        0.1,
        1e16 + 1.0,
    ]);
    let w64 = binary("remainder", DType::F64, &v64, 0);
    report.push(format!("f64 remainder {w64}"));
    // Dense pow and atan2 on ordinary values.
    let grid: Vec<f64> = (-60..=60)
        .map(|k| f64::from((k as f64 / 7.0) as f32))
        .collect();
    let wp = binary("pow", DType::F32, &grid, 2);
    let wa = binary("atan2", DType::F32, &grid, 2);
    let wr = binary("remainder", DType::F32, &grid, 0);
    report.push(format!("grid: pow {wp}, atan2 {wa}, remainder {wr}"));
    eprintln!("vulkan math, worst errors: {}", report.join("; "));
}

/// Integer ops are exact: every s8 pair for `remainder` and `pow` (the
/// minimum value, zero divisors and negative exponents included), every
/// 8-bit value and edge patterns of the wider types for `population_count`,
/// edge pairs for u64 `pow`.
#[test]
fn vulkan_math_integer_ops_are_exact() {
    if !crate::vulkan::have_driver() {
        return;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for x in -128..=127i64 {
        for y in -128..=127i64 {
            a.push(Scalar::I(x));
            b.push(Scalar::I(y));
        }
    }
    let n = a.len();
    let ty = TensorType::new(DType::S8, vec![n]);
    let inputs = [
        Tensor::from_scalars(ty.clone(), &a).unwrap(),
        Tensor::from_scalars(ty, &b).unwrap(),
    ];
    for op in ["remainder", "pow"] {
        let src = format!(
            "def f(x: s8[{n}], y: s8[{n}]) -> s8[{n}] {{\n  z = {op} x, y\n  return z\n}}\n"
        );
        let (got, want) = both(Target::Vulkan, &src, &inputs);
        assert_eq!(got.bytes(), want.bytes(), "s8 {op}");
    }
    let edges = [
        0,
        1,
        2,
        3,
        7,
        63,
        64,
        255,
        u64::MAX,
        u64::MAX - 1,
        1 << 63,
        0x0123_4567_89ab_cdef,
    ];
    let (a, b): (Vec<Scalar>, Vec<Scalar>) = edges
        .iter()
        .flat_map(|&x| edges.iter().map(move |&y| (Scalar::U(x), Scalar::U(y))))
        .unzip();
    let n = a.len();
    let ty = TensorType::new(DType::U64, vec![n]);
    let inputs = [
        Tensor::from_scalars(ty.clone(), &a).unwrap(),
        Tensor::from_scalars(ty, &b).unwrap(),
    ];
    let src =
        format!("def f(x: u64[{n}], y: u64[{n}]) -> u64[{n}] {{\n  z = pow x, y\n  return z\n}}\n");
    let (got, want) = both(Target::Vulkan, &src, &inputs);
    assert_eq!(got.bytes(), want.bytes(), "u64 pow");
    for (dtype, values) in [
        (DType::U8, (0..=255u64).map(Scalar::U).collect::<Vec<_>>()),
        (
            DType::S16,
            [i16::MIN, -1, 0, 1, 0x5555, 0x7f00, i16::MAX]
                .map(|v| Scalar::I(v.into()))
                .to_vec(),
        ),
        (
            DType::S32,
            [i32::MIN, -1, 0, 1, 0x5555_5555, 0x0f0f_f0f0, i32::MAX]
                .map(|v| Scalar::I(v.into()))
                .to_vec(),
        ),
        (
            DType::U64,
            [0, 1, u64::MAX, 0x8000_0000_0000_0001, 0x0123_4567_89ab_cdef]
                .map(Scalar::U)
                .to_vec(),
        ),
        (
            DType::S64,
            [i64::MIN, -1, 0, 1, i64::MAX, -0x0123_4567_89ab_cdef]
                .map(Scalar::I)
                .to_vec(),
        ),
    ] {
        let n = values.len();
        let inputs = [Tensor::from_scalars(TensorType::new(dtype, vec![n]), &values).unwrap()];
        let src = format!(
            "def f(x: {dtype}[{n}]) -> {dtype}[{n}] {{\n  y = population_count x\n  return y\n}}\n"
        );
        let (got, want) = both(Target::Vulkan, &src, &inputs);
        assert_eq!(got.bytes(), want.bytes(), "{dtype} population_count");
    }
}

//! `tensorc-vulkan-expand-math-f64` (`tensorc_passes::vulkan_math_f64`) on
//! hand-written kernels: every f64 function it lists is replaced by
//! arithmetic that the SPIR-V conversion takes (which it does not take
//! otherwise: GLSL.std.450 has no f64 transcendental functions), other types
//! are left alone, and the shape of one expansion is pinned by a snapshot.
//! The values are checked twice elsewhere: the pass's unit tests measure
//! every expansion in ulps against libm and the interpreter, and the Vulkan
//! differential test (`vulkan.rs`) runs the f64 op cases on lavapipe.

use crate::harness::{FLOAT_SPECIALS, before_and_after, mantissa_sweep};
use tensorc_mlir::Mlir;
use tensorc_passes::vulkan_math_f64;

/// A kernel module as the Vulkan pipeline has it before the SPIR-V
/// conversion, with `BODY` (ops on `%x: f64` and `%y: f32`) in its kernel,
/// storing `%r` (f64).
fn kernel(body: &str) -> String {
    format!(
        r#"module attributes {{gpu.container_module, spirv.target_env = #spirv.target_env<#spirv.vce<v1.3, [Shader, Int64, Int16, Int8, Float64, Float16], [SPV_KHR_storage_buffer_storage_class]>, api=Vulkan, #spirv.resource_limits<>>}} {{
  gpu.module @k {{
    gpu.func @f(%m: memref<4xf64>, %n: memref<4xf32>) kernel attributes {{spirv.entry_point_abi = #spirv.entry_point_abi<workgroup_size = [1, 1, 1]>}} {{
      %c0 = arith.constant 0 : index
      %x = memref.load %m[%c0] : memref<4xf64>
      %y = memref.load %n[%c0] : memref<4xf32>
{body}
      memref.store %r, %m[%c0] : memref<4xf64>
      gpu.return
    }}
  }}
}}
"#
    )
}

fn run_pass(input: &str) -> (Mlir, String, String) {
    tensorc_mlir::register_external_pass(vulkan_math_f64::NAME, vulkan_math_f64::create);
    let mlir = Mlir::new();
    let (before, after) = {
        let (mut m, before, after) = before_and_after(&mlir, input, vulkan_math_f64::NAME);
        // What the Vulkan pipeline runs next must take the result.
        mlir.run_pipeline(
            &mut m,
            "math-expand-ops,arith-expand,convert-math-to-spirv,convert-gpu-to-spirv",
            "test",
        )
        .unwrap_or_else(|e| panic!("the SPIR-V conversion rejected the expansion: {e}\n{after}"));
        (before, after)
    };
    (mlir, before, after)
}

#[test]
fn every_listed_f64_function_becomes_arithmetic_spirv_takes() {
    // Each function applied to the previous result; an f32 exp and an f64
    // sqrt (which SPIR-V has) must stay as they are.
    let mut body = String::from("      %v0 = math.exp %y : f32\n      %s = math.sqrt %x : f64\n");
    let mut prev = "%s".to_owned();
    for (i, op) in vulkan_math_f64::EXPANDED.iter().enumerate() {
        let args = if ["math.atan2", "math.powf"].contains(op) {
            format!("{prev}, %x")
        } else {
            prev.clone()
        };
        body.push_str(&format!("      %r{i} = {op} {args} : f64\n"));
        prev = format!("%r{i}");
    }
    body.push_str(&format!("      %r = arith.addf {prev}, %x : f64\n"));
    let (_, before, after) = run_pass(&kernel(&body));
    for op in vulkan_math_f64::EXPANDED {
        assert!(
            before.contains(&format!("{op} ")),
            "{op} missing from the input"
        );
        assert!(
            !after
                .lines()
                .any(|l| l.contains(&format!("{op} ")) && l.ends_with(": f64")),
            "{op} on f64 is still there:\n{after}"
        );
    }
    assert!(
        after.contains("math.exp %") && after.contains(": f32"),
        "{after}"
    );
    assert!(after.contains("math.sqrt"), "{after}");
}

#[test]
fn without_the_pass_f64_functions_do_not_lower_to_spirv() {
    // The reason the pass exists (if MLIR ever lowers them, this says so).
    let mlir = Mlir::new();
    let mut m = mlir
        .parse(&kernel("      %r = math.exp %x : f64\n"), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let r = mlir.run_pipeline(
        &mut m,
        "math-expand-ops,arith-expand,convert-math-to-spirv,convert-gpu-to-spirv",
        "test",
    );
    assert!(
        r.is_err(),
        "f64 math.exp lowered to SPIR-V without the pass"
    );
}

#[test]
fn f64_exp_expansion_snapshot() {
    let (_, before, after) = run_pass(&kernel("      %r = math.exp %x : f64\n"));
    insta::assert_snapshot!(
        "vulkan_math_f64_exp",
        format!("// before\n{before}\n// after\n{after}")
    );
}

/// Through the whole Vulkan compiler: an f64 program with every function
/// the frontend lowers to these ops gives SPIR-V without a GLSL.std.450
/// transcendental call.
#[test]
fn f64_program_compiles_to_spirv() {
    let ops = [
        "exp", "expm1", "log", "log1p", "sigmoid", "tanh", "sinh", "cosh", "sin", "cos", "tan",
        "atan", "asinh", "acosh", "atanh", "erf_inv",
    ];
    let mut src = String::from("def main(x: f64[8]) -> f64[8] {\n");
    let mut prev = "x".to_owned();
    for (i, op) in ops.iter().enumerate() {
        src.push_str(&format!("  v{i} = {op} {prev}\n"));
        prev = format!("v{i}");
    }
    src.push_str(&format!("  return {prev}\n}}\n"));
    let spirv =
        tensorc::emit("f64.nxir", &src, tensorc::Stage::Spirv).unwrap_or_else(|e| panic!("{e}"));
    for gl in [
        "spirv.GL.Exp",
        "spirv.GL.Log",
        "spirv.GL.Sin",
        "spirv.GL.Atan",
        "spirv.GL.Tanh",
    ] {
        assert!(!spirv.contains(gl), "{gl} in:\n{spirv}");
    }
    assert!(
        spirv.contains("spirv.FDiv") && spirv.contains(": f64"),
        "{spirv}"
    );
}

/// Per f64 function (the frontend's op name), the largest error allowed in
/// ulps against the interpreter: the expansions' bounds (`BOUNDS` in the
/// pass's unit tests), shared by the Vulkan and the CPU runs.
pub(crate) const F64_BOUNDS: &[(&str, u64)] = &[
    ("exp", 1),
    ("expm1", 2),
    ("log", 1),
    ("log1p", 1),
    ("sigmoid", 2),
    ("sin", 1),
    ("cos", 1),
    ("tan", 3),
    ("atan", 4),
    ("sinh", 3),
    ("cosh", 3),
    ("tanh", 3),
    ("asinh", 3),
    ("acosh", 2),
    ("atanh", 2),
    ("erf", 4),
    ("erfc", 4),
    // The frontend's f64 erf_inv (Newton steps on erf, the same on the
    // CPU) is ill-conditioned next to ±1: ~1e-9 relative at 1 - 1e-9.
    ("erf_inv", 10_000_000),
    ("asin", 5),
    ("acos", 4),
    ("cbrt", 1),
];

/// f64 arguments for the device sweeps: both signs of every fourth binary
/// exponent of the normal range with several mantissas, a dense grid on
/// [-8, 8], and the special values. No subnormal inputs: lavapipe flushes
/// them (documented in docs/vulkan.md).
pub(crate) fn f64_sweep() -> Vec<f64> {
    let mut v = FLOAT_SPECIALS.to_vec();
    v.extend(mantissa_sweep((-1020..=1020).step_by(4), |x| x));
    for k in -8000..=8000 {
        v.push(f64::from(k) / 1000.0 + 1e-7);
    }
    v.extend([
        f64::MAX,
        -f64::MAX,
        f64::MIN_POSITIVE,
        0.999_999_999,
        -0.999_999_999,
    ]);
    v
}

/// Every f64 function on lavapipe against the interpreter, within bounds
/// in ulps (what the expansions reach there, rounded up; the unit tests of
/// `vulkan_math_f64` give the same bounds for the expansions alone).
/// sin/cos/tan only for |x| < 1e5 (beyond, Vulkan leaves the precision
/// undefined and the reduction is documented as approximate).
#[test]
fn f64_functions_on_lavapipe_are_within_their_ulp_bounds() {
    use tensorc::DType;
    if !crate::vulkan::have_driver() {
        return;
    }
    let all = f64_sweep();
    let moderate: Vec<f64> = all
        .iter()
        .copied()
        .filter(|x| x.is_nan() || x.abs() < 1e5)
        .collect();
    let below_asinh_overflow: Vec<f64> = all
        .iter()
        .copied()
        .filter(|x| x.is_nan() || x.abs() <= 1e307)
        .collect();
    let mut report = Vec::new();
    for &(op, bound) in F64_BOUNDS {
        // The interpreter's asinh (Rust's) overflows to inf above ~9e307,
        // where the true value is about 710 (what Vulkan gives).
        let values = if op == "asinh" {
            &below_asinh_overflow
        } else if ["sin", "cos", "tan"].contains(&op) {
            &moderate
        } else {
            &all
        };
        let w = crate::vulkan_math::unary(op, DType::F64, values, bound);
        report.push(format!("{op} {w}"));
    }
    let mut pairs = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0];
    for x in [
        1.0, 2.0, 3.0, 0.5, 0.7, 1.5, 2.5, 10.0, 1e-3, 1e-20, 3e9, 1e20, 1e300, 7.0, 33.3,
    ] {
        pairs.push(x);
        pairs.push(-x);
    }
    for (op, bound) in [("atan2", 4), ("pow", 8)] {
        let w = crate::vulkan_math::binary(op, DType::F64, &pairs, bound);
        report.push(format!("{op} {w}"));
    }
    eprintln!("vulkan f64 math, worst ulps: {}", report.join(", "));
}

//! `tensorc-expand-math-f64` (`tensorc_passes::vulkan_math_f64::create_cpu`,
//! first in the CPU lowering): f64 transcendental functions as f64
//! arithmetic, which the element-wise schedule vectorizes, instead of one
//! libm call per element.
//!
//! - the pass before and after on a generic's body: the functions of
//!   `expanded_on_cpu` become arithmetic, `sin` (left to libm) and f32 ops
//!   stay; the shape of `cbrt`'s expansion pinned by a snapshot;
//! - f64 `exp` of a vector compiles to 16-lane vector arithmetic with no
//!   libm call;
//! - every f64 function on the CPU within its ulp bound of the
//!   interpreter (the Vulkan run's bounds, `F64_BOUNDS`) over a sweep of specials, every
//!   fourth binade and a fine grid of [-8, 8], and a softmax in f64 on one
//!   and two threads.

use crate::harness::{EdgeSet, Settings, before_and_after, differential, function_text};
use tensorc::{DType, Stage, Target};
use tensorc_passes::vulkan_math_f64;

const BODY: &str = r#"
#map = affine_map<(d0) -> (d0)>
module {
  func.func @mixed(%x: tensor<8xf64>, %y: tensor<8xf32>, %o: tensor<8xf64>) -> tensor<8xf64> {
    %r = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%x, %y : tensor<8xf64>, tensor<8xf32>) outs(%o : tensor<8xf64>) {
    ^bb0(%a: f64, %b: f32, %c: f64):
      %e = math.exp %a : f64
      %t = math.tanh %e : f64
      %s = math.sin %t : f64
      %f = math.exp %b : f32
      %w = arith.extf %f : f32 to f64
      %z = arith.addf %s, %w : f64
      linalg.yield %z : f64
    } -> tensor<8xf64>
    return %r : tensor<8xf64>
  }
  func.func @cbrt(%x: f64) -> f64 {
    %r = math.cbrt %x : f64
    return %r : f64
  }
}
"#;

#[test]
fn expand_math_f64_before_and_after() {
    use tensorc_mlir::Mlir;
    tensorc_mlir::register_external_pass(vulkan_math_f64::NAME_CPU, vulkan_math_f64::create_cpu);
    let mlir = Mlir::new();
    let (_, _before, after) = before_and_after(&mlir, BODY, vulkan_math_f64::NAME_CPU);
    let mixed = function_text(&after, "mixed");
    for gone in ["math.exp %arg3 : f64", "math.tanh"] {
        assert!(!mixed.contains(gone), "{gone}:\n{mixed}");
    }
    assert!(mixed.contains("math.sin") && mixed.contains(" : f32\n"), "{mixed}");
    assert_eq!(mixed.matches("math.exp").count(), 1, "only the f32 exp stays:\n{mixed}");
    for kept in ["math.sin", "math.cos", "math.tan", "math.powf", "math.atan2"] {
        assert!(!vulkan_math_f64::expanded_on_cpu(kept), "{kept}");
    }
    assert!(vulkan_math_f64::expanded_on_cpu("math.exp") && !vulkan_math_f64::expanded_on_cpu("math.sqrt"));
    let cbrt = function_text(&after, "cbrt");
    assert!(!cbrt.contains("math.cbrt"), "{cbrt}");
    insta::assert_snapshot!("expand_math_f64_cbrt", cbrt);
}

#[test]
fn f64_exp_is_vector_arithmetic() {
    let source = "def main(x: f64[4099]) -> f64[4099] {\n  y = exp x\n  return y\n}\n";
    let llvm = tensorc::emit("exp64.nxir", source, Stage::LlvmDialect).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(!llvm.contains("@exp("), "a libm call is left:\n{llvm}");
    assert!(llvm.contains("vector<16xf64>"), "not vectorized:\n{llvm}");
}

#[test]
fn expanded_f64_functions_are_within_their_ulp_bounds_on_the_cpu() {
    let all = crate::vulkan_math_f64::f64_sweep();
    let below_asinh_overflow: Vec<f64> = all.iter().copied().filter(|x| x.is_nan() || x.abs() <= 1e307).collect();
    let mut report = Vec::new();
    // The Vulkan bounds (`sin`, `cos`, `tan` are libm's here: exact).
    for &(op, bound) in crate::vulkan_math_f64::F64_BOUNDS {
        // The interpreter's asinh (Rust's) overflows to inf above ~9e307.
        let values = if op == "asinh" { &below_asinh_overflow } else { &all };
        let w = crate::vulkan_math::unary_on(Target::Cpu, op, DType::F64, values, bound);
        report.push(format!("{op} {w}"));
    }
    eprintln!("cpu f64 math, worst ulps: {}", report.join(", "));
    let softmax = "def main(x: f64[300][1001]) -> f64[300][1001] {\n  m = reduce_max x, axes: [1], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [1], keep_axes: true\n  y = divide e, s\n  return y\n}\n";
    let settings = Settings { tolerance: 1e-13, inputs: EdgeSet::Mild, seeds: vec![3] };
    let failures = crate::threads::on_threads(&[1, 2], || differential("softmax64.nxir", softmax, &settings));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

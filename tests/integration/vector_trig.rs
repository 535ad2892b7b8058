//! `tensorc-vector-trig` (`passes/tensorc-passes/src/vector_trig.rs`):
//! `sin`/`cos`/`tan` of 1-D f32 vectors become an `scf.if` on whether some lane is
//! out of the expansion's range (or NaN): those keep the op (libm per lane),
//! the others run the f64 expansion; `asin` (like `atan`, `acos`) and `cosh`
//! (like `sinh`) become their expansions, which hold everywhere. Scalars and f64 vectors stay as they
//! are. Before/after snapshot; the CPU results are checked against the
//! interpreter in `fastmath.rs`.

use crate::harness::before_and_after;
use tensorc_passes::vector_trig;

const TRIG: &str = r#"
module {
  func.func @trig(%a: vector<4xf32>, %b: vector<3xf32>, %s: f32, %d: vector<2xf64>) -> (vector<4xf32>, vector<3xf32>, f32, vector<2xf64>) {
    %0 = math.sin %a : vector<4xf32>
    %1 = math.cos %b : vector<3xf32>
    %2 = math.sin %s : f32
    %3 = math.cos %d : vector<2xf64>
    return %0, %1, %2, %3 : vector<4xf32>, vector<3xf32>, f32, vector<2xf64>
  }
  func.func @tangent(%a: vector<2xf32>) -> vector<2xf32> {
    %0 = math.tan %a : vector<2xf32>
    return %0 : vector<2xf32>
  }
  func.func @inverse(%a: vector<2xf32>) -> vector<2xf32> {
    %0 = math.asin %a : vector<2xf32>
    return %0 : vector<2xf32>
  }
  func.func @hyperbolic(%a: vector<2xf32>) -> vector<2xf32> {
    %0 = math.cosh %a : vector<2xf32>
    return %0 : vector<2xf32>
  }
}
"#;

#[test]
fn vector_trig_before_and_after() {
    tensorc_mlir::register_external_pass(vector_trig::NAME, vector_trig::create);
    let mlir = tensorc_mlir::Mlir::new();
    let (_, before, after) = before_and_after(&mlir, TRIG, vector_trig::NAME);
    // Two guarded ops, each kept in its libm branch.
    assert_eq!(after.matches("scf.if").count(), 3, "{after}");
    assert_eq!(after.matches("math.tan").count(), 1, "{after}");
    // tan's two divisions, and asin's three (x/√(1−x²), 1/|t|, the
    // π/6 shift), with no branch: its expansion holds for every argument.
    assert_eq!(after.matches("arith.divf").count(), 5, "{after}");
    assert!(!after.contains("math.asin"), "{after}");
    assert_eq!(after.matches("math.copysign").count(), 1, "{after}");
    assert_eq!(after.matches("math.sin").count(), 2, "{after}");
    assert_eq!(after.matches("math.cos").count(), 2, "{after}");
    // One per reduction by π/2, two for cosh (e^x and e^-x).
    assert_eq!(after.matches("math.roundeven").count(), 5, "{after}");
    assert!(!after.contains("math.cosh"), "{after}");
    assert!(after.contains("vector.reduction <or>"), "{after}");
    assert!(after.contains("math.sin %arg2 : f32"), "{after}");
    assert!(after.contains("math.cos %arg3 : vector<2xf64>"), "{after}");
    insta::assert_snapshot!("vector_trig_pass", format!("// before\n{before}\n// after\n{after}"));
}

const BINARY: &str = r#"
module {
  func.func @binary(%a: vector<2xf32>, %b: vector<2xf32>, %d: vector<2xf64>) -> (vector<2xf32>, vector<2xf32>, vector<2xf64>) {
    %0 = math.powf %a, %b : vector<2xf32>
    %1 = math.atan2 %a, %b : vector<2xf32>
    %2 = math.powf %d, %d : vector<2xf64>
    return %0, %1, %2 : vector<2xf32>, vector<2xf32>, vector<2xf64>
  }
}
"#;

/// `pow` and `atan2` of f32 vectors become their f64 expansions with no
/// branch (both operands mapped: `%a` is `pow`'s base and `atan2`'s
/// ordinate); f64 vectors keep the op.
#[test]
fn vector_pow_and_atan2_before_and_after() {
    tensorc_mlir::register_external_pass(vector_trig::NAME, vector_trig::create);
    let mlir = tensorc_mlir::Mlir::new();
    let (_, before, after) = before_and_after(&mlir, BINARY, vector_trig::NAME);
    assert!(!after.contains("scf.if"), "{after}");
    assert!(!after.contains("math.atan2"), "{after}");
    assert_eq!(after.matches("math.powf").count(), 1, "{after}");
    assert!(after.contains("math.powf %arg2, %arg2 : vector<2xf64>"), "{after}");
    // Both operands of each op widened to f64.
    assert_eq!(after.matches("arith.extf %arg0").count(), 2, "{after}");
    assert_eq!(after.matches("arith.extf %arg1").count(), 2, "{after}");
    // pow's one rounding to e^t's argument (k = roundeven(t/ln 2)) and its
    // two tests of y's parity; no libm call is left for f32.
    assert_eq!(after.matches("math.roundeven").count(), 3, "{after}");
    insta::assert_snapshot!("vector_pow_atan2_pass", format!("// before\n{before}\n// after\n{after}"));
}

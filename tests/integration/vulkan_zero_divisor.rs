//! `tensorc-vulkan-zero-divisor` (`passes/tensorc-passes/src/vulkan_zero_divisor.rs`):
//! float divisions by a constant zero as multiplications by infinity.
//!
//! - the pass before and after: divisions by +0, -0, a splat zero and the
//!   `|0|` of the `atan2` expansion are rewritten with the infinity of the
//!   zero's sign; a nonzero constant and a run-time divisor are left alone
//!   (snapshot and counts);
//! - `tests/cases/ops/divide_by_literal_zero.nxir` runs the divisions and
//!   `atan2(y, 0)` against the interpreter on the CPU (ops cases) and on
//!   Vulkan (`vulkan.rs`, every ops case), and the generated program that
//!   found it is a regression case (`gen_vulkan13018.nxir`).

use crate::harness::{before_and_after, function_text};

const DIVISIONS: &str = r#"
module {
  func.func @zeros(%x: f32, %v: vector<4xf64>) -> (f32, f32, vector<4xf64>, f32) {
    %z = arith.constant 0.0 : f32
    %n = arith.constant -0.0 : f32
    %s = arith.constant dense<0.0> : vector<4xf64>
    %a = math.absf %n : f32
    %0 = arith.divf %x, %z : f32
    %1 = arith.divf %x, %n : f32
    %2 = arith.divf %v, %s : vector<4xf64>
    %3 = arith.divf %x, %a : f32
    return %0, %1, %2, %3 : f32, f32, vector<4xf64>, f32
  }
  func.func @left_alone(%x: f32, %y: f32) -> (f32, f32) {
    %two = arith.constant 2.0 : f32
    %0 = arith.divf %x, %two : f32
    %1 = arith.divf %x, %y : f32
    return %0, %1 : f32, f32
  }
}
"#;

#[test]
fn zero_divisor_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::vulkan_zero_divisor;
    tensorc_mlir::register_external_pass(vulkan_zero_divisor::NAME, vulkan_zero_divisor::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, DIVISIONS, vulkan_zero_divisor::NAME);
    let zeros = function_text(&after, "zeros");
    assert!(!zeros.contains("arith.divf"), "{zeros}");
    assert_eq!(zeros.matches("arith.mulf").count(), 4, "{zeros}");
    // +inf for +0 and |-0|, -inf for -0, an f64 splat of +inf.
    assert_eq!(zeros.matches("0x7F800000 : f32").count(), 2, "{zeros}");
    assert_eq!(zeros.matches("0xFF800000 : f32").count(), 1, "{zeros}");
    assert!(
        zeros.contains("dense<0x7FF0000000000000> : vector<4xf64>"),
        "{zeros}"
    );
    assert_eq!(
        function_text(&before, "left_alone"),
        function_text(&after, "left_alone")
    );
    insta::assert_snapshot!(
        "vulkan_zero_divisor_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

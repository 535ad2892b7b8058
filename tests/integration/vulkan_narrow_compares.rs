//! `tensorc-vulkan-narrow-compares` (`passes/tensorc-passes/src/vulkan_narrow_compares.rs`):
//! signed comparisons of sign-extended integers with constants compare the
//! narrow values.
//!
//! - the pass before and after: `slt` of an i32 extended to i64 against 5,
//!   `sgt` of an extended vector against a splat, and `sle` of two values
//!   extended from i16 compare in the narrow type; an unsigned comparison,
//!   a constant that does not fit, and values extended from different
//!   types are left alone (snapshot and checks);
//! - `tests/cases/ops/compare_extended_ints.nxir` runs such comparisons and
//!   the s32-by-u64 `remainder` against the interpreter on the CPU (ops
//!   cases) and on Vulkan (`vulkan.rs`, every ops case), and the generated
//!   program that found it is a regression case (`gen_vulkan32475.nxir`).

use crate::harness::{before_and_after, function_text};

const COMPARES: &str = r#"
module {
  func.func @narrowed(%a: i32, %v: vector<4xi32>, %p: i16, %q: i16) -> (i1, vector<4xi1>, i1) {
    %five = arith.constant 5 : i64
    %m2 = arith.constant dense<-2> : vector<4xi64>
    %wa = arith.extsi %a : i32 to i64
    %wv = arith.extsi %v : vector<4xi32> to vector<4xi64>
    %wp = arith.extsi %p : i16 to i32
    %wq = arith.extsi %q : i16 to i32
    %0 = arith.cmpi slt, %wa, %five : i64
    %1 = arith.cmpi sgt, %wv, %m2 : vector<4xi64>
    %2 = arith.cmpi sle, %wp, %wq : i32
    return %0, %1, %2 : i1, vector<4xi1>, i1
  }
  func.func @left_alone(%a: i32, %b: i16) -> (i1, i1, i1) {
    %five = arith.constant 5 : i64
    %big = arith.constant 1099511627776 : i64
    %wa = arith.extsi %a : i32 to i64
    %wb = arith.extsi %b : i16 to i64
    %0 = arith.cmpi ult, %wa, %five : i64
    %1 = arith.cmpi slt, %wa, %big : i64
    %2 = arith.cmpi sge, %wa, %wb : i64
    return %0, %1, %2 : i1, i1, i1
  }
}
"#;

#[test]
fn vulkan_narrow_compares_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::vulkan_narrow_compares;
    tensorc_mlir::register_external_pass(vulkan_narrow_compares::NAME, vulkan_narrow_compares::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, COMPARES, vulkan_narrow_compares::NAME);
    let narrowed = function_text(&after, "narrowed");
    assert!(narrowed.contains("arith.cmpi slt, %arg0, %c5_i32 : i32"), "{narrowed}");
    assert!(narrowed.contains("arith.cmpi sgt, %arg1, %cst_0 : vector<4xi32>"), "{narrowed}");
    assert!(narrowed.contains("arith.cmpi sle, %arg2, %arg3 : i16"), "{narrowed}");
    assert_eq!(function_text(&before, "left_alone"), function_text(&after, "left_alone"));
    insta::assert_snapshot!("vulkan_narrow_compares_pass", format!("// before\n{before}\n// after\n{after}"));
}

//! `tensorc-fused-row-sums` (`passes/tensorc-passes/src/fused_row_sums.rs`):
//! a sum over the leading rows of a contractable product becomes one
//! `vector.fma` per row, in row order.
//!
//! Before and after: a `4×2×16` block (four FMAs from the accumulator, rows
//! 0 to 3); left alone: a product without `contract`, a sum over another
//! dimension, a product used beside the sum, a maximum; by snapshot and
//! counts. Few-row products (`few_rows_products.rs`) check the results.

use crate::harness::{before_and_after, function_text};

const BLOCKS: &str = r#"module {
  func.func @fused(%a: vector<4x2x16xf32>, %b: vector<4x2x16xf32>, %acc: vector<2x16xf32>) -> vector<2x16xf32> {
    %p = arith.mulf %a, %b fastmath<contract> : vector<4x2x16xf32>
    %s = vector.multi_reduction <add>, %p, %acc [0] : vector<4x2x16xf32> to vector<2x16xf32>
    return %s : vector<2x16xf32>
  }
  func.func @no_contract(%a: vector<4x16xf32>, %b: vector<4x16xf32>, %acc: vector<16xf32>) -> vector<16xf32> {
    %p = arith.mulf %a, %b : vector<4x16xf32>
    %s = vector.multi_reduction <add>, %p, %acc [0] : vector<4x16xf32> to vector<16xf32>
    return %s : vector<16xf32>
  }
  func.func @inner(%a: vector<4x16xf32>, %b: vector<4x16xf32>, %acc: vector<4xf32>) -> vector<4xf32> {
    %p = arith.mulf %a, %b fastmath<contract> : vector<4x16xf32>
    %s = vector.multi_reduction <add>, %p, %acc [1] : vector<4x16xf32> to vector<4xf32>
    return %s : vector<4xf32>
  }
  func.func @used_twice(%a: vector<4x16xf32>, %b: vector<4x16xf32>, %acc: vector<16xf32>) -> (vector<16xf32>, vector<4x16xf32>) {
    %p = arith.mulf %a, %b fastmath<contract> : vector<4x16xf32>
    %s = vector.multi_reduction <add>, %p, %acc [0] : vector<4x16xf32> to vector<16xf32>
    return %s, %p : vector<16xf32>, vector<4x16xf32>
  }
  func.func @maximum(%a: vector<4x16xf32>, %b: vector<4x16xf32>, %acc: vector<16xf32>) -> vector<16xf32> {
    %p = arith.mulf %a, %b fastmath<contract> : vector<4x16xf32>
    %s = vector.multi_reduction <maximumf>, %p, %acc [0] : vector<4x16xf32> to vector<16xf32>
    return %s : vector<16xf32>
  }
}
"#;

#[test]
fn fused_row_sums_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::fused_row_sums;
    tensorc_mlir::register_external_pass(fused_row_sums::NAME, fused_row_sums::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, BLOCKS, fused_row_sums::NAME);
    let fused = function_text(&after, "fused");
    assert_eq!(fused.matches("vector.fma").count(), 4, "{fused}");
    assert_eq!(fused.matches("vector.extract").count(), 8, "{fused}");
    assert!(!fused.contains("multi_reduction") && !fused.contains("arith.mulf"), "{fused}");
    // Row order: the first FMA adds row 0 to the accumulator.
    let first = fused.lines().find(|l| l.contains("vector.fma")).expect("an FMA");
    assert!(first.contains("%arg2"), "{fused}");
    for name in ["no_contract", "inner", "used_twice", "maximum"] {
        assert_eq!(function_text(&before, name), function_text(&after, name), "@{name} changed");
    }
    insta::assert_snapshot!("fused_row_sums_pass", format!("// before\n{before}\n// after\n{after}"));
}

//! `tensorc-invariant-reductions` (`passes/tensorc-passes/src/invariant_reductions.rs`):
//! a reduction whose combined value is loop invariant reads it from a
//! filled input.
//!
//! - the pass before and after: a sum adding a value defined outside the
//!   body and a product by a constant of the body get a filled input of the
//!   loop domain's shape (the constant's type, not the domain input's), read
//!   by the combiner; a reduction that reads its input and one whose only
//!   input is read transposed (no input of the loop domain) are left alone;
//! - reductions of constant tensors (sums along either axis, a mean, a
//!   product of integers, a dot of constant vectors, a reduction of a
//!   computed constant) against the interpreter on the CPU; before the pass
//!   the vectorized sum of a 3×4 constant 2.0 along its rows was 2, not 8
//!   (generated seeds 32954, 33183; their programs are in
//!   `tests/cases/regressions/`).

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

const REDUCTIONS: &str = r#"
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#tr = affine_map<(d0, d1) -> (d1, d0)>
module {
  func.func @sum(%x: tensor<3x4xf32>, %c: f32) -> tensor<3xf32> {
    %z = tensor.empty() : tensor<3xf32>
    %0 = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<3x4xf32>) outs(%z : tensor<3xf32>) {
    ^bb0(%in: f32, %out: f32):
      %s = arith.addf %out, %c : f32
      linalg.yield %s : f32
    } -> tensor<3xf32>
    return %0 : tensor<3xf32>
  }
  func.func @product(%x: tensor<3x4xi32>) -> tensor<3xi64> {
    %z = tensor.empty() : tensor<3xi64>
    %0 = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<3x4xi32>) outs(%z : tensor<3xi64>) {
    ^bb0(%in: i32, %out: i64):
      %m = arith.constant -1 : i64
      %p = arith.muli %out, %m : i64
      linalg.yield %p : i64
    } -> tensor<3xi64>
    return %0 : tensor<3xi64>
  }
  func.func @reads(%x: tensor<3x4xf32>) -> tensor<3xf32> {
    %z = tensor.empty() : tensor<3xf32>
    %0 = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<3x4xf32>) outs(%z : tensor<3xf32>) {
    ^bb0(%in: f32, %out: f32):
      %s = arith.addf %out, %in : f32
      linalg.yield %s : f32
    } -> tensor<3xf32>
    return %0 : tensor<3xf32>
  }
  func.func @no_domain_input(%x: tensor<4x3xf32>, %c: f32) -> tensor<3xf32> {
    %z = tensor.empty() : tensor<3xf32>
    %0 = linalg.generic {indexing_maps = [#tr, #row], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<4x3xf32>) outs(%z : tensor<3xf32>) {
    ^bb0(%in: f32, %out: f32):
      %s = arith.addf %out, %c : f32
      linalg.yield %s : f32
    } -> tensor<3xf32>
    return %0 : tensor<3xf32>
  }
}
"#;

#[test]
fn invariant_reductions_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::invariant_reductions;
    tensorc_mlir::register_external_pass(invariant_reductions::NAME, invariant_reductions::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, REDUCTIONS, invariant_reductions::NAME);
    let sum = function_text(&after, "sum");
    assert!(sum.contains("linalg.fill ins(%arg1 : f32) outs(%1 : tensor<3x4xf32>)"), "{sum}");
    assert!(sum.contains("arith.addf %out, %in_0 : f32"), "{sum}");
    let product = function_text(&after, "product");
    assert!(product.contains("tensor<3x4xi64>"), "{product}");
    assert!(product.contains("arith.muli %out, %in_0 : i64"), "{product}");
    for left in ["reads", "no_domain_input"] {
        assert_eq!(function_text(&before, left), function_text(&after, left), "{left}");
    }
    insta::assert_snapshot!("invariant_reductions_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn reductions_of_constants_agree_with_the_interpreter() {
    let p = |name, src: &str| (name, src.to_owned(), 1e-5);
    let programs = vec![
        p(
            "sum_rows_of_a_constant",
            "def main(a: f32[3]) -> f32[3] {\n  c = constant 2.0  f32[3][4]\n  s = sum c, axes: [1]\n  y = add s, a\n  return y\n}\n",
        ),
        p(
            "sum_columns_of_a_constant",
            "def main(a: f64[5]) -> f64[5] {\n  c = constant 0.25  f64[7][5]\n  s = sum c, axes: [0]\n  y = multiply s, a\n  return y\n}\n",
        ),
        p(
            "mean_of_a_computed_constant",
            "def main(b: f32[6][33]) -> f32[6] {\n  m = multiply b, 0.0\n  z = add m, 1.5\n  s = sum z, axes: [1]\n  t = divide s, 33.0\n  return t\n}\n",
        ),
        p("product_of_integers", "def main() -> s32 {\n  k = constant 3  s32[7]\n  p = product k\n  return p\n}\n"),
        p(
            "dot_of_constant_vectors",
            "def main() -> s32 {\n  v = constant 2  s32[5]\n  d = dot v, [0], [], v, [0], []\n  return d\n}\n",
        ),
        p(
            "product_of_an_or_with_all_ones",
            "def main(p: u32[2][1][1]) -> s64[1][1][1] {\n  v = bitwise_or p, -1\n  r = product v, axes: [0, 1], keep_axes: true\n  return r\n}\n",
        ),
        p(
            "reduce_max_of_a_constant",
            "def main(a: f32[4]) -> f32[4] {\n  c = constant -7.5  f32[4][19]\n  m = reduce_max c, axes: [1]\n  y = add m, a\n  return y\n}\n",
        ),
    ];
    for (inputs, seed) in [(EdgeSet::None, 2), (EdgeSet::Mild, 3)] {
        let failures = differential_all(&programs, inputs, seed);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

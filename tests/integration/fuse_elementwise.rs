//! `tensorc-fuse-elementwise` (`passes/tensorc-passes/src/fuse_elementwise.rs`):
//! element-wise chains become their last op, in place, and splat constant
//! inputs become scalars in the body.
//!
//! - the pass before and after, on hand-written generics: a chain of three
//!   (one reading a 0-d constant and one a `linalg.index`) becomes one op
//!   with the producers' inputs where the fused input was; an element-wise
//!   producer of a row reduction is fused; the producers it must leave are
//!   left: one with two uses, one read through a broadcast, one that reads
//!   its own output, one whose fusion would leave the reduced loop
//!   unbounded, one in another block; a splat constant input that alone
//!   spans a reduced loop is not folded;
//! - the `opt` stage of a chain of 3000 ops is one `linalg.generic` with no
//!   constant operand (upstream's fusion alone took 4.2 s for it);
//! - chains mixing every kind of element-wise op, indices, broadcasts,
//!   reductions fed by chains, integer and float constants against the
//!   interpreter on the CPU, on random and edge inputs.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

const CHAINS: &str = r#"
#id = affine_map<(d0) -> (d0)>
#sc = affine_map<(d0) -> ()>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
module {
  func.func @chain(%a: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<8xf32> {
    %e = tensor.empty() : tensor<8xf32>
    %two = arith.constant dense<2.0> : tensor<f32>
    %0 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]} ins(%a, %b : tensor<8xf32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%x: f32, %y: f32, %o: f32):
      %s = arith.addf %x, %y : f32
      linalg.yield %s : f32
    } -> tensor<8xf32>
    %1 = linalg.generic {indexing_maps = [#sc, #id, #id], iterator_types = ["parallel"]} ins(%two, %0 : tensor<f32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%t: f32, %x: f32, %o: f32):
      %i = linalg.index 0 : index
      %ii = arith.index_cast %i : index to i32
      %f = arith.sitofp %ii : i32 to f32
      %m = arith.mulf %x, %t : f32
      %n = arith.addf %m, %f : f32
      linalg.yield %n : f32
    } -> tensor<8xf32>
    %2 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]} ins(%b, %1 : tensor<8xf32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%x: f32, %y: f32, %o: f32):
      %s = arith.subf %x, %y : f32
      linalg.yield %s : f32
    } -> tensor<8xf32>
    return %2 : tensor<8xf32>
  }
  func.func @into_reduction(%a: tensor<4x8xf32>) -> tensor<4xf32> {
    %e = tensor.empty() : tensor<4x8xf32>
    %z = tensor.empty() : tensor<4xf32>
    %0 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%a : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
    ^bb0(%x: f32, %o: f32):
      %s = arith.mulf %x, %x : f32
      linalg.yield %s : f32
    } -> tensor<4x8xf32>
    %1 = linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]} ins(%0 : tensor<4x8xf32>) outs(%z : tensor<4xf32>) {
    ^bb0(%x: f32, %acc: f32):
      %s = arith.addf %x, %acc : f32
      linalg.yield %s : f32
    } -> tensor<4xf32>
    return %1 : tensor<4xf32>
  }
  func.func @constant_spans_the_reduction() -> tensor<4xf32> {
    %c = arith.constant dense<2.0> : tensor<4x8xf32>
    %z = tensor.empty() : tensor<4xf32>
    %0 = linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]} ins(%c : tensor<4x8xf32>) outs(%z : tensor<4xf32>) {
    ^bb0(%x: f32, %acc: f32):
      %s = arith.addf %x, %acc : f32
      linalg.yield %s : f32
    } -> tensor<4xf32>
    return %0 : tensor<4xf32>
  }
  func.func @left(%a: tensor<8xf32>, %r: tensor<4xf32>, %m: tensor<4x8xf32>, %c: i1) -> (tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<8xf32>, tensor<4xf32>, tensor<8xf32>) {
    %e = tensor.empty() : tensor<8xf32>
    %e2 = tensor.empty() : tensor<4x8xf32>
    %z = tensor.empty() : tensor<4xf32>
    // Two uses.
    %0 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%a : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%x: f32, %o: f32):
      %s = math.exp %x : f32
      linalg.yield %s : f32
    } -> tensor<8xf32>
    %1 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%0 : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%x: f32, %o: f32):
      %s = math.sqrt %x : f32
      linalg.yield %s : f32
    } -> tensor<8xf32>
    // Read through a broadcast.
    %2 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%0 : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%x: f32, %o: f32):
      %s = math.tanh %x : f32
      linalg.yield %s : f32
    } -> tensor<8xf32>
    %3 = linalg.generic {indexing_maps = [#col, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%2, %m : tensor<8xf32>, tensor<4x8xf32>) outs(%e2 : tensor<4x8xf32>) {
    ^bb0(%x: f32, %y: f32, %o: f32):
      %s = arith.mulf %x, %y : f32
      linalg.yield %s : f32
    } -> tensor<4x8xf32>
    // Reads its own output.
    %4 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%a : tensor<8xf32>) outs(%a : tensor<8xf32>) {
    ^bb0(%x: f32, %o: f32):
      %s = arith.addf %x, %o : f32
      linalg.yield %s : f32
    } -> tensor<8xf32>
    %5 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%4 : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%x: f32, %o: f32):
      %s = math.log %x : f32
      linalg.yield %s : f32
    } -> tensor<8xf32>
    // Only the fused input spans the reduced loop.
    %6 = linalg.generic {indexing_maps = [#row, #id2], iterator_types = ["parallel", "parallel"]} ins(%r : tensor<4xf32>) outs(%e2 : tensor<4x8xf32>) {
    ^bb0(%x: f32, %o: f32):
      %s = math.absf %x : f32
      linalg.yield %s : f32
    } -> tensor<4x8xf32>
    %7 = linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]} ins(%6 : tensor<4x8xf32>) outs(%z : tensor<4xf32>) {
    ^bb0(%x: f32, %acc: f32):
      %s = arith.addf %x, %acc : f32
      linalg.yield %s : f32
    } -> tensor<4xf32>
    // The consumer is in another block.
    %8 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%a : tensor<8xf32>) outs(%e : tensor<8xf32>) {
    ^bb0(%x: f32, %o: f32):
      %s = arith.negf %x : f32
      linalg.yield %s : f32
    } -> tensor<8xf32>
    %9 = scf.if %c -> tensor<8xf32> {
      %in = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%8 : tensor<8xf32>) outs(%e : tensor<8xf32>) {
      ^bb0(%x: f32, %o: f32):
        %s = math.floor %x : f32
        linalg.yield %s : f32
      } -> tensor<8xf32>
      scf.yield %in : tensor<8xf32>
    } else {
      scf.yield %a : tensor<8xf32>
    }
    return %1, %0, %3, %5, %7, %9 : tensor<8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<8xf32>, tensor<4xf32>, tensor<8xf32>
  }
}
"#;

#[test]
fn fuse_elementwise_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::fuse_elementwise;
    tensorc_mlir::register_external_pass(fuse_elementwise::NAME, fuse_elementwise::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, CHAINS, fuse_elementwise::NAME);
    let chain = function_text(&after, "chain");
    // One op: inputs %b, then the middle op's (the constant folded away),
    // then the first op's %a, %b.
    assert_eq!(chain.matches("linalg.generic").count(), 1, "{chain}");
    assert!(chain.contains("ins(%arg1, %arg0, %arg1 : tensor<8xf32>, tensor<8xf32>, tensor<8xf32>)"), "{chain}");
    assert!(chain.contains("arith.constant 2.000000e+00 : f32"), "{chain}");
    assert!(chain.contains("linalg.index 0"), "{chain}");
    // The bodies in order: add, then the middle op's index, mul, add, then sub.
    let order: Vec<usize> = ["arith.addf", "linalg.index", "arith.mulf", "arith.subf"]
        .iter()
        .map(|op| chain.find(op).unwrap_or_else(|| panic!("{op} in {chain}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{chain}");
    let reduction = function_text(&after, "into_reduction");
    assert_eq!(reduction.matches("linalg.generic").count(), 1, "{reduction}");
    assert!(reduction.contains("iterator_types = [\"parallel\", \"reduction\"]"), "{reduction}");
    // (The module's map aliases are numbered anew: compare without them.)
    let unaliased = |f: &str| {
        let mut out = String::new();
        let mut rest = f;
        while let Some(at) = rest.find("#map") {
            out.push_str(&rest[..at]);
            rest = rest[at + 4..].trim_start_matches(|c: char| c.is_ascii_digit());
        }
        out + rest
    };
    // A splat constant that alone spans the reduced loop stays an operand
    // (folded, the loop's bound would be lost: generated seed 32977).
    let spans = "constant_spans_the_reduction";
    assert_eq!(unaliased(function_text(&before, spans)), unaliased(function_text(&after, spans)));
    // Every op of @left stays.
    let left_before = function_text(&before, "left");
    let left_after = function_text(&after, "left");
    assert_eq!(left_after.matches("linalg.generic").count(), 10, "{left_after}");
    assert_eq!(unaliased(left_before), unaliased(left_after));
    insta::assert_snapshot!("fuse_elementwise_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn a_chain_of_3000_ops_is_one_generic() {
    let mut src = String::from("def main(a: f32[64], b: f32[64]) -> f32[64] {\n  x0 = add a, b\n");
    for i in 1..3000 {
        let op = ["add", "multiply", "subtract", "max"][i % 4];
        src.push_str(&format!("  x{i} = {op} x{}, {}.5\n", i - 1, i % 7));
    }
    src.push_str("  return x2999\n}\n");
    let opt = tensorc::emit("chain.nxir", &src, tensorc::Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(opt.matches("linalg.generic").count(), 1);
    // The constants are scalars in the body: the only operands are a and b.
    assert!(opt.contains("ins(%arg0, %arg1 : tensor<64xf32>, tensor<64xf32>)"), "{}", &opt[..opt.len().min(4000)]);
    assert_eq!(opt.matches("arith.maximumf").count(), 750);
}

/// Element-wise programs whose chains the pass fuses, with what is left to
/// upstream's fusion mixed in.
fn programs() -> Vec<(&'static str, String, f64)> {
    let p = |name, src: &str| (name, src.to_owned(), 1e-5);
    vec![
        p(
            "fe_float_chain",
            "def main(a: f32[37], b: f32[37], c: f32[37]) -> f32[37] {\n  m = multiply a, b\n  s = add m, c\n  t = tanh s\n  h = multiply t, 0.5\n  e = exp h\n  l = log1p e\n  y = subtract l, a\n  return y\n}\n",
        ),
        p(
            "fe_int_chain",
            "def main(a: s32[5][7], b: s32[5][7]) -> s32[5][7] {\n  m = multiply a, 3\n  s = add m, b\n  x = bitwise_xor s, 255\n  r = remainder x, 7\n  q = max r, -2\n  return q\n}\n",
        ),
        p(
            "fe_iota_chain",
            "def main(a: f32[6][9]) -> f32[6][9] {\n  i = iota 1  f32[6][9]\n  s = add a, i\n  m = multiply s, s\n  y = subtract m, 1.0\n  return y\n}\n",
        ),
        p(
            "fe_into_reductions",
            "def main(x: f32[16][33]) -> f32[16][33] {\n  s = sum x, axes: [1], keep_axes: true\n  mu = divide s, 33.0\n  d = subtract x, mu\n  sq = multiply d, d\n  vs = sum sq, axes: [1], keep_axes: true\n  var = divide vs, 33.0\n  ve = add var, 1.0e-5\n  r = rsqrt ve\n  y = multiply d, r\n  return y\n}\n",
        ),
        p(
            "fe_shared_and_broadcast",
            "def main(a: f32[4][10], b: f32[10]) {\n  e = exp b\n  n = negate e\n  m = multiply a, n\n  t = add m, 1.0\n  return {t, e}\n}\n",
        ),
        p(
            "fe_mixed_types",
            "def main(a: f32[3][8], b: s32[3][8]) -> f64[3][8] {\n  c = as_type b  f32[3][8]\n  s = add a, c\n  w = as_type s  f64[3][8]\n  y = multiply w, 2.0\n  return y\n}\n",
        ),
    ]
}

#[test]
fn fused_chains_agree_with_the_interpreter() {
    let programs = programs();
    for (inputs, seed) in [(EdgeSet::None, 3), (EdgeSet::Edge, 5), (EdgeSet::Mild, 8)] {
        let failures = differential_all(&programs, inputs, seed);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

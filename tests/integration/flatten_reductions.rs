//! `tensorc-flatten-reductions` (`passes/tensorc-passes/src/flatten_reductions.rs`,
//! first in the CPU lowering): a reduction over every element of its
//! inputs runs as one loop on 1-D views.
//!
//! - the pass before and after (snapshot): a 3-D sum with `exp` fused into
//!   it and a 2-D sum of products flattened; a reduction over some axes, a
//!   body reading `linalg.index` and an input read transposed left alone;
//! - the sum of 256³ f32 reaches the reduction schedule (vector code);
//! - every kind of reduction over all axes of tensors of rank 2–4, odd
//!   sizes, several dtypes, against the interpreter on one and two threads.

use crate::harness::{EdgeSet, Settings, before_and_after, differential, function_text};
use tensorc::Stage;

const REDUCTIONS: &str = r#"
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#none3 = affine_map<(d0, d1, d2) -> ()>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#tr2 = affine_map<(d0, d1) -> (d1, d0)>
#none2 = affine_map<(d0, d1) -> ()>
#row2 = affine_map<(d0, d1) -> (d0)>
module {
  func.func @sum_exp(%x: tensor<4x5x6xf32>, %o: tensor<f32>) -> tensor<f32> {
    %r = linalg.generic {indexing_maps = [#id3, #none3], iterator_types = ["reduction", "reduction", "reduction"]} ins(%x : tensor<4x5x6xf32>) outs(%o : tensor<f32>) {
    ^bb0(%a: f32, %c: f32):
      %e = math.exp %a : f32
      %s = arith.addf %c, %e : f32
      linalg.yield %s : f32
    } -> tensor<f32>
    return %r : tensor<f32>
  }
  func.func @sum_products(%x: tensor<7x9xf64>, %y: tensor<7x9xf64>, %o: tensor<f64>) -> tensor<f64> {
    %r = linalg.generic {indexing_maps = [#id2, #id2, #none2], iterator_types = ["reduction", "reduction"]} ins(%x, %y : tensor<7x9xf64>, tensor<7x9xf64>) outs(%o : tensor<f64>) {
    ^bb0(%a: f64, %b: f64, %c: f64):
      %m = arith.mulf %a, %b : f64
      %s = arith.addf %c, %m : f64
      linalg.yield %s : f64
    } -> tensor<f64>
    return %r : tensor<f64>
  }
  func.func @rows(%x: tensor<7x9xf32>, %o: tensor<7xf32>) -> tensor<7xf32> {
    %r = linalg.generic {indexing_maps = [#id2, #row2], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<7x9xf32>) outs(%o : tensor<7xf32>) {
    ^bb0(%a: f32, %c: f32):
      %s = arith.addf %c, %a : f32
      linalg.yield %s : f32
    } -> tensor<7xf32>
    return %r : tensor<7xf32>
  }
  func.func @indexed(%x: tensor<7x9xf32>, %o: tensor<f32>) -> tensor<f32> {
    %r = linalg.generic {indexing_maps = [#id2, #none2], iterator_types = ["reduction", "reduction"]} ins(%x : tensor<7x9xf32>) outs(%o : tensor<f32>) {
    ^bb0(%a: f32, %c: f32):
      %i = linalg.index 1 : index
      %j = arith.index_cast %i : index to i32
      %f = arith.sitofp %j : i32 to f32
      %m = arith.mulf %a, %f : f32
      %s = arith.addf %c, %m : f32
      linalg.yield %s : f32
    } -> tensor<f32>
    return %r : tensor<f32>
  }
  func.func @transposed(%x: tensor<7x9xf32>, %y: tensor<9x7xf32>, %o: tensor<f32>) -> tensor<f32> {
    %r = linalg.generic {indexing_maps = [#id2, #tr2, #none2], iterator_types = ["reduction", "reduction"]} ins(%x, %y : tensor<7x9xf32>, tensor<9x7xf32>) outs(%o : tensor<f32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %c, %m : f32
      linalg.yield %s : f32
    } -> tensor<f32>
    return %r : tensor<f32>
  }
}
"#;

#[test]
fn flatten_reductions_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::flatten_reductions;
    tensorc_mlir::register_external_pass(flatten_reductions::NAME, flatten_reductions::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, REDUCTIONS, flatten_reductions::NAME);
    let sum_exp = function_text(&after, "sum_exp");
    assert!(sum_exp.contains("tensor.collapse_shape %arg0 [[0, 1, 2]] : tensor<4x5x6xf32> into tensor<120xf32>"), "{sum_exp}");
    assert!(sum_exp.contains("iterator_types = [\"reduction\"]") && sum_exp.contains("math.exp"), "{sum_exp}");
    let products = function_text(&after, "sum_products");
    assert_eq!(products.matches("tensor<63xf64>").count(), 4, "{products}");
    // (Map aliases renumber when the module's maps change.)
    let unaliased = |f: &str| -> String {
        let mut out = String::new();
        let mut rest = f;
        while let Some(at) = rest.find("#map") {
            out.push_str(&rest[..at + 4]);
            rest = rest[at + 4..].trim_start_matches(|c: char| c.is_ascii_digit());
        }
        out + rest
    };
    for name in ["rows", "indexed", "transposed"] {
        assert_eq!(unaliased(function_text(&before, name)), unaliased(function_text(&after, name)), "@{name} changed");
    }
    insta::assert_snapshot!("flatten_reductions_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn full_reductions_are_vectorized() {
    let source = "def main(x: f32[256][256][256]) -> f32 {\n  y = sum x\n  return y\n}\n";
    let llvm = tensorc::emit("sum3.nxir", source, Stage::LlvmDialect).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(llvm.contains("vector<16xf32>"), "the sum of 256³ stays scalar:\n{llvm}");
}

#[test]
fn full_reductions_agree_with_the_interpreter() {
    let mut programs: Vec<(String, String)> = Vec::new();
    for (ty, elem, ops) in [
        ("f32[33][17][5]", "f32", &["sum", "product", "reduce_max", "reduce_min"][..]),
        ("f64[3][4][5][7]", "f64", &["sum", "reduce_max"][..]),
        ("s32[129][65]", "s32", &["sum", "reduce_min"][..]),
        ("u8[300][7]", "u32", &["sum"][..]),
        ("bf16[64][37]", "bf16", &["sum", "reduce_max"][..]),
    ] {
        for op in ops {
            let name = format!("full_{op}_{}", ty.replace(['[', ']'], "_"));
            programs.push((name, format!("def main(x: {ty}) -> {elem} {{\n  y = {op} x\n  return y\n}}\n")));
        }
    }
    for ty in ["s32[129][65]", "u8[300][7]"] {
        for op in ["all", "any"] {
            let name = format!("full_{op}_{}", ty.replace(['[', ']'], "_"));
            programs.push((name, format!("def main(x: {ty}) -> u8 {{\n  y = {op} x\n  return y\n}}\n")));
        }
    }
    // An element-wise op fused into the sum.
    programs.push(("full_sum_exp".into(), "def main(x: f32[100][77]) -> f32 {\n  e = exp x\n  y = sum e\n  return y\n}\n".into()));
    let settings = Settings { tolerance: 1e-4, inputs: EdgeSet::Mild, seeds: vec![21] };
    let failures = crate::threads::on_threads(&[1, 2], || {
        programs.iter().flat_map(|(name, source)| differential(&format!("{name}.nxir"), source, &settings)).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

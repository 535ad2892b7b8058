//! `tensorc-pow-by-constant` (`passes/tensorc-passes/src/pow_by_constant.rs`):
//! `pow` by a constant 2, 1, 0, −1 or ½ as the arithmetic it equals.
//!
//! - the pass before and after: scalar, vector and tensor `math.powf`s by
//!   those constants are rewritten, one by 3 and one by a non-constant are
//!   left alone;
//! - each exponent on every float dtype against the interpreter, bit for
//!   bit, on random and edge inputs (NaN, ±inf, ±0, subnormals, huge and
//!   tiny values), on the CPU — the rewrite must be `pow` itself there:
//!   `pow(−0, ½) = +0`, `pow(−∞, ½) = +∞`, `pow(NaN, 0) = 1`;
//! - the same programs' `opt` stage has no `math.powf` left.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

const POWS: &str = r#"
module {
  func.func @scalars(%x: f32) -> (f32, f32, f32, f32, f32, f32) {
    %two = arith.constant 2.0 : f32
    %one = arith.constant 1.0 : f32
    %zero = arith.constant 0.0 : f32
    %m1 = arith.constant -1.0 : f32
    %half = arith.constant 0.5 : f32
    %three = arith.constant 3.0 : f32
    %a = math.powf %x, %two : f32
    %b = math.powf %x, %one : f32
    %c = math.powf %x, %zero : f32
    %d = math.powf %x, %m1 : f32
    %e = math.powf %x, %half : f32
    %f = math.powf %x, %three : f32
    return %a, %b, %c, %d, %e, %f : f32, f32, f32, f32, f32, f32
  }
  func.func @shaped(%v: vector<8xf64>, %t: tensor<4xf32>, %y: f32) -> (vector<8xf64>, tensor<4xf32>, f32) {
    %half = arith.constant dense<0.5> : vector<8xf64>
    %two = arith.constant dense<2.0> : tensor<4xf32>
    %a = math.powf %v, %half : vector<8xf64>
    %b = math.powf %t, %two : tensor<4xf32>
    %c = math.powf %y, %y : f32
    return %a, %b, %c : vector<8xf64>, tensor<4xf32>, f32
  }
}
"#;

#[test]
fn pow_by_constant_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::pow_by_constant;
    tensorc_mlir::register_external_pass(pow_by_constant::NAME, pow_by_constant::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, POWS, pow_by_constant::NAME);
    let scalars = function_text(&after, "scalars");
    // Only the power of 3 is left.
    assert_eq!(scalars.matches("math.powf").count(), 1, "{scalars}");
    assert!(scalars.contains("arith.mulf %arg0, %arg0"), "{scalars}");
    assert!(scalars.contains("math.sqrt") && scalars.contains("arith.divf"), "{scalars}");
    let shaped = function_text(&after, "shaped");
    // The non-constant exponent stays.
    assert_eq!(shaped.matches("math.powf").count(), 1, "{shaped}");
    assert!(shaped.contains("vector<8xi1>") && shaped.contains("math.sqrt"), "{shaped}");
    insta::assert_snapshot!("pow_by_constant_pass", format!("// before\n{before}\n// after\n{after}"));
}

fn program(dtype: &str, exponent: &str) -> String {
    format!("def main(x: {dtype}[40]) -> {dtype}[40] {{\n  y = pow x, {exponent}\n  return y\n}}\n")
}

#[test]
fn pow_by_each_constant_is_pow_bit_for_bit() {
    let mut programs = Vec::new();
    for dtype in ["f32", "f64", "f16", "bf16"] {
        for exponent in ["2.0", "1.0", "0.0", "-1.0", "0.5"] {
            let name = format!("pow_{dtype}_{}", exponent.replace(['.', '-'], "_"));
            programs.push((name, program(dtype, exponent)));
        }
    }
    let programs: Vec<(&str, String, f64)> = programs.iter().map(|(n, s)| (n.as_str(), s.clone(), 0.0)).collect();
    for (inputs, seed) in [(EdgeSet::Edge, 2), (EdgeSet::Mild, 9)] {
        let failures = differential_all(&programs, inputs, seed);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

#[test]
fn the_opt_stage_has_no_pow_by_these_constants() {
    for exponent in ["2.0", "1.0", "0.0", "-1.0", "0.5"] {
        let src = program("f32", exponent);
        let opt = tensorc::emit("pow.nxir", &src, tensorc::Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(!opt.contains("math.powf"), "pow x, {exponent}:\n{opt}");
    }
    let opt = tensorc::emit("pow.nxir", &program("f32", "3.0"), tensorc::Stage::Opt).unwrap();
    assert!(opt.contains("math.powf"), "{opt}");
}

//! `tensorc-bf16-rounding` (`passes/tensorc-passes/src/bf16_rounding.rs`):
//! every emulated bf16 op's result is rounded to bf16, in a chain too.
//!
//! - the pass before and after: the `contract` flags of bf16 `extf`/`truncf`
//!   go (scalars and vectors), an f16 conversion keeps its flag;
//! - chains whose intermediate rounding shows, with values worked out by
//!   hand, on the CPU and (with a driver) on Vulkan: `(x + y) − x` and a
//!   u16 `remainder` by a bf16 (the generated program of seed 61080:
//!   65535 is 65536 in bf16, and 65536 mod 1.5 is 1, not 65535 mod 1.5 = 0);
//! - random bf16 chains of `+ − × ÷` and `remainder` against the interpreter,
//!   bit for bit (f32 has more than twice bf16's precision plus two bits, so
//!   an f32 result rounded to bf16 is the correctly rounded bf16 result).

use crate::harness::{EdgeSet, before_and_after, compile_for, differential_all};
use crate::vulkan_math::tensor;
use tensorc::{DType, Scalar, Target, Tensor, TensorType};

const EMULATED: &str = r#"
module {
  func.func @chain(%a: bf16, %b: bf16, %c: bf16) -> bf16 {
    %0 = arith.extf %a fastmath<contract> : bf16 to f32
    %1 = arith.extf %b fastmath<contract> : bf16 to f32
    %2 = arith.addf %0, %1 : f32
    %3 = arith.truncf %2 fastmath<contract> : f32 to bf16
    %4 = arith.extf %3 fastmath<contract> : bf16 to f32
    %5 = arith.extf %c fastmath<contract> : bf16 to f32
    %6 = arith.mulf %4, %5 : f32
    %7 = arith.truncf %6 fastmath<contract> : f32 to bf16
    return %7 : bf16
  }
  func.func @vectors(%a: vector<16xbf16>, %b: vector<16xf32>) -> vector<16xbf16> {
    %0 = arith.truncf %b fastmath<contract> : vector<16xf32> to vector<16xbf16>
    %1 = arith.extf %0 fastmath<contract> : vector<16xbf16> to vector<16xf32>
    %2 = arith.extf %a fastmath<contract> : vector<16xbf16> to vector<16xf32>
    %3 = arith.subf %1, %2 : vector<16xf32>
    %4 = arith.truncf %3 fastmath<contract> : vector<16xf32> to vector<16xbf16>
    return %4 : vector<16xbf16>
  }
  func.func @half(%a: f32) -> f16 {
    %0 = arith.truncf %a fastmath<contract> : f32 to f16
    return %0 : f16
  }
}
"#;

#[test]
fn bf16_rounding_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::bf16_rounding;
    tensorc_mlir::register_external_pass(bf16_rounding::NAME, bf16_rounding::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, EMULATED, bf16_rounding::NAME);
    assert_eq!(before.matches("fastmath<contract>").count(), 11, "{before}");
    // Only the f16 conversion keeps its flag.
    assert_eq!(after.matches("fastmath<contract>").count(), 1, "{after}");
    assert!(after.contains("arith.truncf %arg0 fastmath<contract> : f32 to f16"), "{after}");
    insta::assert_snapshot!("bf16_rounding_pass", format!("// before\n{before}\n// after\n{after}"));
}

fn run(target: Target, source: &str, inputs: &[Tensor]) -> Vec<f64> {
    let out = compile_for("bf16_rounding.nxir", source, target)
        .entry(None)
        .unwrap()
        .call(inputs)
        .unwrap_or_else(|e| panic!("{target:?}: {}", e.render()))
        .remove(0);
    (0..out.ty().num_elements()).map(|i| out.get(i).as_f64()).collect()
}

/// The targets to check: the CPU, and Vulkan where a driver exists.
fn targets() -> Vec<Target> {
    let mut t = vec![Target::Cpu];
    if crate::vulkan::have_driver() {
        t.push(Target::Vulkan);
    }
    t
}

/// `(x + y) − x` in bf16: the sum is rounded before the subtraction.
/// x and y are exact in bf16 (0.3 and 0.1 are converted from f32 first).
/// 1 + 2^-8 is a tie and rounds to 1 (even): 0. 3 + 0.01171875 rounds to
/// 3.015625 (bf16 spacing 2^-6 in [2, 4)): 0.015625. 100 + 0.25 rounds to
/// 100 (spacing 0.5, a tie, to even): 0. bf16(0.3) + bf16(0.1) =
/// 0.30078125 + 0.10009765625 = 0.40087890625 rounds to 0.400390625
/// (spacing 2^-9): 0.099609375. Without the rounding the chain gave y back.
#[test]
fn a_bf16_chain_rounds_every_result() {
    let src = "def main(a: f32[4], b: f32[4]) -> bf16[4] {\n  x = as_type a  bf16[4]\n  y = as_type b  bf16[4]\n  s = add x, y\n  t = subtract s, x\n  return t\n}\n";
    let a = tensor(DType::F32, &[1.0, 3.0, 100.0, 0.3]);
    let b = tensor(DType::F32, &[2f64.powi(-8), 0.01171875, 0.25, 0.1]);
    for target in targets() {
        assert_eq!(run(target, src, &[a.clone(), b.clone()]), [0.0, 0.015625, 0.0, 0.099609375], "{target:?}");
    }
}

/// A u16 `remainder` by a bf16 converts the integer to bf16 first (generated
/// seed 61080). 65535 and 65533 are 65536 in bf16 (spacing 256), and
/// 65536 mod 1.5 = 1; 300 is exact, bf16(0.7) = 0.69921875 and 300 −
/// 429·0.69921875 = 0.03515625; bf16(1.3) = 1.296875 and 7 − 5·1.296875 =
/// 0.515625. Without the rounding, 65535 mod 1.5 gave 0.
#[test]
fn an_integer_converted_to_bf16_is_rounded_before_remainder() {
    let src = "def main(p: u16[4], q: f32[4]) -> bf16[4] {\n  b = as_type q  bf16[4]\n  r = remainder p, b\n  return r\n}\n";
    let p = Tensor::from_scalars(
        TensorType::new(DType::U16, vec![4]),
        &[Scalar::U(65535), Scalar::U(65533), Scalar::U(300), Scalar::U(7)],
    )
    .unwrap();
    let q = tensor(DType::F32, &[1.5, 1.5, 0.7, 1.3]);
    for target in targets() {
        assert_eq!(run(target, src, &[p.clone(), q.clone()]), [1.0, 1.0, 0.03515625, 0.515625], "{target:?}");
    }
}

/// Random bf16 chains, CPU against the interpreter, exactly: each op's f32
/// result rounded to bf16 is the correctly rounded bf16 result.
#[test]
fn bf16_chains_agree_with_the_interpreter_bit_for_bit() {
    let programs = [
        (
            "bf16_arith_chain",
            "def main(a: bf16[37], b: bf16[37], c: bf16[37]) -> bf16[37] {\n  s = add a, b\n  m = multiply s, c\n  d = subtract m, a\n  q = divide d, b\n  r = add q, s\n  return r\n}\n".to_owned(),
            0.0,
        ),
        (
            "bf16_remainder_of_a_sum",
            "def main(a: bf16[3][5], b: bf16[3][5]) -> bf16[3][5] {\n  s = add a, b\n  r = remainder s, b\n  return r\n}\n".to_owned(),
            0.0,
        ),
        (
            "bf16_mixed_with_u16",
            "def main(a: u16[40], b: bf16[40]) -> bf16[40] {\n  s = add a, b\n  m = multiply s, b\n  return m\n}\n".to_owned(),
            0.0,
        ),
    ];
    for seed in [3, 11] {
        let failures = differential_all(&programs, EdgeSet::Mild, seed);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

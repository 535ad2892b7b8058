//! `tensorc-bf16-wide-extends` (`passes/tensorc-passes/src/bf16_wide_extends.rs`):
//! bf16 → f64 conversions go through f32.
//!
//! - the pass before and after: scalar and `vector<9xbf16>` extensions to
//!   f64 become two `arith.extf`s through f32; bf16 → f32 and f16 → f64 are
//!   left alone;
//! - the generated program that aborted LLVM (seed 35344, shrunk:
//!   `tests/cases/regressions/abort_bf16_extend_9.nxir`) compiles to
//!   assembly in a subprocess (before the pass: exit 1 with LLVM's "soft
//!   promote" error, which aborts an in-process caller);
//! - `as_type` from bf16 to f64 of every length from 1 to 40, on its own and
//!   beside another use of the same rows, against the interpreter on the
//!   CPU, on random and edge inputs (exact: bf16 ⊂ f32 ⊂ f64).

use crate::harness::{before_and_after, every_length_agrees, function_text};

const EXTENDS: &str = r#"
module {
  func.func @wide(%a: bf16, %v: vector<9xbf16>) -> (f64, vector<9xf64>) {
    %0 = arith.extf %a : bf16 to f64
    %1 = arith.extf %v : vector<9xbf16> to vector<9xf64>
    return %0, %1 : f64, vector<9xf64>
  }
  func.func @left_alone(%a: bf16, %h: vector<9xf16>) -> (f32, vector<9xf64>) {
    %0 = arith.extf %a : bf16 to f32
    %1 = arith.extf %h : vector<9xf16> to vector<9xf64>
    return %0, %1 : f32, vector<9xf64>
  }
}
"#;

#[test]
fn bf16_wide_extends_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::bf16_wide_extends;
    tensorc_mlir::register_external_pass(bf16_wide_extends::NAME, bf16_wide_extends::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, EXTENDS, bf16_wide_extends::NAME);
    let wide = function_text(&after, "wide");
    assert!(wide.contains("arith.extf %arg0 : bf16 to f32"), "{wide}");
    assert!(wide.contains("arith.extf %arg1 : vector<9xbf16> to vector<9xf32>"), "{wide}");
    assert!(wide.contains("vector<9xf32> to vector<9xf64>"), "{wide}");
    assert!(!wide.contains("bf16 to f64") && !wide.contains("vector<9xbf16> to vector<9xf64>"), "{wide}");
    assert_eq!(function_text(&before, "left_alone"), function_text(&after, "left_alone"));
    insta::assert_snapshot!("bf16_wide_extends_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn the_aborting_program_compiles_in_a_subprocess() {
    crate::harness::compiles_to_asm_in_a_subprocess("regressions/abort_bf16_extend_9.nxir");
}

#[test]
fn bf16_to_f64_of_every_length_agrees_with_the_interpreter() {
    let failures = every_length_agrees("bf16_to_f64", 1..=40, |n| {
        format!(
            "def main(p: bf16[{n}], q: f64[{n}]) -> {{f64[{n}], u8[{n}], f32[{n}]}} {{\n  a = as_type p  f64[{n}]\n  b = greater_equal a, q\n  c = negate p\n  d = as_type c  f32[{n}]\n  return {{a, b, d}}\n}}\n"
        )
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

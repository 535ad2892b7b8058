//! `tensorc-bf16-selects` (`passes/tensorc-passes/src/bf16_selects.rs`):
//! selects between bf16 values select between their i16 bit patterns.
//!
//! - the pass before and after: scalar and `vector<9xbf16>` selects become
//!   `arith.bitcast`s to i16, an i16 select and a bitcast back; an f32
//!   select and a select of bf16 memrefs are left alone;
//! - bf16 selects of every length from 1 to 40 (9 aborted LLVM on AVX512-BF16
//!   hosts), with a bf16 condition and with a comparison, against the
//!   interpreter on the CPU, on random and edge inputs (NaN, infinities,
//!   signed zeros: the bits are moved, never rounded).

use crate::harness::{before_and_after, every_length_agrees, function_text};

const SELECTS: &str = r#"
module {
  func.func @bf16(%c: i1, %a: bf16, %b: bf16, %vc: vector<9xi1>, %va: vector<9xbf16>, %vb: vector<9xbf16>) -> (bf16, vector<9xbf16>) {
    %s = arith.select %c, %a, %b : bf16
    %v = arith.select %vc, %va, %vb : vector<9xi1>, vector<9xbf16>
    return %s, %v : bf16, vector<9xbf16>
  }
  func.func @others(%c: i1, %a: f32, %b: f32, %m: memref<4xbf16>, %n: memref<4xbf16>) -> (f32, memref<4xbf16>) {
    %s = arith.select %c, %a, %b : f32
    %r = arith.select %c, %m, %n : memref<4xbf16>
    return %s, %r : f32, memref<4xbf16>
  }
}
"#;

#[test]
fn bf16_selects_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::bf16_selects;
    tensorc_mlir::register_external_pass(bf16_selects::NAME, bf16_selects::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, SELECTS, bf16_selects::NAME);
    let bf16 = function_text(&after, "bf16");
    assert!(bf16.contains("arith.select %arg0, %0, %1 : i16"), "{bf16}");
    assert!(bf16.contains(": vector<9xi1>, vector<9xi16>"), "{bf16}");
    assert!(bf16.contains("arith.bitcast %2 : i16 to bf16"), "{bf16}");
    assert!(!bf16.contains("vector<9xi1>, vector<9xbf16>"), "{bf16}");
    assert_eq!(function_text(&before, "others"), function_text(&after, "others"));
    insta::assert_snapshot!("bf16_selects_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn bf16_selects_of_every_length_agree_with_the_interpreter() {
    let failures = every_length_agrees("bf16_select", 1..=40, |n| {
        format!(
            "def main(p: bf16[{n}], q: bf16[{n}]) -> {{f32[{n}], f32[{n}]}} {{\n  a = select p, p, 1000\n  c = less p, q\n  b = select c, q, p\n  x = as_type a  f32[{n}]\n  y = as_type b  f32[{n}]\n  return {{x, y}}\n}}\n"
        )
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

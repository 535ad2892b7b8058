//! `tensorc-expand-absi` (`passes/tensorc-passes/src/expand_absi.rs`):
//! `math.absi` of n-D vectors as `arith.maxsi(x, 0 - x)`.
//!
//! - the pass before and after: a 3-D `math.absi` is expanded, 1-D and
//!   scalar ones (lowered to `llvm.intr.abs`) are left alone;
//! - interpreter-vs-CPU runs of `abs` on small multi-dimensional integer
//!   tensors of every signed width, with edge inputs (the minimum integer
//!   stays itself), including the generated program that failed
//!   (`tests/cases/regressions/gen_int9235.nxir`, replayed by the generated
//!   tests too).

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

const ABS: &str = r#"
module {
  func.func @three_d(%v: vector<2x1x1xi8>) -> vector<2x1x1xi8> {
    %a = math.absi %v : vector<2x1x1xi8>
    return %a : vector<2x1x1xi8>
  }
  func.func @one_d(%v: vector<16xi32>, %s: i64) -> (vector<16xi32>, i64) {
    %a = math.absi %v : vector<16xi32>
    %b = math.absi %s : i64
    return %a, %b : vector<16xi32>, i64
  }
}
"#;

#[test]
fn expand_absi_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::expand_absi;
    tensorc_mlir::register_external_pass(expand_absi::NAME, expand_absi::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, ABS, expand_absi::NAME);
    let three = function_text(&after, "three_d");
    assert!(!three.contains("math.absi"), "{three}");
    assert!(
        three.contains("arith.subi") && three.contains("arith.maxsi"),
        "{three}"
    );
    assert_eq!(
        function_text(&before, "one_d"),
        function_text(&after, "one_d")
    );
    insta::assert_snapshot!(
        "expand_absi_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

#[test]
fn abs_of_small_tensors_agrees_with_the_interpreter() {
    let abs = |t: &str| format!("def main(x: {t}) -> {t} {{\n  y = abs x\n  return y\n}}\n");
    let programs = [
        ("abs_s8_2x1x1", abs("s8[2][1][1]"), 0.0),
        ("abs_s16_3x2x1", abs("s16[3][2][1]"), 0.0),
        ("abs_s32_2x2x3", abs("s32[2][2][3]"), 0.0),
        ("abs_s64_1x3x1", abs("s64[1][3][1]"), 0.0),
        (
            "abs_then_product",
            "def main(v1: s8[2][1][1]) -> s8[1] {\n  v2 = abs v1\n  v3 = reduce v2, 1, axes: [-3, 1], &Nx.multiply/2\n  return v3\n}\n".to_owned(),
            0.0,
        ),
    ];
    let failures = differential_all(&programs, EdgeSet::Edge, 6);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

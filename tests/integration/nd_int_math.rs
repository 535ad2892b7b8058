//! `tensorc-nd-int-math` (`passes/tensorc-passes/src/nd_int_math.rs`):
//! `math.absi` of n-D vectors as `arith.maxsi(x, 0 - x)`, `math.ctlz` and
//! `math.cttz` of n-D vectors on the vector flattened to 1-D.
//!
//! - the pass before and after: a 3-D `math.absi` is expanded, 2-D
//!   `ctlz`/`cttz` are flattened, 1-D and scalar ones (lowered to LLVM
//!   intrinsics) are left alone;
//! - interpreter-vs-CPU runs of `abs` on small multi-dimensional integer
//!   tensors of every signed width, with edge inputs (the minimum integer
//!   stays itself), including the generated program that failed
//!   (`tests/cases/regressions/gen_int9235.nxir`, replayed by the generated
//!   tests too);
//! - the same for `count_leading_zeros` of every integer width
//!   (`gen_int64185.nxir`: a `u32[1][3][1]` reduced by `all`).

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

const ABS: &str = r#"
module {
  func.func @three_d(%v: vector<2x1x1xi8>) -> vector<2x1x1xi8> {
    %a = math.absi %v : vector<2x1x1xi8>
    return %a : vector<2x1x1xi8>
  }
  func.func @counts(%v: vector<3x2xi32>) -> (vector<3x2xi32>, vector<3x2xi32>) {
    %l = math.ctlz %v : vector<3x2xi32>
    %t = math.cttz %v : vector<3x2xi32>
    return %l, %t : vector<3x2xi32>, vector<3x2xi32>
  }
  func.func @one_d(%v: vector<16xi32>, %s: i64) -> (vector<16xi32>, i64, vector<16xi32>) {
    %a = math.absi %v : vector<16xi32>
    %b = math.absi %s : i64
    %c = math.ctlz %v : vector<16xi32>
    return %a, %b, %c : vector<16xi32>, i64, vector<16xi32>
  }
}
"#;

#[test]
fn nd_int_math_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::nd_int_math;
    tensorc_mlir::register_external_pass(nd_int_math::NAME, nd_int_math::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, ABS, nd_int_math::NAME);
    let three = function_text(&after, "three_d");
    assert!(!three.contains("math.absi"), "{three}");
    assert!(
        three.contains("arith.subi") && three.contains("arith.maxsi"),
        "{three}"
    );
    let counts = function_text(&after, "counts");
    for op in ["ctlz", "cttz"] {
        let lines: Vec<&str> = counts.lines().filter(|l| l.contains(&format!("math.{op}"))).collect();
        assert!(
            lines.len() == 1 && lines[0].ends_with(": vector<6xi32>"),
            "{counts}"
        );
    }
    assert_eq!(counts.matches("vector.shape_cast").count(), 4, "{counts}");
    assert_eq!(
        function_text(&before, "one_d"),
        function_text(&after, "one_d")
    );
    insta::assert_snapshot!(
        "nd_int_math_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

/// `op` of small multi-dimensional tensors of the given types, then
/// `extra` (a program that failed), against the interpreter on edge
/// inputs.
fn agrees_on_small_tensors(op: &str, types: [&str; 4], extra: (&str, &str)) {
    let one = |t: &str| format!("def main(x: {t}) -> {t} {{\n  y = {op} x\n  return y\n}}\n");
    let mut programs: Vec<(String, String)> = types
        .iter()
        .map(|t| (format!("{op}_{}", t.replace(['[', ']'], "_")), one(t)))
        .collect();
    programs.push((extra.0.to_owned(), extra.1.to_owned()));
    let programs: Vec<(&str, String, f64)> = programs.iter().map(|(n, s)| (n.as_str(), s.clone(), 0.0)).collect();
    let failures = differential_all(&programs, EdgeSet::Edge, 6);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn abs_of_small_tensors_agrees_with_the_interpreter() {
    agrees_on_small_tensors(
        "abs",
        ["s8[2][1][1]", "s16[3][2][1]", "s32[2][2][3]", "s64[1][3][1]"],
        (
            "abs_then_product",
            "def main(v1: s8[2][1][1]) -> s8[1] {\n  v2 = abs v1\n  v3 = reduce v2, 1, axes: [-3, 1], &Nx.multiply/2\n  return v3\n}\n",
        ),
    );
}

#[test]
fn count_leading_zeros_of_small_tensors_agrees_with_the_interpreter() {
    agrees_on_small_tensors(
        "count_leading_zeros",
        ["u8[2][1][1]", "s16[3][2][1]", "u32[2][2][3]", "s64[1][3][1]"],
        (
            "clz_then_all",
            "def main(v0: u32[1][3][1]) -> u8[1][1] {\n  v1 = count_leading_zeros v0\n  v2 = all v1, axes: [1]\n  return v2\n}\n",
        ),
    );
}

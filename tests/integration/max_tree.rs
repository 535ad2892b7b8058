//! `tensorc-max-tree` (`passes/tensorc-passes/src/max_tree.rs`): the tree
//! combining one row's lanes for a maximum or minimum compares and
//! selects, and one NaN check of the row's vector makes the result NaN.
//!
//! - the pass before and after: a maximum tree over a 4-lane row into a
//!   one-element buffer (a row chain's shape) becomes `cmpf ogt` +
//!   `select`, guarded by `cmpf uno` of the row and an `or` reduction; a
//!   minimum the same with `olt`; a sum and a tree that leaves out a lane
//!   are left alone;
//! - interpreter-vs-CPU runs of softmax over rows of 16, 20, 32 and 64 f32
//!   and 16 f64 elements (the row chains whose maximum trees the pass
//!   rewrites) and of `reduce_min` over rows of 16 whose count leaves rows
//!   to the loop `tensorc-lane-per-row` keeps, with edge inputs (NaN and
//!   infinities in the rows, whose results must stay NaN or infinite).

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

/// A row's tree reducing by `kind` with `op` into a one-element buffer;
/// the tree reads lanes 0–1 and `second_half`–+1.
fn tree(name: &str, kind: &str, op: &str, second_half: usize) -> String {
    format!(
        r#"
  func.func @{name}(%row: vector<4xf32>, %m: memref<1xf32>) {{
    %c0 = arith.constant 0 : index
    %pad = arith.constant 0.0 : f32
    %a = vector.extract_strided_slice %row {{offsets = [0], sizes = [2], strides = [1]}} : vector<4xf32> to vector<2xf32>
    %b = vector.extract_strided_slice %row {{offsets = [{second_half}], sizes = [2], strides = [1]}} : vector<4xf32> to vector<2xf32>
    %t = {op} %b, %a : vector<2xf32>
    %w = vector.broadcast %t : vector<2xf32> to vector<1x2xf32>
    %acc = vector.transfer_read %m[%c0], %pad {{in_bounds = [true]}} : memref<1xf32>, vector<1xf32>
    %red = vector.multi_reduction <{kind}>, %w, %acc [1] : vector<1x2xf32> to vector<1xf32>
    vector.transfer_write %red, %m[%c0] {{in_bounds = [true]}} : vector<1xf32>, memref<1xf32>
    return
  }}"#
    )
}

#[test]
fn max_tree_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::max_tree;
    tensorc_mlir::register_external_pass(max_tree::NAME, max_tree::create);
    let module = format!(
        "module {{{}{}{}{}\n}}\n",
        tree("max", "maximumf", "arith.maximumf", 2),
        tree("min", "minimumf", "arith.minimumf", 2),
        tree("sum", "add", "arith.addf", 2),
        tree("lane_left_out", "maximumf", "arith.maximumf", 1),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, max_tree::NAME);
    for (f, predicate) in [("max", "ogt"), ("min", "olt")] {
        let text = function_text(&after, f);
        assert!(!text.contains("arith.maximumf") && !text.contains("arith.minimumf"), "{text}");
        assert!(text.contains(&format!("arith.cmpf {predicate}")), "{text}");
        assert!(text.contains("arith.cmpf uno, %arg0, %arg0 : vector<4xf32>"), "{text}");
        assert!(text.contains("vector.reduction <or>"), "{text}");
        // The reduction with the accumulator keeps its kind.
        assert!(text.contains("vector.multi_reduction <"), "{text}");
    }
    for left in ["sum", "lane_left_out"] {
        assert_eq!(function_text(&before, left), function_text(&after, left), "{left}");
    }
    insta::assert_snapshot!("max_tree_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn short_row_softmax_and_minima_agree_with_the_interpreter() {
    let softmax = |t: &str, rows: usize, cols: usize| {
        (
            format!("softmax_{t}_{rows}x{cols}"),
            format!(
                "def main(x: {t}[{rows}][{cols}]) -> {t}[{rows}][{cols}] {{\n  m = reduce_max x, axes: [1], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [1], keep_axes: true\n  y = divide e, s\n  return y\n}}\n"
            ),
        )
    };
    let mut cases = vec![
        softmax("f32", 300, 16),
        softmax("f32", 133, 20),
        softmax("f32", 97, 32),
        softmax("f32", 61, 64),
        softmax("f64", 45, 16),
    ];
    cases.push((
        "reduce_min_f32_1003x16".to_owned(),
        "def main(x: f32[1003][16]) -> f32[1003] {\n  m = reduce_min x, axes: [1], keep_axes: false\n  return m\n}\n".to_owned(),
    ));
    let programs: Vec<(&str, String, f64)> = cases.iter().map(|(n, s)| (n.as_str(), s.clone(), 1e-5)).collect();
    let failures = differential_all(&programs, EdgeSet::Edge, 13);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

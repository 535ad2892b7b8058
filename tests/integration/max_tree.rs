//! `tensorc-max-tree` (`passes/tensorc-passes/src/max_tree.rs`): the tree
//! combining one row's lanes for a maximum or minimum compares and
//! selects, and one NaN check of the row's vector makes the result NaN.
//!
//! - the pass before and after: a maximum tree over a 4-lane row into a
//!   one-element buffer (a row chain's shape) becomes `cmpf ogt` +
//!   `select`, guarded by `cmpf uno` of the row and an `or` reduction; a
//!   minimum the same with `olt`; the tree of a 64-lane row (four
//!   quarters, then halves) the same; a sum and a tree that leaves out a
//!   lane are left alone;
//! - interpreter-vs-CPU runs of softmax over rows of 16, 20, 32 and 64 f32
//!   and 16 f64 elements (the row chains whose maximum trees the pass
//!   rewrites) and of `reduce_min` over rows of 16 whose count leaves rows
//!   to the loop `tensorc-lane-per-row` keeps, with edge inputs (NaN and
//!   infinities in the rows, whose results must stay NaN or infinite);
//!   the same for rows of 333 and 1024 (64 partial maxima a row, the tree
//!   of a 64-lane vector) and `reduce_max` over rows of 1024.

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

/// The tree of a long row's 64 partial maxima (the reduction schedule's
/// split of rows of 1024, as in softmax): four 16-lane quarters combined
/// pairwise, then halved down to 2 lanes.
fn wide_tree() -> String {
    let mut body = String::from(
        "\n  func.func @wide(%row: vector<64xf32>, %m: memref<1xf32>) {\n    %c0 = arith.constant 0 : index\n    %pad = arith.constant 0.0 : f32\n",
    );
    for q in 0..4 {
        body.push_str(&format!(
            "    %q{q} = vector.extract_strided_slice %row {{offsets = [{}], sizes = [16], strides = [1]}} : vector<64xf32> to vector<16xf32>\n",
            16 * q
        ));
    }
    body.push_str("    %h0 = arith.maximumf %q1, %q0 : vector<16xf32>\n    %h1 = arith.maximumf %q3, %q2 : vector<16xf32>\n    %v16 = arith.maximumf %h1, %h0 : vector<16xf32>\n");
    let mut width = 16;
    while width > 2 {
        let half = width / 2;
        body.push_str(&format!(
            "    %l{width} = vector.extract_strided_slice %v{width} {{offsets = [0], sizes = [{half}], strides = [1]}} : vector<{width}xf32> to vector<{half}xf32>\n    %u{width} = vector.extract_strided_slice %v{width} {{offsets = [{half}], sizes = [{half}], strides = [1]}} : vector<{width}xf32> to vector<{half}xf32>\n    %v{half} = arith.maximumf %u{width}, %l{width} : vector<{half}xf32>\n"
        ));
        width = half;
    }
    body.push_str(
        "    %w = vector.broadcast %v2 : vector<2xf32> to vector<1x2xf32>\n    %acc = vector.transfer_read %m[%c0], %pad {in_bounds = [true]} : memref<1xf32>, vector<1xf32>\n    %red = vector.multi_reduction <maximumf>, %w, %acc [1] : vector<1x2xf32> to vector<1xf32>\n    vector.transfer_write %red, %m[%c0] {in_bounds = [true]} : vector<1xf32>, memref<1xf32>\n    return\n  }",
    );
    body
}

#[test]
fn max_tree_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::max_tree;
    tensorc_mlir::register_external_pass(max_tree::NAME, max_tree::create);
    let module = format!(
        "module {{{}{}{}{}{}\n}}\n",
        tree("max", "maximumf", "arith.maximumf", 2),
        tree("min", "minimumf", "arith.minimumf", 2),
        tree("sum", "add", "arith.addf", 2),
        tree("lane_left_out", "maximumf", "arith.maximumf", 1),
        wide_tree(),
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
    // 64 lanes: every step of the tree compares and selects, one NaN
    // check of the whole row.
    let wide = function_text(&after, "wide");
    assert!(!wide.contains("arith.maximumf"), "{wide}");
    assert_eq!(wide.matches("arith.cmpf ogt").count(), 6, "{wide}");
    assert!(wide.contains("arith.cmpf uno, %arg0, %arg0 : vector<64xf32>"), "{wide}");
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
        // Long rows: 64 partial maxima a row (f32), 32 for f64.
        softmax("f32", 37, 1024),
        softmax("f32", 19, 333),
        softmax("f64", 11, 1024),
    ];
    cases.push((
        "reduce_max_f32_29x1024".to_owned(),
        "def main(x: f32[29][1024]) -> f32[29] {\n  m = reduce_max x, axes: [1], keep_axes: false\n  return m\n}\n".to_owned(),
    ));
    cases.push((
        "reduce_min_f32_1003x16".to_owned(),
        "def main(x: f32[1003][16]) -> f32[1003] {\n  m = reduce_min x, axes: [1], keep_axes: false\n  return m\n}\n".to_owned(),
    ));
    let programs: Vec<(&str, String, f64)> = cases.iter().map(|(n, s)| (n.as_str(), s.clone(), 1e-5)).collect();
    let failures = differential_all(&programs, EdgeSet::Edge, 13);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

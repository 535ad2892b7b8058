//! `tensorc-lane-per-row` (`passes/tensorc-passes/src/lane_per_row.rs`):
//! loops reducing one short row per iteration by a maximum or minimum
//! take one row per lane of the row's vector in each step.
//!
//! - the pass before and after on the loop shape the reduction schedule
//!   makes (rows of 4 lanes, 10 rows: two steps of four and two rows left
//!   to the original loop, its write to a scratch buffer nothing reads
//!   gone), and loops it must leave alone: a sum (reassociated, it would
//!   change the result), a tree that leaves out a lane, a row read from
//!   the buffer it writes;
//! - interpreter-vs-CPU runs of `reduce_max`/`reduce_min` over rows of 16,
//!   20, 32 and 64 f32 elements and 16 f64 (which the pass rewrites), with
//!   row counts that are not multiples of the step and edge inputs (NaN,
//!   infinities), on every core: the butterfly gives each row its own
//!   result; rows of 8 f64 (left to LLVM's loop vectorizer) and of 16 s32
//!   (whose tree also combines a neutral constant, which the pass does not
//!   follow) are checked beside them.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

/// One loop of the reduction schedule's shape over 10 rows of 4, reducing
/// by `kind` with `op`; the tree reads lanes 0–1 and `second_half`–+1;
/// `src` is the buffer the rows come from.
fn row_loop(name: &str, kind: &str, op: &str, second_half: usize, src: &str) -> String {
    format!(
        r#"
  func.func @{name}(%x: memref<10x4xf32>, %out: memref<10xf32>) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c10 = arith.constant 10 : index
    %pad = arith.constant 0.0 : f32
    %scratch = memref.alloc() : memref<1x4xf32>
    scf.for %r = %c0 to %c10 step %c1 {{
      %row = vector.transfer_read {src}[%r, %c0], %pad {{in_bounds = [true]}} : memref<10x4xf32>, vector<4xf32>
      vector.transfer_write %row, %scratch[%c0, %c0] {{in_bounds = [true]}} : vector<4xf32>, memref<1x4xf32>
      %a = vector.extract_strided_slice %row {{offsets = [0], sizes = [2], strides = [1]}} : vector<4xf32> to vector<2xf32>
      %b = vector.extract_strided_slice %row {{offsets = [{second_half}], sizes = [2], strides = [1]}} : vector<4xf32> to vector<2xf32>
      %m = {op} %b, %a : vector<2xf32>
      %w = vector.broadcast %m : vector<2xf32> to vector<1x2xf32>
      %acc = vector.transfer_read %out[%r], %pad {{in_bounds = [true]}} : memref<10xf32>, vector<1xf32>
      %red = vector.multi_reduction <{kind}>, %w, %acc [1] : vector<1x2xf32> to vector<1xf32>
      vector.transfer_write %red, %out[%r] {{in_bounds = [true]}} : vector<1xf32>, memref<10xf32>
    }}
    memref.dealloc %scratch : memref<1x4xf32>
    return
  }}"#
    )
}

#[test]
fn lane_per_row_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::lane_per_row;
    tensorc_mlir::register_external_pass(lane_per_row::NAME, lane_per_row::create);
    let module = format!(
        "module {{{}{}{}{}\n}}\n",
        row_loop("max_rows", "maximumf", "arith.maximumf", 2, "%x"),
        row_loop("sum_rows", "add", "arith.addf", 2, "%x"),
        row_loop("lane_left_out", "maximumf", "arith.maximumf", 1, "%x"),
        // The rows come from the output's own buffer (viewed as 10×4).
        row_loop("reads_out", "minimumf", "arith.minimumf", 2, "%view")
            .replace(
                "%scratch = memref.alloc() : memref<1x4xf32>",
                "%scratch = memref.alloc() : memref<1x4xf32>\n    %flat = memref.alloc() : memref<40xf32>\n    %view = memref.expand_shape %flat [[0, 1]] output_shape [10, 4] : memref<40xf32> into memref<10x4xf32>\n    %out2 = memref.subview %flat[0] [10] [1] : memref<40xf32> to memref<10xf32, strided<[1]>>",
            )
            .replace("%out[%r]", "%out2[%r]")
            .replace("memref<10xf32>, vector<1xf32>", "memref<10xf32, strided<[1]>>, vector<1xf32>")
            .replace("vector<1xf32>, memref<10xf32>\n", "vector<1xf32>, memref<10xf32, strided<[1]>>\n"),
    );
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &module, lane_per_row::NAME);
    let max = function_text(&after, "max_rows");
    // Steps of four rows up to 8, the original loop from there.
    assert!(max.contains("step %c4"), "{max}");
    assert_eq!(max.matches("scf.for").count(), 2, "{max}");
    assert_eq!(max.matches("vector.shuffle").count(), 6, "{max}");
    assert!(max.contains("vector.load %arg1[%arg2] : memref<10xf32>, vector<4xf32>"), "{max}");
    assert!(max.contains("vector.store"), "{max}");
    // The scratch write is gone from both loops.
    assert!(!max.contains("%alloc[%c0, %c0]"), "{max}");
    for left in ["sum_rows", "lane_left_out", "reads_out"] {
        assert_eq!(function_text(&before, left), function_text(&after, left), "{left}");
    }
    insta::assert_snapshot!("lane_per_row_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn short_row_maxima_and_minima_agree_with_the_interpreter() {
    let reduce = |op: &str, t: &str, rows: usize, cols: usize| {
        (
            format!("{op}_{t}_{rows}x{cols}"),
            format!(
                "def main(x: {t}[{rows}][{cols}]) -> {t}[{rows}] {{\n  m = {op} x, axes: [1], keep_axes: false\n  return m\n}}\n"
            ),
        )
    };
    let mut cases = Vec::new();
    for (t, rows, cols) in [
        ("f32", 1000, 16),
        // Split between the threads (the default: every core) in chunks
        // whose lengths 16 does not divide.
        ("f32", 4099, 16),
        ("f32", 999, 16),
        ("f32", 37, 16),
        ("f32", 523, 20),
        ("f32", 301, 32),
        ("f32", 77, 64),
        ("f64", 203, 8),
        ("f64", 99, 16),
        ("s32", 517, 16),
    ] {
        for op in ["reduce_max", "reduce_min"] {
            cases.push(reduce(op, t, rows, cols));
        }
    }
    let programs: Vec<(&str, String, f64)> = cases.iter().map(|(n, s)| (n.as_str(), s.clone(), 0.0)).collect();
    let failures = differential_all(&programs, EdgeSet::Edge, 11);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! `tensorc-strided-gather` (`passes/tensorc-passes/src/strided_gather.rs`):
//! 1-D `vector.gather`s from memrefs whose innermost stride is not 1 become
//! conditional loads, one per lane.
//!
//! - the pass before and after: gathers from a stride-2 view, a
//!   dynamic-stride view and (a 2-D gather) a view whose rows are 5 apart
//!   for 4 elements are rewritten (loads in `scf.if`s on the mask, the
//!   masked-off lanes from the pass-through), one from a contiguous memref
//!   is left alone;
//! - interpreter-vs-CPU runs of `take`/`take_along_axis`/`gather` from
//!   strided slices (1-D, 2-D with strides on both axes, a `bitcast` in
//!   between, a take from a tensor placed in a `window_reduce`'s padded
//!   buffer), including the generated programs that failed
//!   (`tests/cases/regressions/gen_int61484.nxir`, `gen_63360.nxir`,
//!   `gen_int63200.nxir`, replayed by the generated tests too).

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

const GATHERS: &str = r#"
module {
  func.func @strided(%m: memref<3xi64, strided<[2]>>, %i: vector<2xindex>, %k: vector<2xi1>, %p: vector<2xi64>) -> vector<2xi64> {
    %c1 = arith.constant 1 : index
    %g = vector.gather %m[%c1] [%i], %k, %p : memref<3xi64, strided<[2]>>, vector<2xindex>, vector<2xi1>, vector<2xi64> into vector<2xi64>
    return %g : vector<2xi64>
  }
  func.func @dynamic(%m: memref<4x5xf32, strided<[?, ?], offset: ?>>, %r: index, %i: vector<2xi32>, %k: vector<2xi1>, %p: vector<2xf32>) -> vector<2xf32> {
    %c0 = arith.constant 0 : index
    %g = vector.gather %m[%r, %c0] [%i], %k, %p : memref<4x5xf32, strided<[?, ?], offset: ?>>, vector<2xi32>, vector<2xi1>, vector<2xf32> into vector<2xf32>
    return %g : vector<2xf32>
  }
  func.func @rows_apart(%m: memref<3x4xi64, strided<[5, 1], offset: 1>>, %i: vector<1x2xi64>, %k: vector<1x2xi1>, %p: vector<1x2xi64>) -> vector<1x2xi64> {
    %c0 = arith.constant 0 : index
    %g = vector.gather %m[%c0, %c0] [%i], %k, %p : memref<3x4xi64, strided<[5, 1], offset: 1>>, vector<1x2xi64>, vector<1x2xi1>, vector<1x2xi64> into vector<1x2xi64>
    return %g : vector<1x2xi64>
  }
  func.func @contiguous(%m: memref<8xf32>, %i: vector<4xindex>, %k: vector<4xi1>, %p: vector<4xf32>) -> vector<4xf32> {
    %c0 = arith.constant 0 : index
    %g = vector.gather %m[%c0] [%i], %k, %p : memref<8xf32>, vector<4xindex>, vector<4xi1>, vector<4xf32> into vector<4xf32>
    return %g : vector<4xf32>
  }
}
"#;

#[test]
fn strided_gather_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::strided_gather;
    tensorc_mlir::register_external_pass(strided_gather::NAME, strided_gather::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, GATHERS, strided_gather::NAME);
    for name in ["strided", "dynamic", "rows_apart"] {
        let f = function_text(&after, name);
        assert!(!f.contains("vector.gather"), "{f}");
        assert_eq!(f.matches("scf.if").count(), 2, "{f}");
        assert_eq!(f.matches("memref.load").count(), 2, "{f}");
    }
    // Rows 5 apart: the linear index is split by the shape's strides (4, 1).
    let rows = function_text(&after, "rows_apart");
    assert!(rows.contains("arith.divui") && rows.contains("arith.remui"), "{rows}");
    // The i32 index vector is cast to index per lane.
    assert_eq!(function_text(&after, "dynamic").matches("arith.index_cast").count(), 2);
    assert_eq!(function_text(&before, "contiguous"), function_text(&after, "contiguous"));
    insta::assert_snapshot!("strided_gather_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn takes_from_strided_slices_agree_with_the_interpreter() {
    let programs = [
        (
            "take_of_a_stride_3_slice",
            "def main(x: f32[10], i: s32[4]) -> f32[4] {\n  s = slice x, [1], [9], [3]\n  t = take s, i, axis: 0\n  return t\n}\n".to_owned(),
            0.0,
        ),
        (
            "take_along_rows_of_a_2d_strided_slice",
            "def main(x: s32[6][8], i: s64[3][2]) -> s32[3][2] {\n  s = slice x, [0, 1], [6, 7], [2, 3]\n  t = take_along_axis s, i, axis: 1\n  return t\n}\n".to_owned(),
            0.0,
        ),
        (
            "take_along_a_bitcast_of_a_strided_slice",
            "def main(p1: u64[5], p2: u32, p3: s16[2]) -> s64[2] {\n  v0 = slice p1, [p2], [5], [2]\n  v4 = bitcast v0  s64[3]\n  v5 = take_along_axis v4, p3, axis: -1\n  return v5\n}\n".to_owned(),
            0.0,
        ),
        (
            "take_from_a_window_reduce_input",
            "def f0(p2: s64[1][4], p3: u8[3][4], p5: u8[1][4]) -> {s64[1][4], s64[1][2]} {\n  v1 = take_along_axis p2, p3, axis: -2\n  v3 = window_reduce v1, 1, {3, 2}, strides: [1, 2], padding: [{0, 0}, {1, 0}], fn(acc, x) { r = multiply acc, x; return r }\n  v8 = take_along_axis v1, p5, axis: 0\n  return {v8, v3}\n}\n".to_owned(),
            0.0,
        ),
        (
            "gather_from_a_strided_slice",
            "def main(x: f64[9][4], i: u8[5][1]) -> f64[5][2] {\n  s = slice x, [1, 0], [8, 4], [2, 2]\n  g = gather s, i, axes: [0]\n  return g\n}\n".to_owned(),
            0.0,
        ),
    ];
    for seed in [1, 7] {
        let failures = differential_all(&programs, EdgeSet::Mild, seed);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

//! Window reductions whose last axis is not strided (`window_max|min|sum|
//! product` pooling over NHWC, or over NCHW with stride 1): the frontend
//! (`unrolled_window` in `crates/tensorc-frontend/src/conv.rs`) writes
//! windows of up to 16 positions as one element-wise op over a strided view
//! per position, combined in the window loops' order.
//!
//! - interpreter-vs-CPU runs of max, min, sum (and an average pool) and
//!   product pools: 2×2 stride 2, 3×3 stride 2 with same padding, 3×3
//!   stride 1, dilated, 4×4 (16 positions), odd sizes no tile divides,
//!   f32 with the edge values (NaN, ±inf, ±0.0), f64 and integers, with a
//!   consumer fused after them, NCHW with stride 1 (the last axis
//!   windowed); and windows the frontend leaves to the generic (the last
//!   axis strided, 5×5 = 25 positions) beside them;
//! - the linalg stage of a 2×2 NHWC max pool: four strided views and one
//!   element-wise op, no window loops left (and a 5×5 window still has
//!   them).

use crate::harness::{EdgeSet, differential_all};
use tensorc::Stage;

fn pool(op: &str, dtype: &str, x: [usize; 4], window: [usize; 2], stride: usize, padding: &str, dilation: usize, out: [usize; 4]) -> String {
    let [n, h, w, c] = x;
    let [on, oh, ow, oc] = out;
    let dil = if dilation == 1 { String::new() } else { format!(", window_dilations: [1, {dilation}, {dilation}, 1]") };
    format!(
        "def main(x: {dtype}[{n}][{h}][{w}][{c}]) -> {dtype}[{on}][{oh}][{ow}][{oc}] {{\n  y = {op} x, {{1, {}, {}, 1}}, strides: [1, {stride}, {stride}, 1], padding: {padding}{dil}\n  return y\n}}\n",
        window[0], window[1]
    )
}

#[test]
fn nhwc_pools_agree_with_the_interpreter() {
    let programs = [
        ("max_2x2_s2", pool("window_max", "f32", [2, 16, 16, 67], [2, 2], 2, ":valid", 1, [2, 8, 8, 67]), 0.0),
        ("max_3x3_s2_same", pool("window_max", "f32", [1, 15, 13, 33], [3, 3], 2, ":same", 1, [1, 8, 7, 33]), 0.0),
        ("min_3x3_s1_same", pool("window_min", "f32", [1, 9, 11, 19], [3, 3], 1, ":same", 1, [1, 9, 11, 19]), 0.0),
        ("max_dilated", pool("window_max", "f64", [1, 12, 12, 5], [2, 2], 1, ":valid", 2, [1, 10, 10, 5]), 0.0),
        ("max_4x4_s4", pool("window_max", "s32", [3, 17, 9, 7], [4, 4], 4, ":valid", 1, [3, 4, 2, 7]), 0.0),
        ("sum_2x2_s2", pool("window_sum", "f32", [2, 10, 14, 20], [2, 2], 2, ":valid", 1, [2, 5, 7, 20]), 1e-6),
        ("sum_3x3_u8", pool("window_sum", "u8", [1, 7, 7, 3], [3, 3], 1, ":same", 1, [1, 7, 7, 3]), 0.0),
        ("product_2x2", pool("window_product", "f64", [1, 6, 6, 4], [2, 2], 2, ":valid", 1, [1, 3, 3, 4]), 1e-12),
        // Left to the generic: 25 positions.
        ("max_5x5", pool("window_max", "f32", [1, 9, 9, 6], [5, 5], 1, ":same", 1, [1, 9, 9, 6]), 0.0),
        (
            "avg_then_relu",
            "def main(x: f32[2][12][12][40]) -> f32[2][6][6][40] {\n  s = window_sum x, {1, 2, 2, 1}, strides: [1, 2, 2, 1]\n  a = divide s, 4.0\n  y = max a, 0.0\n  return y\n}\n".to_owned(),
            1e-6,
        ),
        (
            "last_axis_strided",
            "def main(x: f32[6][50]) -> f32[5][24] {\n  y = window_max x, {2, 3}, strides: [1, 2], padding: :valid\n  return y\n}\n".to_owned(),
            0.0,
        ),
        (
            "nchw_3x3_s1_same",
            "def main(x: f32[2][5][13][17]) -> f32[2][5][13][17] {\n  y = window_max x, {1, 1, 3, 3}, padding: :same\n  return y\n}\n".to_owned(),
            0.0,
        ),
        (
            "nchw_sum_2x2_s1",
            "def main(x: f64[1][3][9][10]) -> f64[1][3][8][9] {\n  y = window_sum x, {1, 1, 2, 2}\n  return y\n}\n".to_owned(),
            1e-12,
        ),
    ];
    let named: Vec<(&str, String, f64)> = programs.iter().map(|(n, s, t)| (*n, s.clone(), *t)).collect();
    let failures = differential_all(&named, EdgeSet::Edge, 3);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn nhwc_max_pool_is_one_elementwise_op() {
    let source = pool("window_max", "f32", [1, 8, 8, 16], [2, 2], 2, ":valid", 1, [1, 4, 4, 16]);
    let ir = tensorc::emit("pool.nxir", &source, Stage::Linalg).unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(ir.matches("tensor.extract_slice").count(), 4, "{ir}");
    assert!(ir.contains("[1, 2, 2, 1] : tensor<1x8x8x16xf32> to tensor<1x4x4x16xf32>"), "{ir}");
    assert!(!ir.contains("reduction"), "{ir}");
    let big = pool("window_max", "f32", [1, 9, 9, 6], [5, 5], 1, ":same", 1, [1, 9, 9, 6]);
    let ir = tensorc::emit("pool5.nxir", &big, Stage::Linalg).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(ir.contains("\"reduction\""), "{ir}");
    // A strided last axis keeps the window loops too.
    let strided = "def main(x: f32[4][4][8][8]) -> f32[4][4][4][4] {\n  y = window_max x, {1, 1, 2, 2}, strides: [1, 1, 2, 2]\n  return y\n}\n";
    let ir = tensorc::emit("nchw.nxir", strided, Stage::Linalg).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(ir.contains("\"reduction\""), "{ir}");
}

//! The flattening step (`passes/tensorc-passes/src/flatten_mark.rs` tags,
//! `flatten_schedule.rs` flattens): element-wise ops over rows that 16 lanes
//! do not divide become one loop over all their elements.
//!
//! - the step's input and output for an op over NHWC images of 3 channels: one
//!   `tensor.collapse_shape` per operand, a one-loop generic, an
//!   `tensor.expand_shape` of its result (snapshot);
//! - the ops it leaves: rows of a multiple of 16, a broadcast, an
//!   element-wise consumer of a product (kept for the matmul epilogue), a
//!   body reading `linalg.index` (`iota`), strided views (a pool's unrolled
//!   window), the one-row tiles of a row-fused softmax;
//! - interpreter-vs-CPU runs of element-wise chains over short rows (f32
//!   with the edge values, f64, integers, bf16, a result used twice, a
//!   consumer that broadcasts the flattened op's result), on one and two
//!   threads.

use crate::harness::{EdgeSet, cpu_ir_between, cpu_ir_upto, differential_all};
use tensorc::Stage;
use tensorc_passes::flatten_schedule::ENTRY;

/// The step's output: up to the flattening library's interpreter run.
fn after_flatten() -> String {
    format!("entry-point={ENTRY}}}")
}

/// Up to the marker, which runs right before the library.
fn before_flatten() -> &'static str {
    tensorc_passes::pipeline::FLATTEN_MARK
}

fn unary(op: &str, ty: &str, shape: &str) -> String {
    format!("def main(x: {ty}{shape}) -> {ty}{shape} {{\n  y = {op} x\n  return y\n}}\n")
}

#[test]
fn nhwc_image_op_becomes_one_loop() {
    let source = "def main(x: f32[2][5][7][3], w: f32[2][5][7][3]) -> f32[2][5][7][3] {\n  y = multiply x, w\n  z = add y, 1.0\n  return z\n}\n";
    let (before, after) = cpu_ir_between("img.nxir", source, before_flatten(), &after_flatten());
    assert!(before.contains("tensorc.flatten"), "{before}");
    assert!(after.contains("tensor.collapse_shape") && after.contains("tensor.expand_shape"), "{after}");
    assert!(after.contains("tensor<210xf32>"), "{after}");
    assert!(!after.contains("iterator_types = [\"parallel\", \"parallel\""), "{after}");
    insta::assert_snapshot!("flatten_step", format!("// before\n{before}\n// after\n{after}"));
}

/// The ops the marker leaves as they are, each with its reason.
#[test]
fn ops_that_stay_multidimensional() {
    let cases = [
        // Rows of whole vectors.
        ("whole_rows", unary("exp", "f32", "[6][32]")),
        // A broadcast operand (not an identity map).
        (
            "broadcast",
            "def main(x: f32[6][5], b: f32[5]) -> f32[6][5] {\n  y = add x, b\n  return y\n}\n".to_owned(),
        ),
        // The epilogue of a product (the matmul schedule fuses it).
        (
            "epilogue",
            "def main(a: f32[6][8], b: f32[8][5]) -> f32[6][5] {\n  h = dot a, [1], [], b, [0], []\n  y = max h, 0.0\n  return y\n}\n".to_owned(),
        ),
        // A body that reads its indices.
        (
            "iota",
            "def main(x: s32[6][5]) -> s32[6][5] {\n  i = iota 1  s32[6][5]\n  y = add x, i\n  return y\n}\n".to_owned(),
        ),
        // Strided views (a pool's unrolled window): collapsing them copies.
        (
            "pool",
            "def main(x: f32[2][8][8][5]) -> f32[2][4][4][5] {\n  y = window_max x, {1, 2, 2, 1}, strides: [1, 2, 2, 1]\n  return y\n}\n".to_owned(),
        ),
        // A row-fused chain: its element-wise ops are one-row tiles.
        ("softmax", crate::rowfuse::softmax("f32", 40, 10)),
    ];
    for (name, source) in cases {
        let opt = tensorc::emit("keep.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{name}: {}", e.render()));
        let after = cpu_ir_upto("keep.nxir", &source, &opt, &after_flatten());
        assert!(!after.contains("tensorc.flatten"), "{name}: {after}");
        assert!(!after.contains("tensor.collapse_shape"), "{name}: {after}");
    }
}

#[test]
fn flattened_chains_agree_with_the_interpreter() {
    let programs = [
        ("tanh_nhwc", unary("tanh", "f32", "[2][9][11][3]"), 1e-6),
        ("exp_rows_10", unary("exp", "f32", "[300][10]"), 1e-6),
        ("sqrt_f64", unary("sqrt", "f64", "[7][5][13]"), 1e-12),
        ("negate_s8", unary("negate", "s8", "[9][7]"), 0.0),
        ("sigmoid_bf16", unary("sigmoid", "bf16", "[33][5]"), 1e-2),
        (
            "chain",
            "def main(x: f32[64][7], y: f32[64][7]) -> f32[64][7] {\n  a = multiply x, y\n  b = add a, 1.5\n  c = max b, x\n  return c\n}\n".to_owned(),
            1e-6,
        ),
        (
            "two_results",
            "def main(x: f32[3][17][5]) -> {f32[3][17][5], f32[3][17][5]} {\n  a = exp x\n  b = log1p a\n  return {a, b}\n}\n".to_owned(),
            1e-6,
        ),
        (
            "then_broadcast",
            "def main(x: s32[50][6], v: s32[50][1]) -> s32[50][6] {\n  a = multiply x, 3\n  b = subtract a, v\n  return b\n}\n".to_owned(),
            0.0,
        ),
        (
            "then_reduce",
            "def main(x: f32[200][9]) -> f32[200] {\n  a = abs x\n  s = sum a, axes: [1]\n  return s\n}\n".to_owned(),
            1e-5,
        ),
    ];
    let named: Vec<(&str, String, f64)> = programs.iter().map(|(n, s, t)| (*n, s.clone(), *t)).collect();
    let failures = crate::threads::on_threads(&[1, 2], || differential_all(&named, EdgeSet::Edge, 7));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

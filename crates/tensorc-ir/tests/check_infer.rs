//! Type and shape inference, one test per op family, against types derived
//! by hand from the spec (§2 promotion and broadcasting, §4 op tables) and
//! Nx's documentation. Every program here also goes through the printer
//! round trip (see `check_support::ok`).

mod check_support;
use check_support::*;
use tensorc_ir::graph::{Literal, Op};
use tensorc_ir::types::DType;

#[test]
fn promotion_of_tensor_pairs() {
    // Spec §2.1 examples.
    assert_eq!(infer("a: s8, b: s32", "add a, b"), "s32");
    assert_eq!(infer("a: f32, b: f64", "add a, b"), "f64");
    assert_eq!(infer("a: u8, b: s8", "add a, b"), "s16");
    assert_eq!(infer("a: u32, b: s8", "add a, b"), "s64");
    assert_eq!(infer("a: s64, b: f32", "add a, b"), "f32");
    assert_eq!(infer("a: bf16, b: f16", "add a, b"), "f32");
    assert_eq!(infer("a: bf16, b: f64", "multiply a, b"), "f64");
}

#[test]
fn weak_literals() {
    // Spec §2.1: u8 with 255 → u8, 256 → u16, -1 → s16; s8 with 200 → s16; s32 with 1 → s32.
    assert_eq!(infer("x: u8[3]", "add x, 255"), "u8[3]");
    assert_eq!(infer("x: u8[3]", "add x, 256"), "u16[3]");
    assert_eq!(infer("x: u8[3]", "add x, -1"), "s16[3]");
    assert_eq!(infer("x: s8[3]", "add x, 200"), "s16[3]");
    assert_eq!(infer("x: s32[3]", "add x, 1"), "s32[3]");
    // A float literal next to an integer tensor gives f32; next to a float tensor, that float.
    assert_eq!(infer("x: s8[3]", "multiply x, 1.0"), "f32[3]");
    assert_eq!(infer("x: f64[3]", "add 1.0, x"), "f64[3]");
    assert_eq!(infer("x: f16[3]", "add x, 2"), "f16[3]");
    // Two literals: s32 for integers, f32 if either is a float.
    assert_eq!(infer("", "add 1, 2"), "s32");
    assert_eq!(infer("", "add 1, 2.0"), "f32");
}

#[test]
fn weak_literal_becomes_synthetic_constant_of_resolved_type() {
    let m = ok("def f(x: u8[3]) {\n  r = add x, 256\n  return r\n}\n");
    let f = &m.functions[0];
    let r = f.nodes.iter().find(|n| n.name == "r").unwrap();
    let lit = f.node(r.operands[1]);
    assert!(lit.is_synthetic());
    assert_eq!(lit.op, Op::Constant(Literal::Int(256)));
    assert_eq!(lit.ty.to_string(), "u16");
    assert_eq!(r.op, Op::Binary { op: tensorc_ir::graph::BinaryOp::Add, compute: DType::U16 });
    // The synthetic node is listed in the body before its user.
    let body = &f.body().nodes;
    let pos = |id| body.iter().position(|&v| v == id).unwrap();
    assert!(pos(r.operands[1]) < pos(f.body().results[0]));
}

#[test]
fn broadcasting() {
    // Spec §2.2 example.
    assert_eq!(infer("a: s32[5][1][4][1], b: s32[3][4][5]", "add a, b"), "s32[5][3][4][5]");
    assert_eq!(infer("a: f32[2][3], b: f32[3]", "subtract a, b"), "f32[2][3]");
    assert_eq!(infer("a: f32[0][3], b: f32[1]", "add a, b"), "f32[0][3]");
}

#[test]
fn binary_result_types() {
    assert_eq!(infer("a: s32[2], b: s32[2]", "divide a, b"), "f32[2]");
    assert_eq!(infer("a: f64[2], b: s32", "divide a, b"), "f64[2]");
    assert_eq!(infer("a: s8, b: u8", "atan2 a, b"), "f32");
    assert_eq!(infer("a: s8, b: u8", "remainder a, b"), "s16");
    assert_eq!(infer("a: s32[4], b: s32[4]", "quotient a, b"), "s32[4]");
    assert_eq!(infer("a: u8[4]", "left_shift a, 1"), "u8[4]");
    assert_eq!(infer("a: s64[4], b: u8", "bitwise_xor a, b"), "s64[4]");
    assert_eq!(infer("a: f32[3]", "pow a, 2"), "f32[3]");
    assert_eq!(infer("a: f32[3]", "max a, 0.0"), "f32[3]");
    // Comparisons and logical ops give u8.
    assert_eq!(infer("a: f32[3], b: f32", "less a, b"), "u8[3]");
    assert_eq!(infer("a: s32[2][2]", "not_equal a, 0"), "u8[2][2]");
    assert_eq!(infer("a: f64[3], b: s8[3]", "logical_and a, b"), "u8[3]");
}

#[test]
fn divide_compute_type_is_float() {
    let m = ok("def f(a: s32, b: s32) {\n  r = divide a, b\n  return r\n}\n");
    let r = m.functions[0].nodes.iter().find(|n| n.name == "r").unwrap();
    assert_eq!(r.op, Op::Binary { op: tensorc_ir::graph::BinaryOp::Divide, compute: DType::F32 });
}

#[test]
fn unary_result_types() {
    assert_eq!(infer("x: s32[2]", "exp x"), "f32[2]");
    assert_eq!(infer("x: f64[2]", "tanh x"), "f64[2]");
    assert_eq!(infer("x: u8", "sqrt x"), "f32");
    assert_eq!(infer("x: s8[2]", "negate x"), "s8[2]");
    assert_eq!(infer("x: u8", "abs x"), "u8");
    assert_eq!(infer("x: s32", "floor x"), "s32");
    assert_eq!(infer("x: f32[2]", "round x"), "f32[2]");
    assert_eq!(infer("x: u16[2]", "population_count x"), "u16[2]");
    assert_eq!(infer("x: s64", "count_leading_zeros x"), "s64");
    assert_eq!(infer("x: f32[2]", "is_nan x"), "u8[2]");
    assert_eq!(infer("x: f64", "is_infinity x"), "u8");
    assert_eq!(infer("x: f32[4]", "logical_not x"), "u8[4]");
    assert_eq!(infer("x: bf16[2]", "erf_inv x"), "bf16[2]");
}

#[test]
fn select_and_clip() {
    assert_eq!(infer("p: u8[3], a: f32[3]", "select p, a, 0"), "f32[3]");
    // Branches merge (s8 with u8 → s16) and all three broadcast.
    assert_eq!(infer("p: s32[2][1], a: s8[3], b: u8", "select p, a, b"), "s16[2][3]");
    assert_eq!(infer("x: s32[4]", "clip x, 0, 10"), "s32[4]");
    assert_eq!(infer("x: u8[4]", "clip x, 0, 300"), "u16[4]");
    assert_eq!(infer("x: f32[2][3], lo: f32[3], hi: f32", "clip x, lo, hi"), "f32[2][3]");
}

#[test]
fn conversions() {
    assert_eq!(infer("x: f32[2]", "as_type x  s32[2]"), "s32[2]");
    assert_eq!(infer("x: u8", "as_type x  f64"), "f64");
    assert_eq!(infer("x: f32[2]", "bitcast x  u32[2]"), "u32[2]");
    assert_eq!(infer("x: s64[2]", "bitcast x  f64[2]"), "f64[2]");
}

#[test]
fn creation() {
    assert_eq!(infer("", "constant 2.5  f32[3][3]"), "f32[3][3]");
    assert_eq!(infer("", "constant 255  u8[2]"), "u8[2]");
    assert_eq!(infer("", "constant nan  f32"), "f32");
    assert_eq!(infer("", "tensor [[1, 2], [3, 4]]  s32[2][2]"), "s32[2][2]");
    assert_eq!(infer("", "tensor [1.5, -2.0, infinity]  f64[3]"), "f64[3]");
    assert_eq!(infer("", "tensor 7  s8"), "s8");
    assert_eq!(infer("", "tensor [[], []]  f32[2][0]"), "f32[2][0]");
    assert_eq!(infer("", "iota nil  s32[2][3]"), "s32[2][3]");
    assert_eq!(infer("", "iota 1  f32[2][3]"), "f32[2][3]");
    assert_eq!(infer("", "eye  f32[3][3]"), "f32[3][3]");
    assert_eq!(infer("", "eye  u8[2][3][3]"), "u8[2][3][3]");

    let m = ok("def f() {\n  t = tensor [[1, 2], [3, 4]]  s32[2][2]\n  return t\n}\n");
    let t = &m.functions[0].nodes[0];
    assert_eq!(t.op, Op::Tensor(vec![Literal::Int(1), Literal::Int(2), Literal::Int(3), Literal::Int(4)]));
    // Negative iota axes normalize.
    let m = ok("def f() {\n  i = iota -1  s32[2][3]\n  return i\n}\n");
    assert_eq!(m.functions[0].nodes[0].op, Op::Iota(Some(1)));
}

#[test]
fn shape_ops() {
    assert_eq!(infer("x: f32[2][3]", "reshape x  f32[6]"), "f32[6]");
    assert_eq!(infer("x: f32[1][3][1]", "squeeze x, [0, 2]"), "f32[3]");
    assert_eq!(infer("x: f32[1][3][1]", "squeeze x, [-1]"), "f32[1][3]");
    assert_eq!(infer("x: f32[1][3][1]", "squeeze x"), "f32[3]");
    assert_eq!(infer("x: f32[3]", "broadcast x, {2, 3}, [1]"), "f32[2][3]");
    assert_eq!(infer("x: f32[3][1]", "broadcast x, {2, 3, 4}, [1, 2]"), "f32[2][3][4]");
    assert_eq!(infer("x: f32[3]", "broadcast x, {4, 3}"), "f32[4][3]");
    assert_eq!(infer("x: f32[2][3][4]", "transpose x, [2, 0, 1]"), "f32[4][2][3]");
    assert_eq!(infer("x: f32[2][3][4]", "transpose x"), "f32[4][3][2]");
    assert_eq!(infer("x: f32[2][3]", "reverse x, [0]"), "f32[2][3]");
    assert_eq!(infer("x: f32[2][3], y: f32[4][3]", "concatenate [x, y], axis: 0"), "f32[6][3]");
    assert_eq!(infer("x: f32[2][3], y: f32[2][1]", "concatenate [x, y], axis: -1"), "f32[2][4]");
    assert_eq!(infer("x: s32[2], y: f32[3]", "concatenate [x, y]"), "f32[5]");
    assert_eq!(infer("x: f32[2], y: f32[2]", "stack [x, y], axis: 1"), "f32[2][2]");
    assert_eq!(infer("x: s8[3], y: u8[3]", "stack [x, y]"), "s16[2][3]");
    assert_eq!(infer("", "stack [1, 2, 3], axis: 0"), "s32[3]");
}

#[test]
fn slice() {
    // Spec example: slice of [1, 2, 3] at start 5, length 2 gives [2, 3]: start clamps to 1.
    let m = ok("def f(x: s32[3]) {\n  r = slice x, [5], [2]\n  return r\n}\n");
    let r = m.functions[0].nodes.iter().find(|n| n.name == "r").unwrap();
    assert_eq!(r.ty.to_string(), "s32[2]");
    assert_eq!(r.op, Op::Slice { starts: vec![1], lengths: vec![2], strides: vec![1] });
    // Strides: ceil(4 / 1) = 4, ceil(3 / 2) = 2.
    assert_eq!(infer("x: f32[10][4]", "slice x, [0, 1], [4, 3], [1, 2]"), "f32[4][2]");
    assert_eq!(infer("x: f32[10][4]", "slice x, [0, 1], [4, 3], strides: [3, 1]"), "f32[2][3]");
    assert_eq!(infer("x: f32[10]", "slice x, [-4], [0]"), "f32[0]");
}

#[test]
fn pad() {
    // Axis 0: 1 + 2 + 2 = 5. Axis 1: 0 - 1 + 3 + (3 - 1) * 1 = 4.
    assert_eq!(infer("x: f32[2][3]", "pad x, 0.0, [{1, 2, 0}, {0, -1, 1}]"), "f32[5][4]");
    assert_eq!(infer("x: s8[4]", "pad x, -1, [{-2, -2, 0}]"), "s8[0]");
    assert_eq!(infer("x: f32[2], v: f32", "pad x, v, [{0, 0, 3}]"), "f32[5]");
}

#[test]
fn dot() {
    assert_eq!(infer("a: f32[2][3], b: f32[3][4]", "dot a, [1], [], b, [0], []"), "f32[2][4]");
    // Nx.dot doc example: {2,3,3} · {1,3,3} contracting a's last axis with b's
    // second-to-last gives s32[2][3][1][3].
    assert_eq!(infer("a: s32[2][3][3], b: s32[1][3][3]", "dot a, [2], [], b, [1], []"), "s32[2][3][1][3]");
    // Bench w10: batched matmul.
    assert_eq!(infer("a: f32[64][128][64], b: f32[64][64][128]", "dot a, [2], [0], b, [1], [0]"), "f32[64][128][128]");
    // No contraction: outer product. Types merge.
    assert_eq!(infer("a: s8[2], b: u8[3]", "dot a, [], [], b, [], []"), "s16[2][3]");
    assert_eq!(infer("a: f32[3], b: f32[3]", "dot a, [0], [], b, [-1], []"), "f32");
}

#[test]
fn reductions() {
    // sum/product accumulate in the aggregate type.
    assert_eq!(infer("x: s8[2][3]", "sum x, axes: [1]"), "s32[2]");
    assert_eq!(infer("x: u8[2][3]", "sum x, axes: nil"), "u32");
    assert_eq!(infer("x: u16[4]", "product x"), "u32");
    assert_eq!(infer("x: s64[4]", "sum x"), "s64");
    assert_eq!(infer("x: f32[2][3]", "sum x, axes: nil, keep_axes: true"), "f32[1][1]");
    assert_eq!(infer("x: f32[2][3]", "sum x, axes: [-1], keep_axes: true"), "f32[2][1]");
    assert_eq!(infer("x: s8[2][3]", "reduce_max x, axes: [0]"), "s8[3]");
    assert_eq!(infer("x: f64[2][3][4]", "reduce_min x, axes: [2, 0]"), "f64[3]");
    assert_eq!(infer("x: f32[2][3]", "all x"), "u8");
    assert_eq!(infer("x: f32[2][3]", "any x, axes: [0]"), "u8[3]");

    let m = ok("def f(x: f32[2][3][4]) {\n  r = sum x, axes: [2, 0]\n  return r\n}\n");
    let r = m.functions[0].nodes.iter().find(|n| n.name == "r").unwrap();
    assert_eq!(r.op, Op::Reduce { kind: tensorc_ir::graph::ReduceKind::Sum, axes: vec![0, 2], keep_axes: false });
}

#[test]
fn arg_reductions() {
    assert_eq!(infer("x: f32[2][3]", "argmax x, axis: 1"), "s32[2]");
    assert_eq!(infer("x: f32[2][3]", "argmin x, axis: 0, keep_axis: true"), "s32[1][3]");
    assert_eq!(infer("x: f32[2][3]", "argmax x"), "s32");
    assert_eq!(infer("x: f32[2][3]", "argmax x, axis: nil, tie_break: :high"), "s32");
    assert_eq!(infer("x: f32[2][3]", "argmax x, axis: -1  u8[2]"), "u8[2]");
    let m = ok("def f(x: f32[2][3]) {\n  r = argmin x, axis: 1, tie_break: :high\n  return r\n}\n");
    let r = m.functions[0].nodes.iter().find(|n| n.name == "r").unwrap();
    assert_eq!(r.op, Op::ArgReduce { max: false, axis: Some(1), tie_break_high: true, keep_axis: false });
}

#[test]
fn calls_tuples_and_elem() {
    let src = "def main(x: f32[3]) -> f32[3] {\n  r = call double, x\n  return r\n}\n\
               def double(x: f32[3]) -> f32[3] {\n  y = add x, x\n  return y\n}\n";
    let m = ok(src);
    assert_eq!(m.functions[0].nodes[1].op, Op::Call { function: 1 });

    let src = "def pair(x: f32[3]) {\n  y = negate x\n  return {x, y}\n}\n\
               def main(x: f32[3]) {\n  p = call pair, x\n  b = elem p, 1\n  return b\n}\n";
    let m = ok(src);
    assert_eq!(m.functions[0].result.to_string(), "{f32[3], f32[3]}");
    assert!(m.functions[0].body().returns_tuple);
    assert_eq!(m.functions[1].nodes.iter().find(|n| n.name == "p").unwrap().ty.to_string(), "{f32[3], f32[3]}");
    assert_eq!(m.functions[1].nodes.iter().find(|n| n.name == "b").unwrap().op, Op::Elem { index: 1 });

    // A literal argument takes the parameter's dtype.
    let src = "def g(s: u8) {\n  return s\n}\n def main() {\n  r = call g, 200\n  return r\n}\n";
    assert_eq!(ty(src, "r"), "u8");
}

#[test]
fn returns_and_declared_types() {
    let m = ok("def f(x: f32[2]) -> {f32[2], s32} {\n  return {x, 3}\n}\n");
    assert_eq!(m.functions[0].result.to_string(), "{f32[2], s32}");
    // A returned literal takes the declared scalar type.
    let m = ok("def f() -> f64 {\n  return 1\n}\n");
    assert_eq!(m.functions[0].result.to_string(), "f64");
    let m = ok("def f() {\n  return 1.5\n}\n");
    assert_eq!(m.functions[0].result.to_string(), "f32");
    // One-element tuple stays a tuple.
    let m = ok("def f(x: s8) {\n  return {x}\n}\n");
    assert_eq!(m.functions[0].result.to_string(), "{s8}");
}

#[test]
fn bench_programs_check() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/bench");
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("no bench directory at {dir}; skipping");
        return;
    };
    let mut names: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    names.sort();
    assert_eq!(names.len(), 10);
    for p in names {
        let src = std::fs::read_to_string(&p).unwrap();
        let m = ok(&src);
        assert_eq!(m.functions.len(), 1, "{p:?}");
        if p.to_string_lossy().contains("w09_conv2d") {
            // NHWC/HWIO with :same keeps 56x56 and gives 64 output channels (F2, issue 3).
            assert_eq!(m.functions[0].result.to_string(), "f32[1][56][56][64]");
        }
    }
}

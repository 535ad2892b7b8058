//! The canonical printer: exact expected text for representative programs
//! (every option explicit, types on every statement, literals inline), and
//! the round trip print → parse → check on a program using every op.

mod check_support;
use check_support::*;
use tensorc_ir::printer::print_module;

#[test]
fn dense_layer_canonical_form() {
    let src = concat!(
        "# y = relu(x @ w + b)\n",
        "def dense(x: f32[2][4], w: f32[4][3], b: f32[3]) -> f32[2][3] {\n",
        "  h = dot x, [1], [], w, [0], []            f32[2][3]\n",
        "  z = add h, b\n",
        "  y = max z, 0.0\n",
        "  return y\n",
        "}\n"
    );
    let expected = concat!(
        "def dense(x: f32[2][4], w: f32[4][3], b: f32[3]) -> f32[2][3] {\n",
        "  h = dot x, [1], [], w, [0], []  f32[2][3]\n",
        "  z = add h, b  f32[2][3]\n",
        "  y = max z, 0.0  f32[2][3]\n",
        "  return y\n",
        "}\n"
    );
    assert_eq!(print_module(&ok(src)), expected);
}

#[test]
fn options_are_written_out_in_a_fixed_order() {
    let src = concat!(
        "def f(x: f32[1][3][1], y: s8[3]) {\n",
        "  a = squeeze x\n",
        "  b = transpose x\n",
        "  c = sum x, keep_axes: true\n",
        "  d = sum x, axes: [-1]\n",
        "  e = argmax y\n",
        "  g = argmin y, tie_break: :high, axis: 0\n",
        "  h = reverse y\n",
        "  i = slice y, [9], [2]\n",
        "  j = concatenate [y, y]\n",
        "  k = broadcast y, {2, 3}\n",
        "  return {a, b, c, d, e, g, h, i, j, k}\n",
        "}\n"
    );
    let expected = concat!(
        "def f(x: f32[1][3][1], y: s8[3]) -> {f32[3], f32[1][3][1], f32[1][1][1], f32[1][3], s32, s32, s8[3], s8[2], s8[6], s8[2][3]} {\n",
        "  a = squeeze x, [0, 2]  f32[3]\n",
        "  b = transpose x, [2, 1, 0]  f32[1][3][1]\n",
        "  c = sum x, axes: nil, keep_axes: true  f32[1][1][1]\n",
        "  d = sum x, axes: [2], keep_axes: false  f32[1][3]\n",
        "  e = argmax y, axis: nil, tie_break: :low, keep_axis: false  s32\n",
        "  g = argmin y, axis: 0, tie_break: :high, keep_axis: false  s32\n",
        "  h = reverse y, [0]  s8[3]\n",
        "  i = slice y, [1], [2], [1]  s8[2]\n",
        "  j = concatenate [y, y], axis: 0  s8[6]\n",
        "  k = broadcast y, {2, 3}, [1]  s8[2][3]\n",
        "  return {a, b, c, d, e, g, h, i, j, k}\n",
        "}\n"
    );
    assert_eq!(print_module(&ok(src)), expected);
}

#[test]
fn literals_print_inline_and_floats_keep_a_point() {
    let src = concat!(
        "def f(x: f32[2], n: s32) {\n",
        "  a = add x, 1.0e-5\n",
        "  b = max a, neg_infinity\n",
        "  c = min b, infinity\n",
        "  d = add c, 2\n",
        "  e = select n, nan, d\n",
        "  f = add n, 0x1F\n",
        "  g = multiply x, -2.5\n",
        "  h = constant 3  f32[2]\n",
        "  t = tensor [[1.0, -0.5], [nan, 1e20]]  f64[2][2]\n",
        "  return {e, f, g, h, t, 7}\n",
        "}\n"
    );
    let expected = concat!(
        "def f(x: f32[2], n: s32) -> {f32[2], s32, f32[2], f32[2], f64[2][2], s32} {\n",
        "  a = add x, 1e-5  f32[2]\n",
        "  b = max a, neg_infinity  f32[2]\n",
        "  c = min b, infinity  f32[2]\n",
        "  d = add c, 2  f32[2]\n",
        "  e = select n, nan, d  f32[2]\n",
        "  f = add n, 31  s32\n",
        "  g = multiply x, -2.5  f32[2]\n",
        "  h = constant 3  f32[2]\n",
        "  t = tensor [[1.0, -0.5], [nan, 1e20]]  f64[2][2]\n",
        "  return {e, f, g, h, t, 7}\n",
        "}\n"
    );
    assert_eq!(print_module(&ok(src)), expected);
}

#[test]
fn several_functions_and_calls() {
    let src = concat!(
        "def main(x: f32[3]) {\n",
        "  p = call pair, x\n",
        "  a = elem p, 0\n",
        "  return a\n",
        "}\n",
        "def pair(x: f32[3]) -> {f32[3], f32[3]} {\n",
        "  y = negate x\n",
        "  return {x, y}\n",
        "}\n"
    );
    let expected = concat!(
        "def main(x: f32[3]) -> f32[3] {\n",
        "  p = call pair, x  {f32[3], f32[3]}\n",
        "  a = elem p, 0  f32[3]\n",
        "  return a\n",
        "}\n",
        "\n",
        "def pair(x: f32[3]) -> {f32[3], f32[3]} {\n",
        "  y = negate x  f32[3]\n",
        "  return {x, y}\n",
        "}\n"
    );
    assert_eq!(print_module(&ok(src)), expected);
}

/// One program with every implemented op; `ok` asserts the round trip.
#[test]
fn every_op_round_trips() {
    let src = concat!(
        "def g(a: f32[2][3]) -> f32[2][3] {\n",
        "  r = exp a\n",
        "  return r\n",
        "}\n",
        "def main(x: f32[2][3], y: s32[2][3], u: u8[3], p: u8[2][3], q: u8) {\n",
        "  c0 = constant -1  s8[2]\n",
        "  c1 = tensor [[1, 2, 3], [4, 5, 6]]  u16[2][3]\n",
        "  i0 = iota nil  s32[2][3]\n",
        "  i1 = iota 0  f64[4][2]\n",
        "  e0 = eye  f32[2][2][2]\n",
        "  n0 = negate x\n",
        "  n1 = abs y\n",
        "  n2 = sign x\n",
        "  n3 = floor x\n",
        "  n4 = ceil y\n",
        "  n5 = round x\n",
        "  n6 = bitwise_not y\n",
        "  n7 = population_count u\n",
        "  n8 = count_leading_zeros u\n",
        "  m0 = exp x\n",
        "  m1 = expm1 y\n",
        "  m2 = log x\n",
        "  m3 = log1p x\n",
        "  m4 = sigmoid x\n",
        "  m5 = sin x\n",
        "  m6 = cos x\n",
        "  m7 = tan x\n",
        "  m8 = asin x\n",
        "  m9 = acos x\n",
        "  m10 = atan x\n",
        "  m11 = sinh x\n",
        "  m12 = cosh x\n",
        "  m13 = tanh x\n",
        "  m14 = asinh x\n",
        "  m15 = acosh x\n",
        "  m16 = atanh x\n",
        "  m17 = sqrt x\n",
        "  m18 = rsqrt x\n",
        "  m19 = cbrt x\n",
        "  m20 = erf x\n",
        "  m21 = erfc x\n",
        "  m22 = erf_inv x\n",
        "  m23 = is_nan x\n",
        "  m24 = is_infinity x\n",
        "  m25 = logical_not y\n",
        "  b0 = add x, y\n",
        "  b1 = subtract y, 1\n",
        "  b2 = multiply u, 2\n",
        "  b3 = pow x, 2.0\n",
        "  b4 = remainder y, 3\n",
        "  b5 = atan2 x, 1\n",
        "  b6 = min x, y\n",
        "  b7 = max u, y\n",
        "  b8 = quotient y, 2\n",
        "  b9 = divide y, 2\n",
        "  b10 = bitwise_and y, u\n",
        "  b11 = bitwise_or u, 1\n",
        "  b12 = bitwise_xor y, -1\n",
        "  b13 = left_shift u, 1\n",
        "  b14 = right_shift y, 1\n",
        "  b15 = equal x, y\n",
        "  b16 = not_equal x, 0\n",
        "  b17 = less x, 1.5\n",
        "  b18 = less_equal y, u\n",
        "  b19 = greater x, x\n",
        "  b20 = greater_equal x, 0\n",
        "  b21 = logical_and p, x\n",
        "  b22 = logical_or p, 0\n",
        "  b23 = logical_xor p, y\n",
        "  s0 = select p, x, 0.0\n",
        "  s1 = clip y, 0, 10\n",
        "  s2 = as_type x  s64[2][3]\n",
        "  s3 = bitcast x  s32[2][3]\n",
        "  r0 = reshape x  f32[3][2]\n",
        "  r1 = squeeze c0\n",
        "  r2 = broadcast u, {2, 2, 3}, [2]\n",
        "  r3 = transpose x, [1, 0]\n",
        "  r4 = slice x, [1, 0], [1, 3], [1, 2]\n",
        "  r5 = pad x, 0.0, [{1, -1, 0}, {0, 0, 2}]\n",
        "  r6 = reverse x, [1]\n",
        "  r7 = concatenate [x, y], axis: 1\n",
        "  r8 = stack [q, 1], axis: 0\n",
        "  d0 = dot x, [1], [], x, [1], []\n",
        "  d1 = dot e0, [2], [0], e0, [1], [0]\n",
        "  a0 = sum y, axes: [0]\n",
        "  a1 = product u\n",
        "  a2 = reduce_max x, axes: [1], keep_axes: true\n",
        "  a3 = reduce_min y\n",
        "  a4 = all p, axes: [-1]\n",
        "  a5 = any p\n",
        "  a6 = argmax x, axis: 1\n",
        "  a7 = argmin y, tie_break: :high  s64\n",
        "  k0 = call g, x\n",
        "  return {k0, b9, r5}\n",
        "}\n"
    );
    let m = ok(src);
    assert_eq!(m.functions.len(), 2);
    // r8 stacks a u8 tensor with a weak literal: the literal becomes u8.
    assert_eq!(ty(src, "r8"), "u8[2]");
    assert_eq!(ty(src, "r5"), "f32[2][7]");
    assert_eq!(ty(src, "d1"), "f32[2][2][2]");
}

//! Snapshots of the emitted MLIR, one minimal program per feature. Reviewed
//! by hand when accepted (`cargo insta review`); the semantic checks live in
//! `run_values.rs` (executed results) and `mlir_tools.rs` (verifier and full
//! lowering), so a snapshot change is about the shape of the IR.

mod common;

/// The lowered text, after checking that it also verifies and lowers to LLVM IR.
fn lower(src: &str) -> String {
    let (_, mlir) = common::lower_source("t.nxir", src);
    if let Err(e) = common::verify_and_lower_to_llvm(&mlir) {
        panic!("{e}\n{mlir}");
    }
    mlir
}

macro_rules! snap {
    ($name:ident, $src:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), lower($src));
        }
    };
}

snap!(add_broadcasts_and_converts, "def f(a: s8[2][1], b: f32[3]) -> f32[2][3] {\n  c = add a, b\n  return c\n}\n");
snap!(scalar_literal_operand, "def f(a: u8[3]) -> u8[3] {\n  c = multiply a, 255\n  return c\n}\n");
snap!(divide_ints_is_float, "def f(a: s32[2], b: s32[2]) -> f32[2] {\n  c = divide a, b\n  return c\n}\n");
snap!(quotient_signed, "def f(a: s32[2], b: s32[2]) -> s32[2] {\n  c = quotient a, b\n  return c\n}\n");
snap!(remainder_unsigned, "def f(a: u16[2], b: u16[2]) -> u16[2] {\n  c = remainder a, b\n  return c\n}\n");
snap!(remainder_float, "def f(a: f64[2], b: f64[2]) -> f64[2] {\n  c = remainder a, b\n  return c\n}\n");
snap!(right_shift_signed, "def f(a: s32[2], b: s32[2]) -> s32[2] {\n  c = right_shift a, b\n  return c\n}\n");
snap!(left_shift_unsigned, "def f(a: u8[2], b: u8[2]) -> u8[2] {\n  c = left_shift a, b\n  return c\n}\n");
snap!(pow_signed, "def f(a: s32[2], b: s32[2]) -> s32[2] {\n  c = pow a, b\n  return c\n}\n");
snap!(pow_unsigned, "def f(a: u8[2], b: u8[2]) -> u8[2] {\n  c = pow a, b\n  return c\n}\n");
snap!(not_equal_float, "def f(a: f32[2], b: f32[2]) -> u8[2] {\n  c = not_equal a, b\n  return c\n}\n");
snap!(less_unsigned, "def f(a: u32[2], b: u32[2]) -> u8[2] {\n  c = less a, b\n  return c\n}\n");
snap!(logical_and, "def f(a: f32[2], b: s8[2]) -> u8[2] {\n  c = logical_and a, b\n  return c\n}\n");
snap!(max_float_nan, "def f(a: f32[2], b: f32[2]) -> f32[2] {\n  c = max a, b\n  return c\n}\n");
snap!(sign_float, "def f(a: f32[2]) -> f32[2] {\n  c = sign a\n  return c\n}\n");
snap!(round_and_exp_of_int, "def f(a: f32[2], b: s32[2]) -> {f32[2], f32[2]} {\n  c = round a\n  d = exp b\n  return {c, d}\n}\n");
snap!(erf_inv_f32, "def f(a: f32[2]) -> f32[2] {\n  c = erf_inv a\n  return c\n}\n");
snap!(is_nan_is_infinity, "def f(a: f64[2]) -> {u8[2], u8[2]} {\n  c = is_nan a\n  d = is_infinity a\n  return {c, d}\n}\n");
snap!(as_type_float_to_unsigned, "def f(a: f32[2]) -> u8[2] {\n  c = as_type a  u8[2]\n  return c\n}\n");
snap!(as_type_int_narrowing, "def f(a: s64[2]) -> {s8[2], f32[2]} {\n  c = as_type a  s8[2]\n  d = as_type a  f32[2]\n  return {c, d}\n}\n");
snap!(bitcast, "def f(a: f32[2]) -> {s32[2], u32[2]} {\n  c = bitcast a  s32[2]\n  d = bitcast c  u32[2]\n  return {c, d}\n}\n");
snap!(select_clip, "def f(p: u8[2], a: f32[2], b: s32) -> {f32[2], f32[2]} {\n  c = select p, a, b\n  d = clip a, -1.0, 1.0\n  return {c, d}\n}\n");
snap!(iota_eye, "def f() -> {s32[2][3], f32[2][3], u8[2][2]} {\n  a = iota nil  s32[2][3]\n  b = iota 1  f32[2][3]\n  c = eye  u8[2][2]\n  return {a, b, c}\n}\n");
snap!(constants, "def f() -> {f32[2], u64[2], f64} {\n  a = constant -1.5  f32[2]\n  b = tensor [18446744073709551615, 1]  u64[2]\n  c = constant infinity  f64\n  return {a, b, c}\n}\n");
snap!(reshape_squeeze, "def f(a: f32[2][3], b: f32[1][4][1]) -> {f32[3][2], f32[4], f32} {\n  c = reshape a  f32[3][2]\n  d = squeeze b, [0, 2]\n  s = slice a, [0, 0], [1, 1]\n  e = reshape s  f32\n  return {c, d, e}\n}\n");
snap!(broadcast_transpose, "def f(a: f32[3][1]) -> {f32[2][3][4], f32[1][3]} {\n  b = broadcast a, {2, 3, 4}, [1, 2]\n  t = transpose a, [1, 0]\n  return {b, t}\n}\n");
snap!(slice_strided, "def f(a: s32[6][5]) -> s32[2][3] {\n  b = slice a, [1, 0], [4, 5], [2, 2]\n  return b\n}\n");
snap!(pad_interior_negative, "def f(a: f32[3][4]) -> f32[6][4] {\n  b = pad a, 0.5, [{1, 0, 1}, {-1, 1, 0}]\n  return b\n}\n");
snap!(reverse, "def f(a: s32[3][1][2]) -> s32[3][1][2] {\n  b = reverse a, [0, 1, 2]\n  return b\n}\n");
snap!(concatenate_stack, "def f(a: u8[2], b: s8[3]) -> {s16[5], u8[2][2]} {\n  c = concatenate [a, b], axis: 0\n  d = stack [a, a], axis: 1\n  return {c, d}\n}\n");
snap!(dot_batched, "def f(a: f32[2][3][4], b: s32[2][4][5]) -> f32[2][3][5] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n");
snap!(sum_keep_axes, "def f(a: s8[2][3]) -> s32[2][1] {\n  s = sum a, axes: [1], keep_axes: true\n  return s\n}\n");
snap!(reduce_max_all, "def f(a: f32[2][3]) -> {f32, u8[3]} {\n  m = reduce_max a\n  b = all a, axes: [0]\n  return {m, b}\n}\n");
snap!(argmax_flat_high, "def f(a: f32[2][3]) -> s32 {\n  i = argmax a, tie_break: :high\n  return i\n}\n");
snap!(argmin_axis_keep, "def f(a: u16[2][3]) -> s64[2][1] {\n  i = argmin a, axis: 1, keep_axis: true  s64[2][1]\n  return i\n}\n");
snap!(call_inlined_with_tuple, "def pair(a: s32[3]) -> {s32[3], s32[3]} {\n  b = negate a\n  return {b, a}\n}\n\ndef f(x: s32[3]) -> s32[3] {\n  p = call pair, x\n  u = elem p, 1\n  return u\n}\n");
snap!(zero_size, "def f(a: f32[0][3], b: f32[3]) -> {f32[0][3], f32[3]} {\n  c = add a, b\n  s = sum a, axes: [0]\n  return {c, s}\n}\n");
snap!(dot_canonical_named_ops, "def f(a: f32[3][4], b: f32[4][5], c: s32[2][3][4], d: s32[2][4][2]) -> {f32[3][5], s32[2][3][2]} {\n  x = dot a, [1], [], b, [0], []\n  y = dot c, [2], [0], d, [1], [0]\n  return {x, y}\n}\n");
snap!(squeeze_groups_axes, "def f(a: f32[2][1][3][1]) -> {f32[2][3], f32[1][2][3]} {\n  s = squeeze a, [1, 3]\n  r = reshape s  f32[1][2][3]\n  return {s, r}\n}\n");

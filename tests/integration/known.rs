//! Known-answer tests: small programs whose expected outputs were worked out
//! by hand from the spec (§2, §4) and Nx's documentation, independently of any
//! implementation. Each runs on the interpreter and on the CPU JIT, so a bug
//! both share (which the differential cases cannot see) still shows up here.

use tensorc::{CompileOptions, DType, Scalar, Target, Tensor, TensorType};

use crate::harness::compare;

/// A tensor of integer values (signed or unsigned dtype).
fn ints(dtype: DType, shape: &[usize], vals: &[i128]) -> Tensor {
    let data: Vec<Scalar> = vals
        .iter()
        .map(|&v| {
            if dtype.is_unsigned_int() {
                Scalar::U(v as u64)
            } else {
                Scalar::I(v as i64)
            }
        })
        .collect();
    Tensor::from_scalars(TensorType::new(dtype, shape.to_vec()), &data).expect("sizes match")
}

/// A tensor of float values.
fn floats(dtype: DType, shape: &[usize], vals: &[f64]) -> Tensor {
    let data: Vec<Scalar> = vals.iter().map(|&v| Scalar::F(v)).collect();
    Tensor::from_scalars(TensorType::new(dtype, shape.to_vec()), &data).expect("sizes match")
}

use DType::*;

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

struct Known {
    name: &'static str,
    source: &'static str,
    inputs: Vec<Tensor>,
    expected: Vec<Tensor>,
}

fn k(
    name: &'static str,
    source: &'static str,
    inputs: Vec<Tensor>,
    expected: Vec<Tensor>,
) -> Known {
    Known {
        name,
        source,
        inputs,
        expected,
    }
}

fn table() -> Vec<Known> {
    vec![
        // §2.1: u8 with s8 merges to s16.
        k(
            "promotion_u8_s8",
            "def main(a: u8[2], b: s8[2]) -> s16[2] {\n  c = add a, b\n  return c\n}\n",
            vec![ints(U8, &[2], &[200, 255]), ints(S8, &[2], &[-100, 127])],
            vec![ints(S16, &[2], &[100, 382])],
        ),
        // §2.1 weak literals: u8 with 255 stays u8 (and wraps), with 256 is u16, with -1 is s16.
        k(
            "weak_literal_u8_255",
            "def main(a: u8[2]) -> u8[2] {\n  c = add a, 255\n  return c\n}\n",
            vec![ints(U8, &[2], &[0, 3])],
            vec![ints(U8, &[2], &[255, 2])],
        ),
        k(
            "weak_literal_u8_256",
            "def main(a: u8[1]) -> u16[1] {\n  c = add a, 256\n  return c\n}\n",
            vec![ints(U8, &[1], &[250])],
            vec![ints(U16, &[1], &[506])],
        ),
        k(
            "weak_literal_u8_minus1",
            "def main(a: u8[2]) -> s16[2] {\n  c = add a, -1\n  return c\n}\n",
            vec![ints(U8, &[2], &[0, 255])],
            vec![ints(S16, &[2], &[-1, 254])],
        ),
        k(
            "weak_float_literal_with_int",
            "def main(a: s32[2]) -> f32[2] {\n  c = multiply a, 0.5\n  return c\n}\n",
            vec![ints(S32, &[2], &[3, -4])],
            vec![floats(F32, &[2], &[1.5, -2.0])],
        ),
        // §2.2: s32[2][1] with s32[3] broadcasts to s32[2][3].
        k(
            "broadcast_column_row",
            "def main(a: s32[2][1], b: s32[3]) -> s32[2][3] {\n  c = add a, b\n  return c\n}\n",
            vec![ints(S32, &[2, 1], &[10, 20]), ints(S32, &[3], &[1, 2, 3])],
            vec![ints(S32, &[2, 3], &[11, 12, 13, 21, 22, 23])],
        ),
        // §4.2 integer division never traps.
        k(
            "quotient_by_zero",
            "def main(a: s32[3], b: s32[3], c: u8[2], d: u8[2]) -> {s32[3], u8[2]} {\n  q = quotient a, b\n  r = quotient c, d\n  return {q, r}\n}\n",
            vec![
                ints(S32, &[3], &[7, -7, 0]),
                ints(S32, &[3], &[0, 0, 0]),
                ints(U8, &[2], &[7, 0]),
                ints(U8, &[2], &[0, 0]),
            ],
            vec![ints(S32, &[3], &[-1, -1, -1]), ints(U8, &[2], &[255, 255])],
        ),
        k(
            "remainder_by_zero",
            "def main(a: s32[2], b: s32[2], c: u16[1], d: u16[1]) -> {s32[2], u16[1]} {\n  q = remainder a, b\n  r = remainder c, d\n  return {q, r}\n}\n",
            vec![
                ints(S32, &[2], &[7, -7]),
                ints(S32, &[2], &[0, 0]),
                ints(U16, &[1], &[9]),
                ints(U16, &[1], &[0]),
            ],
            vec![ints(S32, &[2], &[7, -7]), ints(U16, &[1], &[9])],
        ),
        k(
            "min_div_minus_one",
            "def main(a: s32[1], b: s32[1], c: s8[1], d: s8[1]) -> {s32[1], s32[1], s8[1], s8[1]} {\n  q = quotient a, b\n  r = remainder a, b\n  s = quotient c, d\n  t = remainder c, d\n  return {q, r, s, t}\n}\n",
            vec![
                ints(S32, &[1], &[-2147483648]),
                ints(S32, &[1], &[-1]),
                ints(S8, &[1], &[-128]),
                ints(S8, &[1], &[-1]),
            ],
            vec![
                ints(S32, &[1], &[-2147483648]),
                ints(S32, &[1], &[0]),
                ints(S8, &[1], &[-128]),
                ints(S8, &[1], &[0]),
            ],
        ),
        // Truncating quotient.
        k(
            "quotient_truncates",
            "def main(a: s32[4], b: s32[4]) -> s32[4] {\n  q = quotient a, b\n  return q\n}\n",
            vec![
                ints(S32, &[4], &[-7, 7, -7, 7]),
                ints(S32, &[4], &[2, 2, -2, -2]),
            ],
            vec![ints(S32, &[4], &[-3, 3, 3, -3])],
        ),
        // §4.2 remainder takes the sign of the dividend; Nx doc: remainder(-11 :: s8, 10 :: u8) is s16 -1.
        k(
            "remainder_sign",
            "def main(a: s32[4], b: s32[4], c: s8[1], d: u8[1], x: f32[2], y: f32[2]) -> {s32[4], s16[1], f32[2]} {\n  r = remainder a, b\n  s = remainder c, d\n  t = remainder x, y\n  return {r, s, t}\n}\n",
            vec![
                ints(S32, &[4], &[-7, 7, -7, 7]),
                ints(S32, &[4], &[3, -3, -3, 3]),
                ints(S8, &[1], &[-11]),
                ints(U8, &[1], &[10]),
                floats(F32, &[2], &[-7.5, 7.5]),
                floats(F32, &[2], &[2.0, -2.0]),
            ],
            vec![
                ints(S32, &[4], &[-1, 1, -1, 1]),
                ints(S16, &[1], &[-1]),
                floats(F32, &[2], &[-1.5, 1.5]),
            ],
        ),
        // §4.2 shifts outside [0, bits) give 0, or -1 for a negative value shifted right.
        k(
            "shift_out_of_range",
            "def main(a: s32[4], b: s32[4], c: s32[4], d: s32[4]) -> {s32[4], s32[4]} {\n  l = left_shift a, b\n  r = right_shift c, d\n  return {l, r}\n}\n",
            vec![
                ints(S32, &[4], &[1, 1, 1, 3]),
                ints(S32, &[4], &[32, -1, 31, 1]),
                ints(S32, &[4], &[-8, 8, -8, -8]),
                ints(S32, &[4], &[40, 40, 1, -2]),
            ],
            vec![
                ints(S32, &[4], &[0, 0, -2147483648, 6]),
                ints(S32, &[4], &[-1, 0, -4, -1]),
            ],
        ),
        // right_shift is logical for unsigned, arithmetic for signed.
        k(
            "right_shift_kinds",
            "def main(a: u8[2], b: u8[2], c: s8[2], d: s8[2]) -> {u8[2], s8[2]} {\n  r = right_shift a, b\n  s = right_shift c, d\n  return {r, s}\n}\n",
            vec![
                ints(U8, &[2], &[128, 255]),
                ints(U8, &[2], &[1, 8]),
                ints(S8, &[2], &[-128, 64]),
                ints(S8, &[2], &[1, 7]),
            ],
            vec![ints(U8, &[2], &[64, 0]), ints(S8, &[2], &[-64, 0])],
        ),
        // §4.2 as_type saturation, the spec's own example.
        k(
            "as_type_saturation_spec",
            "def main(x: f32[3]) -> {u8[3], s32[3]} {\n  a = as_type x  u8[3]\n  b = as_type x  s32[3]\n  return {a, b}\n}\n",
            vec![floats(F32, &[3], &[INF, NAN, -INF])],
            vec![
                ints(U8, &[3], &[255, 0, 0]),
                ints(S32, &[3], &[2147483647, 0, -2147483648]),
            ],
        ),
        // Truncation toward zero and saturation of finite out-of-range values.
        k(
            "as_type_truncate_saturate",
            "def main(x: f32[5]) -> {u8[5], s8[5]} {\n  a = as_type x  u8[5]\n  b = as_type x  s8[5]\n  return {a, b}\n}\n",
            vec![floats(F32, &[5], &[-1.7, 300.0, 2.9, -3.9, 127.9])],
            vec![
                ints(U8, &[5], &[0, 255, 2, 0, 127]),
                ints(S8, &[5], &[-1, 127, 2, -3, 127]),
            ],
        ),
        // Integer -> narrower integer wraps.
        k(
            "as_type_int_wraps",
            "def main(x: s32[3]) -> {s8[3], u8[3]} {\n  a = as_type x  s8[3]\n  b = as_type x  u8[3]\n  return {a, b}\n}\n",
            vec![ints(S32, &[3], &[300, -129, -1])],
            vec![
                ints(S8, &[3], &[44, 127, -1]),
                ints(U8, &[3], &[44, 127, 255]),
            ],
        ),
        // f64 -> f32 rounds to nearest even: 1 + 2^-24 is halfway between 1 and 1 + 2^-23.
        k(
            "as_type_f64_f32_ties_even",
            "def main(x: f64[2]) -> f32[2] {\n  a = as_type x  f32[2]\n  return a\n}\n",
            vec![floats(
                F64,
                &[2],
                &[1.0 + 2f64.powi(-24), 1.0 + 3.0 * 2f64.powi(-24)],
            )],
            vec![floats(F32, &[2], &[1.0, 1.0 + 2.0 * 2f64.powi(-23)])],
        ),
        // §4.2 round half away from zero; floor/ceil.
        k(
            "round_half_away",
            "def main(x: f32[6]) -> {f32[6], f32[6], f32[6]} {\n  r = round x\n  f = floor x\n  c = ceil x\n  return {r, f, c}\n}\n",
            vec![floats(F32, &[6], &[0.5, -0.5, 1.5, 2.5, -2.5, 0.25])],
            vec![
                floats(F32, &[6], &[1.0, -1.0, 2.0, 3.0, -3.0, 0.0]),
                floats(F32, &[6], &[0.0, -1.0, 1.0, 2.0, -3.0, 0.0]),
                floats(F32, &[6], &[1.0, -0.0, 2.0, 3.0, -2.0, 1.0]),
            ],
        ),
        // §4.3 the spec's slice clamping example.
        k(
            "slice_clamped_spec",
            "def main(x: s32[3]) -> s32[2] {\n  s = slice x, [5], [2]\n  return s\n}\n",
            vec![ints(S32, &[3], &[1, 2, 3])],
            vec![ints(S32, &[2], &[2, 3])],
        ),
        k(
            "slice_strided",
            "def main(x: s32[2][5]) -> s32[2][3] {\n  s = slice x, [0, 0], [2, 5], [1, 2]\n  return s\n}\n",
            vec![ints(S32, &[2, 5], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9])],
            vec![ints(S32, &[2, 3], &[0, 2, 4, 5, 7, 9])],
        ),
        // A strided slice whose stride-1 axis shrinks (4 → 2, from 1): rows
        // 1 (stride 2 over 2 rows), columns 1 and 2.
        k(
            "slice_strided_shrinking_axis",
            "def main(x: s32[3][4]) -> s32[1][2] {\n  s = slice x, [1, 1], [2, 2], [2, 1]\n  return s\n}\n",
            vec![ints(S32, &[3, 4], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])],
            vec![ints(S32, &[1, 2], &[5, 6])],
        ),
        // §4.5 argmax/argmin tie-break.
        k(
            "argmax_tie_break",
            "def main(x: s32[4]) -> {s32, s32, s32, s32} {\n  a = argmax x, tie_break: :low\n  b = argmax x, tie_break: :high\n  c = argmin x\n  d = argmin x, tie_break: :high\n  return {a, b, c, d}\n}\n",
            vec![ints(S32, &[4], &[1, 3, 3, 1])],
            vec![
                ints(S32, &[], &[1]),
                ints(S32, &[], &[2]),
                ints(S32, &[], &[0]),
                ints(S32, &[], &[3]),
            ],
        ),
        k(
            "argmax_axis_keep",
            "def main(x: f32[2][3]) -> {s32[2][1], s32[3]} {\n  a = argmax x, axis: 1, keep_axis: true\n  b = argmin x, axis: 0\n  return {a, b}\n}\n",
            vec![floats(F32, &[2, 3], &[1.0, 5.0, 2.0, 7.0, 0.0, 9.0])],
            vec![ints(S32, &[2, 1], &[1, 2]), ints(S32, &[3], &[0, 1, 0])],
        ),
        // NaN counts as the maximum and the minimum for argmax/argmin.
        k(
            "argmax_nan",
            "def main(x: f32[3]) -> {s32, s32} {\n  a = argmax x\n  b = argmin x\n  return {a, b}\n}\n",
            vec![floats(F32, &[3], &[1.0, NAN, 3.0])],
            vec![ints(S32, &[], &[1]), ints(S32, &[], &[1])],
        ),
        // §4.2 max/min propagate NaN; §4.5 so do reductions.
        k(
            "nan_max_propagation",
            "def main(x: f32[3], y: f32[3]) -> {f32[3], f32[3], f32, f32} {\n  a = max x, y\n  b = min x, y\n  c = reduce_max x, axes: nil\n  d = reduce_min y, axes: [0]\n  return {a, b, c, d}\n}\n",
            vec![
                floats(F32, &[3], &[NAN, 1.0, 2.0]),
                floats(F32, &[3], &[1.0, NAN, 5.0]),
            ],
            vec![
                floats(F32, &[3], &[NAN, NAN, 5.0]),
                floats(F32, &[3], &[NAN, NAN, 2.0]),
                floats(F32, &[], &[NAN]),
                floats(F32, &[], &[NAN]),
            ],
        ),
        // §4.5 empty reductions: lowest/highest value of the type, and the identities.
        k(
            "empty_reductions",
            "def main(x: f32[0], y: s16[2][0]) -> {f32, f32, f32, f32, s16[2], s16[2], u8, u8} {\n  a = reduce_max x, axes: nil\n  b = reduce_min x, axes: nil\n  c = sum x, axes: nil\n  d = product x, axes: nil\n  e = reduce_max y, axes: [1]\n  f = reduce_min y, axes: [1]\n  g = all x, axes: nil\n  h = any x, axes: nil\n  return {a, b, c, d, e, f, g, h}\n}\n",
            vec![floats(F32, &[0], &[]), ints(S16, &[2, 0], &[])],
            vec![
                floats(F32, &[], &[-INF]),
                floats(F32, &[], &[INF]),
                floats(F32, &[], &[0.0]),
                floats(F32, &[], &[1.0]),
                ints(S16, &[2], &[-32768, -32768]),
                ints(S16, &[2], &[32767, 32767]),
                ints(U8, &[], &[1]),
                ints(U8, &[], &[0]),
            ],
        ),
        // §4.5 sum/product accumulate in the aggregate type.
        k(
            "sum_aggregate_types",
            "def main(x: u8[2], y: s8[2]) -> {u32, s32, s32} {\n  a = sum x, axes: nil\n  b = sum y, axes: nil\n  c = product y, axes: nil\n  return {a, b, c}\n}\n",
            vec![ints(U8, &[2], &[200, 100]), ints(S8, &[2], &[100, 100])],
            vec![
                ints(U32, &[], &[300]),
                ints(S32, &[], &[200]),
                ints(S32, &[], &[10000]),
            ],
        ),
        k(
            "sum_keep_axes",
            "def main(x: s32[2][3]) -> {s32[2][1], s32[3]} {\n  a = sum x, axes: [1], keep_axes: true\n  b = sum x, axes: [0]\n  return {a, b}\n}\n",
            vec![ints(S32, &[2, 3], &[1, 2, 3, 4, 5, 6])],
            vec![ints(S32, &[2, 1], &[6, 15]), ints(S32, &[3], &[5, 7, 9])],
        ),
        // §4.2 integer pow: exact, wrapping, negative exponent 0 unless the base is ±1.
        k(
            "integer_pow",
            "def main(a: s32[6], b: s32[6], c: s8[1], d: s8[1]) -> {s32[6], s8[1]} {\n  p = pow a, b\n  q = pow c, d\n  return {p, q}\n}\n",
            vec![
                ints(S32, &[6], &[2, 2, -1, 1, 3, -2]),
                ints(S32, &[6], &[10, -1, -3, -5, 3, 0]),
                ints(S8, &[1], &[2]),
                ints(S8, &[1], &[7]),
            ],
            vec![
                ints(S32, &[6], &[1024, 0, -1, 1, 27, 1]),
                ints(S8, &[1], &[-128]),
            ],
        ),
        // divide is always float (Nx doc: divide(1, 2) is f32 0.5).
        k(
            "divide_ints_is_float",
            "def main(a: s32[2], b: s32[2]) -> f32[2] {\n  c = divide a, b\n  return c\n}\n",
            vec![ints(S32, &[2], &[1, -3]), ints(S32, &[2], &[2, 4])],
            vec![floats(F32, &[2], &[0.5, -0.75])],
        ),
        k(
            "divide_literals",
            "def main() -> f32 {\n  c = divide 1, 2\n  return c\n}\n",
            vec![],
            vec![floats(F32, &[], &[0.5])],
        ),
        // §4.2 sign.
        k(
            "sign_values",
            "def main(a: s32[3], b: f32[3]) -> {s32[3], f32[3]} {\n  s = sign a\n  t = sign b\n  return {s, t}\n}\n",
            vec![
                ints(S32, &[3], &[-3, 0, 2]),
                floats(F32, &[3], &[-2.5, NAN, 0.1]),
            ],
            vec![
                ints(S32, &[3], &[-1, 0, 1]),
                floats(F32, &[3], &[-1.0, NAN, 1.0]),
            ],
        ),
        // §4.2 comparisons with NaN: not_equal true, the others false.
        k(
            "nan_comparisons",
            "def main(a: f32[2], b: f32[2]) -> {u8[2], u8[2], u8[2], u8[2]} {\n  e = equal a, b\n  n = not_equal a, b\n  l = less a, b\n  g = greater_equal a, b\n  return {e, n, l, g}\n}\n",
            vec![
                floats(F32, &[2], &[NAN, 1.0]),
                floats(F32, &[2], &[NAN, NAN]),
            ],
            vec![
                ints(U8, &[2], &[0, 0]),
                ints(U8, &[2], &[1, 1]),
                ints(U8, &[2], &[0, 0]),
                ints(U8, &[2], &[0, 0]),
            ],
        ),
        // Unsigned comparisons compare as unsigned; mixed u8/s8 compare in s16.
        k(
            "int_comparisons",
            "def main(a: u8[2], b: u8[2], c: u8[1], d: s8[1]) -> {u8[2], u8[1]} {\n  l = less a, b\n  m = less c, d\n  return {l, m}\n}\n",
            vec![
                ints(U8, &[2], &[200, 1]),
                ints(U8, &[2], &[100, 255]),
                ints(U8, &[1], &[200]),
                ints(S8, &[1], &[-1]),
            ],
            vec![ints(U8, &[2], &[0, 1]), ints(U8, &[1], &[0])],
        ),
        // §4.2 logical ops: nonzero is true (NaN is nonzero; -0.0 is zero).
        k(
            "logical_ops",
            "def main(a: f32[4], b: s32[4]) -> {u8[4], u8[4], u8[4], u8[4]} {\n  x = logical_and a, b\n  y = logical_or a, b\n  z = logical_xor a, b\n  n = logical_not a\n  return {x, y, z, n}\n}\n",
            vec![
                floats(F32, &[4], &[NAN, 0.0, -0.0, 2.0]),
                ints(S32, &[4], &[1, 1, 0, 0]),
            ],
            vec![
                ints(U8, &[4], &[1, 0, 0, 0]),
                ints(U8, &[4], &[1, 1, 0, 1]),
                ints(U8, &[4], &[0, 1, 0, 1]),
                ints(U8, &[4], &[0, 1, 1, 0]),
            ],
        ),
        // Bit counting and bitwise_not.
        k(
            "bit_counts",
            "def main(a: u8[3], b: s32[3]) -> {u8[3], s32[3], u8[3]} {\n  p = population_count a\n  c = count_leading_zeros b\n  n = bitwise_not a\n  return {p, c, n}\n}\n",
            vec![ints(U8, &[3], &[255, 7, 0]), ints(S32, &[3], &[1, -1, 0])],
            vec![
                ints(U8, &[3], &[8, 3, 0]),
                ints(S32, &[3], &[31, 0, 32]),
                ints(U8, &[3], &[0, 248, 255]),
            ],
        ),
        // §4.2 clip and select.
        k(
            "clip_select",
            "def main(x: s32[3], p: u8[3], a: f32[3]) -> {s32[3], f32[3]} {\n  c = clip x, 0, 7\n  s = select p, a, -1.0\n  return {c, s}\n}\n",
            vec![
                ints(S32, &[3], &[-5, 5, 10]),
                ints(U8, &[3], &[0, 2, 1]),
                floats(F32, &[3], &[1.5, 2.5, 3.5]),
            ],
            vec![
                ints(S32, &[3], &[0, 5, 7]),
                floats(F32, &[3], &[-1.0, 2.5, 3.5]),
            ],
        ),
        // §4.2 bitcast.
        k(
            "bitcast_values",
            "def main(x: f32[2], y: s8[2]) -> {s32[2], u8[2]} {\n  a = bitcast x  s32[2]\n  b = bitcast y  u8[2]\n  return {a, b}\n}\n",
            vec![floats(F32, &[2], &[1.0, -2.0]), ints(S8, &[2], &[-1, -128])],
            vec![
                ints(S32, &[2], &[0x3f80_0000, 0xc000_0000u32 as i32 as i128]),
                ints(U8, &[2], &[255, 128]),
            ],
        ),
        // §4.4 matmul, batch matmul and the outer product.
        k(
            "dot_matmul",
            "def main(a: s32[2][2], b: s32[2][2]) -> s32[2][2] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n",
            vec![
                ints(S32, &[2, 2], &[1, 2, 3, 4]),
                ints(S32, &[2, 2], &[5, 6, 7, 8]),
            ],
            vec![ints(S32, &[2, 2], &[19, 22, 43, 50])],
        ),
        k(
            "dot_contract_first_axes",
            "def main(a: f32[2][2], b: f32[2][2]) -> f32[2][2] {\n  c = dot a, [0], [], b, [0], []\n  return c\n}\n",
            vec![
                floats(F32, &[2, 2], &[1.0, 2.0, 3.0, 4.0]),
                floats(F32, &[2, 2], &[5.0, 6.0, 7.0, 8.0]),
            ],
            // a^T b = [[1*5+3*7, 1*6+3*8], [2*5+4*7, 2*6+4*8]]
            vec![floats(F32, &[2, 2], &[26.0, 30.0, 38.0, 44.0])],
        ),
        k(
            "dot_batched",
            "def main(a: s32[2][1][2], b: s32[2][2][1]) -> s32[2][1][1] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n",
            vec![
                ints(S32, &[2, 1, 2], &[1, 2, 3, 4]),
                ints(S32, &[2, 2, 1], &[5, 6, 7, 8]),
            ],
            vec![ints(S32, &[2, 1, 1], &[17, 53])],
        ),
        k(
            "dot_outer",
            "def main(a: s32[2], b: s32[3]) -> s32[2][3] {\n  c = dot a, [], [], b, [], []\n  return c\n}\n",
            vec![ints(S32, &[2], &[1, -2]), ints(S32, &[3], &[3, 4, 5])],
            vec![ints(S32, &[2, 3], &[3, 4, 5, -6, -8, -10])],
        ),
        // §4.1 creation ops.
        k(
            "iota_eye",
            "def main() -> {s32[2][3], s32[2][3], f32[2][3], u8[2][2]} {\n  a = iota nil  s32[2][3]\n  b = iota 1  s32[2][3]\n  c = eye  f32[2][3]\n  d = tensor [[1, 2], [3, 255]]  u8[2][2]\n  return {a, b, c, d}\n}\n",
            vec![],
            vec![
                ints(S32, &[2, 3], &[0, 1, 2, 3, 4, 5]),
                ints(S32, &[2, 3], &[0, 1, 2, 0, 1, 2]),
                floats(F32, &[2, 3], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
                ints(U8, &[2, 2], &[1, 2, 3, 255]),
            ],
        ),
        // §4.3 pad with interior, negative edges.
        k(
            "pad_interior_negative",
            "def main(x: s32[3]) -> {s32[7], s32[2], s32[4]} {\n  a = pad x, 0, [{1, 1, 1}]\n  b = pad x, 9, [{-1, 0, 0}]\n  c = pad x, 9, [{-1, 0, 1}]\n  return {a, b, c}\n}\n",
            vec![ints(S32, &[3], &[1, 2, 3])],
            vec![
                ints(S32, &[7], &[0, 1, 0, 2, 0, 3, 0]),
                ints(S32, &[2], &[2, 3]),
                ints(S32, &[4], &[9, 2, 9, 3]),
            ],
        ),
        // §4.3 movement ops.
        k(
            "transpose_reverse",
            "def main(x: s32[2][3]) -> {s32[3][2], s32[2][3]} {\n  t = transpose x, [1, 0]\n  r = reverse x, [1]\n  return {t, r}\n}\n",
            vec![ints(S32, &[2, 3], &[1, 2, 3, 4, 5, 6])],
            vec![
                ints(S32, &[3, 2], &[1, 4, 2, 5, 3, 6]),
                ints(S32, &[2, 3], &[3, 2, 1, 6, 5, 4]),
            ],
        ),
        k(
            "concatenate_stack",
            "def main(a: s32[2], b: s32[2]) -> {s32[4], s32[2][2], s32[2][2]} {\n  c = concatenate [a, b], axis: 0\n  s = stack [a, b], axis: 0\n  t = stack [a, b], axis: 1\n  return {c, s, t}\n}\n",
            vec![ints(S32, &[2], &[1, 2]), ints(S32, &[2], &[3, 4])],
            vec![
                ints(S32, &[4], &[1, 2, 3, 4]),
                ints(S32, &[2, 2], &[1, 2, 3, 4]),
                ints(S32, &[2, 2], &[1, 3, 2, 4]),
            ],
        ),
        k(
            "broadcast_op",
            "def main(x: s32[2]) -> s32[2][3] {\n  b = broadcast x, {2, 3}, [0]\n  return b\n}\n",
            vec![ints(S32, &[2], &[7, 8])],
            vec![ints(S32, &[2, 3], &[7, 7, 7, 8, 8, 8])],
        ),
        // §3 calls and several results.
        k(
            "call_and_tuple",
            "def twice(a: s32[2]) -> s32[2] {\n  b = add a, a\n  return b\n}\n\ndef main(x: s32[2]) -> {s32[2], s32[2]} {\n  y = call twice, x\n  z = call twice, y\n  return {y, z}\n}\n",
            vec![ints(S32, &[2], &[1, -3])],
            vec![ints(S32, &[2], &[2, -6]), ints(S32, &[2], &[4, -12])],
        ),
    ]
}

/// Runs the table on one target; every failure is collected, so one run lists them all.
fn run_table(target: Target) {
    let mut failures = Vec::new();
    for case in table() {
        let file = format!("known/{}.nxir", case.name);
        let program = match tensorc::compile_str(
            &file,
            case.source,
            &CompileOptions {
                target,
                ..Default::default()
            },
        ) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{}: compile failed:\n{}", case.name, e.render()));
                continue;
            }
        };
        let result = program
            .entry(Some("main"))
            .and_then(|f| f.call(&case.inputs));
        match result {
            Err(e) => failures.push(format!("{}: run failed: {}", case.name, e.render())),
            Ok(got) if got.len() != case.expected.len() => failures.push(format!(
                "{}: {} results, expected {}",
                case.name,
                got.len(),
                case.expected.len()
            )),
            Ok(got) => {
                for (i, (g, w)) in got.iter().zip(&case.expected).enumerate() {
                    if let Err(msg) = compare(g, w, 0.0) {
                        failures.push(format!(
                            "{} result {i}: {}\n  got {g:?}\n  expected {w:?}",
                            case.name,
                            msg.replace("(cpu vs interp)", "(got vs expected)")
                                .replace(" (cpu)", " (got)")
                                .replace(" (interp)", " (expected)")
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{target:?}: {} known answers wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn known_answers_interp() {
    run_table(Target::Interp);
}

#[test]
fn known_answers_cpu() {
    run_table(Target::Cpu);
}

/// Spec §5: inputs are checked before running, with this exact wording.
#[test]
fn wrong_input_is_reported_before_running() {
    let src = "def main(x: f32[2][3]) -> f32[2][3] {\n  y = negate x\n  return y\n}\n";
    for target in [Target::Interp, Target::Cpu] {
        let p = tensorc::compile_str(
            "input.nxir",
            src,
            &CompileOptions {
                target,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{}", e.render()));
        let f = p.entry(None).unwrap_or_else(|e| panic!("{}", e.render()));
        let bad = floats(F64, &[3, 2], &[0.0; 6]);
        let err = f
            .call(&[bad])
            .expect_err("a wrong input type must be rejected");
        let text = err.render();
        assert!(
            text.contains("input 'x' expects f32[2][3], got f64[3][2]"),
            "{target:?}: {text}"
        );
        let err = f.call(&[]).expect_err("a missing input must be rejected");
        assert!(!err.render().is_empty());
    }
}

/// `entry(None)` works for one function or one named `main`, and otherwise lists the names.
#[test]
fn entry_selection() {
    let two = "def a(x: f32) -> f32 {\n  return x\n}\n\ndef b(x: f32) -> f32 {\n  return x\n}\n";
    let p = tensorc::compile_str(
        "two.nxir",
        two,
        &CompileOptions {
            target: Target::Interp,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(p.functions(), vec!["a", "b"]);
    let err = p
        .entry(None)
        .expect_err("two functions and no main is ambiguous");
    let text = err.render();
    assert!(text.contains('a') && text.contains('b'), "{text}");
    assert!(p.entry(Some("c")).is_err());
    let with_main = format!("{two}\ndef main(x: f32) -> f32 {{\n  return x\n}}\n");
    let p = tensorc::compile_str(
        "main.nxir",
        &with_main,
        &CompileOptions {
            target: Target::Interp,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(
        p.entry(None).map(|f| f.name().to_string()).ok().as_deref(),
        Some("main")
    );
}

/// `call_into` writes into caller-provided outputs and checks their types.
#[test]
fn call_into_writes_outputs() {
    let src = "def main(a: s32[3]) -> {s32[3], s32} {\n  b = multiply a, 2\n  s = sum a, axes: nil\n  return {b, s}\n}\n";
    for target in [Target::Interp, Target::Cpu] {
        let p = tensorc::compile_str(
            "into.nxir",
            src,
            &CompileOptions {
                target,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{}", e.render()));
        let f = p.entry(None).unwrap_or_else(|e| panic!("{}", e.render()));
        let a = ints(S32, &[3], &[1, -2, 5]);
        let mut outs = vec![ints(S32, &[3], &[9, 9, 9]), ints(S32, &[], &[9])];
        f.call_into(&[&a], &mut outs)
            .unwrap_or_else(|e| panic!("{target:?}: {}", e.render()));
        assert_eq!(outs[0], ints(S32, &[3], &[2, -4, 10]), "{target:?}");
        assert_eq!(outs[1], ints(S32, &[], &[4]), "{target:?}");
        let mut wrong = vec![ints(S32, &[2], &[0, 0]), ints(S32, &[], &[0])];
        assert!(
            f.call_into(&[&a], &mut wrong).is_err(),
            "{target:?}: a wrong output shape must be rejected"
        );
    }
}

/// Math functions at points whose values are known exactly or to many digits,
/// including IEEE special cases; compared with a small tolerance since math
/// libraries may differ in the last bit.
fn math_table() -> Vec<Known> {
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};
    let unary = |op: &'static str, name: &'static str, x: &[f64], y: &[f64]| {
        let n = x.len();
        let source: &'static str = Box::leak(
            format!("def main(x: f32[{n}]) -> f32[{n}] {{\n  y = {op} x\n  return y\n}}\n")
                .into_boxed_str(),
        );
        k(
            name,
            source,
            vec![floats(F32, &[n], x)],
            vec![floats(F32, &[n], y)],
        )
    };
    vec![
        unary(
            "exp",
            "exp",
            &[0.0, 1.0, -INF, INF, 100.0],
            &[1.0, std::f64::consts::E, 0.0, INF, INF],
        ),
        unary("expm1", "expm1", &[0.0, -INF, 1e-10], &[0.0, -1.0, 1e-10]),
        unary(
            "log",
            "log",
            &[1.0, 0.0, -1.0, INF, std::f64::consts::E],
            &[0.0, -INF, NAN, INF, 1.0],
        ),
        unary("log1p", "log1p", &[0.0, -1.0, 1e-10], &[0.0, -INF, 1e-10]),
        unary(
            "sigmoid",
            "sigmoid",
            &[0.0, INF, -INF, 200.0, -200.0],
            &[0.5, 1.0, 0.0, 1.0, 0.0],
        ),
        unary("sin", "sin", &[0.0, FRAC_PI_2, INF], &[0.0, 1.0, NAN]),
        unary("cos", "cos", &[0.0, PI], &[1.0, -1.0]),
        unary("tan", "tan", &[0.0, FRAC_PI_4], &[0.0, 1.0]),
        unary("asin", "asin", &[0.0, 1.0, 2.0], &[0.0, FRAC_PI_2, NAN]),
        unary("acos", "acos", &[1.0, -1.0, 0.0], &[0.0, PI, FRAC_PI_2]),
        unary(
            "atan",
            "atan",
            &[0.0, 1.0, INF, -INF],
            &[0.0, FRAC_PI_4, FRAC_PI_2, -FRAC_PI_2],
        ),
        unary("sinh", "sinh", &[0.0, 1.0], &[0.0, 1.1752011936438014]),
        unary("cosh", "cosh", &[0.0, 1.0], &[1.0, 1.5430806348152437]),
        unary(
            "tanh",
            "tanh",
            &[0.0, INF, -INF, 20.0, 0.5],
            &[0.0, 1.0, -1.0, 1.0, 0.46211715726000974],
        ),
        unary("asinh", "asinh", &[0.0, 1.0], &[0.0, 0.881373587019543]),
        unary(
            "acosh",
            "acosh",
            &[1.0, 0.5, 2.0],
            &[0.0, NAN, 1.3169578969248166],
        ),
        unary(
            "atanh",
            "atanh",
            &[0.0, 1.0, -1.0, 0.5, 2.0],
            &[0.0, INF, -INF, 0.5493061443340549, NAN],
        ),
        unary(
            "sqrt",
            "sqrt",
            &[4.0, 0.0, -1.0, INF, 2.0],
            &[2.0, 0.0, NAN, INF, std::f64::consts::SQRT_2],
        ),
        unary(
            "rsqrt",
            "rsqrt",
            &[4.0, 0.0, INF, 0.25],
            &[0.5, INF, 0.0, 2.0],
        ),
        unary(
            "cbrt",
            "cbrt",
            &[8.0, -27.0, 0.0, INF],
            &[2.0, -3.0, 0.0, INF],
        ),
        unary(
            "erf",
            "erf",
            &[0.0, INF, -INF, 1.0, 0.5],
            &[0.0, 1.0, -1.0, 0.8427007929497149, 0.5204998778130465],
        ),
        unary(
            "erfc",
            "erfc",
            &[0.0, INF, -INF, 1.0],
            &[1.0, 0.0, 2.0, 0.15729920705028513],
        ),
        unary(
            "erf_inv",
            "erf_inv",
            &[0.0, 1.0, -1.0, 0.5, 2.0],
            &[0.0, INF, -INF, 0.4769362762044699, NAN],
        ),
        // Integers become f32 first (spec §4.2).
        k(
            "math_on_ints",
            "def main(x: s32[3]) -> {f32[3], f32[3]} {\n  s = sqrt x\n  e = exp x\n  return {s, e}\n}\n",
            vec![ints(S32, &[3], &[4, 0, 1])],
            vec![
                floats(F32, &[3], &[2.0, 0.0, 1.0]),
                floats(
                    F32,
                    &[3],
                    &[std::f64::consts::E.powi(4), 1.0, std::f64::consts::E],
                ),
            ],
        ),
        k(
            "atan2_quadrants",
            "def main(y: f64[4], x: f64[4]) -> f64[4] {\n  a = atan2 y, x\n  return a\n}\n",
            vec![
                floats(F64, &[4], &[1.0, 1.0, -1.0, 0.0]),
                floats(F64, &[4], &[1.0, -1.0, -1.0, -1.0]),
            ],
            vec![floats(
                F64,
                &[4],
                &[FRAC_PI_4, 3.0 * FRAC_PI_4, -3.0 * FRAC_PI_4, PI],
            )],
        ),
        k(
            "float_pow",
            "def main(x: f32[5], y: f32[5]) -> f32[5] {\n  p = pow x, y\n  return p\n}\n",
            vec![
                floats(F32, &[5], &[2.0, 0.0, -2.0, 4.0, 0.0]),
                floats(F32, &[5], &[10.0, 0.0, 3.0, 0.5, -1.0]),
            ],
            vec![floats(F32, &[5], &[1024.0, 1.0, -8.0, 2.0, INF])],
        ),
        k(
            "float_divide_specials",
            "def main(x: f32[4], y: f32[4]) -> f32[4] {\n  d = divide x, y\n  return d\n}\n",
            vec![
                floats(F32, &[4], &[1.0, -1.0, 0.0, INF]),
                floats(F32, &[4], &[0.0, 0.0, 0.0, INF]),
            ],
            vec![floats(F32, &[4], &[INF, -INF, NAN, NAN])],
        ),
        k(
            "float_remainder_specials",
            "def main(x: f64[3], y: f64[3]) -> f64[3] {\n  r = remainder x, y\n  return r\n}\n",
            vec![
                floats(F64, &[3], &[5.0, INF, 5.5]),
                floats(F64, &[3], &[INF, 2.0, 0.0]),
            ],
            vec![floats(F64, &[3], &[5.0, NAN, NAN])],
        ),
        // Wrapping integer corner cases: abs and negate of MIN are MIN.
        k(
            "int_min_wraps",
            "def main(x: s8[2]) -> {s8[2], s8[2], s8[2]} {\n  a = abs x\n  n = negate x\n  p = population_count x\n  return {a, n, p}\n}\n",
            vec![ints(S8, &[2], &[-128, -1])],
            vec![
                ints(S8, &[2], &[-128, 1]),
                ints(S8, &[2], &[-128, 1]),
                ints(S8, &[2], &[1, 8]),
            ],
        ),
        // 64-bit conversions: saturation at the u64/s64 ends, exact powers of two.
        k(
            "as_type_64bit",
            "def main(x: f64[4], y: u64[2]) -> {s64[4], u64[4], f64[2]} {\n  a = as_type x  s64[4]\n  b = as_type x  u64[4]\n  c = as_type y  f64[2]\n  return {a, b, c}\n}\n",
            vec![
                floats(F64, &[4], &[9.3e18, -9.3e18, 1e20, -1.0]),
                ints(U64, &[2], &[u64::MAX as i128, 1 << 63]),
            ],
            vec![
                ints(
                    S64,
                    &[4],
                    &[i64::MAX as i128, i64::MIN as i128, i64::MAX as i128, -1],
                ),
                ints(
                    U64,
                    &[4],
                    &[9_300_000_000_000_000_000, 0, u64::MAX as i128, 0],
                ),
                floats(F64, &[2], &[18446744073709551616.0, 9223372036854775808.0]),
            ],
        ),
    ]
}

fn run_math_table(target: Target) {
    let mut failures = Vec::new();
    for case in math_table() {
        let file = format!("known/{}.nxir", case.name);
        let result = tensorc::compile_str(
            &file,
            case.source,
            &CompileOptions {
                target,
                ..Default::default()
            },
        )
        .and_then(|p| p.entry(None).and_then(|f| f.call(&case.inputs)));
        match result {
            Err(e) => failures.push(format!("{}: {}", case.name, e.render())),
            Ok(got) => {
                for (i, (g, w)) in got.iter().zip(&case.expected).enumerate() {
                    if let Err(msg) = compare(g, w, 1e-6) {
                        failures.push(format!(
                            "{} result {i}: {msg}\n  got {g:?}\n  expected {w:?}",
                            case.name
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{target:?}: {} math answers wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn known_math_interp() {
    run_math_table(Target::Interp);
}

#[test]
fn known_math_cpu() {
    run_math_table(Target::Cpu);
}

/// Spec §2.1's promotion examples, checked on the result type the compiler infers.
#[test]
fn promotion_examples_from_the_spec() {
    let cases: &[(&str, &str, DType)] = &[
        ("s8[2]", "s32[2]", S32),
        ("f32[2]", "f64[2]", F64),
        ("u8[2]", "s8[2]", S16),
        ("u32[2]", "s8[2]", S64),
        ("s64[2]", "f32[2]", F32),
        ("u64[2]", "s64[2]", S64),
        ("u16[2]", "u8[2]", U16),
    ];
    for &(a, b, want) in cases {
        let src = format!(
            "def main(a: {a}, b: {b}) -> {}[2] {{\n  c = add a, b\n  return c\n}}\n",
            want.name()
        );
        let p = tensorc::compile_str(
            "promo.nxir",
            &src,
            &CompileOptions {
                target: Target::Interp,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{a} + {b}: {}", e.render()));
        let f = p.entry(None).unwrap();
        assert_eq!(f.results()[0].dtype, want, "{a} + {b}");
    }
    // Weak literals.
    let literals: &[(&str, &str, DType)] = &[
        ("u8", "255", U8),
        ("u8", "256", U16),
        ("u8", "-1", S16),
        ("s8", "200", S16),
        ("s32", "1", S32),
        ("f64", "1.0", F64),
        ("s8", "1.0", F32),
        ("f32", "2", F32),
    ];
    for &(t, lit, want) in literals {
        let src = format!(
            "def main(a: {t}[2]) -> {}[2] {{\n  c = add a, {lit}\n  return c\n}}\n",
            want.name()
        );
        let p = tensorc::compile_str(
            "weak.nxir",
            &src,
            &CompileOptions {
                target: Target::Interp,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{t} + {lit}: {}", e.render()));
        assert_eq!(
            p.entry(None).unwrap().results()[0].dtype,
            want,
            "{t} + {lit}"
        );
    }
}

/// Spec §2.2's broadcasting example, `s32[5][1][4][1]` with `s32[3][4][5]`, on
/// both targets; the expected values follow from the rule itself.
#[test]
fn broadcasting_example_from_the_spec() {
    let src = "def main(a: s32[5][1][4][1], b: s32[3][4][5]) -> s32[5][3][4][5] {\n  c = multiply a, b\n  return c\n}\n";
    let a_vals: Vec<i128> = (0..20).map(|i| i + 1).collect();
    let b_vals: Vec<i128> = (0..60).map(|i| 100 + i).collect();
    let a = ints(S32, &[5, 1, 4, 1], &a_vals);
    let b = ints(S32, &[3, 4, 5], &b_vals);
    let mut want = Vec::new();
    for i in 0..5 {
        for j in 0..3 {
            for k in 0..4 {
                for l in 0..5 {
                    // a[i][0][k][0] * b[j][k][l]
                    want.push(a_vals[i * 4 + k] * b_vals[j * 20 + k * 5 + l]);
                }
            }
        }
    }
    let want = ints(S32, &[5, 3, 4, 5], &want);
    for target in [Target::Interp, Target::Cpu] {
        let p = tensorc::compile_str(
            "bcast.nxir",
            src,
            &CompileOptions {
                target,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{}", e.render()));
        let got = p
            .entry(None)
            .and_then(|f| f.call(&[a.clone(), b.clone()]))
            .unwrap_or_else(|e| panic!("{}", e.render()));
        assert_eq!(got[0], want, "{target:?}");
    }
}

/// Corner cases behind bugs the generated differential test found (see
/// `tests/cases/regressions/`), restated as small programs with hand-derived
/// answers so they stay covered on both targets whatever the generator does.
fn regression_table() -> Vec<Known> {
    use std::f64::consts::PI;
    vec![
        // C/IEEE atan2: atan2(±0, +0) = ±0, atan2(+0, -0) = π, atan2(+0, -1) = π.
        k(
            "atan2_zeros",
            "def main(y: f32[4], x: f32[4]) -> f32[4] {\n  a = atan2 y, x\n  return a\n}\n",
            vec![
                floats(F32, &[4], &[0.0, 0.0, 0.0, 1.0]),
                floats(F32, &[4], &[0.0, -0.0, -1.0, 0.0]),
            ],
            vec![floats(
                F32,
                &[4],
                &[0.0, PI, PI, std::f64::consts::FRAC_PI_2],
            )],
        ),
        k(
            "atan2_zero_from_ints",
            "def main(v: u8[1]) -> f32[1] {\n  z = not_equal v, v\n  a = atan2 z, z\n  return a\n}\n",
            vec![ints(U8, &[1], &[10])],
            vec![floats(F32, &[1], &[0.0])],
        ),
        // A gather from a strided slice seen through an op the frontend
        // lowers to its operand itself (a bitcast within one MLIR element
        // type: gen_int28136.nxir; a reverse of unit axes): the gather read
        // the strided view, which failed the JIT. The slice keeps every row
        // (its stride of 2 is along an axis of 1): row 3 of x.
        k(
            "take_from_strided_slice_through_bitcast",
            "def main(i: s32, x: s32[5][1]) -> u32[1] {\n  y = slice x, [0, 0], [5, 1], [1, 2]\n  w = bitcast y  u32[5][1]\n  z = take w, i, axis: 0\n  return z\n}\n",
            vec![ints(S32, &[], &[3]), ints(S32, &[5, 1], &[10, -20, 30, -1, 50])],
            vec![ints(U32, &[1], &[u32::MAX as i128])],
        ),
        k(
            "take_from_strided_slice_through_reverse",
            "def main(i: s32, x: s32[5][1]) -> s32[1] {\n  y = slice x, [0, 0], [5, 1], [1, 2]\n  w = reverse y, [1]\n  z = take w, i, axis: 0\n  return z\n}\n",
            vec![ints(S32, &[], &[3]), ints(S32, &[5, 1], &[10, -20, 30, -1, 50])],
            vec![ints(S32, &[1], &[-1])],
        ),
        // NaN counts as the maximum and the minimum; ties among NaNs follow tie_break.
        k(
            "arg_reduce_nan_ties",
            "def main(x: f64[3]) -> {s32, s32, s32, s32} {\n  a = argmax x, tie_break: :low\n  b = argmax x, tie_break: :high\n  c = argmin x, tie_break: :low\n  d = argmin x, tie_break: :high\n  return {a, b, c, d}\n}\n",
            vec![floats(F64, &[3], &[NAN, 1.0, NAN])],
            vec![
                ints(S32, &[], &[0]),
                ints(S32, &[], &[2]),
                ints(S32, &[], &[0]),
                ints(S32, &[], &[2]),
            ],
        ),
        // An outer product (no contraction) followed by a broadcast.
        k(
            "outer_dot_then_broadcast",
            "def main(a: s32[1], b: s32[1]) -> s32[6][2] {\n  d = dot a, [], [], b, [], []\n  e = broadcast d, {6, 2}, [0, 1]\n  return e\n}\n",
            vec![ints(S32, &[1], &[2]), ints(S32, &[1], &[1])],
            vec![ints(S32, &[6, 2], &[2; 12])],
        ),
        // Reductions over no axes are the identity (with the aggregate type).
        k(
            "empty_axes_reduction_then_dot",
            "def main(p: s32[2][1], q: s32[2][3]) -> s32[1][3] {\n  r = product p, axes: []\n  d = dot r, [0], [], q, [0], []\n  return d\n}\n",
            vec![
                ints(S32, &[2, 1], &[2, 3]),
                ints(S32, &[2, 3], &[1, -1, 5, 4, 0, -2]),
            ],
            // r = p; d[0][j] = 2*q[0][j] + 3*q[1][j]
            vec![ints(S32, &[1, 3], &[14, -2, 4])],
        ),
        k(
            "sum_keep_no_axes_then_dot",
            "def main(p: f64[1][3], q: u64[2][3]) -> f64[1][2] {\n  s = sum p, axes: [], keep_axes: true\n  d = dot s, [1], [], q, [1], []\n  return d\n}\n",
            vec![
                floats(F64, &[1, 3], &[1.0, 2.0, -1.0]),
                ints(U64, &[2, 3], &[9, 7, 3, 2, 14, 8]),
            ],
            // [9 + 14 - 3, 2 + 28 - 8]
            vec![floats(F64, &[1, 2], &[20.0, 22.0])],
        ),
        k(
            "scalar_sum_then_divide",
            "def main(v: s32, w: s8[1][2]) -> f32[1][2] {\n  s = sum v, axes: nil\n  d = divide w, s\n  return d\n}\n",
            vec![ints(S32, &[], &[2]), ints(S8, &[1, 2], &[1, -1])],
            vec![floats(F32, &[1, 2], &[0.5, -0.5])],
        ),
    ]
}

/// Runs one regression case on one target (one test each, so an open bug
/// can be ignored on exactly the target that has it).
fn regression(name: &str, target: Target) {
    let case = regression_table()
        .into_iter()
        .find(|c| c.name == name)
        .expect("case exists");
    let file = format!("known/{}.nxir", case.name);
    let got = tensorc::compile_str(
        &file,
        case.source,
        &CompileOptions {
            target,
            ..Default::default()
        },
    )
    .and_then(|p| p.entry(None).and_then(|f| f.call(&case.inputs)))
    .unwrap_or_else(|e| panic!("{name} on {target:?}: {}", e.render()));
    assert_eq!(got.len(), case.expected.len());
    for (i, (g, w)) in got.iter().zip(&case.expected).enumerate() {
        if let Err(msg) = compare(g, w, 1e-6) {
            panic!(
                "{name} on {target:?}, result {i}: {}\n  got {g:?}\n  expected {w:?}",
                msg.replace("(cpu vs interp)", "(got vs expected)")
            );
        }
    }
}

#[test]
fn regression_take_from_strided_slice_through_bitcast_interp() {
    regression("take_from_strided_slice_through_bitcast", Target::Interp);
}

#[test]
fn regression_take_from_strided_slice_through_bitcast_cpu() {
    regression("take_from_strided_slice_through_bitcast", Target::Cpu);
}

#[test]
fn regression_take_from_strided_slice_through_reverse_interp() {
    regression("take_from_strided_slice_through_reverse", Target::Interp);
}

#[test]
fn regression_take_from_strided_slice_through_reverse_cpu() {
    regression("take_from_strided_slice_through_reverse", Target::Cpu);
}

#[test]
fn regression_atan2_zeros_interp() {
    regression("atan2_zeros", Target::Interp);
}

#[test]
fn regression_atan2_zeros_cpu() {
    regression("atan2_zeros", Target::Cpu);
}

#[test]
fn regression_atan2_zero_from_ints_interp() {
    regression("atan2_zero_from_ints", Target::Interp);
}

#[test]
fn regression_atan2_zero_from_ints_cpu() {
    regression("atan2_zero_from_ints", Target::Cpu);
}

#[test]
fn regression_arg_reduce_nan_ties_interp() {
    regression("arg_reduce_nan_ties", Target::Interp);
}

#[test]
fn regression_arg_reduce_nan_ties_cpu() {
    regression("arg_reduce_nan_ties", Target::Cpu);
}

#[test]
fn regression_outer_dot_then_broadcast_interp() {
    regression("outer_dot_then_broadcast", Target::Interp);
}

#[test]
fn regression_outer_dot_then_broadcast_cpu() {
    regression("outer_dot_then_broadcast", Target::Cpu);
}

#[test]
fn regression_empty_axes_reduction_then_dot_interp() {
    regression("empty_axes_reduction_then_dot", Target::Interp);
}

#[test]
fn regression_empty_axes_reduction_then_dot_cpu() {
    regression("empty_axes_reduction_then_dot", Target::Cpu);
}

#[test]
fn regression_sum_keep_no_axes_then_dot_interp() {
    regression("sum_keep_no_axes_then_dot", Target::Interp);
}

#[test]
fn regression_sum_keep_no_axes_then_dot_cpu() {
    regression("sum_keep_no_axes_then_dot", Target::Cpu);
}

#[test]
fn regression_scalar_sum_then_divide_interp() {
    regression("scalar_sum_then_divide", Target::Interp);
}

#[test]
fn regression_scalar_sum_then_divide_cpu() {
    regression("scalar_sum_then_divide", Target::Cpu);
}

/// The same answers on Vulkan (lavapipe): hand-derived, so they check the
/// Vulkan expansions (`tensorc-vulkan-expand-math`) independently of the
/// interpreter the op cases compare with.
#[test]
fn known_answers_vulkan() {
    if crate::vulkan::have_driver() {
        run_table(Target::Vulkan);
    }
}

#[test]
fn known_math_vulkan() {
    if crate::vulkan::have_driver() {
        run_math_table(Target::Vulkan);
    }
}

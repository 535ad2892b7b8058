//! The interpreter driven through the real front end: `.nxir` source →
//! parser → checker → interpreter, compared with hand-computed values.
//!
//! These complement the graph-level unit tests in `src/tests.rs` by checking
//! that the graph the checker builds (weak literals, promotion, implicit
//! broadcasting, option handling) is evaluated the way spec §4 says.

use tensorc_interp::run;
use tensorc_ir::check::compile;
use tensorc_ir::{DType, Scalar, SourceFile, Tensor, TensorType};

/// Compiles `src` and runs its function `main` (or its only function).
fn eval(src: &str, inputs: &[Tensor]) -> Vec<Tensor> {
    let file = SourceFile::new("test.nxir", src);
    let module = match compile(&file) {
        Ok(m) => m,
        Err(d) => panic!("does not compile:\n{}", tensorc_ir::render::render(&d)),
    };
    let name = if module.function("main").is_some() { "main".to_string() } else { module.functions[0].name.clone() };
    run(&module, &name, inputs).unwrap_or_else(|e| panic!("run failed: {e}"))
}

fn tt(d: DType, shape: &[usize]) -> TensorType {
    TensorType::new(d, shape.to_vec())
}

fn tf(d: DType, shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_scalars(tt(d, shape), &v.iter().map(|&x| Scalar::F(x)).collect::<Vec<_>>()).unwrap()
}

fn ti(d: DType, shape: &[usize], v: &[i64]) -> Tensor {
    let s: Vec<Scalar> = v.iter().map(|&x| if d.is_unsigned_int() { Scalar::U(x as u64) } else { Scalar::I(x) }).collect();
    Tensor::from_scalars(tt(d, shape), &s).unwrap()
}

fn floats(t: &Tensor) -> Vec<f64> {
    t.to_scalars().iter().map(|s| s.as_f64()).collect()
}

fn ints(t: &Tensor) -> Vec<i64> {
    t.to_scalars()
        .iter()
        .map(|s| match s {
            Scalar::I(v) => *v,
            Scalar::U(v) => *v as i64,
            Scalar::F(v) => panic!("float {v}"),
        })
        .collect()
}

#[test]
fn dense_relu_from_the_spec() {
    let src = "
def dense(x: f32[2][2], w: f32[2][3], b: f32[3]) -> f32[2][3] {
  h = dot x, [1], [], w, [0], []            f32[2][3]
  z = add h, b
  y = max z, 0.0
  return y
}";
    let x = tf(DType::F32, &[2, 2], &[1.0, 2.0, -1.0, 0.5]);
    let w = tf(DType::F32, &[2, 3], &[1.0, 0.0, -1.0, 2.0, 1.0, 0.0]);
    let b = tf(DType::F32, &[3], &[0.0, -3.0, 0.5]);
    // x@w = [[5, 2, -1], [0, 0.5, 1]]; + b = [[5, -1, -0.5], [0, -2.5, 1.5]]; relu
    let r = eval(src, &[x, w, b]);
    assert_eq!(r[0].ty(), &tt(DType::F32, &[2, 3]));
    assert_eq!(floats(&r[0]), [5.0, 0.0, 0.0, 0.0, 0.0, 1.5]);
}

#[test]
fn weak_literals_and_promotion() {
    // u8 + 255 stays u8 (wraps); u8 + 256 is u16; u8 + -1 is s16; s32 + 1.5 is f32.
    let src = "
def main(x: u8[2], y: s32[2]) {
  a = add x, 255
  b = add x, 256
  c = add x, -1
  d = add y, 1.5
  e = divide y, 2
  f = multiply 3, 4
  return {a, b, c, d, e, f}
}";
    let r = eval(src, &[ti(DType::U8, &[2], &[1, 200]), ti(DType::S32, &[2], &[1, -3])]);
    assert_eq!((r[0].dtype(), ints(&r[0])), (DType::U8, vec![0, 199]));
    assert_eq!((r[1].dtype(), ints(&r[1])), (DType::U16, vec![257, 456]));
    assert_eq!((r[2].dtype(), ints(&r[2])), (DType::S16, vec![0, 199]));
    assert_eq!((r[3].dtype(), floats(&r[3])), (DType::F32, vec![2.5, -1.5]));
    assert_eq!((r[4].dtype(), floats(&r[4])), (DType::F32, vec![0.5, -1.5]));
    assert_eq!((r[5].dtype(), ints(&r[5])), (DType::S32, vec![12]));
}

#[test]
fn creation_ops_in_source() {
    let src = "
def main() {
  c = constant 2.5  f32[2][2]
  t = tensor [[1, 2], [3, 4]]  s32[2][2]
  i = iota nil  s32[2][3]
  j = iota 1  f32[2][3]
  e = eye  f32[3][3]
  return {c, t, i, j, e}
}";
    let r = eval(src, &[]);
    assert_eq!(floats(&r[0]), [2.5; 4]);
    assert_eq!(ints(&r[1]), [1, 2, 3, 4]);
    assert_eq!(ints(&r[2]), [0, 1, 2, 3, 4, 5]);
    assert_eq!(floats(&r[3]), [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
    assert_eq!(floats(&r[4]), [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
}

#[test]
fn shape_ops_in_source() {
    let src = "
def main(x: s32[2][3]) {
  r = reshape x  s32[3][2]
  t = transpose x, [1, 0]
  s = slice x, [0, 1], [2, 2], [1, 1]
  v = reverse x, [1]
  b = broadcast x, {2, 2, 3}, [1, 2]
  p = pad x, 0, [{0, 0, 0}, {1, -1, 0}]
  c = concatenate [x, x], axis: 1
  k = stack [x, x], axis: 1
  return {r, t, s, v, b, p, c, k}
}";
    let x = ti(DType::S32, &[2, 3], &[1, 2, 3, 4, 5, 6]);
    let r = eval(src, &[x]);
    assert_eq!(ints(&r[0]), [1, 2, 3, 4, 5, 6]);
    assert_eq!(ints(&r[1]), [1, 4, 2, 5, 3, 6]);
    assert_eq!(ints(&r[2]), [2, 3, 5, 6]);
    assert_eq!(ints(&r[3]), [3, 2, 1, 6, 5, 4]);
    assert_eq!(ints(&r[4]), [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
    assert_eq!(ints(&r[5]), [0, 1, 2, 0, 4, 5]);
    assert_eq!(ints(&r[6]), [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
    assert_eq!(r[7].shape(), &[2, 2, 3]);
    assert_eq!(ints(&r[7]), [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
}

#[test]
fn reductions_in_source() {
    let src = "
def main(x: f32[2][3]) {
  s = sum x, axes: [1], keep_axes: true
  m = reduce_max x, axes: nil, keep_axes: false
  n = reduce_min x, axes: [0]
  a = argmax x, axis: 1, tie_break: :high
  b = argmin x, axis: nil
  p = product x, axes: [0]
  return {s, m, n, a, b, p}
}";
    let x = tf(DType::F32, &[2, 3], &[1.0, 3.0, 3.0, -2.0, 0.5, -2.0]);
    let r = eval(src, &[x]);
    assert_eq!((r[0].shape().to_vec(), floats(&r[0])), (vec![2, 1], vec![7.0, -3.5]));
    assert_eq!(floats(&r[1]), [3.0]);
    assert_eq!(floats(&r[2]), [-2.0, 0.5, -2.0]);
    assert_eq!((r[3].dtype(), ints(&r[3])), (DType::S32, vec![2, 1]));
    assert_eq!(ints(&r[4]), [3]);
    assert_eq!(floats(&r[5]), [-2.0, 1.5, -6.0]);
}

#[test]
fn integer_sums_widen() {
    // sum of u8 accumulates in u32, of s8 in s32 (Nx's to_aggregate)
    let src = "
def main(x: u8[3], y: s8[3]) {
  a = sum x, axes: nil
  b = sum y, axes: nil
  return {a, b}
}";
    let r = eval(src, &[ti(DType::U8, &[3], &[255, 255, 10]), ti(DType::S8, &[3], &[-128, -128, -1])]);
    assert_eq!((r[0].dtype(), ints(&r[0])), (DType::U32, vec![520]));
    assert_eq!((r[1].dtype(), ints(&r[1])), (DType::S32, vec![-257]));
}

#[test]
fn select_clip_as_type_in_source() {
    let src = "
def main(x: f32[4]) {
  p = greater x, 0.0
  s = select p, x, -1
  c = clip x, -1.0, 1.0
  i = as_type x  s8[4]
  return {p, s, c, i}
}";
    let r = eval(src, &[tf(DType::F32, &[4], &[2.5, -0.5, f64::NAN, -300.0])]);
    assert_eq!((r[0].dtype(), ints(&r[0])), (DType::U8, vec![1, 0, 0, 0]));
    assert_eq!(floats(&r[1]), [2.5, -1.0, -1.0, -1.0]);
    let c = floats(&r[2]);
    assert_eq!((c[0], c[1], c[3]), (1.0, -0.5, -1.0));
    assert!(c[2].is_nan());
    assert_eq!(ints(&r[3]), [2, 0, 0, -128]);
}

#[test]
fn calls_are_evaluated() {
    let src = "
def square(a: f32[2]) -> f32[2] {
  b = multiply a, a
  return b
}
def twice(a: f32[2]) {
  b = add a, a
  return {a, b}
}
def main(x: f32[2]) {
  y = call square, x
  t = call twice, y
  z = elem t, 1
  return z
}";
    let r = eval(src, &[tf(DType::F32, &[2], &[3.0, -0.5])]);
    assert_eq!(floats(&r[0]), [18.0, 0.5]);
}

#[test]
fn layernorm_bench_shape_small() {
    // The W8 layer norm on a 2x4 input: row [1,2,3,4] has mean 2.5, var 1.25.
    let src = "
def main(x: f32[2][4]) -> f32[2][4] {
  s = sum x, axes: [1], keep_axes: true
  mu = divide s, 4.0
  d = subtract x, mu
  sq = multiply d, d
  vs = sum sq, axes: [1], keep_axes: true
  var = divide vs, 4.0
  r = rsqrt var
  y = multiply d, r
  return y
}";
    let r = eval(src, &[tf(DType::F32, &[2, 4], &[1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0])]);
    let y = floats(&r[0]);
    let k = 1.0 / 1.25f64.sqrt();
    for (got, want) in y[..4].iter().zip([-1.5 * k, -0.5 * k, 0.5 * k, 1.5 * k]) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
    // constant row: 0 * rsqrt(0) = 0 * inf = NaN
    assert!(y[4..].iter().all(|v| v.is_nan()));
}

#[test]
fn half_precision_rounds_every_step() {
    // f16 has 11 significant bits: at 2048 the spacing is 2, so 2048 + 1 is a
    // tie that rounds to even (2048) and 2048 + 3 rounds to 2052.
    let src = "
def main(x: f16[2], y: f16[2], z: f16[3]) {
  a = add x, y
  s = sum z, axes: nil
  e = exp y
  return {a, s, e}
}";
    let r = eval(
        src,
        &[tf(DType::F16, &[2], &[2048.0, 2048.0]), tf(DType::F16, &[2], &[1.0, 3.0]), tf(DType::F16, &[3], &[2048.0, 1.0, 1.0])],
    );
    assert_eq!(floats(&r[0]), [2048.0, 2052.0]);
    assert_eq!((r[1].dtype(), floats(&r[1])), (DType::F16, vec![2048.0]));
    // e = 2.71828…; f16 spacing at 2 is 2^-9: nearest is 1392·2^-9 = 2.71875; exp(3) = 20.0855…, spacing 2^-6 at 16: 1285.47 → 1285·2^-6 = 20.078125
    assert_eq!(floats(&r[2]), [2.71875, 20.078125]);
}

#[test]
fn conversions_to_half_and_bfloat() {
    let src = "
def main(x: f32[3]) {
  h = as_type x  f16[3]
  b = as_type x  bf16[3]
  return {h, b}
}";
    // 65519 rounds down to 65504 (f16 max); 65520 is the tie with 65536 and
    // rounds to even, which overflows to infinity. In bf16 (8 bits) 1 + 2^-8 ties to 1.
    let r = eval(src, &[tf(DType::F32, &[3], &[65519.0, 65520.0, 1.00390625])]);
    assert_eq!(floats(&r[0]), [65504.0, f64::INFINITY, 1.00390625]);
    assert_eq!(floats(&r[1])[2], 1.0);
    // bf16 keeps f32's range: 65520 → 65536 (spacing 256 at 2^15)
    assert_eq!(floats(&r[1])[..2], [65536.0, 65536.0]);
}

#[test]
fn clamped_slice_and_keep_axis() {
    // spec: slice of [1, 2, 3] at start 5, length 2 gives [2, 3]
    let src = "
def main(x: s32[3], y: f32[2][3]) {
  s = slice x, [5], [2]
  a = argmax y, axis: 1, keep_axis: true
  return {s, a}
}";
    let r = eval(src, &[ti(DType::S32, &[3], &[1, 2, 3]), tf(DType::F32, &[2, 3], &[0.0, 9.0, 1.0, 7.0, 7.0, -1.0])]);
    assert_eq!(ints(&r[0]), [2, 3]);
    assert_eq!((r[1].shape().to_vec(), ints(&r[1])), (vec![2, 1], vec![1, 0]));
}

#[test]
fn zero_sized_tensors() {
    let src = "
def main(x: f32[0][3]) {
  s = sum x, axes: [0]
  m = reduce_max x, axes: [0]
  t = transpose x, [1, 0]
  c = concatenate [x, x], axis: 0
  d = dot x, [0], [], x, [0], []
  return {s, m, t, c, d}
}";
    let r = eval(src, &[tf(DType::F32, &[0, 3], &[])]);
    assert_eq!(floats(&r[0]), [0.0; 3]);
    assert_eq!(floats(&r[1]), [f64::NEG_INFINITY; 3]);
    assert_eq!(r[2].shape(), &[3, 0]);
    assert_eq!(r[3].shape(), &[0, 3]);
    assert_eq!((r[4].shape().to_vec(), floats(&r[4])), (vec![3, 3], vec![0.0; 9]));
}

#[test]
fn extreme_integers() {
    let src = "
def main(x: u64[2], y: s64[2]) {
  a = add x, 1
  g = greater x, 0
  f = as_type x  f64[2]
  q = quotient y, -1
  r = remainder y, -1
  n = negate y
  return {a, g, f, q, r, n}
}";
    let r = eval(src, &[ti(DType::U64, &[2], &[-1, 5]), ti(DType::S64, &[2], &[i64::MIN, 7])]);
    assert_eq!(ints(&r[0]), [0, 6]);
    assert_eq!(ints(&r[1]), [1, 1]);
    assert_eq!(floats(&r[2]), [18446744073709551616.0, 5.0]);
    assert_eq!(ints(&r[3]), [i64::MIN, -7]);
    assert_eq!(ints(&r[4]), [0, 0]);
    assert_eq!(ints(&r[5]), [i64::MIN, -7]);
}

#[test]
fn signed_zero_and_nan_edges() {
    let src = "
def main(x: f32[4]) {
  a = max x, -0.0
  m = min x, 0.0
  s = sign x
  r = round x
  e = equal x, x
  n = not_equal x, x
  return {a, m, s, r, e, n}
}";
    let r = eval(src, &[tf(DType::F32, &[4], &[-0.0, f64::NAN, -0.5, 0.49999997])]);
    let a = floats(&r[0]);
    assert!(a[0] == 0.0 && a[0].is_sign_negative() && a[1].is_nan() && a[2] == 0.0 && a[2].is_sign_negative());
    let m = floats(&r[1]);
    assert!(m[0] == 0.0 && m[0].is_sign_negative() && m[1].is_nan() && m[2] == -0.5 && m[3] == 0.0);
    let s = floats(&r[2]);
    assert!(s[0] == 0.0 && s[1].is_nan() && s[2] == -1.0 && s[3] == 1.0);
    // round: half away from zero, and the largest f32 below 0.5 rounds to 0
    let rd = floats(&r[3]);
    assert!(rd[0] == 0.0 && rd[1].is_nan() && rd[2] == -1.0 && rd[3] == 0.0);
    assert_eq!(ints(&r[4]), [1, 0, 1, 1]);
    assert_eq!(ints(&r[5]), [0, 1, 0, 0]);
}

#[test]
fn half_precision_dot_sums_in_f32() {
    // Summed in f32 and rounded once (as XLA does): 2048·1 + 1·1 + 1·1 is
    // 2050 in f16 (in f16 steps 2048 + 1 rounds back to 2048, tie to
    // even, and the sum stuck at 2048); 256 + 1 + 1 is 258 in bf16 (in
    // bf16 steps it stuck at 256).
    let src = "
def main(a: f16[3], b: f16[3], c: bf16[3], d: bf16[3]) {
  x = dot a, [0], [], b, [0], []
  y = dot c, [0], [], d, [0], []
  return {x, y}
}";
    let r = eval(
        src,
        &[
            tf(DType::F16, &[3], &[2048.0, 1.0, 1.0]),
            tf(DType::F16, &[3], &[1.0, 1.0, 1.0]),
            tf(DType::BF16, &[3], &[256.0, 1.0, 1.0]),
            tf(DType::BF16, &[3], &[1.0, 1.0, 1.0]),
        ],
    );
    assert_eq!((r[0].dtype(), floats(&r[0])), (DType::F16, vec![2050.0]));
    assert_eq!((r[1].dtype(), floats(&r[1])), (DType::BF16, vec![258.0]));
}

#[test]
fn conv_and_window_ops_in_source() {
    // NHWC 1x3x3x1 of ones with a 3x3x1x1 (HWIO) kernel of ones, :same padding:
    // corners see 4 ones, edges 6, the centre 9.
    let src = "
def main(x: f32[1][3][3][1], k: f32[3][3][1][1], v: f32[4]) {
  y = conv x, k, strides: [1, 1], padding: :same, input_permutation: [0, 3, 1, 2], kernel_permutation: [3, 2, 0, 1], output_permutation: [0, 3, 1, 2]
  s = window_sum v, {2}
  m = window_max v, {2}, strides: [2]
  return {y, s, m}
}";
    let r = eval(
        src,
        &[
            tf(DType::F32, &[1, 3, 3, 1], &[1.0; 9]),
            tf(DType::F32, &[3, 3, 1, 1], &[1.0; 9]),
            tf(DType::F32, &[4], &[1.0, -2.0, 5.0, 3.0]),
        ],
    );
    assert_eq!(floats(&r[0]), [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
    assert_eq!(floats(&r[1]), [-1.0, 3.0, 8.0]);
    assert_eq!(floats(&r[2]), [1.0, 5.0]);
}

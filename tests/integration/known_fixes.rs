//! Known answers guarding CPU miscompilations that were found and fixed
//! (and half dots summed in f32):
//! "reductions" over nothing (no reduction loop) fused into broadcasting
//! consumers, and `atan2` of zeros that MLIR's folder turns into NaN. Each
//! program puts the fixed op right before a consumer that reads one of its
//! elements many times, the shape that exposed the bugs. Expected values are
//! worked out by hand from the spec and C's `atan2`; every case runs on the
//! interpreter and on the CPU JIT.

use tensorc::{CompileOptions, DType, Scalar, Target, Tensor, TensorType};

use crate::harness::compare;

use DType::*;

const PI: f64 = std::f64::consts::PI;

fn t(dtype: DType, shape: &[usize], vals: &[f64]) -> Tensor {
    let data: Vec<Scalar> = vals
        .iter()
        .map(|&v| {
            if dtype.is_float() {
                Scalar::F(v)
            } else if dtype.is_unsigned_int() {
                Scalar::U(v as u64)
            } else {
                Scalar::I(v as i64)
            }
        })
        .collect();
    Tensor::from_scalars(TensorType::new(dtype, shape.to_vec()), &data).expect("sizes match")
}

/// (name, program, inputs, expected results).
type Case = (&'static str, &'static str, Vec<Tensor>, Vec<Tensor>);

fn table() -> Vec<Case> {
    vec![
        // A half dot sums in f32 and rounds once: 4096 ones dotted with
        // ones is 4096 (summed in f16 steps it sticks at 2048, where
        // 2048 + 1 rounds back to 2048; in bf16 steps at 256).
        (
            "half_dots_sum_in_f32",
            "def main(a: f16[4096], b: bf16[4096]) -> {f16, bf16} {\n  c = dot a, [0], [], a, [0], []\n  d = dot b, [0], [], b, [0], []\n  return {c, d}\n}\n",
            vec![t(F16, &[4096], &[1.0; 4096]), t(BF16, &[4096], &[1.0; 4096])],
            vec![t(F16, &[], &[4096.0]), t(BF16, &[], &[4096.0])],
        ),
        // Every kind of reduction over `axes: []` is its operand converted
        // (all/any: its truth as u8); each result is then added to w = [1, 2, 3, 4].
        // a = -3: sum/product/max/min give -3 → [-2, -1, 0, 1]; all/any give 1 → [2, 3, 4, 5].
        (
            "reductions_over_no_axes_then_broadcast",
            "def main(a: s8[1], w: f32[4]) -> {f32[4], f32[4], f32[4], f32[4], f32[4], f32[4]} {\n  s = sum a, axes: []\n  p = product a, axes: []\n  mx = reduce_max a, axes: []\n  mn = reduce_min a, axes: []\n  al = all a, axes: []\n  an = any a, axes: []\n  r1 = add s, w\n  r2 = add p, w\n  r3 = add mx, w\n  r4 = add mn, w\n  r5 = add al, w\n  r6 = add an, w\n  return {r1, r2, r3, r4, r5, r6}\n}\n",
            vec![t(S8, &[1], &[-3.0]), t(F32, &[4], &[1.0, 2.0, 3.0, 4.0])],
            vec![
                t(F32, &[4], &[-2.0, -1.0, 0.0, 1.0]),
                t(F32, &[4], &[-2.0, -1.0, 0.0, 1.0]),
                t(F32, &[4], &[-2.0, -1.0, 0.0, 1.0]),
                t(F32, &[4], &[-2.0, -1.0, 0.0, 1.0]),
                t(F32, &[4], &[2.0, 3.0, 4.0, 5.0]),
                t(F32, &[4], &[2.0, 3.0, 4.0, 5.0]),
            ],
        ),
        // A scalar's product (axes nil) is the scalar: 2 * [1.5, -1] = [3, -2].
        (
            "scalar_product_then_multiply",
            "def main(v: f64, w: f64[2][1]) -> f64[2][1] {\n  p = product v\n  r = multiply p, w\n  return r\n}\n",
            vec![t(F64, &[], &[2.0]), t(F64, &[2, 1], &[1.5, -1.0])],
            vec![t(F64, &[2, 1], &[3.0, -2.0])],
        ),
        // An outer product (no contraction) with a conversion inside:
        // [1, -2] x [0.5, 1, 2] = [[0.5, 1, 2], [-1, -2, -4]], broadcast twice.
        (
            "outer_dot_converting_then_broadcast",
            "def main(a: s8[2], b: f32[3]) -> f32[2][2][3] {\n  d = dot a, [], [], b, [], []\n  r = broadcast d, {2, 2, 3}, [1, 2]\n  return r\n}\n",
            vec![t(S8, &[2], &[1.0, -2.0]), t(F32, &[3], &[0.5, 1.0, 2.0])],
            vec![t(
                F32,
                &[2, 2, 3],
                &[
                    0.5, 1.0, 2.0, -1.0, -2.0, -4.0, 0.5, 1.0, 2.0, -1.0, -2.0, -4.0,
                ],
            )],
        ),
        // A batched dot without contraction: per batch b, a[b] * c[b].
        // [[1, 2], [3, 4]] with [[5], [6]] → [[5, 10], [18, 24]], then + 7.
        (
            "batched_outer_dot_then_add",
            "def main(a: s32[2][2], c: s32[2][1]) -> s32[2][2][1] {\n  d = dot a, [], [0], c, [], [0]\n  r = add d, 7\n  return r\n}\n",
            vec![
                t(S32, &[2, 2], &[1.0, 2.0, 3.0, 4.0]),
                t(S32, &[2, 1], &[5.0, 6.0]),
            ],
            vec![t(S32, &[2, 2, 1], &[12.0, 17.0, 25.0, 31.0])],
        ),
        // The general reduce over no axes folds init into each element once:
        // 5 + 3 = 8, then + [1, 2, 3].
        (
            "reduce_fn_over_no_axes_then_broadcast",
            "def main(v: s32[1], w: s32[3]) -> s32[3] {\n  s = reduce v, 5, axes: [], fn(a, b) { c = add a, b; return c }\n  d = add s, w\n  return d\n}\n",
            vec![t(S32, &[1], &[3.0]), t(S32, &[3], &[1.0, 2.0, 3.0])],
            vec![t(S32, &[3], &[9.0, 10.0, 11.0])],
        ),
        // argmax/argmin of a scalar is index 0, NaN or not: w + 0 + 0.
        (
            "scalar_arg_reduce_then_broadcast",
            "def main(a: f32, w: s32[4]) -> {s32[4], s32[4]} {\n  i = argmax a\n  j = argmin a, tie_break: :high\n  k = add i, j\n  r = add k, w\n  z = subtract a, a\n  n = divide z, z\n  m = argmax n\n  q = add m, w\n  return {r, q}\n}\n",
            vec![t(F32, &[], &[2.5]), t(S32, &[4], &[10.0, 20.0, 30.0, 40.0])],
            vec![
                t(S32, &[4], &[10.0, 20.0, 30.0, 40.0]),
                t(S32, &[4], &[10.0, 20.0, 30.0, 40.0]),
            ],
        ),
    ]
}

fn run(name: &str, source: &str, inputs: &[Tensor], target: Target) -> Vec<Tensor> {
    let file = format!("known_fixes/{name}.nxir");
    tensorc::compile_str(
        &file,
        source,
        &CompileOptions {
            target,
            ..Default::default()
        },
    )
    .and_then(|p| p.entry(None).and_then(|f| f.call(inputs)))
    .unwrap_or_else(|e| panic!("{name} on {target:?}: {}", e.render()))
}

fn run_table(target: Target) {
    let mut failures = Vec::new();
    for (name, source, inputs, expected) in table() {
        let got = run(name, source, &inputs, target);
        if got.len() != expected.len() {
            failures.push(format!(
                "{name}: {} results, expected {}",
                got.len(),
                expected.len()
            ));
            continue;
        }
        for (i, (g, w)) in got.iter().zip(&expected).enumerate() {
            if let Err(msg) = compare(g, w, 1e-6) {
                failures.push(format!("{name} result {i}: {msg}\n  got {g:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "on {target:?}:\n{}",
        failures.join("\n")
    );
}

#[test]
fn fixed_fusion_cases_interp() {
    run_table(Target::Interp);
}

#[test]
fn fixed_fusion_cases_cpu() {
    run_table(Target::Cpu);
}

/// `atan2(y, x)` for every pair of signed zeros, as C and Nx define it:
/// (+0, +0) = +0, (-0, +0) = -0, (+0, -0) = +π, (-0, -0) = -π. Checked with
/// the sign bit, which `compare` does not look at.
fn check_signed_zero_atan2(what: &str, got: &Tensor, dtype: DType) {
    let want = [0.0, -0.0, PI, -PI];
    assert_eq!(got.ty(), &TensorType::new(dtype, vec![4]), "{what}");
    let tol = if dtype == F64 { 1e-15 } else { 1e-7 };
    for (i, &w) in want.iter().enumerate() {
        let Scalar::F(g) = got.get(i) else {
            panic!("{what}: element {i} is not a float")
        };
        assert!(
            (g - w).abs() <= tol * PI && g.is_sign_negative() == w.is_sign_negative(),
            "{what}: element {i} is {g:?}, expected {w:?} (all: {got:?})"
        );
    }
}

/// The zeros as inputs (the library call sees them at run time) and as
/// constants, which elementwise fusion moves into the `atan2` body where the
/// canonicalizer folds them: MLIR 22 folds `math.atan2(±0, ±0)` to NaN.
fn atan2_signed_zeros(target: Target) {
    for (dtype, name) in [(F32, "f32"), (F64, "f64")] {
        let from_inputs = format!(
            "def main(y: {name}[4], x: {name}[4]) -> {name}[4] {{\n  a = atan2 y, x\n  return a\n}}\n"
        );
        let got = run(
            "atan2_signed_zero_inputs",
            &from_inputs,
            &[
                t(dtype, &[4], &[0.0, -0.0, 0.0, -0.0]),
                t(dtype, &[4], &[0.0, 0.0, -0.0, -0.0]),
            ],
            target,
        );
        check_signed_zero_atan2(&format!("{name} inputs on {target:?}"), &got[0], dtype);

        let folded = format!(
            "def main(v: u8[1]) -> {name}[4] {{\n  p = constant 0.0 {name}[1]\n  n = constant -0.0 {name}[1]\n  a1 = atan2 p, p\n  a2 = atan2 n, p\n  a3 = atan2 p, n\n  a4 = atan2 n, n\n  a = concatenate [a1, a2, a3, a4]\n  return a\n}}\n"
        );
        let got = run(
            "atan2_signed_zero_folded",
            &folded,
            &[t(U8, &[1], &[7.0])],
            target,
        );
        check_signed_zero_atan2(&format!("{name} folded on {target:?}"), &got[0], dtype);
    }
}

#[test]
fn atan2_signed_zeros_interp() {
    atan2_signed_zeros(Target::Interp);
}

#[test]
fn atan2_signed_zeros_cpu() {
    atan2_signed_zeros(Target::Cpu);
}

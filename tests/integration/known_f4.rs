//! Known answers for `triangular_solve` (issue 3, family F4), worked out by
//! hand by substitution from the examples in Nx's documentation
//! (`Nx.LinAlg.triangular_solve`) and small systems whose solutions are
//! easy to verify by multiplying back, and for the op-set audit (weak
//! literal merges of spec §2.1 that change values, empty reductions and
//! contractions). Each program runs on the interpreter and on the CPU JIT.

use tensorc::{CompileOptions, DType, Target, Tensor};

use crate::harness::compare;
use crate::known_f3::t;

use DType::*;

/// (name, body of `def main`, inputs, expected result).
type Case = (&'static str, &'static str, Vec<Tensor>, Tensor);

fn table() -> Vec<Case> {
    vec![
        // Nx docs: lower a = [[3,0,0,0],[2,1,0,0],[1,0,1,0],[1,1,1,1]], b = [4,2,4,2]:
        // x0 = 4/3, x1 = 2 - 8/3 = -2/3, x2 = 4 - 4/3 = 8/3, x3 = 2 - (4/3 - 2/3 + 8/3) = -4/3
        (
            "nx_doc_lower",
            "(a: f64[4][4], b: f64[4]) -> f64[4] {\n  x = triangular_solve a, b\n  return x\n}",
            vec![
                t(
                    F64,
                    &[4, 4],
                    &[
                        3., 0., 0., 0., 2., 1., 0., 0., 1., 0., 1., 0., 1., 1., 1., 1.,
                    ],
                ),
                t(F64, &[4], &[4., 2., 4., 2.]),
            ],
            t(F64, &[4], &[4. / 3., -2. / 3., 8. / 3., -4. / 3.]),
        ),
        // Nx docs: upper a = [[1,1,1,1],[0,1,0,1],[0,0,1,2],[0,0,0,3]], b = [2,4,2,4]:
        // x3 = 4/3, x2 = 2 - 8/3 = -2/3, x1 = 4 - 4/3 = 8/3, x0 = 2 - (8/3 - 2/3 + 4/3) = -4/3
        (
            "nx_doc_upper",
            "(a: f64[4][4], b: f64[4]) -> f64[4] {\n  x = triangular_solve a, b, lower: false\n  return x\n}",
            vec![
                t(
                    F64,
                    &[4, 4],
                    &[
                        1., 1., 1., 1., 0., 1., 0., 1., 0., 0., 1., 2., 0., 0., 0., 3.,
                    ],
                ),
                t(F64, &[4], &[2., 4., 2., 4.]),
            ],
            t(F64, &[4], &[-4. / 3., 8. / 3., -2. / 3., 4. / 3.]),
        ),
        // x a = b with a = [[1,0,0],[1,1,0],[0,1,1]]: per row x2 = b2, x1 = b1 - x2,
        // x0 = b0 - x1; rows [0,2,1], [1,1,0], [3,3,1] give [-1,1,1], [0,1,0], [1,2,1]
        (
            "right_side",
            "(a: f32[3][3], b: f32[3][3]) -> f32[3][3] {\n  x = triangular_solve a, b, left_side: false\n  return x\n}",
            vec![
                t(F32, &[3, 3], &[1., 0., 0., 1., 1., 0., 0., 1., 1.]),
                t(F32, &[3, 3], &[0., 2., 1., 1., 1., 0., 3., 3., 1.]),
            ],
            t(F32, &[3, 3], &[-1., 1., 1., 0., 1., 0., 1., 2., 1.]),
        ),
        // aᵀ x = b with upper a = [[1,1,1],[0,1,1],[0,0,1]]: aᵀ is all-ones lower, so
        // b = [1,2,3] gives x = [1,1,1]
        (
            "upper_transposed",
            "(a: f32[3][3], b: f32[3]) -> f32[3] {\n  x = triangular_solve a, b, lower: false, transform_a: :transpose\n  return x\n}",
            vec![
                t(F32, &[3, 3], &[1., 1., 1., 0., 1., 1., 0., 0., 1.]),
                t(F32, &[3], &[1., 2., 3.]),
            ],
            t(F32, &[3], &[1., 1., 1.]),
        ),
        // lower aᵀ x = b, a = [[2,0],[6,4]]: aᵀ = [[2,6],[0,4]] (upper): x1 = 8/4 = 2,
        // x0 = (16 - 6*2)/2 = 2
        (
            "lower_transposed",
            "(a: f32[2][2], b: f32[2]) -> f32[2] {\n  x = triangular_solve a, b, transform_a: :transpose\n  return x\n}",
            vec![t(F32, &[2, 2], &[2., 0., 6., 4.]), t(F32, &[2], &[16., 8.])],
            t(F32, &[2], &[2., 2.]),
        ),
        // x aᵀ = b with upper a = [[2,1],[0,4]]: aᵀ = [[2,0],[1,4]], so 2x0 + x1 = 8 and
        // 4x1 = 4: x = [3.5, 1]
        (
            "right_upper_transposed",
            "(a: f32[2][2], b: f32[1][2]) -> f32[1][2] {\n  x = triangular_solve a, b, left_side: false, lower: false, transform_a: :transpose\n  return x\n}",
            vec![
                t(F32, &[2, 2], &[2., 1., 0., 4.]),
                t(F32, &[1, 2], &[8., 4.]),
            ],
            t(F32, &[1, 2], &[3.5, 1.]),
        ),
        // Only the lower triangle is read (the 99 is ignored); integers give f32:
        // x0 = 4/2 = 2, x1 = (6 - 1*2)/4 = 1
        (
            "ignores_other_triangle_s32",
            "(a: s32[2][2], b: s32[2]) -> f32[2] {\n  x = triangular_solve a, b\n  return x\n}",
            vec![t(S32, &[2, 2], &[2., 99., 1., 4.]), t(S32, &[2], &[4., 6.])],
            t(F32, &[2], &[2., 1.]),
        ),
        // A batch of two: the identity leaves [3,4]; [[2,0],[1,1]] on [4,5] gives [2,3]
        (
            "batched",
            "(a: f32[2][2][2], b: f32[2][2]) -> f32[2][2] {\n  x = triangular_solve a, b\n  return x\n}",
            vec![
                t(F32, &[2, 2, 2], &[1., 0., 0., 1., 2., 0., 1., 1.]),
                t(F32, &[2, 2], &[3., 4., 4., 5.]),
            ],
            t(F32, &[2, 2], &[3., 4., 2., 3.]),
        ),
        // Several right-hand sides (columns of b): [[2,0],[1,1]] with columns [2,3] and [4,4]
        // gives [1,2] and [2,2]
        (
            "columns",
            "(a: f32[2][2], b: f32[2][2]) -> f32[2][2] {\n  x = triangular_solve a, b\n  return x\n}",
            vec![
                t(F32, &[2, 2], &[2., 0., 1., 1.]),
                t(F32, &[2, 2], &[2., 4., 3., 4.]),
            ],
            t(F32, &[2, 2], &[1., 2., 2., 2.]),
        ),
        // f16 operands stay f16: [[4,0],[2,1]] on [2,3]: x0 = 0.5, x1 = 3 - 1 = 2
        (
            "half",
            "(a: f16[2][2], b: f16[2]) -> f16[2] {\n  x = triangular_solve a, b\n  return x\n}",
            vec![t(F16, &[2, 2], &[4., 0., 2., 1.]), t(F16, &[2], &[2., 3.])],
            t(F16, &[2], &[0.5, 2.]),
        ),
        // Audit of spec 2.1 (weak literals): a comparison is computed in the merged type,
        // so `less u8, 256` compares in u16 and 255 < 256 holds (in u8, 256 would wrap to 0)
        (
            "weak_less_u8_256",
            "(x: u8[2]) -> u8[2] {\n  r = less x, 256\n  return r\n}",
            vec![t(U8, &[2], &[0., 255.])],
            t(U8, &[2], &[1., 1.]),
        ),
        // u8 with -1 merges to s16: 255 is not -1 (in u8, -1 would wrap to 255)
        (
            "weak_equal_u8_minus1",
            "(x: u8[2]) -> u8[2] {\n  r = equal x, -1\n  return r\n}",
            vec![t(U8, &[2], &[255., 0.])],
            t(U8, &[2], &[0., 0.]),
        ),
        // s8 with 200 merges to s16: max(-5, 200) = 200, max(127, 200) = 200
        (
            "weak_max_s8_200",
            "(x: s8[2]) -> s16[2] {\n  r = max x, 200\n  return r\n}",
            vec![t(S8, &[2], &[-5., 127.])],
            t(S16, &[2], &[200., 200.]),
        ),
        // select's branches merge too: u8 with 300 gives u16, so 300 survives
        (
            "weak_select_u8_300",
            "(p: u8[2], y: u8[2]) -> u16[2] {\n  r = select p, y, 300\n  return r\n}",
            vec![t(U8, &[2], &[1., 0.]), t(U8, &[2], &[5., 5.])],
            t(U16, &[2], &[5., 300.]),
        ),
        // A float literal takes the half type: 100000 is past f16's 65504, so it is +inf
        (
            "weak_f16_overflow",
            "(z: f16[2]) -> f16[2] {\n  r = multiply z, 100000\n  return r\n}",
            vec![t(F16, &[2], &[1., -2.])],
            t(F16, &[2], &[f64::INFINITY, f64::NEG_INFINITY]),
        ),
        // Spec 4.5: reduce_max over an empty axis gives -inf, reduce_min +inf
        (
            "empty_reduce_max",
            "(x: f32[2][0]) -> f32[2] {\n  r = reduce_max x, axes: [1]\n  return r\n}",
            vec![t(F32, &[2, 0], &[])],
            t(F32, &[2], &[f64::NEG_INFINITY, f64::NEG_INFINITY]),
        ),
        // A dot contracting an empty axis sums nothing: zeros
        (
            "empty_contraction",
            "(a: f32[0][2], b: f32[0][3]) -> f32[2][3] {\n  r = dot a, [0], [], b, [0], []\n  return r\n}",
            vec![t(F32, &[0, 2], &[]), t(F32, &[0, 3], &[])],
            t(F32, &[2, 3], &[0.; 6]),
        ),
    ]
}

/// The canonical matmul layout with an empty contracted axis, alone (a
/// SIGSEGV would take the whole table down). A regression test: a draft of the
/// matmul schedule tiled `x f32[2][0] · w f32[0][3]` and the JIT crashed with
/// SIGSEGV; the schedule now leaves ops with an empty loop alone. The result
/// is zeros, as on the interpreter.
#[test]
fn matmul_over_empty_axis_cpu() {
    let source = "def main(a: f32[2][0], b: f32[0][3]) -> f32[2][3] {\n  r = dot a, [1], [], b, [0], []\n  return r\n}\n";
    let options = CompileOptions {
        target: Target::Cpu,
        ..Default::default()
    };
    let program =
        tensorc::compile_str("known_f4/matmul_empty.nxir", source, &options).expect("compiles");
    let inputs = [t(F32, &[2, 0], &[]), t(F32, &[0, 3], &[])];
    let got = program
        .entry(Some("main"))
        .and_then(|f| f.call(&inputs))
        .expect("runs");
    compare(&got[0], &t(F32, &[2, 3], &[0.; 6]), 0.0).expect("zeros");
}

fn run(target: Target) {
    let mut failures = Vec::new();
    for (name, body, inputs, expected) in table() {
        let source = format!("def main{body}\n");
        let file = format!("known_f4/{name}.nxir");
        let program = match tensorc::compile_str(
            &file,
            &source,
            &CompileOptions {
                target,
                ..Default::default()
            },
        ) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: compile failed:\n{}", e.render()));
                continue;
            }
        };
        match program.entry(Some("main")).and_then(|f| f.call(&inputs)) {
            Err(e) => failures.push(format!("{name}: run failed: {}", e.render())),
            Ok(got) if got.len() != 1 => {
                failures.push(format!("{name}: {} results, expected 1", got.len()))
            }
            Ok(got) => {
                // Thirds are not exact in binary: allow rounding in the last places.
                if let Err(msg) = compare(&got[0], &expected, 1e-12) {
                    failures.push(format!(
                        "{name}: {msg}\n  got {:?}\n  expected {expected:?}",
                        got[0]
                    ));
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
fn known_f4_interp() {
    run(Target::Interp);
}

#[test]
fn known_f4_cpu() {
    run(Target::Cpu);
}

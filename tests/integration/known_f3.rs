//! Known answers for the scan, sort and indexing ops (issue 3, family F3),
//! worked out by hand from the examples in Nx's documentation (`Nx.sort`,
//! `Nx.argsort`, `Nx.top_k`, `Nx.take`, `Nx.gather`, `Nx.put_slice`, …) and
//! spec §4.3/§4.5. Each program runs on the interpreter and on the CPU JIT,
//! so a mistake both share still shows up here.

use tensorc::{CompileOptions, DType, Scalar, Target, Tensor, TensorType};

use crate::harness::compare;

use DType::*;

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

pub(crate) fn t(dtype: DType, shape: &[usize], vals: &[f64]) -> Tensor {
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

/// (name, body of `def main`, inputs, expected results).
type Case = (&'static str, &'static str, Vec<Tensor>, Vec<Tensor>);

fn table() -> Vec<Case> {
    vec![
        // Nx.cumulative_sum([1, 2, 3, 4]) = [1, 3, 6, 10]
        (
            "cumulative_sum",
            "(x: s32[4]) -> s32[4] {\n  r = cumulative_sum x\n  return r\n}",
            vec![t(S32, &[4], &[1.0, 2.0, 3.0, 4.0])],
            vec![t(S32, &[4], &[1.0, 3.0, 6.0, 10.0])],
        ),
        // Nx docs, axis 0 of [[2,3,1],[1,3,2],[2,1,3]]: [[2,3,1],[3,6,3],[5,7,6]]
        (
            "cumulative_sum_axis0",
            "(x: s32[3][3]) -> s32[3][3] {\n  r = cumulative_sum x, axis: 0\n  return r\n}",
            vec![t(S32, &[3, 3], &[2.0, 3.0, 1.0, 1.0, 3.0, 2.0, 2.0, 1.0, 3.0])],
            vec![t(S32, &[3, 3], &[2.0, 3.0, 1.0, 3.0, 6.0, 3.0, 5.0, 7.0, 6.0])],
        ),
        // reverse: sums from the end of each column: [[5,7,6],[3,4,5],[2,1,3]]
        (
            "cumulative_sum_reverse",
            "(x: s32[3][3]) -> s32[3][3] {\n  r = cumulative_sum x, axis: 0, reverse: true\n  return r\n}",
            vec![t(S32, &[3, 3], &[2.0, 3.0, 1.0, 1.0, 3.0, 2.0, 2.0, 1.0, 3.0])],
            vec![t(S32, &[3, 3], &[5.0, 7.0, 6.0, 3.0, 4.0, 5.0, 2.0, 1.0, 3.0])],
        ),
        // u8 keeps its type and wraps: 200, 200+100=300-256=44
        (
            "cumulative_sum_u8_wraps",
            "(x: u8[2]) -> u8[2] {\n  r = cumulative_sum x\n  return r\n}",
            vec![t(U8, &[2], &[200.0, 100.0])],
            vec![t(U8, &[2], &[200.0, 44.0])],
        ),
        (
            "cumulative_product",
            "(x: f32[4]) -> f32[4] {\n  r = cumulative_product x\n  return r\n}",
            vec![t(F32, &[4], &[1.0, 2.0, 3.0, 4.0])],
            vec![t(F32, &[4], &[1.0, 2.0, 6.0, 24.0])],
        ),
        (
            "cumulative_max",
            "(x: s32[4]) -> s32[4] {\n  r = cumulative_max x\n  return r\n}",
            vec![t(S32, &[4], &[3.0, 4.0, 2.0, 1.0])],
            vec![t(S32, &[4], &[3.0, 4.0, 4.0, 4.0])],
        ),
        (
            "cumulative_min_reverse",
            "(x: s32[4]) -> s32[4] {\n  r = cumulative_min x, reverse: true\n  return r\n}",
            vec![t(S32, &[4], &[3.0, 4.0, 2.0, 1.0])],
            vec![t(S32, &[4], &[1.0, 1.0, 1.0, 1.0])],
        ),
        // max propagates NaN (spec §4.2), so once NaN is seen it stays
        (
            "cumulative_max_nan",
            "(x: f32[3]) -> f32[3] {\n  r = cumulative_max x\n  return r\n}",
            vec![t(F32, &[3], &[1.0, NAN, 5.0])],
            vec![t(F32, &[3], &[1.0, NAN, NAN])],
        ),
        // Nx.sort docs: [16, 23, 42, 4, 8, 15]
        (
            "sort",
            "(x: s32[6]) -> s32[6] {\n  r = sort x\n  return r\n}",
            vec![t(S32, &[6], &[16.0, 23.0, 42.0, 4.0, 8.0, 15.0])],
            vec![t(S32, &[6], &[4.0, 8.0, 15.0, 16.0, 23.0, 42.0])],
        ),
        (
            "sort_desc",
            "(x: s32[6]) -> s32[6] {\n  r = sort x, direction: :desc\n  return r\n}",
            vec![t(S32, &[6], &[16.0, 23.0, 42.0, 4.0, 8.0, 15.0])],
            vec![t(S32, &[6], &[42.0, 23.0, 16.0, 15.0, 8.0, 4.0])],
        ),
        // Nx.sort docs: NaN sorts above everything
        (
            "sort_nan_asc",
            "(x: f32[4]) -> f32[4] {\n  r = sort x\n  return r\n}",
            vec![t(F32, &[4], &[NAN, -INF, 0.0, INF])],
            vec![t(F32, &[4], &[-INF, 0.0, INF, NAN])],
        ),
        (
            "sort_nan_desc",
            "(x: f32[4]) -> f32[4] {\n  r = sort x, direction: :desc\n  return r\n}",
            vec![t(F32, &[4], &[NAN, -INF, 0.0, INF])],
            vec![t(F32, &[4], &[NAN, INF, 0.0, -INF])],
        ),
        // rows sorted independently along axis 1
        (
            "sort_rows",
            "(x: f64[2][3]) -> f64[2][3] {\n  r = sort x, axis: 1\n  return r\n}",
            vec![t(F64, &[2, 3], &[3.0, 1.0, 2.0, -1.0, -3.0, -2.0])],
            vec![t(F64, &[2, 3], &[1.0, 2.0, 3.0, -3.0, -2.0, -1.0])],
        ),
        // Nx.argsort docs: [16, 23, 42, 4, 8, 15] -> [3, 4, 5, 0, 1, 2]; desc [2, 1, 0, 5, 4, 3]
        (
            "argsort",
            "(x: s32[6]) -> s32[6] {\n  i = argsort x\n  return i\n}",
            vec![t(S32, &[6], &[16.0, 23.0, 42.0, 4.0, 8.0, 15.0])],
            vec![t(S32, &[6], &[3.0, 4.0, 5.0, 0.0, 1.0, 2.0])],
        ),
        (
            "argsort_desc",
            "(x: s32[6]) -> s32[6] {\n  i = argsort x, direction: :desc\n  return i\n}",
            vec![t(S32, &[6], &[16.0, 23.0, 42.0, 4.0, 8.0, 15.0])],
            vec![t(S32, &[6], &[2.0, 1.0, 0.0, 5.0, 4.0, 3.0])],
        ),
        // stable: equal keys keep their input order in both directions
        (
            "argsort_stable",
            "(x: u8[4]) -> {s32[4], s32[4]} {\n  a = argsort x\n  d = argsort x, direction: :desc\n  return {a, d}\n}",
            vec![t(U8, &[4], &[1.0, 0.0, 1.0, 0.0])],
            vec![t(S32, &[4], &[1.0, 3.0, 0.0, 2.0]), t(S32, &[4], &[0.0, 2.0, 1.0, 3.0])],
        ),
        // -0.0 equals 0.0, so stability keeps them in input order
        (
            "argsort_signed_zero",
            "(x: f32[3]) -> s64[3] {\n  i = argsort x  s64[3]\n  return i\n}",
            vec![t(F32, &[3], &[0.0, -0.0, -1.0])],
            vec![t(S64, &[3], &[2.0, 0.0, 1.0])],
        ),
        // Nx.top_k docs: [1, 3, 4, 2, 7], k: 3 -> {[7, 4, 3], [4, 2, 1]}
        (
            "top_k",
            "(x: f32[5]) -> {f32[3], s32[3]} {\n  r = top_k x, k: 3\n  return r\n}",
            vec![t(F32, &[5], &[1.0, 3.0, 4.0, 2.0, 7.0])],
            vec![t(F32, &[3], &[7.0, 4.0, 3.0]), t(S32, &[3], &[4.0, 2.0, 1.0])],
        ),
        // Nx.take docs: take([[1, 2], [3, 4]], [1, 0, 1]) -> rows 1, 0, 1
        (
            "take",
            "(x: s32[2][2], i: s32[3]) -> s32[3][2] {\n  r = take x, i\n  return r\n}",
            vec![t(S32, &[2, 2], &[1.0, 2.0, 3.0, 4.0]), t(S32, &[3], &[1.0, 0.0, 1.0])],
            vec![t(S32, &[3, 2], &[3.0, 4.0, 1.0, 2.0, 3.0, 4.0])],
        ),
        // out-of-range indices clamp: 5 -> 1, -1 -> 0 (spec §4.3)
        (
            "take_clamped",
            "(x: s32[2][2], i: s8[2]) -> s32[2][2] {\n  r = take x, i, axis: 1\n  return r\n}",
            vec![t(S32, &[2, 2], &[1.0, 2.0, 3.0, 4.0]), t(S8, &[2], &[5.0, -1.0])],
            vec![t(S32, &[2, 2], &[2.0, 1.0, 4.0, 3.0])],
        ),
        // Nx.take_along_axis docs
        (
            "take_along_axis",
            "(x: s32[2][3], i: s32[2][6]) -> s32[2][6] {\n  r = take_along_axis x, i, axis: 1\n  return r\n}",
            vec![
                t(S32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                t(S32, &[2, 6], &[0.0, 0.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 0.0, 0.0]),
            ],
            vec![t(S32, &[2, 6], &[1.0, 1.0, 3.0, 3.0, 2.0, 2.0, 6.0, 6.0, 5.0, 5.0, 4.0, 4.0])],
        ),
        // Nx.gather docs: gather([[1, 2], [3, 4]], [[1, 1], [0, 1], [1, 0]]) -> [4, 2, 3]
        (
            "gather",
            "(x: s32[2][2], i: s32[3][2]) -> s32[3] {\n  r = gather x, i\n  return r\n}",
            vec![t(S32, &[2, 2], &[1.0, 2.0, 3.0, 4.0]), t(S32, &[3, 2], &[1.0, 1.0, 0.0, 1.0, 1.0, 0.0])],
            vec![t(S32, &[3], &[4.0, 2.0, 3.0])],
        ),
        // Nx.gather docs with axes: [1] on [[1, 2, 3], [4, 5, 6]], indices [[1], [0], [2], [9]] (9 clamps to 2)
        (
            "gather_axes",
            "(x: s32[2][3], i: s32[4][1]) -> s32[4][2] {\n  r = gather x, i, axes: [1]\n  return r\n}",
            vec![t(S32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), t(S32, &[4, 1], &[1.0, 0.0, 2.0, 9.0])],
            vec![t(S32, &[4, 2], &[2.0, 5.0, 1.0, 4.0, 3.0, 6.0, 3.0, 6.0])],
        ),
        // Nx.put_slice docs: put [[7, 8], [9, 10]] at [1, 1] of [[1, 2, 3], [4, 5, 6]]: start clamps to [0, 1]
        (
            "put_slice_clamped",
            "(x: s32[2][3], y: s32[2][2]) -> s32[2][3] {\n  r = put_slice x, [1, 1], y\n  return r\n}",
            vec![t(S32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), t(S32, &[2, 2], &[7.0, 8.0, 9.0, 10.0])],
            vec![t(S32, &[2, 3], &[1.0, 7.0, 8.0, 4.0, 9.0, 10.0])],
        ),
        // Nx.put_slice docs with tensor starts [0, 1] and a float slice: the result is f32
        (
            "put_slice_dynamic",
            "(x: s32[2][3], y: f32[1][2], a: s32, b: s32) -> f32[2][3] {\n  r = put_slice x, [a, b], y\n  return r\n}",
            vec![
                t(S32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                t(F32, &[1, 2], &[10.0, 11.0]),
                t(S32, &[], &[0.0]),
                t(S32, &[], &[1.0]),
            ],
            vec![t(F32, &[2, 3], &[1.0, 10.0, 11.0, 4.0, 5.0, 6.0])],
        ),
        // slice with a tensor start: start 4 with length 3 of 6 clamps to 3 -> [4, 5, 6]
        (
            "slice_dynamic",
            "(x: s32[6], s: u8) -> s32[3] {\n  r = slice x, [s], [3]\n  return r\n}",
            vec![t(S32, &[6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), t(U8, &[], &[4.0])],
            vec![t(S32, &[3], &[4.0, 5.0, 6.0])],
        ),
        // Nx.indexed_add docs: iota({1, 2, 3}) with five scalar updates, two at [0, 0, 0]
        (
            "indexed_add",
            "(t: s32[1][2][3], i: s32[5][3], u: s32[5]) -> s32[1][2][3] {\n  r = indexed_add t, i, u\n  return r\n}",
            vec![
                t(S32, &[1, 2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
                t(S32, &[5, 3], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 1.0, 2.0]),
                t(S32, &[5], &[1.0, 3.0, 1.0, -2.0, 5.0]),
            ],
            vec![t(S32, &[1, 2, 3], &[2.0, 1.0, 0.0, 3.0, 7.0, 10.0])],
        ),
        // Nx.indexed_add docs, type promotion: [1.0] plus s32 updates [1, 1] at [0] twice is f32 [3.0]
        (
            "indexed_add_promotes",
            "(t: f32[1], i: s32[2][1], u: s32[2]) -> f32[1] {\n  r = indexed_add t, i, u\n  return r\n}",
            vec![t(F32, &[1], &[1.0]), t(S32, &[2, 1], &[0.0, 0.0]), t(S32, &[2], &[1.0, 1.0])],
            vec![t(F32, &[1], &[3.0])],
        ),
        // Nx.indexed_add docs shorthand: indexed_add([[1], [2]], [1, 0], 8) = [[1], [10]]
        (
            "indexed_add_shorthand",
            "(t: s32[2][1], i: s32[2]) -> s32[2][1] {\n  r = indexed_add t, i, 8\n  return r\n}",
            vec![t(S32, &[2, 1], &[1.0, 2.0]), t(S32, &[2], &[1.0, 0.0])],
            vec![t(S32, &[2, 1], &[1.0, 10.0])],
        ),
        // Nx.indexed_put docs, `:axes`: iota({1, 2, 3}), indices [[0, 0], [0, 2]] on axes [0, 2],
        // updates [[0, 30], [20, 50]] fill columns 0 and 2 -> [[0, 1, 20], [30, 4, 50]]
        (
            "indexed_put_axes",
            "(t: s32[1][2][3], i: s32[2][2], u: s32[2][2]) -> s32[1][2][3] {\n  r = indexed_put t, i, u, axes: [0, 2]\n  return r\n}",
            vec![
                t(S32, &[1, 2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
                t(S32, &[2, 2], &[0.0, 0.0, 0.0, 2.0]),
                t(S32, &[2, 2], &[0.0, 30.0, 20.0, 50.0]),
            ],
            vec![t(S32, &[1, 2, 3], &[0.0, 1.0, 20.0, 30.0, 4.0, 50.0])],
        ),
        // Nx.indexed_put docs, non-scalars: iota({1, 3, 2}), rows [0, 0] and [0, 2] replaced
        (
            "indexed_put_rows_of_iota",
            "(t: s32[1][3][2], i: s32[2][2], u: s32[2][2]) -> s32[1][3][2] {\n  r = indexed_put t, i, u\n  return r\n}",
            vec![
                t(S32, &[1, 3, 2], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
                t(S32, &[2, 2], &[0.0, 0.0, 0.0, 2.0]),
                t(S32, &[2, 2], &[0.0, 10.0, 40.0, 50.0]),
            ],
            vec![t(S32, &[1, 3, 2], &[0.0, 10.0, 2.0, 3.0, 40.0, 50.0])],
        ),
        // Nx.indexed_put docs shorthand: indexed_put([[1], [2]], [1, 0], 10) = [[1], [10]]
        (
            "indexed_put_shorthand",
            "(t: s32[2][1], i: s32[2]) -> s32[2][1] {\n  r = indexed_put t, i, 10\n  return r\n}",
            vec![t(S32, &[2, 1], &[1.0, 2.0]), t(S32, &[2], &[1.0, 0.0])],
            vec![t(S32, &[2, 1], &[1.0, 10.0])],
        ),
        // indexed_put of rows on axis 0: row 1 of a zero [3][2] becomes [7, 8], row 2 [9, 10];
        // index -1 is out of range and skipped
        (
            "indexed_put_rows",
            "(t: s32[3][2], i: s32[3][1], u: s32[3][2]) -> s32[3][2] {\n  r = indexed_put t, i, u\n  return r\n}",
            vec![
                t(S32, &[3, 2], &[0.0; 6]),
                t(S32, &[3, 1], &[1.0, 2.0, -1.0]),
                t(S32, &[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]),
            ],
            vec![t(S32, &[3, 2], &[0.0, 0.0, 7.0, 8.0, 9.0, 10.0])],
        ),
        // Nx.window_scatter_max docs: source [[2, 6], [3, 1]] over 2x3 windows with strides [2, 2]
        (
            "window_scatter_max",
            "(x: s32[4][5], s: s32[2][2]) -> s32[4][5] {\n  r = window_scatter_max x, s, 0, {2, 3}, strides: [2, 2]\n  return r\n}",
            vec![
                t(S32, &[4, 5], &[7.0, 2.0, 5.0, 3.0, 8.0, 3.0, 8.0, 9.0, 3.0, 4.0, 1.0, 5.0, 7.0, 5.0, 6.0, 0.0, 6.0, 2.0, 10.0, 2.0]),
                t(S32, &[2, 2], &[2.0, 6.0, 3.0, 1.0]),
            ],
            vec![t(
                S32,
                &[4, 5],
                &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 8.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            )],
        ),
        // min over windows [3, 1] and [1, 1] (stride 2 on [3, 1, 1, 1] with padding {0, 0}):
        // the 1 at 1 gets 5; ties pick the last, so the second window's 1 at 3 gets 7
        (
            "window_scatter_min_ties",
            "(x: f32[4], s: f32[2]) -> f32[4] {\n  r = window_scatter_min x, s, 0.5, {2}, strides: [2]\n  return r\n}",
            vec![t(F32, &[4], &[3.0, 1.0, 1.0, 1.0]), t(F32, &[2], &[5.0, 7.0])],
            vec![t(F32, &[4], &[0.5, 5.5, 0.5, 7.5])],
        ),
    ]
}

fn run(target: Target) {
    let mut failures = Vec::new();
    for (name, body, inputs, expected) in table() {
        let source = format!("def main{body}\n");
        let file = format!("known_f3/{name}.nxir");
        let program = match tensorc::compile_str(&file, &source, &CompileOptions { target, ..Default::default() }) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: compile failed:\n{}", e.render()));
                continue;
            }
        };
        match program.entry(Some("main")).and_then(|f| f.call(&inputs)) {
            Err(e) => failures.push(format!("{name}: run failed: {}", e.render())),
            Ok(got) if got.len() != expected.len() => {
                failures.push(format!("{name}: {} results, expected {}", got.len(), expected.len()))
            }
            Ok(got) => {
                for (i, (g, w)) in got.iter().zip(&expected).enumerate() {
                    if let Err(msg) = compare(g, w, 0.0) {
                        failures.push(format!("{name} result {i}: {msg}\n  got {g:?}\n  expected {w:?}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{target:?}: {} known answers wrong:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn known_f3_interp() {
    run(Target::Interp);
}

#[test]
fn known_f3_cpu() {
    run(Target::Cpu);
}

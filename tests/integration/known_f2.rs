//! Known answers for convolution and window reductions (issue 3, family F2),
//! taken from the examples in Nx's documentation of `Nx.conv`,
//! `Nx.window_sum`, `Nx.window_max` and `Nx.window_min` or worked out by hand
//! from the spec; each runs on the interpreter and the CPU JIT. Also: the
//! shared NHWC convolution benchmark (w09) and the CNN example in `examples/`
//! run on CPU and agree with the interpreter.

use std::path::PathBuf;

use tensorc::{CompileOptions, DType, Scalar, Target, Tensor, TensorType};

use crate::harness::{EdgeSet, Settings, compare, differential};

fn ints(dtype: DType, shape: &[usize], vals: &[i64]) -> Tensor {
    let data: Vec<Scalar> = vals.iter().map(|&v| Scalar::I(v)).collect();
    Tensor::from_scalars(TensorType::new(dtype, shape.to_vec()), &data).expect("sizes match")
}

fn floats(dtype: DType, shape: &[usize], vals: &[f64]) -> Tensor {
    let data: Vec<Scalar> = vals.iter().map(|&v| Scalar::F(v)).collect();
    Tensor::from_scalars(TensorType::new(dtype, shape.to_vec()), &data).expect("sizes match")
}

const NEG_INF: f64 = f64::NEG_INFINITY;
const MIN32: i64 = i32::MIN as i64;

struct Case {
    name: &'static str,
    source: &'static str,
    inputs: Vec<Tensor>,
    expected: Tensor,
}

fn cases() -> Vec<Case> {
    use DType::*;
    let iota9: Vec<i64> = (0..9).collect();
    let doc_t = [4, 2, 1, 3, 4, 2, 1, 7, 1, 2, 5, 7, 1, 8, 9, 2];
    vec![
        // Nx.conv doc: iota({1,1,3,3}) with iota({4,1,1,1}), strides [1, 1]:
        // output channel f is f times the input; integer operands give f32.
        Case {
            name: "conv_doc_1x1",
            source: "def main(x: s32[1][1][3][3], k: s32[4][1][1][1]) -> f32[1][4][3][3] {\n  y = conv x, k, strides: [1, 1]\n  return y\n}\n",
            inputs: vec![ints(S32, &[1, 1, 3, 3], &iota9), ints(S32, &[4, 1, 1, 1], &[0, 1, 2, 3])],
            expected: floats(
                F32,
                &[1, 4, 3, 3],
                &(0..4).flat_map(|f| (0..9).map(move |v| (f * v) as f64)).collect::<Vec<_>>(),
            ),
        },
        // Nx.conv doc: iota({1,1,3,3}) with iota({4,1,2,1}), strides: 2,
        // padding: :same, kernel_dilation: [2, 1] gives f32[1][4][2][2].
        Case {
            name: "conv_doc_same_dilated",
            source: "def main(x: s32[1][1][3][3], k: s32[4][1][2][1]) -> f32[1][4][2][2] {\n  y = conv x, k, strides: 2, padding: :same, kernel_dilation: [2, 1]\n  return y\n}\n",
            inputs: vec![ints(S32, &[1, 1, 3, 3], &iota9), ints(S32, &[4, 1, 2, 1], &(0..8).collect::<Vec<_>>())],
            expected: floats(
                F32,
                &[1, 4, 2, 2],
                &[3.0, 5.0, 0.0, 0.0, 9.0, 15.0, 6.0, 10.0, 15.0, 25.0, 12.0, 20.0, 21.0, 35.0, 18.0, 30.0],
            ),
        },
        // Hand-derived: 1-D, input [1, 2, 3, 4], kernel [1, -1], input_dilation 2
        // reads [1, 0, 2, 0, 3, 0, 4]: differences 1, -2, 2, -3, 3, -4.
        Case {
            name: "conv_input_dilation",
            source: "def main(x: f32[1][1][4], k: f32[1][1][2]) -> f32[1][1][6] {\n  y = conv x, k, input_dilation: 2\n  return y\n}\n",
            inputs: vec![floats(F32, &[1, 1, 4], &[1.0, 2.0, 3.0, 4.0]), floats(F32, &[1, 1, 2], &[1.0, -1.0])],
            expected: floats(F32, &[1, 1, 6], &[1.0, -2.0, 2.0, -3.0, 3.0, -4.0]),
        },
        // Hand-derived grouped conv: two groups of one channel; channel 0 = [1, 2, 3],
        // channel 1 = [10, 20, 30]; group 0 kernel [1, 1] (sums), group 1 kernel [1, -1].
        Case {
            name: "conv_feature_groups",
            source: "def main(x: f32[1][2][3], k: f32[2][1][2]) -> f32[1][2][2] {\n  y = conv x, k, feature_group_size: 2\n  return y\n}\n",
            inputs: vec![
                floats(F32, &[1, 2, 3], &[1.0, 2.0, 3.0, 10.0, 20.0, 30.0]),
                floats(F32, &[2, 1, 2], &[1.0, 1.0, 1.0, -1.0]),
            ],
            expected: floats(F32, &[1, 2, 2], &[3.0, 5.0, -10.0, -10.0]),
        },
        // Hand-derived batch groups: batches [1, 2] and [3, 4] (one channel, 1-D of
        // length 2); kernel 2 output features of one tap: feature 0 (weight 1) reads
        // batch group 0 = batch 0, feature 1 (weight 10) reads batch group 1 = batch 1.
        Case {
            name: "conv_batch_groups",
            source: "def main(x: f32[2][1][2], k: f32[2][1][1]) -> f32[1][2][2] {\n  y = conv x, k, batch_group_size: 2\n  return y\n}\n",
            inputs: vec![floats(F32, &[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]), floats(F32, &[2, 1, 1], &[1.0, 10.0])],
            expected: floats(F32, &[1, 2, 2], &[1.0, 2.0, 30.0, 40.0]),
        },
        // Hand-derived NHWC/HWIO: a 2x2 image with 2 channels (pixel p has
        // channels [p, 10p]), a 1x1 kernel mapping channels to out = c0 + c1.
        Case {
            name: "conv_nhwc",
            source: "def main(x: f32[1][2][2][2], k: f32[1][1][2][1]) -> f32[1][2][2][1] {\n  y = conv x, k, input_permutation: [0, 3, 1, 2], kernel_permutation: [3, 2, 0, 1], output_permutation: [0, 3, 1, 2]\n  return y\n}\n",
            inputs: vec![
                floats(F32, &[1, 2, 2, 2], &[1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0]),
                floats(F32, &[1, 1, 2, 1], &[1.0, 1.0]),
            ],
            expected: floats(F32, &[1, 2, 2, 1], &[11.0, 22.0, 33.0, 44.0]),
        },
        // Hand-derived: negative low padding crops x[0]; the high pad adds a zero:
        // [2, 3, 4, 0] with kernel [1, 1] gives 5, 7, 4.
        Case {
            name: "conv_negative_padding",
            source: "def main(x: f32[1][1][4], k: f32[1][1][2]) -> f32[1][1][3] {\n  y = conv x, k, padding: [{-1, 1}]\n  return y\n}\n",
            inputs: vec![floats(F32, &[1, 1, 4], &[1.0, 2.0, 3.0, 4.0]), floats(F32, &[1, 1, 2], &[1.0, 1.0])],
            expected: floats(F32, &[1, 1, 3], &[5.0, 7.0, 4.0]),
        },
        // Hand-derived 3-D: a 2x2x2 kernel of ones over 1..8 sums to 36.
        Case {
            name: "conv_3d_sum",
            source: "def main(x: f64[1][1][2][2][2], k: f64[1][1][2][2][2]) -> f64[1][1][1][1][1] {\n  y = conv x, k\n  return y\n}\n",
            inputs: vec![
                floats(F64, &[1, 1, 2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
                floats(F64, &[1, 1, 2, 2, 2], &[1.0; 8]),
            ],
            expected: floats(F64, &[1, 1, 1, 1, 1], &[36.0]),
        },
        // Nx.window_sum doc: strides [2, 1, 1], padding [{2, 1}, {3, 1}, {1, 0}],
        // window_dilations [1, 2, 2], window {2, 1, 2}.
        Case {
            name: "window_sum_doc",
            source: "def main(t: s32[2][2][4]) -> s32[2][6][3] {\n  y = window_sum t, {2, 1, 2}, strides: [2, 1, 1], padding: [{2, 1}, {3, 1}, {1, 0}], window_dilations: [1, 2, 2]\n  return y\n}\n",
            inputs: vec![ints(S32, &[2, 2, 4], &doc_t)],
            expected: ints(S32, &[2, 6, 3], &{
                let mut v = vec![0; 36];
                v[18 + 9..18 + 15].copy_from_slice(&[4, 11, 14, 10, 15, 19]);
                v
            }),
        },
        // Nx.window_max doc: padding with the s32 minimum.
        Case {
            name: "window_max_doc_int",
            source: "def main(t: s32[2][2][3]) -> s32[2][2][2] {\n  y = window_max t, {2, 2, 1}, strides: [1, 2, 3], padding: [{0, 1}, {2, 0}, {1, 1}]\n  return y\n}\n",
            inputs: vec![ints(S32, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6])],
            expected: ints(S32, &[2, 2, 2], &[MIN32, MIN32, MIN32, 6, MIN32, MIN32, MIN32, 6]),
        },
        // Nx.window_max doc: float padding is -inf.
        Case {
            name: "window_max_doc_float",
            source: "def main(t: f32[2][2][3]) -> f32[2][2][5] {\n  y = window_max t, {2, 1, 1}, strides: [2, 1, 1], padding: [{1, 1}, {0, 0}, {1, 1}]\n  return y\n}\n",
            inputs: vec![floats(F32, &[2, 2, 3], &[4.0, 2.0, 3.0, 2.0, 5.0, 6.5, 1.2, 2.2, 3.2, 4.0, 5.0, 6.2])],
            expected: floats(
                F32,
                &[2, 2, 5],
                &[
                    NEG_INF, 4.0, 2.0, 3.0, NEG_INF, NEG_INF, 2.0, 5.0, 6.5, NEG_INF, NEG_INF, 1.2, 2.2, 3.2, NEG_INF,
                    NEG_INF, 4.0, 5.0, 6.2, NEG_INF,
                ],
            ),
        },
        // Nx.window_max doc: window dilations with :valid padding.
        Case {
            name: "window_max_doc_dilated",
            source: "def main(t: s32[2][2][4]) -> s32[1][2][2] {\n  y = window_max t, {1, 1, 2}, strides: [2, 1, 1], padding: :valid, window_dilations: [1, 2, 2]\n  return y\n}\n",
            inputs: vec![ints(S32, &[2, 2, 4], &doc_t)],
            expected: ints(S32, &[1, 2, 2], &[4, 3, 4, 7]),
        },
        // Nx.window_min doc: window {1, 2, 1} over [[1,2,3],[4,5,6]] twice.
        Case {
            name: "window_min_doc",
            source: "def main(t: s32[2][2][3]) -> s32[2][1][3] {\n  y = window_min t, {1, 2, 1}\n  return y\n}\n",
            inputs: vec![ints(S32, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6])],
            expected: ints(S32, &[2, 1, 3], &[1, 2, 3, 1, 2, 3]),
        },
        // Hand-derived: products of neighbours with one padded 1 on each side.
        Case {
            name: "window_product_padded",
            source: "def main(t: s32[4]) -> s32[5] {\n  y = window_product t, {2}, padding: [{1, 1}]\n  return y\n}\n",
            inputs: vec![ints(S32, &[4], &[1, 2, 3, 4])],
            expected: ints(S32, &[5], &[1, 2, 6, 12, 4]),
        },
        // Hand-derived: :same for a window of 2 pads (0, 1), with +inf for min.
        Case {
            name: "window_min_same",
            source: "def main(t: f32[3]) -> f32[3] {\n  y = window_min t, {2}, padding: :same\n  return y\n}\n",
            inputs: vec![floats(F32, &[3], &[3.0, 1.0, 2.0])],
            expected: floats(F32, &[3], &[1.0, 1.0, 2.0]),
        },
        // Hand-derived: window_sum keeps the operand's dtype, so u8 sums wrap.
        Case {
            name: "window_sum_u8_wraps",
            source: "def main(t: u8[3]) -> u8[2] {\n  y = window_sum t, {2}\n  return y\n}\n",
            inputs: vec![ints(U8, &[3], &[200, 100, 1])],
            expected: ints(U8, &[2], &[44, 101]),
        },
        // Nx.window_reduce doc: max from the s32 minimum, {2, 2}, :same.
        Case {
            name: "window_reduce_doc_max",
            source: "def main(t: s32[3][3]) -> s32[3][3] {\n  y = window_reduce t, -2147483648, {2, 2}, padding: :same, strides: [1, 1], fn(acc, x) {\n    m = max x, acc\n    return m\n  }\n  return y\n}\n",
            inputs: vec![ints(S32, &[3, 3], &(1..10).collect::<Vec<_>>())],
            expected: ints(S32, &[3, 3], &[5, 6, 6, 8, 9, 9, 8, 9, 9]),
        },
        // Nx.window_reduce doc: sums of {1, 2} windows with :same from 0.
        Case {
            name: "window_reduce_doc_add",
            source: "def main(t: s32[2][3]) -> s32[2][3] {\n  y = window_reduce t, 0, {1, 2}, padding: :same, strides: [1, 1], &Nx.add/2\n  return y\n}\n",
            inputs: vec![ints(S32, &[2, 3], &[1, 2, 3, 4, 5, 6])],
            expected: ints(S32, &[2, 3], &[3, 5, 3, 9, 11, 6]),
        },
        // Nx.window_reduce doc: strides [2, 1, 1], window_dilations [1, 1, 2], :valid.
        Case {
            name: "window_reduce_doc_dilated",
            source: "def main(t: s32[2][2][4]) -> s32[1][2][2] {\n  y = window_reduce t, 0, {1, 1, 2}, padding: :valid, strides: [2, 1, 1], window_dilations: [1, 1, 2], fn(acc, x) {\n    r = add x, acc\n    return r\n  }\n  return y\n}\n",
            inputs: vec![ints(S32, &[2, 2, 4], &doc_t)],
            expected: ints(S32, &[1, 2, 2], &[5, 5, 5, 9]),
        },
        // Hand-derived: padded positions hold init (10) and are added like elements:
        // windows [pad, 1], [1, 2], [2, 3], [3, pad] from 10.
        Case {
            name: "window_reduce_pads_with_init",
            source: "def main(t: s32[3]) -> s32[4] {\n  y = window_reduce t, 10, {2}, padding: [{1, 1}], &Nx.add/2\n  return y\n}\n",
            inputs: vec![ints(S32, &[3], &[1, 2, 3])],
            expected: ints(S32, &[4], &[21, 13, 15, 23]),
        },
    ]
}

fn run_cases(target: Target) {
    let mut failures = Vec::new();
    for case in cases() {
        let file = format!("known_f2/{}.nxir", case.name);
        let program = match tensorc::compile_str(&file, case.source, &CompileOptions { target, ..Default::default() }) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{}: compile failed:\n{}", case.name, e.render()));
                continue;
            }
        };
        match program.entry(Some("main")).and_then(|f| f.call(&case.inputs)) {
            Err(e) => failures.push(format!("{}: run failed: {}", case.name, e.render())),
            Ok(got) if got.len() != 1 => failures.push(format!("{}: {} results", case.name, got.len())),
            Ok(got) => {
                if let Err(msg) = compare(&got[0], &case.expected, 1e-6) {
                    failures.push(format!("{}: {msg}\n  got {:?}\n  expected {:?}", case.name, got[0], case.expected));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{target:?}: {} known answers wrong:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn known_f2_interp() {
    run_cases(Target::Interp);
}

#[test]
fn known_f2_cpu() {
    run_cases(Target::Cpu);
}

fn repo_file(rel: &str) -> (String, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (path.file_name().unwrap().to_string_lossy().into_owned(), src)
}

/// The shared benchmark w09 (NHWC input, HWIO kernel, :same) runs on CPU and
/// matches the interpreter (one random seed; 576 products per output).
#[test]
fn bench_w09_conv2d_cpu_matches_interp() {
    let (name, src) = repo_file("../../shared/bench/w09_conv2d.nxir");
    let settings = Settings { tolerance: 1e-4, inputs: EdgeSet::None, seeds: vec![0] };
    let failures = differential(&name, &src, &settings);
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
}

/// The NHWC/HWIO benchmark lowers to one named channels-last convolution with
/// no transposes around it (what later tiling and vectorization look for).
#[test]
fn bench_w09_is_one_named_conv_without_transposes() {
    let (name, src) = repo_file("../../shared/bench/w09_conv2d.nxir");
    let mlir = crate::harness::emit_ok(&name, &src, tensorc::Stage::Linalg);
    assert_eq!(mlir.matches("linalg.conv_2d_nhwc_hwcf").count(), 1, "{mlir}");
    assert!(!mlir.contains("linalg.transpose") && !mlir.contains("linalg.generic"), "{mlir}");
}

/// `examples/cnn.nxir`: conv → relu → max-pool → reshape → dense → softmax,
/// end to end on CPU against the interpreter; the softmax rows sum to 1.
#[test]
fn cnn_example_cpu_matches_interp() {
    let (name, src) = repo_file("../examples/cnn.nxir");
    let settings = Settings { tolerance: 1e-4, inputs: EdgeSet::None, seeds: vec![0, 1] };
    let failures = differential(&name, &src, &settings);
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
    let p = tensorc::compile_str(&name, &src, &CompileOptions { target: Target::Cpu, ..Default::default() })
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let f = p.entry(None).unwrap_or_else(|e| panic!("{}", e.render()));
    let inputs: Vec<Tensor> = f
        .params()
        .iter()
        .enumerate()
        .map(|(i, (_, t))| tensorc_ir::random::random_tensor(t, 7, i as u64))
        .collect();
    let out = f.call(&inputs).unwrap_or_else(|e| panic!("{}", e.render()));
    let probs = &out[0];
    let classes = *probs.shape().last().unwrap();
    for row in 0..probs.len() / classes {
        let s: f64 = (0..classes).map(|c| probs.get(row * classes + c).as_f64()).sum();
        assert!((s - 1.0).abs() < 1e-5, "softmax row {row} sums to {s}");
    }
}

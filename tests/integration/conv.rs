//! Convolutions in every layout (issue 6): the frontend computes every 1-D
//! and 2-D convolution channels-last (`crates/tensorc-frontend/src/conv.rs`,
//! transposes in and out where the tensors' layouts differ) and the kernel
//! schedule (`passes/tensorc-passes/src/conv_schedule.rs`) tiles it into
//! 8 columns × 32 channels, input channels one at a time.
//!
//! - interpreter-vs-CPU runs of each layout family (Nx's default NCHW/OIHW,
//!   NHWC/HWIO, mixed input/kernel/output permutations, odd permutations,
//!   1-D), each on odd sizes against the tiles (channels and columns one
//!   tile plus a remainder, below one tile), strides 1 and 2, padding
//!   same/valid/explicit, batch 1 to 8, kernels 1×1 to 7×7, 3 input
//!   channels (a first layer), dilations, depthwise ones and grouped ones
//!   (one scheduled convolution per group), f64, one or two output
//!   channels past a multiple of 16 (computed apart as depthwise
//!   convolutions);
//! - the kernel schedule on a small convolution (snapshot): tiles of 8×32
//!   and their remainders, each a loop over input channels carrying its
//!   accumulator in registers (`vector<8x32xf32>` iter_args);
//! - 2-D convolutions with at most 12 output channels and 16 output
//!   columns or more, computed channel-major (`channel_major` in the
//!   frontend): which ones are, interpreter-vs-CPU runs of them in every
//!   layout (column remainders of 16 + a rest and below 16, one output
//!   channel, 12, row stride 2, dilations), and the schedule's register
//!   tiles (snapshot).

use crate::harness::{EdgeSet, Settings, before_and_after, differential};
use tensorc::Stage;

/// Axis order of each operand: `None` is Nx's default (NCHW, OIHW, NCHW).
#[derive(Clone, Copy)]
struct Layout {
    input: Option<&'static [usize]>,
    kernel: Option<&'static [usize]>,
    output: Option<&'static [usize]>,
}

const NCHW: Layout = Layout { input: None, kernel: None, output: None };
const NHWC: Layout = Layout {
    input: Some(&[0, 3, 1, 2]),
    kernel: Some(&[3, 2, 0, 1]),
    output: Some(&[0, 3, 1, 2]),
};
/// NHWC input, OIHW kernel, NCHW output.
const NHWC_IN: Layout = Layout { input: Some(&[0, 3, 1, 2]), kernel: None, output: None };
/// NCHW input, HWIO kernel, NHWC output.
const NHWC_OUT: Layout = Layout { input: None, kernel: Some(&[3, 2, 0, 1]), output: Some(&[0, 3, 1, 2]) };
/// Every operand in an unusual order (batch and channels not outermost).
const ODD: Layout = Layout {
    input: Some(&[2, 1, 3, 0]),
    kernel: Some(&[3, 1, 2, 0]),
    output: Some(&[3, 2, 0, 1]),
};

/// The tensor's actual shape: logical axis `l` is its axis `perm[l]`.
fn actual(perm: Option<&[usize]>, logical: &[usize]) -> Vec<usize> {
    let Some(perm) = perm else { return logical.to_vec() };
    let mut out = vec![0; logical.len()];
    for (l, &a) in perm.iter().enumerate() {
        out[a] = logical[l];
    }
    out
}

fn dims(shape: &[usize]) -> String {
    shape.iter().map(|d| format!("[{d}]")).collect()
}

/// One 2-D convolution: batch `n`, `c` input channels, `h`×`w` input, `o`
/// output channels, a `k`×`k` kernel, `stride`, padding `(low, high)` per
/// spatial axis (written `:same` when `same`), `groups` feature groups.
struct Conv {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
    stride: usize,
    pad: [(usize, usize); 2],
    same: bool,
    groups: usize,
    dtype: &'static str,
}

impl Conv {
    fn new(n: usize, c: usize, h: usize, w: usize, o: usize, k: usize) -> Conv {
        Conv { n, c, h, w, o, k, stride: 1, pad: [(0, 0); 2], same: false, groups: 1, dtype: "f32" }
    }

    /// `:same` padding as the checker resolves it (low half rounded down).
    fn same(mut self) -> Conv {
        let lo = (self.k - 1) / 2;
        self.pad = [(lo, self.k - 1 - lo); 2];
        self.same = true;
        self
    }

    fn source(&self, l: Layout) -> String {
        let out = |x: usize, (lo, hi): (usize, usize)| (x + lo + hi - self.k) / self.stride + 1;
        let (ho, wo) = (out(self.h, self.pad[0]), out(self.w, self.pad[1]));
        let x = actual(l.input, &[self.n, self.c, self.h, self.w]);
        let kt = actual(l.kernel, &[self.o, self.c / self.groups, self.k, self.k]);
        let y = actual(l.output, &[self.n, self.o, ho, wo]);
        let padding = if self.same {
            ":same".to_string()
        } else {
            format!("[{{{}, {}}}, {{{}, {}}}]", self.pad[0].0, self.pad[0].1, self.pad[1].0, self.pad[1].1)
        };
        let mut opts = format!("strides: [{0}, {0}], padding: {padding}", self.stride);
        if self.groups > 1 {
            opts += &format!(", feature_group_size: {}", self.groups);
        }
        for (name, perm) in [("input", l.input), ("kernel", l.kernel), ("output", l.output)] {
            if let Some(p) = perm {
                opts += &format!(", {name}_permutation: {p:?}");
            }
        }
        let d = self.dtype;
        format!(
            "def main(x: {d}{}, k: {d}{}) -> {d}{} {{\n  y = conv x, k, {opts}\n  return y\n}}\n",
            dims(&x),
            dims(&kt),
            dims(&y)
        )
    }
}

/// The shape families, each run in every layout.
fn shapes() -> Vec<(&'static str, Conv)> {
    let strided = |mut c: Conv| {
        c.stride = 2;
        c
    };
    let padded = |mut c: Conv, pad| {
        c.pad = pad;
        c
    };
    vec![
        // Channels one tile plus a remainder (37 = 32 + 5), columns one
        // tile plus a remainder (11 = 8 + 3).
        ("same_3x3", Conv::new(1, 5, 9, 11, 37, 3).same()),
        // Below one tile both ways; odd height.
        ("small_3x3", Conv::new(2, 4, 5, 7, 6, 3).same()),
        // Several channel tiles and a remainder of 1 (65 = 2·32 + 1), input
        // channels not a multiple of anything (19).
        ("wide_valid", Conv::new(1, 19, 6, 17, 65, 3)),
        // Stride 2, valid and explicit asymmetric padding.
        ("stride2_valid", strided(Conv::new(2, 6, 9, 13, 33, 3))),
        ("stride2_explicit", strided(padded(Conv::new(1, 3, 10, 9, 16, 3), [(1, 0), (2, 1)]))),
        // 1×1 (a matmul per pixel), 5×5, 7×7 stride 2 on 3 input channels
        // (a first layer), batch 8.
        ("one_by_one", Conv::new(3, 40, 4, 9, 35, 1)),
        // 1×1 with one image (padded first) and with 260 input channels.
        ("one_by_one_single_image", padded(Conv::new(1, 40, 5, 7, 35, 1), [(1, 0), (0, 2)])),
        ("one_by_one_wide", Conv::new(2, 260, 3, 5, 33, 1)),
        ("five_by_five", Conv::new(1, 7, 11, 10, 12, 5).same()),
        ("first_layer_7x7_s2", strided(padded(Conv::new(1, 3, 19, 17, 20, 7), [(3, 3), (3, 3)]))),
        ("batch8", Conv::new(8, 3, 6, 5, 9, 3).same()),
        // 16 + 3..15 channels past a multiple of 32 are computed as 32 with
        // a zero-padded filter, the result sliced (56 → 64, 24 → 32).
        ("padded_channels", Conv::new(1, 9, 4, 10, 56, 3)),
        ("narrow_padded_channels", strided(Conv::new(2, 5, 7, 9, 24, 3).same())),
        // One or two output channels past a multiple of 16 with 16 input
        // channels or more: each a depthwise convolution summed over the
        // input channels (17 = 16 + 1 strided and padded, 1 alone, 34 =
        // 32 + 2).
        ("one_channel_apart", strided(Conv::new(1, 16, 9, 11, 17, 3).same())),
        ("single_output_channel", Conv::new(2, 20, 7, 9, 1, 3).same()),
        ("two_channels_apart", Conv::new(1, 24, 6, 10, 34, 3)),
    ]
}

fn settings() -> Settings {
    Settings { tolerance: 1e-5, inputs: EdgeSet::Mild, seeds: vec![3] }
}

fn run_all(programs: impl IntoIterator<Item = (String, String)>) {
    let mut failures = Vec::new();
    for (name, source) in programs {
        for f in differential(&format!("{name}.nxir"), &source, &settings()) {
            failures.push(format!("{name}: {f}\n{source}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_layout_agrees_with_the_interpreter() {
    let layouts = [("nchw", NCHW), ("nhwc", NHWC), ("nhwc_in", NHWC_IN), ("nhwc_out", NHWC_OUT), ("odd", ODD)];
    let mut programs = Vec::new();
    for (lname, l) in layouts {
        for (sname, c) in shapes() {
            programs.push((format!("{lname}_{sname}"), c.source(l)));
        }
    }
    run_all(programs);
}

#[test]
fn dilated_grouped_depthwise_and_f64_convolutions_agree_with_the_interpreter() {
    let mut programs = Vec::new();
    for (lname, l) in [("nchw", NCHW), ("nhwc", NHWC)] {
        // Depthwise (one group per channel, 35 = 32 + 3 channels) and grouped.
        let mut dw = Conv::new(1, 35, 6, 11, 35, 3).same();
        dw.groups = 35;
        programs.push((format!("{lname}_depthwise"), dw.source(l)));
        // 24 channels: a depthwise tile split into 16 + 8.
        let mut dw = Conv::new(2, 24, 5, 9, 24, 3).same();
        dw.groups = 24;
        programs.push((format!("{lname}_depthwise_split"), dw.source(l)));
        let mut g = Conv::new(2, 6, 7, 9, 10, 3);
        g.groups = 2;
        programs.push((format!("{lname}_grouped"), g.source(l)));
        // Groups of 37 output features (32 + 5) and 3 groups strided: one
        // scheduled convolution per group.
        let mut g = Conv::new(1, 6, 5, 11, 74, 3).same();
        g.groups = 2;
        programs.push((format!("{lname}_grouped_wide"), g.source(l)));
        let mut g = Conv::new(2, 9, 8, 9, 6, 3);
        g.groups = 3;
        g.stride = 2;
        programs.push((format!("{lname}_grouped_strided"), g.source(l)));
        let mut f = Conv::new(1, 5, 6, 13, 19, 3).same();
        f.dtype = "f64";
        programs.push((format!("{lname}_f64"), f.source(l)));
    }
    // Kernel dilation with stride 2 in Nx's default layout.
    programs.push((
        "nchw_dilated_strided".into(),
        "def main(x: f32[1][4][13][15], k: f32[34][4][3][2]) -> f32[1][34][5][6] {\n  y = conv x, k, strides: [2, 2], kernel_dilation: [2, 3]\n  return y\n}\n".into(),
    ));
    // Kernel dilation with the last output channel apart (33 = 32 + 1).
    programs.push((
        "nchw_dilated_one_channel_apart".into(),
        "def main(x: f32[1][18][11][12], k: f32[33][18][3][2]) -> f32[1][33][7][5] {\n  y = conv x, k, strides: [1, 2], kernel_dilation: [2, 3]\n  return y\n}\n".into(),
    ));
    // 1-D: channels-first (Nx's default) and channels-last, odd sizes.
    programs.push((
        "ncw_1d".into(),
        "def main(x: f32[2][5][21], k: f32[37][5][3]) -> f32[2][37][10] {\n  y = conv x, k, strides: [2]\n  return y\n}\n".into(),
    ));
    programs.push((
        "nwc_1d_same".into(),
        "def main(x: f32[1][19][6], k: f32[5][6][9]) -> f32[1][19][9] {\n  y = conv x, k, padding: :same, input_permutation: [0, 2, 1], kernel_permutation: [2, 1, 0], output_permutation: [0, 2, 1]\n  return y\n}\n".into(),
    ));
    run_all(programs);
}

/// Which convolutions compute their last output channels apart, each as a
/// depthwise convolution summed over the input channels: 2-D f32 ones with
/// one or two channels past a multiple of 16 (not 16 + 2 past a multiple
/// of 32, which is padded to 32) and at least 16 input channels.
#[test]
fn few_channels_past_the_tiles_are_depthwise_convolutions() {
    let apart = |c: Conv| {
        let opt = tensorc::emit("c.nxir", &c.source(NHWC), Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        (opt.matches("linalg.depthwise_conv_2d_nhwc_hwc").count(), opt.contains("linalg.conv_2d_nhwc_hwcf"))
    };
    assert_eq!(apart(Conv::new(1, 16, 6, 7, 17, 3)), (1, true));
    assert_eq!(apart(Conv::new(1, 63, 6, 7, 65, 3)), (1, true));
    // 18 = 16 + 2 is computed as 32 instead (`padded_channels`).
    assert_eq!(apart(Conv::new(1, 20, 6, 7, 18, 3)), (0, true));
    assert_eq!(apart(Conv::new(1, 16, 6, 7, 1, 3)), (1, false));
    assert_eq!(apart(Conv::new(1, 16, 6, 7, 2, 3)), (2, false));
    // Three channels past 16, 15 input channels, f64: the convolution op alone.
    assert_eq!(apart(Conv::new(1, 16, 6, 7, 19, 3)), (0, true));
    assert_eq!(apart(Conv::new(1, 15, 6, 7, 17, 3)), (0, true));
    let mut f = Conv::new(1, 16, 6, 7, 17, 3);
    f.dtype = "f64";
    assert_eq!(apart(f), (0, true));
}

/// Which convolutions are computed with their filter zero-padded to a
/// multiple of 32 output channels (and the result sliced): 2-D f32 ones
/// with 16 + 2..15 channels past a multiple of 32.
#[test]
fn sixteen_plus_a_few_channels_are_computed_as_thirty_two() {
    let filter_of_the_op = |c: Conv| {
        let opt = tensorc::emit("c.nxir", &c.source(NHWC), Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        let at = opt.find("linalg.conv_2d_nhwc_hwcf").unwrap_or_else(|| panic!("{opt}"));
        let op = &opt[at..opt[at..].find('\n').map_or(opt.len(), |e| at + e)];
        let ins = &op[op.find(" : tensor<").unwrap()..];
        ins.split(", tensor<").nth(1).unwrap().split('>').next().unwrap().to_owned()
    };
    assert_eq!(filter_of_the_op(Conv::new(1, 16, 6, 7, 20, 3)), "3x3x16x32xf32");
    assert_eq!(filter_of_the_op(Conv::new(1, 3, 6, 7, 31, 3)), "3x3x3x32xf32");
    assert_eq!(filter_of_the_op(Conv::new(1, 5, 6, 7, 56, 1)), "1x1x5x64xf32");
    assert_eq!(filter_of_the_op(Conv::new(1, 16, 6, 7, 18, 3)), "3x3x16x32xf32");
    // 32 + 4, 8 in all, 16 + 1 (apart instead), f64: not padded.
    assert_eq!(filter_of_the_op(Conv::new(1, 16, 6, 7, 36, 3)), "3x3x16x36xf32");
    assert_eq!(filter_of_the_op(Conv::new(1, 16, 6, 7, 8, 3)), "3x3x16x8xf32");
    assert_eq!(filter_of_the_op(Conv::new(1, 16, 6, 7, 17, 3)), "3x3x16x16xf32");
    let mut f = Conv::new(1, 16, 6, 7, 20, 3);
    f.dtype = "f64";
    assert_eq!(filter_of_the_op(f), "3x3x16x20xf64");
}

/// The IR `opt` before and after the kernel schedule library (then
/// `canonicalize,cse`).
fn kernel_schedule_on(opt: &str) -> (String, String) {
    use tensorc_passes::elementwise_schedule::{ENTRY, kernel_schedule};
    use tensorc_passes::matmul_schedule::script_file;
    let library = script_file(&kernel_schedule(tensorc_passes::conv_schedule::ConvTiles::default())).unwrap();
    let mlir = tensorc_mlir::Mlir::new();
    let (_, before, after) = before_and_after(
        &mlir,
        opt,
        &format!(
            "transform-preload-library{{transform-library-paths={}}},transform-interpreter{{entry-point={ENTRY}}},canonicalize,cse",
            library.display()
        ),
    );
    (before, after)
}

/// A 56-channel NHWC convolution as the frontend emitted it before
/// `padded_channels` (f64 and channel counts it leaves alone still reach
/// the schedule with remainders of 17..31).
const CONV_56: &str = r#"
module {
  func.func @main(%arg0: tensor<1x3x13x5xf32> {bufferization.writable = false}, %arg1: tensor<3x3x5x56xf32> {bufferization.writable = false}, %arg2: memref<1x1x11x56xf32>) attributes {llvm.emit_c_interface} {
    %cst = arith.constant 0.000000e+00 : f32
    %0 = bufferization.to_tensor %arg2 restrict writable : memref<1x1x11x56xf32> to tensor<1x1x11x56xf32>
    %1 = tensor.empty() : tensor<1x1x11x56xf32>
    %2 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x1x11x56xf32>) -> tensor<1x1x11x56xf32>
    %3 = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%arg0, %arg1 : tensor<1x3x13x5xf32>, tensor<3x3x5x56xf32>) outs(%2 : tensor<1x1x11x56xf32>) -> tensor<1x1x11x56xf32>
    bufferization.materialize_in_destination %3 in writable %arg2 : (tensor<1x1x11x56xf32>, memref<1x1x11x56xf32>) -> ()
    return
  }
}
"#;

/// The kernel schedule on an NHWC convolution of 11 columns × 56 channels:
/// full 8×32 tiles and the 3-column and 24-channel remainders, the latter
/// split into 16 + 8 channels, each a loop over the input channels whose
/// accumulator tile is carried in registers.
#[test]
fn conv_schedule_before_and_after() {
    let (before, after) = kernel_schedule_on(CONV_56);
    assert!(!after.contains("linalg.conv"), "{after}");
    // 2 column tiles (8 + 3) × 3 channel tiles (32 + 16 + 8), one contraction each.
    assert_eq!(after.matches("vector.contract").count(), 6, "{after}");
    for acc in ["8x32", "8x16", "8x8", "3x32", "3x16", "3x8"] {
        assert!(after.contains(&format!("-> (vector<{acc}xf32>)")), "{acc} not carried:\n{after}");
    }
    insta::assert_snapshot!("conv_schedule", format!("// before\n{before}\n// after\n{after}"));
}

/// Whether the frontend computes a convolution channel-major (one generic
/// tagged `tensorc.conv_cm` instead of a named convolution op).
fn channel_major(source: &str) -> bool {
    let opt = tensorc::emit("c.nxir", source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let cm = opt.contains("tensorc.conv_cm");
    assert_eq!(cm, !opt.contains("linalg.conv") && !opt.contains("linalg.depthwise"), "{opt}");
    cm
}

/// Which convolutions are channel-major: 2-D f32 ones with at most 12
/// output channels, at least 16 output columns at stride 1 along the
/// columns, no feature groups, whatever the layouts.
#[test]
fn few_output_channels_over_wide_rows_are_channel_major() {
    for l in [NCHW, NHWC, ODD] {
        assert!(channel_major(&Conv::new(1, 64, 8, 56, 5, 3).same().source(l)));
        assert!(channel_major(&Conv::new(1, 3, 4, 16, 12, 3).same().source(l)));
        assert!(channel_major(&Conv::new(2, 7, 4, 18, 1, 3).source(l)));
        // 13 output channels, 15 output columns: the named op.
        assert!(!channel_major(&Conv::new(1, 64, 8, 56, 13, 3).same().source(l)));
        assert!(!channel_major(&Conv::new(1, 64, 8, 17, 5, 3).source(l)));
    }
    // Stride 2 along the columns, f64, feature groups, 1-D: the named ops.
    let mut c = Conv::new(1, 8, 8, 40, 5, 3);
    c.stride = 2;
    assert!(!channel_major(&c.source(NCHW)));
    let mut c = Conv::new(1, 8, 8, 40, 5, 3);
    c.dtype = "f64";
    assert!(!channel_major(&c.source(NCHW)));
    let mut c = Conv::new(1, 8, 8, 40, 6, 3);
    c.groups = 2;
    assert!(!channel_major(&c.source(NCHW)));
    assert!(!channel_major(
        "def main(x: f32[1][8][40], k: f32[5][8][3]) -> f32[1][5][38] {\n  y = conv x, k\n  return y\n}\n"
    ));
    // Stride 2 along the rows only, with kernel dilation: channel-major.
    assert!(channel_major(CHANNEL_MAJOR_STRIDED_ROWS));
}

/// Row stride 2, column stride 1, kernel dilation 2 × 3.
const CHANNEL_MAJOR_STRIDED_ROWS: &str =
    "def main(x: f32[2][6][15][40], k: f32[3][6][3][3]) -> f32[2][3][6][34] {\n  y = conv x, k, strides: [2, 1], kernel_dilation: [2, 3]\n  return y\n}\n";

#[test]
fn channel_major_convolutions_agree_with_the_interpreter() {
    let layouts = [("nchw", NCHW), ("nhwc", NHWC), ("nhwc_in", NHWC_IN), ("nhwc_out", NHWC_OUT), ("odd", ODD)];
    let shapes = [
        // 37 columns: a 32-column tile and a rest of 5.
        ("cm_37_cols", Conv::new(2, 20, 5, 37, 5, 3).same()),
        // 56 columns: 32 + 16 + 8; 12 output channels.
        ("cm_56_cols", Conv::new(1, 16, 4, 56, 12, 3).same()),
        // 64 columns: whole tiles on either ISA, no remainder loop (the
        // schedule's remainder step met an empty handle: internal error).
        ("cm_64_cols", Conv::new(1, 6, 4, 64, 5, 3).same()),
        // Exactly 16 columns, one output channel, a 1×1 kernel.
        ("cm_16_cols", Conv::new(3, 8, 3, 16, 1, 1)),
        // 3 input channels (a first layer), 5×5, explicit padding.
        ("cm_first_layer", {
            let mut c = Conv::new(1, 3, 9, 70, 8, 5);
            c.pad = [(2, 1), (0, 3)];
            c
        }),
    ];
    let mut programs = vec![("cm_strided_rows".to_owned(), CHANNEL_MAJOR_STRIDED_ROWS.to_owned())];
    for (lname, l) in layouts {
        for (sname, c) in &shapes {
            let source = c.source(l);
            assert!(channel_major(&source), "{source}");
            programs.push((format!("{lname}_{sname}"), source));
        }
    }
    run_all(programs);
}

/// A channel-major convolution as the frontend emits it: 5 output channels
/// over 56 columns, 4 input channels, 3×3 (input NCHW, already padded).
const CONV_CM: &str = r#"
#map = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d4, d2 + d5, d3 + d6)>
#map1 = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d1, d4, d5, d6)>
#map2 = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d1, d2, d3)>
module {
  func.func @main(%arg0: tensor<1x4x4x58xf32> {bufferization.writable = false}, %arg1: tensor<5x4x3x3xf32> {bufferization.writable = false}, %arg2: memref<1x5x2x56xf32>) attributes {llvm.emit_c_interface} {
    %cst = arith.constant 0.000000e+00 : f32
    %0 = bufferization.to_tensor %arg2 restrict writable : memref<1x5x2x56xf32> to tensor<1x5x2x56xf32>
    %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x5x2x56xf32>) -> tensor<1x5x2x56xf32>
    %2 = linalg.generic {indexing_maps = [#map, #map1, #map2], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%arg0, %arg1 : tensor<1x4x4x58xf32>, tensor<5x4x3x3xf32>) outs(%1 : tensor<1x5x2x56xf32>) attrs = {tensorc.conv_cm} {
    ^bb0(%in: f32, %in_0: f32, %out: f32):
      %3 = math.fma %in, %in_0, %out : f32
      linalg.yield %3 : f32
    } -> tensor<1x5x2x56xf32>
    bufferization.materialize_in_destination %2 in writable %arg2 : (tensor<1x5x2x56xf32>, memref<1x5x2x56xf32>) -> ()
    return
  }
}
"#;

/// The kernel schedule on a channel-major convolution of 56 columns: tiles
/// of 5 channels × 32, 16 and 8 columns of one output row, each a step of
/// multiply-adds of one input row by each channel's tap, the accumulators
/// carried in registers through the input channels and taps.
#[test]
fn channel_major_conv_schedule_before_and_after() {
    let (before, after) = kernel_schedule_on(CONV_CM);
    assert!(!after.contains("linalg.generic"), "{after}");
    for cols in [32, 16, 8] {
        let fma = format!(": vector<5x{cols}xf32>");
        assert!(after.lines().any(|l| l.contains("math.fma") && l.ends_with(&fma)), "{cols} columns:\n{after}");
        assert!(after.contains(&format!("-> (vector<5x{cols}xf32>)")), "{cols} columns not carried:\n{after}");
    }
    insta::assert_snapshot!("channel_major_conv_schedule", format!("// before\n{before}\n// after\n{after}"));
}

/// 3-D convolutions: a sum over the kernel's depth taps of 2-D
/// channels-last convolutions (`conv_3d_by_depth_taps` in the frontend;
/// no schedule takes a 3-D op), in every layout family, with strides,
/// explicit padding, kernel and input dilation, batches, odd channels,
/// f64 and integer operands.
#[test]
fn three_d_convolutions_are_sums_of_scheduled_2d_ones() {
    let conv = |x: &str, k: &str, y: &str, opts: &str| {
        format!("def main(x: {x}, k: {k}) -> {y} {{\n  y = conv x, k{opts}\n  return y\n}}\n")
    };
    let programs: Vec<(String, String)> = vec![
        ("ncdhw".into(), conv("f32[2][3][6][7][8]", "f32[5][3][3][2][3]", "f32[2][5][4][6][6]", "")),
        (
            "strided_padded".into(),
            conv(
                "f32[1][4][7][6][9]",
                "f32[3][4][2][3][3]",
                "f32[1][3][4][6][5]",
                ", strides: [2, 1, 2], padding: [{1, 0}, {0, 2}, {1, 1}]",
            ),
        ),
        (
            "kernel_dilated".into(),
            conv("f32[1][2][9][5][8]", "f32[4][2][3][2][2]", "f32[1][4][5][4][6]", ", kernel_dilation: [2, 1, 2]"),
        ),
        (
            "input_dilated".into(),
            conv("f32[1][2][4][5][5]", "f32[3][2][2][2][2]", "f32[1][3][6][4][4]", ", input_dilation: [2, 1, 1]"),
        ),
        (
            "ndhwc_same".into(),
            conv(
                "f32[1][5][6][7][17]",
                "f32[3][3][3][17][33]",
                "f32[1][5][6][7][33]",
                ", padding: :same, input_permutation: [0, 4, 1, 2, 3], kernel_permutation: [4, 3, 0, 1, 2], output_permutation: [0, 4, 1, 2, 3]",
            ),
        ),
        (
            "ndhwc_in_ncdhw_out".into(),
            conv("f32[2][4][5][6][3]", "f32[6][3][2][2][2]", "f32[2][6][3][4][5]", ", input_permutation: [0, 4, 1, 2, 3]"),
        ),
        ("f64".into(), conv("f64[1][3][5][5][5]", "f64[4][3][2][2][2]", "f64[1][4][4][4][4]", "")),
    ];
    // Integer operands (converted to f32) on random inputs only: the edge
    // values (±2^31) make sums whose f32 rounding depends on the order of
    // the taps, which this form changes.
    let ints = conv("s32[1][2][4][4][4]", "s32[2][2][2][2][2]", "f32[1][2][3][3][3]", "");
    let failures = crate::harness::differential_all(&[("s32", ints, 1e-5)], EdgeSet::None, 5);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Three depth taps: three 2-D convolutions, no 3-D op.
    let opt = tensorc::emit("c3.nxir", &programs[0].1, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(opt.matches("linalg.conv_2d_nhwc_hwcf").count(), 3, "{opt}");
    assert!(!opt.contains("conv_3d"), "{opt}");
    run_all(programs);
}

/// Transposed convolutions (input dilation 2–4, split into one convolution
/// per output phase: `frontend/conv_transposed.rs`) of 1-D and 2-D inputs
/// in NCHW and NHWC, kernels of 1–5 taps, paddings below, above and
/// cropping (negative), against the interpreter on one and two threads;
/// with the mild edge values (NaN and ±inf among them), so the phases'
/// sums of `0·k` over the taps they skip are checked too.
#[test]
fn transposed_convolutions_agree_with_the_interpreter() {
    let mut programs = Vec::new();
    let cases: [(&[usize], usize, usize, (i64, i64)); 7] = [
        (&[7], 2, 3, (2, 2)),
        (&[6], 3, 4, (-1, 2)),
        (&[5], 4, 1, (0, 0)),
        (&[5, 4], 2, 3, (1, 2)),
        (&[4, 6], 3, 5, (3, -1)),
        (&[3, 3], 2, 2, (0, 1)),
        (&[6, 5], 2, 4, (2, 2)),
    ];
    for (i, &(spatial, s, k, (lo, hi))) in cases.iter().enumerate() {
        let out: Vec<i64> = spatial.iter().map(|&l| ((l - 1) * s + 1) as i64 + lo + hi - k as i64 + 1).collect();
        let dims = |v: &[String]| v.iter().map(|d| format!("[{d}]")).collect::<String>();
        let sp: Vec<String> = spatial.iter().map(|l| l.to_string()).collect();
        let op: Vec<String> = out.iter().map(|l| l.to_string()).collect();
        let ks: Vec<String> = spatial.iter().map(|_| k.to_string()).collect();
        let pad = vec![format!("{{{lo}, {hi}}}"); spatial.len()].join(", ");
        let dil = vec![s.to_string(); spatial.len()].join(", ");
        let (c, o) = (3 + i % 2, 2 + i % 3);
        // Channels-first, then channels-last (2-D: NHWC/HWIO/NHWC).
        programs.push((
            format!("transposed_cf_{i}"),
            format!(
                "def main(x: f32[2][{c}]{}, w: f32[{o}][{c}]{}) -> f32[2][{o}]{} {{\n  y = conv x, w, padding: [{pad}], input_dilation: [{dil}]\n  return y\n}}\n",
                dims(&sp),
                dims(&ks),
                dims(&op)
            ),
        ));
        if spatial.len() == 2 {
            programs.push((
                format!("transposed_cl_{i}"),
                format!(
                    "def main(x: f32[1]{}[{c}], w: f32{}[{c}][{o}]) -> f32[1]{}[{o}] {{\n  y = conv x, w, padding: [{pad}], input_dilation: [{dil}], input_permutation: [0, 3, 1, 2], kernel_permutation: [3, 2, 0, 1], output_permutation: [0, 3, 1, 2]\n  return y\n}}\n",
                    dims(&sp),
                    dims(&ks),
                    dims(&op)
                ),
            ));
        }
    }
    // Split: with at least as many taps as the dilation every one of the
    // s^n phases meets some, so there is one convolution per phase.
    for (name, source) in &programs {
        let i: usize = name.rsplit('_').next().and_then(|d| d.parse().ok()).expect("numbered case");
        let (spatial, s, k, _) = cases[i];
        if k >= s {
            let linalg = tensorc::emit(&format!("{name}.nxir"), source, Stage::Linalg).unwrap_or_else(|e| panic!("{name}: {}", e.render()));
            assert_eq!(linalg.matches("linalg.conv_").count(), s.pow(spatial.len() as u32), "{name}: {linalg}");
        }
    }
    let failures = crate::threads::on_threads(&[1, 2], || {
        programs
            .iter()
            .flat_map(|(name, source)| {
                differential(&format!("{name}.nxir"), source, &settings()).into_iter().map(move |f| format!("{name}: {f}\n{source}"))
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Convolution and window reductions (`conv`, `window_sum|product|max|min`,
//! `window_reduce`).
//!
//! Both start the same way: padding and input dilation are applied to the
//! operand first (a `tensor.pad` for plain edge padding, Nx `pad`'s
//! fill-and-insert for input dilation or cropping; zeros for `conv`, the
//! reduction's identity for windows, init for `window_reduce`), so what
//! remains is a strided, dilated window over an exactly sized input. A plain
//! convolution (no groups, 1 to 3 spatial axes) then becomes one of linalg's
//! named convolution ops — channels-last (`conv_2d_nhwc_hwcf` & co.) whenever
//! the CPU's conv schedule covers that form (1-D and 2-D, Nx's default NCHW
//! included), otherwise in the input's own layout — with `linalg.transpose`
//! around it where the tensors' layouts differ, so that tiling and
//! vectorization recognize it (a plain 3-D one becomes a sum of 2-D
//! channels-last ones, one per kernel depth tap); a depthwise
//! convolution (one group per channel, one filter each) likewise becomes a
//! `depthwise_conv_*` op, and other feature-grouped ones one named op per
//! group on slices of the channels. Batch-grouped convolutions and every
//! remaining case are one `linalg.generic` whose indexing maps read the
//! tensors in their actual layouts. Windows are a `linalg.generic` with the window axes as
//! reduction loops (a window-shaped empty tensor gives those loops their size),
//! except small ones whose last axis is not strided (pooling over NHWC, or
//! NCHW with stride 1: at most 16 positions), which are one element-wise op
//! over a strided view per window position (`unrolled_window`), since no
//! schedule vectorizes the generic.

use tensorc_ir::graph::{BinaryOp, ConvSpec, Function, Literal, Node, Op, ReduceKind};
use tensorc_ir::types::{DType, TensorType};

use crate::LowerError;
use crate::control::combine;
use crate::emit::{Emitter, GenericOperand, elem, identity_map, literal_attr, tensor_ty};
use crate::lower::{Lowerer, Val, list};
use crate::reduce::{highest, lowest};

fn join(xs: impl IntoIterator<Item = impl ToString>) -> String {
    xs.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `inv[perm[i]] = i`.
fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// Largest rank of transpose the CPU's transpose schedule has tiles for
/// (`tensorc_passes::transpose_schedule::MAX_RANK`).
const TRANSPOSE_MAX_RANK: usize = 6;

/// Bits of the longest row a transpose that keeps the innermost axis moves
/// as one vector (`tensorc_passes::transpose_schedule::copy_lanes`).
const TRANSPOSE_ROW_BITS: usize = 2048;

/// The tag of a transpose of `x` by `perm` for the CPU's transpose schedule
/// (`tensorc_passes::transpose_schedule::tag`, which the unit test below
/// keeps this in step with): its rank, the output axis that holds `x`'s
/// innermost axis (its innermost one longer than 1), and the element width, which the transform dialect's
/// matchers cannot read from the op. None when the schedule must leave it
/// alone: an empty axis (tiling an empty loop is not safe in MLIR 22), a
/// rank it has no tiles for, or a transpose that keeps the innermost axis
/// with rows longer than one vector copy (LLVM vectorizes the loop over
/// such a row itself, faster than the schedule's forms; see the schedule).
fn transpose_tag(x: &TensorType, perm: &[usize]) -> Option<String> {
    let rank = perm.len();
    if !(2..=TRANSPOSE_MAX_RANK).contains(&rank) || x.shape.contains(&0) {
        return None;
    }
    // The innermost axis that is not a unit axis: the axes after it have one
    // element, so it is contiguous in memory. Tagged by the unit axis itself,
    // a 1×1 kernel's [256][1024][1][1] → [1][1][1024][256] was tiled in
    // blocks of 1 × 16 and took 580 µs, 20× the same 2-D transpose.
    let inner = (0..rank).rev().find(|&a| x.shape[a] != 1).unwrap_or(rank - 1);
    let q = perm.iter().position(|&p| p == inner)?;
    let bits = x.dtype.bits();
    if q == rank - 1 && x.shape[inner] * bits as usize > TRANSPOSE_ROW_BITS {
        return None;
    }
    Some(format!("tensorc.transpose_r{rank}_q{q}_b{bits}"))
}

/// Most feature groups a convolution is split into, one scheduled
/// convolution each (`grouped_conv`); more stay one generic, whose code
/// does not grow with the group count.
const MAX_SPLIT_GROUPS: usize = 64;

/// The most output channels past a multiple of 16 that
/// `Lowerer::conv_with_few_channels` computes apart: each costs under half
/// of a whole 16-channel tile there (2×57×57×63, one thread: 1 channel
/// 0.57 → 0.20 ms, 2 channels 0.59 → 0.53, 17 channels 1.20 → 0.89, 18
/// channels 1.24 → 1.15), three cost more than the tile (3 channels 0.65 →
/// 0.77, 19 channels 1.30 → 1.43).
const FEW_CHANNELS: usize = 2;

/// The input channels below which the remainder stays in the convolution
/// op (a depthwise convolution over fewer is mostly remainder lanes).
const FEW_CHANNELS_MIN_INPUT: usize = 16;

/// How many of a channels-last convolution's last output channels
/// `Lowerer::conv_with_few_channels` computes apart (the ones past a
/// multiple of 16, when at most `FEW_CHANNELS`), or `None`: only 2-D f32
/// convolutions (`op`, `x` NHWC, `y` NHWC) with at least
/// `FEW_CHANNELS_MIN_INPUT` input channels and no empty axis.
fn few_channels(op: &str, x: &TensorType, y: &TensorType) -> Option<usize> {
    let r = y.shape.last()? % 16;
    (nonempty_f32_conv_2d(op, x, y) && x.shape[3] >= FEW_CHANNELS_MIN_INPUT && (1..=FEW_CHANNELS).contains(&r))
        .then_some(r)
}

/// The most output channels a 2-D convolution computed channel-major
/// (`channel_major`) may have.
const CHANNEL_MAJOR_MAX_OUT: usize = 12;

/// The fewest output columns a channel-major convolution must have (its
/// vectors run along them).
const CHANNEL_MAJOR_MIN_COLUMNS: usize = 16;

/// The attribute of the channel-major convolution generics the CPU's
/// conv schedule tiles and vectorizes
/// (`tensorc_passes::conv_schedule::CHANNEL_MAJOR`).
pub const CHANNEL_MAJOR_TAG: &str = "tensorc.conv_cm";

/// Whether a plain convolution (no groups) with no empty axis is computed
/// channel-major (`Lowerer::channel_major_conv`): 2-D, f32, at most
/// `CHANNEL_MAJOR_MAX_OUT` output channels, at least
/// `CHANNEL_MAJOR_MIN_COLUMNS` output columns and stride 1 along the
/// columns. `ty` is the result in its actual layout.
///
/// Why: the channels-last schedule's register tile runs its vectors along
/// the output channels, so with 3–8 of them each multiply-add does 3–8
/// lanes of work, and a tile cost as much as one of 16 channels
/// (1×56×56×64, 3×3, one thread: 3, 5, 8 and 16 channels 0.285, 0.287,
/// 0.254 and 0.251 ms, NumPy 0.195, 0.217, 0.260 and 0.409). Channel-major,
/// the vectors run along the output columns instead, 16 or 32 of them per
/// multiply-add whatever the channel count.
fn channel_major(o: &ConvSpec, ty: &TensorType) -> bool {
    ty.rank() == 4
        && ty.dtype == DType::F32
        && o.strides.get(1) == Some(&1)
        && ty.shape[o.output_permutation[1]] <= CHANNEL_MAJOR_MAX_OUT
        && ty.shape[o.output_permutation[3]] >= CHANNEL_MAJOR_MIN_COLUMNS
}

/// Whether `op` is a 2-D channels-last convolution of f32 (`x` and `y`
/// NHWC) with no empty axis: the ones whose output channels
/// `few_channels` and `padded_channels` may rearrange.
fn nonempty_f32_conv_2d(op: &str, x: &TensorType, y: &TensorType) -> bool {
    op == "linalg.conv_2d_nhwc_hwcf"
        && x.rank() == 4
        && y.rank() == 4
        && y.dtype == DType::F32
        && x.shape.iter().chain(&y.shape).all(|&n| n > 0)
}

/// The output channels a channels-last 2-D f32 convolution (`op`, `x`
/// NHWC, `y` NHWC, no empty axis) is computed with when its filter is
/// zero-padded first (`Lowerer::conv_with_padded_channels`), or `None`.
/// The conv schedule's register tiles are 32 channels, then 16, then the
/// rest, and a rest of 3–15 channels costs as much as 16 (its step is as
/// many broadcasts and multiply-adds on narrower vectors): 2×57×57×63,
/// one thread, → 16 channels 0.59 ms, → 20 1.20, → 24 1.19, → 32 0.98,
/// → 5 0.65, → 8 0.57. So 16 + 2..15 channels (F mod 32 in 18..=31) are
/// computed as 32 (→ 20 1.20 → 1.00 ms, → 24 1.19 → 0.99, → 18 1.15 →
/// 0.98 where two channels apart took 1.15, → 50 2.19 → 1.97); this comes
/// before `few_channels`, which keeps one channel past 16 (→ 17 0.89 ms
/// apart) and one or two past 32. A rest of 3..15 past a multiple of 32
/// gains nothing from 16 (→ 36 1.57 ms either way), and 3..15 channels in
/// all lost to the slice of the padded result (→ 5 0.65 → 0.66 ms, → 8
/// 0.57 → 0.64).
fn padded_channels(op: &str, x: &TensorType, y: &TensorType) -> Option<usize> {
    let f = *y.shape.last()?;
    (nonempty_f32_conv_2d(op, x, y) && (18..=31).contains(&(f % 32))).then(|| f.next_multiple_of(32))
}

/// Named depthwise convolution ops by spatial rank: (channels-first, channels-last).
fn depthwise_conv(ns: usize) -> Option<(&'static str, &'static str)> {
    match ns {
        1 => Some((
            "linalg.depthwise_conv_1d_ncw_cw",
            "linalg.depthwise_conv_1d_nwc_wc",
        )),
        2 => Some((
            "linalg.depthwise_conv_2d_nchw_chw",
            "linalg.depthwise_conv_2d_nhwc_hwc",
        )),
        3 => Some((
            "linalg.depthwise_conv_3d_ncdhw_cdhw",
            "linalg.depthwise_conv_3d_ndhwc_dhwc",
        )),
        _ => None,
    }
}

/// Whether the CPU's convolution schedule tiles and vectorizes the
/// channels-last named op `op` (`tensorc_passes::conv_schedule::scheduled_ops`,
/// which the unit test below keeps this in step with).
fn channels_last_scheduled(op: &str) -> bool {
    matches!(
        op,
        "linalg.conv_2d_nhwc_hwcf" | "linalg.conv_1d_nwc_wcf" | "linalg.depthwise_conv_2d_nhwc_hwc"
    )
}

/// Named convolution ops by spatial rank: (channels-first, channels-last).
fn named_conv(ns: usize) -> Option<(&'static str, &'static str)> {
    match ns {
        1 => Some(("linalg.conv_1d_ncw_fcw", "linalg.conv_1d_nwc_wcf")),
        2 => Some(("linalg.conv_2d_nchw_fchw", "linalg.conv_2d_nhwc_hwcf")),
        3 => Some(("linalg.conv_3d_ncdhw_fcdhw", "linalg.conv_3d_ndhwc_dhwcf")),
        _ => None,
    }
}

impl Lowerer<'_> {
    /// A rank-0 tensor constant.
    fn scalar_tensor(&mut self, d: DType, lit: Literal) -> Val {
        let ty = TensorType::scalar(d);
        let name = self.e.op(&format!(
            "arith.constant dense<{}> : {}",
            literal_attr(d, lit),
            tensor_ty(&ty)
        ));
        Val { name, ty }
    }

    /// `x` with `config[axis] = (low, high, interior)` applied; padding holds the literal `fill`.
    fn padded(
        &mut self,
        x: &Val,
        fill: Literal,
        config: &[(i64, i64, i64)],
    ) -> Result<Val, LowerError> {
        if config.iter().all(|&c| c == (0, 0, 0)) {
            return Ok(x.clone());
        }
        let shape: Vec<usize> =
            x.ty.shape
                .iter()
                .zip(config)
                .map(|(&n, &(lo, hi, int))| {
                    let inner = if n == 0 {
                        0
                    } else {
                        n as i64 + (n as i64 - 1) * int
                    };
                    (inner + lo + hi).max(0) as usize
                })
                .collect();
        let ty = TensorType::new(x.ty.dtype, shape);
        let plain = config
            .iter()
            .all(|&(lo, hi, int)| lo >= 0 && hi >= 0 && int == 0);
        if !plain || x.ty.checked_num_elements() == Some(0) {
            // Interior (input dilation) or negative (cropping) padding: the
            // general fill-and-insert of Nx `pad`.
            let fill = self.scalar_tensor(x.ty.dtype, fill);
            let name = self.pad(x, &fill, config, &ty)?;
            return Ok(Val { name, ty });
        }
        // Plain edge padding is a `tensor.pad`, which tiling can fuse into
        // the convolution or window that consumes it.
        let c = self.e.op(&format!(
            "arith.constant {} : {}",
            literal_attr(ty.dtype, fill),
            elem(ty.dtype)
        ));
        let res = self.e.fresh();
        self.e.line(&format!(
            "{res} = tensor.pad {} low[{}] high[{}] {{",
            x.name,
            join(config.iter().map(|c| c.0)),
            join(config.iter().map(|c| c.1))
        ));
        let args: Vec<String> = (0..ty.rank())
            .map(|_| format!("{}: index", self.e.fresh()))
            .collect();
        self.e.line(&format!("^bb0({}):", args.join(", ")));
        self.e.indent(2);
        self.e
            .stmt(&format!("tensor.yield {c} : {}", elem(ty.dtype)));
        self.e.indent(-2);
        self.e
            .stmt(&format!("}} : {} to {}", tensor_ty(&x.ty), tensor_ty(&ty)));
        Ok(Val { name: res, ty })
    }

    /// `x` transposed so that result axis i is `x`'s axis `perm[i]` (no-op for the identity).
    /// Every transpose the frontend emits comes from here, tagged for the CPU's
    /// transpose schedule (`transpose_tag`).
    pub(crate) fn permuted(&mut self, x: &Val, perm: &[usize]) -> Val {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return x.clone();
        }
        let ty = TensorType::new(
            x.ty.dtype,
            perm.iter().map(|&p| x.ty.shape[p]).collect::<Vec<_>>(),
        );
        let init = self.e.empty(&ty);
        let tag = transpose_tag(&x.ty, perm).map(|t| format!(" {{{t}}}")).unwrap_or_default();
        let name = self.e.op(&format!(
            "linalg.transpose ins({} : {}) outs({init} : {}) permutation = [{}]{tag}",
            x.name,
            tensor_ty(&x.ty),
            tensor_ty(&ty),
            join(perm)
        ));
        Val { name, ty }
    }

    /// Nx `conv` into the node type `ty` (a float type).
    pub fn conv(
        &mut self,
        x: &Val,
        k: &Val,
        o: &ConvSpec,
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        let d = ty.dtype;
        let rank = ty.rank();
        if rank < 3 || x.ty.rank() != rank || k.ty.rank() != rank || o.strides.len() != rank - 2 {
            return Err(LowerError::Internal("conv operand ranks disagree".into()));
        }
        let ns = rank - 2;
        let x = self.convert_tensor(x, d);
        let k = self.convert_tensor(k, d);
        if crate::conv_transposed::splits(o, &x.ty, &k.ty, ty) {
            return self.conv_by_phases(&x, &k, o, ty);
        }
        // Padding and input dilation on the input's spatial axes, in its actual layout.
        let mut config = vec![(0i64, 0i64, 0i64); rank];
        for a in 0..ns {
            config[o.input_permutation[a + 2]] = (
                o.padding[a].0,
                o.padding[a].1,
                o.input_dilation[a] as i64 - 1,
            );
        }
        let x = self.padded(&x, Literal::Float(0.0), &config)?;
        let plain = o.feature_group_size == 1 && o.batch_group_size == 1;
        // One group per channel with one filter each: a depthwise convolution.
        let (out_ch, in_ch) = (
            k.ty.shape[o.kernel_permutation[0]],
            k.ty.shape[o.kernel_permutation[1]],
        );
        let depthwise = o.batch_group_size == 1
            && o.feature_group_size > 1
            && in_ch == 1
            && out_ch == o.feature_group_size;
        // Feature groups that are not depthwise: one scheduled convolution per
        // group (the generic below is a scalar loop nest: 2 groups of
        // 1×64×28×28 → 64 ran at 0.16× NumPy).
        let nonempty = [&x.ty, &k.ty, ty].iter().all(|t| t.checked_num_elements().is_some_and(|n| n > 0));
        let grouped = o.batch_group_size == 1
            && (2..=MAX_SPLIT_GROUPS).contains(&o.feature_group_size)
            && !depthwise
            && nonempty;
        match (named_conv(ns), depthwise_conv(ns)) {
            _ if plain && nonempty && channel_major(o, ty) => Ok(self.channel_major_conv(&x, &k, o, ty)),
            _ if plain && nonempty && ns == 3 => Ok(self.conv_3d_by_depth_taps(&x, &k, o, ty)),
            (Some(names), _) if plain => Ok(self.named_conv(&x, &k, o, ty, names, false)),
            (_, Some(names)) if depthwise => Ok(self.named_conv(&x, &k, o, ty, names, true)),
            _ if grouped && (ns == 3 || named_conv(ns).is_some_and(|n| channels_last_scheduled(n.1))) => {
                Ok(self.grouped_conv(&x, &k, o, ty))
            }
            _ => Ok(self.generic_conv(&x, &k, o, ty)),
        }
    }

    /// A convolution with feature groups (of the already padded and
    /// dilated x) as one plain convolution per group — a named op, or for
    /// 3-D a sum of 2-D ones per depth tap as `conv` lowers a plain 3-D one
    /// (the generic was a scalar loop nest: 4 groups of 1×16×32×32×64
    /// 3×3×3 took 241 ms, XLA 52; not `conv` itself for 1-D and 2-D, whose
    /// channel-major form for a group's few channels took 5× as long to
    /// compile) — on the group's slices of the input channels and of the
    /// kernel's output features, each inserted into its slice of the
    /// result's features.
    fn grouped_conv(&mut self, x: &Val, k: &Val, o: &ConvSpec, ty: &TensorType) -> String {
        let groups = o.feature_group_size;
        let (xa, ka, ya) = (o.input_permutation[1], o.kernel_permutation[0], o.output_permutation[1]);
        let (cg, og) = (x.ty.shape[xa] / groups, k.ty.shape[ka] / groups);
        let ns = o.strides.len();
        let plain = ConvSpec {
            feature_group_size: 1,
            padding: vec![(0, 0); ns],
            input_dilation: vec![1; ns],
            ..o.clone()
        };
        let mut acc = self.e.empty(ty);
        for g in 0..groups {
            let xs = self.axis_slice(x, xa, g * cg, cg);
            let ks = self.axis_slice(k, ka, g * og, og);
            let mut shape = ty.shape.clone();
            shape[ya] = og;
            let yty = TensorType::new(ty.dtype, shape);
            let y = match named_conv(ns) {
                Some(names) if ns < 3 => self.named_conv(&xs, &ks, &plain, &yty, names, false),
                _ => self.conv_3d_by_depth_taps(&xs, &ks, &plain, &yty),
            };
            acc = self.insert_along(&y, &yty, &acc, ty, ya, g * og);
        }
        acc
    }

    /// A plain (or, with `depthwise`, a depthwise) convolution as a named
    /// linalg op, with transposes into and out of its layout. The depthwise
    /// ops take the kernel without its unit input-channel axis.
    fn named_conv(
        &mut self,
        x: &Val,
        k: &Val,
        o: &ConvSpec,
        ty: &TensorType,
        names: (&str, &str),
        depthwise: bool,
    ) -> String {
        let rank = ty.rank();
        let identity: Vec<usize> = (0..rank).collect();
        // Channels-last whenever the CPU schedules that form: a channels-first
        // op it does not schedule is a scalar loop nest (NCHW 1×64×56×56 → 64:
        // 52 ms against 1 ms), and the transposes into and out of
        // channels-last cost O(N·C·H·W) next to the convolution's
        // O(N·C·O·H·W·kh·kw). Otherwise the input's own layout decides.
        let channels_first = !channels_last_scheduled(names.1)
            && o.input_permutation == identity.as_slice();
        // Logical axis order of each operand in the named op's layout.
        let (op_name, x_order, k_order, y_order): (&str, Vec<usize>, Vec<usize>, Vec<usize>) =
            if channels_first {
                (
                    names.0,
                    identity.clone(),
                    identity.clone(),
                    identity.clone(),
                )
            } else {
                let spatial: Vec<usize> = (2..rank).collect();
                let mut xo = vec![0];
                xo.extend(&spatial);
                xo.push(1);
                let mut ko = spatial.clone();
                ko.extend([1, 0]);
                (names.1, xo.clone(), ko, xo)
            };
        // Axis i of the transposed operand is the actual axis holding logical axis order[i].
        let xp: Vec<usize> = x_order.iter().map(|&l| o.input_permutation[l]).collect();
        let kp: Vec<usize> = k_order.iter().map(|&l| o.kernel_permutation[l]).collect();
        let xt = self.permuted(x, &xp);
        let mut kt = self.permuted(k, &kp);
        if depthwise {
            // Drop the unit input-channel axis (logical axis 1).
            let shape: Vec<usize> = (0..rank)
                .filter(|&i| k_order[i] != 1)
                .map(|i| kt.ty.shape[i])
                .collect();
            let to = TensorType::new(kt.ty.dtype, shape);
            let name = self.reshape(&kt, &to);
            kt = Val { name, ty: to };
        }
        // Logical result sizes, read from the actual result type.
        let logical: Vec<usize> = (0..rank)
            .map(|l| ty.shape[o.output_permutation[l]])
            .collect();
        let yty = TensorType::new(
            ty.dtype,
            y_order.iter().map(|&l| logical[l]).collect::<Vec<_>>(),
        );
        let plain = depthwise || channels_first;
        let few = if plain { None } else { few_channels(op_name, &xt.ty, &yty) };
        let padded = if plain { None } else { padded_channels(op_name, &xt.ty, &yty) };
        let y = if let Some(f) = padded {
            self.conv_with_padded_channels(o, &xt, &kt, &yty, f)
        } else {
            let init = self.filled(&yty, 0.0, Some(0));
            match few {
                Some(r) => self.conv_with_few_channels(o, &xt, &kt, init, &yty, r),
                None => self.conv_op(op_name, o, &xt, &kt, &init, &yty),
            }
        };
        self.in_result_layout(&Val { name: y, ty: yty }, &y_order, o)
    }

    /// `y`, whose axis `i` holds logical result axis `order[i]`, transposed
    /// to the result's actual layout (`o.output_permutation`).
    fn in_result_layout(&mut self, y: &Val, order: &[usize], o: &ConvSpec) -> String {
        // Actual result axis j holds logical axis inv_out[j], found in y at its position in order.
        let inv_out = inverse(&o.output_permutation);
        let pos = inverse(order);
        let back: Vec<usize> = (0..order.len()).map(|j| pos[inv_out[j]]).collect();
        self.permuted(y, &back).name
    }

    /// A plain 3-D convolution as a sum over the kernel's depth taps of 2-D
    /// channels-last convolutions that the conv schedule tiles and
    /// vectorizes (no schedule takes a 3-D op: `conv_3d_*` was a scalar loop
    /// nest, 1×16×32³ → 32 with a 3³ kernel 180 ms against XLA's 26.5).
    /// With the input channels-last `[N, D, H, W, C]` (already padded) and
    /// the kernel `[KD, KH, KW, C, O]`, depth tap `t` reads the input's
    /// depths `t·dilation + z·stride` for each output depth `z`: that strided
    /// slice (copied to its own tensor unless it is one block already: one
    /// image, stride 1) is `N·Do` images of `H×W×C`, and
    /// `conv_2d_nhwc_hwcf` of them with the tap's `KH×KW×C×O` filter adds
    /// into the `N·Do` output images, which the next tap's convolution
    /// takes as its init. The result is then expanded to `[N, Do, Ho, Wo,
    /// O]` and transposed to the result's layout.
    fn conv_3d_by_depth_taps(&mut self, x: &Val, k: &Val, o: &ConvSpec, ty: &TensorType) -> String {
        let xt = self.permuted(x, &[0, 2, 3, 4, 1].map(|l| o.input_permutation[l]));
        let kt = self.permuted(k, &[2, 3, 4, 1, 0].map(|l| o.kernel_permutation[l]));
        let logical: Vec<usize> = (0..5).map(|l| ty.shape[o.output_permutation[l]]).collect();
        let (n, f, depth_out) = (logical[0], logical[1], logical[2]);
        let (h, w, c) = (xt.ty.shape[2], xt.ty.shape[3], xt.ty.shape[4]);
        let (kh, kw) = (kt.ty.shape[1], kt.ty.shape[2]);
        let d = ty.dtype;
        let images = TensorType::new(d, vec![n * depth_out, logical[3], logical[4], f]);
        let plane = ConvSpec {
            strides: o.strides[1..].to_vec(),
            kernel_dilation: o.kernel_dilation[1..].to_vec(),
            ..o.clone()
        };
        let slab_ty = TensorType::new(d, vec![n, depth_out, h, w, c]);
        let xs_ty = TensorType::new(d, vec![n * depth_out, h, w, c]);
        let ks_ty = TensorType::new(d, vec![kh, kw, c, f]);
        let mut acc = self.filled(&images, 0.0, Some(0));
        for tap in 0..kt.ty.shape[0] {
            // The depths this tap reads, as a tensor of their own (the
            // strided slice is no contiguous block of images).
            let slab = self.e.op(&format!(
                "tensor.extract_slice {}[0, {}, 0, 0, 0] [{}] [1, {}, 1, 1, 1] : {} to {}",
                xt.name,
                tap * o.kernel_dilation[0],
                list(&slab_ty.shape),
                o.strides[0],
                tensor_ty(&xt.ty),
                tensor_ty(&slab_ty)
            ));
            let slab = Val { name: slab, ty: slab_ty.clone() };
            let copied = if n == 1 && o.strides[0] == 1 {
                // One image, consecutive depths: a contiguous block already.
                slab
            } else {
                Val { name: self.elementwise(&[&slab], &slab_ty, |_, a| a[0].clone()), ty: slab_ty.clone() }
            };
            let xs = Val { name: self.reshape(&copied, &xs_ty), ty: xs_ty.clone() };
            let tap_k = self.axis_slice(&kt, 0, tap, 1);
            let ks = Val { name: self.reshape(&tap_k, &ks_ty), ty: ks_ty.clone() };
            acc = self.conv_op("linalg.conv_2d_nhwc_hwcf", &plane, &xs, &ks, &acc, &images);
        }
        let y_ty = TensorType::new(d, vec![n, depth_out, logical[3], logical[4], f]);
        let y = Val { name: self.reshape(&Val { name: acc, ty: images }, &y_ty), ty: y_ty };
        self.in_result_layout(&y, &[0, 2, 3, 4, 1], o)
    }

    /// A plain 2-D convolution (`channel_major`) as one `linalg.generic`
    /// over the input in NCHW and the kernel in OIHW (transposed from their
    /// layouts when they differ) into an NCHW result, tagged
    /// `CHANNEL_MAJOR_TAG`. Loops: batch, output channel, output row, output
    /// column, then input channel, kernel row and kernel column (the
    /// reductions); the conv schedule tiles it into register tiles of every
    /// output channel × 16 or 32 columns of one row, whose step multiplies
    /// a row of the input by each channel's filter tap and adds it to that
    /// channel's accumulator (`math.fma`, as the named ops' contractions
    /// become).
    fn channel_major_conv(&mut self, x: &Val, k: &Val, o: &ConvSpec, ty: &TensorType) -> String {
        let rank = ty.rank();
        let xt = self.permuted(x, &o.input_permutation);
        let kt = self.permuted(k, &o.kernel_permutation);
        let logical: Vec<usize> = (0..rank).map(|l| ty.shape[o.output_permutation[l]]).collect();
        let yty = TensorType::new(ty.dtype, logical);
        let init = self.filled(&yty, 0.0, Some(0));
        let (sh, dh, dw) = (o.strides[0], o.kernel_dilation[0], o.kernel_dilation[1]);
        let xmap = format!("d0, d4, d2 * {sh} + d5 * {dh}, d3 + d6 * {dw}");
        let red: Vec<bool> = (0..7).map(|i| i >= 4).collect();
        let outs = [GenericOperand { value: init, ty: yty.clone(), map: "d0, d1, d2, d3".into() }];
        let y = self
            .e
            .generic_tagged(
                7,
                &red,
                &[xt.operand(xmap), kt.operand("d1, d4, d5, d6".into())],
                &outs,
                Some(CHANNEL_MAJOR_TAG),
                |e, s| vec![e.op(&format!("math.fma {}, {}, {} : f32", s[0], s[1], s[2]))],
            )
            .remove(0);
        self.permuted(&Val { name: y, ty: yty }, &inverse(&o.output_permutation)).name
    }

    /// One named convolution op `name` of `x` and `k` into `init` (of type
    /// `ty`) with `o`'s strides and dilations.
    fn conv_op(&mut self, name: &str, o: &ConvSpec, x: &Val, k: &Val, init: &str, ty: &TensorType) -> String {
        let ns = ty.rank() - 2;
        let attr = |v: &[usize]| format!("dense<[{}]> : tensor<{ns}xi64>", join(v));
        self.e.op(&format!(
            "{name} {{dilations = {}, strides = {}}} ins({}, {} : {}, {}) outs({init} : {}) -> {}",
            attr(&o.kernel_dilation),
            attr(&o.strides),
            x.name,
            k.name,
            tensor_ty(&x.ty),
            tensor_ty(&k.ty),
            tensor_ty(ty),
            tensor_ty(ty)
        ))
    }

    /// A channels-last 2-D convolution (`x` NHWC, `k` HWCF, into the zeros
    /// `init` of type `ty`) whose last `r` output channels are computed
    /// apart: the others by the convolution op, and each of those as a
    /// depthwise convolution of the input with that channel's filter (the
    /// products per input channel, vectorized along the input channels)
    /// summed over the input channels. The conv schedule's register tile
    /// takes 16 output channels at a time whatever the tile's width (its
    /// step broadcasts `ow` inputs and multiplies them by one vector of
    /// the tile's channels), so a remainder of one channel cost as much
    /// as 16 (2×57×57×63 → 17: 1.2 ms, 16 channels 0.58, 1 channel 0.57).
    /// Each channel apart also pays a zero fill of its products, the
    /// padded input's copy and the sum.
    fn conv_with_few_channels(&mut self, o: &ConvSpec, x: &Val, k: &Val, init: String, ty: &TensorType, r: usize) -> String {
        let (f, c) = (ty.shape[3], x.ty.shape[3]);
        let mut y = init.clone();
        if f > r {
            let kt = self.axis_slice(k, 3, 0, f - r);
            let whole = Val { name: init, ty: ty.clone() };
            let out = self.axis_slice(&whole, 3, 0, f - r);
            let part = self.conv_op("linalg.conv_2d_nhwc_hwcf", o, x, &kt, &out.name, &out.ty);
            y = self.insert_along(&part, &out.ty, &y, ty, 3, 0);
        }
        let products_ty = TensorType::new(ty.dtype, vec![ty.shape[0], ty.shape[1], ty.shape[2], c]);
        let one_ty = TensorType::new(ty.dtype, vec![ty.shape[0], ty.shape[1], ty.shape[2], 1]);
        for j in f - r..f {
            let kj = self.axis_slice(k, 3, j, 1);
            let kw_ty = TensorType::new(k.ty.dtype, k.ty.shape[..3].to_vec());
            let kj = Val { name: self.reshape(&kj, &kw_ty), ty: kw_ty };
            let zeros = self.filled(&products_ty, 0.0, Some(0));
            let products = self.conv_op("linalg.depthwise_conv_2d_nhwc_hwc", o, x, &kj, &zeros, &products_ty);
            let products = Val { name: products, ty: products_ty.clone() };
            let sum = self.reduce(&products, ReduceKind::Sum, &[3], &one_ty);
            y = self.insert_along(&sum, &one_ty, &y, ty, 3, j);
        }
        y
    }

    /// A channels-last 2-D convolution (`x` NHWC, `k` HWCF, result type
    /// `ty`) computed with `f` output channels: the filter zero-padded to
    /// `f`, the convolution into a zeroed `f`-channel result, whose first
    /// channels are the result (see `padded_channels`).
    fn conv_with_padded_channels(&mut self, o: &ConvSpec, x: &Val, k: &Val, ty: &TensorType, f: usize) -> String {
        let mut kshape = k.ty.shape.clone();
        kshape[3] = f;
        let kty = TensorType::new(k.ty.dtype, kshape);
        let kzeros = self.filled(&kty, 0.0, Some(0));
        let inserted = self.insert_along(&k.name, &k.ty, &kzeros, &kty, 3, 0);
        // Copied into a tensor of its own: the tiles then read whole
        // vectors of the copy. Left an insertion into zeros, tiling turned
        // each tile's slice of it into a pad of a slice of `k`, and every
        // filter read of the last channel tile became a masked load in the
        // innermost loop (2×57×57×63 → 24, AVX2, one thread: 6.2 ms, 3.6
        // with the copy; 1×30×30×63 → 24 0.43 against 0.35 ms for → 32).
        let kpadded = Val { name: self.e.copy_to_fresh(&inserted, &kty), ty: kty };
        let mut yshape = ty.shape.clone();
        yshape[3] = f;
        let yty = TensorType::new(ty.dtype, yshape);
        let init = self.filled(&yty, 0.0, Some(0));
        let y = self.conv_op("linalg.conv_2d_nhwc_hwcf", o, x, &kpadded, &init, &yty);
        self.axis_slice(&Val { name: y, ty: yty }, 3, 0, ty.shape[3]).name
    }

    /// `part` (of type `part_ty`) inserted into `into` (of type `ty`) from
    /// `at` along `axis` (0 along the others): `axis_slice`'s converse.
    pub(crate) fn insert_along(&mut self, part: &str, part_ty: &TensorType, into: &str, ty: &TensorType, axis: usize, at: usize) -> String {
        let rank = ty.rank();
        let offsets: Vec<usize> = (0..rank).map(|a| if a == axis { at } else { 0 }).collect();
        self.e.op(&format!(
            "tensor.insert_slice {part} into {into}[{}] [{}] [{}] : {} into {}",
            join(&offsets),
            join(&part_ty.shape),
            join(vec![1; rank]),
            tensor_ty(part_ty),
            tensor_ty(ty)
        ))
    }

    /// Any convolution as one `linalg.generic` over the actual layouts. Loops:
    /// output batch, output feature, output spatial (parallel), then the
    /// kernel's input channel and spatial axes (reductions).
    fn generic_conv(&mut self, x: &Val, k: &Val, o: &ConvSpec, ty: &TensorType) -> String {
        let d = ty.dtype;
        let rank = ty.rank();
        let ns = rank - 2;
        let out_features = ty.shape[o.output_permutation[1]];
        let out_batch = ty.shape[o.output_permutation[0]];
        let in_ch = k.ty.shape[o.kernel_permutation[1]];
        let (fg, bg) = (o.feature_group_size, o.batch_group_size);
        let ch = ns + 2;
        let logical_x = |l: usize| -> String {
            match l {
                0 if bg > 1 => format!("d0 + (d1 floordiv {}) * {out_batch}", out_features / bg),
                0 => "d0".into(),
                1 if fg > 1 => format!("(d1 floordiv {}) * {in_ch} + d{ch}", out_features / fg),
                1 => format!("d{ch}"),
                _ => {
                    let a = l - 2;
                    format!(
                        "d{} * {} + d{} * {}",
                        l,
                        o.strides[a],
                        ch + 1 + a,
                        o.kernel_dilation[a]
                    )
                }
            }
        };
        let logical_k = |l: usize| -> String {
            match l {
                0 => "d1".into(),
                1 => format!("d{ch}"),
                _ => format!("d{}", ch + 1 + (l - 2)),
            }
        };
        let (ix, ik, iy) = (
            inverse(&o.input_permutation),
            inverse(&o.kernel_permutation),
            inverse(&o.output_permutation),
        );
        let xmap = join((0..rank).map(|j| logical_x(ix[j])));
        let kmap = join((0..rank).map(|j| logical_k(ik[j])));
        let ymap = join((0..rank).map(|j| format!("d{}", iy[j])));
        let init = self.filled(ty, 0.0, Some(0));
        let nloops = 2 * rank - 1;
        let red: Vec<bool> = (0..nloops).map(|i| i >= rank).collect();
        let outs = [GenericOperand {
            value: init,
            ty: ty.clone(),
            map: ymap,
        }];
        self.e
            .generic(
                nloops,
                &red,
                &[x.operand(xmap), k.operand(kmap)],
                &outs,
                |e, s| {
                    let m = e.binary(BinaryOp::Multiply, &s[0], &s[1], d);
                    vec![e.binary(BinaryOp::Add, &s[2], &m, d)]
                },
            )
            .remove(0)
    }

    /// `window_sum|product|max|min`: pad with the identity, then one generic
    /// whose window loops are reductions.
    #[allow(clippy::too_many_arguments, reason = "mirrors the graph op's fields")]
    pub fn window(
        &mut self,
        x: &Val,
        kind: ReduceKind,
        window: &[usize],
        strides: &[usize],
        padding: &[(i64, i64)],
        dilations: &[usize],
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        let d = ty.dtype;
        let rank = ty.rank();
        if x.ty.rank() != rank
            || window.len() != rank
            || strides.len() != rank
            || padding.len() != rank
        {
            return Err(LowerError::Internal("window option ranks disagree".into()));
        }
        let (op, ident, ident_int) = match kind {
            ReduceKind::Sum => (BinaryOp::Add, 0.0, Some(0)),
            ReduceKind::Product => (BinaryOp::Multiply, 1.0, Some(1)),
            ReduceKind::Max => (BinaryOp::Max, lowest(d), d.int_range().map(|r| r.0)),
            ReduceKind::Min => (BinaryOp::Min, highest(d), d.int_range().map(|r| r.1)),
            other => {
                return Err(LowerError::Internal(format!(
                    "{other:?} is not a window reduction"
                )));
            }
        };
        let lit = match ident_int {
            Some(i) if d.is_int() => Literal::Int(i),
            _ => Literal::Float(ident),
        };
        let config: Vec<(i64, i64, i64)> = padding.iter().map(|&(l, h)| (l, h, 0)).collect();
        let xp = self.padded(x, lit, &config)?;
        // The identity as an SSA constant, for the forms that fold from it.
        let start = |e: &mut Emitter| match ident_int {
            Some(i) if d.is_int() => e.int_const(d, i),
            _ => e.num_const(d, ident),
        };
        if rank == 0 {
            // No loops: the one element folds into the identity without reading
            // an output, so that fusion into consumers cannot fold it twice.
            return Ok(self.elementwise(&[&xp], ty, |e, a| {
                let s = start(e);
                e.binary(op, &s, &a[0], d)
            }));
        }
        let spec = WindowLoops {
            window,
            strides,
            dilations,
        };
        if let Some(name) = self.unrolled_window(&xp, &spec, ty, |e, vs| {
            vs.iter().fold(start(e), |acc, v| e.binary(op, &acc, v, d))
        }) {
            return Ok(name);
        }
        let init = self.filled(ty, ident, ident_int);
        Ok(self.window_generic(&xp, init, &spec, ty, |e, acc, v| e.binary(op, acc, v, d)))
    }

    /// A small window whose last axis is not strided (pooling over NHWC,
    /// or over NCHW with stride 1) as one element-wise op over a strided
    /// view of `xp` per window position, combined in the window loops'
    /// order (`body` folds them from the identity): the same values, in the
    /// same order, as the generic with window loops, which no schedule
    /// vectorizes (it stayed an eight-deep scalar loop nest: a 2×2 max pool
    /// of 8×112×112×64 f32 took 1.6 ms, XLA 1.15; a 3×3 stride-1 one of
    /// 8×64×56×56 NCHW 6.7 ms). The views read their last axis
    /// contiguously, so the element-wise schedule vectorizes them and fuses
    /// the op like any other (now 0.96 and 1.5 ms). A strided last axis
    /// keeps the generic: views with stride 2 there read lane by lane (2×2
    /// stride 2 over NCHW 8×64×112×112: 3.0 ms unrolled, 1.6 ms the
    /// generic). `None` then, or when the window is larger than
    /// `MAX_UNROLLED_WINDOW` positions.
    fn unrolled_window(
        &mut self,
        xp: &Val,
        w: &WindowLoops,
        ty: &TensorType,
        body: impl FnOnce(&mut Emitter, &[String]) -> String,
    ) -> Option<String> {
        let rank = ty.rank();
        let positions: usize = w.window.iter().product();
        if rank < 2
            || positions == 0
            || positions > MAX_UNROLLED_WINDOW
            || w.strides[rank - 1] != 1
            || ty.shape.contains(&0)
        {
            return None;
        }
        let mut views = Vec::with_capacity(positions);
        for p in 0..positions {
            // Window position `p`, row-major over the window axes (the
            // generic's loop order).
            let mut rest = p;
            let mut offsets = vec![0; rank];
            for i in (0..rank).rev() {
                offsets[i] = (rest % w.window[i]) * w.dilations[i];
                rest /= w.window[i];
            }
            let view = TensorType::new(xp.ty.dtype, ty.shape.clone());
            let name = self.e.op(&format!(
                "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
                xp.name,
                list(&offsets),
                list(&ty.shape),
                list(w.strides),
                tensor_ty(&xp.ty),
                tensor_ty(&view)
            ));
            views.push(Val { name, ty: view });
        }
        let refs: Vec<&Val> = views.iter().collect();
        Some(self.elementwise(&refs, ty, body))
    }

    /// One generic over the output loops (parallel) and the window loops
    /// (reductions) of the padded `xp`, accumulating into `init` with `body(acc, v)`.
    fn window_generic(
        &mut self,
        xp: &Val,
        init: String,
        w: &WindowLoops,
        ty: &TensorType,
        body: impl FnOnce(&mut Emitter, &str, &str) -> String,
    ) -> String {
        let rank = ty.rank();
        // Window loops come after the output loops; the window-shaped operand sizes them.
        let xmap = join((0..rank).map(|i| {
            format!(
                "d{i} * {} + d{} * {}",
                w.strides[i],
                rank + i,
                w.dilations[i]
            )
        }));
        let wty = TensorType::new(ty.dtype, w.window.to_vec());
        let wname = self.e.empty(&wty);
        let shape_operand = Val {
            name: wname,
            ty: wty,
        };
        let wmap = join((0..rank).map(|i| format!("d{}", rank + i)));
        let outs = [GenericOperand {
            value: init,
            ty: ty.clone(),
            map: identity_map(rank),
        }];
        let red: Vec<bool> = (0..2 * rank).map(|i| i >= rank).collect();
        let ins = [xp.operand(xmap), shape_operand.operand(wmap)];
        self.e
            .generic(2 * rank, &red, &ins, &outs, |e, a| {
                vec![body(e, &a[2], &a[0])]
            })
            .remove(0)
    }
}

/// The most window positions `unrolled_window` writes out (a 4×4 window;
/// 3×3 pooling is 9).
const MAX_UNROLLED_WINDOW: usize = 16;

/// The window of a window op: sizes, strides and dilations per axis.
struct WindowLoops<'a> {
    window: &'a [usize],
    strides: &'a [usize],
    dilations: &'a [usize],
}

impl Lowerer<'_> {
    /// `window_reduce`: pad with init, then one generic whose window loops are
    /// reductions and whose body is the inlined combiner, folding from init.
    pub fn window_reduce(
        &mut self,
        f: &Function,
        node: &Node,
        ops: &[Val],
        vals: &mut [Vec<Val>],
    ) -> Result<Vec<Val>, LowerError> {
        let Op::WindowReduce {
            window,
            strides,
            padding,
            dilations,
            body,
        } = &node.op
        else {
            return Err(LowerError::Internal("not a window_reduce".into()));
        };
        let ty = node
            .ty
            .as_tensor()
            .ok_or_else(|| LowerError::Internal("window_reduce of a tuple".into()))?
            .clone();
        let (Some(x), Some(init)) = (ops.first(), ops.get(1)) else {
            return Err(LowerError::Internal("window_reduce lacks operands".into()));
        };
        if ty.checked_num_elements() == Some(0) {
            let name = self.e.empty(&ty);
            return Ok(vec![Val { name, ty }]);
        }
        let d = ty.dtype;
        let rank = ty.rank();
        if x.ty.rank() != rank
            || window.len() != rank
            || strides.len() != rank
            || padding.len() != rank
        {
            return Err(LowerError::Internal("window option ranks disagree".into()));
        }
        let x = self.convert_tensor(x, d);
        let init = self.convert_tensor(init, d);
        let config: Vec<(i64, i64, i64)> = padding.iter().map(|&(l, h)| (l, h, 0)).collect();
        let xp = if config.iter().all(|&c| c == (0, 0, 0)) {
            x.clone()
        } else {
            let shape: Vec<usize> = (0..rank)
                .map(|i| (x.ty.shape[i] as i64 + padding[i].0 + padding[i].1) as usize)
                .collect();
            let pty = TensorType::new(d, shape);
            let name = self.pad(&x, &init, &config, &pty)?;
            Val { name, ty: pty }
        };
        let captured = self.captured_scalars(f, *body, vals)?;
        let mut failure = None;
        if rank == 0 {
            // No loops: fold the one element into init without reading an output (fusion-safe).
            let name = self.elementwise(&[&xp, &init], &ty, |e, a| {
                combine(e, f, *body, &a[1], &a[0], &captured, d).unwrap_or_else(|err| {
                    failure = Some(err);
                    a[1].clone()
                })
            });
            return match failure {
                Some(err) => Err(err),
                None => Ok(vec![Val { name, ty }]),
            };
        }
        let s = self.e.op(&format!(
            "tensor.extract {}[] : {}",
            init.name,
            tensor_ty(&init.ty)
        ));
        let fill = self.e.fill(&s, &ty);
        let spec = WindowLoops {
            window,
            strides,
            dilations,
        };
        let r = self.window_generic(&xp, fill, &spec, &ty, |e, acc, v| {
            combine(e, f, *body, acc, v, &captured, d).unwrap_or_else(|err| {
                failure = Some(err);
                acc.to_string()
            })
        });
        if let Some(err) = failure {
            return Err(err);
        }
        Ok(vec![Val { name: r, ty }])
    }
}

#[cfg(test)]
mod tests {
    use super::{
        CHANNEL_MAJOR_TAG, TRANSPOSE_MAX_RANK, TRANSPOSE_ROW_BITS, channels_last_scheduled, depthwise_conv,
        inverse, named_conv, transpose_tag,
    };
    use tensorc_passes::conv_schedule;
    use tensorc_ir::types::{DType, TensorType};
    use tensorc_passes::transpose_schedule as schedule;

    #[test]
    fn inverse_permutation() {
        assert_eq!(inverse(&[0, 3, 1, 2]), vec![0, 2, 3, 1]);
        assert_eq!(inverse(&[2, 0, 1]), vec![1, 2, 0]);
    }

    #[test]
    fn channels_last_ops_are_the_scheduled_ones() {
        let scheduled: Vec<&str> = conv_schedule::scheduled_ops().collect();
        for ns in 1..=3 {
            for names in [named_conv(ns), depthwise_conv(ns)].into_iter().flatten() {
                assert_eq!(channels_last_scheduled(names.1), scheduled.contains(&names.1), "{}", names.1);
                assert!(!scheduled.contains(&names.0), "{}", names.0);
            }
        }
        assert!(scheduled.iter().all(|op| channels_last_scheduled(op)));
    }

    #[test]
    fn channel_major_tag_is_the_schedules() {
        assert_eq!(CHANNEL_MAJOR_TAG, conv_schedule::CHANNEL_MAJOR);
    }

    #[test]
    fn transpose_tags_are_the_schedules() {
        assert_eq!(TRANSPOSE_MAX_RANK, schedule::MAX_RANK);
        for bits in schedule::BITS {
            assert_eq!(schedule::copy_lanes(bits) * bits, TRANSPOSE_ROW_BITS as u32);
        }
        let x = TensorType::new(DType::F32, vec![2, 3, 4]);
        assert_eq!(transpose_tag(&x, &[2, 0, 1]).as_deref(), Some(schedule::tag(3, 0, 32).as_str()));
        assert_eq!(transpose_tag(&x, &[1, 0, 2]).as_deref(), Some(schedule::tag(3, 2, 32).as_str()));
        // Trailing unit axes are skipped: a 1×1 kernel's OIHW → HWIO is
        // tagged by its input-channel axis, like the 2-D transpose it is.
        let k11 = TensorType::new(DType::F32, vec![256, 1024, 1, 1]);
        assert_eq!(transpose_tag(&k11, &[2, 3, 1, 0]).as_deref(), Some(schedule::tag(4, 2, 32).as_str()));
        // Rows of 64 f32 are one vector copy; 65 are left to the loops.
        let rows = |n: usize| TensorType::new(DType::F32, vec![3, 5, n]);
        assert!(transpose_tag(&rows(64), &[1, 0, 2]).is_some());
        assert_eq!(transpose_tag(&rows(65), &[1, 0, 2]), None);
        assert!(transpose_tag(&rows(65), &[0, 2, 1]).is_some());
        let b = TensorType::new(DType::BF16, vec![5, 7]);
        assert_eq!(transpose_tag(&b, &[1, 0]).as_deref(), Some(schedule::tag(2, 0, 16).as_str()));
        for d in [DType::S8, DType::U16, DType::S32, DType::F64] {
            assert!(schedule::BITS.contains(&d.bits()), "{d:?}");
        }
        // Empty axes and ranks without tiles stay untagged.
        assert_eq!(transpose_tag(&TensorType::new(DType::F32, vec![0, 3]), &[1, 0]), None);
        let r7 = TensorType::new(DType::F32, vec![1; 7]);
        assert_eq!(transpose_tag(&r7, &[6, 5, 4, 3, 2, 1, 0]), None);
    }
}

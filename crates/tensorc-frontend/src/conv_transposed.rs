//! Convolutions with input dilation (transposed convolutions) as one
//! ordinary convolution per output phase.
//!
//! With input dilation s along an axis, the dilated input holds s − 1 zeros
//! between neighbours, so a dense convolution of it multiplies zeros in all
//! but about 1/s of its taps (3/4 of the work in 2-D with stride 2). Output
//! positions `o = s·i + p` of one phase p meet x only through the kernel
//! taps `t ≡ lo − p (mod s)` (lo the low padding): writing `r` for the
//! least such tap and `c = (p + r − lo) / s`,
//!
//! `y[s·i + p] = Σ_u k[r + s·u] · x[i + u + c]`  (x zero outside its extent),
//!
//! an ordinary stride-1 convolution of x padded by `(−c, …)` (negative
//! padding crops) with the kernel's taps `r, r + s, …`. Each phase's result
//! goes into its strided slice of the output. The dense convolution also
//! multiplies every other tap by a zero, which is NaN for an infinite or NaN
//! tap, and Nx (the interpreter) computes those products: so each phase adds
//! `Σ 0·k` over the taps it skips, per output feature (0, or NaN where the
//! dense form has one); a phase with no taps is that sum alone.
//! Only for stride-1, undilated-kernel, ungrouped convolutions of at most
//! `MAX_PHASES` phases (each phase is a convolution to compile).

use tensorc_ir::graph::{BinaryOp, ConvSpec};
use tensorc_ir::types::{DType, TensorType};

use crate::LowerError;
use crate::emit::{GenericOperand, identity_map, tensor_ty};
use crate::lower::{Lowerer, Val, list};

/// The most phases (the product of the input dilations) split.
const MAX_PHASES: usize = 16;

/// One phase along one spatial axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Phase {
    /// The phase p: the output positions `s·i + p`.
    p: usize,
    /// Its outputs along the axis.
    outputs: usize,
    /// Its first kernel tap and how many it has (every s-th).
    tap: usize,
    taps: usize,
    /// The padding of x for its convolution (negative crops).
    lo: i64,
    hi: i64,
}

/// The phases of an axis of `len` input elements, dilation `s`, padding
/// `(lo, hi)`, `kernel` taps and `out` outputs (phases without outputs
/// left out).
fn phases(len: usize, s: usize, lo: i64, kernel: usize, out: usize) -> Vec<Phase> {
    let si = s as i64;
    (0..s.min(out))
        .map(|p| {
            let outputs = (out - p).div_ceil(s);
            let tap = (lo - p as i64).rem_euclid(si) as usize;
            let taps = if tap < kernel { (kernel - tap).div_ceil(s) } else { 0 };
            let c = (p as i64 + tap as i64 - lo) / si;
            let lo = -c;
            let hi = outputs as i64 + taps as i64 - 1 - len as i64 + c;
            Phase { p, outputs, tap, taps, lo, hi }
        })
        .collect()
}

/// Whether `conv` with `o` is split into phases: some input dilation, at
/// most `MAX_PHASES` phases, unit strides and kernel dilations, no groups,
/// no empty operand.
pub(crate) fn splits(o: &ConvSpec, x: &TensorType, k: &TensorType, y: &TensorType) -> bool {
    let phases: usize = o.input_dilation.iter().product();
    (2..=MAX_PHASES).contains(&phases)
        && o.strides.iter().all(|&s| s == 1)
        && o.kernel_dilation.iter().all(|&d| d == 1)
        && o.feature_group_size == 1
        && o.batch_group_size == 1
        && [x, k, y].iter().all(|t| t.checked_num_elements().is_some_and(|n| n > 0))
}

impl Lowerer<'_> {
    /// `conv` of `x` and `k` (both of `ty`'s dtype) with input dilation, by
    /// phases (`splits` says when).
    pub(crate) fn conv_by_phases(&mut self, x: &Val, k: &Val, o: &ConvSpec, ty: &TensorType) -> Result<String, LowerError> {
        let ns = o.strides.len();
        let axes: Vec<Vec<Phase>> = (0..ns)
            .map(|a| {
                phases(
                    x.ty.shape[o.input_permutation[a + 2]],
                    o.input_dilation[a],
                    o.padding[a].0,
                    k.ty.shape[o.kernel_permutation[a + 2]],
                    ty.shape[o.output_permutation[a + 2]],
                )
            })
            .collect();
        let all = axes.iter().fold(vec![Vec::new()], |acc, phases| {
            acc.iter().flat_map(|prefix: &Vec<Phase>| phases.iter().map(move |&ph| [prefix.clone(), vec![ph]].concat())).collect()
        });
        // Every output position is in one phase, so every one is written.
        let mut acc = self.e.empty(ty);
        for ph in &all {
            // Its outputs, and where they go in the result.
            let rank = ty.rank();
            let (mut offsets, mut sizes, mut strides) = (vec![0; rank], ty.shape.clone(), vec![1; rank]);
            for (a, phase) in ph.iter().enumerate() {
                let axis = o.output_permutation[a + 2];
                (offsets[axis], sizes[axis], strides[axis]) = (phase.p, phase.outputs, o.input_dilation[a]);
            }
            let yty = TensorType::new(ty.dtype, sizes.clone());
            let skipped = self.skipped_products(k, o, ph);
            let y = if ph.iter().all(|a| a.taps > 0) {
                let y = Val { name: self.phase_conv(x, k, o, ph, &yty)?, ty: yty.clone() };
                let f = o.output_permutation[1];
                self.gather_generic(&[y.operand(identity_map(rank)), skipped.operand(format!("d{f}"))], &yty, |e, a| {
                    e.binary(BinaryOp::Add, &a[0], &a[1], yty.dtype)
                })
            } else {
                let f = o.output_permutation[1];
                self.gather_generic(&[skipped.operand(format!("d{f}"))], &yty, |_, a| a[0].clone())
            };
            acc = self.e.op(&format!(
                "tensor.insert_slice {y} into {acc}[{}] [{}] [{}] : {} into {}",
                list(&offsets),
                list(&sizes),
                list(&strides),
                tensor_ty(&yty),
                tensor_ty(ty)
            ));
        }
        Ok(acc)
    }

    /// The ordinary convolution of phase `ph` (every axis with taps): x
    /// padded by the phase's padding, the kernel's phase taps (a strided
    /// view along its spatial axes).
    fn phase_conv(&mut self, x: &Val, k: &Val, o: &ConvSpec, ph: &[Phase], yty: &TensorType) -> Result<String, LowerError> {
        let rank = k.ty.rank();
        let (mut offsets, mut sizes, mut strides) = (vec![0; rank], k.ty.shape.clone(), vec![1; rank]);
        for (a, phase) in ph.iter().enumerate() {
            let axis = o.kernel_permutation[a + 2];
            (offsets[axis], sizes[axis], strides[axis]) = (phase.tap, phase.taps, o.input_dilation[a]);
        }
        let kty = TensorType::new(k.ty.dtype, sizes.clone());
        let kp = self.e.op(&format!(
            "tensor.extract_slice {}[{}] [{}] [{}] : {} to {}",
            k.name,
            list(&offsets),
            list(&sizes),
            list(&strides),
            tensor_ty(&k.ty),
            tensor_ty(&kty)
        ));
        let kp = Val { name: kp, ty: kty };
        let ns = ph.len();
        let spec = ConvSpec {
            strides: vec![1; ns],
            padding: ph.iter().map(|a| (a.lo, a.hi)).collect(),
            input_dilation: vec![1; ns],
            ..o.clone()
        };
        self.conv(x, &kp, &spec, yty)
    }

    /// Per output feature, `Σ 0·k` over the kernel taps phase `ph` skips
    /// (a 1-D tensor of k's dtype): which taps, from a constant mask over
    /// the kernel's spatial axes (not `linalg.index`, which a reduction's
    /// split would not offset).
    fn skipped_products(&mut self, k: &Val, o: &ConvSpec, ph: &[Phase]) -> Val {
        let rank = k.ty.rank();
        let spatial: Vec<usize> = (0..ph.len()).map(|a| o.kernel_permutation[a + 2]).collect();
        let extents: Vec<usize> = spatial.iter().map(|&ax| k.ty.shape[ax]).collect();
        let taps: usize = extents.iter().product();
        let mask: Vec<String> = (0..taps)
            .map(|flat| {
                let mut rest = flat;
                let mut used = true;
                for (a, &n) in extents.iter().enumerate().rev() {
                    let t = rest % n;
                    rest /= n;
                    let (first, step) = (ph[a].tap, o.input_dilation[a]);
                    used &= t >= first && (t - first) % step == 0;
                }
                if used { "0" } else { "1" }.to_string()
            })
            .collect();
        let mask_ty = TensorType::new(DType::U8, extents);
        let mask = self.e.op(&format!("arith.constant dense<[{}]> : {}", mask.join(", "), tensor_ty(&TensorType::new(DType::U8, vec![taps]))));
        let mask = self.reshape(&Val { name: mask, ty: TensorType::new(DType::U8, vec![taps]) }, &mask_ty);
        let mask = Val { name: mask, ty: mask_ty };
        let f = o.kernel_permutation[0];
        let out_ty = TensorType::new(k.ty.dtype, vec![k.ty.shape[f]]);
        let init = self.filled(&out_ty, 0.0, Some(0));
        let outs = [GenericOperand { value: init, ty: out_ty.clone(), map: format!("d{f}") }];
        let mask_map = spatial.iter().map(|ax| format!("d{ax}")).collect::<Vec<_>>().join(", ");
        let reduced: Vec<bool> = (0..rank).map(|i| i != f).collect();
        let d = k.ty.dtype;
        let name = self
            .e
            .generic(rank, &reduced, &[k.operand(identity_map(rank)), mask.operand(mask_map)], &outs, |e, a| {
                // `0·k` is NaN for a NaN or infinite k, else ±0 (0 here:
                // the sum's sign of zero is not kept). Spelled as a select:
                // Vulkan drivers may fold a product with the constant 0.
                let t = crate::emit::elem(d);
                let zero = e.num_const(d, 0.0);
                let nan = e.float_const(d, f64::NAN);
                let abs = e.un("math.absf", &a[0], t);
                let inf = e.float_const(d, f64::INFINITY);
                let nonfinite = e.cmpf("uge", &abs, &inf, d);
                let none = e.int_const(DType::U8, 0);
                let skipped = e.cmpi("ne", &a[1], &none, DType::U8);
                let poisons = e.op(&format!("arith.andi {skipped}, {nonfinite} : i1"));
                let term = e.select(&poisons, &nan, &zero, t);
                vec![e.binary(BinaryOp::Add, &a[2], &term, d)]
            })
            .remove(0);
        Val { name, ty: out_ty }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The phases of stride 2, padding 2 of 32 inputs with a 3-tap kernel
    /// (65 outputs): even outputs meet x through taps 0 and 2, odd ones
    /// through tap 1. Output 0 is `k[0]·P[0] + k[1]·P[1] + k[2]·P[2]` of the
    /// padded, dilated input P = [0, 0, x0, 0, x1, …]: only `k[2]·x0`, so
    /// the even phase reads x from −1 (padding 1 low); output 1 reads P[1..4]
    /// = [0, x0, 0]: `k[1]·x0`, so the odd phase starts at x0 (padding 0).
    #[test]
    fn phases_of_a_transposed_convolution() {
        let ph = phases(32, 2, 2, 3, 65);
        assert_eq!(ph.len(), 2);
        assert_eq!(ph[0], Phase { p: 0, outputs: 33, tap: 0, taps: 2, lo: 1, hi: 1 });
        assert_eq!(ph[1], Phase { p: 1, outputs: 32, tap: 1, taps: 1, lo: 0, hi: 0 });
    }

    /// A phase that meets no tap (dilation 3, one-tap kernel, no padding:
    /// outputs 1 and 2 of each three are zero).
    #[test]
    fn phases_without_taps() {
        let ph = phases(4, 3, 0, 1, 10);
        assert_eq!(ph.iter().map(|p| p.taps).collect::<Vec<_>>(), vec![1, 0, 0]);
        assert_eq!(ph[0].outputs, 4);
    }
}

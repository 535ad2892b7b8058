//! Reductions, arg-reductions and `dot`: the ops whose cost matters, so they
//! work on typed vectors with simple loops (a batched i,k,j matmul for dot).

use tensorc_ir::graph::{ConvSpec, ReduceKind};
use tensorc_ir::{DType, Tensor, TensorType};

use crate::InterpError;
use crate::elementwise::{fmax, fmin};
use crate::layout::{for_each_index, gather_vec, strides, transpose_map};
use crate::value::{Lanes, decode, decode_as, encode, round_to, wrap};

/// `sum`/`product`/`reduce_max`/`reduce_min`/`all`/`any` of `x` over sorted
/// `axes` into a tensor of type `out` (its shape already reflects keep_axes).
/// Elements are combined in row-major order, rounding to the dtype each step.
pub fn reduce(kind: ReduceKind, x: &Tensor, axes: &[usize], out: TensorType) -> Result<Tensor, InterpError> {
    let d = out.dtype;
    let in_shape = x.shape().to_vec();
    // Output position of every input element: reduced axes contribute nothing.
    let kept: Vec<usize> = (0..in_shape.len()).filter(|a| !axes.contains(a)).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&a| in_shape[a]).collect();
    let kst = strides(&kept_shape);
    let mut ost = vec![0usize; in_shape.len()];
    for (k, &a) in kept.iter().enumerate() {
        ost[a] = kst[k];
    }
    let n_out: usize = kept_shape.iter().product();
    if n_out != out.num_elements() {
        return Err(InterpError::Internal(format!("reduction to {out} from {}", x.ty())));
    }
    let fold = |f: &mut dyn FnMut(usize, usize)| {
        for_each_index(&in_shape, |flat, idx| {
            let o: usize = idx.iter().zip(&ost).map(|(i, s)| i * s).sum();
            f(o, flat)
        })
    };
    let lanes = match kind {
        ReduceKind::All | ReduceKind::Any => {
            // Truth is "nonzero" in the operand's own type, before any conversion.
            let truth: Vec<bool> = match decode(x) {
                Lanes::Int(v) => v.iter().map(|&e| e != 0).collect(),
                Lanes::Float(v) => v.iter().map(|&e| e != 0.0).collect(),
            };
            let all = kind == ReduceKind::All;
            let mut acc = vec![all; n_out];
            fold(&mut |o, i| {
                if all {
                    acc[o] &= truth[i]
                } else {
                    acc[o] |= truth[i]
                }
            });
            Lanes::Int(acc.into_iter().map(|b| b as i128).collect())
        }
        _ => match decode_as(x, d) {
            Lanes::Float(v) => {
                let (init, op): (f64, fn(f64, f64) -> f64) = match kind {
                    ReduceKind::Sum => (0.0, |a, b| a + b),
                    ReduceKind::Product => (1.0, |a, b| a * b),
                    ReduceKind::Max => (f64::NEG_INFINITY, fmax),
                    _ => (f64::INFINITY, fmin),
                };
                let mut acc = vec![init; n_out];
                fold(&mut |o, i| acc[o] = round_to(d, op(acc[o], v[i])));
                Lanes::Float(acc)
            }
            Lanes::Int(v) => {
                let (lo, hi) = d.int_range().expect("integer dtype");
                let (init, op): (i128, fn(i128, i128) -> i128) = match kind {
                    ReduceKind::Sum => (0, i128::wrapping_add),
                    ReduceKind::Product => (1, i128::wrapping_mul),
                    ReduceKind::Max => (lo, i128::max),
                    _ => (hi, i128::min),
                };
                let mut acc = vec![init; n_out];
                // Wrapping modulo 2^128 on the way agrees with modulo 2^bits at the end.
                fold(&mut |o, i| acc[o] = op(acc[o], v[i]));
                Lanes::Int(acc.into_iter().map(|a| wrap(d, a)).collect())
            }
        },
    };
    encode(out, &lanes)
}

/// `argmax`/`argmin`. NaN counts as both the maximum and the minimum; among
/// equal values — NaNs count as equal to each other — `tie_break_high` picks
/// the last index, otherwise the first. (Nx allows any NaN's index; breaking
/// NaN ties like other ties is what the compiled code does.)
pub fn arg_reduce(
    max: bool,
    x: &Tensor,
    axis: Option<usize>,
    tie_break_high: bool,
    out: TensorType,
) -> Result<Tensor, InterpError> {
    let shape = x.shape();
    // View x as [outer][n][inner] with the reduced axis in the middle.
    let (outer, n, inner) = match axis {
        None => (1, x.len(), 1),
        Some(a) => (shape[..a].iter().product(), shape[a], shape[a + 1..].iter().product::<usize>()),
    };
    if outer * inner != out.num_elements() {
        return Err(InterpError::Internal(format!("arg-reduction to {out} from {}", x.ty())));
    }
    // Ordering of the operand's own values: NaN is "better" than everything.
    let lanes = decode(x);
    let better = |cand: usize, best: usize| -> bool {
        match &lanes {
            Lanes::Float(v) => {
                let (c, b) = (v[cand], v[best]);
                if b.is_nan() {
                    c.is_nan() && tie_break_high
                } else if c.is_nan() {
                    true
                } else if max {
                    c > b || (tie_break_high && c == b)
                } else {
                    c < b || (tie_break_high && c == b)
                }
            }
            Lanes::Int(v) => {
                let (c, b) = (v[cand], v[best]);
                if max { c > b || (tie_break_high && c == b) } else { c < b || (tie_break_high && c == b) }
            }
        }
    };
    let mut res = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            let mut best = 0usize;
            for k in 1..n {
                if better(at(k), at(best)) {
                    best = k;
                }
            }
            res.push(wrap(out.dtype, best as i128));
        }
    }
    encode(out, &Lanes::Int(res))
}

/// Element type of a dot's inner loop: multiply-accumulate in the result type.
trait Mac: Copy {
    const ZERO: Self;
    fn mac(self, a: Self, b: Self) -> Self;
}

impl Mac for f32 {
    const ZERO: f32 = 0.0;
    #[inline(always)]
    fn mac(self, a: f32, b: f32) -> f32 {
        self + a * b
    }
}

impl Mac for f64 {
    const ZERO: f64 = 0.0;
    #[inline(always)]
    fn mac(self, a: f64, b: f64) -> f64 {
        self + a * b
    }
}

/// Integers of every width accumulate modulo 2^64 and are wrapped to their
/// width at the end, which equals wrapping at every step.
impl Mac for u64 {
    const ZERO: u64 = 0;
    #[inline(always)]
    fn mac(self, a: u64, b: u64) -> u64 {
        self.wrapping_add(a.wrapping_mul(b))
    }
}

/// `c[b][i][j] += a[b][i][k] * w[b][k][j]`, loops ordered i,k,j so the inner
/// loop streams rows of both `w` and `c`.
fn batched_matmul<T: Mac>(a: &[T], w: &[T], batch: usize, m: usize, k: usize, n: usize) -> Vec<T> {
    let mut c = vec![T::ZERO; batch * m * n];
    for bi in 0..batch {
        let (ab, wb) = (&a[bi * m * k..], &w[bi * k * n..]);
        let cb = &mut c[bi * m * n..(bi + 1) * m * n];
        for i in 0..m {
            let crow = &mut cb[i * n..(i + 1) * n];
            for kk in 0..k {
                let aik = ab[i * k + kk];
                let wrow = &wb[kk * n..(kk + 1) * n];
                // A plain indexed loop: it is also fast in unoptimized test builds.
                for j in 0..n {
                    crow[j] = crow[j].mac(aik, wrow[j]);
                }
            }
        }
    }
    c
}

/// General `dot`: contract paired axes, batch over the leading axes; output
/// is batch ++ free(a) ++ free(b). Operands are converted to `out.dtype`.
pub fn dot(
    a: &Tensor,
    b: &Tensor,
    contract_a: &[usize],
    batch_a: &[usize],
    contract_b: &[usize],
    batch_b: &[usize],
    out: TensorType,
) -> Result<Tensor, InterpError> {
    let d = out.dtype;
    let (sa, sb) = (a.shape(), b.shape());
    let free = |rank: usize, c: &[usize], bt: &[usize]| -> Vec<usize> {
        (0..rank).filter(|x| !c.contains(x) && !bt.contains(x)).collect()
    };
    let (free_a, free_b) = (free(sa.len(), contract_a, batch_a), free(sb.len(), contract_b, batch_b));
    let size = |s: &[usize], axes: &[usize]| axes.iter().map(|&x| s[x]).product::<usize>();
    let batch = size(sa, batch_a);
    let (m, k, n) = (size(sa, &free_a), size(sa, contract_a), size(sb, &free_b));
    if batch * m * n != out.num_elements() || k != size(sb, contract_b) {
        return Err(InterpError::Internal(format!("dot of {} and {} into {out}", a.ty(), b.ty())));
    }
    // Bring a to [batch][free][contract] and b to [batch][contract][free].
    let perm_a: Vec<usize> = batch_a.iter().chain(&free_a).chain(contract_a).copied().collect();
    let perm_b: Vec<usize> = batch_b.iter().chain(contract_b).chain(&free_b).copied().collect();
    let (map_a, map_b) = (transpose_map(sa, &perm_a), transpose_map(sb, &perm_b));
    let lanes = match (decode_as(a, d), decode_as(b, d)) {
        (Lanes::Float(va), Lanes::Float(vb)) => {
            let (va, vb) = (gather_vec(&va, &map_a), gather_vec(&vb, &map_b));
            Lanes::Float(match d {
                DType::F64 => batched_matmul(&va, &vb, batch, m, k, n),
                // f32, and f16/bf16 accumulated in f32 and rounded once at
                // the end, as XLA (EXLA) does; Nx's binary backend sums in
                // f64 and rounds once too.
                _ => {
                    let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
                    batched_matmul(&f(va), &f(vb), batch, m, k, n).into_iter().map(|x| round_to(d, f64::from(x))).collect()
                }
            })
        }
        (Lanes::Int(va), Lanes::Int(vb)) => {
            let f = |v: &[i128], map: &[usize]| map.iter().map(|&i| v[i] as u64).collect::<Vec<u64>>();
            let c = batched_matmul(&f(&va, &map_a), &f(&vb, &map_b), batch, m, k, n);
            Lanes::Int(c.into_iter().map(|x| wrap(d, x as i128)).collect())
        }
        _ => return Err(InterpError::Internal("dot operands of mixed kinds".into())),
    };
    encode(out, &lanes)
}

/// Nx's `conv`: operands converted to the (float) result dtype; every output
/// element is the sum over kernel channels, then kernel positions, of
/// input × kernel, rounding to the dtype after every multiply and add.
/// Kernel-dilation holes are skipped (as a dilated window does), while input
/// padding and input-dilation holes take part as zeros.
pub fn conv(input: &Tensor, kernel: &Tensor, spec: &ConvSpec, out: TensorType) -> Result<Tensor, InterpError> {
    let d = out.dtype;
    let rank = input.shape().len();
    let bad = |what: &str| InterpError::Internal(format!("conv of {} and {} into {out}: {what}", input.ty(), kernel.ty()));
    if rank < 2 || kernel.shape().len() != rank || out.rank() != rank {
        return Err(bad("ranks differ"));
    }
    let ns = rank - 2;
    let (Lanes::Float(xa), Lanes::Float(wa)) = (decode_as(input, d), decode_as(kernel, d)) else {
        return Err(bad("result is not a float type"));
    };
    // Logical layouts: x [N][C][S…], w [O][I][K…], y [N/bg][O][P…].
    let x = gather_vec(&xa, &transpose_map(input.shape(), &spec.input_permutation));
    let w = gather_vec(&wa, &transpose_map(kernel.shape(), &spec.kernel_permutation));
    let xs: Vec<usize> = spec.input_permutation.iter().map(|&p| input.shape()[p]).collect();
    let ws: Vec<usize> = spec.kernel_permutation.iter().map(|&p| kernel.shape()[p]).collect();
    let ys: Vec<usize> = spec.output_permutation.iter().map(|&p| out.shape[p]).collect();
    let (n, c, o, i) = (xs[0], xs[1], ws[0], ws[1]);
    let (fg, bg) = (spec.feature_group_size.max(1), spec.batch_group_size.max(1));
    if c != i * fg || o % fg != 0 || o % bg != 0 || n % bg != 0 || ys[0] != n / bg || ys[1] != o {
        return Err(bad("channel or group sizes disagree"));
    }
    let (sp_x, sp_w, sp_y) = (&xs[2..], &ws[2..], &ys[2..]);
    let lens = [spec.strides.len(), spec.padding.len(), spec.input_dilation.len(), spec.kernel_dilation.len()];
    if lens.iter().any(|&l| l != ns) || [&spec.strides, &spec.input_dilation, &spec.kernel_dilation].iter().any(|v| v.contains(&0)) {
        return Err(bad("bad strides, padding or dilations"));
    }
    for a in 0..ns {
        let padded = spec.padding[a].0
            + spec.padding[a].1
            + if sp_x[a] == 0 { 0 } else { ((sp_x[a] - 1) * spec.input_dilation[a] + 1) as i64 };
        let window = if sp_w[a] == 0 { 0 } else { ((sp_w[a] - 1) * spec.kernel_dilation[a] + 1) as i64 };
        let want = if padded < window { 0 } else { ((padded - window) / spec.strides[a] as i64 + 1) as usize };
        if want != sp_y[a] {
            return Err(bad("spatial sizes disagree"));
        }
    }
    let (sx, sw): (usize, usize) = (sp_x.iter().product(), sp_w.iter().product());
    let (x_st, w_pos, y_pos) = (strides(sp_x), all_indices(sp_w), all_indices(sp_y));
    // For one output position, where each kernel position reads the unpadded,
    // undilated input (None where it reads padding or a dilation hole).
    let source = |p: &[usize], k: &[usize]| -> Option<usize> {
        let mut flat = 0;
        for a in 0..ns {
            let q = (p[a] * spec.strides[a] + k[a] * spec.kernel_dilation[a]) as i64 - spec.padding[a].0;
            let dil = spec.input_dilation[a] as i64;
            if q < 0 || q % dil != 0 || q / dil >= sp_x[a] as i64 {
                return None;
            }
            flat += (q / dil) as usize * x_st[a];
        }
        Some(flat)
    };
    let mut y = Vec::with_capacity(ys.iter().product());
    for b in 0..n / bg {
        for f in 0..o {
            let group = f / (o / fg);
            let b_in = b + (f / (o / bg)) * (n / bg);
            for p in &y_pos {
                let srcs: Vec<Option<usize>> = w_pos.iter().map(|k| source(p, k)).collect();
                let mut acc = 0.0f64;
                for ch in 0..i {
                    let xbase = (b_in * c + group * i + ch) * sx;
                    let wbase = (f * i + ch) * sw;
                    for (kk, s) in srcs.iter().enumerate() {
                        // Padding and input-dilation holes are zeros that still
                        // multiply (0 × inf is NaN), as in Nx's pad-then-convolve.
                        let xv = s.map_or(0.0, |s| x[xbase + s]);
                        acc = round_to(d, acc + round_to(d, xv * w[wbase + kk]));
                    }
                }
                y.push(acc);
            }
        }
    }
    // Back to the actual layout: actual axis perm[l] holds logical axis l.
    let y_st = strides(&ys);
    let perm = &spec.output_permutation;
    let map = crate::layout::index_map(&out.shape, |a| Some((0..rank).map(|l| a[perm[l]] * y_st[l]).sum()));
    encode(out, &Lanes::Float(gather_vec(&y, &map)))
}

/// Every multi-index of a shape, row-major.
fn all_indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut v = Vec::new();
    for_each_index(shape, |_, idx| v.push(idx.to_vec()));
    v
}

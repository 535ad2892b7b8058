//! `conv` with random strides, padding (negative included), input and
//! kernel dilations, feature or batch groups and layouts, and
//! `triangular_solve` on matrices built to be well conditioned.
//!
//! Both are sums of products, modelled like `dot`: the propagated error
//! plus reassociation of `n` terms. A triangular solve divides, so its
//! matrix is made diagonally dominant from its parameter (clipped into
//! [-1, 1], scaled by 1/4, plus the identity: diagonal in [3/4, 5/4],
//! off-diagonal at most 1/4), which bounds how much substitution can grow
//! values and errors.

use super::Gen;
use crate::model::{self, is_finite_range, max_abs, unit};
use tensorc_ir::{DType, TensorType};

impl Gen<'_> {
    /// A random permutation of `0..r`, or the identity; `None` when it is the
    /// identity (the option is then left out, or written anyway sometimes).
    fn layout(&mut self, r: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..r).collect();
        match self.rng.below(4) {
            // Channels last (NHWC-like): logical channel axis is the last actual one.
            0 => {
                p = vec![0, r - 1];
                p.extend(1..r - 1);
            }
            1 => self.rng.shuffle(&mut p),
            _ => {}
        }
        p
    }

    /// `conv x, k, …` with Nx's options; the result is a float.
    pub(super) fn conv(&mut self) -> Option<()> {
        if !self.allowed("conv") {
            return None;
        }
        let ns = if self.rng.chance(0.1) {
            3
        } else {
            1 + self.rng.below(2)
        };
        let r = ns + 2;
        let (fg, bg) = match self.rng.below(4) {
            0 => (2 + self.rng.below(2), 1),
            1 => (1, 2),
            _ => (1, 1),
        };
        let per_group = 1 + self.rng.below(2);
        let in_ch = per_group * fg;
        let out_ch = fg * bg * (1 + self.rng.below(2));
        let batch = bg * (1 + self.rng.below(2));
        let mode = self.rng.below(3);
        let (mut xs, mut ks, mut ys) = (
            vec![batch, in_ch],
            vec![out_ch, per_group],
            vec![batch / bg, out_ch],
        );
        let (mut strides, mut idil, mut kdil, mut pads) = (vec![], vec![], vec![], vec![]);
        for _ in 0..ns {
            let d = 1 + self.rng.below(4);
            let kd = 1 + self.rng.below(3);
            let id = if self.rng.chance(0.2) { 2 } else { 1 };
            let kk = if self.rng.chance(0.2) { 2 } else { 1 };
            let st = if self.rng.chance(0.3) { 2 } else { 1 };
            let in_sp = (d - 1) * id + 1;
            let k_sp = (kd - 1) * kk + 1;
            let (lo, hi): (i64, i64) = match mode {
                0 => (0, 0),
                1 => {
                    let lo = (k_sp as i64 - 1) / 2;
                    (lo, k_sp as i64 - 1 - lo)
                }
                _ => (self.rng.below(4) as i64 - 1, self.rng.below(4) as i64 - 1),
            };
            let padded = in_sp as i64 + lo + hi;
            if padded < k_sp as i64 {
                return None;
            }
            xs.push(d);
            ks.push(kd);
            ys.push((padded as usize - k_sp) / st + 1);
            strides.push(st);
            idil.push(id);
            kdil.push(kk);
            pads.push((lo, hi));
        }
        let (ip, kp, op) = (self.layout(r), self.layout(r), self.layout(r));
        let actual = |logical: &[usize], perm: &[usize]| {
            let mut s = vec![0; r];
            for (l, &p) in perm.iter().enumerate() {
                s[p] = logical[l];
            }
            s
        };
        let (xa, ka, ya) = (actual(&xs, &ip), actual(&ks, &kp), actual(&ys, &op));
        if !self.fits(&xa) || !self.fits(&ka) || !self.fits(&ya) {
            return None;
        }
        // Mostly f32/f64 (half-type sums of many products exceed their
        // tolerance), and mostly one dtype for both operands.
        let wide: Vec<DType> = self
            .cfg
            .dtypes
            .iter()
            .copied()
            .filter(|d| matches!(d, DType::F32 | DType::F64))
            .collect();
        let d0 = if !wide.is_empty() && self.rng.chance(0.6) {
            wide[self.rng.below(wide.len())]
        } else {
            self.dtype()
        };
        let operand = |g: &mut Self, shape: &[usize]| -> Option<usize> {
            let v = match g.pick_any(|v| v.ty.shape == shape) {
                Some(v) if g.rng.chance(0.4) => v,
                _ => {
                    let d = if g.rng.chance(0.7) { d0 } else { g.dtype() };
                    g.new_param(TensorType::new(d, shape.to_vec()))
                }
            };
            g.bounded(v)
        };
        let x = operand(self, &xa)?;
        let k = operand(self, &ka)?;
        let (a, b) = (self.pool[x].clone(), self.pool[k].clone());
        let dtype = DType::merge(a.ty.dtype, b.ty.dtype).to_float();
        if !is_finite_range(a.lo, a.hi) || !is_finite_range(b.lo, b.hi) {
            return None;
        }
        let n = (per_group * ks[2..].iter().product::<usize>()) as f64;
        let (ma, mb) = (max_abs(a.lo, a.hi), max_abs(b.lo, b.hi));
        let m = n * ma * mb;
        let u = unit(dtype);
        // Integer operands are converted first: exact below 2^24 (f32).
        let conv_err = |v: &super::Val, mv: f64| if v.ty.dtype.is_int() { u * mv } else { v.err };
        let (ea, eb) = (conv_err(&a, ma), conv_err(&b, mb));
        let err = n * (ma * eb + mb * ea + ea * eb) + n * n * u * ma * mb + u * m;
        if err > model::budget(dtype, -m, m) {
            return None;
        }
        let mut rhs = format!("conv {}, {}", a.name, b.name);
        if strides.iter().any(|&s| s != 1) || self.rng.chance(0.2) {
            rhs.push_str(&format!(", strides: {}", super::list(&strides)));
        }
        match mode {
            0 if self.rng.chance(0.7) => {}
            0 => rhs.push_str(", padding: :valid"),
            1 => rhs.push_str(", padding: :same"),
            _ => {
                let p: Vec<String> = pads
                    .iter()
                    .map(|(lo, hi)| format!("{{{lo}, {hi}}}"))
                    .collect();
                rhs.push_str(&format!(", padding: [{}]", p.join(", ")));
            }
        }
        if idil.iter().any(|&s| s != 1) {
            rhs.push_str(&format!(", input_dilation: {}", super::list(&idil)));
        }
        if kdil.iter().any(|&s| s != 1) {
            rhs.push_str(&format!(", kernel_dilation: {}", super::list(&kdil)));
        }
        if fg != 1 {
            rhs.push_str(&format!(", feature_group_size: {fg}"));
        }
        if bg != 1 {
            rhs.push_str(&format!(", batch_group_size: {bg}"));
        }
        let identity = |p: &[usize]| p.iter().copied().eq(0..p.len());
        for (opt, p) in [
            ("input_permutation", &ip),
            ("kernel_permutation", &kp),
            ("output_permutation", &op),
        ] {
            if !identity(p) || self.rng.chance(0.1) {
                rhs.push_str(&format!(", {opt}: {}", super::list(p)));
            }
        }
        self.push(rhs, TensorType::new(dtype, ya), -m, m, err);
        Some(())
    }

    /// `triangular_solve a, b, …` with `a` made diagonally dominant first.
    pub(super) fn triangular_solve(&mut self) -> Option<()> {
        let used = ["triangular_solve", "eye", "multiply", "add"];
        if !used.iter().all(|op| self.allowed(op)) {
            return None;
        }
        let n = 1 + self.rng.below(4);
        let batch: Vec<usize> = if self.rng.chance(0.2) {
            vec![1 + self.rng.below(2)]
        } else {
            vec![]
        };
        let mut ashape = batch.clone();
        ashape.extend([n, n]);
        let d = self.float_dtype();
        let a0 = match self.pick_any(|v| v.ty.shape == ashape && v.exact() && v.ty.dtype == d) {
            Some(v) if self.rng.chance(0.3) => v,
            _ => self.new_param(TensorType::new(d, ashape.clone())),
        };
        let a1 = self.condition(a0, -1.0, 1.0)?;
        let (a1n, a1v) = (self.pool[a1].name.clone(), self.pool[a1].clone());
        let a2 = self.push(
            format!("multiply {a1n}, 0.25"),
            a1v.ty.clone(),
            a1v.lo / 4.0,
            a1v.hi / 4.0,
            0.0,
        );
        let e = self.push(
            "eye".to_string(),
            TensorType::new(d, ashape.clone()),
            0.0,
            1.0,
            0.0,
        );
        let (a2n, en) = (self.pool[a2].name.clone(), self.pool[e].name.clone());
        let a = self.push(
            format!("add {a2n}, {en}"),
            TensorType::new(d, ashape.clone()),
            -0.25,
            1.25,
            0.0,
        );
        let a = self.pool[a].clone();
        let left = self.rng.chance(0.6);
        let m = 1 + self.rng.below(3);
        let mut bshape = batch.clone();
        match (left, self.rng.chance(0.4)) {
            (true, true) => bshape.push(n),
            (true, false) => bshape.extend([n, m]),
            (false, _) => bshape.extend([m, n]),
        }
        let bd = if self.rng.chance(0.7) {
            d
        } else {
            self.dtype()
        };
        let b = match self.pick_any(|v| v.ty.shape == bshape && v.exact()) {
            Some(v) if self.rng.chance(0.4) => v,
            _ => self.new_param(TensorType::new(bd, bshape.clone())),
        };
        let b = self.bounded(b)?;
        let b = self.pool[b].clone();
        if !b.exact() || !is_finite_range(b.lo, b.hi) {
            return None;
        }
        let dtype = DType::merge(a.ty.dtype, b.ty.dtype).to_float();
        // |x_i| <= (|b| + 1/4 sum_{j<i} |x_j|) / (3/4): the bound grows like (4/3 + ...)^i.
        let bm = max_abs(b.lo, b.hi);
        let (mut sum, mut xm) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let xi = (bm + 0.25 * sum) / 0.75;
            sum += xi;
            xm = xm.max(xi);
        }
        let u = unit(dtype);
        let growth = (1.0f64 + 1.0 / 3.0).powi(n as i32);
        let conv = if b.ty.dtype.is_int() { u * bm } else { 0.0 };
        let err = 2.0 * (n as f64 + 1.0) * (u * xm + conv) * growth * 2.0;
        if err > model::budget(dtype, -xm, xm) {
            return None;
        }
        let mut rhs = format!("triangular_solve {}, {}", a.name, b.name);
        let lower = self.rng.chance(0.5);
        if !left {
            rhs.push_str(", left_side: false");
        }
        if !lower || self.rng.chance(0.2) {
            rhs.push_str(&format!(", lower: {lower}"));
        }
        if self.rng.chance(0.4) {
            rhs.push_str(", transform_a: :transpose");
        }
        self.push(rhs, TensorType::new(dtype, bshape), -xm, xm, err);
        Some(())
    }
}

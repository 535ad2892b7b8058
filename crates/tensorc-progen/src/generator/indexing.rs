//! Data-dependent indexing and selection beyond `take`: `gather`,
//! `take_along_axis`, `indexed_add`/`indexed_put`, `slice`/`put_slice` with
//! tensor starts, and `top_k`.
//!
//! Index tensors are integers, so they are exact on both sides and any value
//! is fair (out-of-range indices clamp, or are skipped by the scatter ops —
//! both behaviours worth testing); the values moved keep their range and
//! error. What needs care is only what may differ legitimately: `top_k`'s
//! indices of inexact values, and the order-dependent float sums of
//! `indexed_add` with repeated indices.

use super::{Gen, Val, list};
use crate::model::{self, is_finite_range, max_abs, unit};
use tensorc_ir::{DType, TensorType};

impl Gen<'_> {
    /// An integer index tensor of exactly `shape`: a live one or a new parameter.
    fn index_tensor(&mut self, shape: &[usize]) -> usize {
        match self.pick_any(|w| w.ty.dtype.is_int() && w.ty.shape == shape) {
            Some(i) if self.rng.chance(0.4) => i,
            _ => {
                let d = self.int_dtype();
                self.new_param(TensorType::new(d, shape.to_vec()))
            }
        }
    }

    /// A scalar integer tensor (a dynamic start index).
    fn scalar_index(&mut self) -> usize {
        self.index_tensor(&[])
    }

    /// `gather x, idx, axes: [..]`: `idx[..., k]` indexes axis `axes[k]`.
    pub(super) fn gather(&mut self) -> Option<()> {
        if !self.allowed("gather") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1 && v.ty.shape.iter().all(|&d| d > 0))?;
        self.gather_source_ok(x)?;
        let v = self.pool[x].clone();
        let r = v.ty.rank();
        let mut axes: Vec<usize> = (0..r).filter(|_| self.rng.chance(0.5)).collect();
        if axes.is_empty() {
            axes.push(self.rng.below(r));
        }
        let lead: Vec<usize> = (0..self.rng.below(3)).map(|_| self.rng.below(4)).collect();
        let mut ishape = lead.clone();
        ishape.push(axes.len());
        let mut shape = lead;
        shape.extend((0..r).filter(|i| !axes.contains(i)).map(|i| v.ty.shape[i]));
        if !self.fits(&shape) || !self.fits(&ishape) {
            return None;
        }
        let idx = self.index_tensor(&ishape);
        let default_axes = axes.iter().copied().eq(0..axes.len());
        let mut rhs = format!("gather {}, {}", v.name, self.pool[idx].name);
        if !default_axes || self.rng.chance(0.5) {
            let text = self.axes_list(&axes, r);
            rhs.push_str(&format!(", axes: {text}"));
        }
        self.push(rhs, TensorType::new(v.ty.dtype, shape), v.lo, v.hi, v.err);
        Some(())
    }

    /// `take_along_axis x, idx, axis: k`: idx matches x except on axis k.
    pub(super) fn take_along_axis(&mut self) -> Option<()> {
        if !self.allowed("take_along_axis") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1 && v.ty.shape.iter().all(|&d| d > 0))?;
        self.gather_source_ok(x)?;
        let v = self.pool[x].clone();
        let axis = self.rng.below(v.ty.rank());
        let mut ishape = v.ty.shape.clone();
        ishape[axis] = self.rng.below(5);
        if !self.fits(&ishape) {
            return None;
        }
        let idx = self.index_tensor(&ishape);
        let axis_text = self.axis(axis, v.ty.rank());
        let rhs = format!(
            "take_along_axis {}, {}, axis: {axis_text}",
            v.name, self.pool[idx].name
        );
        self.push(rhs, TensorType::new(v.ty.dtype, ishape), v.lo, v.hi, v.err);
        Some(())
    }

    /// `indexed_add t, idx, u, axes: [..]` and `indexed_put`: `idx` is
    /// `[n][k]` (or `[k]`, one update), `u` is `[n]` and a window no larger
    /// than t's non-indexed axes. Indices are small random integers, so they
    /// repeat and fall outside the axes (those updates are skipped).
    pub(super) fn indexed(&mut self) -> Option<()> {
        let add = self.rng.chance(0.5);
        let op = if add { "indexed_add" } else { "indexed_put" };
        if !self.allowed(op) {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1)?;
        let x = if add { self.bounded(x)? } else { x };
        let t = self.pool[x].clone();
        let r = t.ty.rank();
        let mut axes: Vec<usize> = (0..r).filter(|_| self.rng.chance(0.5)).collect();
        if axes.is_empty() {
            axes.push(self.rng.below(r));
        }
        let k = axes.len();
        let single = self.rng.chance(0.2);
        let n = if single { 1 } else { self.rng.below(5) };
        let rest: Vec<usize> = (0..r).filter(|i| !axes.contains(i)).collect();
        let window: Vec<usize> = rest
            .iter()
            .map(|&ax| {
                let d = t.ty.shape[ax];
                if self.rng.chance(0.6) {
                    d
                } else {
                    self.rng.below(d + 1)
                }
            })
            .collect();
        let ishape = if single { vec![k] } else { vec![n, k] };
        let mut ushape = if single { vec![] } else { vec![n] };
        ushape.extend(&window);
        if !self.fits(&ushape) {
            return None;
        }
        let idx = self.index_tensor(&ishape);
        // Updates: a tensor, or (for a one-element update) sometimes a literal.
        let (utext, ud, urange, uerr) = if ushape.is_empty() && self.rng.chance(0.4) {
            let l = self.lit_for(t.ty.dtype, false);
            let d = l.dtype_next_to(t.ty.dtype);
            (l.text(), d, (l.value(), l.value()), 0.0)
        } else {
            let u = match self.pick_any(|w| w.ty.shape == ushape) {
                Some(u) if self.rng.chance(0.4) => u,
                _ => {
                    let d = if self.rng.chance(0.6) {
                        t.ty.dtype
                    } else {
                        self.dtype()
                    };
                    self.new_param(TensorType::new(d, ushape.clone()))
                }
            };
            let u = if add { self.bounded(u)? } else { u };
            let w: &Val = &self.pool[u];
            (w.name.clone(), w.ty.dtype, (w.lo, w.hi), w.err)
        };
        let dtype = DType::merge(t.ty.dtype, ud);
        let (lo, hi, err) = if !add {
            (t.lo.min(urange.0), t.hi.max(urange.1), t.err.max(uerr))
        } else if dtype.is_int() {
            (f64::NEG_INFINITY, f64::INFINITY, 0.0)
        } else {
            // Up to n updates land on one element, added in index order on
            // both sides; the model still allows any order (a parallel
            // scatter may reassociate).
            if !is_finite_range(t.lo, t.hi) || !is_finite_range(urange.0, urange.1) {
                return None;
            }
            let nf = n as f64 + 1.0;
            let m = max_abs(t.lo, t.hi).max(max_abs(urange.0, urange.1));
            let lo = t.lo + n as f64 * urange.0.min(0.0);
            let hi = t.hi + n as f64 * urange.1.max(0.0);
            (lo, hi, t.err + n as f64 * uerr + nf * nf * unit(dtype) * m)
        };
        if err > model::budget(dtype, lo, hi) {
            return None;
        }
        self.region_inputs.push((x, "indexed:returned_target"));
        let default_axes = axes.iter().copied().eq(0..k);
        let mut rhs = format!("{op} {}, {}, {utext}", t.name, self.pool[idx].name);
        if !default_axes || self.rng.chance(0.3) {
            let text = self.axes_list(&axes, r);
            rhs.push_str(&format!(", axes: {text}"));
        }
        self.push(rhs, t.ty.with_dtype(dtype), lo, hi, err);
        Some(())
    }

    /// `slice x, [s, 1], [lens], [strides]` with some starts given as scalar
    /// integer tensors (clamped at run time so the slice fits).
    pub(super) fn dynamic_slice(&mut self) -> Option<()> {
        if !self.allowed("slice:dynamic") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1)?;
        let v = self.pool[x].clone();
        let (mut starts, mut lens, mut strides, mut shape) = (vec![], vec![], vec![], vec![]);
        let mut any_dynamic = false;
        for &d in &v.ty.shape {
            let len = self.rng.below(d + 1);
            let stride = 1 + self.rng.below(2);
            if self.rng.chance(0.6) {
                let s = self.scalar_index();
                starts.push(self.pool[s].name.clone());
                any_dynamic = true;
            } else {
                starts.push(self.rng.below(d + 2).to_string());
            }
            lens.push(len);
            strides.push(stride);
            shape.push(if len == 0 { 0 } else { (len - 1) / stride + 1 });
        }
        if !any_dynamic {
            let s = self.scalar_index();
            starts[0] = self.pool[s].name.clone();
        }
        let mut rhs = format!("slice {}, [{}], {}", v.name, starts.join(", "), list(&lens));
        if strides.iter().any(|&s| s != 1) || self.rng.chance(0.3) {
            rhs.push_str(&format!(", {}", list(&strides)));
        }
        self.derived(rhs, &v, shape);
        Some(())
    }

    /// `put_slice x, [s, 0], y` with some starts given as scalar integer tensors.
    pub(super) fn dynamic_put_slice(&mut self) -> Option<()> {
        if !self.allowed("put_slice:dynamic") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.rank() >= 1)?;
        let v = self.pool[x].clone();
        let xs = v.ty.shape.clone();
        let yshape: Vec<usize> = xs.iter().map(|&d| self.rng.below(d + 1)).collect();
        let y = match self.pick_any(|w| w.ty.shape == yshape) {
            Some(y) if self.rng.chance(0.4) => y,
            _ => {
                let d = if self.rng.chance(0.6) {
                    v.ty.dtype
                } else {
                    self.dtype()
                };
                self.new_param(TensorType::new(d, yshape.clone()))
            }
        };
        let w = self.pool[y].clone();
        let mut starts = Vec::new();
        for &d in &xs {
            if starts.is_empty() || self.rng.chance(0.5) {
                let s = self.scalar_index();
                starts.push(self.pool[s].name.clone());
            } else {
                starts.push(self.rng.below(d + 2).to_string());
            }
        }
        let dtype = DType::merge(v.ty.dtype, w.ty.dtype);
        let err = v.err.max(w.err);
        let (lo, hi) = (v.lo.min(w.lo), v.hi.max(w.hi));
        if err > model::budget(dtype, lo, hi) {
            return None;
        }
        let rhs = format!("put_slice {}, [{}], {}", v.name, starts.join(", "), w.name);
        self.push(rhs, v.ty.with_dtype(dtype), lo, hi, err);
        Some(())
    }

    /// `top_k x, k: n` → `{values, indices}` over the last axis. Indices of
    /// inexact values may legitimately differ, so only the values are used then.
    pub(super) fn top_k(&mut self) -> Option<()> {
        if !self.allowed("top_k") {
            return None;
        }
        let x = self.pick_or_param(|v| v.ty.shape.last().is_some_and(|&d| d >= 1))?;
        let v = self.pool[x].clone();
        let last = *v.ty.shape.last()?;
        let k = 1 + self.rng.below(last);
        let mut shape = v.ty.shape.clone();
        *shape.last_mut()? = k;
        let rhs = if k == 1 && self.rng.chance(0.3) {
            format!("top_k {}", v.name)
        } else {
            format!("top_k {}, k: {k}", v.name)
        };
        let vt = TensorType::new(v.ty.dtype, shape.clone());
        let it = TensorType::new(DType::S32, shape);
        let t = self.fresh();
        self.lines.push(format!("  {t} = {rhs}  {{{vt}, {it}}}"));
        self.push(format!("elem {t}, 0"), vt, v.lo, v.hi, v.err);
        if v.exact() && self.rng.chance(0.7) {
            self.push(format!("elem {t}, 1"), it, 0.0, (last - 1) as f64, 0.0);
        }
        Some(())
    }
}

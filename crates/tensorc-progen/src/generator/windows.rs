//! Window geometry shared by the window ops, the scalar combiners shared by
//! `reduce` and `window_reduce`, and the window ops beyond the fixed
//! reductions: `window_reduce` and `window_scatter_max`/`window_scatter_min`.

use super::{Gen, Val, list};
use crate::model::{self, is_finite_range, max_abs, unit};
use tensorc_ir::{DType, TensorType};

/// One window configuration over a shape: per axis the window size, stride,
/// dilation and padding, and the shape of the windowed result.
#[derive(Clone, Debug)]
pub(super) struct WindowGeo {
    pub window: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads: Vec<(usize, usize)>,
    pub shape: Vec<usize>,
    /// 0: `:valid` (maybe implicit), 1: `:same`, 2: explicit pairs.
    mode: usize,
    /// The op takes `window_dilations:` (the scatter ops do not).
    dilate: bool,
}

/// The scalar combiners a generated `fn(acc, x)` body may apply.
const BODY: &[&str] = &["add", "multiply", "max", "min", "bitwise_or", "bitwise_xor"];

impl Gen<'_> {
    /// A random window over `shape` (window dilations only when
    /// `dilate`); `None` when some axis is too short for its window.
    pub(super) fn window_geometry(&mut self, shape: &[usize], dilate: bool) -> Option<WindowGeo> {
        let mode = self.rng.below(3);
        let mut g = WindowGeo {
            window: vec![],
            strides: vec![],
            dilations: vec![],
            pads: vec![],
            shape: vec![],
            mode,
            dilate,
        };
        for &d in shape {
            let w = 1 + self.rng.below(3);
            let dil = if dilate && self.rng.chance(0.2) { 2 } else { 1 };
            let span = (w - 1) * dil + 1;
            let (lo, hi) = match mode {
                0 => (0, 0),
                1 => ((span - 1) / 2, span - 1 - (span - 1) / 2),
                _ => (self.rng.below(3), self.rng.below(3)),
            };
            let padded = d + lo + hi;
            if padded < span {
                return None;
            }
            let stride = 1 + self.rng.below(2);
            g.window.push(w);
            g.dilations.push(dil);
            g.strides.push(stride);
            g.pads.push((lo, hi));
            g.shape.push((padded - span) / stride + 1);
        }
        Some(g)
    }

    /// `{dims}` and the options of `g`, as a window op writes them after its operands.
    pub(super) fn window_text(&mut self, g: &WindowGeo) -> String {
        let dims: Vec<String> = g.window.iter().map(|w| w.to_string()).collect();
        let mut out = format!("{{{}}}", dims.join(", "));
        if g.strides.iter().any(|&s| s != 1) || self.rng.chance(0.3) {
            out.push_str(&format!(", strides: {}", list(&g.strides)));
        }
        match g.mode {
            0 if self.rng.chance(0.5) => {}
            0 => out.push_str(", padding: :valid"),
            1 => out.push_str(", padding: :same"),
            _ => {
                let p: Vec<String> = g
                    .pads
                    .iter()
                    .map(|(lo, hi)| format!("{{{lo}, {hi}}}"))
                    .collect();
                out.push_str(&format!(", padding: [{}]", p.join(", ")));
            }
        }
        if g.dilate && (g.dilations.iter().any(|&x| x != 1) || self.rng.chance(0.2)) {
            out.push_str(&format!(", window_dilations: {}", list(&g.dilations)));
        }
        out
    }

    /// A combiner body and a value (meeting `ok`) to combine with it, made
    /// well-conditioned for it: clipped into [-1, 1] for float products,
    /// bounded for float sums.
    pub(super) fn pick_combined(
        &mut self,
        ok: impl Fn(&Val) -> bool + Copy,
    ) -> Option<(&'static str, usize)> {
        let body = BODY[self.rng.below(BODY.len())];
        if !self.allowed(body) {
            return None;
        }
        let int_only = body.starts_with("bitwise");
        let mut x = self.pick_or_param(|v| ok(v) && (!int_only || v.ty.dtype.is_int()))?;
        if body == "multiply" && self.pool[x].ty.dtype.is_float() {
            x = self.condition(x, -1.0, 1.0)?;
        } else if body == "add" {
            x = self.bounded(x)?;
        }
        Some((body, x))
    }

    /// Combining up to `n` elements of `v` (and the identity init) with
    /// `body`: the init literal, the result's range and error, and the
    /// function text (a one-line `fn` or an `&Nx.…/2` shorthand).
    pub(super) fn combined(
        &mut self,
        body: &str,
        v: &Val,
        n: f64,
    ) -> Option<(&'static str, f64, f64, f64, String)> {
        let d = v.ty.dtype;
        let init = match (d.is_float(), body == "multiply") {
            (true, true) => "1.0",
            (true, false) => "0.0",
            (false, true) => "1",
            (false, false) => "0",
        };
        let (lo, hi, err) = match body {
            "max" => (v.lo.max(0.0), v.hi.max(0.0), v.err),
            "min" => (v.lo.min(0.0), v.hi.min(0.0), v.err),
            _ if d.is_int() => (f64::NEG_INFINITY, f64::INFINITY, 0.0),
            "add" => v.sum_of(n)?,
            _ => v.product_of(n),
        };
        if err > model::budget(d, lo, hi) {
            return None;
        }
        let f = if !body.starts_with("bitwise") && self.rng.chance(0.3) {
            format!("&Nx.{body}/2")
        } else {
            format!("fn(acc, x) {{ r = {body} acc, x; return r }}")
        };
        Some((init, lo, hi, err, f))
    }

    /// `window_reduce x, init, {dims}, opts…, fn(acc, x) { … }`: the padding
    /// holds init, which is the body's identity here, so windows over it
    /// combine like the fixed window reductions.
    pub(super) fn window_reduce(&mut self) -> Option<()> {
        if !self.allowed("window_reduce") {
            return None;
        }
        let (body, x) =
            self.pick_combined(|v| v.ty.rank() >= 1 && v.ty.shape.iter().all(|&d| d > 0))?;
        let v = self.pool[x].clone();
        let g = self.window_geometry(&v.ty.shape, true)?;
        if !self.fits(&g.shape) {
            return None;
        }
        let n = g.window.iter().product::<usize>() as f64;
        let (init, lo, hi, err, f) = self.combined(body, &v, n)?;
        let opts = self.window_text(&g);
        let rhs = format!("window_reduce {}, {init}, {opts}, {f}", v.name);
        self.push(rhs, TensorType::new(v.ty.dtype, g.shape), lo, hi, err);
        Some(())
    }

    /// `window_scatter_max x, source, init, {dims}, strides:, padding:` (and
    /// `_min`): which element a window picks compares x's elements, so x
    /// must be exact; each result element is init plus the source values of
    /// the windows that picked it.
    pub(super) fn window_scatter(&mut self) -> Option<()> {
        let max = self.rng.chance(0.5);
        let op = if max {
            "window_scatter_max"
        } else {
            "window_scatter_min"
        };
        if !self.allowed(op) {
            return None;
        }
        let x = self.pick_or_param(|v| {
            v.exact() && v.ty.rank() >= 1 && v.ty.shape.iter().all(|&d| d > 0)
        })?;
        let v = self.pool[x].clone();
        let g = self.window_geometry(&v.ty.shape, false)?;
        if !self.fits(&g.shape) {
            return None;
        }
        let src = match self.pick_any(|w| w.ty.shape == g.shape) {
            Some(s) if self.rng.chance(0.4) => s,
            _ => {
                let d = if self.rng.chance(0.6) {
                    v.ty.dtype
                } else {
                    self.dtype()
                };
                self.new_param(TensorType::new(d, g.shape.clone()))
            }
        };
        let src = self.bounded(src)?;
        let s = self.pool[src].clone();
        let il = self.lit_for(s.ty.dtype, false);
        let dtype = DType::merge(s.ty.dtype, il.dtype_next_to(s.ty.dtype));
        // Windows that may pick one element: at most ceil(w / stride) per axis.
        let n: f64 = g
            .window
            .iter()
            .zip(&g.strides)
            .map(|(&w, &st)| w.div_ceil(st) as f64)
            .product();
        let (lo, hi, err) = if dtype.is_int() {
            (f64::NEG_INFINITY, f64::INFINITY, 0.0)
        } else {
            if !is_finite_range(s.lo, s.hi) {
                return None;
            }
            let iv = il.value();
            let m = max_abs(s.lo, s.hi).max(iv.abs());
            let nf = n + 1.0;
            (
                iv + n * s.lo.min(0.0),
                iv + n * s.hi.max(0.0),
                n * s.err + nf * nf * unit(dtype) * m,
            )
        };
        if err > model::budget(dtype, lo, hi) {
            return None;
        }
        let opts = self.window_text(&g);
        let rhs = format!("{op} {}, {}, {}, {opts}", v.name, s.name, il.text());
        self.push(rhs, v.ty.with_dtype(dtype), lo, hi, err);
        Some(())
    }
}

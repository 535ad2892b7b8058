//! Convolution (spec §4.4) and the window reductions `window_sum`,
//! `window_product`, `window_max`, `window_min` (spec §4.5).
//!
//! Both families slide a (dilated) window over padded spatial axes, so they
//! share the option readers here: per-axis integer options that may be one
//! integer for every axis (as Nx allows), and padding that is `:valid`,
//! `:same` or explicit `{lo, hi}` pairs. Padding is resolved here, once, the
//! way `Nx.Shape.to_padding_config` does it, so every back end sees the same
//! explicit numbers.

use super::args::{Args, describe};
use super::{CResult, FnCx, literal_of};
use crate::ast::{Expr, ExprKind, Stmt};
use crate::graph::{ConvSpec, Op, ReduceKind, ValueId};
use crate::span::Span;
use crate::types::{TensorType, Type};

type Checked = CResult<(Op, Vec<ValueId>, Type)>;

/// The window op names and the reduction each one applies.
pub(crate) const WINDOW: &[(&str, ReduceKind)] = &[
    ("window_sum", ReduceKind::Sum),
    ("window_product", ReduceKind::Product),
    ("window_max", ReduceKind::Max),
    ("window_min", ReduceKind::Min),
];

pub(crate) fn window_by_name(name: &str) -> Option<ReduceKind> {
    WINDOW.iter().find(|(n, _)| *n == name).map(|&(_, k)| k)
}

pub(crate) fn window_name(kind: ReduceKind) -> &'static str {
    WINDOW
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("window_sum", |&(n, _)| n)
}

/// `(d - 1) * dilation + 1`, or 0 for an empty axis: the extent of a dilated axis.
fn dilated(d: usize, dilation: usize) -> usize {
    // Saturating: absurd sizes must become a diagnostic (the result type is
    // too large), not an overflow.
    if d == 0 {
        0
    } else {
        (d - 1).saturating_mul(dilation).saturating_add(1)
    }
}

/// Nx's `:same` padding for a window of (dilated) size `k`: `k - 1` split
/// with the smaller half low. Nx ignores the stride here (`to_padding_config`).
fn same_padding(k: usize) -> (i64, i64) {
    let total = k.saturating_sub(1) as i64;
    (total / 2, total - total / 2)
}

impl FnCx<'_> {
    /// An option that is one positive integer for every axis or a list of
    /// `n` positive integers; absent gives all ones.
    fn per_axis(&mut self, e: Option<&Expr>, n: usize, what: &str) -> CResult<Vec<usize>> {
        let Some(e) = e else { return Ok(vec![1; n]) };
        let vals: Vec<(i128, Span)> = match &e.kind {
            ExprKind::Int(v) => vec![(*v, e.span); n],
            ExprKind::List(_) => {
                let l = self.int_list(e, false)?;
                if l.len() != n {
                    return Err(self.err(
                        e.span,
                        format!("'{what}' needs {n} values (one per axis), got {}", l.len()),
                    ));
                }
                l
            }
            _ => {
                return Err(self.err(
                    e.span,
                    format!(
                        "'{what}' expects an integer or a list, found {}",
                        describe(e)
                    ),
                ));
            }
        };
        vals.into_iter()
            .map(|(v, span)| {
                usize::try_from(v)
                    .ok()
                    .filter(|&v| v >= 1 && v <= u32::MAX as usize)
                    .ok_or_else(|| {
                        self.err(
                            span,
                            format!("'{what}' values must be positive integers, got {v}"),
                        )
                    })
            })
            .collect()
    }

    /// A positive integer option (absent gives 1).
    fn positive(&mut self, e: Option<&Expr>, what: &str) -> CResult<usize> {
        let Some(e) = e else { return Ok(1) };
        let v = self.int(e)?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v >= 1 && v <= u32::MAX as usize)
            .ok_or_else(|| {
                self.err(
                    e.span,
                    format!("'{what}' must be a positive integer, got {v}"),
                )
            })
    }

    /// `padding: :valid | :same | [{lo, hi}, …]` for axes whose dilated window
    /// sizes are `windows`; explicit pairs may be negative only when `negative_ok`.
    fn padding(
        &mut self,
        e: Option<&Expr>,
        windows: &[usize],
        negative_ok: bool,
    ) -> CResult<Vec<(i64, i64)>> {
        let n = windows.len();
        let Some(e) = e else {
            return Ok(vec![(0, 0); n]);
        };
        match &e.kind {
            ExprKind::Atom(a) if a == "valid" => Ok(vec![(0, 0); n]),
            ExprKind::Atom(a) if a == "same" => {
                Ok(windows.iter().map(|&k| same_padding(k)).collect())
            }
            ExprKind::List(items) => {
                if items.len() != n {
                    return Err(self.err(
                        e.span,
                        format!(
                            "padding needs {n} {{lo, hi}} pairs (one per padded axis), got {}",
                            items.len()
                        ),
                    ));
                }
                let mut out = Vec::new();
                for item in items {
                    let pair = match &item.kind {
                        ExprKind::Tuple(p) if p.len() == 2 => self.int_list(item, true)?,
                        _ => {
                            return Err(self.err(
                                item.span,
                                format!("expected a {{lo, hi}} pair, found {}", describe(item)),
                            ));
                        }
                    };
                    let mut v = [0i64; 2];
                    for (k, &(x, span)) in pair.iter().enumerate() {
                        let x = i64::try_from(x)
                            .ok()
                            .filter(|x| x.unsigned_abs() <= u32::MAX as u64)
                            .ok_or_else(|| {
                                self.err(span, format!("padding {x} is out of range"))
                            })?;
                        if x < 0 && !negative_ok {
                            return Err(self
                                .err(span, format!("window padding cannot be negative, got {x}")));
                        }
                        v[k] = x;
                    }
                    out.push((v[0], v[1]));
                }
                Ok(out)
            }
            _ => Err(self.err(
                e.span,
                format!(
                    "expected :valid, :same or a list of {{lo, hi}} pairs, found {}",
                    describe(e)
                ),
            )),
        }
    }

    /// A permutation of `0..rank` (negative axes count from the end); absent is the identity.
    fn permutation(&mut self, e: Option<&Expr>, rank: usize, what: &str) -> CResult<Vec<usize>> {
        let Some(e) = e else {
            return Ok((0..rank).collect());
        };
        let axes = self.axes(e, rank)?;
        if axes.len() != rank {
            return Err(self.err(
                e.span,
                format!(
                    "'{what}' must list all {rank} axes once, got {}",
                    axes.len()
                ),
            ));
        }
        Ok(axes)
    }

    /// Output size of one windowed axis, or an error when the window does
    /// not fit the padded input (Nx refuses empty conv/window results).
    fn windowed_size(
        &mut self,
        padded: i128,
        window: usize,
        stride: usize,
        span: Span,
        op: &str,
    ) -> CResult<usize> {
        let w = window as i128;
        if padded < w || padded <= 0 {
            return Err(self.err(
                span,
                format!(
                    "'{op}' would produce an empty result: the window spans {w} but the padded axis has {} elements",
                    padded.max(0)
                ),
            ));
        }
        usize::try_from((padded - w) / stride as i128 + 1)
            .map_err(|_| self.err(span, format!("the result of '{op}' is too large")))
    }

    /// `conv input, kernel, strides:, padding:, input_dilation:, kernel_dilation:,
    /// feature_group_size:, batch_group_size:, input_permutation:,
    /// kernel_permutation:, output_permutation:` (every option has Nx's default).
    pub(crate) fn conv(&mut self, s: &Stmt) -> Checked {
        let a = self.args(
            s,
            &[
                "strides",
                "padding",
                "input_dilation",
                "kernel_dilation",
                "feature_group_size",
                "batch_group_size",
                "input_permutation",
                "kernel_permutation",
                "output_permutation",
            ],
            2,
            2,
        )?;
        let x = self.operand(a.pos[0]);
        let k = self.operand(a.pos[1]);
        let (ids, merged) = self.resolve_group(&[x?, k?])?;
        let (tx, tk) = (self.tensor(ids[0]), self.tensor(ids[1]));
        let rank = tx.rank();
        if rank < 3 {
            return Err(self.err(
                a.pos[0].span,
                format!("'conv' needs an input of rank 3 or more, got {tx}"),
            ));
        }
        if tk.rank() != rank {
            return Err(self.err(
                a.pos[1].span,
                format!(
                    "'conv' needs a kernel of the input's rank {rank}, got {tk} for input {tx}"
                ),
            ));
        }
        let ns = rank - 2;
        let ip = self.permutation(a.kw("input_permutation"), rank, "input_permutation");
        let kp = self.permutation(a.kw("kernel_permutation"), rank, "kernel_permutation");
        let op = self.permutation(a.kw("output_permutation"), rank, "output_permutation");
        let strides = self.per_axis(a.kw("strides"), ns, "strides");
        let idil = self.per_axis(a.kw("input_dilation"), ns, "input_dilation");
        let kdil = self.per_axis(a.kw("kernel_dilation"), ns, "kernel_dilation");
        let fg = self.positive(a.kw("feature_group_size"), "feature_group_size");
        let bg = self.positive(a.kw("batch_group_size"), "batch_group_size");
        let (ip, kp, op, strides, idil, kdil, fg, bg) =
            (ip?, kp?, op?, strides?, idil?, kdil?, fg?, bg?);

        // Logical shapes: input [batch, channels, spatial…], kernel [out, in, spatial…].
        let xs: Vec<usize> = ip.iter().map(|&p| tx.shape[p]).collect();
        let ks: Vec<usize> = kp.iter().map(|&p| tk.shape[p]).collect();
        let (batch, channels, out_ch, in_ch) = (xs[0], xs[1], ks[0], ks[1]);
        let span = s.op.span;
        let groups_msg = if fg != 1 && bg != 1 {
            Some(format!(
                "'conv' accepts feature_group_size {fg} or batch_group_size {bg}, not both above 1"
            ))
        } else if batch % bg != 0 {
            Some(format!(
                "batch_group_size {bg} must divide the input batch size {batch}"
            ))
        } else if out_ch % fg != 0 {
            Some(format!(
                "feature_group_size {fg} must divide the kernel's output channels {out_ch}"
            ))
        } else if out_ch % bg != 0 {
            Some(format!(
                "batch_group_size {bg} must divide the kernel's output channels {out_ch}"
            ))
        } else if channels != in_ch * fg {
            Some(format!(
                "input channels ({channels}, in {tx}) must equal kernel input channels ({in_ch}, in {tk}) times feature_group_size {fg}"
            ))
        } else {
            None
        };
        if let Some(msg) = groups_msg {
            return Err(self.err(span, msg));
        }
        let in_sp: Vec<usize> = (0..ns).map(|i| dilated(xs[i + 2], idil[i])).collect();
        let k_sp: Vec<usize> = (0..ns).map(|i| dilated(ks[i + 2], kdil[i])).collect();
        let padding = self.padding(a.kw("padding"), &k_sp, true)?;
        let mut ys = vec![batch / bg, out_ch];
        for i in 0..ns {
            let padded = in_sp[i] as i128 + padding[i].0 as i128 + padding[i].1 as i128;
            ys.push(self.windowed_size(padded, k_sp[i], strides[i], span, "conv")?);
        }
        // Actual axis op[l] of the result holds logical axis l.
        let mut shape = vec![0; rank];
        for (l, &p) in op.iter().enumerate() {
            shape[p] = ys[l];
        }
        Ok((
            Op::Conv(ConvSpec {
                strides,
                padding,
                input_dilation: idil,
                kernel_dilation: kdil,
                feature_group_size: fg,
                batch_group_size: bg,
                input_permutation: ip,
                kernel_permutation: kp,
                output_permutation: op,
            }),
            ids,
            Type::Tensor(TensorType::new(merged.to_float(), shape)),
        ))
    }

    /// `window_sum x, {dims}, strides:, padding:, window_dilations:` and friends.
    pub(crate) fn window(&mut self, s: &Stmt, kind: ReduceKind) -> Checked {
        let a = self.args(s, &["strides", "padding", "window_dilations"], 2, 2)?;
        let x = self.resolve_single(a.pos[0])?;
        let t = self.tensor(x);
        let w = self.window_opts(s, &a, a.pos[1], &t)?;
        Ok((
            Op::Window {
                kind,
                window: w.window,
                strides: w.strides,
                padding: w.padding,
                dilations: w.dilations,
            },
            vec![x],
            Type::Tensor(TensorType::new(t.dtype, w.shape)),
        ))
    }

    /// `window_reduce x, init, {dims}, strides:, padding:, window_dilations:,
    /// fn(acc, v) { … }` (or `&Nx.add/2`). As in Nx the result has x's type;
    /// init is a scalar (a literal must fit x's dtype).
    pub(crate) fn window_reduce(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["strides", "padding", "window_dilations"], 4, 4)?;
        let ExprKind::Name(_) = a.pos[0].kind else {
            return Err(self.err(
                a.pos[0].span,
                "'window_reduce' expects a tensor to reduce, not a literal",
            ));
        };
        let x = self.tensor_operand(a.pos[0])?;
        let t = self.tensor(x);
        let init = match literal_of(a.pos[1]) {
            Some(lit) => {
                self.check_fits(lit, t.dtype, a.pos[1].span)?;
                self.literal_node(lit, t.dtype, a.pos[1].span)
            }
            None => {
                let id = self.tensor_operand(a.pos[1])?;
                let ti = self.tensor(id);
                if ti.rank() != 0 {
                    return Err(self.err(
                        a.pos[1].span,
                        format!("the initial value of 'window_reduce' must be a scalar, got {ti}"),
                    ));
                }
                id
            }
        };
        let w = self.window_opts(s, &a, a.pos[2], &t)?;
        let body = self.combiner(a.pos[3], t.dtype, "window_reduce")?;
        Ok((
            Op::WindowReduce {
                window: w.window,
                strides: w.strides,
                padding: w.padding,
                dilations: w.dilations,
                body,
            },
            vec![x, init],
            Type::Tensor(TensorType::new(t.dtype, w.shape)),
        ))
    }

    /// The window dimensions `dims` and the window options of `a` for an
    /// operand of type `t`, with the resulting shape.
    fn window_opts(
        &mut self,
        s: &Stmt,
        a: &Args,
        dims: &Expr,
        t: &TensorType,
    ) -> CResult<WindowOpts> {
        let rank = t.rank();
        let list = match &dims.kind {
            ExprKind::Tuple(_) | ExprKind::List(_) => self.int_list(dims, true)?,
            _ => {
                return Err(self.err(
                    dims.span,
                    format!(
                        "expected the window dimensions as a tuple like {{2, 2}}, found {}",
                        describe(dims)
                    ),
                ));
            }
        };
        if list.len() != rank {
            return Err(self.err(
                dims.span,
                format!(
                    "the window has {} dimensions but {t} has rank {rank}",
                    list.len()
                ),
            ));
        }
        let mut window = Vec::new();
        for &(v, span) in &list {
            match usize::try_from(v)
                .ok()
                .filter(|&v| v >= 1 && v <= u32::MAX as usize)
            {
                Some(v) => window.push(v),
                None => {
                    return Err(
                        self.err(span, format!("window dimensions must be positive, got {v}"))
                    );
                }
            }
        }
        let strides = self.per_axis(a.kw("strides"), rank, "strides");
        let dilations = self.per_axis(a.kw("window_dilations"), rank, "window_dilations");
        let (strides, dilations) = (strides?, dilations?);
        let spans: Vec<usize> = (0..rank)
            .map(|i| dilated(window[i], dilations[i]))
            .collect();
        let padding = self.padding(a.kw("padding"), &spans, false)?;
        let mut shape = Vec::new();
        for i in 0..rank {
            let padded = t.shape[i] as i128 + padding[i].0 as i128 + padding[i].1 as i128;
            shape.push(self.windowed_size(padded, spans[i], strides[i], s.op.span, &s.op.name)?);
        }
        Ok(WindowOpts {
            window,
            strides,
            padding,
            dilations,
            shape,
        })
    }
}

/// Normalized window options and the output shape they give.
struct WindowOpts {
    window: Vec<usize>,
    strides: Vec<usize>,
    padding: Vec<(i64, i64)>,
    dilations: Vec<usize>,
    shape: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_follows_nx() {
        // Nx.Shape.to_padding_config({12, 12}, {2, 2}, :same) == [{0, 1}, {0, 1}]
        assert_eq!(same_padding(2), (0, 1));
        assert_eq!(same_padding(3), (1, 1));
        assert_eq!(same_padding(1), (0, 0));
        assert_eq!(dilated(3, 2), 5);
        assert_eq!(dilated(0, 2), 0);
        assert_eq!(dilated(usize::MAX, 2), usize::MAX);
    }

    /// Absurd sizes and dilations are diagnostics, never arithmetic overflow.
    #[test]
    fn huge_options_do_not_overflow() {
        let src = "def main(x: f32[0][18446744073709551615], k: f32[1][1][2]) -> f32[1] {\n  \
                   y = window_sum x, {1, 2}, window_dilations: [4294967295, 4294967295], padding: [{4294967295, 4294967295}, {0, 0}]\n  \
                   z = conv k, k, input_dilation: 4294967295, padding: [{-4294967295, 4294967295}]\n  return z\n}\n";
        let file = crate::span::SourceFile::new("t.nxir", src);
        let Err(d) = super::super::compile(&file) else { panic!("must not check") };
        let msgs: Vec<&str> = d.items.iter().map(|d| d.message.as_str()).collect();
        assert!(msgs.iter().any(|m| m.contains("is too large")), "{msgs:?}");
    }
}

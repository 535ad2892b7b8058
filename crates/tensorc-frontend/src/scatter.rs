//! Scatters (tier 2): `indexed_add` and `indexed_put`.
//!
//! A scatter writes data-dependent positions, which no `linalg.generic` can
//! express, so it is a nest of `scf.for` loops carrying the result tensor:
//! one loop over the updates in order, one per window axis, and a
//! `tensor.extract`/`tensor.insert` of one element in the innermost body.
//! Indices are clamped before use so every access stays in bounds; an update
//! whose index was out of range writes back the old value (it is skipped),
//! which keeps the body branch-free. Bufferization turns the carried tensor
//! into in-place stores on one buffer.

use tensorc_ir::graph::BinaryOp;
use tensorc_ir::types::{DType, TensorType};

use crate::LowerError;
use crate::emit::{Emitter, elem, tensor_ty};
use crate::index::clamp_index;
use crate::lower::{Lowerer, Val};

/// `scf.for %iv = 0 to n` carrying one tensor of type `ty` from `init`;
/// `body(e, iv, acc)` returns the next value. Returns the loop's result.
pub(crate) fn scf_for(
    e: &mut Emitter,
    n: usize,
    init: &str,
    ty: &TensorType,
    body: impl FnOnce(&mut Emitter, &str, &str) -> String,
) -> String {
    let lo = e.op("arith.constant 0 : index");
    let hi = e.op(&format!("arith.constant {n} : index"));
    let one = e.op("arith.constant 1 : index");
    let (res, iv, acc) = (e.fresh(), e.fresh(), e.fresh());
    let t = tensor_ty(ty);
    e.line(&format!(
        "{res} = scf.for {iv} = {lo} to {hi} step {one} iter_args({acc} = {init}) -> ({t}) {{"
    ));
    e.indent(2);
    let next = body(e, &iv, &acc);
    e.stmt(&format!("scf.yield {next} : {t}"));
    e.indent(-2);
    e.stmt("}");
    res
}

/// Whether integer `v` of dtype `d` lies in `[0, n)` (i1).
fn in_range(e: &mut Emitter, v: &str, d: DType, n: usize) -> String {
    let (_, hi) = d.int_range().unwrap_or((0, i128::MAX));
    let below = if (n as i128) <= hi {
        let c = e.int_const(d, n as i128);
        Some(e.cmpi(if d.is_signed_int() { "slt" } else { "ult" }, v, &c, d))
    } else {
        None
    };
    let above = if d.is_signed_int() {
        let z = e.int_const(d, 0);
        Some(e.cmpi("sge", v, &z, d))
    } else {
        None
    };
    match (below, above) {
        (Some(a), Some(b)) => e.op(&format!("arith.andi {a}, {b} : i1")),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => e.bool_const(true),
    }
}

impl Lowerer<'_> {
    /// `indexed_add`/`indexed_put target, indices, updates, axes:`.
    pub(crate) fn indexed(
        &mut self,
        target: &Val,
        indices: &Val,
        updates: &Val,
        axes: &[usize],
        add: bool,
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        let d = ty.dtype;
        let init = self.convert_tensor(target, d);
        let (n, k) = (indices.ty.shape[0], indices.ty.shape[1]);
        let window = updates.ty.shape[1..].to_vec();
        if n == 0 || window.contains(&0) {
            return Ok(init.name);
        }
        let rest: Vec<usize> = (0..ty.rank()).filter(|a| !axes.contains(a)).collect();
        let (idx, upd, axes) = (indices.clone(), updates.clone(), axes.to_vec());
        let du = upd.ty.dtype;
        let out = ty.clone();
        Ok(scf_for(&mut self.e, n, &init.name, ty, |e, i, acc| {
            // The index row of update i: clamped positions and whether all were in range.
            let mut pos = vec![String::new(); out.rank()];
            let mut ok: Option<String> = None;
            for (j, &ax) in axes.iter().enumerate().take(k) {
                let cj = e.op(&format!("arith.constant {j} : index"));
                let v = e.op(&format!(
                    "tensor.extract {}[{i}, {cj}] : {}",
                    idx.name,
                    tensor_ty(&idx.ty)
                ));
                let inside = in_range(e, &v, idx.ty.dtype, out.shape[ax]);
                ok = Some(match ok {
                    None => inside,
                    Some(o) => e.op(&format!("arith.andi {o}, {inside} : i1")),
                });
                pos[ax] = clamp_index(e, &v, idx.ty.dtype, out.shape[ax]);
            }
            let ok = ok.unwrap_or_else(|| e.bool_const(true));
            window_loops(e, &window, acc, &out, &mut Vec::new(), &mut |e, w, acc| {
                for (m, &ax) in rest.iter().enumerate() {
                    pos[ax] = w[m].clone();
                }
                let mut at = vec![i.to_string()];
                at.extend(w.iter().cloned());
                let u = e.op(&format!(
                    "tensor.extract {}[{}] : {}",
                    upd.name,
                    at.join(", "),
                    tensor_ty(&upd.ty)
                ));
                let u = e.convert(&u, du, d);
                let old = e.op(&format!(
                    "tensor.extract {acc}[{}] : {}",
                    pos.join(", "),
                    tensor_ty(&out)
                ));
                let new = if add {
                    e.binary(BinaryOp::Add, &old, &u, d)
                } else {
                    u
                };
                let v = e.select(&ok, &new, &old, elem(d));
                e.op(&format!(
                    "tensor.insert {v} into {acc}[{}] : {}",
                    pos.join(", "),
                    tensor_ty(&out)
                ))
            })
        }))
    }
}

/// Nested loops over `window` carrying `acc`; the innermost `body` gets the
/// window position (index values) and the carried tensor.
fn window_loops(
    e: &mut Emitter,
    window: &[usize],
    acc: &str,
    ty: &TensorType,
    w: &mut Vec<String>,
    body: &mut dyn FnMut(&mut Emitter, &[String], &str) -> String,
) -> String {
    match window.split_first() {
        None => body(e, w, acc),
        Some((&n, rest)) => scf_for(e, n, acc, ty, |e, iv, acc| {
            w.push(iv.to_string());
            let r = window_loops(e, rest, acc, ty, w, body);
            w.pop();
            r
        }),
    }
}

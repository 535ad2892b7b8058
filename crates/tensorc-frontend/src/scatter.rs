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
    let carried = [(init.to_string(), ty.clone())];
    scf_for_n(e, n, &carried, |e, iv, acc| vec![body(e, iv, &acc[0])]).remove(0)
}

/// `scf.for %iv = 0 to n` carrying several tensors (`(init, type)` each);
/// `body(e, iv, accs)` returns their next values. Returns the results.
pub(crate) fn scf_for_n(
    e: &mut Emitter,
    n: usize,
    carried: &[(String, TensorType)],
    body: impl FnOnce(&mut Emitter, &str, &[String]) -> Vec<String>,
) -> Vec<String> {
    let lo = e.op("arith.constant 0 : index");
    let hi = e.op(&format!("arith.constant {n} : index"));
    let carried: Vec<(String, String)> = carried
        .iter()
        .map(|(init, t)| (init.clone(), tensor_ty(t)))
        .collect();
    crate::merge_sort::scf_loop(e, &lo, &hi, &carried, body)
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
        // The loop below updates its init in place: a private copy keeps a
        // target that is also used elsewhere intact (see `private_copy`).
        let init = self.convert_tensor(target, d);
        let init = if init.name == target.name { self.private_copy(&init) } else { init };
        // Nx's shorthand (indices [k], updates = one window) is the case n = 1.
        let (indices, updates) = if indices.ty.rank() == 1 {
            let it = TensorType::new(indices.ty.dtype, vec![1, indices.ty.shape[0]]);
            let mut us = vec![1];
            us.extend_from_slice(&updates.ty.shape);
            let ut = TensorType::new(updates.ty.dtype, us);
            let i = Val {
                name: self.reshape(indices, &it),
                ty: it,
            };
            let u = Val {
                name: self.reshape(updates, &ut),
                ty: ut,
            };
            (i, u)
        } else {
            (indices.clone(), updates.clone())
        };
        let (indices, updates) = (&indices, &updates);
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

impl Lowerer<'_> {
    /// `window_scatter_max|min x, source, init, …` in two steps: a generic
    /// with one reduction loop per window axis picks, for every source
    /// element, the flat position in x its window selects (-1 for the
    /// padding), folding the window in row-major order exactly as the
    /// interpreter does; then one `scf.for` over the source adds each value
    /// at its pick into a result filled with init.
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the op's operands and options"
    )]
    pub(crate) fn window_scatter(
        &mut self,
        x: &Val,
        source: &Val,
        init: &Val,
        max: bool,
        window: &[usize],
        strides: &[usize],
        padding: &[(i64, i64)],
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        let d = ty.dtype;
        let dx = x.ty.dtype;
        let r = x.ty.rank();
        let iv = self.e.op(&format!(
            "tensor.extract {}[] : {}",
            init.name,
            tensor_ty(&init.ty)
        ));
        let init_out = self.e.convert(&iv, init.ty.dtype, d);
        let flat_ty = TensorType::new(d, vec![ty.num_elements()]);
        let result = self.e.fill(&init_out, &flat_ty);
        let n_src = source.ty.num_elements();
        if n_src == 0 {
            let v = Val {
                name: result,
                ty: flat_ty,
            };
            return Ok(self.reshape(&v, ty));
        }
        let pad = self.e.convert(&iv, init.ty.dtype, dx);

        // Step 1: the pick of every window.
        let src_shape = source.ty.shape.clone();
        let wt = TensorType::new(DType::U8, window.to_vec());
        let wv = self.e.empty(&wt);
        let ins = [crate::emit::GenericOperand {
            value: wv,
            ty: wt,
            map: (r..2 * r)
                .map(|k| format!("d{k}"))
                .collect::<Vec<_>>()
                .join(", "),
        }];
        let best_ty = TensorType::new(dx, src_shape.clone());
        let sel_ty = TensorType::new(DType::S64, src_shape.clone());
        let z = self.e.num_const(dx, 0.0);
        let best0 = self.e.fill(&z, &best_ty);
        let m1 = self.e.int_const(DType::S64, -1);
        let sel0 = self.e.fill(&m1, &sel_ty);
        let id = crate::emit::identity_map(r);
        let outs = [
            crate::emit::GenericOperand {
                value: best0,
                ty: best_ty,
                map: id.clone(),
            },
            crate::emit::GenericOperand {
                value: sel0,
                ty: sel_ty.clone(),
                map: id,
            },
        ];
        let mut red = vec![false; r];
        red.extend(vec![true; r]);
        let (xv, dims, st) = (x.clone(), x.ty.shape.clone(), x.ty.strides());
        let picks = self
            .e
            .generic(2 * r, &red, &ins, &outs, |e, a| {
                let (best, sel) = (&a[1], &a[2]);
                let zero = e.op("arith.constant 0 : index");
                let (mut inside, mut first, mut flat) =
                    (None::<String>, None::<String>, None::<String>);
                let mut at = Vec::new();
                let and = |e: &mut Emitter, acc: Option<String>, v: String| match acc {
                    None => v,
                    Some(p) => e.op(&format!("arith.andi {p}, {v} : i1")),
                };
                for k in 0..r {
                    let o = e.op(&format!("linalg.index {k} : index"));
                    let w = e.op(&format!("linalg.index {} : index", r + k));
                    let s = e.op(&format!("arith.constant {} : index", strides[k]));
                    let os = e.op(&format!("arith.muli {o}, {s} : index"));
                    let p = e.op(&format!("arith.addi {os}, {w} : index"));
                    let lo = e.op(&format!("arith.constant {} : index", padding[k].0));
                    let q = e.op(&format!("arith.subi {p}, {lo} : index"));
                    let n = e.op(&format!("arith.constant {} : index", dims[k]));
                    let ge = e.op(&format!("arith.cmpi sge, {q}, {zero} : index"));
                    let lt = e.op(&format!("arith.cmpi slt, {q}, {n} : index"));
                    let ok = e.op(&format!("arith.andi {ge}, {lt} : i1"));
                    inside = Some(and(e, inside, ok));
                    let w0 = e.op(&format!("arith.cmpi eq, {w}, {zero} : index"));
                    first = Some(and(e, first, w0));
                    let top = e.op(&format!("arith.constant {} : index", dims[k] - 1));
                    let c = e.op(&format!("arith.maxsi {q}, {zero} : index"));
                    let c = e.op(&format!("arith.minsi {c}, {top} : index"));
                    let stride = e.op(&format!("arith.constant {} : index", st[k]));
                    let term = e.op(&format!("arith.muli {c}, {stride} : index"));
                    flat = Some(match flat {
                        None => term,
                        Some(f) => e.op(&format!("arith.addi {f}, {term} : index")),
                    });
                    at.push(c);
                }
                let (inside, first, flat) = (
                    inside.unwrap_or_else(|| e.bool_const(true)),
                    first.unwrap_or_else(|| e.bool_const(true)),
                    flat.unwrap_or_else(|| e.op("arith.constant 0 : index")),
                );
                let v = e.op(&format!(
                    "tensor.extract {}[{}] : {}",
                    xv.name,
                    at.join(", "),
                    tensor_ty(&xv.ty)
                ));
                let v = e.select(&inside, &v, &pad, elem(dx));
                let cmp = if dx.is_float() {
                    e.cmpf(if max { "oge" } else { "ole" }, &v, best, dx)
                } else {
                    let pred = match (max, dx.is_signed_int()) {
                        (true, true) => "sge",
                        (true, false) => "uge",
                        (false, true) => "sle",
                        (false, false) => "ule",
                    };
                    e.cmpi(pred, &v, best, dx)
                };
                let take = e.op(&format!("arith.ori {first}, {cmp} : i1"));
                let flat = e.cast("arith.index_cast", &flat, "index", "i64");
                let none = e.int_const(DType::S64, -1);
                let pos = e.select(&inside, &flat, &none, "i64");
                let nb = e.select(&take, &v, best, elem(dx));
                let ns = e.select(&take, &pos, sel, "i64");
                vec![nb, ns]
            })
            .remove(1);

        // Step 2: add every source value at its pick, in source order.
        let sel = Val {
            name: picks,
            ty: sel_ty,
        };
        let sel_flat = self.reshape(&sel, &TensorType::new(DType::S64, vec![n_src]));
        let src = self.convert_tensor(source, d);
        let src_flat = self.reshape(&src, &TensorType::new(d, vec![n_src]));
        let (sf, uf) = (sel_flat, src_flat);
        let out_flat = scf_for(&mut self.e, n_src, &result, &flat_ty, |e, i, acc| {
            let s = e.op(&format!("tensor.extract {sf}[{i}] : tensor<{n_src}xi64>"));
            let zero = e.int_const(DType::S64, 0);
            let ok = e.cmpi("sge", &s, &zero, DType::S64);
            let p = e.bin("arith.maxsi", &s, &zero, "i64");
            let p = e.cast("arith.index_cast", &p, "i64", "index");
            let u = e.op(&format!(
                "tensor.extract {uf}[{i}] : tensor<{n_src}x{}>",
                elem(d)
            ));
            let old = e.op(&format!(
                "tensor.extract {acc}[{p}] : {}",
                tensor_ty(&flat_ty)
            ));
            let sum = e.binary(BinaryOp::Add, &old, &u, d);
            let v = e.select(&ok, &sum, &old, elem(d));
            e.op(&format!(
                "tensor.insert {v} into {acc}[{p}] : {}",
                tensor_ty(&flat_ty)
            ))
        });
        let v = Val {
            name: out_flat,
            ty: TensorType::new(d, vec![ty.num_elements()]),
        };
        Ok(self.reshape(&v, ty))
    }
}

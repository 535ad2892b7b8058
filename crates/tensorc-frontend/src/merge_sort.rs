//! Sorting long lines in O(n log n): a stable bottom-up merge sort of
//! positions, for `sort`, `argsort` and `top_k` when the sorted axis is long
//! (the rank-based generics in `scan` do O(n²) comparisons per line).
//!
//! x is viewed as `[outer, n, inner]`; a positions tensor of that shape
//! starts as the identity along the axis, and each of the ⌈log₂ n⌉ passes
//! (unrolled here, n is static) merges neighbouring runs of width w from one
//! positions tensor into a fresh one with `scf.for` loops: over lines, over
//! run pairs, and over the merged output positions with the two run cursors
//! as loop-carried indices. The merge takes from the left run unless the
//! right element comes strictly before it, so equal keys keep their order.
//! Reads use clamped cursors and the choice is a `select`, so the loop body
//! has no branches. The sorted values or positions are then read through
//! the final positions by one generic.

use tensorc_ir::types::{DType, TensorType};

use crate::emit::{Emitter, GenericOperand, identity_map, tensor_ty};
use crate::lower::{Lowerer, Val};
use crate::scan::order;

/// `scf.for %iv = lo to hi` (index SSA bounds, step 1) carrying values
/// `(init, type)`; `body(e, iv, carried)` returns their next values.
pub(crate) fn scf_loop(
    e: &mut Emitter,
    lo: &str,
    hi: &str,
    carried: &[(String, String)],
    body: impl FnOnce(&mut Emitter, &str, &[String]) -> Vec<String>,
) -> Vec<String> {
    let one = e.op("arith.constant 1 : index");
    let (res, iv) = (e.fresh(), e.fresh());
    let accs: Vec<String> = carried.iter().map(|_| e.fresh()).collect();
    let tys: Vec<&str> = carried.iter().map(|(_, t)| t.as_str()).collect();
    let args: Vec<String> = accs
        .iter()
        .zip(carried)
        .map(|(a, (init, _))| format!("{a} = {init}"))
        .collect();
    let head = if carried.len() == 1 {
        res.clone()
    } else {
        format!("{res}:{}", carried.len())
    };
    e.line(&format!(
        "{head} = scf.for {iv} = {lo} to {hi} step {one} iter_args({}) -> ({}) {{",
        args.join(", "),
        tys.join(", ")
    ));
    e.indent(2);
    let next = body(e, &iv, &accs);
    e.stmt(&format!(
        "scf.yield {} : {}",
        next.join(", "),
        tys.join(", ")
    ));
    e.indent(-2);
    e.stmt("}");
    if carried.len() == 1 {
        vec![res]
    } else {
        (0..carried.len()).map(|i| format!("{res}#{i}")).collect()
    }
}

/// A shape seen as lines along `axis`: (elements before the axis, the
/// axis' length, elements after it), as both sorts lay a tensor out.
pub(crate) fn line_extents(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

pub(crate) fn index_const(e: &mut Emitter, v: usize) -> String {
    e.op(&format!("arith.constant {v} : index"))
}

impl Lowerer<'_> {
    /// The stable sorting positions of `x` along `axis` (s64, x's shape):
    /// output position k of a line holds the line position of its element.
    pub(crate) fn merge_sort_positions(&mut self, x: &Val, axis: usize, descending: bool) -> Val {
        let shape = &x.ty.shape;
        let (outer, n, inner) = line_extents(shape, axis);
        let d = x.ty.dtype;
        let x3_ty = TensorType::new(d, vec![outer, n, inner]);
        let x3 = Val {
            name: self.reshape(x, &x3_ty),
            ty: x3_ty,
        };
        let p_ty = TensorType::new(DType::S64, vec![outer, n, inner]);
        let pt = tensor_ty(&p_ty);
        let xt = tensor_ty(&x3.ty);

        // The identity: position k holds k.
        let init = self.e.empty(&p_ty);
        let outs = [GenericOperand {
            value: init,
            ty: p_ty.clone(),
            map: identity_map(3),
        }];
        let mut src = self
            .e
            .generic(3, &[], &[], &outs, |e, _| {
                let k = e.op("linalg.index 1 : index");
                vec![e.cast("arith.index_cast", &k, "index", "i64")]
            })
            .remove(0);

        let mut w = 1;
        while w < n {
            let dst = self.e.empty(&p_ty);
            let (c0, c_outer, c_inner) = (
                index_const(&mut self.e, 0),
                index_const(&mut self.e, outer),
                index_const(&mut self.e, inner),
            );
            let blocks = n.div_ceil(2 * w);
            let c_blocks = index_const(&mut self.e, blocks);
            let s = src.clone();
            let x3n = x3.name.clone();
            let (pt2, xt2) = (pt.clone(), xt.clone());
            src = scf_loop(
                &mut self.e,
                &c0,
                &c_outer,
                &[(dst, pt.clone())],
                |e, o, acc| {
                    scf_loop(
                        e,
                        &c0,
                        &c_inner,
                        &[(acc[0].clone(), pt2.clone())],
                        |e, i, acc| {
                            scf_loop(
                                e,
                                &c0,
                                &c_blocks,
                                &[(acc[0].clone(), pt2.clone())],
                                |e, b, acc| {
                                    let two_w = index_const(e, 2 * w);
                                    let (cw, cn) = (index_const(e, w), index_const(e, n));
                                    let lo = e.op(&format!("arith.muli {b}, {two_w} : index"));
                                    let mid = e.op(&format!("arith.addi {lo}, {cw} : index"));
                                    let mid = e.op(&format!("arith.minui {mid}, {cn} : index"));
                                    let hi = e.op(&format!("arith.addi {lo}, {two_w} : index"));
                                    let hi = e.op(&format!("arith.minui {hi}, {cn} : index"));
                                    let carried = [
                                        (acc[0].clone(), pt2.clone()),
                                        (lo.clone(), "index".into()),
                                        (mid.clone(), "index".into()),
                                    ];
                                    let r = scf_loop(e, &lo, &hi, &carried, |e, p, acc| {
                                        let (ia, ja) = (&acc[1], &acc[2]);
                                        let one = index_const(e, 1);
                                        let a_ok =
                                            e.op(&format!("arith.cmpi ult, {ia}, {mid} : index"));
                                        let b_ok =
                                            e.op(&format!("arith.cmpi ult, {ja}, {hi} : index"));
                                        // Clamped cursors: always inside the line (lo <= mid - 1 when the
                                        // left run is exhausted, hi - 1 when the right one is).
                                        let mid1 =
                                            e.op(&format!("arith.subi {mid}, {one} : index"));
                                        let hi1 = e.op(&format!("arith.subi {hi}, {one} : index"));
                                        let ic = e.op(&format!("arith.minui {ia}, {mid1} : index"));
                                        let jc = e.op(&format!("arith.minui {ja}, {hi1} : index"));
                                        let pa = e.op(&format!(
                                            "tensor.extract {s}[{o}, {ic}, {i}] : {pt2}"
                                        ));
                                        let pb = e.op(&format!(
                                            "tensor.extract {s}[{o}, {jc}, {i}] : {pt2}"
                                        ));
                                        let qa = e.cast("arith.index_cast", &pa, "i64", "index");
                                        let qb = e.cast("arith.index_cast", &pb, "i64", "index");
                                        let va = e.op(&format!(
                                            "tensor.extract {x3n}[{o}, {qa}, {i}] : {xt2}"
                                        ));
                                        let vb = e.op(&format!(
                                            "tensor.extract {x3n}[{o}, {qb}, {i}] : {xt2}"
                                        ));
                                        let (b_first, _) = order(e, &vb, &va, d, descending);
                                        let t = e.bool_const(true);
                                        let not_b_first =
                                            e.op(&format!("arith.xori {b_first}, {t} : i1"));
                                        let no_b = e.op(&format!("arith.xori {b_ok}, {t} : i1"));
                                        let prefer_a =
                                            e.op(&format!("arith.ori {no_b}, {not_b_first} : i1"));
                                        let take_a =
                                            e.op(&format!("arith.andi {a_ok}, {prefer_a} : i1"));
                                        let v = e.select(&take_a, &pa, &pb, "i64");
                                        let next = e.op(&format!(
                                            "tensor.insert {v} into {}[{o}, {p}, {i}] : {pt2}",
                                            acc[0]
                                        ));
                                        let zero = index_const(e, 0);
                                        let step_a = e.select(&take_a, &one, &zero, "index");
                                        let ia2 =
                                            e.op(&format!("arith.addi {ia}, {step_a} : index"));
                                        let step_b =
                                            e.op(&format!("arith.subi {one}, {step_a} : index"));
                                        let ja2 =
                                            e.op(&format!("arith.addi {ja}, {step_b} : index"));
                                        vec![next, ia2, ja2]
                                    });
                                    vec![r[0].clone()]
                                },
                            )
                        },
                    )
                },
            )
            .remove(0);
            w *= 2;
        }
        let pos3 = Val {
            name: src,
            ty: p_ty,
        };
        let pos_ty = TensorType::new(DType::S64, shape.clone());
        Val {
            name: self.reshape(&pos3, &pos_ty),
            ty: pos_ty,
        }
    }

    /// `out` (x's shape, or shorter along `axis` for top_k) read through the
    /// sorting positions: the elements of `values`, or the positions
    /// themselves in `out`'s dtype.
    pub(crate) fn apply_positions(
        &mut self,
        pos: &Val,
        values: Option<&Val>,
        axis: usize,
        out: &TensorType,
    ) -> String {
        let r = out.rank();
        let pos = if pos.ty.shape[axis] == out.shape[axis] {
            pos.clone()
        } else {
            let ty = pos.ty.with_dtype(DType::S64);
            let ty = TensorType::new(ty.dtype, out.shape.clone());
            let zeros = vec!["0"; r].join(", ");
            let sizes: Vec<String> = out.shape.iter().map(usize::to_string).collect();
            let ones = vec!["1"; r].join(", ");
            let name = self.e.op(&format!(
                "tensor.extract_slice {}[{zeros}] [{}] [{ones}] : {} to {}",
                pos.name,
                sizes.join(", "),
                tensor_ty(&pos.ty),
                tensor_ty(&ty)
            ));
            Val { name, ty }
        };
        let init = self.e.empty(out);
        let outs = [GenericOperand {
            value: init,
            ty: out.clone(),
            map: identity_map(r),
        }];
        let d = out.dtype;
        let values = values.cloned();
        self.e
            .generic(r, &[], &[pos.operand(identity_map(r))], &outs, |e, a| {
                let p = &a[0];
                match &values {
                    None => vec![e.convert(p, DType::S64, d)],
                    Some(x) => {
                        let at: Vec<String> = (0..r)
                            .map(|k| {
                                if k == axis {
                                    e.cast("arith.index_cast", p, "i64", "index")
                                } else {
                                    e.op(&format!("linalg.index {k} : index"))
                                }
                            })
                            .collect();
                        let v = e.op(&format!(
                            "tensor.extract {}[{}] : {}",
                            x.name,
                            at.join(", "),
                            tensor_ty(&x.ty)
                        ));
                        vec![v]
                    }
                }
            })
            .remove(0)
    }
}

//! Scans and sorting: `cumulative_*`, `sort`, `argsort` and `top_k`.
//!
//! - A cumulative op is an `scf.for` along the axis that folds one slab of
//!   the input at a time into the running slab (an element-wise generic)
//!   and inserts it into the result: O(n) work, in the sequential scan's
//!   exact order, so float rounding matches the interpreter. Along the last
//!   axis (or one followed by a few elements) the axis is transposed to the
//!   front first and back after, so the slabs are contiguous.
//! - Short lines (up to `MERGE_SORT_FROM` elements; longer ones go through
//!   `merge_sort`, and from `RADIX_SORT_FROM` on through `radix_sort`) are
//!   sorted in linalg, which bufferization, fusion and the
//!   CPU pipeline treat like any other generic, at the price of O(n²)
//!   comparisons per line. Each element's *rank* is how many elements of its
//!   line come before it in the stable order (smaller, or equal and at a
//!   lower position; NaN above everything, -0.0 equal to 0.0). Ranks form a
//!   permutation, so a second generic places element a at position rank(a)
//!   by selecting, for each output position p, the one element whose rank
//!   is p. Values move through `arith.select`, which keeps their bits.

use tensorc_ir::graph::{BinaryOp, ReduceKind};
use tensorc_ir::types::{DType, TensorType};

use crate::LowerError;
use crate::emit::{Emitter, GenericOperand, identity_map, tensor_ty};
use crate::lower::{Lowerer, Val};
use crate::scatter::scf_for_n;

/// Lines longer than this are sorted by the O(n log n) merge sort
/// (`merge_sort`); shorter ones by the rank generics, which are parallel and
/// vectorizable but do n² comparisons.
const MERGE_SORT_FROM: usize = 32;

/// Lines at least this long are sorted by the radix sort (`radix_sort`),
/// whose passes each read the line in order (the merge sort's steps read
/// elements anywhere in x), but which pays 512 counter updates per line and
/// digit; shorter ones by the merge sort.
const RADIX_SORT_FROM: usize = 256;

/// Slabs whose contiguous runs (the extent of the axes after the scanned
/// one) are shorter than this are scanned after a transpose (`cumulative`):
/// one AVX-512 register of f32.
const SHORT_RUN: usize = 16;

/// Map results reading an operand of rank `rank` with `axis` replaced by
/// the expression `at` (the other axes follow the output loops).
fn axis_map(rank: usize, axis: usize, at: &str) -> String {
    (0..rank)
        .map(|i| {
            if i == axis {
                at.to_string()
            } else {
                format!("d{i}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Lowerer<'_> {
    /// `cumulative_sum|product|max|min x, axis:, reverse:`: an `scf.for`
    /// along the axis (backwards for `reverse`) carrying the running slab and
    /// the result; each step folds one slab of x into the running one with an
    /// element-wise generic and inserts it. The first slab is taken as is, so
    /// the fold order (and float rounding) is exactly the sequential scan's.
    pub(crate) fn cumulative(
        &mut self,
        x: &Val,
        kind: ReduceKind,
        axis: usize,
        reverse: bool,
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        let op = match kind {
            ReduceKind::Sum => BinaryOp::Add,
            ReduceKind::Product => BinaryOp::Multiply,
            ReduceKind::Max => BinaryOp::Max,
            ReduceKind::Min => BinaryOp::Min,
            other => return Err(LowerError::Internal(format!("cumulative {other:?}"))),
        };
        // Along an axis whose slabs are strided with short runs (the last
        // axis: every slab element is a row apart), the axis goes first
        // (a tagged transpose, which the transpose schedule runs in register
        // blocks), is scanned there with contiguous slabs, and goes back:
        // two transposes and a streaming scan (2048x2048 f32 along axis 1:
        // 221 ms -> 4.2 ms, one thread) instead of one cache miss per
        // element. Each line is still folded in sequential order.
        let inner: usize = ty.shape[axis + 1..].iter().product();
        let outer: usize = ty.shape[..axis].iter().product();
        if axis > 0 && inner < SHORT_RUN && outer * inner > 1 {
            let perm: Vec<usize> = std::iter::once(axis).chain((0..ty.rank()).filter(|&i| i != axis)).collect();
            let xt = self.permuted(x, &perm);
            let tt = TensorType::new(ty.dtype, xt.ty.shape.clone());
            let scanned = Val { name: self.cumulative(&xt, kind, 0, reverse, &tt)?, ty: tt };
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            return Ok(self.permuted(&scanned, &inverse).name);
        }
        let (r, n, d) = (ty.rank(), ty.shape[axis], ty.dtype);
        // The slab keeps the axis (size 1): a rank-reducing slice is ambiguous
        // when other axes have size 1 too, and MLIR 22's canonicalizer then
        // drops the wrong unit axis (an out-of-bounds slice; seed 3521).
        let mut slab_shape = ty.shape.clone();
        slab_shape[axis] = 1;
        let slab_ty = TensorType::new(d, slab_shape);
        let zero = self.e.num_const(d, 0.0);
        let acc0 = self.e.fill(&zero, &slab_ty);
        let res0 = self.e.empty(ty);
        let sizes: Vec<String> = (0..r)
            .map(|i| {
                if i == axis {
                    "1".to_string()
                } else {
                    ty.shape[i].to_string()
                }
            })
            .collect();
        let ones = vec!["1"; r].join(", ");
        let x = x.clone();
        let carried = [(acc0, slab_ty.clone()), (res0, ty.clone())];
        let out = scf_for_n(&mut self.e, n, &carried, |e, k, accs| {
            let pos = if reverse {
                let last = e.op(&format!("arith.constant {} : index", n - 1));
                e.op(&format!("arith.subi {last}, {k} : index"))
            } else {
                k.to_string()
            };
            let offs: Vec<String> = (0..r)
                .map(|i| {
                    if i == axis {
                        pos.clone()
                    } else {
                        "0".to_string()
                    }
                })
                .collect();
            let slab = e.op(&format!(
                "tensor.extract_slice {}[{}] [{}] [{ones}] : {} to {}",
                x.name,
                offs.join(", "),
                sizes.join(", "),
                tensor_ty(&x.ty),
                tensor_ty(&slab_ty)
            ));
            let zero = e.op("arith.constant 0 : index");
            let first = e.op(&format!("arith.cmpi eq, {k}, {zero} : index"));
            let sr = slab_ty.rank();
            // The running slab is the generic's output (updated in place), so the
            // loop yields a value equivalent to its iter_arg, as bufferization needs.
            let ins = [GenericOperand {
                value: slab,
                ty: slab_ty.clone(),
                map: identity_map(sr),
            }];
            let outs = [GenericOperand {
                value: accs[0].clone(),
                ty: slab_ty.clone(),
                map: identity_map(sr),
            }];
            let next = e
                .generic(sr, &[], &ins, &outs, |e, a| {
                    let folded = e.binary(op, &a[1], &a[0], d);
                    vec![e.select(&first, &a[0], &folded, crate::emit::elem(d))]
                })
                .remove(0);
            let res = e.op(&format!(
                "tensor.insert_slice {next} into {}[{}] [{}] [{ones}] : {} into {}",
                accs[1],
                offs.join(", "),
                sizes.join(", "),
                tensor_ty(&slab_ty),
                tensor_ty(ty)
            ));
            vec![next, res]
        });
        Ok(out[1].clone())
    }

    /// The stable rank of every element of `x` along `axis` (s64).
    fn sort_ranks(&mut self, x: &Val, axis: usize, descending: bool) -> Val {
        let r = x.ty.rank();
        let rank_ty = x.ty.with_dtype(DType::S64);
        let ins = [
            x.operand(identity_map(r)),
            x.operand(axis_map(r, axis, &format!("d{r}"))),
        ];
        let zero = self.e.int_const(DType::S64, 0);
        let init = self.e.fill(&zero, &rank_ty);
        let outs = [GenericOperand {
            value: init,
            ty: rank_ty.clone(),
            map: identity_map(r),
        }];
        let mut red = vec![false; r];
        red.push(true);
        let d = x.ty.dtype;
        let name = self
            .e
            .generic(r + 1, &red, &ins, &outs, |e, a| {
                let (xa, xb, acc) = (&a[0], &a[1], &a[2]);
                let (earlier, same) = order(e, xb, xa, d, descending);
                let ia = e.op(&format!("linalg.index {axis} : index"));
                let ib = e.op(&format!("linalg.index {r} : index"));
                let lower = e.op(&format!("arith.cmpi ult, {ib}, {ia} : index"));
                let tie = e.op(&format!("arith.andi {same}, {lower} : i1"));
                let before = e.op(&format!("arith.ori {earlier}, {tie} : i1"));
                let one = e.cast("arith.extui", &before, "i1", "i64");
                vec![e.op(&format!("arith.addi {acc}, {one} : i64"))]
            })
            .remove(0);
        Val { name, ty: rank_ty }
    }

    /// Places element a of each line at position ranks[a]; `values` gives
    /// the elements themselves, `None` their positions (argsort) in `out`'s
    /// dtype. `out`'s axis may be shorter than the line (top_k keeps the
    /// first positions).
    fn permute(
        &mut self,
        ranks: &Val,
        values: Option<&Val>,
        axis: usize,
        out: &TensorType,
    ) -> String {
        let r = out.rank();
        let at = format!("d{r}");
        let mut ins = vec![ranks.operand(axis_map(r, axis, &at))];
        if let Some(v) = values {
            ins.push(v.operand(axis_map(r, axis, &at)));
        }
        let d = out.dtype;
        let zero = self.e.num_const(d, 0.0);
        let init = self.e.fill(&zero, out);
        let outs = [GenericOperand {
            value: init,
            ty: out.clone(),
            map: identity_map(r),
        }];
        let mut red = vec![false; r];
        red.push(true);
        let has_values = values.is_some();
        self.e
            .generic(r + 1, &red, &ins, &outs, |e, a| {
                let rank = &a[0];
                let acc = a.last().expect("the output argument").clone();
                let p = e.op(&format!("linalg.index {axis} : index"));
                let p = e.cast("arith.index_cast", &p, "index", "i64");
                let hit = e.op(&format!("arith.cmpi eq, {rank}, {p} : i64"));
                let v = if has_values {
                    a[1].clone()
                } else {
                    let src = e.op(&format!("linalg.index {r} : index"));
                    e.index_to(&src, d)
                };
                vec![e.select(&hit, &v, &acc, crate::emit::elem(d))]
            })
            .remove(0)
    }

    /// The stable sorting positions of a long line (s64, x's shape): by the
    /// radix sort from `RADIX_SORT_FROM` elements (its positions are i32),
    /// else by the merge sort.
    fn sort_positions(&mut self, x: &Val, axis: usize, descending: bool) -> Val {
        let n = x.ty.shape[axis];
        if (RADIX_SORT_FROM..1 << 31).contains(&n) {
            self.radix_sort_positions(x, axis, descending)
        } else {
            self.merge_sort_positions(x, axis, descending)
        }
    }

    /// `sort` (`arg` false) or `argsort` (`arg` true).
    pub(crate) fn sort(
        &mut self,
        x: &Val,
        axis: usize,
        descending: bool,
        arg: bool,
        ty: &TensorType,
    ) -> String {
        if x.ty.shape[axis] > MERGE_SORT_FROM {
            let pos = self.sort_positions(x, axis, descending);
            return self.apply_positions(&pos, if arg { None } else { Some(x) }, axis, ty);
        }
        let ranks = self.sort_ranks(x, axis, descending);
        self.permute(&ranks, if arg { None } else { Some(x) }, axis, ty)
    }

    /// `top_k x, k:`: values and s32 positions of the first k elements of
    /// the stable descending sort along the last axis.
    pub(crate) fn top_k(&mut self, x: &Val, k: usize) -> Result<Vec<Val>, LowerError> {
        let r = x.ty.rank();
        if r == 0 {
            return Err(LowerError::Internal("top_k of a scalar".into()));
        }
        let mut shape = x.ty.shape.clone();
        shape[r - 1] = k;
        let vty = TensorType::new(x.ty.dtype, shape.clone());
        let ity = TensorType::new(DType::S32, shape);
        if vty.checked_num_elements() == Some(0) {
            let (v, i) = (self.e.empty(&vty), self.e.empty(&ity));
            return Ok(vec![Val { name: v, ty: vty }, Val { name: i, ty: ity }]);
        }
        let (values, indices) = if k == 1 {
            self.top_1(x, &vty, &ity)
        } else if crate::top_k::selects(&x.ty, k) {
            self.top_k_select(x, k, &vty, &ity)
        } else if x.ty.shape[r - 1] > MERGE_SORT_FROM {
            let pos = self.sort_positions(x, r - 1, true);
            (
                self.apply_positions(&pos, Some(x), r - 1, &vty),
                self.apply_positions(&pos, None, r - 1, &ity),
            )
        } else {
            let ranks = self.sort_ranks(x, r - 1, true);
            (
                self.permute(&ranks, Some(x), r - 1, &vty),
                self.permute(&ranks, None, r - 1, &ity),
            )
        };
        Ok(vec![
            Val {
                name: values,
                ty: vty,
            },
            Val {
                name: indices,
                ty: ity,
            },
        ])
    }
}

/// Whether `b` comes strictly before `a` in the sort order, and whether the
/// two are equal in it (both i1). NaN is above every number and equal to
/// NaN; -0.0 equals 0.0 (ordered float comparison).
pub(crate) fn order(
    e: &mut Emitter,
    b: &str,
    a: &str,
    d: DType,
    descending: bool,
) -> (String, String) {
    if !d.is_float() {
        let s = d.is_signed_int();
        let pred = match (descending, s) {
            (false, true) => "slt",
            (false, false) => "ult",
            (true, true) => "sgt",
            (true, false) => "ugt",
        };
        let earlier = e.cmpi(pred, b, a, d);
        let same = e.cmpi("eq", b, a, d);
        return (earlier, same);
    }
    let nan_b = e.cmpf("uno", b, b, d);
    let nan_a = e.cmpf("uno", a, a, d);
    let t = e.bool_const(true);
    let (cmp, nan_first) = if descending {
        // NaN b comes before any number a.
        let not_a = e.op(&format!("arith.xori {nan_a}, {t} : i1"));
        (
            e.cmpf("ogt", b, a, d),
            e.op(&format!("arith.andi {nan_b}, {not_a} : i1")),
        )
    } else {
        // Any number b comes before a NaN a.
        let not_b = e.op(&format!("arith.xori {nan_b}, {t} : i1"));
        (
            e.cmpf("olt", b, a, d),
            e.op(&format!("arith.andi {not_b}, {nan_a} : i1")),
        )
    };
    let earlier = e.op(&format!("arith.ori {cmp}, {nan_first} : i1"));
    let eq = e.cmpf("oeq", b, a, d);
    let both_nan = e.op(&format!("arith.andi {nan_b}, {nan_a} : i1"));
    let same = e.op(&format!("arith.ori {eq}, {both_nan} : i1"));
    (earlier, same)
}

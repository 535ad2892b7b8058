//! `top_k` with a small k by selection: k reductions over each line instead
//! of a sort of the whole line; `k: 1` as `argmax`.
//!
//! Every element gets a 64-bit key that orders like the stable descending
//! sort `top_k` takes its first k from: the value's order bits (`argmax`'s
//! `arg_order_key`: NaN above every number and equal to NaN, −0.0 equal to
//! 0.0) in the high half and the complement of its position in the low half,
//! so of two equal values the earlier one has the greater key. Keys of a
//! line are all different (their positions are), none is 0 (a position's
//! complement is never 0 on a line shorter than 2³¹). A first reduction
//! finds each line's best order bits m; pass j (an `scf.for` over k) is one
//! reduction per line, the greatest key at most a bound (`maxui` of
//! `key <= bound ? key : 0`): any key of m in the first pass, one less than
//! pass j−1's key after. Its low half is the j-th position; the values are
//! read back from x at the positions, so their bits (NaN payloads, the sign
//! of zero) are x's own.
//!
//! Each pass reads the line once in order, vectorized by the reduction
//! schedule: about k·n simple operations per line against the sorts'
//! passes over the line and their gather of every element (`top_k` k = 8
//! of 4096×1000 f32 43.5 → 3.0 ms, one thread; docs/benchmarks.md).

use tensorc_ir::types::{DType, TensorType};

use crate::emit::{Emitter, GenericOperand, identity_map, tensor_ty};
use crate::lower::{Lowerer, Val};
use crate::reduce::arg_order_key;
use crate::scatter::scf_for_n;

/// The largest k taken by selection; larger ones sort the line (k passes
/// cost about k·n; the sorts' cost per line does not grow with k).
const SELECT_MAX: usize = 64;

/// The longest line taken by selection: the passes read positions from a
/// constant of the line's length (256 KiB at most).
const SELECT_LINE_MAX: usize = 1 << 16;

/// Whether `top_k x, k:` runs by selection: k of at most `SELECT_MAX`,
/// lines of at most `SELECT_LINE_MAX` elements, elements of at most 32 bits
/// (the key's high half holds the value's order). Short lines too: against
/// the rank generics (n² compares per line) selection took 0.09× the time
/// of 10000×8 k = 4, 0.17× of 10000×16 k = 8, 0.23× of 10000×32 k = 16;
/// against the merge sort 0.12× of 1000×100 k = 32; against the radix sort
/// 0.64× of 1000×1000 k = 64 (one thread).
pub(crate) fn selects(x: &TensorType, k: usize) -> bool {
    let n = x.shape.last().copied().unwrap_or(0);
    (1..=SELECT_MAX).contains(&k) && n <= SELECT_LINE_MAX && x.dtype.size_bytes() <= 4
}

/// An element `v` of dtype `d` as an i32 whose unsigned order is the
/// descending sort's (greater comes first): narrower integers widened
/// (their order kept), f16 extended, bf16 as the f32 with its bits.
fn order_bits(e: &mut Emitter, v: &str, d: DType) -> String {
    match d {
        DType::F32 | DType::S32 | DType::U32 => arg_order_key(e, v, d, true),
        DType::F16 => {
            let f = e.cast("arith.extf", v, "f16", "f32");
            arg_order_key(e, &f, DType::F32, true)
        }
        DType::BF16 => {
            let f = e.bf16_to_f32_bits(v);
            arg_order_key(e, &f, DType::F32, true)
        }
        _ if d.is_signed_int() => {
            let w = e.cast("arith.extsi", v, crate::emit::elem(d), "i32");
            arg_order_key(e, &w, DType::S32, true)
        }
        _ => {
            let w = e.cast("arith.extui", v, crate::emit::elem(d), "i32");
            arg_order_key(e, &w, DType::U32, true)
        }
    }
}

/// The key of element `v` (dtype `d`) at position `i` (i32).
fn key(e: &mut Emitter, v: &str, d: DType, i: &str) -> String {
    let bits = order_bits(e, v, d);
    let high = e.cast("arith.extui", &bits, "i32", "i64");
    let c32 = e.int_const(DType::U64, 32);
    let high = e.bin("arith.shli", &high, &c32, "i64");
    let ones = e.int_const(DType::S32, -1);
    let not_i = e.bin("arith.xori", i, &ones, "i32");
    let low = e.cast("arith.extui", &not_i, "i32", "i64");
    e.bin("arith.ori", &high, &low, "i64")
}

impl Lowerer<'_> {
    /// `top_k x, k: 1`: the position is `argmax` with `tie_break: :low`
    /// along the last axis (its order is the sort's: NaN best, −0.0 equal
    /// to 0.0, the first of equals), any line length and dtype; the value
    /// is read back from x there.
    pub(crate) fn top_1(&mut self, x: &Val, vty: &TensorType, ity: &TensorType) -> (String, String) {
        let r = x.ty.rank();
        let line_ty = TensorType::new(DType::S32, x.ty.shape[..r - 1].to_vec());
        let best = self.arg_reduce(x, true, Some(r - 1), false, &line_ty);
        let indices = self.reshape(&Val { name: best, ty: line_ty }, ity);
        let values = self.take_along_axis(x, &Val { name: indices.clone(), ty: ity.clone() }, r - 1, vty);
        (values, indices)
    }

    /// `top_k x, k:` by selection (`selects`): the values (`vty`) and s32
    /// positions (`ity`).
    ///
    /// The passes are one `scf.for` over k, not k generics: each pass's
    /// vectorized reduction and its tree took 60–110 ms to compile (k = 16
    /// of 1000×64: 1.8 s unrolled).
    pub(crate) fn top_k_select(&mut self, x: &Val, k: usize, vty: &TensorType, ity: &TensorType) -> (String, String) {
        let r = x.ty.rank();
        let d = x.ty.dtype;
        let lines = x.ty.shape[..r - 1].to_vec();
        let line_map = (0..r - 1).map(|i| format!("d{i}")).collect::<Vec<_>>().join(", ");
        let reduced: Vec<bool> = (0..r).map(|i| i + 1 == r).collect();
        // The best order bits of each line: a plain reduction, which the
        // reduction schedule splits and vectorizes.
        let bits_ty = TensorType::new(DType::U32, lines.clone());
        let init = self.filled(&bits_ty, 0.0, Some(0));
        let outs = [GenericOperand { value: init, ty: bits_ty.clone(), map: line_map.clone() }];
        let best_bits = self
            .e
            .generic(r, &reduced, &[x.operand(identity_map(r))], &outs, |e, a| {
                let b = order_bits(e, &a[0], d);
                vec![e.bin("arith.maxui", &a[1], &b, "i32")]
            })
            .remove(0);
        let best_bits = Val { name: best_bits, ty: bits_ty };
        // Each pass reads the greatest key it may take as `[lines..., 1]`
        // (map `(…, 0)`), the broadcast `tensorc-row-fuse-mark` gives the
        // reduction schedule's tag (a plain reduction would be matched by
        // the schedule itself, whose split does not offset a
        // `linalg.index`), and the positions from a constant `[0, 1, …,
        // n−1]`, which the split does offset. The first pass may take any
        // key of the best value.
        let mut column = lines.clone();
        column.push(1);
        let column_ty = TensorType::new(DType::U64, column.clone());
        let column_map = format!("{line_map}{}0", if r > 1 { ", " } else { "" });
        let first = self.e.empty(&column_ty);
        let outs = [GenericOperand { value: first, ty: column_ty.clone(), map: identity_map(r) }];
        let first = self
            .e
            .generic(r, &[], &[best_bits.operand(line_map.clone())], &outs, |e, a| {
                let high = e.cast("arith.extui", &a[0], "i32", "i64");
                let c32 = e.int_const(DType::U64, 32);
                let high = e.bin("arith.shli", &high, &c32, "i64");
                let low = e.int_const(DType::U64, u32::MAX as i128);
                vec![e.bin("arith.ori", &high, &low, "i64")]
            })
            .remove(0);
        let n = x.ty.shape[r - 1];
        let iota_ty = TensorType::new(DType::S32, vec![n]);
        let positions: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let iota = self.e.op(&format!("arith.constant dense<[{}]> : {}", positions.join(", "), tensor_ty(&iota_ty)));
        let iota = Val { name: iota, ty: iota_ty };
        let indices = self.e.empty(ity);
        let key_ty = TensorType::new(DType::U64, lines.clone());
        let col_ity = TensorType::new(DType::S32, column.clone());
        let x = x.clone();
        // Every tensor the passes write is carried by the loop (the keys'
        // scratch too), so nothing is allocated inside it: the Vulkan target
        // has no kernel for an allocation, and on the CPU it would be one
        // per pass.
        let scratch = self.e.empty(&key_ty);
        let carried = [(first, column_ty.clone()), (indices, ity.clone()), (scratch, key_ty.clone())];
        let done = scf_for_n(&mut self.e, k, &carried, |e, j, acc| {
            let zero = e.int_const(DType::U64, 0);
            let init = e.op(&format!("linalg.fill ins({zero} : i64) outs({} : {ty}) -> {ty}", acc[2], ty = tensor_ty(&key_ty)));
            let ins = [
                x.operand(identity_map(r)),
                iota.operand(format!("d{}", r - 1)),
                GenericOperand { value: acc[0].clone(), ty: column_ty.clone(), map: column_map.clone() },
            ];
            let outs = [GenericOperand { value: init, ty: key_ty.clone(), map: line_map.clone() }];
            let best = e
                .generic(r, &reduced, &ins, &outs, |e, a| {
                    let kv = key(e, &a[0], d, &a[1]);
                    let ok = e.cmpi("ule", &kv, &a[2], DType::U64);
                    let zero = e.int_const(DType::U64, 0);
                    let kv = e.select(&ok, &kv, &zero, "i64");
                    vec![e.bin("arith.maxui", &a[3], &kv, "i64")]
                })
                .remove(0);
            let best_key = best.clone();
            let best = GenericOperand { value: best, ty: key_ty.clone(), map: line_map.clone() };
            // The next pass takes the keys below this one's; position j
            // of the result is this key's position.
            // (Written over the bound it replaces, which the body reads —
            // the key is at most the bound, so the `minui` changes nothing —
            // as bufferization wants a loop's yielded tensors in place of its
            // iteration arguments, and an unread output becomes a fresh
            // tensor.)
            let outs = [GenericOperand { value: acc[0].clone(), ty: column_ty.clone(), map: identity_map(r) }];
            let next = e
                .generic(r, &[], std::slice::from_ref(&best), &outs, |e, a| {
                    let one = e.int_const(DType::U64, 1);
                    let below = e.bin("arith.subi", &a[0], &one, "i64");
                    vec![e.bin("arith.minui", &a[1], &below, "i64")]
                })
                .remove(0);
            let mut at: Vec<String> = vec!["0".into(); r - 1];
            at.push(j.to_string());
            let sizes = column.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
            let ones = vec!["1"; r].join(", ");
            let slot = e.op(&format!(
                "tensor.extract_slice {}[{}] [{sizes}] [{ones}] : {} to {}",
                acc[1],
                at.join(", "),
                tensor_ty(ity),
                tensor_ty(&col_ity)
            ));
            let outs = [GenericOperand { value: slot, ty: col_ity.clone(), map: identity_map(r) }];
            let pos = e
                .generic(r, &[], &[best], &outs, |e, a| {
                    let low = e.cast("arith.trunci", &a[0], "i64", "i32");
                    let ones = e.int_const(DType::S32, -1);
                    vec![e.bin("arith.xori", &low, &ones, "i32")]
                })
                .remove(0);
            let placed = e.op(&format!(
                "tensor.insert_slice {pos} into {}[{}] [{sizes}] [{ones}] : {} into {}",
                acc[1],
                at.join(", "),
                tensor_ty(&col_ity),
                tensor_ty(ity)
            ));
            vec![next, placed, best_key]
        });
        let indices = done[1].clone();
        let values = self.take_along_axis(&x, &Val { name: indices.clone(), ty: ity.clone() }, r - 1, vty);
        (values, indices)
    }
}

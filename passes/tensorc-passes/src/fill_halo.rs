//! `tensorc-fill-halo`: a padded temporary's fill writes only the halo,
//! the part the copy of the operand does not overwrite.
//!
//! Why: bufferization makes a `tensor.pad` (a convolution's `:same`
//! padding, an explicit `pad`) a temporary of the padded size, filled
//! whole with the padding value and then overwritten, in its interior,
//! with a copy of the operand. For W9 (56×56×64 padded to 58×58×64) the
//! fill is an 861 KB `memset` of which 93 % is overwritten right after, run
//! on the calling thread before the convolution's parallel loop: on two
//! threads the `memset` and the copy were 6 % of the samples, and the
//! worker spun idle through them. `tensorc-read-through-pads` removes
//! temporaries padded at the end only; this pass takes the ones it leaves
//! (padding before the operand, as a convolution's is, or reads it cannot
//! redirect) and fills the complement of the copied box instead: for each
//! dimension `d`, the slabs before and after the box along `d`, spanning
//! the box along the dimensions before `d` and everything along the ones
//! after it — disjoint boxes that, with the copied one, cover the
//! temporary once. Every element gets the same value as before: the
//! padding value outside the box, the operand's inside it.
//!
//! Which buffers: a `memref.alloc` of a static identity-layout memref whose
//! uses are one constant fill (`linalg.fill`, or a `linalg.map` with no
//! inputs yielding an `arith.constant`), one unit-stride rank-preserving
//! `memref.subview` with static offsets and sizes that is only the target
//! of one `memref.copy`, and other uses that all come after the copy (reads,
//! its release); the fill and the copy are in the alloc's block, the fill
//! first. Each slab is a static `memref.subview` of the temporary and a
//! clone of the fill writing it (lowered to loops later, like the whole
//! fill was). It runs right after `tensorc-read-through-pads`.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use crate::read_through_pads::fill_value;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::FILL_HALO;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Fill only the part of a padded temporary that the operand's copy does not overwrite",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { fill_halos(module) };
            true
        },
    )
}

/// Rewrites every eligible padded temporary of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn fill_halos(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for alloc in ops_named(module, "memref.alloc") {
            if let Some(pad) = padded(alloc) {
                rewrite(alloc, &pad);
                count += 1;
            }
        }
        count
    }
}

/// A padded temporary: its fill (and the operand number the temporary is
/// at in it), its shape and the box the copy writes.
struct Padded {
    fill: MlirOperation,
    fill_at: isize,
    shape: Vec<i64>,
    offsets: Vec<i64>,
    sizes: Vec<i64>,
}

unsafe fn padded(alloc: MlirOperation) -> Option<Padded> {
    unsafe {
        let p = static_identity_alloc(alloc)?;
        let t = mlirValueGetType(p);
        let (mut fill, mut copy, mut others) = (None, None, Vec::new());
        for (op, at) in uses(p) {
            match op_name(op).as_str() {
                "linalg.fill" | "linalg.map" if fill.is_none() && fill_value(op, at).is_some() => fill = Some((op, at)),
                "memref.subview" if copy.is_none() && at == 0 => copy = Some((op, copy_into(op)?)),
                _ => others.push(op),
            }
        }
        let ((fill, fill_at), (_, (copy, offsets, sizes))) = (fill?, copy?);
        let block = mlirOperationGetBlock(alloc);
        let here = |op: MlirOperation| mlirOperationGetBlock(op).ptr == block.ptr;
        if !here(fill) || !here(copy) || !mlirOperationIsBeforeInBlock(fill, copy) {
            return None;
        }
        // Nothing else may see the temporary before the copy has written it.
        for op in others {
            let after = holder_in(op, block).is_some_and(|h| h.ptr != copy.ptr && mlirOperationIsBeforeInBlock(copy, h));
            if !after {
                return None;
            }
        }
        Some(Padded { fill, fill_at, shape: shape(t), offsets, sizes })
    }
}

/// For a unit-stride, rank-preserving subview with static offsets and sizes
/// whose only use is as the target of a `memref.copy`: the copy, the
/// offsets and the sizes.
unsafe fn copy_into(view: MlirOperation) -> Option<(MlirOperation, Vec<i64>, Vec<i64>)> {
    unsafe {
        let (offsets, sizes) = subview_offsets(view)?;
        let offsets = offsets.into_iter().map(Offset::constant).collect::<Option<Vec<i64>>>()?;
        let rank = mlirShapedTypeGetRank(mlirValueGetType(mlirOperationGetOperand(view, 0)));
        if mlirShapedTypeGetRank(mlirValueGetType(result(view))) != rank {
            return None;
        }
        let (copy, at) = sole_use(result(view))?;
        (op_name(copy) == "memref.copy" && at == 1).then_some((copy, offsets, sizes))
    }
}

/// The boxes (offsets, sizes) of `shape` outside the box `offsets`/`sizes`:
/// for each dimension `d`, the slabs before and after the box along `d`,
/// within the box along the dimensions before `d`, whole along the ones
/// after it. Disjoint, and with the box they cover `shape` once.
pub fn halo(shape: &[i64], offsets: &[i64], sizes: &[i64]) -> Vec<(Vec<i64>, Vec<i64>)> {
    let mut boxes = Vec::new();
    for d in 0..shape.len() {
        let slab = |from: i64, len: i64| {
            let offs = (0..shape.len()).map(|e| if e < d { offsets[e] } else if e == d { from } else { 0 }).collect();
            let lens = (0..shape.len()).map(|e| if e < d { sizes[e] } else if e == d { len } else { shape[e] }).collect();
            (offs, lens)
        };
        let end = offsets[d] + sizes[d];
        if offsets[d] > 0 {
            boxes.push(slab(0, offsets[d]));
        }
        if end < shape[d] {
            boxes.push(slab(end, shape[d] - end));
        }
    }
    boxes
}

/// Replaces the fill of the whole temporary by fills of its halo's boxes.
unsafe fn rewrite(alloc: MlirOperation, pad: &Padded) {
    unsafe {
        let ctx = mlirOperationGetContext(alloc);
        let p = result(alloc);
        let t = mlirValueGetType(p);
        let element = print_type(mlirShapedTypeGetElementType(t));
        let block = mlirOperationGetBlock(pad.fill);
        let loc = mlirOperationGetLocation(pad.fill);
        // Row-major strides of the identity layout.
        let mut strides = vec![1i64; pad.shape.len()];
        for d in (0..pad.shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * pad.shape[d + 1];
        }
        let list = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        // Every slab's view type first: the fill stays whole unless all parse
        // (they always should: a static strided memref of the alloc's element).
        let mut slabs = Vec::new();
        for (offsets, sizes) in halo(&pad.shape, &pad.offsets, &pad.sizes) {
            if sizes.contains(&0) {
                continue;
            }
            let offset: i64 = offsets.iter().zip(&strides).map(|(o, s)| o * s).sum();
            let dims = sizes.iter().map(|s| format!("{s}x")).collect::<String>();
            let Some(ty) = parse_type(ctx, &format!("memref<{dims}{element}, strided<[{}], offset: {offset}>>", list(&strides)))
            else {
                return;
            };
            slabs.push((offsets, sizes, ty));
        }
        for (offsets, sizes, ty) in slabs {
            let ones = vec![1i64; sizes.len()];
            let view = build(
                ctx,
                "memref.subview",
                loc,
                &[p],
                &[ty],
                &[
                    ("static_offsets", attr(ctx, &format!("array<i64: {}>", list(&offsets)))),
                    ("static_sizes", attr(ctx, &format!("array<i64: {}>", list(&sizes)))),
                    ("static_strides", attr(ctx, &format!("array<i64: {}>", list(&ones)))),
                    ("operandSegmentSizes", attr(ctx, "array<i32: 1, 0, 0, 0>")),
                ],
            );
            mlirBlockInsertOwnedOperationBefore(block, pad.fill, view);
            let clone = mlirOperationClone(pad.fill);
            mlirOperationSetOperand(clone, pad.fill_at, result(view));
            mlirBlockInsertOwnedOperationBefore(block, pad.fill, clone);
        }
        mlirOperationDestroy(pad.fill);
    }
}

#[cfg(test)]
mod tests {
    use super::halo;

    /// Every element of `shape` lies in exactly one of the box and its halo.
    fn covers_once(shape: &[i64], offsets: &[i64], sizes: &[i64]) {
        let mut boxes = halo(shape, offsets, sizes);
        boxes.push((offsets.to_vec(), sizes.to_vec()));
        let total: i64 = shape.iter().product();
        for flat in 0..total {
            let mut idx = vec![0; shape.len()];
            let mut r = flat;
            for d in (0..shape.len()).rev() {
                idx[d] = r % shape[d];
                r /= shape[d];
            }
            let inside = |(o, s): &(Vec<i64>, Vec<i64>)| (0..shape.len()).all(|d| idx[d] >= o[d] && idx[d] < o[d] + s[d]);
            assert_eq!(boxes.iter().filter(|b| inside(b)).count(), 1, "{idx:?} in {boxes:?}");
        }
    }

    #[test]
    fn halo_and_box_cover_the_temporary_once() {
        covers_once(&[1, 58, 58, 64], &[0, 1, 1, 0], &[1, 56, 56, 64]);
        covers_once(&[3, 7, 5], &[1, 0, 2], &[1, 7, 2]);
        covers_once(&[9], &[4], &[3]);
        covers_once(&[4, 4], &[0, 0], &[4, 4]);
        covers_once(&[5, 6], &[0, 0], &[2, 6]);
        covers_once(&[6, 5], &[2, 3], &[0, 2]);
    }

    #[test]
    fn a_convolutions_halo_is_four_slabs() {
        let boxes = halo(&[1, 58, 58, 64], &[0, 1, 1, 0], &[1, 56, 56, 64]);
        assert_eq!(
            boxes,
            vec![
                (vec![0, 0, 0, 0], vec![1, 1, 58, 64]),
                (vec![0, 57, 0, 0], vec![1, 1, 58, 64]),
                (vec![0, 1, 0, 0], vec![1, 56, 1, 64]),
                (vec![0, 1, 57, 0], vec![1, 56, 1, 64]),
            ]
        );
    }
}

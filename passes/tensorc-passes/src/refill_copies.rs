//! `tensorc-refill-copies`: a copy of a buffer that holds nothing but one
//! fill becomes that fill of the copy's target.
//!
//! Why: the kernel schedule hoists loop-invariant ops out of loops while
//! still on tensors, and a reduction's initial `linalg.fill` is one (a
//! constant into an empty tensor). Inside the row-fusion step's loops over
//! several rows (`row_fuse_schedule::SHORT_ROWS_STEP`), the reductions are
//! left to the scalar lowering and write their init in place, so
//! bufferization gives each step a fresh buffer and copies the hoisted fill
//! into it: an allocation, a copy and a release per step and reduction
//! (softmax over 100000×10 f32 spent about 14 % of its time in the
//! allocator). Filling the fresh buffer instead needs no source; the
//! allocation then holds nothing from outside its step, which
//! `tensorc-outline-parallel` moves out of the loop (`hoist_scratch`).
//!
//! A `memref.copy %src, %dst` is rewritten when `%dst` is a
//! `memref.alloc` and `%src` a `memref.alloc` whose other users are one
//! `linalg.fill` (its init, in a block that encloses the copy, before it),
//! copies out of it and its `memref.dealloc`: nothing else writes `%src`,
//! so every copy reads the filled value. The copy becomes a clone of the
//! fill writing `%dst`; a source left with only its fill and release goes.
//!
//! It runs on buffers, after bufferization's clean-up, before the parallel
//! loops are outlined.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::REFILL_COPIES;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Turn copies of a filled buffer into fills of the copy's target",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { refill(module) };
            true
        },
    )
}

/// Rewrites every copy of `module` that the module comment allows; returns
/// how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn refill(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for copy in ops_named(module, "memref.copy") {
            let (src, dst) = (mlirOperationGetOperand(copy, 0), mlirOperationGetOperand(copy, 1));
            if defined_by(dst, "memref.alloc").is_none() {
                continue;
            }
            let Some(alloc) = defined_by(src, "memref.alloc") else {
                continue;
            };
            let Some(fill) = sole_fill(src, copy) else {
                continue;
            };
            let clone = mlirOperationClone(fill);
            mlirOperationSetOperand(clone, 1, dst);
            let block = mlirOperationGetBlock(copy);
            mlirBlockInsertOwnedOperationBefore(block, copy, clone);
            mlirOperationDestroy(copy);
            count += 1;
            let rest = uses(src);
            if rest.iter().all(|&(u, _)| u.ptr == fill.ptr || op_name(u) == "memref.dealloc") {
                for (u, _) in rest {
                    mlirOperationDestroy(u);
                }
                mlirOperationDestroy(alloc);
            }
        }
        count
    }
}

/// The one `linalg.fill` writing `src`, when every other user of `src` is a
/// `memref.copy` out of it or its `memref.dealloc`, and the fill is in a
/// block that encloses `copy`, before it.
unsafe fn sole_fill(src: MlirValue, copy: MlirOperation) -> Option<MlirOperation> {
    unsafe {
        let mut fill = None;
        for (user, at) in uses(src) {
            match op_name(user).as_str() {
                "linalg.fill" if at == 1 && fill.is_none() => fill = Some(user),
                "memref.copy" if at == 0 => {}
                "memref.dealloc" => {}
                _ => return None,
            }
        }
        let fill = fill?;
        if mlirOperationGetNumOperands(fill) != 2 {
            return None;
        }
        // The fill precedes the copy, or the op of the fill's block that
        // holds the copy.
        let holder = holder_in(copy, mlirOperationGetBlock(fill))?;
        ops_before(holder).iter().any(|o| o.ptr == fill.ptr).then_some(fill)
    }
}

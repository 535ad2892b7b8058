//! `tensorc-scalar-transfers`: 0-d vector transfers become a scalar load or
//! store.
//!
//! Why: vectorizing an op over one element makes `vector.transfer_read`s
//! and `transfer_write`s of 0-d vectors (`vector<i64>`). `convert-vector-to-scf`
//! leaves them alone (it only lowers transfers of more than `target-rank`
//! dimensions) and `convert-vector-to-llvm` lowers one only when the memref's
//! innermost stride is 1; on a strided view (a `slice` with strides, say
//! `slice p0, [2, 0, 2], [2, 3, 3], [3, 2, 2]` of a u64 tensor) the transfer
//! survived to LLVM translation, which failed (`unrealized_conversion_cast`;
//! generated seed 5293 with special inputs). A 0-d transfer reads or writes
//! exactly one element, so `memref.load` + `vector.broadcast` (read) and
//! `vector.extract` + `memref.store` (write) say the same on any layout.
//!
//! Which ops: unmasked 0-d `vector.transfer_read`/`transfer_write` on
//! memrefs. It runs after bufferization with tensorc's other buffer passes.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-scalar-transfers";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Lower 0-d vector transfers to scalar loads and stores",
        &[DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { scalar_transfers(module) };
            true
        },
    )
}

/// Rewrites every 0-d transfer of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn scalar_transfers(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for op in ops_named(module, "vector.transfer_read") {
            count += usize::from(read(op));
        }
        for op in ops_named(module, "vector.transfer_write") {
            count += usize::from(write(op));
        }
        count
    }
}

/// The memref operand at `at` and its rank, if it is a memref and the op
/// has exactly the memref's indices after it and `extra` operands more.
unsafe fn memref_and_indices(
    op: MlirOperation,
    at: isize,
    extra: isize,
) -> Option<(MlirValue, Vec<MlirValue>)> {
    unsafe {
        let m = mlirOperationGetOperand(op, at);
        let t = mlirValueGetType(m);
        if !mlirTypeIsAMemRef(t) {
            return None;
        }
        let rank = mlirShapedTypeGetRank(t) as isize;
        if mlirOperationGetNumOperands(op) != at + 1 + rank + extra {
            return None;
        }
        Some((
            m,
            (0..rank)
                .map(|i| mlirOperationGetOperand(op, at + 1 + i))
                .collect(),
        ))
    }
}

unsafe fn read(op: MlirOperation) -> bool {
    unsafe {
        let vt = mlirValueGetType(result(op));
        if mlirShapedTypeGetRank(vt) != 0 {
            return false;
        }
        // source, indices, padding (a mask would be one more).
        let Some((m, idx)) = memref_and_indices(op, 0, 1) else {
            return false;
        };
        let ctx = mlirOperationGetContext(op);
        let loc = mlirOperationGetLocation(op);
        let mut operands = vec![m];
        operands.extend(idx);
        let elem = mlirShapedTypeGetElementType(vt);
        let load = insert_before(op, build(ctx, "memref.load", loc, &operands, &[elem], &[]));
        let splat = insert_before(op, build(ctx, "vector.broadcast", loc, &[load], &[vt], &[]));
        mlirValueReplaceAllUsesOfWith(result(op), splat);
        mlirOperationDestroy(op);
        true
    }
}

unsafe fn write(op: MlirOperation) -> bool {
    unsafe {
        let v = mlirOperationGetOperand(op, 0);
        let vt = mlirValueGetType(v);
        if !mlirTypeIsAVector(vt)
            || mlirShapedTypeGetRank(vt) != 0
            || mlirOperationGetNumResults(op) != 0
        {
            return false;
        }
        // vector, dest, indices (a mask would be one more).
        let Some((m, idx)) = memref_and_indices(op, 1, 0) else {
            return false;
        };
        let ctx = mlirOperationGetContext(op);
        let loc = mlirOperationGetLocation(op);
        let elem = mlirShapedTypeGetElementType(vt);
        let scalar = insert_before(
            op,
            build(
                ctx,
                "vector.extract",
                loc,
                &[v],
                &[elem],
                &[("static_position", attr(ctx, "array<i64>"))],
            ),
        );
        let mut operands = vec![scalar, m];
        operands.extend(idx);
        mlirBlockInsertOwnedOperationBefore(
            mlirOperationGetBlock(op),
            op,
            build(ctx, "memref.store", loc, &operands, &[], &[]),
        );
        mlirOperationDestroy(op);
        true
    }
}

//! `tensorc-prefetch-rows`: in a loop over rows that reads each row more
//! than once (the fused row chains of softmax and layernorm), a later pass
//! over the row prefetches the row `ROWS_AHEAD` rows down.
//!
//! Why: a fused row chain (`row_fuse_schedule.rs`) runs several passes
//! over one row (softmax: the max, then exp and sum, then the division);
//! only the first reads the row from memory, the others find it in L1. The
//! hardware prefetchers follow demand misses, so while the later passes
//! compute they fetch nothing, and every row's first pass waits for memory:
//! on W5 (softmax of 4096×1024) the max pass took a quarter of the time,
//! half of it on one instruction after the loads. Prefetching the next rows
//! during a later pass overlaps that wait with the exp and the division:
//! W5 went from 1.65 to 1.45 ms (one thread, hand-edited IR alternated in
//! the same minutes; two rows ahead measured 1–3 % better than one).
//!
//! Which loops: an `scf.for` (the pass) with a static step, nested directly
//! in an `scf.for` of step 1 (the row loop), whose body reads
//! `vector.transfer_read %m[%row, %j]` — a 2-D memref of static shape,
//! a 1-D vector, `%j` the pass's induction variable, `%row` defined outside
//! the pass from the row loop's induction variable — when an earlier loop in
//! the row loop's body reads the same memref (through views) too. Each
//! iteration prefetches the cache lines its read covers, `ROWS_AHEAD` rows
//! down; the row index is clamped to the last row so no address leaves the
//! buffer.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-prefetch-rows";

/// How many rows ahead the prefetches run.
pub const ROWS_AHEAD: i64 = 2;

const LINE_BYTES: i64 = 64;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Prefetch the rows ahead in later passes of multi-pass row loops",
        &[DialectHandle::arith(), DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { prefetch_rows(module) };
            true
        },
    )
}

/// Adds the prefetches to every eligible loop of `module`; returns how many
/// loops got them.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn prefetch_rows(module: MlirOperation) -> usize {
    unsafe {
        let found: Vec<(MlirOperation, MlirOperation)> = ops_named(module, "scf.for")
            .into_iter()
            .filter_map(|l| Some((l, row_read(l)?)))
            .collect();
        for &(lp, read) in &found {
            add_prefetches(lp, read);
        }
        found.len()
    }
}

/// The memref a view chain (subviews, reshapes) starts from.
unsafe fn root(mut v: MlirValue) -> MlirValue {
    unsafe {
        while mlirValueIsAOpResult(v) {
            let def = mlirOpResultGetOwner(v);
            match op_name(def).as_str() {
                "memref.subview" | "memref.expand_shape" | "memref.collapse_shape" => {
                    v = mlirOperationGetOperand(def, 0)
                }
                _ => break,
            }
        }
        v
    }
}

/// Whether `v` is `iv` or computed from it by one op.
unsafe fn from_iv(v: MlirValue, iv: MlirValue) -> bool {
    unsafe {
        if mlirValueEqual(v, iv) {
            return true;
        }
        if !mlirValueIsAOpResult(v) {
            return false;
        }
        let def = mlirOpResultGetOwner(v);
        (0..mlirOperationGetNumOperands(def))
            .any(|i| mlirValueEqual(mlirOperationGetOperand(def, i), iv))
    }
}

/// The read of a row, `%m[%row, %j]`, in pass `lp`, if `lp` is a later
/// pass of a row loop over `%m` (see the module comment).
unsafe fn row_read(lp: MlirOperation) -> Option<MlirOperation> {
    unsafe {
        constant_int(mlirOperationGetOperand(lp, 2))?;
        let rows = mlirOperationGetParentOperation(lp);
        if op_name(rows) != "scf.for" || constant_int(mlirOperationGetOperand(rows, 2)) != Some(1) {
            return None;
        }
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0));
        let j = mlirBlockGetArgument(body, 0);
        let row_iv = mlirBlockGetArgument(mlirOperationGetBlock(lp), 0);
        let mut op = mlirBlockGetFirstOperation(body);
        while !op.ptr.is_null() {
            if op_name(op) == "vector.transfer_read"
                && is_row_read(op, j, row_iv, lp)
                && read_before(lp, mlirOperationGetOperand(op, 0))
            {
                return Some(op);
            }
            op = mlirOperationGetNextInBlock(op);
        }
        None
    }
}

/// `vector.transfer_read %m[%row, %j]` of a 1-D vector from a static 2-D
/// memref, `%row` from the row loop's `row_iv` and defined outside `lp`.
unsafe fn is_row_read(
    read: MlirOperation,
    j: MlirValue,
    row_iv: MlirValue,
    lp: MlirOperation,
) -> bool {
    unsafe {
        let m = mlirOperationGetOperand(read, 0);
        let t = mlirValueGetType(m);
        let vt = mlirValueGetType(result(read));
        if !mlirTypeIsAMemRef(t)
            || !mlirShapedTypeHasStaticShape(t)
            || mlirShapedTypeGetRank(t) != 2
            || mlirShapedTypeGetRank(vt) != 1
            || mlirOperationGetNumOperands(read) != 4
        {
            return false;
        }
        let row = mlirOperationGetOperand(read, 1);
        let defined_outside =
            !mlirValueIsAOpResult(row) || !nested_in(mlirOpResultGetOwner(row), lp);
        mlirValueEqual(mlirOperationGetOperand(read, 2), j)
            && defined_outside
            && from_iv(row, row_iv)
    }
}

/// Whether `op` is nested (at any depth) in `outer`.
unsafe fn nested_in(op: MlirOperation, outer: MlirOperation) -> bool {
    unsafe {
        let mut p = mlirOperationGetParentOperation(op);
        while !p.ptr.is_null() {
            if p.ptr == outer.ptr {
                return true;
            }
            p = mlirOperationGetParentOperation(p);
        }
        false
    }
}

/// Whether a loop before `lp` in its block reads a view of `m`'s memref.
unsafe fn read_before(lp: MlirOperation, m: MlirValue) -> bool {
    unsafe {
        let m = root(m);
        let mut op = mlirBlockGetFirstOperation(mlirOperationGetBlock(lp));
        while !op.ptr.is_null() && op.ptr != lp.ptr {
            if op_name(op) == "scf.for" {
                let mut reads = false;
                walk(op, |o| {
                    if op_name(o) == "vector.transfer_read"
                        && mlirValueEqual(root(mlirOperationGetOperand(o, 0)), m)
                    {
                        reads = true;
                    }
                    MlirWalkResult_MlirWalkResultAdvance
                });
                if reads {
                    return true;
                }
            }
            op = mlirOperationGetNextInBlock(op);
        }
        false
    }
}

unsafe fn add_prefetches(lp: MlirOperation, read: MlirOperation) {
    unsafe {
        let ctx = mlirOperationGetContext(lp);
        let loc = mlirOperationGetLocation(read);
        let index = mlirIndexTypeGet(ctx);
        let m = mlirOperationGetOperand(read, 0);
        let t = mlirValueGetType(m);
        let last_row = mlirShapedTypeGetDimSize(t, 0) - 1;
        // The row ahead, clamped, computed once before the pass.
        let ahead = index_constant(lp, ROWS_AHEAD);
        let next = insert_before(
            lp,
            build(
                ctx,
                "arith.addi",
                loc,
                &[mlirOperationGetOperand(read, 1), ahead],
                &[index],
                &[],
            ),
        );
        let last = index_constant(lp, last_row);
        let row = insert_before(
            lp,
            build(ctx, "arith.minsi", loc, &[next, last], &[index], &[]),
        );
        // One prefetch per line the read covers.
        let vt = mlirValueGetType(result(read));
        let elem = mlirShapedTypeGetElementType(vt);
        let bits = if mlirTypeIsAFloat(elem) {
            mlirFloatTypeGetWidth(elem)
        } else if mlirTypeIsAInteger(elem) {
            mlirIntegerTypeGetWidth(elem)
        } else {
            64
        };
        let per_line = (LINE_BYTES * 8 / (bits.max(8) as i64)).max(1);
        let width = mlirShapedTypeGetDimSize(vt, 0);
        let j = mlirOperationGetOperand(read, 2);
        let mut offset = 0;
        while offset < width {
            let col = if offset == 0 {
                j
            } else {
                let c = index_constant(read, offset);
                insert_before(read, build(ctx, "arith.addi", loc, &[j, c], &[index], &[]))
            };
            mlirBlockInsertOwnedOperationBefore(
                mlirOperationGetBlock(read),
                read,
                read_prefetch(ctx, loc, &[m, row, col]),
            );
            offset += per_line;
        }
    }
}

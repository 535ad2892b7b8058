//! `tensorc-fold-partials`: the levels of a reduction's combining tree stay
//! in registers instead of going through a small buffer.
//!
//! Why: the reduction schedule (`reduction_schedule.rs`) combines a row's
//! 64 partial results as a tree, each level a `linalg` op of its own: after
//! bufferization a level writes its vector (64, 16, 8, … lanes) into a tiny
//! buffer and the next level reads it back in slices in a loop. LLVM turned
//! those round trips into lane-by-lane extracts and inserts (`vpextrq`,
//! `vinsertps`, `vmovd` chains): in W5 (softmax) about a tenth of the
//! samples sat on them. Reading the slices straight out of the written
//! vector (`vector.extract_strided_slice`), combined in the loop's order,
//! gives the same values with no memory in between: W5 1.30 → 1.27 ms
//! (one thread, the same minutes).
//!
//! Which loops: a `vector.transfer_write %v, %buf[i…]` of a 1-D vector of
//! `W` lanes, followed directly by an `scf.for` from 0 to `W` (static, step
//! `w` dividing `W`) with one iter_arg whose body is only
//! `vector.transfer_read %buf[i…, k]` of `w` lanes (same buffer and leading
//! indices, the loop's index last, in bounds), one `arith` op of the read
//! and the iter_arg, and the yield of that op. The loop is replaced by the
//! same ops on slices of `%v`, in the same order; the write stays (other
//! code may read the buffer).

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-fold-partials";

/// Loops with more steps are left alone (they are not tree levels).
const MAX_STEPS: i64 = 16;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Combine a written vector's slices in registers instead of reading them back",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { fold_partials(module) };
            true
        },
    )
}

/// Rewrites every eligible loop of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn fold_partials(module: MlirOperation) -> usize {
    unsafe {
        let found: Vec<Level> = ops_named(module, "scf.for")
            .into_iter()
            .filter_map(|l| level(l))
            .collect();
        for l in &found {
            rewrite(l);
        }
        found.len()
    }
}

/// A tree level: the loop, the combining op and whether the read is its
/// first operand. The written vector is looked up again when rewriting: it
/// may be the result of the level before, replaced by then.
struct Level {
    lp: MlirOperation,
    combine: MlirOperation,
    read_first: bool,
    width: i64,
    step: i64,
}

unsafe fn level(lp: MlirOperation) -> Option<Level> {
    unsafe {
        if mlirOperationGetNumOperands(lp) != 4 || mlirOperationGetNumResults(lp) != 1 {
            return None;
        }
        let (lb, ub, step) = constant_bounds(lp)?;
        if lb != 0 || step <= 0 || ub % step != 0 || ub / step > MAX_STEPS {
            return None;
        }
        // The write right before the loop.
        let write = previous(lp);
        if write.ptr.is_null() || op_name(write) != "vector.transfer_write" {
            return None;
        }
        let written = mlirOperationGetOperand(write, 0);
        let wt = mlirValueGetType(written);
        if mlirShapedTypeGetRank(wt) != 1 || mlirShapedTypeGetDimSize(wt, 0) != ub {
            return None;
        }
        let buf = mlirOperationGetOperand(write, 1);
        let rank = mlirShapedTypeGetRank(mlirValueGetType(buf)) as isize;
        if mlirOperationGetNumOperands(write) != 2 + rank || !in_bounds(write) {
            return None;
        }
        // The body: read, combine, yield.
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0));
        let (k, acc) = (mlirBlockGetArgument(body, 0), mlirBlockGetArgument(body, 1));
        let read = mlirBlockGetFirstOperation(body);
        if read.ptr.is_null() || op_name(read) != "vector.transfer_read" {
            return None;
        }
        let combine = mlirOperationGetNextInBlock(read);
        if combine.ptr.is_null() {
            return None;
        }
        let yield_op = mlirOperationGetNextInBlock(combine);
        if yield_op.ptr.is_null()
            || op_name(yield_op) != "scf.yield"
            || !mlirOperationGetNextInBlock(yield_op).ptr.is_null()
            || !op_name(combine).starts_with("arith.")
            || mlirOperationGetNumOperands(combine) != 2
            || mlirOperationGetNumResults(combine) != 1
            || mlirOperationGetNumRegions(combine) != 0
            || !mlirValueEqual(mlirOperationGetOperand(yield_op, 0), result(combine))
        {
            return None;
        }
        let (a, b) = (
            mlirOperationGetOperand(combine, 0),
            mlirOperationGetOperand(combine, 1),
        );
        let read_first = mlirValueEqual(a, result(read)) && mlirValueEqual(b, acc);
        if !read_first && !(mlirValueEqual(b, result(read)) && mlirValueEqual(a, acc)) {
            return None;
        }
        // read %buf[same leading indices, k] of `step` lanes.
        let rt = mlirValueGetType(result(read));
        if mlirOperationGetNumOperands(read) != 2 + rank
            || !mlirValueEqual(mlirOperationGetOperand(read, 0), buf)
            || mlirShapedTypeGetRank(rt) != 1
            || mlirShapedTypeGetDimSize(rt, 0) != step
            || !in_bounds(read)
            || !mlirValueEqual(mlirOperationGetOperand(read, rank), k)
            || constant_int(mlirOperationGetOperand(write, 1 + rank)) != Some(0)
            || (0..rank - 1).any(|d| {
                !mlirValueEqual(
                    mlirOperationGetOperand(read, 1 + d),
                    mlirOperationGetOperand(write, 2 + d),
                )
            })
        {
            return None;
        }
        Some(Level {
            lp,
            combine,
            read_first,
            width: ub,
            step,
        })
    }
}

/// The op before `op` in its block (null for the first).
unsafe fn previous(op: MlirOperation) -> MlirOperation {
    unsafe {
        let mut prev = MlirOperation {
            ptr: std::ptr::null_mut(),
        };
        let mut o = mlirBlockGetFirstOperation(mlirOperationGetBlock(op));
        while !o.ptr.is_null() && o.ptr != op.ptr {
            prev = o;
            o = mlirOperationGetNextInBlock(o);
        }
        prev
    }
}

/// A 1-D transfer with its one dimension in bounds and the default map.
unsafe fn in_bounds(op: MlirOperation) -> bool {
    unsafe {
        let b = mlirOperationGetAttributeByName(op, string_ref("in_bounds"));
        let map = mlirOperationGetAttributeByName(op, string_ref("permutation_map"));
        let mem = if op_name(op) == "vector.transfer_read" {
            0
        } else {
            1
        };
        let rank =
            mlirShapedTypeGetRank(mlirValueGetType(mlirOperationGetOperand(op, mem))) as usize;
        !b.ptr.is_null()
            && print_attr(b) == "[true]"
            && (map.ptr.is_null() || is_minor_identity(map, rank, 1))
    }
}

unsafe fn rewrite(l: &Level) {
    unsafe {
        let ctx = mlirOperationGetContext(l.lp);
        let loc = mlirOperationGetLocation(l.lp);
        let slice_type = mlirValueGetType(mlirOperationGetResult(l.lp, 0));
        let written = mlirOperationGetOperand(previous(l.lp), 0);
        let mut acc = mlirOperationGetOperand(l.lp, 3);
        let mut k = 0;
        while k < l.width {
            let slice = build(
                ctx,
                "vector.extract_strided_slice",
                loc,
                &[written],
                &[slice_type],
                &[
                    ("offsets", attr(ctx, &format!("[{k} : i64]"))),
                    ("sizes", attr(ctx, &format!("[{} : i64]", l.step))),
                    ("strides", attr(ctx, "[1 : i64]")),
                ],
            );
            let slice = insert_before(l.lp, slice);
            let operands = if l.read_first {
                [slice, acc]
            } else {
                [acc, slice]
            };
            // The combining op keeps its attributes (fastmath flags).
            let combined = mlirOperationClone(l.combine);
            mlirOperationSetOperand(combined, 0, operands[0]);
            mlirOperationSetOperand(combined, 1, operands[1]);
            acc = insert_before(l.lp, combined);
            k += l.step;
        }
        mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(l.lp, 0), acc);
        mlirOperationDestroy(l.lp);
    }
}

//! `tensorc-merge-chunks`: the two parallel loops the parallel step makes of
//! one op become one loop, so both run in one fork-join and a part of a
//! single chunk no longer runs on one thread while the others wait.
//!
//! Why: the parallel step (`parallel_schedule.rs`) keeps every chunk static
//! by cutting an op's loop into two parts tiled with two adjacent sizes
//! (MLIR's `multitile_sizes`: 1023 rows in chunks of about 32 are one chunk
//! of 31 rows and 31 of 32). Each part became its own `scf.forall`, and a
//! part of one chunk was no loop at all: the canonicalizer inlines a
//! one-trip `scf.forall`, so 1023×1025·1025×1027 computed its first 31 rows
//! on the calling thread before the 31 parallel chunks started (3 % of the
//! product on one thread; 0.94× NumPy on two threads).
//!
//! So the parallel step gives the first part's loop the `mapping`
//! `FIRST_PART` and the second's `SECOND_PART` (a mapping also keeps the
//! canonicalizer from inlining a one-trip `scf.forall`), and this pass,
//! on buffers just before `scf-forall-to-parallel`, turns each first-part
//! loop of `a` chunks directly followed by a second-part loop of `b` chunks
//! into one loop of `a + b` chunks whose body is
//! `scf.if %i < a { first part at %i } else { second part at %i - a }`.
//! Both loops must be one-dimensional, from 0 in steps of 1, with static
//! bounds and no operands or results (on buffers: no shared outputs).
//! Merging is sound because the two parts come from one op cut along a
//! loop the marking pass proved parallel: they write disjoint slices of
//! the result and read nothing the other writes; only loops the parallel
//! step made carry the mappings, and only views and constants may sit
//! between the two loops (they move before the first; any other op in
//! between, such as a copy, leaves the loops apart).
//! Every loop keeps its body's order of work, so results are bit-identical.
//! Then every mapping the step set is removed (the canonicalizer that
//! follows inlines the one-trip loops left).

use crate::external_pass::{PassId, module_pass};
use crate::parallel_schedule::{FIRST_PART, SECOND_PART};
use crate::raw::*;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::MERGE_CHUNKS;

/// Ops without effects that may sit between the two loops (they are moved
/// before the first).
const PURE: [&str; 8] = [
    "memref.subview",
    "memref.cast",
    "memref.reinterpret_cast",
    "memref.expand_shape",
    "memref.collapse_shape",
    "arith.constant",
    "affine.apply",
    "ub.poison",
];

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Merge the two parallel loops of an op's two chunk sizes into one",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { merge_all(module) };
            true
        },
    )
}

/// Which part of a split op the `scf.forall` `op` runs, by its mapping.
unsafe fn part(op: MlirOperation) -> Option<&'static str> {
    unsafe {
        let a = mlirOperationGetAttributeByName(op, string_ref("mapping"));
        if a.ptr.is_null() {
            return None;
        }
        let text = print_attr(a);
        [FIRST_PART, SECOND_PART]
            .into_iter()
            .find(|p| text == format!("[{p}]"))
    }
}

/// The trip count of a one-dimensional `scf.forall` from 0 in steps of 1
/// with no operands or results.
unsafe fn plain_trips(op: MlirOperation) -> Option<i64> {
    unsafe {
        if mlirOperationGetNumOperands(op) != 0 || mlirOperationGetNumResults(op) != 0 {
            return None;
        }
        match loop_bounds(op)? {
            (0, n, 1) if n > 0 => Some(n),
            _ => None,
        }
    }
}

unsafe fn merge_all(module: MlirOperation) {
    unsafe {
        let loops = ops_named(module, "scf.forall");
        for &first in &loops {
            if part(first) != Some(FIRST_PART) {
                continue;
            }
            // Views and constants between the loops (bufferization puts the
            // second part's view of the result there) go before the first.
            let mut between = Vec::new();
            let mut second = mlirOperationGetNextInBlock(first);
            while !second.ptr.is_null() && PURE.contains(&op_name(second).as_str()) {
                between.push(second);
                second = mlirOperationGetNextInBlock(second);
            }
            if second.ptr.is_null()
                || op_name(second) != "scf.forall"
                || part(second) != Some(SECOND_PART)
            {
                continue;
            }
            if let (Some(a), Some(b)) = (plain_trips(first), plain_trips(second)) {
                for op in between {
                    mlirOperationMoveBefore(op, first);
                }
                merge(first, a, second, b);
            }
        }
        // The merged `first` loops are gone: walk again.
        for op in ops_named(module, "scf.forall") {
            if part(op).is_some() {
                mlirOperationRemoveAttributeByName(op, string_ref("mapping"));
            }
        }
    }
}

/// The ops of a loop body but its terminator.
unsafe fn work(block: MlirBlock) -> Vec<MlirOperation> {
    unsafe {
        let mut ops = block_ops(block);
        ops.pop();
        ops
    }
}

/// Moves `ops` to the end of `to`, in order.
unsafe fn move_to(ops: &[MlirOperation], to: MlirBlock) {
    unsafe {
        for &op in ops {
            mlirOperationRemoveFromParent(op);
            mlirBlockAppendOwnedOperation(to, op);
        }
    }
}

/// Makes `second` (`b` trips) run `first`'s `a` trips before its own and
/// erases `first`.
unsafe fn merge(first: MlirOperation, a: i64, second: MlirOperation, b: i64) {
    unsafe {
        let ctx = mlirOperationGetContext(second);
        let loc = mlirOperationGetLocation(second);
        let body_b = body(second);
        let i = iv(second);
        let terminator = mlirBlockGetTerminator(body_b);
        let own = work(body_b);
        let count = index_constant(terminator, a);
        let ult = attr(ctx, "6 : i64");
        let lt = build(ctx, "arith.cmpi", loc, &[i, count], &[mlirIntegerTypeGet(ctx, 1)], &[("predicate", ult)]);
        let choice = build_if(second, insert_before(terminator, lt), &[]);
        // The second part's ops, at %i - a.
        let otherwise = branch(choice, 1);
        let shifted = build(ctx, "arith.subi", loc, &[i, count], &[mlirIndexTypeGet(ctx)], &[]);
        mlirBlockAppendOwnedOperation(otherwise, shifted);
        move_to(&own, otherwise);
        append_yield(second, otherwise, &[]);
        mlirValueReplaceAllUsesExcept(i, result(shifted), 2, [shifted, lt].as_mut_ptr());
        // The first part's ops, at %i itself.
        move_to(&work(body(first)), branch(choice, 0));
        append_yield(second, branch(choice, 0), &[]);
        mlirValueReplaceAllUsesOfWith(iv(first), i);
        mlirBlockInsertOwnedOperationBefore(body_b, terminator, choice);
        let bound = attr(ctx, &format!("array<i64: {}>", a + b));
        mlirOperationSetAttributeByName(second, string_ref("staticUpperBound"), bound);
        mlirOperationDestroy(first);
    }
}

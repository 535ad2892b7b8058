//! `tensorc-running-max`: a loop's running maximum (or minimum) compares
//! and selects without NaN checks in its chain, and tracks NaN in a mask
//! beside it, applied once after the loop.
//!
//! Why: `arith.maximumf` propagates NaN, and `arith-expand` writes it as
//! `select(uno(x), x, select(ugt(acc, x), acc, x))`, which x86 code
//! generation makes a compare into a mask, a compare for NaN, a mask `or`
//! and a masked move — all four on the accumulator's chain. W5's softmax
//! keeps four such chains over a row of 1024 (64 lanes), and its maximum
//! pass was 18 % of the samples, latency-bound. A loop-carried maximum
//! written `select(ogt(acc, x), acc, x)` is one `vmaxps` (the instruction's
//! own semantics: the second operand when they are unordered), and NaN is
//! remembered by `nan | uno(x, x)`, a chain of one mask `or`.
//!
//! The result is the same: in a lane where no NaN was seen, the compare
//! selects as `ugt` did (`ogt` and `ugt` differ only on NaN, and both keep
//! `x` when the two are equal, zeros included); in a lane where one was
//! (an input, or the initial value), the mask selects NaN after the loop.
//!
//! Which loops: an `scf.for` iter_arg whose only use is an `arith.maximumf`
//! or `arith.minimumf` directly in the body, with the other operand and
//! the result used only by the `scf.yield` at the iter_arg's position.
//! Each such chain gets one more iter_arg, its NaN mask (initially
//! `uno(init, init)`); after the loop, its result is `select(mask, NaN,
//! acc)`. It runs before `arith-expand`.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::RUNNING_MAX;

static PASS_ID: PassId = PassId::new();

/// `arith::CmpFPredicate`: ordered greater than, ordered less than, unordered.
const OGT: i64 = 2;
const OLT: i64 = 4;
const UNO: i64 = 14;

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Running maxima and minima of loops as compare-selects with a NaN mask beside them",
        &[DialectHandle::arith(), DialectHandle::scf()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { running_max(module) };
            true
        },
    )
}

/// One running maximum or minimum: the iter_arg's position, the op, the
/// value it combines with the accumulator and the compare predicate.
struct Chain {
    at: usize,
    op: MlirOperation,
    x: MlirValue,
    predicate: i64,
}

/// Rewrites every running maximum and minimum of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn running_max(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for lp in ops_named(module, "scf.for") {
            let chains = chains(lp);
            if !chains.is_empty() {
                count += chains.len();
                rewrite(lp, &chains);
            }
        }
        count
    }
}

unsafe fn chains(lp: MlirOperation) -> Vec<Chain> {
    unsafe {
        let block = body(lp);
        let yield_op = mlirBlockGetTerminator(block);
        let iter_args = mlirOperationGetNumResults(lp) as usize;
        let mut found = Vec::new();
        for at in 0..iter_args {
            let acc = mlirBlockGetArgument(block, at as isize + 1);
            let Some((op, pos)) = sole_use(acc) else { continue };
            let predicate = match op_name(op).as_str() {
                "arith.maximumf" => OGT,
                "arith.minimumf" => OLT,
                _ => continue,
            };
            let x = mlirOperationGetOperand(op, 1 - pos);
            let yielded = sole_use(result(op));
            let ok = mlirOperationGetBlock(op).ptr == block.ptr
                && !mlirValueEqual(x, acc)
                && yielded.is_some_and(|(u, i)| u.ptr == yield_op.ptr && i == at as isize);
            if ok {
                found.push(Chain { at, op, x, predicate });
            }
        }
        found
    }
}

unsafe fn rewrite(lp: MlirOperation, chains: &[Chain]) {
    unsafe {
        let ctx = mlirOperationGetContext(lp);
        let loc = mlirOperationGetLocation(lp);
        let block = body(lp);
        let select = |at: MlirOperation, c: MlirValue, a: MlirValue, b: MlirValue| {
            insert_before(at, build(ctx, "arith.select", loc, &[c, a, b], &[mlirValueGetType(a)], &[]))
        };
        // Initial masks: a NaN initial value counts as one seen.
        let inits: Vec<MlirValue> = chains
            .iter()
            .map(|c| {
                let init = mlirOperationGetOperand(lp, 3 + c.at as isize);
                cmpf(lp, UNO, init, init)
            })
            .collect();
        let old_results = mlirOperationGetNumResults(lp);
        let new_loop = append_iter_args(lp, &inits, |masks, _| {
            chains
                .iter()
                .zip(masks)
                .map(|(c, &mask)| {
                    let acc = mlirBlockGetArgument(block, c.at as isize + 1);
                    let keep = cmpf(c.op, c.predicate, acc, c.x);
                    let chosen = select(c.op, keep, acc, c.x);
                    mlirValueReplaceAllUsesOfWith(result(c.op), chosen);
                    let nan = cmpf(c.op, UNO, c.x, c.x);
                    let seen = insert_before(
                        c.op,
                        build(ctx, "arith.ori", loc, &[mask, nan], &[mlirValueGetType(mask)], &[]),
                    );
                    mlirOperationDestroy(c.op);
                    seen
                })
                .collect()
        });
        // After the loop: NaN where the mask says one was seen.
        let after = mlirOperationGetNextInBlock(new_loop);
        for (k, c) in chains.iter().enumerate() {
            let acc = mlirOperationGetResult(new_loop, c.at as isize);
            let mask = mlirOperationGetResult(new_loop, old_results + k as isize);
            let users = uses(acc);
            let nan = float_constant(after, mlirValueGetType(acc), f64::NAN);
            let fixed = select(after, mask, nan, acc);
            for (user, at) in users {
                mlirOperationSetOperand(user, at, fixed);
            }
        }
    }
}

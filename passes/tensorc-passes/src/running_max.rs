//! `tensorc-running-max`: a loop's running maximum (or minimum) compares
//! and selects without NaN checks in its chain, and tracks NaN beside it,
//! applied once after the loop.
//!
//! Why: `arith.maximumf` propagates NaN, and `arith-expand` writes it as
//! `select(uno(x), x, select(ugt(acc, x), acc, x))`, which x86 code
//! generation makes a compare into a mask, a compare for NaN, a mask `or`
//! and a masked move — all four on the accumulator's chain. W5's softmax
//! keeps four such chains over a row of 1024 (64 lanes), and its maximum
//! pass was 18 % of the samples, latency-bound. A loop-carried maximum
//! written `select(ogt(acc, x), acc, x)` is one `vmaxps` (the instruction's
//! own semantics: the second operand when they are unordered).
//!
//! How NaN is remembered: for f32, the greatest magnitude bits seen,
//! `maxui(seen, bits(x) & 0x7fffffff)` (NaN's are the ones above
//! infinity's, `0x7f800000`): an `and` and a `vpmaxud`, vector ops only.
//! The first form, a mask `nan | uno(x, x)`, needed mask-register moves to
//! pack 64 lanes' flags (`kunpck`), and a full `reduce_max` streamed more
//! slowly than `sum`: 4096² f32, one thread, a C copy of each form
//! alternated in one process, 1.30–1.40 ms with magnitude bits, 1.55–1.65
//! with the mask (`sum` 1.05–1.1). f64 keeps the mask: AVX2 has no 64-bit
//! unsigned maximum.
//!
//! The result is the same: in a lane where no NaN was seen, the compare
//! selects as `ugt` did (`ogt` and `ugt` differ only on NaN, and both keep
//! `x` when the two are equal, zeros included); in a lane where one was
//! (an input, or the initial value), the tracker selects NaN after the
//! loop.
//!
//! Which loops: an `scf.for` iter_arg whose only use is an `arith.maximumf`
//! or `arith.minimumf` directly in the body, with the other operand and
//! the result used only by the `scf.yield` at the iter_arg's position.
//! Each such chain gets one more iter_arg, its NaN tracker (from the
//! initial value); after the loop, its result is `select(NaN seen, NaN,
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

/// `arith::CmpIPredicate`: unsigned greater than.
const CMPI_UGT: i64 = 8;

/// The bits of f32 infinity: magnitudes above them are NaN.
const F32_INFINITY_BITS: i64 = 0x7f80_0000;

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
        // Initial trackers: a NaN initial value counts as one seen.
        let inits: Vec<MlirValue> = chains
            .iter()
            .map(|c| {
                let init = mlirOperationGetOperand(lp, 3 + c.at as isize);
                match magnitude_type(init) {
                    Some(t) => magnitude(lp, init, t),
                    None => cmpf(lp, UNO, init, init),
                }
            })
            .collect();
        let old_results = mlirOperationGetNumResults(lp);
        let new_loop = append_iter_args(lp, &inits, |trackers, _| {
            chains
                .iter()
                .zip(trackers)
                .map(|(c, &tracker)| {
                    let acc = mlirBlockGetArgument(block, c.at as isize + 1);
                    let keep = cmpf(c.op, c.predicate, acc, c.x);
                    let chosen = select(c.op, keep, acc, c.x);
                    mlirValueReplaceAllUsesOfWith(result(c.op), chosen);
                    let t = mlirValueGetType(tracker);
                    let seen = match magnitude_type(c.x) {
                        Some(bits) => {
                            let m = magnitude(c.op, c.x, bits);
                            insert_before(c.op, build(ctx, "arith.maxui", loc, &[tracker, m], &[t], &[]))
                        }
                        None => {
                            let nan = cmpf(c.op, UNO, c.x, c.x);
                            insert_before(c.op, build(ctx, "arith.ori", loc, &[tracker, nan], &[t], &[]))
                        }
                    };
                    mlirOperationDestroy(c.op);
                    seen
                })
                .collect()
        });
        // After the loop: NaN where the tracker says one was seen.
        let after = mlirOperationGetNextInBlock(new_loop);
        for (k, c) in chains.iter().enumerate() {
            let acc = mlirOperationGetResult(new_loop, c.at as isize);
            let tracker = mlirOperationGetResult(new_loop, old_results + k as isize);
            let users = uses(acc);
            let seen = if magnitude_type(acc).is_some() {
                let t = mlirValueGetType(tracker);
                let inf = int_constant(after, t, F32_INFINITY_BITS);
                let flags = shaped_like(t, mlirIntegerTypeGet(ctx, 1));
                let ugt = attr(ctx, &format!("{CMPI_UGT} : i64"));
                insert_before(after, build(ctx, "arith.cmpi", loc, &[tracker, inf], &[flags], &[("predicate", ugt)]))
            } else {
                tracker
            };
            let nan = float_constant(after, mlirValueGetType(acc), f64::NAN);
            let fixed = select(after, seen, nan, acc);
            for (user, at) in users {
                mlirOperationSetOperand(user, at, fixed);
            }
        }
    }
}

/// The i32 type (or vector of i32) of an f32 chain's tracker: the
/// greatest magnitude bits `bits(x) & 0x7fffffff` seen, above infinity's
/// bits exactly when a NaN was. `None` for f64, which keeps a mask.
unsafe fn magnitude_type(v: MlirValue) -> Option<MlirType> {
    unsafe {
        let t = mlirValueGetType(v);
        let e = if mlirTypeIsAVector(t) { mlirShapedTypeGetElementType(t) } else { t };
        mlirTypeIsAF32(e).then(|| shaped_like(t, mlirIntegerTypeGet(mlirTypeGetContext(t), 32)))
    }
}

/// `bits(x) & 0x7fffffff` as `t`, inserted before `at`.
unsafe fn magnitude(at: MlirOperation, x: MlirValue, t: MlirType) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let loc = mlirOperationGetLocation(at);
        let bits = insert_before(at, build(ctx, "arith.bitcast", loc, &[x], &[t], &[]));
        let mask = int_constant(at, t, i64::from(i32::MAX));
        insert_before(at, build(ctx, "arith.andi", loc, &[bits, mask], &[t], &[]))
    }
}

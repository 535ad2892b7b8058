//! `tensorc-nd-int-math`: integer math ops on vectors of two or more
//! dimensions that `convert-math-to-llvm` does not lower, rewritten into
//! ops that lower: `math.absi` becomes `arith.maxsi(x, 0 - x)`, and
//! `math.ctlz`/`math.cttz` run on the vector flattened to one dimension
//! (`vector.shape_cast` there and back).
//!
//! Why: `convert-math-to-llvm` lowers these ops for scalars and 1-D
//! vectors only (to `llvm.intr.abs`, `llvm.intr.ctlz`, `llvm.intr.cttz`);
//! the vectorizer makes n-D ones for small multi-dimensional tiles, and
//! they stayed illegal, so the CPU pipeline failed (`abs` of an
//! `s8[2][1][1]` feeding a product reduction, generated seed 9235;
//! `count_leading_zeros` of a `u32[1][3][1]` reduced by `all`, seed
//! 64185). `max(x, 0 - x)` is the same function including the minimum
//! integer, which both keep (`0 - MIN` wraps to `MIN`); the counts are
//! per lane, so the flattened vector gives the same lanes, and the shape
//! casts lower to shuffles.
//!
//! It runs after `convert-vector-to-scf`, before the math lowerings.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-nd-int-math";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Rewrite math.absi/ctlz/cttz on n-D vectors into ops that lower",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe {
                expand_absi(module);
                flatten_counts(module);
            }
            true
        },
    )
}

/// Expands every `math.absi` of an n-D vector (n ≥ 2) in `module`; returns
/// how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn expand_absi(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for op in ops_named(module, "math.absi") {
            let x = mlirOperationGetOperand(op, 0);
            let t = mlirValueGetType(x);
            if !mlirTypeIsAVector(t) || mlirShapedTypeGetRank(t) < 2 {
                continue;
            }
            let ctx = mlirOperationGetContext(op);
            let loc = mlirOperationGetLocation(op);
            let zero = attr(ctx, &format!("dense<0> : {}", print_type(t)));
            let zero = insert_before(
                op,
                build(ctx, "arith.constant", loc, &[], &[t], &[("value", zero)]),
            );
            let negated = insert_before(op, build(ctx, "arith.subi", loc, &[zero, x], &[t], &[]));
            let abs = insert_before(op, build(ctx, "arith.maxsi", loc, &[x, negated], &[t], &[]));
            mlirValueReplaceAllUsesOfWith(result(op), abs);
            mlirOperationDestroy(op);
            count += 1;
        }
        count
    }
}

/// Runs every `math.ctlz` and `math.cttz` of an n-D vector (n ≥ 2) in
/// `module` on its flattened 1-D form; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn flatten_counts(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for name in ["math.ctlz", "math.cttz"] {
            for op in ops_named(module, name) {
                let x = mlirOperationGetOperand(op, 0);
                let t = mlirValueGetType(x);
                if !mlirTypeIsAVector(t) || mlirShapedTypeGetRank(t) < 2 {
                    continue;
                }
                let lanes: i64 = shape(t).iter().product();
                let ctx = mlirOperationGetContext(op);
                let loc = mlirOperationGetLocation(op);
                let element = print_type(mlirShapedTypeGetElementType(t));
                let Some(flat) = parse_type(ctx, &format!("vector<{lanes}x{element}>")) else {
                    continue;
                };
                let cast = |v, to| insert_before(op, build(ctx, "vector.shape_cast", loc, &[v], &[to], &[]));
                let flat_x = cast(x, flat);
                let counted = insert_before(op, build(ctx, name, loc, &[flat_x], &[flat], &[]));
                let back = cast(counted, t);
                mlirValueReplaceAllUsesOfWith(result(op), back);
                mlirOperationDestroy(op);
                count += 1;
            }
        }
        count
    }
}

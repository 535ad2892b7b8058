//! `tensorc-expand-absi`: `math.absi` on vectors of two or more dimensions
//! becomes `arith.maxsi(x, 0 - x)`.
//!
//! Why: `convert-math-to-llvm` lowers `math.absi` of scalars and 1-D
//! vectors (to `llvm.intr.abs`) but not of n-D vectors, which the
//! vectorizer makes for small multi-dimensional tiles; the op stayed
//! illegal and the CPU pipeline failed (`abs` of an `s8[2][1][1]` feeding a
//! product reduction, generated seed 9235). `max(x, 0 - x)` is the same
//! function including the minimum integer, which both keep (`0 - MIN`
//! wraps to `MIN`), and arith ops of any vector shape lower.
//!
//! It runs after `convert-vector-to-scf`, before the math lowerings.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-expand-absi";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Expand math.absi on n-D vectors into arith ops",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { expand_absi(module) };
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

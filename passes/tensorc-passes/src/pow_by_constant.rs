//! `tensorc-pow-by-constant`: `math.powf` by a constant exponent of 2, 1,
//! 0, −1 or ½ becomes the arithmetic it equals.
//!
//! Why: `pow x, 2.0` is how programs square (variances, norms), and
//! `math.powf` is the general function: on the CPU a vector expansion in
//! f64 (`vector_trig.rs`, 4M f32 on one thread: 7.5 ms), where `x · x` is
//! a multiply (memory-bound: about 1 ms). NumPy takes the same shortcuts
//! for these exponents.
//!
//! Each rewrite is the same function as C's `pow` (and the interpreter's),
//! bit for bit, on every input: `x²` and `1/x` are single correctly rounded
//! operations, as `pow` is for them; `pow(x, 1) = x` and `pow(x, 0) = 1`
//! hold for NaN too. `pow(x, ½)` is `√x` except that `pow(−0, ½) = +0` and
//! `pow(−∞, ½) = +∞`, where `√` gives −0 and NaN: it becomes `√x + 0`
//! (which only turns −0 into +0) with −∞ selected to +∞.
//!
//! Which ops: `math.powf` (scalars, vectors or tensors of any float type)
//! whose exponent is an `arith.constant`, a float or a splat. It runs in the
//! `opt` stage after element-wise fusion and the `canonicalize` after it
//! (fusion makes the frontend's 0-d exponent tensor a scalar constant used
//! in the element-wise op's body).

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-pow-by-constant";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Rewrite powf by a constant 2, 1, 0, -1 or 0.5 as arithmetic",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { rewrite_pows(module) };
            true
        },
    )
}

/// Rewrites every `math.powf` by a constant 2, 1, 0, −1 or ½ in `module`;
/// returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn rewrite_pows(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for op in ops_named(module, "math.powf") {
            let Some(y) = constant_float(mlirOperationGetOperand(op, 1)) else {
                continue;
            };
            if rewrite(op, y) {
                count += 1;
            }
        }
        count
    }
}

/// The value of `v` when it is an `arith.constant` float or float splat.
unsafe fn constant_float(v: MlirValue) -> Option<f64> {
    unsafe {
        let a = constant_scalar(v)?;
        mlirAttributeIsAFloat(a).then(|| mlirFloatAttrGetValueDouble(a))
    }
}

/// Replaces `op` (`pow(x, y)`) by its equal for `y`; false for other `y`.
unsafe fn rewrite(op: MlirOperation, y: f64) -> bool {
    unsafe {
        let x = mlirOperationGetOperand(op, 0);
        let t = mlirValueGetType(result(op));
        let ctx = mlirOperationGetContext(op);
        let loc = mlirOperationGetLocation(op);
        let arith = |name: &str, operands: &[MlirValue], ty: MlirType| {
            insert_before(op, build(ctx, name, loc, operands, &[ty], &[]))
        };
        let value = if y == 2.0 {
            arith("arith.mulf", &[x, x], t)
        } else if y == 1.0 {
            x
        } else if y == 0.0 {
            float_constant(op, t, 1.0)
        } else if y == -1.0 {
            let one = float_constant(op, t, 1.0);
            arith("arith.divf", &[one, x], t)
        } else if y == 0.5 {
            let root = arith("math.sqrt", &[x], t);
            let zero = float_constant(op, t, 0.0);
            let positive_zero = arith("arith.addf", &[root, zero], t);
            let minus_inf = float_constant(op, t, f64::NEG_INFINITY);
            let inf = float_constant(op, t, f64::INFINITY);
            // `oeq` = 1 in arith's predicate numbering.
            let is_minus_inf = cmpf(op, 1, x, minus_inf);
            arith("arith.select", &[is_minus_inf, inf, positive_zero], t)
        } else {
            return false;
        };
        mlirValueReplaceAllUsesOfWith(result(op), value);
        mlirOperationDestroy(op);
        true
    }
}

//! `tensorc-vulkan-narrow-compares`: a signed integer comparison of a
//! sign-extended value with a constant (or with another value extended from
//! the same type) compares the narrow values instead.
//!
//! Why: lavapipe (Mesa's NIR, on the Zen 5 of session 29) got `slt`, `sle`,
//! `sgt` and `sge` of an `i32` sign-extended to `i64` against a constant
//! wrong — it compared as if the value had been zero-extended: `−3 < 5` was
//! false, `−3 > 0` true. With a run-time `i64` on the other side the
//! comparison was right. `remainder` of an s32 by a u64 (both made s64)
//! tests the dividend's sign that way and gave 4 for −3 rem 9 (generated
//! seed 32475). The rewrite is exact: for a `b`-bit `a` and a constant `c`
//! that fits in `b` bits, `sext(a) ⋄ c` and `a ⋄ c` agree for every
//! signed predicate `⋄`, and `sext(a) ⋄ sext(b)` is `a ⋄ b`.
//!
//! Which ops: `arith.cmpi` with a signed predicate (scalars or vectors)
//! whose operands are `arith.extsi` of one type and either an
//! `arith.constant` (a scalar or a splat) that fits that type or another
//! `arith.extsi` from it. It runs in the SPIR-V pipeline next to
//! `tensorc-vulkan-zero-divisor`, before the SPIR-V conversion.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-vulkan-narrow-compares";

static PASS_ID: PassId = PassId::new();

/// `arith::CmpIPredicate`'s signed orderings: slt, sle, sgt, sge.
const SIGNED: [i64; 4] = [2, 3, 4, 5];

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Compare sign-extended integers in their own width",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { narrow_compares(module) };
            true
        },
    )
}

/// Rewrites every matching comparison in `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn narrow_compares(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for cmp in ops_named(module, "arith.cmpi") {
            let p = mlirOperationGetAttributeByName(cmp, string_ref("predicate"));
            if p.ptr.is_null() || !SIGNED.contains(&mlirIntegerAttrGetValueInt(p)) {
                continue;
            }
            let (a, b) = (mlirOperationGetOperand(cmp, 0), mlirOperationGetOperand(cmp, 1));
            let narrow = match (extended(a), extended(b)) {
                (Some(x), Some(y)) if type_eq(x, y) => Some((x, y)),
                (Some(x), None) => narrow_constant(cmp, b, mlirValueGetType(x)).map(|c| (x, c)),
                (None, Some(y)) => narrow_constant(cmp, a, mlirValueGetType(y)).map(|c| (c, y)),
                _ => None,
            };
            if let Some((x, y)) = narrow {
                mlirOperationSetOperand(cmp, 0, x);
                mlirOperationSetOperand(cmp, 1, y);
                count += 1;
            }
        }
        count
    }
}

/// The operand of `v`'s `arith.extsi`, when `v` is one's result.
unsafe fn extended(v: MlirValue) -> Option<MlirValue> {
    unsafe { defined_by(v, "arith.extsi").map(|e| mlirOperationGetOperand(e, 0)) }
}

unsafe fn type_eq(x: MlirValue, y: MlirValue) -> bool {
    unsafe { mlirTypeEqual(mlirValueGetType(x), mlirValueGetType(y)) }
}

/// The constant `v` (a scalar or a splat `arith.constant`) as a constant of
/// the narrow type `t` inserted before `at`, when its value fits in `t`.
unsafe fn narrow_constant(at: MlirOperation, v: MlirValue, t: MlirType) -> Option<MlirValue> {
    unsafe {
        let a = constant_scalar(v)?;
        if !mlirAttributeIsAInteger(a) {
            return None;
        }
        let c = mlirIntegerAttrGetValueInt(a);
        let element = if mlirTypeIsAShaped(t) { mlirShapedTypeGetElementType(t) } else { t };
        let bits = mlirIntegerTypeGetWidth(element);
        if !(1..64).contains(&bits) || c < -(1i64 << (bits - 1)) || c >= 1i64 << (bits - 1) {
            return None;
        }
        let ctx = mlirOperationGetContext(at);
        let text = if mlirTypeIsAShaped(t) {
            format!("dense<{c}> : {}", print_type(t))
        } else {
            format!("{c} : {}", print_type(t))
        };
        let op = build(ctx, "arith.constant", mlirOperationGetLocation(at), &[], &[t], &[("value", attr(ctx, &text))]);
        Some(insert_before(at, op))
    }
}

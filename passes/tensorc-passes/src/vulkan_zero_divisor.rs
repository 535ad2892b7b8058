//! `tensorc-vulkan-zero-divisor`: a float division by a constant zero
//! becomes a multiplication by the infinity of the zero's sign.
//!
//! Why: lavapipe (Mesa's NIR) computed `x / 0.0` with a literal zero
//! divisor as 0 instead of ±inf or NaN (a zero that arrives at run time
//! gives inf; so does `x · inf` with a literal infinity), and through it
//! `atan2(y, 0)` came out 0 instead of ±π/2 (generated seed 13018). Asking
//! for IEEE infinities with the `SignedZeroInfNanPreserve` execution mode
//! did not change it. `x / ±0` and `x · ±inf` are the same IEEE value for
//! every `x` (±inf for nonzero `x`, NaN for zeros and NaN), so the rewrite
//! is exact.
//!
//! Which ops: `arith.divf` whose divisor is an `arith.constant` ±0 (a scalar
//! or a splat) or `math.absf` of one (+0: the `atan2` expansion of
//! `tensorc-vulkan-expand-math` divides by `|x|`). It runs in the SPIR-V
//! pipeline after the math expansions, before the SPIR-V conversion.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-vulkan-zero-divisor";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Rewrite float divisions by a constant zero as multiplications by infinity",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { zero_divisors(module) };
            true
        },
    )
}

/// Rewrites every eligible division of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn zero_divisors(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for div in ops_named(module, "arith.divf") {
            let Some(negative) = zero_sign(mlirOperationGetOperand(div, 1)) else {
                continue;
            };
            let ctx = mlirOperationGetContext(div);
            let loc = mlirOperationGetLocation(div);
            let t = mlirValueGetType(result(div));
            let vector = mlirTypeIsAVector(t);
            let elem = if vector {
                mlirShapedTypeGetElementType(t)
            } else {
                t
            };
            let Some(inf) = infinity(elem, negative) else {
                continue;
            };
            let value = if vector {
                format!("dense<{inf}> : {}", print_type(t))
            } else {
                format!("{inf} : {}", print_type(t))
            };
            let c = insert_before(
                div,
                build(
                    ctx,
                    "arith.constant",
                    loc,
                    &[],
                    &[t],
                    &[("value", attr(ctx, &value))],
                ),
            );
            let mul = build(
                ctx,
                "arith.mulf",
                loc,
                &[mlirOperationGetOperand(div, 0), c],
                &[t],
                &[],
            );
            let mul = insert_before(div, mul);
            mlirValueReplaceAllUsesOfWith(result(div), mul);
            mlirOperationDestroy(div);
            count += 1;
        }
        count
    }
}

/// The infinity of float type `t` as the hexadecimal bits MLIR parses for
/// it; `None` for a type not listed.
unsafe fn infinity(t: MlirType, negative: bool) -> Option<&'static str> {
    unsafe {
        let (pos, neg) = if mlirTypeIsAF32(t) {
            ("0x7F800000", "0xFF800000")
        } else if mlirTypeIsAF64(t) {
            ("0x7FF0000000000000", "0xFFF0000000000000")
        } else if mlirTypeIsAF16(t) {
            ("0x7C00", "0xFC00")
        } else if mlirTypeIsABF16(t) {
            ("0x7F80", "0xFF80")
        } else {
            return None;
        };
        Some(if negative { neg } else { pos })
    }
}

/// For a divisor that is a constant ±0 (scalar or splat), or `math.absf`
/// of one, whether the zero is negative.
unsafe fn zero_sign(v: MlirValue) -> Option<bool> {
    unsafe {
        if let Some(abs) = defined_by(v, "math.absf") {
            return zero_sign(mlirOperationGetOperand(abs, 0)).map(|_| false);
        }
        let a = constant_scalar(v)?;
        if !mlirAttributeIsAFloat(a) {
            return None;
        }
        let x = mlirFloatAttrGetValueDouble(a);
        (x == 0.0).then_some(x.is_sign_negative())
    }
}

//! `tensorc-bf16-wide-extends`: an `arith.extf` from bf16 to f64 goes
//! through f32 (`bf16 → f32 → f64`).
//!
//! Why: `arith-expand{include-bf16=true}` writes bf16 → f32 conversions out
//! in integer arithmetic, but leaves a conversion from bf16 straight to f64
//! to LLVM, and LLVM 22's x86 instruction selection aborts the process on
//! `fpext <9 x bfloat> to <9 x double>` on a host with AVX512-BF16 ("Do not
//! know how to soft promote this operator's operand!"; generated seed 35344,
//! where an `as_type` of a 3×3 bf16 tensor to f64 shared the row's load with
//! another use). Every bf16 value is exactly an f32 and every f32 exactly
//! an f64, so the two steps give the same value; the first is then
//! `arith-expand`'s integer conversion.
//!
//! It runs in the CPU pipeline right after `tensorc-bf16-selects`, before
//! `arith-expand`.

use crate::bf16_rounding::is_bf16;
use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-bf16-wide-extends";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Extend bf16 to f64 through f32",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { split_wide_extends(module) };
            true
        },
    )
}

/// Rewrites every `arith.extf` from bf16 (scalars or vectors) to a type
/// wider than f32 in `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn split_wide_extends(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for op in ops_named(module, "arith.extf") {
            let x = mlirOperationGetOperand(op, 0);
            let t = mlirValueGetType(result(op));
            let elem = if mlirTypeIsAShaped(t) { mlirShapedTypeGetElementType(t) } else { t };
            let wide = mlirTypeIsAFloat(elem) && mlirFloatTypeGetWidth(elem) > 32;
            if !is_bf16(mlirValueGetType(x)) || !wide || mlirTypeIsATensor(t) {
                continue;
            }
            let ctx = mlirOperationGetContext(op);
            let loc = mlirOperationGetLocation(op);
            let f32_t = shaped_like(t, mlirF32TypeGet(ctx));
            let single = insert_before(op, build(ctx, "arith.extf", loc, &[x], &[f32_t], &[]));
            let double = insert_before(op, build(ctx, "arith.extf", loc, &[single], &[t], &[]));
            mlirValueReplaceAllUsesOfWith(result(op), double);
            mlirOperationDestroy(op);
            count += 1;
        }
        count
    }
}

//! `tensorc-bf16-selects`: an `arith.select` between bf16 values (scalars
//! or vectors) selects between their 16-bit patterns instead.
//!
//! Why: LLVM 22's x86 code generator stops with a fatal error ("Do not
//! know how to soft promote this operator's operand") on a `select` of
//! `<9 x bfloat>` on a host with AVX512-BF16 (Zen 5): `select p, p, 1000`
//! over a `bf16[3][3]` (generated seed 31159) ended the process that
//! compiled it. A select moves bits without looking at them, so selecting
//! the `i16` patterns (`arith.bitcast` on both sides) is the same
//! operation, and integer vectors of any width lower everywhere.
//!
//! It runs in the CPU pipeline next to `tensorc-bf16-rounding`, after
//! `arith-emulate-unsupported-floats` (which computes bf16 arithmetic in
//! f32 but leaves selects in bf16), before the conversion to LLVM.

use crate::bf16_rounding::is_bf16;
use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-bf16-selects";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Select between the i16 bit patterns of bf16 values",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { bits_selects(module) };
            true
        },
    )
}

/// Rewrites every `arith.select` of bf16 values in `module`; returns how
/// many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn bits_selects(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for op in ops_named(module, "arith.select") {
            let t = mlirValueGetType(result(op));
            // Scalars and vectors (a select of tensors or memrefs picks a
            // whole value, which no bitcast of elements expresses).
            if !is_bf16(t) || !(mlirTypeIsAVector(t) || mlirTypeIsABF16(t)) {
                continue;
            }
            let ctx = mlirOperationGetContext(op);
            let loc = mlirOperationGetLocation(op);
            let i16 = mlirIntegerTypeGet(ctx, 16);
            let bits_t = shaped_like(t, i16);
            let cast = |v: MlirValue, to: MlirType| insert_before(op, build(ctx, "arith.bitcast", loc, &[v], &[to], &[]));
            let (a, b) = (mlirOperationGetOperand(op, 1), mlirOperationGetOperand(op, 2));
            let (a, b) = (cast(a, bits_t), cast(b, bits_t));
            let cond = mlirOperationGetOperand(op, 0);
            let chosen = insert_before(op, build(ctx, "arith.select", loc, &[cond, a, b], &[bits_t], &[]));
            mlirValueReplaceAllUsesOfWith(result(op), cast(chosen, t));
            mlirOperationDestroy(op);
            count += 1;
        }
        count
    }
}

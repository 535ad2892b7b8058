//! `tensorc-bf16-rounding`: the `arith.extf`/`arith.truncf` pairs that
//! `arith-emulate-unsupported-floats` puts around each bf16 op lose their
//! `fastmath<contract>` flag, so every bf16 result is rounded to bf16.
//!
//! Why: the emulation computes each bf16 op in f32 between an `extf` of its
//! operands and a `truncf` of its result, and flags both conversions
//! `contract`. The folder of `arith.extf` then removes `extf(truncf(x))`
//! whenever both carry that flag — which every later greedy rewrite
//! (`arith-expand`, `canonicalize`) applies —, so a chain of bf16 ops ran in
//! f32 and was rounded once at its end. Nx rounds every op's result to its
//! type, as the interpreter does: `remainder` of a u16 65535 by a bf16 1.5
//! gave 0 (65535 mod 1.5) instead of 1 (65535 is 65536 in bf16; generated
//! seed 61080), and `(a + b)·c` kept the sum's low bits.
//!
//! It runs right after `arith-emulate-unsupported-floats` (and the
//! `math-extend-to-supported-types` before it, whose conversions carry no
//! flag), before `arith-expand{include-bf16=true}` writes the conversions
//! out in integer arithmetic, in the CPU and the Vulkan pipelines.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-bf16-rounding";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Keep the bf16 rounding of every emulated bf16 op",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { keep_bf16_rounding(module) };
            true
        },
    )
}

/// Removes the fast-math flags of every `arith.extf` and `arith.truncf`
/// with bf16 on either side (scalars or vectors) in `module`; returns how
/// many conversions had flags.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn keep_bf16_rounding(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for name in ["arith.extf", "arith.truncf"] {
            for op in ops_named(module, name) {
                let bf16 = is_bf16(mlirValueGetType(mlirOperationGetOperand(op, 0))) || is_bf16(mlirValueGetType(result(op)));
                if bf16 && mlirOperationRemoveAttributeByName(op, string_ref("fastmath")) {
                    count += 1;
                }
            }
        }
        count
    }
}

/// Whether `t` is bf16 or a vector (or other shaped type) of bf16.
pub(crate) unsafe fn is_bf16(t: MlirType) -> bool {
    unsafe {
        let element = if mlirTypeIsAShaped(t) { mlirShapedTypeGetElementType(t) } else { t };
        mlirTypeIsABF16(element)
    }
}

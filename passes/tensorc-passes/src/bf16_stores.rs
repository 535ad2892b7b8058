//! `tensorc-bf16-stores`: a store of an integer vector bitcast to bf16
//! stores the integer vector itself.
//!
//! Why: `bitcast x  bf16[…]` of a 16-bit integer tensor is an
//! `arith.bitcast` per element, which the element-wise schedule vectorizes;
//! when the result goes straight to memory, the LLVM dialect holds
//! `llvm.store (llvm.bitcast %x : vector<9xi16> to vector<9xbf16>)`, and
//! LLVM 22's x86 instruction selection aborts the process on it for 9
//! lanes ("Do not know how to soft promote this operator's operand!";
//! generated seed 44080, special inputs, 20 statements: a `u16[3][3][1]`
//! bitcast to bf16 and returned; every length from 1 to 40 tried, only 9
//! and 25 — 16 lanes and a 9-lane remainder — aborted). The bytes stored
//! are the same either way, and an integer vector store is one LLVM always
//! selects.
//!
//! What it matches: `llvm.store` and `llvm.intr.masked.store` whose stored
//! value is an `llvm.bitcast` from a vector of integers to a vector of bf16
//! of the same shape. It runs on the LLVM dialect, after `convert-to-llvm`;
//! the bitcast goes when nothing else uses it.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::BF16_STORES;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Store integer vectors bitcast to bf16 as the integer vectors",
        &[DialectHandle::llvm()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { bf16_stores(module) };
            true
        },
    )
}

/// Rewrites every matching store of `module` (module docs); returns how
/// many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn bf16_stores(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for store in ops_named(module, "llvm.store").into_iter().chain(ops_named(module, "llvm.intr.masked.store")) {
            let Some(cast) = defined_by(mlirOperationGetOperand(store, 0), "llvm.bitcast") else { continue };
            let source = mlirOperationGetOperand(cast, 0);
            if !integer_to_bf16_vector(mlirValueGetType(source), mlirValueGetType(result(cast))) {
                continue;
            }
            mlirOperationSetOperand(store, 0, source);
            if mlirValueGetFirstUse(result(cast)).ptr.is_null() {
                mlirOperationDestroy(cast);
            }
            count += 1;
        }
        count
    }
}

/// Whether `from` is a vector of integers and `to` a vector of bf16 of the
/// same shape.
unsafe fn integer_to_bf16_vector(from: MlirType, to: MlirType) -> bool {
    unsafe {
        if !mlirTypeIsAVector(from) || !mlirTypeIsAVector(to) || mlirVectorTypeIsScalable(to) {
            return false;
        }
        shape(from) == shape(to)
            && mlirTypeIsAInteger(mlirShapedTypeGetElementType(from))
            && mlirTypeIsABF16(mlirShapedTypeGetElementType(to))
    }
}

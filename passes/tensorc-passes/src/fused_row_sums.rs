//! `tensorc-fused-row-sums`: a `vector.multi_reduction <add>` over its
//! leading dimension of a product allowed to contract (`arith.mulf …
//! fastmath<contract>`) becomes a chain of `vector.fma`s, one per row, in
//! row order.
//!
//! Why: `tensorc-matvec`'s few-row products (`matvec.rs`, `few_rows_plan`:
//! `[M][K]·[K][N]` for M of 2 to 4 and a B of 128 KiB or more, their
//! multiply and add marked `contract`) are reductions over K whose tiles
//! the reduction schedule vectorizes into one
//! `multi_reduction` of `FEW_ROWS_BLOCK` rows of products:
//! `lower-vector-multi-reduction` writes it as a multiply and a chain of
//! adds, the adds without the multiply's `contract` flag (the reduction op
//! has none to pass on), so LLVM could not fuse them: two instructions per
//! product where one FMA does. One thread, AOT, alternated in one
//! process: 4×4096·4096² f32 3.10 → 2.30 ms, 3×4096·4096² 2.47 → 2.32,
//! 4×1024·1024×4096 0.257 → 0.231.
//!
//! Same sums: the lowering adds the rows to the accumulator one after the
//! other, first row first; the chain does the same with each product
//! fused into its add (the rounding `contract` allows).
//!
//! Which ops: `vector.multi_reduction <add>` with `reduction_dims = [0]`
//! of a float vector of rank 2 or more whose source is an `arith.mulf`
//! carrying `contract`, used by that reduction only. It runs right before
//! `lower-vector-multi-reduction`.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::FUSED_ROW_SUMS;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Sums over the leading rows of contractable products as chains of FMAs",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { fused_row_sums(module) };
            true
        },
    )
}

/// Rewrites every matching reduction of `module` (module docs); returns
/// how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn fused_row_sums(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for r in ops_named(module, "vector.multi_reduction") {
            if let Some(product) = fusable(r) {
                fuse(r, product);
                count += 1;
            }
        }
        count
    }
}

/// The contractable product `r` sums over its leading dimension, when `r`
/// is one the pass rewrites.
unsafe fn fusable(r: MlirOperation) -> Option<MlirOperation> {
    unsafe {
        let kind = mlirOperationGetAttributeByName(r, string_ref("kind"));
        let dims = mlirOperationGetAttributeByName(r, string_ref("reduction_dims"));
        if kind.ptr.is_null() || dims.ptr.is_null() {
            return None;
        }
        if !print_attr(kind).contains("<add>") || mlirDenseArrayGetNumElements(dims) != 1 {
            return None;
        }
        if mlirDenseI64ArrayGetElement(dims, 0) != 0 {
            return None;
        }
        let source = mlirOperationGetOperand(r, 0);
        let t = mlirValueGetType(source);
        if !mlirTypeIsAVector(t) || mlirShapedTypeGetRank(t) < 2 || !mlirTypeIsAFloat(mlirShapedTypeGetElementType(t)) {
            return None;
        }
        let product = defined_by(source, "arith.mulf")?;
        let flags = mlirOperationGetAttributeByName(product, string_ref("fastmath"));
        let contract = !flags.ptr.is_null() && print_attr(flags).contains("contract");
        let only_here = sole_use(source).is_some_and(|(u, _)| u.ptr == r.ptr);
        (contract && only_here).then_some(product)
    }
}

/// Replaces `r` by `acc + Σ rows` as one `vector.fma` per row of
/// `product`'s operands, and removes both.
unsafe fn fuse(r: MlirOperation, product: MlirOperation) {
    unsafe {
        let ctx = mlirOperationGetContext(r);
        let loc = mlirOperationGetLocation(r);
        let rows = mlirShapedTypeGetDimSize(mlirValueGetType(result(product)), 0);
        let mut acc = mlirOperationGetOperand(r, 1);
        let t = mlirValueGetType(acc);
        let row = |v: MlirValue, i: i64| {
            let position = attr(ctx, &format!("array<i64: {i}>"));
            insert_before(r, build(ctx, "vector.extract", loc, &[v], &[t], &[("static_position", position)]))
        };
        let (a, b) = (mlirOperationGetOperand(product, 0), mlirOperationGetOperand(product, 1));
        for i in 0..rows {
            let (x, y) = (row(a, i), row(b, i));
            acc = insert_before(r, build(ctx, "vector.fma", loc, &[x, y, acc], &[t], &[]));
        }
        mlirValueReplaceAllUsesOfWith(result(r), acc);
        mlirOperationDestroy(r);
        mlirOperationDestroy(product);
    }
}

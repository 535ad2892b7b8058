//! `tensorc-strided-gather`: a 1-D `vector.gather` from a memref whose
//! innermost stride is not known to be 1 becomes one conditional
//! `memref.load` per lane.
//!
//! Why: the vectorizer makes a `tensor.extract` at a computed index inside
//! an element-wise op (`take`, `take_along_axis`, `gather`) a
//! `vector.gather`, and its operand may be a strided view (a `slice` with a
//! stride: `memref<3xi64, strided<[2]>>`). The LLVM lowering of
//! `vector.gather` offsets a pointer by the index vector in elements, which
//! is only the gather's meaning when the innermost stride is 1, so it
//! refuses the op; it survived to translation, which failed (generated seed
//! 61484: a `take_along_axis` of a `bitcast` of a strided `slice`,
//! `tests/cases/regressions/gen_int61484.nxir`).
//!
//! Lane `j` of the result is `base[i0, …, ik + index[j]]` where `mask[j]`
//! is set and `pass_thru[j]` where it is not; the loads are in `scf.if`s, so
//! a masked-off lane's index is never read through (it may be out of
//! bounds), and `memref.load` takes logical indices on any layout. These
//! gathers come from ops over a handful of elements (the vectorized tile
//! of a strided view), so per-lane loads cost nothing that matters.
//!
//! It runs right after `tensorc-scalar-transfers`, on buffers.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-strided-gather";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Lower 1-D vector.gathers from strided memrefs to conditional loads",
        &[DialectHandle::arith(), DialectHandle::scf(), DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { lower_strided_gathers(module) };
            true
        },
    )
}

/// Rewrites every 1-D `vector.gather` from a memref whose innermost stride
/// is not statically 1 in `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn lower_strided_gathers(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for op in ops_named(module, "vector.gather") {
            if lower(op) {
                count += 1;
            }
        }
        count
    }
}

/// Whether the innermost stride of the memref type `t` is statically 1 (or
/// `t` has no strided form, which the lowering then judges itself).
unsafe fn unit_innermost_stride(t: MlirType) -> bool {
    unsafe {
        let rank = mlirShapedTypeGetRank(t);
        if rank == 0 {
            return true;
        }
        let mut strides = vec![0i64; rank as usize];
        let mut offset = 0i64;
        if mlirMemRefTypeGetStridesAndOffset(t, strides.as_mut_ptr(), &mut offset).value == 0 {
            return true;
        }
        strides[rank as usize - 1] == 1
    }
}

/// Rewrites one gather; false when it is not a 1-D gather from a memref
/// with a non-unit (or dynamic) innermost stride.
unsafe fn lower(op: MlirOperation) -> bool {
    unsafe {
        let base = mlirOperationGetOperand(op, 0);
        let base_type = mlirValueGetType(base);
        let n_operands = mlirOperationGetNumOperands(op);
        let vt = mlirValueGetType(result(op));
        if !mlirTypeIsAMemRef(base_type) || unit_innermost_stride(base_type) || mlirShapedTypeGetRank(vt) != 1 {
            return false;
        }
        let lanes = mlirShapedTypeGetDimSize(vt, 0);
        let rank = mlirShapedTypeGetRank(base_type);
        // Operands: base, one offset per dimension, index vector, mask, pass-through.
        if lanes <= 0 || n_operands != rank as isize + 4 {
            return false;
        }
        let rank = rank as isize;
        let offsets: Vec<MlirValue> = (1..=rank).map(|i| mlirOperationGetOperand(op, i)).collect();
        let (index, mask, pass) = (
            mlirOperationGetOperand(op, rank + 1),
            mlirOperationGetOperand(op, rank + 2),
            mlirOperationGetOperand(op, rank + 3),
        );
        let ctx = mlirOperationGetContext(op);
        let loc = mlirOperationGetLocation(op);
        let index_type = mlirIndexTypeGet(ctx);
        let elem = mlirShapedTypeGetElementType(vt);
        let extract = |v: MlirValue, j: i64, t: MlirType| {
            let position = attr(ctx, &format!("array<i64: {j}>"));
            insert_before(op, build(ctx, "vector.extract", loc, &[v], &[t], &[("static_position", position)]))
        };
        let index_elem = mlirShapedTypeGetElementType(mlirValueGetType(index));
        let mut acc = pass;
        for j in 0..lanes {
            let mut k = extract(index, j, index_elem);
            if !mlirTypeIsAIndex(index_elem) {
                k = insert_before(op, build(ctx, "arith.index_cast", loc, &[k], &[index_type], &[]));
            }
            let last = *offsets.last().expect("rank checked above");
            let at = insert_before(op, build(ctx, "arith.addi", loc, &[last, k], &[index_type], &[]));
            let bit = extract(mask, j, mlirIntegerTypeGet(ctx, 1));
            let guard = build_if(op, bit, &[elem]);
            mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(op), op, guard);
            let mut indices = vec![base];
            indices.extend_from_slice(&offsets[..offsets.len() - 1]);
            indices.push(at);
            let load = build(ctx, "memref.load", loc, &indices, &[elem], &[]);
            mlirBlockAppendOwnedOperation(branch(guard, 0), load);
            append_yield(op, branch(guard, 0), &[result(load)]);
            let position = attr(ctx, &format!("array<i64: {j}>"));
            let passed = build(ctx, "vector.extract", loc, &[pass], &[elem], &[("static_position", position)]);
            mlirBlockAppendOwnedOperation(branch(guard, 1), passed);
            append_yield(op, branch(guard, 1), &[result(passed)]);
            let position = attr(ctx, &format!("array<i64: {j}>"));
            acc = insert_before(
                op,
                build(ctx, "vector.insert", loc, &[result(guard), acc], &[vt], &[("static_position", position)]),
            );
        }
        mlirValueReplaceAllUsesOfWith(result(op), acc);
        mlirOperationDestroy(op);
        true
    }
}

//! `tensorc-strided-gather`: a `vector.gather` from a memref whose layout
//! is not the contiguous row-major one of its shape becomes one
//! conditional `memref.load` per lane.
//!
//! Why: the vectorizer makes a `tensor.extract` at a computed index inside
//! an element-wise op (`take`, `take_along_axis`, `gather`) a
//! `vector.gather` from the tensor with all base indices 0 and the element's
//! linear row-major position as the index vector, which is right for the
//! tensor. Bufferization may then put that tensor in a strided view: a
//! `slice` with a stride (`memref<3xi64, strided<[2]>>`), or a slice of a
//! larger buffer (a `window_reduce`'s padded input was written into
//! `memref<3x4xi64, strided<[5, 1], offset: 1>>`). The LLVM lowering offsets
//! the pointer to the base indices by the linear index in elements, which
//! is the gather's meaning only when the layout is contiguous: a non-unit
//! innermost stride it refuses (the op reached translation, which failed:
//! generated seed 61484, `tests/cases/regressions/gen_int61484.nxir`), but
//! a longer row stride it accepted and read the wrong elements (a
//! `take_along_axis` returned the padding and neighbouring rows: seed 63360,
//! `gen_63360.nxir`).
//!
//! Lane `j` of the result is the element `index[j]` places after the base
//! indices in the row-major order of the memref's shape where `mask[j]` is
//! set, and `pass_thru[j]` where it is not; the loads are in `scf.if`s, so a
//! masked-off lane's index is never read through (it may be out of bounds),
//! and `memref.load` takes logical indices on any layout. These gathers
//! come from vectorized tiles of a few elements, so per-lane loads cost
//! nothing that matters (at most `MAX_LANES` lanes are rewritten; a base
//! of two or more dimensions needs static sizes).
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

/// How a gather from the memref type `t` must be rewritten: `None` when
/// its layout is the contiguous row-major one of its shape with a unit
/// innermost stride (the LLVM lowering's pointer offsets are then right,
/// and it takes the op), or it has no strided form
/// or, past one dimension, a dynamic size (left to the lowering);
/// otherwise the row-major strides of its shape, by which the index vector
/// (a linear offset) is split into indices.
unsafe fn rewrite_strides(t: MlirType) -> Option<Vec<i64>> {
    unsafe {
        let strides = memref_strides(t)?;
        let rank = strides.len();
        let shape = shape(t);
        if rank == 1 {
            return (strides[0] != 1).then(|| vec![1]);
        }
        if shape.iter().any(|&d| d < 0) {
            return None;
        }
        let mut row_major = vec![1i64; rank];
        for i in (0..rank - 1).rev() {
            row_major[i] = row_major[i + 1] * shape[i + 1];
        }
        // A dimension of one element may have any stride, but the LLVM
        // lowering refuses any innermost stride but 1 all the same (a
        // 1×1×1 slice with strides [1, 2, 2] reached translation: generated
        // seed 37410, `gen_int37410.nxir`).
        let contiguous = (0..rank).all(|i| shape[i] == 1 || strides[i] == row_major[i]);
        (!contiguous || strides[rank - 1] != 1).then_some(row_major)
    }
}

/// The most lanes a gather is rewritten for (larger ones are left alone:
/// the vectorized tiles whose gathers read strided views are small).
const MAX_LANES: i64 = 1024;

/// Rewrites one gather; false when it reads a tensor, a memref that
/// `rewrite_strides` leaves to the LLVM lowering, or more than `MAX_LANES`
/// lanes.
unsafe fn lower(op: MlirOperation) -> bool {
    unsafe {
        let base = mlirOperationGetOperand(op, 0);
        let base_type = mlirValueGetType(base);
        let n_operands = mlirOperationGetNumOperands(op);
        let vt = mlirValueGetType(result(op));
        if !mlirTypeIsAMemRef(base_type) {
            return false;
        }
        let Some(row_major) = rewrite_strides(base_type) else {
            return false;
        };
        let vshape = shape(vt);
        let lanes: i64 = vshape.iter().product();
        let rank = mlirShapedTypeGetRank(base_type) as isize;
        // Operands: base, one offset per dimension, index vector, mask, pass-through.
        if vshape.iter().any(|&d| d <= 0) || lanes > MAX_LANES || n_operands != rank + 4 {
            return false;
        }
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
        // Lane `j`'s position in the (possibly n-D) vectors, row-major.
        let position = |j: i64| {
            let mut p = Vec::with_capacity(vshape.len());
            let mut rest = j;
            for &d in vshape.iter().rev() {
                p.push(rest % d);
                rest /= d;
            }
            p.reverse();
            let list = p.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            attr(ctx, &format!("array<i64: {list}>"))
        };
        let extract = |v: MlirValue, j: i64, t: MlirType| {
            insert_before(op, build(ctx, "vector.extract", loc, &[v], &[t], &[("static_position", position(j))]))
        };
        let index_elem = mlirShapedTypeGetElementType(mlirValueGetType(index));
        let mut acc = pass;
        for j in 0..lanes {
            let mut k = extract(index, j, index_elem);
            if !mlirTypeIsAIndex(index_elem) {
                k = insert_before(op, build(ctx, "arith.index_cast", loc, &[k], &[index_type], &[]));
            }
            let indices = element_indices(op, base, &offsets, k, &row_major);
            let bit = extract(mask, j, mlirIntegerTypeGet(ctx, 1));
            let guard = build_if(op, bit, &[elem]);
            mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(op), op, guard);
            let load = build(ctx, "memref.load", loc, &indices, &[elem], &[]);
            mlirBlockAppendOwnedOperation(branch(guard, 0), load);
            append_yield(op, branch(guard, 0), &[result(load)]);
            let passed = build(ctx, "vector.extract", loc, &[pass], &[elem], &[("static_position", position(j))]);
            mlirBlockAppendOwnedOperation(branch(guard, 1), passed);
            append_yield(op, branch(guard, 1), &[result(passed)]);
            acc = insert_before(
                op,
                build(ctx, "vector.insert", loc, &[result(guard), acc], &[vt], &[("static_position", position(j))]),
            );
        }
        mlirValueReplaceAllUsesOfWith(result(op), acc);
        mlirOperationDestroy(op);
        true
    }
}

/// The operands of a `memref.load` of lane offset `k` (an index): `base`,
/// then the indices of the element `k` places after `offsets` in the
/// row-major order of the base's shape (`row_major`: its strides in
/// elements). One dimension: `offsets[0] + k`. More: the linear position
/// `Σ offsets[i]·row_major[i] + k` split by the strides, as the vectorizer
/// meant when it linearized a `tensor.extract` on the (contiguous) tensor.
unsafe fn element_indices(
    at: MlirOperation,
    base: MlirValue,
    offsets: &[MlirValue],
    k: MlirValue,
    row_major: &[i64],
) -> Vec<MlirValue> {
    unsafe {
        let add = |a, b| index_op(at, "arith.addi", a, b);
        if offsets.len() == 1 {
            return vec![base, add(offsets[0], k)];
        }
        let mut linear = k;
        for (&o, &s) in offsets.iter().zip(row_major) {
            let scaled = index_op(at, "arith.muli", o, index_constant(at, s));
            linear = add(linear, scaled);
        }
        let mut out = vec![base];
        for (i, &s) in row_major.iter().enumerate() {
            let q = index_op(at, "arith.divui", linear, index_constant(at, s));
            out.push(if i == 0 {
                q
            } else {
                let size = index_constant(at, row_major[i - 1] / s);
                index_op(at, "arith.remui", q, size)
            });
        }
        out
    }
}

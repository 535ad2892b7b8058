//! `tensorc-vulkan-parallel-copy`: a `memref.copy` from or into a strided
//! view becomes a parallel loop (one invocation per element) instead of a
//! host copy.
//!
//! Why: bufferization writes `tensor.pad` and `tensor.insert_slice` as a
//! `memref.copy` into a `memref.subview` of the bigger buffer. The Vulkan
//! schedule can only copy whole contiguous buffers, so `wrap.rs` used to run
//! such a copy as one sequential loop nest in a single invocation: slow, and
//! wrong on lavapipe once the nest runs more than 65535 iterations (Mesa's
//! loop limiter ends it silently; W9's 1×56×56×64 padded copy stopped after
//! about 65536 elements). As a parallel loop it becomes an ordinary kernel,
//! tiled and mapped like every other. Copies between two contiguous buffers
//! stay `memref.copy` (a transfer step in the schedule).
//!
//! It runs in the Vulkan loops pipeline after
//! `convert-linalg-to-parallel-loops` (`tensorc-vulkan/src/lower.rs`).

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-vulkan-parallel-copy";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Rewrite memref.copy of strided views as scf.parallel loops",
        &[
            DialectHandle::scf(),
            DialectHandle::memref(),
            DialectHandle::arith(),
        ],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { parallelize_copies(module) };
            true
        },
    )
}

/// Rewrites every eligible copy of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn parallelize_copies(module: MlirOperation) -> usize {
    unsafe {
        ops_named(module, "memref.copy")
            .into_iter()
            .filter(|&c| parallelize(c))
            .count()
    }
}

/// A static, ranked memref type; whether its layout is the identity.
unsafe fn static_layout(t: MlirType) -> Option<bool> {
    unsafe {
        (mlirTypeIsAMemRef(t) && mlirShapedTypeHasStaticShape(t) && mlirShapedTypeGetRank(t) > 0)
            .then(|| mlirAffineMapIsIdentity(mlirMemRefTypeGetAffineMap(t)))
    }
}

unsafe fn parallelize(copy: MlirOperation) -> bool {
    unsafe {
        let src = mlirOperationGetOperand(copy, 0);
        let dst = mlirOperationGetOperand(copy, 1);
        let (st, dt) = (mlirValueGetType(src), mlirValueGetType(dst));
        let (Some(s_id), Some(d_id)) = (static_layout(st), static_layout(dt)) else {
            return false;
        };
        // Contiguous both sides: a transfer step. Overlapping buffers: the
        // order of a sequential copy might matter.
        if (s_id && d_id) || crate::vulkan_accumulate::may_alias(src, dst) {
            return false;
        }
        let rank = mlirShapedTypeGetRank(st) as isize;
        if mlirShapedTypeGetRank(dt) as isize != rank {
            return false;
        }
        let ctx = mlirOperationGetContext(copy);
        let loc = mlirOperationGetLocation(copy);
        let block = mlirOperationGetBlock(copy);
        let index = mlirIndexTypeGet(ctx);
        let constant = |v: i64| {
            let c = build(
                ctx,
                "arith.constant",
                loc,
                &[],
                &[index],
                &[("value", attr(ctx, &format!("{v} : index")))],
            );
            mlirBlockInsertOwnedOperationBefore(block, copy, c);
            result(c)
        };
        let zero = constant(0);
        let one = constant(1);
        let mut operands: Vec<MlirValue> = vec![zero; rank as usize];
        for d in 0..rank {
            operands.push(constant(mlirShapedTypeGetDimSize(st, d)));
        }
        operands.extend(std::iter::repeat_n(one, rank as usize));
        // The body: load from the source, store to the destination.
        let types: Vec<MlirType> = vec![index; rank as usize];
        let locs: Vec<MlirLocation> = vec![loc; rank as usize];
        let body = mlirBlockCreate(rank, types.as_ptr(), locs.as_ptr());
        let ivs: Vec<MlirValue> = (0..rank).map(|i| mlirBlockGetArgument(body, i)).collect();
        let mut load_operands = vec![src];
        load_operands.extend(&ivs);
        let load = build(
            ctx,
            "memref.load",
            loc,
            &load_operands,
            &[mlirShapedTypeGetElementType(st)],
            &[],
        );
        mlirBlockAppendOwnedOperation(body, load);
        let mut store_operands = vec![result(load), dst];
        store_operands.extend(&ivs);
        mlirBlockAppendOwnedOperation(
            body,
            build(ctx, "memref.store", loc, &store_operands, &[], &[]),
        );
        mlirBlockAppendOwnedOperation(body, build(ctx, "scf.reduce", loc, &[], &[], &[]));
        let region = mlirRegionCreate();
        mlirRegionAppendOwnedBlock(region, body);
        let segments = attr(ctx, &format!("array<i32: {rank}, {rank}, {rank}, 0>"));
        let mut state = mlirOperationStateGet(string_ref("scf.parallel"), loc);
        mlirOperationStateAddOperands(&mut state, operands.len() as isize, operands.as_ptr());
        let named = [mlirNamedAttributeGet(
            mlirIdentifierGet(ctx, string_ref("operandSegmentSizes")),
            segments,
        )];
        mlirOperationStateAddAttributes(&mut state, 1, named.as_ptr());
        mlirOperationStateAddOwnedRegions(&mut state, 1, &region);
        let lp = mlirOperationCreate(&mut state);
        mlirBlockInsertOwnedOperationBefore(block, copy, lp);
        mlirOperationDestroy(copy);
        true
    }
}

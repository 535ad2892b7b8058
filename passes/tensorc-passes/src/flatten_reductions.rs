//! `tensorc-flatten-reductions`: a reduction over every element of its
//! inputs (`sum x` of a tensor of rank 2 or more, with whatever element-wise
//! ops fusion put into it) becomes the same reduction over one loop, on
//! 1-D views of its inputs (`tensor.collapse_shape`, free after
//! bufferization).
//!
//! Why: the reduction schedules take one reduced loop (the last); with one
//! loop per axis the op stayed scalar loops: the sum of 256³ f32 took 8.0 ms
//! on one thread, XLA 1.27, where W7's 1-D sum of 64M f32 takes 6.2. The
//! frontend's own collapse was folded back by upstream's reshape
//! propagation (`linalg-fuse-elementwise-ops` expands the loops of a
//! generic that reads a collapsed tensor), so the pass runs after it, first
//! in the CPU lowering. The elements are combined in the same (memory)
//! order before the schedules split the loop.
//!
//! Which ops: `linalg.generic`s with two loops or more, all reductions,
//! static shapes, every input read with the identity map, one init read
//! with the empty map (a 0-d result), and a body with no `linalg.index`.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::FLATTEN_REDUCTIONS;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Run reductions over every element of their inputs as one loop",
        &[DialectHandle::linalg(), DialectHandle::tensor()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { flatten_reductions(module) };
            true
        },
    )
}

/// Rewrites every op the pass takes; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn flatten_reductions(module: MlirOperation) -> usize {
    unsafe {
        let mut n = 0;
        for op in linalg_ops(module) {
            if full_reduction(op) {
                rewrite(op);
                n += 1;
            }
        }
        n
    }
}

/// Whether `op` is a reduction over every element of its inputs (module
/// docs).
unsafe fn full_reduction(op: MlirOperation) -> bool {
    unsafe {
        if op_name(op) != "linalg.generic" || mlirOperationGetNumResults(op) != 1 {
            return false;
        }
        let Some((maps, parallel)) = generic_maps_and_kinds(op) else { return false };
        let operands = mlirOperationGetNumOperands(op);
        if parallel.len() < 2 || parallel.contains(&true) || mlirArrayAttrGetNumElements(maps) != operands {
            return false;
        }
        for i in 0..operands {
            let t = mlirValueGetType(mlirOperationGetOperand(op, i));
            let map = mlirAffineMapAttrGetValue(mlirArrayAttrGetElement(maps, i));
            if !mlirTypeIsARankedTensor(t) || !mlirShapedTypeHasStaticShape(t) {
                return false;
            }
            let ok = if i + 1 == operands {
                mlirAffineMapGetNumResults(map) == 0
            } else {
                mlirAffineMapIsIdentity(map)
            };
            if !ok {
                return false;
            }
        }
        // Flattening renumbers the loops: an index read would change meaning.
        !crate::row_fuse::uses_index(op)
    }
}

/// Replaces `op` by the generic over one reduction loop on 1-D views of
/// its inputs, its body moved over.
unsafe fn rewrite(op: MlirOperation) {
    unsafe {
        let n = mlirOperationGetNumOperands(op);
        let mut values = Vec::new();
        for i in 0..n - 1 {
            let v = mlirOperationGetOperand(op, i);
            let t = mlirValueGetType(v);
            let rank = mlirShapedTypeGetRank(t);
            let all: Vec<String> = (0..rank).map(|d| d.to_string()).collect();
            let flat = shape(t).iter().product::<i64>();
            let Some(ft) = parse_type(
                mlirOperationGetContext(op),
                &format!("tensor<{flat}x{}>", print_type(mlirShapedTypeGetElementType(t))),
            ) else {
                return;
            };
            values.push(reshape_before(op, v, ft, &format!("[[{}]]", all.join(", ")), false));
        }
        let init = mlirOperationGetOperand(op, n - 1);
        values.push(init);
        let mut maps = vec!["affine_map<(d0) -> (d0)>".to_string(); (n - 1) as usize];
        maps.push("affine_map<(d0) -> ()>".to_string());
        let region = mlirRegionCreate();
        mlirRegionTakeBody(region, mlirOperationGetRegion(op, 0));
        let generic = generic_before(op, &values, (n - 1) as usize, &[mlirValueGetType(init)], &maps, &[false], region);
        mlirValueReplaceAllUsesOfWith(result(op), result(generic));
        mlirOperationDestroy(op);
    }
}

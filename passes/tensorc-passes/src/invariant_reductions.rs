//! `tensorc-invariant-reductions`: a reduction whose combined value does
//! not change from one loop point to the next (`out + 2.0`, `out · -1`)
//! reads that value from an input filled with it, so that it is reduced
//! over every point again once vectorized.
//!
//! Why: MLIR 22's linalg vectorizer reduces a combiner's operand only when
//! that operand became a vector; a value defined outside the body (or a
//! constant in it) stays a scalar, the reduction step is skipped
//! (`reduceIfNeeded`), and the op adds the value once per output element
//! instead of once per reduced point. The sum of a 3×4 constant 2.0 along
//! its rows came out 2 instead of 8, the product of seven 3s 3 instead of
//! 2187, on every CPU (generated seeds 32954, 33183). Such bodies come
//! from constant tensors: `linalg-fuse-elementwise-ops` folds a
//! `linalg.fill` input into the body as its scalar, and constant folding
//! turns a chain on a constant into one (`x | -1` is `-1`).
//!
//! The rewrite is exact: the new input holds that same value at every
//! point, as the `linalg.fill` the fusion folded did. Which ops: a
//! `linalg.generic` on tensors with a reduction loop and an input read
//! with the identity map (whose type gives the loop sizes), each of whose
//! outputs is yielded as a binary `arith` op of the output's block argument
//! and a value that is an `arith.constant` of the body or defined outside
//! it. It runs last but one in the `opt` stage, after the fusion and its
//! `canonicalize`, before `eliminate-empty-tensors`.

use crate::external_pass::{PassId, module_pass};
use crate::generic::Generic;
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-invariant-reductions";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Read a reduction's loop-invariant combined value from a filled input",
        &[DialectHandle::arith(), DialectHandle::linalg(), DialectHandle::tensor()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { invariant_reductions(module) };
            true
        },
    )
}

/// Rewrites every matching reduction in `module` (module docs); returns how
/// many combined values now come from a filled input.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn invariant_reductions(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for op in ops_named(module, "linalg.generic") {
            count += rewrite(op);
        }
        count
    }
}

unsafe fn rewrite(op: MlirOperation) -> usize {
    unsafe {
        let Some(g) = Generic::of(op) else {
            return 0;
        };
        if g.parallel.iter().all(|&p| p) {
            return 0;
        }
        // An input whose type is the loop domain (identity map, static).
        let Some(domain) = (0..g.inputs).find(|&k| {
            let t = mlirValueGetType(mlirOperationGetOperand(op, k));
            mlirAffineMapIsIdentity(g.maps[k as usize]) && mlirTypeIsARankedTensor(t) && mlirShapedTypeHasStaticShape(t)
        }) else {
            return 0;
        };
        let domain_t = mlirValueGetType(mlirOperationGetOperand(op, domain));
        let block = g.block();
        let yield_op = *block_ops(block).last().expect("a generic's body ends in its yield");
        let results = mlirOperationGetNumResults(op);
        let mut inputs: Vec<MlirValue> = (0..g.inputs).map(|k| mlirOperationGetOperand(op, k)).collect();
        let mut maps = g.maps[..g.inputs as usize].to_vec();
        for k in 0..results {
            // The output arguments follow the inputs, the new ones included.
            let out = mlirBlockGetArgument(block, inputs.len() as isize + k);
            let y = mlirOperationGetOperand(yield_op, k);
            let Some((combine, at)) = invariant_operand(y, out, block) else {
                continue;
            };
            let scalar = outside_value(mlirOperationGetOperand(combine, at), op);
            // The filled input, before the op: the loop domain's shape, the
            // value's type.
            let ctx = mlirOperationGetContext(op);
            let loc = mlirOperationGetLocation(op);
            let et = mlirValueGetType(scalar);
            let filled_t = shaped_like(domain_t, et);
            let empty = insert_before(op, build(ctx, "tensor.empty", loc, &[], &[filled_t], &[]));
            // `linalg.fill`'s body: `^bb0(%in, %out): linalg.yield %in`.
            let region = mlirRegionCreate();
            let types = [et, et];
            let locs = [loc, loc];
            let b = mlirBlockCreate(2, types.as_ptr(), locs.as_ptr());
            mlirRegionAppendOwnedBlock(region, b);
            mlirBlockAppendOwnedOperation(b, build(ctx, "linalg.yield", loc, &[mlirBlockGetArgument(b, 0)], &[], &[]));
            let fill = create_op(
                ctx,
                "linalg.fill",
                loc,
                &[scalar, empty],
                &[filled_t],
                &[("operandSegmentSizes", attr(ctx, "array<i32: 1, 1>"))],
                &[region],
            );
            // A new last input, read at every point.
            let arg = mlirBlockInsertArgument(block, inputs.len() as isize, et, loc);
            mlirOperationSetOperand(combine, at, arg);
            inputs.push(insert_before(op, fill));
            maps.push(g.maps[domain as usize]);
        }
        let added = inputs.len() - g.inputs as usize;
        if added > 0 {
            g.set_operands(&inputs, &maps);
        }
        added
    }
}

/// When `y` is a binary `arith` op of `out` and another value that no
/// block argument or `linalg.index` of `block` reaches: the op and the
/// other operand's number.
unsafe fn invariant_operand(y: MlirValue, out: MlirValue, block: MlirBlock) -> Option<(MlirOperation, isize)> {
    unsafe {
        if !mlirValueIsAOpResult(y) {
            return None;
        }
        let combine = mlirOpResultGetOwner(y);
        if !op_name(combine).starts_with("arith.") || mlirOperationGetNumOperands(combine) != 2 {
            return None;
        }
        let (a, b) = (mlirOperationGetOperand(combine, 0), mlirOperationGetOperand(combine, 1));
        let at = if mlirValueEqual(a, out) && !mlirValueEqual(b, out) {
            1
        } else if mlirValueEqual(b, out) && !mlirValueEqual(a, out) {
            0
        } else {
            return None;
        };
        let x = mlirOperationGetOperand(combine, at);
        let inside = mlirValueIsABlockArgument(x) && mlirBlockArgumentGetOwner(x).ptr == block.ptr
            || mlirValueIsAOpResult(x) && mlirOperationGetBlock(mlirOpResultGetOwner(x)).ptr == block.ptr
                && op_name(mlirOpResultGetOwner(x)) != "arith.constant";
        (!inside).then_some((combine, at))
    }
}

/// `x` as a value usable before `generic`: itself when defined outside the
/// generic's body, a copy before the generic when it is a constant of the
/// body.
unsafe fn outside_value(x: MlirValue, generic: MlirOperation) -> MlirValue {
    unsafe {
        if mlirValueIsAOpResult(x) {
            let def = mlirOpResultGetOwner(x);
            if nested_in(def, generic) {
                return insert_before(generic, mlirOperationClone(def));
            }
        }
        x
    }
}

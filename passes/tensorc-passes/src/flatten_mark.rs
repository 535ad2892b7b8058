//! `tensorc-flatten-mark`: tags the element-wise ops that the flattening
//! step (`flatten_schedule.rs`) turns into one loop over all their
//! elements.
//!
//! Why in Rust: the decision follows each operand to its producer and reads
//! the indexing maps, which the match ops cannot.
//!
//! An op is tagged (`flatten_schedule::FLATTEN`) when it is a
//! `linalg.generic` on tensors of static shape with two loops or more, all
//! parallel; every indexing map is the identity (each operand is read or
//! written whole, in loop order, so the elements are one contiguous run);
//! its body reads no `linalg.index` (whose values flattening would change);
//! its last loop is no multiple of the element-wise schedule's 16 lanes
//! (otherwise each row already fills whole vectors); it is not inside a loop
//! (the one-row tiles of row-fused chains); and every operand is a whole
//! contiguous tensor: a function argument or the result of a fill, an
//! element-wise generic, an empty tensor, a reshape or a constant
//! (`contiguous_whole`). That keeps an element-wise consumer of a product
//! or convolution next to it, where the matmul schedule fuses it into the
//! register tiles' epilogue (W6's bias + relu; a reshape in between would
//! hide it), and element-wise ops over strided views (the unrolled pooling
//! windows) as they are: collapsing a strided view copies it.

use crate::elementwise_schedule::ElementwiseTiles;
use crate::external_pass::{PassId, module_pass};
use crate::flatten_schedule::FLATTEN;
use crate::parallel_mark::static_shape;
use crate::raw::*;
use crate::row_fuse::uses_index;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::FLATTEN_MARK;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Tag element-wise ops over rows of no whole vectors for flattening",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { mark_module(module) };
            true
        },
    )
}

/// Tags every op of `module` that `flattenable` accepts.
///
/// # Safety
/// `module` must be a live `builtin.module`.
unsafe fn mark_module(module: MlirOperation) {
    unsafe {
        let ctx = mlirOperationGetContext(module);
        for op in ops_named(module, "linalg.generic") {
            if flattenable(op) {
                mlirOperationSetAttributeByName(op, string_ref(FLATTEN), mlirUnitAttrGet(ctx));
            }
        }
    }
}

/// Whether `op` is an element-wise generic to flatten (the module comment's
/// rules).
unsafe fn flattenable(op: MlirOperation) -> bool {
    unsafe {
        let Some((maps, parallel)) = generic_maps_and_kinds(op) else {
            return false;
        };
        let rank = parallel.len();
        if rank < 2
            || !parallel.iter().all(|&p| p)
            || nested_in_named(op, "scf.for")
            || nested_in_named(op, "scf.forall")
        {
            return false;
        }
        let identity = (0..mlirArrayAttrGetNumElements(maps)).all(|k| {
            let map = mlirAffineMapAttrGetValue(mlirArrayAttrGetElement(maps, k));
            mlirAffineMapIsIdentity(map) && mlirAffineMapGetNumDims(map) as usize == rank
        });
        if !identity || uses_index(op) {
            return false;
        }
        let lanes = u64::from(ElementwiseTiles::default().lanes);
        let operands: Vec<MlirValue> =
            (0..mlirOperationGetNumOperands(op)).map(|k| mlirOperationGetOperand(op, k)).collect();
        let Some(shape) = operands.first().and_then(|&v| static_shape(v)) else {
            return false;
        };
        if shape.last().is_none_or(|&n| n % lanes == 0) {
            return false;
        }
        operands.iter().all(|&v| {
            mlirTypeIsARankedTensor(mlirValueGetType(v))
                && static_shape(v).as_ref() == Some(&shape)
                && contiguous_whole(v)
        })
    }
}

/// Whether `v` is a whole contiguous tensor flattening may collapse for
/// free: a function argument, or the result of `bufferization.to_tensor`,
/// `tensor.empty`, a reshape, a constant, a `linalg.fill` or an
/// element-wise `linalg.generic`. Not a strided `tensor.extract_slice`
/// (the unrolled windows' views: collapsed, each became a copy — a 2×2
/// max pool over 8×112×112×67 ran 3.7 ms against 0.93 for 64 channels),
/// and not a product, convolution, reduction or pack (see the module
/// comment).
unsafe fn contiguous_whole(v: MlirValue) -> bool {
    unsafe {
        if !mlirValueIsAOpResult(v) {
            let owner = mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v));
            return !owner.ptr.is_null() && op_name(owner) == "func.func";
        }
        let producer = mlirOpResultGetOwner(v);
        match op_name(producer).as_str() {
            "bufferization.to_tensor" | "tensor.empty" | "tensor.expand_shape"
            | "tensor.collapse_shape" | "arith.constant" | "linalg.fill" => true,
            "linalg.generic" => generic_maps_and_kinds(producer)
                .is_some_and(|(_, parallel)| parallel.iter().all(|&p| p)),
            _ => false,
        }
    }
}

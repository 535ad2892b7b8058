//! `Generic`: a `linalg.generic` on tensors as the Rust passes that change
//! its operands see it (`fuse_elementwise.rs`, `invariant_reductions.rs`):
//! its operands' maps read once, and its inputs, their maps and the operand
//! segment sizes replaced together.

use crate::raw::*;
use mlir_sys::*;

/// A `linalg.generic` on tensors: its input count, its indexing maps (one
/// per operand, inputs first) and, per loop, whether it is parallel.
pub(crate) struct Generic {
    pub(crate) op: MlirOperation,
    pub(crate) inputs: isize,
    pub(crate) maps: Vec<MlirAffineMap>,
    pub(crate) parallel: Vec<bool>,
}

impl Generic {
    /// `None` for a generic on buffers (no results), whose operands may
    /// alias, or one without readable maps.
    pub(crate) unsafe fn of(op: MlirOperation) -> Option<Generic> {
        unsafe {
            let results = mlirOperationGetNumResults(op);
            let operands = mlirOperationGetNumOperands(op);
            let (maps, parallel) = generic_maps_and_kinds(op)?;
            if results == 0 || mlirArrayAttrGetNumElements(maps) != operands {
                return None;
            }
            let maps = (0..operands)
                .map(|i| mlirAffineMapAttrGetValue(mlirArrayAttrGetElement(maps, i)))
                .collect();
            Some(Generic { op, inputs: operands - results, maps, parallel })
        }
    }

    /// The body.
    pub(crate) unsafe fn block(&self) -> MlirBlock {
        unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(self.op, 0)) }
    }

    /// Replaces the operands and maps (inputs first, then the outputs,
    /// which are unchanged) and the segment sizes that tell them apart.
    pub(crate) unsafe fn set_operands(&self, inputs: &[MlirValue], input_maps: &[MlirAffineMap]) {
        unsafe {
            let outputs: Vec<MlirValue> = (self.inputs..mlirOperationGetNumOperands(self.op))
                .map(|i| mlirOperationGetOperand(self.op, i))
                .collect();
            let operands: Vec<MlirValue> = inputs.iter().chain(&outputs).copied().collect();
            mlirOperationSetOperands(self.op, operands.len() as isize, operands.as_ptr());
            let maps: Vec<MlirAttribute> = input_maps
                .iter()
                .chain(&self.maps[self.inputs as usize..])
                .map(|m| mlirAffineMapAttrGet(*m))
                .collect();
            let ctx = mlirOperationGetContext(self.op);
            let set = |name: &str, a: MlirAttribute| mlirOperationSetAttributeByName(self.op, string_ref(name), a);
            set("indexing_maps", mlirArrayAttrGet(ctx, maps.len() as isize, maps.as_ptr()));
            let sizes = [inputs.len() as i32, outputs.len() as i32];
            set("operandSegmentSizes", mlirDenseI32ArrayGet(ctx, 2, sizes.as_ptr()));
        }
    }
}

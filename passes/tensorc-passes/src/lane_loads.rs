//! `tensorc-lane-loads`: a vector load whose length is not a power of two
//! and whose lanes are only ever extracted one by one becomes one scalar
//! load per extracted lane.
//!
//! Why: the first packed matmul register tile on AVX2 was 6 rows tall
//! (session 22; `PackedMatmul::for_isa` now has 4-row tiles), so each k
//! step read 6 consecutive floats of
//! the packed A panel as a `vector<6xf32>` and broadcasts each lane into
//! one FMA row (the `outerproduct` lowering of `vector.contract`). LLVM
//! legalizes the 6-lane load as a 4-lane and a 2-lane load: lanes 0–3 then
//! fold into `vbroadcastss` from memory, but lanes 4 and 5 are broadcast
//! from a register after a shuffle, which takes two more registers than
//! the tile's 12 accumulators, two B vectors and one broadcast leave; one
//! accumulator went through the stack on every k step (1024³: 56 GFLOPS
//! against NumPy's 84). Scalar loads fold into `vbroadcastss` from memory,
//! one load each, as the unpacked tiles' reads of A (strided, so scalar
//! already) do. Power-of-two lengths are left alone: they legalize into
//! whole registers, and LLVM folds their lanes' broadcasts itself. The
//! pass still finds odd lengths in the remainder tiles of small products
//! and convolutions (3-lane reads: `examples/mlp.nxir`, the conv cases of
//! `tests/cases/ops/`), where the same folding applies.
//!
//! What it matches: `llvm.load` (not volatile, not atomic) of a fixed 1-D
//! vector of at least 3 lanes, not a power of two, every use an
//! `llvm.extractelement` at an `llvm.mlir.constant` lane in range. The
//! scalar loads are inserted where the vector load was, so they read memory
//! at the same point. It runs on the LLVM dialect, last (the outer-product
//! lowering makes the extracts in `convert-vector-to-llvm`).

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::BTreeMap;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-lane-loads";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Load the lanes of odd-length vectors that are only extracted as scalars",
        &[DialectHandle::llvm()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { lane_loads(module) };
            true
        },
    )
}

/// Rewrites every matching load in `module` (module docs); returns how
/// many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn lane_loads(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for load in ops_named(module, "llvm.load") {
            if let Some(lanes) = extracted_lanes(load) {
                split(load, &lanes);
                count += 1;
            }
        }
        count
    }
}

/// The extracts of `load` by lane, when `load` matches (module docs).
unsafe fn extracted_lanes(load: MlirOperation) -> Option<BTreeMap<i64, Vec<MlirOperation>>> {
    unsafe {
        let t = mlirValueGetType(result(load));
        if !mlirTypeIsAVector(t) || mlirVectorTypeIsScalable(t) || mlirShapedTypeGetRank(t) != 1 {
            return None;
        }
        let n = mlirShapedTypeGetDimSize(t, 0);
        if n < 3 || (n & (n - 1)) == 0 || has_attr(load, "volatile_") || has_attr(load, "nontemporal") {
            return None;
        }
        let ordering = mlirOperationGetAttributeByName(load, string_ref("ordering"));
        if !ordering.ptr.is_null() && mlirIntegerAttrGetValueInt(ordering) != 0 {
            return None;
        }
        let mut lanes: BTreeMap<i64, Vec<MlirOperation>> = BTreeMap::new();
        for (user, at) in uses(result(load)) {
            if op_name(user) != "llvm.extractelement" || at != 0 {
                return None;
            }
            let c = defined_by(mlirOperationGetOperand(user, 1), "llvm.mlir.constant")?;
            let value = mlirOperationGetAttributeByName(c, string_ref("value"));
            if value.ptr.is_null() || !mlirAttributeIsAInteger(value) {
                return None;
            }
            let lane = mlirIntegerAttrGetValueInt(value);
            if !(0..n).contains(&lane) {
                return None;
            }
            lanes.entry(lane).or_default().push(user);
        }
        (!lanes.is_empty()).then_some(lanes)
    }
}

/// Replaces `load` by one scalar load per lane of `lanes` (at the load's
/// place) and its extracts by those loads.
unsafe fn split(load: MlirOperation, lanes: &BTreeMap<i64, Vec<MlirOperation>>) {
    unsafe {
        let ctx = mlirOperationGetContext(load);
        let loc = mlirOperationGetLocation(load);
        let ptr = mlirOperationGetOperand(load, 0);
        let vector = mlirValueGetType(result(load));
        let element = mlirShapedTypeGetElementType(vector);
        let bytes = i64::from(element_bits(vector).unwrap_or(8).div_ceil(8));
        // Each lane is aligned to the element's size when the vector is
        // aligned to at least that; otherwise to what the vector was.
        let declared = mlirOperationGetAttributeByName(load, string_ref("alignment"));
        let declared = if declared.ptr.is_null() { 1 } else { mlirIntegerAttrGetValueInt(declared) };
        let align = attr(ctx, &format!("{} : i64", declared.clamp(1, bytes)));
        let element_attr = mlirTypeAttrGet(element);
        for (&lane, extracts) in lanes {
            let address = if lane == 0 {
                ptr
            } else {
                let gep = build(
                    ctx,
                    "llvm.getelementptr",
                    loc,
                    &[ptr],
                    &[mlirValueGetType(ptr)],
                    &[
                        ("elem_type", element_attr),
                        ("rawConstantIndices", attr(ctx, &format!("array<i32: {lane}>"))),
                    ],
                );
                insert_before(load, gep)
            };
            let scalar = insert_before(
                load,
                build(ctx, "llvm.load", loc, &[address], &[element], &[("alignment", align)]),
            );
            for &e in extracts {
                mlirValueReplaceAllUsesOfWith(result(e), scalar);
                mlirOperationDestroy(e);
            }
        }
        mlirOperationDestroy(load);
    }
}

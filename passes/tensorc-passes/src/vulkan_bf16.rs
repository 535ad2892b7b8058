//! `tensorc-vulkan-bf16`: turns every bf16 that is left in the Vulkan
//! lowering into i16 (its bits), because SPIR-V for Vulkan has no bf16 type
//! at all (only with SPV_KHR_bfloat16, which no target tensorc aims at has).
//!
//! bf16 is emulated the way the CPU pipeline does it (`pipeline.rs`
//! LOWERING): `math-extend-to-supported-types` and
//! `arith-emulate-unsupported-floats{source-types=bf16 target-type=f32}`
//! compute every bf16 operation in f32, and `arith-expand{include-bf16=true}`
//! writes the conversions out in integer arithmetic (`extf` shifts the bits
//! up, `truncf` rounds to nearest even, NaN kept quiet). What remains of
//! bf16 after them is storage and data movement: memref and vector types,
//! loads, stores, copies, constants, `select`, loop-carried values, function
//! signatures, and the `arith.bitcast`s between bf16 and i16 the expansion
//! made. This pass rewrites all of them to i16 in one walk over the whole
//! module, kernels and host functions alike, so host buffers and kernel
//! bindings keep matching types (both 2 bytes per element):
//! - every result and block argument type, nested in memrefs, vectors and
//!   function types;
//! - every attribute holding a bf16: type attributes (`function_type`,
//!   `memref.global`'s `type`), float attributes (`arith.constant`), dense
//!   elements (vector constants, `memref.global` initial values), the same
//!   bits as i16;
//! - the `arith.bitcast`s that became i16 to i16 are removed.
//!
//! Any op that still computed on bf16 would now be an op on i16 that the
//! verifier rejects; the pass checks first and fails (naming the op) rather
//! than producing such IR. It runs at the start of the Vulkan SPIR-V stage,
//! after those three upstream passes (`tensorc-vulkan/src/lower.rs`
//! `spirv_pipeline`).

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-vulkan-bf16";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Store and move bf16 as i16 (SPIR-V for Vulkan has no bf16 type)",
        &[DialectHandle::arith()],
        run,
    )
}

/// The pass on `module`; on an op left computing on bf16, an error at it.
fn run(module: MlirOperation) -> bool {
    // SAFETY: `module_pass` passes the live module the pass runs on.
    let Err(op) = (unsafe { convert_module(module) }) else {
        return true;
    };
    // SAFETY: `op` is a live op of the module.
    unsafe {
        let loc = mlirOperationGetLocation(op);
        let msg = format!(
            "'{}' still computes on bf16 after its emulation in f32; the Vulkan target stores bf16 as i16 and cannot run it",
            op_name(op)
        );
        mlirEmitError(
            loc,
            std::ffi::CString::new(msg).unwrap_or_default().as_ptr(),
        );
    }
    false
}

/// Ops that only move or hold bf16 values, so i16 bits serve them equally.
/// Anything else with a bf16 operand or result computes on it. Structured
/// control flow, function and GPU ops carry values through; `arith` keeps
/// bitcasts, constants and selects (which pick, not compute).
fn moves_only(name: &str) -> bool {
    matches!(name, "arith.bitcast" | "arith.constant" | "arith.select")
        || name.starts_with("memref.")
        || name.starts_with("scf.")
        || name.starts_with("func.")
        || name.starts_with("gpu.")
        || name.starts_with("builtin.")
        || matches!(
            name,
            "vector.load"
                | "vector.store"
                | "vector.transfer_read"
                | "vector.transfer_write"
                | "vector.broadcast"
                | "vector.splat"
                | "vector.extract"
                | "vector.insert"
                | "vector.extractelement"
                | "vector.insertelement"
                | "vector.from_elements"
                | "vector.shape_cast"
        )
}

/// Rewrites the module; on an op that computes on bf16, returns it
/// (nothing has been changed then).
///
/// # Safety
/// `module` must be a live operation.
unsafe fn convert_module(module: MlirOperation) -> Result<(), MlirOperation> {
    unsafe {
        let ctx = mlirOperationGetContext(module);
        let bf16 = mlirBF16TypeGet(ctx);
        let i16 = mlirIntegerTypeGet(ctx, 16);
        widen_extensions(module, bf16, i16);
        let mut ops = Vec::new();
        let mut bad = None;
        walk(module, |op| {
            ops.push(op);
            if bad.is_none() && !moves_only(&op_name(op)) && touches(op, bf16) {
                bad = Some(op);
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        if let Some(op) = bad {
            return Err(op);
        }
        let mut bitcasts = Vec::new();
        for &op in &ops {
            for i in 0..mlirOperationGetNumResults(op) {
                let v = mlirOperationGetResult(op, i);
                if let Some(t) = convert_type(mlirValueGetType(v), bf16, i16) {
                    mlirValueSetType(v, t);
                }
            }
            for r in 0..mlirOperationGetNumRegions(op) {
                let mut b = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, r));
                while !b.ptr.is_null() {
                    for a in 0..mlirBlockGetNumArguments(b) {
                        let v = mlirBlockGetArgument(b, a);
                        if let Some(t) = convert_type(mlirValueGetType(v), bf16, i16) {
                            mlirValueSetType(v, t);
                        }
                    }
                    b = mlirBlockGetNextInRegion(b);
                }
            }
            for a in 0..mlirOperationGetNumAttributes(op) {
                let named = mlirOperationGetAttribute(op, a);
                if let Some(new) = convert_attr(named.attribute, bf16, i16) {
                    mlirOperationSetAttributeByName(op, mlirIdentifierStr(named.name), new);
                }
            }
            if op_name(op) == "arith.bitcast" {
                bitcasts.push(op);
            }
        }
        // Bitcasts between bf16 and i16 are now i16 to i16: drop them.
        for op in bitcasts {
            let from = mlirOperationGetOperand(op, 0);
            let to = result(op);
            if mlirTypeEqual(mlirValueGetType(from), mlirValueGetType(to)) {
                mlirValueReplaceAllUsesOfWith(to, from);
                mlirOperationDestroy(op);
            }
        }
        Ok(())
    }
}

/// `arith.extf` from bf16 to f64 (`arith-expand` only writes out the
/// extension to f32) becomes the same bit shift to f32, then `extf` from
/// f32, which is exact: f32 holds every bf16.
///
/// # Safety
/// `module` must be a live operation.
unsafe fn widen_extensions(module: MlirOperation, bf16: MlirType, i16: MlirType) {
    unsafe {
        let ctx = mlirOperationGetContext(module);
        let mut exts = Vec::new();
        walk(module, |op| {
            if op_name(op) == "arith.extf" {
                let from = mlirValueGetType(mlirOperationGetOperand(op, 0));
                if mlirTypeEqual(element(from), bf16) {
                    exts.push(op);
                }
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        let i32t = mlirIntegerTypeGet(ctx, 32);
        let f32t = mlirF32TypeGet(ctx);
        for op in exts {
            let x = mlirOperationGetOperand(op, 0);
            let t = mlirValueGetType(x);
            let loc = mlirOperationGetLocation(op);
            let block = mlirOperationGetBlock(op);
            let add = |name: &str,
                       operands: &[MlirValue],
                       ty: MlirType,
                       attrs: &[(&str, MlirAttribute)]| {
                let new = build(ctx, name, loc, operands, &[ty], attrs);
                mlirBlockInsertOwnedOperationBefore(block, op, new);
                result(new)
            };
            let sixteen = mlirIntegerAttrGet(i32t, 16);
            let sixteen = if mlirTypeIsAVector(t) {
                mlirDenseElementsAttrSplatGet(shaped_like(t, i32t), sixteen)
            } else {
                sixteen
            };
            let bits = add("arith.bitcast", &[x], shaped_like(t, i16), &[]);
            let wide = add("arith.extui", &[bits], shaped_like(t, i32t), &[]);
            let c = add("arith.constant", &[], shaped_like(t, i32t), &[("value", sixteen)]);
            let high = add("arith.shli", &[wide, c], shaped_like(t, i32t), &[]);
            let f = add("arith.bitcast", &[high], shaped_like(t, f32t), &[]);
            let out = result(op);
            if mlirTypeEqual(mlirValueGetType(out), shaped_like(t, f32t)) {
                mlirValueReplaceAllUsesOfWith(out, f);
            } else {
                let e = add("arith.extf", &[f], mlirValueGetType(out), &[]);
                mlirValueReplaceAllUsesOfWith(out, e);
            }
            mlirOperationDestroy(op);
        }
    }
}

/// The element type of a shaped type, or the type itself.
unsafe fn element(t: MlirType) -> MlirType {
    unsafe {
        if mlirTypeIsAShaped(t) {
            mlirShapedTypeGetElementType(t)
        } else {
            t
        }
    }
}

/// Whether any operand or result of `op` has bf16 in its type.
unsafe fn touches(op: MlirOperation, bf16: MlirType) -> bool {
    unsafe {
        let has = |t: MlirType| contains_bf16(t, bf16);
        (0..mlirOperationGetNumOperands(op))
            .any(|i| has(mlirValueGetType(mlirOperationGetOperand(op, i))))
            || (0..mlirOperationGetNumResults(op))
                .any(|i| has(mlirValueGetType(mlirOperationGetResult(op, i))))
    }
}

unsafe fn contains_bf16(t: MlirType, bf16: MlirType) -> bool {
    unsafe {
        if mlirTypeEqual(t, bf16) {
            return true;
        }
        if mlirTypeIsAShaped(t) {
            return contains_bf16(mlirShapedTypeGetElementType(t), bf16);
        }
        if mlirTypeIsAFunction(t) {
            return (0..mlirFunctionTypeGetNumInputs(t))
                .any(|i| contains_bf16(mlirFunctionTypeGetInput(t, i), bf16))
                || (0..mlirFunctionTypeGetNumResults(t))
                    .any(|i| contains_bf16(mlirFunctionTypeGetResult(t, i), bf16));
        }
        false
    }
}

/// `t` with bf16 replaced by i16, or `None` when it has no bf16.
unsafe fn convert_type(t: MlirType, bf16: MlirType, i16: MlirType) -> Option<MlirType> {
    unsafe {
        if !contains_bf16(t, bf16) {
            return None;
        }
        if mlirTypeEqual(t, bf16) {
            return Some(i16);
        }
        if mlirTypeIsAShaped(t) {
            let e = convert_type(mlirShapedTypeGetElementType(t), bf16, i16)?;
            let rank: isize = if mlirShapedTypeHasRank(t) {
                mlirShapedTypeGetRank(t) as isize
            } else {
                0
            };
            let shape: Vec<i64> = (0..rank).map(|d| mlirShapedTypeGetDimSize(t, d)).collect();
            if mlirTypeIsAMemRef(t) {
                return Some(mlirMemRefTypeGet(
                    e,
                    rank,
                    shape.as_ptr(),
                    mlirMemRefTypeGetLayout(t),
                    mlirMemRefTypeGetMemorySpace(t),
                ));
            }
            if mlirTypeIsAVector(t) {
                return Some(mlirVectorTypeGet(rank, shape.as_ptr(), e));
            }
            if mlirTypeIsARankedTensor(t) {
                return Some(mlirRankedTensorTypeGet(
                    rank,
                    shape.as_ptr(),
                    e,
                    mlirRankedTensorTypeGetEncoding(t),
                ));
            }
            return None;
        }
        if mlirTypeIsAFunction(t) {
            let conv = |x: MlirType| convert_type(x, bf16, i16).unwrap_or(x);
            let ins: Vec<MlirType> = (0..mlirFunctionTypeGetNumInputs(t))
                .map(|i| conv(mlirFunctionTypeGetInput(t, i)))
                .collect();
            let outs: Vec<MlirType> = (0..mlirFunctionTypeGetNumResults(t))
                .map(|i| conv(mlirFunctionTypeGetResult(t, i)))
                .collect();
            return Some(mlirFunctionTypeGet(
                mlirTypeGetContext(t),
                ins.len() as isize,
                ins.as_ptr(),
                outs.len() as isize,
                outs.as_ptr(),
            ));
        }
        None
    }
}

/// `a` with its bf16 contents as i16 bits, or `None` when it has none.
unsafe fn convert_attr(a: MlirAttribute, bf16: MlirType, i16: MlirType) -> Option<MlirAttribute> {
    unsafe {
        if mlirAttributeIsAType(a) {
            let t = convert_type(mlirTypeAttrGetValue(a), bf16, i16)?;
            return Some(mlirTypeAttrGet(t));
        }
        if mlirAttributeIsAFloat(a) && mlirTypeEqual(mlirAttributeGetType(a), bf16) {
            // Every bf16 is exactly an f64 and an f32 (NaNs keep their sign
            // and top payload bits), and its bits are the f32's top half.
            let bits = ((mlirFloatAttrGetValueDouble(a) as f32).to_bits() >> 16) as u16;
            return Some(mlirIntegerAttrGet(i16, i64::from(bits as i16)));
        }
        if mlirAttributeIsADenseElements(a) {
            let t = mlirAttributeGetType(a);
            if !mlirTypeEqual(mlirShapedTypeGetElementType(t), bf16) {
                return None;
            }
            let new_t = convert_type(t, bf16, i16)?;
            // bf16 and i16 elements are both stored as 2 bytes; a splat
            // holds one element, which the raw-buffer constructor
            // recognizes as a splat again.
            let n = if mlirDenseElementsAttrIsSplat(a) {
                1
            } else {
                mlirElementsAttrGetNumElements(a) as usize
            };
            let data = mlirDenseElementsAttrGetRawData(a);
            return Some(mlirDenseElementsAttrRawBufferGet(new_t, n * 2, data));
        }
        None
    }
}

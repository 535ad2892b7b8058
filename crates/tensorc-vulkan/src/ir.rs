//! Thin helpers over the MLIR C API for reading the IR that the GPU pipeline
//! produced: walking ops, reading attributes, sizing memref types.
//!
//! The lowering needs to look at the outlined host functions op by op (to turn
//! them into a schedule) and to move `spirv.module`s around, which melior's
//! safe API does not cover; every `unsafe` block here only reads or edits ops
//! of a module that the caller keeps alive for the duration.

use mlir_sys::*;

pub(crate) fn sref(s: &str) -> MlirStringRef {
    MlirStringRef {
        data: s.as_ptr() as *const _,
        length: s.len(),
    }
}

pub(crate) fn string(s: MlirStringRef) -> String {
    if s.data.is_null() {
        return String::new();
    }
    // SAFETY: MLIR string refs point at `length` valid bytes owned by the context.
    let bytes = unsafe { std::slice::from_raw_parts(s.data as *const u8, s.length) };
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn bytes(s: MlirStringRef) -> Vec<u8> {
    if s.data.is_null() {
        return Vec::new();
    }
    // SAFETY: as in `string`.
    unsafe { std::slice::from_raw_parts(s.data as *const u8, s.length) }.to_vec()
}

pub(crate) fn op_name(op: MlirOperation) -> String {
    // SAFETY: `op` is a live operation.
    string(unsafe { mlirIdentifierStr(mlirOperationGetName(op)) })
}

/// The ops of the first block of region `region` of `op`, in order.
pub(crate) fn body_ops(op: MlirOperation, region: isize) -> Vec<MlirOperation> {
    let mut out = Vec::new();
    // SAFETY: reading the structure of a live op.
    unsafe {
        if mlirOperationGetNumRegions(op) <= region {
            return out;
        }
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, region));
        if block.ptr.is_null() {
            return out;
        }
        let mut o = mlirBlockGetFirstOperation(block);
        while !o.ptr.is_null() {
            out.push(o);
            o = mlirOperationGetNextInBlock(o);
        }
    }
    out
}

pub(crate) fn entry_block(op: MlirOperation) -> Option<MlirBlock> {
    // SAFETY: reading the structure of a live op.
    unsafe {
        if mlirOperationGetNumRegions(op) == 0 {
            return None;
        }
        let b = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
        (!b.ptr.is_null()).then_some(b)
    }
}

pub(crate) fn attr(op: MlirOperation, name: &str) -> Option<MlirAttribute> {
    // SAFETY: `op` is live; a missing attribute is a null handle.
    let a = unsafe { mlirOperationGetAttributeByName(op, sref(name)) };
    (!a.ptr.is_null()).then_some(a)
}

pub(crate) fn set_attr(op: MlirOperation, name: &str, a: MlirAttribute) {
    // SAFETY: `op` and `a` are live and belong to the same context.
    unsafe { mlirOperationSetAttributeByName(op, sref(name), a) }
}

pub(crate) fn parse_attr(ctx: MlirContext, text: &str) -> Option<MlirAttribute> {
    // SAFETY: parsing into a live context; failure is a null handle.
    let a = unsafe { mlirAttributeParseGet(ctx, sref(text)) };
    (!a.ptr.is_null()).then_some(a)
}

pub(crate) fn str_attr(op: MlirOperation, name: &str) -> Option<String> {
    let a = attr(op, name)?;
    // SAFETY: checked to be a string attribute first.
    unsafe { mlirAttributeIsAString(a) }.then(|| string(unsafe { mlirStringAttrGetValue(a) }))
}

pub(crate) fn i32_array(a: MlirAttribute) -> Option<Vec<i32>> {
    // SAFETY: checked to be a dense i32 array first.
    unsafe {
        if !mlirAttributeIsADenseI32Array(a) {
            return None;
        }
        let n = mlirDenseArrayGetNumElements(a);
        Some((0..n).map(|i| mlirDenseI32ArrayGetElement(a, i)).collect())
    }
}

/// `@root::@leaf` → (root, leaf).
pub(crate) fn symbol_ref(a: MlirAttribute) -> Option<(String, String)> {
    // SAFETY: checked to be a symbol reference first.
    unsafe {
        if !mlirAttributeIsASymbolRef(a) || mlirSymbolRefAttrGetNumNestedReferences(a) != 1 {
            return None;
        }
        let root = string(mlirSymbolRefAttrGetRootReference(a));
        let leaf = string(mlirFlatSymbolRefAttrGetValue(
            mlirSymbolRefAttrGetNestedReference(a, 0),
        ));
        Some((root, leaf))
    }
}

pub(crate) fn operands(op: MlirOperation) -> Vec<MlirValue> {
    // SAFETY: reading operands of a live op.
    unsafe {
        (0..mlirOperationGetNumOperands(op))
            .map(|i| mlirOperationGetOperand(op, i))
            .collect()
    }
}

pub(crate) fn result(op: MlirOperation, i: isize) -> Option<MlirValue> {
    // SAFETY: index checked against the result count.
    unsafe { (i < mlirOperationGetNumResults(op)).then(|| mlirOperationGetResult(op, i)) }
}

/// The op defining `v`, if it is an op result (not a block argument).
pub(crate) fn defining_op(v: MlirValue) -> Option<MlirOperation> {
    // SAFETY: `v` is a live value.
    unsafe { mlirValueIsAOpResult(v).then(|| mlirOpResultGetOwner(v)) }
}

/// The integer value of an `arith.constant` of integer or index type.
pub(crate) fn constant_int(v: MlirValue) -> Option<i64> {
    let op = defining_op(v)?;
    if op_name(op) != "arith.constant" {
        return None;
    }
    let a = attr(op, "value")?;
    // SAFETY: checked to be an integer attribute first.
    unsafe { mlirAttributeIsAInteger(a).then(|| mlirIntegerAttrGetValueInt(a)) }
}

/// A statically shaped memref type: (element bytes as stored on the device,
/// element count, identity layout).
pub(crate) struct MemRefInfo {
    pub elem_bytes: usize,
    pub elements: usize,
    pub identity: bool,
    pub is_bool: bool,
}

pub(crate) fn memref_info(t: MlirType) -> Option<MemRefInfo> {
    // SAFETY: type queries on a live type, each guarded by its kind check.
    unsafe {
        if !mlirTypeIsAMemRef(t) || !mlirShapedTypeHasStaticShape(t) {
            return None;
        }
        let rank = mlirShapedTypeGetRank(t);
        let mut elements: usize = 1;
        for d in 0..rank {
            elements = elements
                .checked_mul(usize::try_from(mlirShapedTypeGetDimSize(t, d as isize)).ok()?)?;
        }
        let mut e = mlirShapedTypeGetElementType(t);
        // `vector<4xT>` elements (`tensorc-vulkan-vec4`): count lanes.
        let mut lanes = 1;
        if mlirTypeIsAVector(e) && mlirShapedTypeHasStaticShape(e) {
            for d in 0..mlirShapedTypeGetRank(e) {
                lanes *= usize::try_from(mlirShapedTypeGetDimSize(e, d as isize)).ok()?;
            }
            e = mlirShapedTypeGetElementType(e);
        }
        let (elem_bytes, is_bool) = if mlirTypeIsAInteger(e) {
            let w = mlirIntegerTypeGetWidth(e) as usize;
            // i1 is stored as one byte, both by tensorc's Tensor and by the
            // SPIR-V type converter (booleans become i8 in storage buffers).
            (w.div_ceil(8), w == 1)
        } else if mlirTypeIsAFloat(e) {
            (mlirFloatTypeGetWidth(e) as usize / 8, false)
        } else {
            return None;
        };
        let identity = mlirAffineMapIsIdentity(mlirMemRefTypeGetAffineMap(t));
        Some(MemRefInfo {
            elem_bytes: elem_bytes * lanes,
            elements,
            identity,
            is_bool,
        })
    }
}

pub(crate) fn value_type(v: MlirValue) -> MlirType {
    // SAFETY: `v` is a live value.
    unsafe { mlirValueGetType(v) }
}

pub(crate) fn value_key(v: MlirValue) -> usize {
    v.ptr as usize
}

/// The bytes of a dense constant of `count` elements of `elem_bytes` each
/// (splats expanded; i1 unpacked to one byte per element).
pub(crate) fn dense_bytes(a: MlirAttribute, info: &MemRefInfo) -> Option<Vec<u8>> {
    // SAFETY: guarded by the dense-elements kind check; raw data holds
    // one element for splats and all elements otherwise.
    unsafe {
        if !mlirAttributeIsADenseElements(a) {
            return None;
        }
        let n = info.elements;
        let splat = mlirDenseElementsAttrIsSplat(a);
        if info.is_bool {
            return Some(
                (0..n)
                    .map(|i| {
                        mlirDenseElementsAttrGetBoolValue(a, if splat { 0 } else { i as isize })
                            as u8
                    })
                    .collect(),
            );
        }
        let raw = mlirDenseElementsAttrGetRawData(a) as *const u8;
        if splat {
            let one = std::slice::from_raw_parts(raw, info.elem_bytes);
            Some(one.repeat(n))
        } else {
            Some(std::slice::from_raw_parts(raw, n * info.elem_bytes).to_vec())
        }
    }
}

/// The source position of `op` (`file`, line, column), when its location
/// is, or fuses, a file position.
pub(crate) fn op_location(op: MlirOperation) -> Option<crate::FileLoc> {
    // SAFETY: location queries on a live op, each guarded by its kind check.
    unsafe {
        let mut loc = mlirOperationGetLocation(op);
        if mlirLocationIsAFused(loc) && mlirLocationFusedGetNumLocations(loc) > 0 {
            let n = mlirLocationFusedGetNumLocations(loc) as usize;
            let mut all = vec![loc; n];
            mlirLocationFusedGetLocations(loc, all.as_mut_ptr());
            loc = *all.iter().find(|l| mlirLocationIsAFileLineColRange(**l))?;
        }
        if !mlirLocationIsAFileLineColRange(loc) {
            return None;
        }
        Some(crate::FileLoc {
            file: string(mlirIdentifierStr(mlirLocationFileLineColRangeGetFilename(
                loc,
            ))),
            line: mlirLocationFileLineColRangeGetStartLine(loc) as usize,
            col: mlirLocationFileLineColRangeGetStartColumn(loc) as usize,
        })
    }
}

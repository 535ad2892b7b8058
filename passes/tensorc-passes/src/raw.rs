//! Small helpers over the raw MLIR C API (`mlir-sys`) shared by tensorc's
//! Rust passes. The passes keep raw handles rather than melior's borrowed
//! wrappers because they collect operations during a walk and rewrite them
//! afterwards, which melior's walk lifetimes do not allow
//! (`../shared/notes/rust-passes-and-threads.md` §A1, trap 5).

use mlir_sys::*;
use std::ffi::c_void;

/// Walks `root` and everything nested in it in pre-order.
pub(crate) unsafe fn walk<F: FnMut(MlirOperation) -> MlirWalkResult>(
    root: MlirOperation,
    mut f: F,
) {
    unsafe extern "C" fn tramp<F: FnMut(MlirOperation) -> MlirWalkResult>(
        op: MlirOperation,
        ud: *mut c_void,
    ) -> MlirWalkResult {
        // SAFETY: `ud` is the `&mut F` passed below, alive for the whole walk.
        unsafe { (*(ud as *mut F))(op) }
    }
    unsafe {
        mlirOperationWalk(
            root,
            Some(tramp::<F>),
            &mut f as *mut _ as *mut c_void,
            MlirWalkOrder_MlirWalkPreOrder,
        );
    }
}

/// The ops named `name` in `root` and everything nested in it, in pre-order
/// (so an op comes before the ops nested in it).
pub(crate) unsafe fn ops_named(root: MlirOperation, name: &str) -> Vec<MlirOperation> {
    unsafe { collect(root, |op| op_name(op) == name, MlirWalkResult_MlirWalkResultAdvance) }
}

/// The ops named `name` in `root` and below that are not nested in another
/// such op, in pre-order: the walk does not enter the ones it finds.
pub(crate) unsafe fn outermost_ops_named(root: MlirOperation, name: &str) -> Vec<MlirOperation> {
    unsafe { outermost_ops_where(root, |op| op_name(op) == name) }
}

/// The ops of `root` and below for which `pick` holds and that are not
/// nested in another such op, in pre-order.
pub(crate) unsafe fn outermost_ops_where(
    root: MlirOperation,
    pick: impl FnMut(MlirOperation) -> bool,
) -> Vec<MlirOperation> {
    unsafe { collect(root, pick, MlirWalkResult_MlirWalkResultSkip) }
}

/// The linalg ops of `root`, in pre-order, without looking inside them (a
/// linalg op's body holds no linalg op).
pub(crate) unsafe fn linalg_ops(root: MlirOperation) -> Vec<MlirOperation> {
    unsafe { outermost_ops_where(root, |op| op_name(op).starts_with("linalg.")) }
}

/// The walks above: the ops `pick` accepts; `after_match` is what the walk
/// does after finding one.
unsafe fn collect(
    root: MlirOperation,
    mut pick: impl FnMut(MlirOperation) -> bool,
    after_match: MlirWalkResult,
) -> Vec<MlirOperation> {
    let mut found = Vec::new();
    unsafe {
        walk(root, |op| {
            if pick(op) {
                found.push(op);
                after_match
            } else {
                MlirWalkResult_MlirWalkResultAdvance
            }
        });
    }
    found
}

/// The op that defines `v`, if `v` is a result of an op named `name`.
pub(crate) unsafe fn defined_by(v: MlirValue, name: &str) -> Option<MlirOperation> {
    unsafe {
        if !mlirValueIsAOpResult(v) {
            return None;
        }
        let def = mlirOpResultGetOwner(v);
        (op_name(def) == name).then_some(def)
    }
}

/// The one value of `v` when it is an `arith.constant` scalar or splat (a
/// dense elements attribute whose elements are all equal), as a typed
/// scalar attribute.
pub(crate) unsafe fn constant_scalar(v: MlirValue) -> Option<MlirAttribute> {
    unsafe {
        let def = defined_by(v, "arith.constant")?;
        let a = mlirOperationGetAttributeByName(def, string_ref("value"));
        if a.ptr.is_null() {
            return None;
        }
        if !mlirAttributeIsADenseElements(a) {
            return Some(a);
        }
        mlirDenseElementsAttrIsSplat(a).then(|| mlirDenseElementsAttrGetSplatValue(a))
    }
}

/// The value of `v` if it is an integer or index `arith.constant`.
pub(crate) unsafe fn constant_int(v: MlirValue) -> Option<i64> {
    unsafe {
        let def = defined_by(v, "arith.constant")?;
        let a = mlirOperationGetAttributeByName(def, string_ref("value"));
        (!a.ptr.is_null() && mlirAttributeIsAInteger(a)).then(|| mlirIntegerAttrGetValueInt(a))
    }
}

/// A `linalg.generic`'s `indexing_maps` (an array of affine maps, one per
/// operand) and, per loop, whether its iterator type is parallel; `None`
/// when either attribute is missing.
pub(crate) unsafe fn generic_maps_and_kinds(
    op: MlirOperation,
) -> Option<(MlirAttribute, Vec<bool>)> {
    unsafe {
        let maps = mlirOperationGetAttributeByName(op, string_ref("indexing_maps"));
        let iters = mlirOperationGetAttributeByName(op, string_ref("iterator_types"));
        if maps.ptr.is_null() || iters.ptr.is_null() {
            return None;
        }
        let parallel = (0..mlirArrayAttrGetNumElements(iters))
            .map(|i| print_attr(mlirArrayAttrGetElement(iters, i)).contains("parallel"))
            .collect();
        Some((maps, parallel))
    }
}

pub(crate) fn string_ref(s: &str) -> MlirStringRef {
    MlirStringRef {
        data: s.as_ptr() as *const _,
        length: s.len(),
    }
}

/// Whether `op` carries the attribute `name`.
pub(crate) unsafe fn has_attr(op: MlirOperation, name: &str) -> bool {
    unsafe { !mlirOperationGetAttributeByName(op, string_ref(name)).ptr.is_null() }
}

pub(crate) unsafe fn op_name(op: MlirOperation) -> String {
    unsafe { from_string_ref(mlirIdentifierStr(mlirOperationGetName(op))) }
}

pub(crate) unsafe fn from_string_ref(s: MlirStringRef) -> String {
    if s.data.is_null() {
        return String::new();
    }
    unsafe {
        String::from_utf8_lossy(std::slice::from_raw_parts(s.data as *const u8, s.length))
            .into_owned()
    }
}

pub(crate) unsafe fn string_attr(op: MlirOperation, name: &str) -> Option<String> {
    unsafe {
        let a = mlirOperationGetAttributeByName(op, string_ref(name));
        (!a.ptr.is_null() && mlirAttributeIsAString(a))
            .then(|| from_string_ref(mlirStringAttrGetValue(a)))
    }
}

/// Collects what an MLIR print function (`mlirTypePrint`, `mlirAttributePrint`,
/// …) writes through its string callback.
unsafe fn print_with(print: impl FnOnce(MlirStringCallback, *mut c_void)) -> String {
    unsafe extern "C" fn cb(s: MlirStringRef, ud: *mut c_void) {
        // SAFETY: `ud` is the `String` below; MLIR hands valid bytes.
        unsafe { (*(ud as *mut String)).push_str(&from_string_ref(s)) }
    }
    let mut out = String::new();
    print(Some(cb), &mut out as *mut String as *mut c_void);
    out
}

pub(crate) unsafe fn print_type(t: MlirType) -> String {
    unsafe { print_with(|cb, ud| mlirTypePrint(t, cb, ud)) }
}

pub(crate) unsafe fn print_attr(a: MlirAttribute) -> String {
    unsafe { print_with(|cb, ud| mlirAttributePrint(a, cb, ud)) }
}

pub(crate) unsafe fn print_loc(l: MlirLocation) -> String {
    unsafe { print_with(|cb, ud| mlirLocationPrint(l, cb, ud)) }
}

pub(crate) unsafe fn parse_type(ctx: MlirContext, s: &str) -> Option<MlirType> {
    let t = unsafe { mlirTypeParseGet(ctx, string_ref(s)) };
    (!t.ptr.is_null()).then_some(t)
}

/// Parses an attribute tensorc spells itself (never user text).
pub(crate) unsafe fn attr(ctx: MlirContext, s: &str) -> MlirAttribute {
    unsafe { mlirAttributeParseGet(ctx, string_ref(s)) }
}

/// The dimension sizes of the shaped type `t` (dynamic ones negative).
pub(crate) unsafe fn shape(t: MlirType) -> Vec<i64> {
    unsafe { (0..mlirShapedTypeGetRank(t) as isize).map(|d| mlirShapedTypeGetDimSize(t, d)).collect() }
}

/// A constant `value` of the float type `t`, or of every element of the
/// shaped type `t` (a splat), inserted before `at` (built from the value,
/// so infinities and NaN need no textual form).
pub(crate) unsafe fn float_constant(at: MlirOperation, t: MlirType, value: f64) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let shaped = mlirTypeIsAShaped(t);
        let element = if shaped { mlirShapedTypeGetElementType(t) } else { t };
        let scalar = mlirFloatAttrDoubleGet(ctx, element, value);
        let a = if shaped { mlirDenseElementsAttrSplatGet(t, scalar) } else { scalar };
        let c = build(ctx, "arith.constant", mlirOperationGetLocation(at), &[], &[t], &[("value", a)]);
        insert_before(at, c)
    }
}

/// The bytes of the shaped type `t` of static shape (0 for a type without
/// a bit width).
pub(crate) unsafe fn static_bytes(t: MlirType) -> u64 {
    unsafe {
        let elements = shape(t).iter().product::<i64>().max(0) as u64;
        elements * u64::from(element_bits(t).unwrap_or(0)) / 8
    }
}

/// A constant `value` of the integer type `t`, or of every element of the
/// shaped type `t` (a splat), inserted before `at`.
pub(crate) unsafe fn int_constant(at: MlirOperation, t: MlirType, value: i64) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let shaped = mlirTypeIsAShaped(t);
        let element = if shaped { mlirShapedTypeGetElementType(t) } else { t };
        let scalar = mlirIntegerAttrGet(element, value);
        let a = if shaped { mlirDenseElementsAttrSplatGet(t, scalar) } else { scalar };
        let c = build(ctx, "arith.constant", mlirOperationGetLocation(at), &[], &[t], &[("value", a)]);
        insert_before(at, c)
    }
}

/// An `arith.cmpf` of `a` and `b` by `predicate` (arith's numbering: 1
/// `oeq`, 2 `ogt`, 4 `olt`, 14 `uno`), inserted before `at`.
pub(crate) unsafe fn cmpf(at: MlirOperation, predicate: i64, a: MlirValue, b: MlirValue) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let flags = shaped_like(mlirValueGetType(a), mlirIntegerTypeGet(ctx, 1));
        let p = attr(ctx, &format!("{predicate} : i64"));
        insert_before(
            at,
            build(ctx, "arith.cmpf", mlirOperationGetLocation(at), &[a, b], &[flags], &[("predicate", p)]),
        )
    }
}

/// `e`, or a vector or ranked tensor of `e` shaped like `t` when `t` is one.
pub(crate) unsafe fn shaped_like(t: MlirType, e: MlirType) -> MlirType {
    unsafe {
        let vector = mlirTypeIsAVector(t);
        if !vector && !mlirTypeIsARankedTensor(t) {
            return e;
        }
        let shape = shape(t);
        let rank = shape.len() as isize;
        if vector {
            mlirVectorTypeGet(rank, shape.as_ptr(), e)
        } else {
            mlirRankedTensorTypeGet(rank, shape.as_ptr(), e, mlirRankedTensorTypeGetEncoding(t))
        }
    }
}

pub(crate) unsafe fn result(op: MlirOperation) -> MlirValue {
    unsafe { mlirOperationGetResult(op, 0) }
}

/// Creates a detached operation in generic form.
pub(crate) unsafe fn build(
    ctx: MlirContext,
    name: &str,
    loc: MlirLocation,
    operands: &[MlirValue],
    results: &[MlirType],
    attrs: &[(&str, MlirAttribute)],
) -> MlirOperation {
    unsafe { create_op(ctx, name, loc, operands, results, attrs, &[]) }
}

pub(crate) unsafe fn build_with_region(
    ctx: MlirContext,
    name: &str,
    loc: MlirLocation,
    attrs: &[(&str, MlirAttribute)],
    region: MlirRegion,
) -> MlirOperation {
    unsafe { create_op(ctx, name, loc, &[], &[], attrs, &[region]) }
}

pub(crate) unsafe fn create_op(
    ctx: MlirContext,
    name: &str,
    loc: MlirLocation,
    operands: &[MlirValue],
    results: &[MlirType],
    attrs: &[(&str, MlirAttribute)],
    regions: &[MlirRegion],
) -> MlirOperation {
    unsafe {
        let mut state = mlirOperationStateGet(string_ref(name), loc);
        mlirOperationStateAddOperands(&mut state, operands.len() as isize, operands.as_ptr());
        mlirOperationStateAddResults(&mut state, results.len() as isize, results.as_ptr());
        let named: Vec<MlirNamedAttribute> = attrs
            .iter()
            .map(|(n, a)| mlirNamedAttributeGet(mlirIdentifierGet(ctx, string_ref(n)), *a))
            .collect();
        mlirOperationStateAddAttributes(&mut state, named.len() as isize, named.as_ptr());
        mlirOperationStateAddOwnedRegions(&mut state, regions.len() as isize, regions.as_ptr());
        mlirOperationCreate(&mut state)
    }
}

/// An `index` constant inserted before `at`.
pub(crate) unsafe fn index_constant(at: MlirOperation, v: i64) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let c = build(
            ctx,
            "arith.constant",
            mlirOperationGetLocation(at),
            &[],
            &[mlirIndexTypeGet(ctx)],
            &[("value", attr(ctx, &format!("{v} : index")))],
        );
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(at), at, c);
        result(c)
    }
}

/// Inserts `op` before `at` and returns its result.
/// Inserts before `at` a constant zero of the vector type `ty` (float or
/// integer elements), at `at`'s location; returns it.
pub(crate) unsafe fn zero_vector_before(at: MlirOperation, ty: MlirType) -> MlirValue {
    unsafe { insert_before(at, zero_vector(at, ty)) }
}

/// A detached constant zero of the vector type `ty` (float or integer
/// elements), at `at`'s location.
pub(crate) unsafe fn zero_vector(at: MlirOperation, ty: MlirType) -> MlirOperation {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let value = zero_attr(ty).expect("a vector of floats or integers");
        let loc = mlirOperationGetLocation(at);
        build(ctx, "arith.constant", loc, &[], &[ty], &[("value", value)])
    }
}

/// A zero of `t` as an attribute: `t` a float, integer or index, or a
/// vector of them (a splat); `None` for other types.
pub(crate) unsafe fn zero_attr(t: MlirType) -> Option<MlirAttribute> {
    unsafe {
        let element = if mlirTypeIsAVector(t) { mlirShapedTypeGetElementType(t) } else { t };
        let scalar = if mlirTypeIsAFloat(element) {
            mlirFloatAttrDoubleGet(mlirTypeGetContext(t), element, 0.0)
        } else if mlirTypeIsAInteger(element) || mlirTypeIsAIndex(element) {
            mlirIntegerAttrGet(element, 0)
        } else {
            return None;
        };
        Some(if mlirTypeIsAVector(t) { mlirDenseElementsAttrSplatGet(t, scalar) } else { scalar })
    }
}

pub(crate) unsafe fn insert_before(at: MlirOperation, op: MlirOperation) -> MlirValue {
    unsafe {
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(at), at, op);
        result(op)
    }
}

/// A detached `memref.prefetch` of `operands` (the memref, then its
/// indices) for reading, into every cache level (locality 3: `prefetcht0`
/// on x86).
pub(crate) unsafe fn read_prefetch(
    ctx: MlirContext,
    loc: MlirLocation,
    operands: &[MlirValue],
) -> MlirOperation {
    unsafe { prefetch(ctx, loc, operands, false) }
}

/// A detached `memref.prefetch` like `read_prefetch`, for writing when
/// `write` (`prefetchw` on x86: the line arrives owned, so the store that
/// follows does not wait for it).
pub(crate) unsafe fn prefetch(
    ctx: MlirContext,
    loc: MlirLocation,
    operands: &[MlirValue],
    write: bool,
) -> MlirOperation {
    unsafe {
        build(
            ctx,
            "memref.prefetch",
            loc,
            operands,
            &[],
            &[
                ("isWrite", attr(ctx, if write { "true" } else { "false" })),
                ("localityHint", attr(ctx, "3 : i32")),
                ("isDataCache", attr(ctx, "true")),
            ],
        )
    }
}

/// Whether `map` is the minor identity from `rank` dimensions to the last
/// `vrank` (a vector transfer's default `permutation_map`).
pub(crate) unsafe fn is_minor_identity(map: MlirAttribute, rank: usize, vrank: usize) -> bool {
    // A 0-d memref read into a vector (a broadcast) is no minor identity.
    if vrank > rank {
        return false;
    }
    let dims: Vec<String> = (0..rank).map(|d| format!("d{d}")).collect();
    let want = format!(
        "affine_map<({}) -> ({})>",
        dims.join(", "),
        dims[rank - vrank..].join(", ")
    );
    unsafe { print_attr(map) == want }
}

/// The bytes of a cache line on the CPUs tensorc targets.
pub(crate) const LINE_BYTES: i64 = 64;

/// The bit width of the element type of the shaped type `t` when it is a
/// float or an integer.
pub(crate) unsafe fn element_bits(t: MlirType) -> Option<u32> {
    unsafe {
        let elem = mlirShapedTypeGetElementType(t);
        if mlirTypeIsAFloat(elem) {
            Some(mlirFloatTypeGetWidth(elem))
        } else if mlirTypeIsAInteger(elem) {
            Some(mlirIntegerTypeGetWidth(elem))
        } else {
            None
        }
    }
}

/// How many elements of the shaped type `t` fill one cache line (index
/// elements count as 64-bit; at least one).
pub(crate) unsafe fn elements_per_line(t: MlirType) -> i64 {
    let bits = unsafe { element_bits(t) }.unwrap_or(64);
    (LINE_BYTES * 8 / i64::from(bits.max(8))).max(1)
}

/// Whether `op` is nested, at any depth, in `outer`'s regions.
pub(crate) unsafe fn nested_in(op: MlirOperation, outer: MlirOperation) -> bool {
    unsafe { any_ancestor(op, |p| p.ptr == outer.ptr) }
}

/// Whether `op` is nested, at any depth, in an op named `name`.
pub(crate) unsafe fn nested_in_named(op: MlirOperation, name: &str) -> bool {
    unsafe { any_ancestor(op, |p| op_name(p) == name) }
}

/// Whether an op enclosing `op` satisfies `pred`.
unsafe fn any_ancestor(op: MlirOperation, pred: impl Fn(MlirOperation) -> bool) -> bool {
    unsafe {
        let mut p = mlirOperationGetParentOperation(op);
        while !p.ptr.is_null() {
            if pred(p) {
                return true;
            }
            p = mlirOperationGetParentOperation(p);
        }
        false
    }
}

/// Finds every op named `name` in `root` that `candidate` accepts, then
/// rewrites each (all found before any is rewritten, so a rewrite never
/// changes what another candidate saw); returns how many.
///
/// # Safety
/// `root` must be a live operation; `candidate` and `rewrite` get live ops.
pub(crate) unsafe fn rewrite_all<C>(
    root: MlirOperation,
    name: &str,
    candidate: impl Fn(MlirOperation) -> Option<C>,
    rewrite: impl Fn(&C),
) -> usize {
    unsafe {
        let found: Vec<C> = ops_named(root, name).into_iter().filter_map(candidate).collect();
        for c in &found {
            rewrite(c);
        }
        found.len()
    }
}

/// The ops of `block` in order: a snapshot, so the caller may move or erase
/// them while going through it.
pub(crate) unsafe fn block_ops(block: MlirBlock) -> Vec<MlirOperation> {
    let mut ops = Vec::new();
    unsafe {
        let mut op = mlirBlockGetFirstOperation(block);
        while !op.ptr.is_null() {
            ops.push(op);
            op = mlirOperationGetNextInBlock(op);
        }
    }
    ops
}

/// The ops before `op` in its block, in order.
pub(crate) unsafe fn ops_before(op: MlirOperation) -> Vec<MlirOperation> {
    unsafe {
        block_ops(mlirOperationGetBlock(op))
            .into_iter()
            .take_while(|o| o.ptr != op.ptr)
            .collect()
    }
}

/// Every use of `v`: its owner and operand number.
pub(crate) unsafe fn uses(v: MlirValue) -> Vec<(MlirOperation, isize)> {
    let mut found = Vec::new();
    unsafe {
        let mut u = mlirValueGetFirstUse(v);
        while !u.ptr.is_null() {
            found.push((
                mlirOpOperandGetOwner(u),
                mlirOpOperandGetOperandNumber(u) as isize,
            ));
            u = mlirOpOperandGetNextUse(u);
        }
    }
    found
}

/// The use of `v` when it has exactly one: its owner and operand number.
pub(crate) unsafe fn sole_use(v: MlirValue) -> Option<(MlirOperation, isize)> {
    unsafe {
        let u = mlirValueGetFirstUse(v);
        if u.ptr.is_null() || !mlirOpOperandGetNextUse(u).ptr.is_null() {
            return None;
        }
        Some((
            mlirOpOperandGetOwner(u),
            mlirOpOperandGetOperandNumber(u) as isize,
        ))
    }
}

/// An `scf.for`'s lower bound, upper bound and step when all three are
/// constants.
pub(crate) unsafe fn constant_bounds(lp: MlirOperation) -> Option<(i64, i64, i64)> {
    unsafe {
        if mlirOperationGetNumOperands(lp) < 3 {
            return None;
        }
        let b = |i| constant_int(mlirOperationGetOperand(lp, i));
        Some((b(0)?, b(1)?, b(2)?))
    }
}

/// The induction variable of an `scf.for`.
pub(crate) unsafe fn iv(lp: MlirOperation) -> MlirValue {
    unsafe { mlirBlockGetArgument(body(lp), 0) }
}

pub(crate) unsafe fn body(lp: MlirOperation) -> MlirBlock {
    unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0)) }
}

/// The strides of the memref type `t` (`None` for rank 0 or a layout
/// without strides).
pub(crate) unsafe fn memref_strides(t: MlirType) -> Option<Vec<i64>> {
    unsafe {
        let rank = mlirShapedTypeGetRank(t) as usize;
        if rank == 0 {
            return None;
        }
        let mut strides = vec![0i64; rank];
        let mut offset = 0i64;
        (mlirMemRefTypeGetStridesAndOffset(t, strides.as_mut_ptr(), &mut offset).value != 0).then_some(strides)
    }
}

/// The elements of `op`'s integer array attribute named `name` (a
/// `DenseI64ArrayAttr` or an `ArrayAttr` of integers).
pub(crate) unsafe fn i64_array(op: MlirOperation, name: &str) -> Option<Vec<i64>> {
    unsafe {
        let a = mlirOperationGetAttributeByName(op, string_ref(name));
        if a.ptr.is_null() {
            return None;
        }
        if mlirAttributeIsADenseI64Array(a) {
            return Some(
                (0..mlirDenseArrayGetNumElements(a))
                    .map(|i| mlirDenseI64ArrayGetElement(a, i))
                    .collect(),
            );
        }
        // An `ArrayAttr` of integers (`vector.extract_strided_slice`'s
        // offsets, sizes and strides).
        if !mlirAttributeIsAArray(a) {
            return None;
        }
        (0..mlirArrayAttrGetNumElements(a))
            .map(|i| {
                let e = mlirArrayAttrGetElement(a, i);
                mlirAttributeIsAInteger(e).then(|| mlirIntegerAttrGetValueInt(e))
            })
            .collect()
    }
}

/// The lower bound, upper bound and step of an `scf.for` whose three are
/// constants, or of a one-dimensional `scf.forall` whose three are static
/// (a dynamic one is stored as `i64::MIN`, MLIR's "dynamic" marker, and
/// refused here).
pub(crate) unsafe fn loop_bounds(lp: MlirOperation) -> Option<(i64, i64, i64)> {
    unsafe {
        match op_name(lp).as_str() {
            "scf.for" => constant_bounds(lp),
            "scf.forall" => {
                let bounds = (
                    single_static(lp, "staticLowerBound")?,
                    single_static(lp, "staticUpperBound")?,
                    single_static(lp, "staticStep")?,
                );
                let (lb, ub, step) = bounds;
                (lb != i64::MIN && ub != i64::MIN && step != i64::MIN).then_some(bounds)
            }
            _ => None,
        }
    }
}

/// The value of a one-dimensional `scf.forall`'s static bound or step
/// attribute `name` (a dynamic one is a huge negative marker).
pub(crate) unsafe fn single_static(op: MlirOperation, name: &str) -> Option<i64> {
    match unsafe { i64_array(op, name) }?.as_slice() {
        [v] => Some(*v),
        _ => None,
    }
}

/// Inserts `name` (a binary `arith` op on `index` values) of `a` and `b`
/// before `at`; returns its result.
pub(crate) unsafe fn index_op(at: MlirOperation, name: &str, a: MlirValue, b: MlirValue) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let loc = mlirOperationGetLocation(at);
        insert_before(
            at,
            build(ctx, name, loc, &[a, b], &[mlirIndexTypeGet(ctx)], &[]),
        )
    }
}

/// Whether `v` is defined inside `op`'s regions.
pub(crate) unsafe fn defined_inside(v: MlirValue, op: MlirOperation) -> bool {
    unsafe {
        let block = if mlirValueIsABlockArgument(v) {
            mlirBlockArgumentGetOwner(v)
        } else {
            mlirOperationGetBlock(mlirOpResultGetOwner(v))
        };
        let owner = mlirBlockGetParentOperation(block);
        !owner.ptr.is_null() && (owner.ptr == op.ptr || nested_in(owner, op))
    }
}

/// Whether `v` is computed from `x` (looking through the ops defined
/// inside `scope`).
pub(crate) unsafe fn depends(v: MlirValue, x: MlirValue, scope: MlirOperation) -> bool {
    unsafe {
        if mlirValueEqual(v, x) {
            return true;
        }
        if mlirValueIsABlockArgument(v) || !defined_inside(v, scope) {
            return false;
        }
        let def = mlirOpResultGetOwner(v);
        (0..mlirOperationGetNumOperands(def))
            .any(|i| depends(mlirOperationGetOperand(def, i), x, scope))
    }
}

/// An offset or size of a view: a constant or an operand of the view op.
#[derive(Clone, Copy)]
pub(crate) enum Offset {
    Static(i64),
    Dynamic(MlirValue),
}

impl Offset {
    /// The constant, or `None` for an operand.
    pub(crate) fn constant(self) -> Option<i64> {
        match self {
            Offset::Static(n) => Some(n),
            Offset::Dynamic(_) => None,
        }
    }
}

/// The offsets and sizes of a `memref.subview` with static strides: each a
/// constant or the view's operand that holds it.
pub(crate) unsafe fn subview_parts(op: MlirOperation) -> Option<(Vec<Offset>, Vec<Offset>)> {
    unsafe {
        if op_name(op) != "memref.subview" {
            return None;
        }
        let (offsets, sizes, steps) = (
            i64_array(op, "static_offsets")?,
            i64_array(op, "static_sizes")?,
            i64_array(op, "static_strides")?,
        );
        if steps.contains(&i64::MIN) {
            return None;
        }
        // The dynamic ones (the "dynamic" marker) are the operands after
        // the source, offsets first, in order.
        let mut next = 1;
        let mut parts = |statics: &[i64]| -> Vec<Offset> {
            statics
                .iter()
                .map(|&o| {
                    if o == i64::MIN {
                        next += 1;
                        Offset::Dynamic(mlirOperationGetOperand(op, next - 1))
                    } else {
                        Offset::Static(o)
                    }
                })
                .collect()
        };
        let (offsets, sizes) = (parts(&offsets), parts(&sizes));
        (mlirOperationGetNumOperands(op) == next).then_some((offsets, sizes))
    }
}

/// The offsets and sizes of a `memref.subview` with static sizes (each at
/// least 1) and unit strides: each offset a constant or the view's operand
/// that holds it.
pub(crate) unsafe fn subview_offsets(op: MlirOperation) -> Option<(Vec<Offset>, Vec<i64>)> {
    unsafe {
        if i64_array(op, "static_strides")?.iter().any(|&d| d != 1) {
            return None;
        }
        let (offsets, sizes) = subview_parts(op)?;
        let sizes = sizes
            .into_iter()
            .map(|d| match d {
                Offset::Static(n) if n > 0 => Some(n),
                _ => None,
            })
            .collect::<Option<Vec<i64>>>()?;
        Some((offsets, sizes))
    }
}

/// A detached `scf.for %q = lo to hi step by` whose body is only its
/// `scf.yield`.
pub(crate) unsafe fn empty_for(
    ctx: MlirContext,
    loc: MlirLocation,
    lo: MlirValue,
    hi: MlirValue,
    by: MlirValue,
) -> MlirOperation {
    unsafe {
        let index = mlirIndexTypeGet(ctx);
        let region = mlirRegionCreate();
        let block = mlirBlockCreate(1, &index, &loc);
        mlirRegionAppendOwnedBlock(region, block);
        mlirBlockAppendOwnedOperation(block, build(ctx, "scf.yield", loc, &[], &[], &[]));
        create_op(ctx, "scf.for", loc, &[lo, hi, by], &[], &[], &[region])
    }
}

/// The op of `block` that holds `op` (or `op` itself), if any.
pub(crate) unsafe fn holder_in(op: MlirOperation, block: MlirBlock) -> Option<MlirOperation> {
    unsafe {
        let mut op = op;
        while mlirOperationGetBlock(op).ptr != block.ptr {
            op = mlirOperationGetParentOperation(op);
            if op.ptr.is_null() {
                return None;
            }
        }
        Some(op)
    }
}

/// The memref operand, the indices and the map of a transfer (`mem_at` is
/// the memref's operand number: 0 for a read, 1 for a write; the indices
/// follow it).
pub(crate) unsafe fn place(op: MlirOperation, mem_at: isize) -> (MlirValue, Vec<MlirValue>, String) {
    unsafe {
        let mem = mlirOperationGetOperand(op, mem_at);
        let rank = mlirShapedTypeGetRank(mlirValueGetType(mem)) as isize;
        let idx = (0..rank)
            .map(|i| mlirOperationGetOperand(op, mem_at + 1 + i))
            .collect();
        let map = mlirOperationGetAttributeByName(op, string_ref("permutation_map"));
        // No attribute is the default map; printing a null one would crash.
        let map = if map.ptr.is_null() {
            String::new()
        } else {
            print_attr(map)
        };
        (mem, idx, map)
    }
}

/// Reads and writes of the same memref at the same indices with one map.
pub(crate) unsafe fn same_place(read: MlirOperation, write: MlirOperation) -> bool {
    unsafe {
        let (rm, ri, rmap) = place(read, 0);
        let (wm, wi, wmap) = place(write, 1);
        mlirValueEqual(rm, wm)
            && ri.len() == wi.len()
            && ri.iter().zip(&wi).all(|(a, b)| mlirValueEqual(*a, *b))
            && rmap == wmap
            && mlirTypeEqual(
                mlirValueGetType(result(read)),
                mlirValueGetType(mlirOperationGetOperand(write, 0)),
            )
    }
}

/// A transfer on a static memref, every dimension in bounds, no mask, its
/// vector along the memref's last dimensions (the default map).
pub(crate) unsafe fn simple_transfer(op: MlirOperation, mem_at: isize) -> bool {
    unsafe {
        let (mem, idx, _) = place(op, mem_at);
        let t = mlirValueGetType(mem);
        if !mlirTypeIsAMemRef(t) {
            return false;
        }
        // read: source, indices, padding; write: vector, dest, indices.
        let expected = 2 + idx.len() as isize;
        let bounds = mlirOperationGetAttributeByName(op, string_ref("in_bounds"));
        let map = mlirOperationGetAttributeByName(op, string_ref("permutation_map"));
        let vt = if mem_at == 0 {
            mlirValueGetType(result(op))
        } else {
            mlirValueGetType(mlirOperationGetOperand(op, 0))
        };
        mlirOperationGetNumOperands(op) == expected
            && !bounds.ptr.is_null()
            && !print_attr(bounds).contains("false")
            && (map.ptr.is_null()
                || is_minor_identity(map, idx.len(), mlirShapedTypeGetRank(vt) as usize))
    }
}

/// The nearest enclosing `func.func` of `op`.
pub(crate) unsafe fn enclosing_func(op: MlirOperation) -> Option<MlirOperation> {
    unsafe {
        let mut p = mlirOperationGetParentOperation(op);
        while !p.ptr.is_null() {
            if op_name(p) == "func.func" {
                return Some(p);
            }
            p = mlirOperationGetParentOperation(p);
        }
        None
    }
}

/// Builds a detached `scf.if %cond` with `types` results whose branches
/// are empty blocks (the caller adds their `scf.yield`s).
pub(crate) unsafe fn build_if(at: MlirOperation, cond: MlirValue, types: &[MlirType]) -> MlirOperation {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let loc = mlirOperationGetLocation(at);
        let regions = [mlirRegionCreate(), mlirRegionCreate()];
        for r in regions {
            mlirRegionAppendOwnedBlock(r, mlirBlockCreate(0, std::ptr::null(), std::ptr::null()));
        }
        create_op(ctx, "scf.if", loc, &[cond], types, &[], &regions)
    }
}

/// Appends `scf.yield values` to `block`; returns it.
pub(crate) unsafe fn append_yield(at: MlirOperation, block: MlirBlock, values: &[MlirValue]) -> MlirOperation {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let y = build(ctx, "scf.yield", mlirOperationGetLocation(at), values, &[], &[]);
        mlirBlockAppendOwnedOperation(block, y);
        y
    }
}

/// The block of `op`'s region `n` (an `scf.if`'s branch: 0 then, 1 else).
pub(crate) unsafe fn branch(op: MlirOperation, n: isize) -> MlirBlock {
    unsafe { mlirRegionGetFirstBlock(mlirOperationGetRegion(op, n)) }
}

/// Replaces the `scf.for` `lp` by one with one more iter_arg per value of
/// `inits` (their initial values, defined before `lp`). The body, moved
/// over with the old loop's attributes, gets one block argument per init;
/// `next` receives them and the body's `scf.yield` (insert before it) and
/// returns the values to yield for them. The old loop's results are
/// replaced by the new one's first results; returns the new loop, whose
/// last results are the added ones.
pub(crate) unsafe fn append_iter_args(
    lp: MlirOperation,
    inits: &[MlirValue],
    next: impl FnOnce(&[MlirValue], MlirOperation) -> Vec<MlirValue>,
) -> MlirOperation {
    unsafe {
        let ctx = mlirOperationGetContext(lp);
        let loc = mlirOperationGetLocation(lp);
        let body = body(lp);
        let old_results = mlirOperationGetNumResults(lp);
        let mut operands: Vec<MlirValue> = (0..mlirOperationGetNumOperands(lp)).map(|i| mlirOperationGetOperand(lp, i)).collect();
        operands.extend_from_slice(inits);
        let mut types: Vec<MlirType> = (0..old_results).map(|i| mlirValueGetType(mlirOperationGetResult(lp, i))).collect();
        types.extend(inits.iter().map(|&v| mlirValueGetType(v)));
        let args: Vec<MlirValue> =
            types[old_results as usize..].iter().map(|&t| mlirBlockAddArgument(body, t, loc)).collect();
        let yield_op = mlirBlockGetTerminator(body);
        let added = next(&args, yield_op);
        let mut yielded: Vec<MlirValue> =
            (0..mlirOperationGetNumOperands(yield_op)).map(|i| mlirOperationGetOperand(yield_op, i)).collect();
        yielded.extend(added);
        let new_yield = build(ctx, "scf.yield", mlirOperationGetLocation(yield_op), &yielded, &[], &[]);
        mlirBlockInsertOwnedOperationBefore(body, yield_op, new_yield);
        mlirOperationDestroy(yield_op);
        let region = mlirRegionCreate();
        let mut state = mlirOperationStateGet(string_ref("scf.for"), loc);
        mlirOperationStateAddOperands(&mut state, operands.len() as isize, operands.as_ptr());
        mlirOperationStateAddResults(&mut state, types.len() as isize, types.as_ptr());
        let attrs: Vec<MlirNamedAttribute> = (0..mlirOperationGetNumAttributes(lp)).map(|i| mlirOperationGetAttribute(lp, i)).collect();
        mlirOperationStateAddAttributes(&mut state, attrs.len() as isize, attrs.as_ptr());
        mlirOperationStateAddOwnedRegions(&mut state, 1, &region);
        let new_loop = mlirOperationCreate(&mut state);
        mlirRegionTakeBody(mlirOperationGetRegion(new_loop, 0), mlirOperationGetRegion(lp, 0));
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(lp), lp, new_loop);
        for i in 0..old_results {
            mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(lp, i), mlirOperationGetResult(new_loop, i));
        }
        mlirOperationDestroy(lp);
        new_loop
    }
}

/// The buffer of a `memref.alloc` without operands whose type has a
/// static shape and the identity layout (a temporary the passes may
/// reason about element by element).
pub(crate) unsafe fn static_identity_alloc(alloc: MlirOperation) -> Option<MlirValue> {
    unsafe {
        let p = result(alloc);
        let t = mlirValueGetType(p);
        (mlirOperationGetNumOperands(alloc) == 0
            && mlirShapedTypeHasStaticShape(t)
            && mlirAffineMapIsIdentity(mlirMemRefTypeGetAffineMap(t)))
        .then_some(p)
    }
}

/// A `tensor.collapse_shape` (or, with `expand`, a `tensor.expand_shape`)
/// of `v` into type `to` with the reassociation attribute text
/// `reassociation`, inserted before `at`; its result. The static output
/// shape an expansion needs is `to`'s.
pub(crate) unsafe fn reshape_before(
    at: MlirOperation,
    v: MlirValue,
    to: MlirType,
    reassociation: &str,
    expand: bool,
) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let loc = mlirOperationGetLocation(at);
        let re = ("reassociation", attr(ctx, reassociation));
        let op = if expand {
            let dims: Vec<String> = shape(to).iter().map(|d| d.to_string()).collect();
            let out = attr(ctx, &format!("array<i64: {}>", dims.join(", ")));
            build(ctx, "tensor.expand_shape", loc, &[v], &[to], &[re, ("static_output_shape", out)])
        } else {
            build(ctx, "tensor.collapse_shape", loc, &[v], &[to], &[re])
        };
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(at), at, op);
        result(op)
    }
}

/// A `linalg.generic` on `operands` (`inputs` of them inputs, the rest
/// inits) with results `results`, affine maps `maps` (text, one per
/// operand), iterator kinds `parallel` (per loop) and body `region`,
/// inserted before `at`.
pub(crate) unsafe fn generic_before(
    at: MlirOperation,
    operands: &[MlirValue],
    inputs: usize,
    results: &[MlirType],
    maps: &[String],
    parallel: &[bool],
    region: MlirRegion,
) -> MlirOperation {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let iterators: Vec<&str> = parallel
            .iter()
            .map(|&p| if p { "#linalg.iterator_type<parallel>" } else { "#linalg.iterator_type<reduction>" })
            .collect();
        let segments = format!("array<i32: {}, {}>", inputs, operands.len() - inputs);
        let generic = create_op(
            ctx,
            "linalg.generic",
            mlirOperationGetLocation(at),
            operands,
            results,
            &[
                ("indexing_maps", attr(ctx, &format!("[{}]", maps.join(", ")))),
                ("iterator_types", attr(ctx, &format!("[{}]", iterators.join(", ")))),
                ("operandSegmentSizes", attr(ctx, &segments)),
            ],
            &[region],
        );
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(at), at, generic);
        generic
    }
}

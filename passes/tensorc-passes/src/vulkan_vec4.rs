//! `tensorc-vulkan-vec4`: element-wise Vulkan kernels read and write
//! memory four elements at a time, as `vector<4xT>`.
//!
//! Why a pass of our own: on GPUs (and on lavapipe, which runs invocations
//! in SIMD lanes) a 16-byte load per invocation moves twice the data of a
//! scalar one (`../shared/notes/vulkan-path.md` §3: 2× for a 16M add). The
//! upstream route, `vector.load` of `vector<4xf32>` from a `memref<Nxf32>`,
//! becomes a pointer bitcast that `spirv-val` rejects ("not a logical
//! pointer"); what is valid SPIR-V is a buffer whose *element type* is the
//! vector (`memref<N/4 x vector<4xf32>>`, an array of `v4float` with stride
//! 16), as IREE's SPIRVVectorizeLoadStore does. MLIR has no pass for that,
//! so this one rewrites the parallel loops before they become kernels:
//!
//! ```text
//! scf.parallel (%i) = (0) to (N) step (1) {      %av = cast %a : memref<Nxf32> to memref<N/4xvector<4xf32>>
//!   %x = memref.load %a[%i]                 =>   scf.parallel (%i) = (0) to (N/4) step (1) {
//!   %y = arith.mulf %x, %cst : f32                 %x = memref.load %av[%i] : vector<4xf32>
//!   memref.store %y, %c[%i]                        %y = arith.mulf %x, %splat : vector<4xf32>
//! }                                                memref.store %y, %cv[%i]
//! ```
//!
//! The cast is a `builtin.unrealized_conversion_cast` on the host: the
//! kernel gets the same device buffer, typed as vectors (the schedule reader
//! in `tensorc-vulkan` treats it as a view). A loop is rewritten only when it
//! provably computes the same values:
//! - an outermost `scf.parallel` with no reductions whose body is one block
//!   of `memref.load`, `memref.store`, `arith` and `math` ops (no nested
//!   regions, no calls);
//! - one of its induction variables, with bounds `0` to `N` step `1`, `N` a
//!   multiple of 4, is the last index of every store and is used nowhere
//!   else but as the last index of loads (so invocation `i` touches exactly
//!   elements `4i .. 4i+3` of the innermost dimension of each buffer);
//! - every buffer accessed through it has a static shape, the identity
//!   layout, a 32-bit element type and an innermost size that is a multiple
//!   of 4;
//! - every value that depends on those loads has a 32-bit (or `i1`) scalar
//!   type; the other values (loads that do not use the variable, constants)
//!   are the same in all four lanes and are broadcast.
//!
//! It runs in the Vulkan lowering after `tensorc-vulkan-accumulate` and
//! before the loops are tiled into workgroups (`tensorc-vulkan/src/lower.rs`
//! `gpu_pipeline`).

use crate::raw::*;
use melior::ContextRef;
use melior::dialect::DialectHandle;
use melior::ir::OperationRef;
use melior::ir::r#type::TypeId;
use melior::pass::{ExternalPass, Pass, RunExternalPass, create_external};
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-vulkan-vec4";

/// Lanes per access (16 bytes of 32-bit elements).
const LANES: i64 = 4;

#[repr(align(8))]
struct PassId;
static PASS_ID: PassId = PassId;

/// The pass object; stateless.
#[derive(Clone)]
struct Vec4;

impl<'c> RunExternalPass<'c> for Vec4 {
    fn initialize(&mut self, _context: ContextRef<'c>) {}

    fn run(&mut self, module: OperationRef<'c, '_>, _pass: ExternalPass<'_>) {
        // SAFETY: `module` is the live `builtin.module` this pass runs on.
        unsafe { vectorize_module(module.to_raw()) };
    }
}

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    create_external(
        Vec4,
        TypeId::create(&PASS_ID),
        NAME,
        NAME,
        "Access memory as vector<4xT> in element-wise scf.parallel loops",
        "builtin.module",
        // `vector` (for `vector.broadcast`) has no melior handle; tensorc's
        // context loads every dialect anyway.
        &[
            DialectHandle::scf(),
            DialectHandle::memref(),
            DialectHandle::arith(),
        ],
    )
}

/// Rewrites every eligible loop of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn vectorize_module(module: MlirOperation) -> usize {
    unsafe {
        let mut loops = Vec::new();
        walk(module, |op| {
            if op_name(op) == "scf.parallel" {
                loops.push(op);
                MlirWalkResult_MlirWalkResultSkip
            } else {
                MlirWalkResult_MlirWalkResultAdvance
            }
        });
        loops.into_iter().filter(|&lp| vectorize_loop(lp)).count()
    }
}

/// What a body value becomes.
#[derive(Clone, Copy)]
enum Lane {
    /// The same in every lane: the original scalar, broadcast where a vector
    /// needs it.
    Uniform,
    /// Different per lane: this vector value.
    Varying(MlirValue),
}

/// The rewrite plan's checks; false when the loop is left alone.
unsafe fn vectorize_loop(lp: MlirOperation) -> bool {
    unsafe {
        if mlirOperationGetNumResults(lp) != 0 {
            return false;
        }
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0));
        if body.ptr.is_null() {
            return false;
        }
        let dims = mlirBlockGetNumArguments(body);
        if dims == 0 || mlirOperationGetNumOperands(lp) != 3 * dims {
            return false;
        }
        let mut ops = Vec::new();
        let mut op = mlirBlockGetFirstOperation(body);
        while !op.ptr.is_null() {
            if mlirOperationGetNumRegions(op) != 0 {
                return false;
            }
            ops.push(op);
            op = mlirOperationGetNextInBlock(op);
        }
        // The terminator (`scf.reduce` without operands) stays.
        let Some((&term, ops)) = ops.split_last() else {
            return false;
        };
        if op_name(term) != "scf.reduce" || mlirOperationGetNumOperands(term) != 0 {
            return false;
        }
        // The vectorized variable: the last index of the first store.
        let Some(&first_store) = ops.iter().find(|&&o| op_name(o) == "memref.store") else {
            return false;
        };
        let n = mlirOperationGetNumOperands(first_store);
        if n < 3 {
            return false;
        }
        let iv = mlirOperationGetOperand(first_store, n - 1);
        if !mlirValueIsABlockArgument(iv) || !mlirBlockEqual(mlirBlockArgumentGetOwner(iv), body) {
            return false;
        }
        let d = mlirBlockArgumentGetArgNumber(iv);
        let bound = |k: isize| constant_int(mlirOperationGetOperand(lp, k * dims + d));
        let (Some(0), Some(ub), Some(1)) = (bound(0), bound(1), bound(2)) else {
            return false;
        };
        if ub < LANES || ub % LANES != 0 {
            return false;
        }
        // Classify every op; any use of `iv` other than as the last index of
        // an access, or a varying value of a type that cannot be a vector
        // lane, leaves the loop alone.
        let mut lanes: Vec<(MlirValue, bool)> = Vec::new(); // (value, varying)
        let varying = |lanes: &Vec<(MlirValue, bool)>, v: MlirValue| {
            lanes.iter().any(|(w, var)| *var && mlirValueEqual(*w, v))
        };
        for &op in ops {
            let name = op_name(op);
            let nops = mlirOperationGetNumOperands(op);
            let operands: Vec<MlirValue> =
                (0..nops).map(|i| mlirOperationGetOperand(op, i)).collect();
            match name.as_str() {
                "memref.load" | "memref.store" => {
                    let base = if name == "memref.store" { 1 } else { 0 };
                    let indices = &operands[base + 1..];
                    if indices[..indices.len().saturating_sub(1)]
                        .iter()
                        .any(|&v| mlirValueEqual(v, iv) || varying(&lanes, v))
                    {
                        return false;
                    }
                    let through_iv = indices.last().is_some_and(|&v| mlirValueEqual(v, iv));
                    if indices.last().is_some_and(|&v| varying(&lanes, v)) {
                        return false;
                    }
                    if name == "memref.store" {
                        if !through_iv || !vector_memref(mlirValueGetType(operands[1])) {
                            return false;
                        }
                    } else if through_iv {
                        if !vector_memref(mlirValueGetType(operands[0])) {
                            return false;
                        }
                        lanes.push((result(op), true));
                    }
                }
                _ => {
                    if !per_lane(&name) || operands.iter().any(|&v| mlirValueEqual(v, iv)) {
                        return false;
                    }
                    if operands.iter().any(|&v| varying(&lanes, v)) {
                        let nres = mlirOperationGetNumResults(op);
                        if nres != 1
                            || operands.iter().any(|&v| !lane_type(mlirValueGetType(v)))
                            || !lane_type(mlirValueGetType(result(op)))
                        {
                            return false;
                        }
                        lanes.push((result(op), true));
                    }
                }
            }
        }
        rewrite(lp, body, ops, iv, d, dims, ub / LANES);
        true
    }
}

/// Applies the rewrite `vectorize_loop` checked.
unsafe fn rewrite(
    lp: MlirOperation,
    body: MlirBlock,
    ops: &[MlirOperation],
    iv: MlirValue,
    d: isize,
    dims: isize,
    vector_ub: i64,
) {
    unsafe {
        let ctx = mlirOperationGetContext(lp);
        let loc = mlirOperationGetLocation(lp);
        let parent = mlirOperationGetBlock(lp);
        let index = mlirIndexTypeGet(ctx);
        let ub = build(
            ctx,
            "arith.constant",
            loc,
            &[],
            &[index],
            &[("value", attr(ctx, &format!("{vector_ub} : index")))],
        );
        mlirBlockInsertOwnedOperationBefore(parent, lp, ub);
        mlirOperationSetOperand(lp, dims + d, result(ub));
        // One cast per buffer accessed through `iv`.
        let mut casts: Vec<(MlirValue, MlirValue)> = Vec::new();
        let mut cast_of = |m: MlirValue| -> MlirValue {
            if let Some((_, c)) = casts.iter().find(|(v, _)| mlirValueEqual(*v, m)) {
                return *c;
            }
            let t = vector_memref_type(mlirValueGetType(m));
            let c = build(
                ctx,
                "builtin.unrealized_conversion_cast",
                loc,
                &[m],
                &[t],
                &[],
            );
            mlirBlockInsertOwnedOperationBefore(parent, lp, c);
            casts.push((m, result(c)));
            result(c)
        };
        // New ops go before the old ones; old varying ops are erased after.
        let mut map: Vec<(MlirValue, Lane)> = Vec::new();
        let lane_of = |map: &Vec<(MlirValue, Lane)>, v: MlirValue| {
            map.iter()
                .find(|(w, _)| mlirValueEqual(*w, v))
                .map_or(Lane::Uniform, |(_, l)| *l)
        };
        // A uniform scalar as a vector: splat constants, broadcast the rest.
        let splat = |at: MlirOperation, v: MlirValue| -> MlirValue {
            let t = mlirValueGetType(v);
            let vt = mlirVectorTypeGet(1, [LANES].as_ptr(), t);
            let oloc = mlirOperationGetLocation(at);
            if mlirValueIsAOpResult(v) && op_name(mlirOpResultGetOwner(v)) == "arith.constant" {
                let a =
                    mlirOperationGetAttributeByName(mlirOpResultGetOwner(v), string_ref("value"));
                if !a.ptr.is_null() && (mlirAttributeIsAInteger(a) || mlirAttributeIsAFloat(a)) {
                    let dense = mlirDenseElementsAttrSplatGet(vt, a);
                    let c = build(ctx, "arith.constant", oloc, &[], &[vt], &[("value", dense)]);
                    mlirBlockInsertOwnedOperationBefore(body, at, c);
                    return result(c);
                }
            }
            let b = build(ctx, "vector.broadcast", oloc, &[v], &[vt], &[]);
            mlirBlockInsertOwnedOperationBefore(body, at, b);
            result(b)
        };
        let mut dead = Vec::new();
        for &op in ops {
            let name = op_name(op);
            let oloc = mlirOperationGetLocation(op);
            let nops = mlirOperationGetNumOperands(op);
            let operands: Vec<MlirValue> =
                (0..nops).map(|i| mlirOperationGetOperand(op, i)).collect();
            match name.as_str() {
                "memref.load" => {
                    if !operands.last().is_some_and(|&v| mlirValueEqual(v, iv)) {
                        continue; // uniform: stays a scalar load
                    }
                    let m = cast_of(operands[0]);
                    let vt = mlirShapedTypeGetElementType(mlirValueGetType(m));
                    let mut new_operands = operands.clone();
                    new_operands[0] = m;
                    let l = build(ctx, "memref.load", oloc, &new_operands, &[vt], &[]);
                    mlirBlockInsertOwnedOperationBefore(body, op, l);
                    map.push((result(op), Lane::Varying(result(l))));
                    dead.push(op);
                }
                "memref.store" => {
                    let value = match lane_of(&map, operands[0]) {
                        Lane::Varying(v) => v,
                        Lane::Uniform => splat(op, operands[0]),
                    };
                    let mut new_operands = operands.clone();
                    new_operands[0] = value;
                    new_operands[1] = cast_of(operands[1]);
                    let s = build(ctx, "memref.store", oloc, &new_operands, &[], &[]);
                    mlirBlockInsertOwnedOperationBefore(body, op, s);
                    dead.push(op);
                }
                _ => {
                    if !operands
                        .iter()
                        .any(|&v| matches!(lane_of(&map, v), Lane::Varying(_)))
                    {
                        continue; // uniform: stays as it is
                    }
                    let new_operands: Vec<MlirValue> = operands
                        .iter()
                        .map(|&v| match lane_of(&map, v) {
                            Lane::Varying(x) => x,
                            Lane::Uniform => splat(op, v),
                        })
                        .collect();
                    let t = mlirValueGetType(result(op));
                    let vt = mlirVectorTypeGet(1, [LANES].as_ptr(), t);
                    let attrs: Vec<(String, MlirAttribute)> =
                        (0..mlirOperationGetNumAttributes(op))
                            .map(|i| {
                                let a = mlirOperationGetAttribute(op, i);
                                (from_string_ref(mlirIdentifierStr(a.name)), a.attribute)
                            })
                            .collect();
                    let attrs: Vec<(&str, MlirAttribute)> =
                        attrs.iter().map(|(n, a)| (n.as_str(), *a)).collect();
                    let v = build(ctx, &name, oloc, &new_operands, &[vt], &attrs);
                    mlirBlockInsertOwnedOperationBefore(body, op, v);
                    map.push((result(op), Lane::Varying(result(v))));
                    dead.push(op);
                }
            }
        }
        // Old ops only feed each other; erase users first.
        for op in dead.into_iter().rev() {
            mlirOperationDestroy(op);
        }
    }
}

/// Ops whose `vector<4xT>` form lowers to SPIR-V as the scalar form does,
/// lane by lane. Left out (the loop stays scalar): the ops that
/// `tensorc-vulkan-expand-math` (`vulkan_math.rs`) rewrites for Nx's
/// semantics on scalars only — `arith.remf`/`remsi`/`remui`, `math.powf`,
/// `erf`, `erfc`, `cbrt`, `asin`, `acos`, `atan2`, `ctpop` — and any op not
/// listed here.
fn per_lane(name: &str) -> bool {
    match name.split_once('.') {
        Some(("arith", op)) => !op.starts_with("rem"),
        Some(("math", op)) => matches!(
            op,
            "absf"
                | "absi"
                | "ceil"
                | "floor"
                | "round"
                | "roundeven"
                | "trunc"
                | "sqrt"
                | "rsqrt"
                | "exp"
                | "exp2"
                | "expm1"
                | "log"
                | "log2"
                | "log1p"
                | "sin"
                | "cos"
                | "tan"
                | "tanh"
                | "atan"
                | "sinh"
                | "cosh"
                | "asinh"
                | "acosh"
                | "atanh"
                | "fma"
                | "copysign"
                | "ctlz"
                | "isnan"
                | "isinf"
        ),
        _ => false,
    }
}

/// A scalar type one vector lane can hold: 32-bit integers and floats, and
/// `i1` (comparison results).
unsafe fn lane_type(t: MlirType) -> bool {
    unsafe {
        (mlirTypeIsAInteger(t) && matches!(mlirIntegerTypeGetWidth(t), 1 | 32))
            || (mlirTypeIsAF32(t))
    }
}

/// A buffer that can be viewed as `vector<4xT>` elements: static shape,
/// identity layout, 32-bit elements, innermost size a multiple of 4.
unsafe fn vector_memref(t: MlirType) -> bool {
    unsafe {
        if !mlirTypeIsAMemRef(t) || !mlirShapedTypeHasStaticShape(t) {
            return false;
        }
        let rank = mlirShapedTypeGetRank(t);
        if rank < 1 || !mlirAffineMapIsIdentity(mlirMemRefTypeGetAffineMap(t)) {
            return false;
        }
        if !mlirMemRefTypeGetMemorySpace(t).ptr.is_null() {
            return false;
        }
        let e = mlirShapedTypeGetElementType(t);
        let last = mlirShapedTypeGetDimSize(t, rank as isize - 1);
        let lane = (mlirTypeIsAInteger(e) && mlirIntegerTypeGetWidth(e) == 32) || mlirTypeIsAF32(e);
        lane && last >= LANES && last % LANES == 0
    }
}

/// `memref<d0 x … x dn x T>` as `memref<d0 x … x dn/4 x vector<4xT>>`.
unsafe fn vector_memref_type(t: MlirType) -> MlirType {
    unsafe {
        let rank = mlirShapedTypeGetRank(t) as isize;
        let mut shape: Vec<i64> = (0..rank).map(|i| mlirShapedTypeGetDimSize(t, i)).collect();
        if let Some(l) = shape.last_mut() {
            *l /= LANES;
        }
        let e = mlirVectorTypeGet(1, [LANES].as_ptr(), mlirShapedTypeGetElementType(t));
        mlirMemRefTypeContiguousGet(e, rank, shape.as_ptr(), mlirAttributeGetNull())
    }
}

unsafe fn constant_int(v: MlirValue) -> Option<i64> {
    unsafe {
        if !mlirValueIsAOpResult(v) {
            return None;
        }
        let def = mlirOpResultGetOwner(v);
        if op_name(def) != "arith.constant" {
            return None;
        }
        let a = mlirOperationGetAttributeByName(def, string_ref("value"));
        (!a.ptr.is_null() && mlirAttributeIsAInteger(a)).then(|| mlirIntegerAttrGetValueInt(a))
    }
}

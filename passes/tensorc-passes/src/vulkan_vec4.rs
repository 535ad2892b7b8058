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
//! - an outermost `scf.parallel` with no reductions whose body is
//!   `memref.load`, `memref.store`, `arith`, `math` and `affine.apply` ops
//!   and `scf.for` loops made of the same (no calls, no `scf.if`); the
//!   values an `scf.for` carries become vectors (a matmul or convolution in
//!   the form `tensorc-vulkan-accumulate` leaves then computes four output
//!   columns per invocation); its bounds must be the same in all lanes;
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

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-vulkan-vec4";

/// Lanes per access (16 bytes of 32-bit elements).
const LANES: i64 = 4;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Access memory as vector<4xT> in element-wise scf.parallel loops",
        // `vector` (for `vector.broadcast`) has no melior handle; tensorc's
        // context loads every dialect anyway.
        &[
            DialectHandle::scf(),
            DialectHandle::memref(),
            DialectHandle::arith(),
        ],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { vectorize_module(module) };
            true
        },
    )
}

/// Rewrites every eligible loop of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn vectorize_module(module: MlirOperation) -> usize {
    unsafe {
        outermost_ops_named(module, "scf.parallel")
            .into_iter()
            .filter(|&lp| vectorize_loop(lp))
            .count()
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

/// The ops of `block`, terminator last.
unsafe fn block_ops(block: MlirBlock) -> Vec<MlirOperation> {
    unsafe {
        let mut ops = Vec::new();
        let mut op = mlirBlockGetFirstOperation(block);
        while !op.ptr.is_null() {
            ops.push(op);
            op = mlirOperationGetNextInBlock(op);
        }
        ops
    }
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
        let ops = block_ops(body);
        // The terminator (`scf.reduce` without operands) stays.
        let Some(&term) = ops.last() else {
            return false;
        };
        if op_name(term) != "scf.reduce"
            || mlirOperationGetNumOperands(term) != 0
            || mlirOperationGetNumRegions(term) != 0
        {
            return false;
        }
        // The vectorized variable: the last index of the first store.
        let mut first_store = None;
        walk(lp, |op| {
            if op_name(op) == "memref.store" {
                first_store = Some(op);
                return MlirWalkResult_MlirWalkResultInterrupt;
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        let Some(first_store) = first_store else {
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
        let mut varying: Vec<MlirValue> = Vec::new();
        if !check_block(body, iv, &mut varying) {
            return false;
        }
        let mut rw = Rewriter {
            ctx: mlirOperationGetContext(lp),
            lp,
            iv,
            casts: Vec::new(),
            map: Vec::new(),
            dead: Vec::new(),
        };
        rw.set_upper_bound(dims + d, ub / LANES);
        rw.block(body);
        // Old ops only feed each other; erase users first.
        for op in rw.dead.into_iter().rev() {
            mlirOperationDestroy(op);
        }
        true
    }
}

/// Checks the ops of `block` (the parallel body or a nested `scf.for`'s),
/// recording the values that differ per lane in `varying`: any use of `iv`
/// other than as the last index of an access, or a varying value of a type
/// that cannot be a vector lane, fails.
unsafe fn check_block(block: MlirBlock, iv: MlirValue, varying: &mut Vec<MlirValue>) -> bool {
    unsafe {
        let is_varying =
            |varying: &Vec<MlirValue>, v: MlirValue| varying.iter().any(|w| mlirValueEqual(*w, v));
        for op in block_ops(block) {
            let name = op_name(op);
            let operands: Vec<MlirValue> = (0..mlirOperationGetNumOperands(op))
                .map(|i| mlirOperationGetOperand(op, i))
                .collect();
            match name.as_str() {
                "scf.reduce" | "scf.yield" => {
                    if mlirOperationGetNumRegions(op) != 0 {
                        return false;
                    }
                }
                "memref.load" | "memref.store" => {
                    let base = if name == "memref.store" { 1 } else { 0 };
                    let indices = &operands[base + 1..];
                    if indices[..indices.len().saturating_sub(1)]
                        .iter()
                        .any(|&v| mlirValueEqual(v, iv) || is_varying(varying, v))
                        || indices.last().is_some_and(|&v| is_varying(varying, v))
                    {
                        return false;
                    }
                    let through_iv = indices.last().is_some_and(|&v| mlirValueEqual(v, iv));
                    if name == "memref.store" {
                        if !through_iv || !vector_memref(mlirValueGetType(operands[1])) {
                            return false;
                        }
                    } else if through_iv {
                        if !vector_memref(mlirValueGetType(operands[0])) {
                            return false;
                        }
                        varying.push(result(op));
                    }
                }
                // A sequential loop inside (a reduction carried in registers
                // by `tensorc-vulkan-accumulate`): its bounds are the same in
                // every lane; what it carries becomes a vector.
                "scf.for" => {
                    if operands[..3]
                        .iter()
                        .any(|&v| mlirValueEqual(v, iv) || is_varying(varying, v))
                    {
                        return false;
                    }
                    let fbody = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
                    let nres = mlirOperationGetNumResults(op);
                    if fbody.ptr.is_null() || mlirBlockGetNumArguments(fbody) != nres + 1 {
                        return false;
                    }
                    for i in 0..nres {
                        let r = mlirOperationGetResult(op, i);
                        if !lane_type(mlirValueGetType(r)) {
                            return false;
                        }
                        varying.push(r);
                        varying.push(mlirBlockGetArgument(fbody, i + 1));
                    }
                    if !check_block(fbody, iv, varying) {
                        return false;
                    }
                }
                "affine.apply" => {
                    if operands
                        .iter()
                        .any(|&v| mlirValueEqual(v, iv) || is_varying(varying, v))
                    {
                        return false;
                    }
                }
                _ => {
                    if mlirOperationGetNumRegions(op) != 0
                        || !per_lane(&name)
                        || operands.iter().any(|&v| mlirValueEqual(v, iv))
                    {
                        return false;
                    }
                    if operands.iter().any(|&v| is_varying(varying, v)) {
                        if mlirOperationGetNumResults(op) != 1
                            || operands.iter().any(|&v| !lane_type(mlirValueGetType(v)))
                            || !lane_type(mlirValueGetType(result(op)))
                        {
                            return false;
                        }
                        varying.push(result(op));
                    }
                }
            }
        }
        true
    }
}

/// Applies the rewrite `check_block` accepted.
struct Rewriter {
    ctx: MlirContext,
    lp: MlirOperation,
    iv: MlirValue,
    /// Each buffer accessed through `iv` and its vector view.
    casts: Vec<(MlirValue, MlirValue)>,
    /// Old value → what it became.
    map: Vec<(MlirValue, Lane)>,
    /// Replaced ops, erased at the end.
    dead: Vec<MlirOperation>,
}

impl Rewriter {
    unsafe fn set_upper_bound(&mut self, operand: isize, value: i64) {
        unsafe {
            let index = mlirIndexTypeGet(self.ctx);
            let ub = build(
                self.ctx,
                "arith.constant",
                mlirOperationGetLocation(self.lp),
                &[],
                &[index],
                &[("value", attr(self.ctx, &format!("{value} : index")))],
            );
            mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(self.lp), self.lp, ub);
            mlirOperationSetOperand(self.lp, operand, result(ub));
        }
    }

    /// The buffer `m` viewed as `vector<4xT>` elements (one cast per buffer,
    /// before the loop).
    unsafe fn cast_of(&mut self, m: MlirValue) -> MlirValue {
        unsafe {
            if let Some((_, c)) = self.casts.iter().find(|(v, _)| mlirValueEqual(*v, m)) {
                return *c;
            }
            let t = vector_memref_type(mlirValueGetType(m));
            let loc = mlirOperationGetLocation(self.lp);
            let c = build(
                self.ctx,
                "builtin.unrealized_conversion_cast",
                loc,
                &[m],
                &[t],
                &[],
            );
            mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(self.lp), self.lp, c);
            self.casts.push((m, result(c)));
            result(c)
        }
    }

    unsafe fn lane_of(&self, v: MlirValue) -> Lane {
        unsafe {
            self.map
                .iter()
                .find(|(w, _)| mlirValueEqual(*w, v))
                .map_or(Lane::Uniform, |(_, l)| *l)
        }
    }

    /// `v` as a vector, for use by `at`: its vector if it varies, else a
    /// splat constant or a `vector.broadcast` inserted before `at`.
    unsafe fn vector(&mut self, at: MlirOperation, v: MlirValue) -> MlirValue {
        unsafe {
            if let Lane::Varying(x) = self.lane_of(v) {
                return x;
            }
            let t = mlirValueGetType(v);
            let vt = mlirVectorTypeGet(1, [LANES].as_ptr(), t);
            let loc = mlirOperationGetLocation(at);
            let block = mlirOperationGetBlock(at);
            if let Some(def) = defined_by(v, "arith.constant") {
                let a = mlirOperationGetAttributeByName(def, string_ref("value"));
                if !a.ptr.is_null() && (mlirAttributeIsAInteger(a) || mlirAttributeIsAFloat(a)) {
                    let dense = mlirDenseElementsAttrSplatGet(vt, a);
                    let c = build(
                        self.ctx,
                        "arith.constant",
                        loc,
                        &[],
                        &[vt],
                        &[("value", dense)],
                    );
                    mlirBlockInsertOwnedOperationBefore(block, at, c);
                    return result(c);
                }
            }
            let b = build(self.ctx, "vector.broadcast", loc, &[v], &[vt], &[]);
            mlirBlockInsertOwnedOperationBefore(block, at, b);
            result(b)
        }
    }

    unsafe fn block(&mut self, block: MlirBlock) {
        unsafe {
            for op in block_ops(block) {
                self.op(op);
            }
        }
    }

    unsafe fn op(&mut self, op: MlirOperation) {
        unsafe {
            let name = op_name(op);
            let loc = mlirOperationGetLocation(op);
            let block = mlirOperationGetBlock(op);
            let nops = mlirOperationGetNumOperands(op);
            let operands: Vec<MlirValue> =
                (0..nops).map(|i| mlirOperationGetOperand(op, i)).collect();
            match name.as_str() {
                "scf.reduce" | "affine.apply" => {}
                "memref.load" => {
                    if !operands.last().is_some_and(|&v| mlirValueEqual(v, self.iv)) {
                        return; // uniform: stays a scalar load
                    }
                    let m = self.cast_of(operands[0]);
                    let vt = mlirShapedTypeGetElementType(mlirValueGetType(m));
                    let mut new_operands = operands.clone();
                    new_operands[0] = m;
                    let l = build(self.ctx, "memref.load", loc, &new_operands, &[vt], &[]);
                    mlirBlockInsertOwnedOperationBefore(block, op, l);
                    self.map.push((result(op), Lane::Varying(result(l))));
                    self.dead.push(op);
                }
                "memref.store" => {
                    let mut new_operands = operands.clone();
                    new_operands[0] = self.vector(op, operands[0]);
                    new_operands[1] = self.cast_of(operands[1]);
                    let s = build(self.ctx, "memref.store", loc, &new_operands, &[], &[]);
                    mlirBlockInsertOwnedOperationBefore(block, op, s);
                    self.dead.push(op);
                }
                // The loop stays; what it carries becomes vectors in place.
                "scf.for" => {
                    let fbody = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
                    for i in 0..mlirOperationGetNumResults(op) {
                        let init = self.vector(op, operands[3 + i as usize]);
                        mlirOperationSetOperand(op, 3 + i, init);
                        let vt = mlirValueGetType(init);
                        let arg = mlirBlockGetArgument(fbody, i + 1);
                        mlirBlockArgumentSetType(arg, vt);
                        self.map.push((arg, Lane::Varying(arg)));
                        let r = mlirOperationGetResult(op, i);
                        mlirValueSetType(r, vt);
                        self.map.push((r, Lane::Varying(r)));
                    }
                    self.block(fbody);
                }
                "scf.yield" => {
                    for (i, &v) in operands.iter().enumerate() {
                        let x = self.vector(op, v);
                        mlirOperationSetOperand(op, i as isize, x);
                    }
                }
                _ => {
                    if !operands
                        .iter()
                        .any(|&v| matches!(self.lane_of(v), Lane::Varying(_)))
                    {
                        return; // uniform: stays as it is
                    }
                    let new_operands: Vec<MlirValue> =
                        operands.iter().map(|&v| self.vector(op, v)).collect();
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
                    let v = build(self.ctx, &name, loc, &new_operands, &[vt], &attrs);
                    mlirBlockInsertOwnedOperationBefore(block, op, v);
                    self.map.push((result(op), Lane::Varying(result(v))));
                    self.dead.push(op);
                }
            }
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

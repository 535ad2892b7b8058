//! `tensorc-vulkan-accumulate`: keeps a reduction loop's accumulator in a
//! register instead of loading and storing it on every iteration.
//!
//! Why a pass of our own: `convert-linalg-to-parallel-loops` lowers a matmul,
//! a convolution or a reduction to an `scf.for` over the reduction dimension
//! whose body loads the output element, combines and stores it back, on
//! every `k`. On a GPU that is a round trip to the storage buffer per
//! multiply-add (`../shared/notes/vulkan-path.md` §3: the register form is
//! 2.5× faster on lavapipe). Upstream MLIR only hoists such pairs for vector
//! transfers (`hoist_redundant_vector_transfers`), not for the scalar
//! `memref.load`/`memref.store` the Vulkan path has, so this pass does it:
//!
//! ```text
//! scf.for %k = %c0 to %cK step %c1 {          %init = memref.load %C[%i, %j]
//!   %c = memref.load %C[%i, %j]               %r = scf.for %k = ... iter_args(%c = %init) {
//!   ...                                 =>      ...
//!   memref.store %v, %C[%i, %j]                 scf.yield %v
//! }                                           }
//!                                             memref.store %r, %C[%i, %j]
//! ```
//!
//! It is applied innermost loop first, so the nested reduction loops of a
//! convolution (kh, kw, c) all carry the value. A pair is rewritten only when
//! that is provably the same computation (conservative, anything unknown
//! leaves the loop alone):
//! - the load and the store are in the loop body's own block (so both run
//!   on every iteration), the load first, on the same memref value at the
//!   same index values, all defined outside the loop;
//! - nothing else in the loop (nested regions included) reads or writes
//!   memory that may be that memref: every other access is to a buffer with
//!   a different root (a different `memref.alloc`/`alloca`, a different
//!   `memref.get_global`, or a different argument of the function, which on
//!   the Vulkan target is its own device buffer), and every other op is
//!   free of memory effects (arith, math, index, affine.apply, views,
//!   structured scf control flow); anything else, including calls and
//!   copies, keeps the loop as it is;
//! - the trip count is a constant of at least one, so the hoisted load and
//!   the sunk store run exactly when the original ones ran at least once
//!   (with zero iterations the store would write back the loaded value,
//!   harmless, but the index might then be out of bounds).
//!
//! It runs in the Vulkan lowering after `wrap.rs` and before the loops are
//! tiled into workgroups (`tensorc-vulkan/src/lower.rs` `gpu_pipeline`);
//! `convert-gpu-to-spirv` turns the iter_args into `OpPhi`s.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-vulkan-accumulate";

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Carry scf.for load/store pairs at loop-invariant indices as iter_args",
        &[DialectHandle::scf(), DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { accumulate_module(module) };
            true
        },
    )
}

/// Rewrites every eligible loop of `module`; returns how many accumulators
/// now live in registers.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn accumulate_module(module: MlirOperation) -> usize {
    unsafe {
        let loops = ops_named(module, "scf.for");
        // Reversed pre-order: every loop comes after all loops nested in it,
        // so an outer loop sees the inner one already rewritten (its load
        // and store then sit in the outer body, ready to be carried too).
        let mut carried = 0;
        for lp in loops.into_iter().rev() {
            carried += accumulate_loop(lp);
        }
        carried
    }
}

/// A load/store pair to carry.
struct Pair {
    load: MlirOperation,
    store: MlirOperation,
}

/// Carries every eligible pair of `lp` (replacing the loop by one with more
/// iter_args); returns how many.
unsafe fn accumulate_loop(lp: MlirOperation) -> usize {
    unsafe {
        if !runs_at_least_once(lp) {
            return 0;
        }
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0));
        if body.ptr.is_null() {
            return 0;
        }
        // Every memory access in the loop, nested ones included; an op that
        // is neither an access nor known to be free of memory effects ends
        // the attempt.
        let mut accesses: Vec<MlirOperation> = Vec::new();
        let mut unknown = false;
        walk(lp, |op| {
            if mlirOperationEqual(op, lp) {
                return MlirWalkResult_MlirWalkResultAdvance;
            }
            let name = op_name(op);
            if name == "memref.load" || name == "memref.store" {
                accesses.push(op);
            } else if !effect_free(&name) {
                unknown = true;
                return MlirWalkResult_MlirWalkResultInterrupt;
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        if unknown {
            return 0;
        }
        let mut pairs: Vec<Pair> = Vec::new();
        for &load in &accesses {
            if op_name(load) != "memref.load" || !mlirBlockEqual(mlirOperationGetBlock(load), body)
            {
                continue;
            }
            let memref = mlirOperationGetOperand(load, 0);
            if !defined_outside(memref, lp) {
                continue;
            }
            let n = mlirOperationGetNumOperands(load);
            let indices: Vec<MlirValue> =
                (1..n).map(|i| mlirOperationGetOperand(load, i)).collect();
            if !indices.iter().all(|&v| defined_outside(v, lp)) {
                continue;
            }
            // The one store of the same element, in the same block, after.
            let stores: Vec<MlirOperation> = accesses
                .iter()
                .copied()
                .filter(|&s| {
                    op_name(s) == "memref.store"
                        && mlirValueEqual(mlirOperationGetOperand(s, 1), memref)
                })
                .collect();
            let [store] = stores[..] else { continue };
            if !mlirBlockEqual(mlirOperationGetBlock(store), body)
                || !mlirOperationIsBeforeInBlock(load, store)
                || mlirOperationGetNumOperands(store) != n + 1
                || !(0..indices.len()).all(|i| {
                    mlirValueEqual(mlirOperationGetOperand(store, i as isize + 2), indices[i])
                })
            {
                continue;
            }
            // No other access may touch this buffer.
            let clash = accesses.iter().any(|&a| {
                !mlirOperationEqual(a, load)
                    && !mlirOperationEqual(a, store)
                    && may_alias(accessed_memref(a), memref)
            });
            if !clash {
                pairs.push(Pair { load, store });
            }
        }
        if pairs.is_empty() {
            return 0;
        }
        carry(lp, &pairs);
        pairs.len()
    }
}

/// Replaces `lp` by an `scf.for` with one more iter_arg per pair: the load
/// moves before the loop as its initial value, the stored value is yielded,
/// and the store moves after the loop, storing the result.
unsafe fn carry(lp: MlirOperation, pairs: &[Pair]) {
    unsafe {
        let old_results = mlirOperationGetNumResults(lp);
        let inits: Vec<MlirValue> = pairs.iter().map(|p| result(p.load)).collect();
        let new_loop = append_iter_args(lp, &inits, |accs, _| {
            // Uses of the loaded value (all inside the body) read the
            // iteration's incoming value instead; the stored values are
            // yielded.
            for (p, &acc) in pairs.iter().zip(accs) {
                mlirValueReplaceAllUsesOfWith(result(p.load), acc);
            }
            pairs.iter().map(|p| mlirOperationGetOperand(p.store, 0)).collect()
        });
        for p in pairs {
            mlirOperationMoveBefore(p.load, new_loop);
        }
        // Stores after the loop, in pair order (the buffers are distinct).
        let mut after = new_loop;
        for (k, p) in pairs.iter().enumerate() {
            mlirOperationSetOperand(p.store, 0, mlirOperationGetResult(new_loop, old_results + k as isize));
            mlirOperationMoveAfter(p.store, after);
            after = p.store;
        }
    }
}

/// Ops that neither read nor write memory (or only structure control flow
/// whose nested ops are checked themselves).
fn effect_free(name: &str) -> bool {
    let dialect = name.split('.').next().unwrap_or("");
    matches!(dialect, "arith" | "math" | "index" | "ub")
        || matches!(
            name,
            "affine.apply"
                | "affine.min"
                | "affine.max"
                | "scf.for"
                | "scf.if"
                | "scf.yield"
                | "memref.dim"
                | "memref.subview"
                | "memref.collapse_shape"
                | "memref.expand_shape"
                | "memref.cast"
                | "memref.reinterpret_cast"
        )
}

/// The memref a `memref.load` (operand 0) or `memref.store` (operand 1) uses.
unsafe fn accessed_memref(op: MlirOperation) -> MlirValue {
    unsafe {
        let i = if op_name(op) == "memref.store" { 1 } else { 0 };
        mlirOperationGetOperand(op, i)
    }
}

/// Where a buffer comes from, through views.
#[derive(PartialEq, Eq)]
enum Root {
    /// An argument of the function (each its own buffer on the Vulkan target).
    Argument(isize),
    /// A `memref.alloc`/`alloca`, by op identity.
    Allocation(*const std::ffi::c_void),
    /// A `memref.get_global` of this symbol.
    Global(String),
}

unsafe fn root(mut v: MlirValue) -> Option<Root> {
    unsafe {
        loop {
            if mlirValueIsABlockArgument(v) {
                let block = mlirBlockArgumentGetOwner(v);
                let owner = mlirBlockGetParentOperation(block);
                let entry = mlirRegionGetFirstBlock(mlirOperationGetRegion(owner, 0));
                return (op_name(owner) == "func.func" && mlirBlockEqual(block, entry))
                    .then(|| Root::Argument(mlirBlockArgumentGetArgNumber(v)));
            }
            let def = mlirOpResultGetOwner(v);
            match op_name(def).as_str() {
                "memref.alloc" | "memref.alloca" => return Some(Root::Allocation(def.ptr)),
                "memref.get_global" => {
                    let a = mlirOperationGetAttributeByName(def, string_ref("name"));
                    if a.ptr.is_null() || !mlirAttributeIsAFlatSymbolRef(a) {
                        return None;
                    }
                    return Some(Root::Global(from_string_ref(
                        mlirFlatSymbolRefAttrGetValue(a),
                    )));
                }
                "memref.subview"
                | "memref.collapse_shape"
                | "memref.expand_shape"
                | "memref.cast"
                | "memref.reinterpret_cast" => v = mlirOperationGetOperand(def, 0),
                _ => return None,
            }
        }
    }
}

/// False only when the two buffers provably do not overlap.
pub(crate) unsafe fn may_alias(a: MlirValue, b: MlirValue) -> bool {
    unsafe {
        match (root(a), root(b)) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
    }
}

/// True when `v` is defined outside `lp` (so it is the same on every
/// iteration).
unsafe fn defined_outside(v: MlirValue, lp: MlirOperation) -> bool {
    unsafe {
        let mut op = if mlirValueIsABlockArgument(v) {
            mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v))
        } else {
            mlirOpResultGetOwner(v)
        };
        while !op.ptr.is_null() {
            if mlirOperationEqual(op, lp) {
                return false;
            }
            op = mlirOperationGetParentOperation(op);
        }
        true
    }
}

/// The loop's bounds and step are constants with `lb < ub` and `step > 0`.
unsafe fn runs_at_least_once(lp: MlirOperation) -> bool {
    unsafe {
        if mlirOperationGetNumOperands(lp) < 3 {
            return false;
        }
        let c = |i: isize| constant_int(mlirOperationGetOperand(lp, i));
        matches!((c(0), c(1), c(2)), (Some(lb), Some(ub), Some(step)) if lb < ub && step > 0)
    }
}

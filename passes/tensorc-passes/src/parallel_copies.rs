//! `tensorc-parallel-copies`: a large `memref.copy` outside every parallel
//! loop becomes a parallel loop of copies, one slice of its outermost
//! dimension longer than 1 per iteration, which `tensorc-outline-parallel`
//! runs on the thread pool.
//!
//! Why: bufferization leaves some copies of whole operands at the top of a
//! function — a padded temporary's interior (a convolution's `:same`
//! padding, when `tensorc-read-through-pads` cannot read through it), a
//! concatenation's pieces — and a `memref.copy` is one call, run by the
//! calling thread while the others wait. On W9 (the 56×56×64 input copied
//! into its 58×58×64 padded temporary, 800 KB) on two threads the copy was
//! 5.6 % of the samples and the worker spun idle through it: the copy's
//! lines then also had to move to the core that read them next.
//!
//! Which copies: both memrefs of static shape with static strides, at
//! least `MIN_BYTES`, not nested in an `scf.forall` or `scf.parallel`, and
//! whose outermost dimension longer than 1 has slices of at least
//! `MIN_SLICE_BYTES` (so an iteration is worth a claim from the pool).
//! Each iteration copies slice `i` (extent 1 in that dimension) of the
//! source into slice `i` of the target: the same elements, each once.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::PARALLEL_COPIES;

/// Smaller copies stay one call: below this a fork-join costs about what
/// the second thread saves.
const MIN_BYTES: i64 = 256 << 10;

/// Each iteration copies at least this much.
const MIN_SLICE_BYTES: i64 = 4 << 10;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Split large copies outside parallel loops into parallel loops of slice copies",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { parallel_copies(module) };
            true
        },
    )
}

/// Rewrites every eligible copy of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn parallel_copies(module: MlirOperation) -> usize {
    unsafe { rewrite_all(module, "memref.copy", |c| split_dim(c), |&(c, d)| rewrite(c, d)) }
}

/// The copy and the dimension to split it along, when it qualifies.
unsafe fn split_dim(copy: MlirOperation) -> Option<(MlirOperation, usize)> {
    unsafe {
        if nested_in_named(copy, "scf.forall") || nested_in_named(copy, "scf.parallel") {
            return None;
        }
        let (st, dt) = (
            mlirValueGetType(mlirOperationGetOperand(copy, 0)),
            mlirValueGetType(mlirOperationGetOperand(copy, 1)),
        );
        if !mlirTypeIsAMemRef(st) || !mlirTypeIsAMemRef(dt) {
            return None;
        }
        let static_strides = |t: MlirType| memref_strides(t).is_some_and(|s| s.iter().all(|&x| x > 0));
        if !mlirShapedTypeHasStaticShape(st)
            || !mlirShapedTypeHasStaticShape(dt)
            || !static_strides(st)
            || !static_strides(dt)
        {
            return None;
        }
        let dims = shape(st);
        if dims != shape(dt) {
            return None;
        }
        let bytes = i64::from(element_bits(st)?.div_ceil(8));
        let total: i64 = dims.iter().product::<i64>() * bytes;
        let d = dims.iter().position(|&e| e > 1)?;
        let slice: i64 = dims[d + 1..].iter().product::<i64>() * bytes;
        (total >= MIN_BYTES && slice >= MIN_SLICE_BYTES).then_some((copy, d))
    }
}

/// Replaces `copy` by an `scf.forall` over dimension `d` whose iterations
/// copy one slice each (written as a helper function, parsed, and moved in).
unsafe fn rewrite(copy: MlirOperation, d: usize) {
    unsafe {
        let ctx = mlirOperationGetContext(copy);
        let (src, dst) = (mlirOperationGetOperand(copy, 0), mlirOperationGetOperand(copy, 1));
        let (st, dt) = (mlirValueGetType(src), mlirValueGetType(dst));
        let dims = shape(st);
        let element = print_type(mlirShapedTypeGetElementType(st));
        let list = |v: &[String]| v.join(", ");
        let offsets: Vec<String> = (0..dims.len()).map(|e| if e == d { "%i".into() } else { "0".into() }).collect();
        let sizes: Vec<String> = dims.iter().enumerate().map(|(e, &x)| if e == d { "1".into() } else { x.to_string() }).collect();
        let ones = vec!["1".to_string(); dims.len()];
        let slice_type = |t: MlirType| {
            let strides: Vec<String> = memref_strides(t).expect("checked").iter().map(i64::to_string).collect();
            format!("memref<{}x{element}, strided<[{}], offset: ?>>", sizes.join("x"), list(&strides))
        };
        let (ss, ds) = (slice_type(st), slice_type(dt));
        let (sts, dts) = (print_type(st), print_type(dt));
        let (o, z, u) = (list(&offsets), list(&sizes), list(&ones));
        let text = format!(
            "func.func @tensorc_parallel_copy(%src: {sts}, %dst: {dts}) {{\n\
             \x20 scf.forall (%i) in ({n}) {{\n\
             \x20   %s = memref.subview %src[{o}] [{z}] [{u}] : {sts} to {ss}\n\
             \x20   %d = memref.subview %dst[{o}] [{z}] [{u}] : {dts} to {ds}\n\
             \x20   memref.copy %s, %d : {ss} to {ds}\n\
             \x20 }}\n\
             \x20 return\n\
             }}",
            n = dims[d]
        );
        let helper = mlirOperationCreateParse(ctx, string_ref(&text), string_ref(NAME));
        if helper.ptr.is_null() {
            // Not expected (the types come from a verified op); the copy
            // then stays one call.
            return;
        }
        let entry = mlirRegionGetFirstBlock(mlirOperationGetRegion(helper, 0));
        mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(entry, 0), src);
        mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(entry, 1), dst);
        // The forall is the block's first op, the `return` its last.
        let forall = mlirBlockGetFirstOperation(entry);
        mlirOperationMoveBefore(forall, copy);
        mlirOperationDestroy(copy);
        mlirOperationDestroy(helper);
    }
}

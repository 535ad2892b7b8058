//! `tensorc-max-tree`: the tree that combines the lanes of one row's
//! vector for a `maximumf` or `minimumf` reduction compares and selects
//! (`a > b ? a : b`, one `vmaxps` on x86) instead of combining
//! NaN-propagating, and one check of the row's vector for NaN puts the NaN
//! back: when any lane of the vector is NaN, the reduced value is NaN.
//!
//! Why: x86 has no NaN-propagating maximum. `arith-expand` writes each
//! `maximumf` as two compares and two selects (`vcmpunordps`,
//! `vcmpleps`, `korw`, a masked move): four instructions and about five
//! cycles of latency a step, on the path from a row's values to its
//! maximum. Softmax over short rows reduces one row per step of its fused
//! row chain and needs the maximum at once (rows of 16–64: 0.70–0.94× XLA
//! before). `a > b ? a : b` is `vmaxps` (LLVM matches the select; its
//! NaN and signed-zero behaviour is the select's), two cycles; the NaN
//! check (`vcmpunordps` of the row's vector and a mask test) runs beside
//! the tree.
//!
//! Same results: without NaN lanes both trees compute the maximum of the
//! same values (`a > b ? a : b` and `arith-expand`'s form differ only in
//! which zero they return for `max(+0, −0)`, and neither orders the two
//! zeros); with a NaN lane the reduction's value is NaN either way. The
//! reduction itself (the last step, with the accumulator) keeps its kind.
//!
//! What it matches: a `vector.multi_reduction <maximumf|minimumf>` of f32
//! or f64 to a single element whose reduced value is computed, in its
//! block, from one 1-D vector `X` of 4 to 64 lanes by lane-moving ops and
//! the kind's `arith` op only, covering every lane of `X`
//! (`lane_per_row::follow_lanes`), the tree's values used nowhere else.
//!
//! It runs right after `tensorc-lane-per-row` (which removes the trees of
//! the loops it rewrites).

use crate::external_pass::{PassId, module_pass};
use crate::lane_per_row::{combiner, follow_lanes, row_vector};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-max-tree";

/// The most lanes of a row's vector: the 64 partial results a long row's
/// reduction keeps (four 512-bit vectors of f32, `reduction_schedule.rs`),
/// whose tree starts with two levels on 16-lane quarters. Session 29,
/// softmax over rows of 1024 (Zen 5, AVX-512, one thread, L2-resident
/// rows, alternated in one process): 210–214 → 199–203 ns a row.
const MAX_LANES: i64 = 64;

/// `arith.cmpf` predicates (`arith::CmpFPredicate`).
const OGT: i64 = 2;
const OLT: i64 = 4;
const UNO: i64 = 14;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Max/min trees over a row's lanes as compare-selects plus one NaN check",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { cheap_max_trees(module) };
            true
        },
    )
}

/// A reduction whose tree the pass rewrites.
struct Tree {
    reduction: MlirOperation,
    x: MlirValue,
    /// The tree's `maximumf`/`minimumf` ops.
    combines: Vec<MlirOperation>,
    /// The compare that picks the first operand (`>` for a maximum).
    predicate: i64,
}

/// Rewrites every tree that matches (module docs) in `module`; returns how
/// many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn cheap_max_trees(module: MlirOperation) -> usize {
    unsafe { rewrite_all(module, "vector.multi_reduction", |r| find_tree(r), |t| rewrite(t)) }
}

unsafe fn find_tree(reduction: MlirOperation) -> Option<Tree> {
    unsafe {
        let kind = mlirOperationGetAttributeByName(reduction, string_ref("kind"));
        if kind.ptr.is_null() {
            return None;
        }
        let combine = combiner(&print_attr(kind))?;
        let predicate = match combine {
            "arith.maximumf" => OGT,
            "arith.minimumf" => OLT,
            _ => return None,
        };
        let src = mlirOperationGetOperand(reduction, 0);
        let st = mlirValueGetType(src);
        let bits = element_bits(st)?;
        if !mlirTypeIsAFloat(mlirShapedTypeGetElementType(st)) || !(bits == 32 || bits == 64) {
            return None;
        }
        // One element out: the whole reduced value is one row's.
        let rt = mlirValueGetType(result(reduction));
        if mlirTypeIsAVector(rt)
            && shape(rt).iter().product::<i64>() != 1
        {
            return None;
        }
        let block = mlirOperationGetBlock(reduction);
        let ops = block_ops(block);
        let x = row_vector(&ops, src, combine, block)?;
        let xt = mlirValueGetType(x);
        let lanes = mlirShapedTypeGetDimSize(xt, 0);
        if mlirShapedTypeGetRank(xt) != 1 || !(4..=MAX_LANES).contains(&lanes) {
            return None;
        }
        let (tail, _) = follow_lanes(&ops, x, lanes, src, combine, reduction)?;
        let combines: Vec<MlirOperation> = tail.into_iter().filter(|&op| op_name(op) == combine).collect();
        (!combines.is_empty()).then_some(Tree { reduction, x, combines, predicate })
    }
}

unsafe fn rewrite(t: &Tree) {
    unsafe {
        for &op in &t.combines {
            let ctx = mlirOperationGetContext(op);
            let loc = mlirOperationGetLocation(op);
            let (a, b) = (mlirOperationGetOperand(op, 0), mlirOperationGetOperand(op, 1));
            let pick = cmpf(op, t.predicate, a, b);
            let ty = mlirValueGetType(a);
            let chosen = insert_before(op, build(ctx, "arith.select", loc, &[pick, a, b], &[ty], &[]));
            mlirValueReplaceAllUsesOfWith(result(op), chosen);
            mlirOperationDestroy(op);
        }
        // NaN in any lane of the row: the reduced value is NaN.
        let r = t.reduction;
        let ctx = mlirOperationGetContext(r);
        let loc = mlirOperationGetLocation(r);
        let unordered = cmpf(r, UNO, t.x, t.x);
        let any = insert_before(
            r,
            build(
                ctx,
                "vector.reduction",
                loc,
                &[unordered],
                &[mlirIntegerTypeGet(ctx, 1)],
                &[("kind", attr(ctx, "#vector.kind<or>"))],
            ),
        );
        let src = mlirOperationGetOperand(r, 0);
        let st = mlirValueGetType(src);
        let nans = float_constant(r, st, f64::NAN);
        let guarded = insert_before(r, build(ctx, "arith.select", loc, &[any, nans, src], &[st], &[]));
        mlirOperationSetOperand(r, 0, guarded);
    }
}

//! `tensorc-late-accumulate`: a register tile's accumulators start at zero,
//! the tile of C is prefetched before its k loop and added in after it.
//!
//! Why: the matmul schedules hoist a register tile's accumulators into the
//! iter_args of its k loop, so each tile begins by loading its part of C
//! and can issue no FMA before those loads arrive. In the packed schedule
//! (`packed_matmul.rs`) a C tile is revisited once per K block, after every
//! other row panel went through the cache in between: each tile start
//! waited for 16 cache lines from L3 or memory. On W3 (2048³, one thread)
//! about 10 % of the samples sat on those loads. Starting the accumulators
//! at zero, prefetching the tile's lines before the loop and adding C once
//! after it (as BLIS kernels do) gives the prefetches the whole k loop
//! (256 steps of 16 FMAs) to land: W3 as an AOT library went from 80.4 to
//! 76.5 ms, one thread, old and new alternated in the same minutes
//! (docs/passes.md).
//!
//! The sum changes association: `C + (Σ_k a·b)` instead of
//! `(C + a₀b₀) + a₁b₁ …`, a floating-point reassociation across K blocks
//! (integer sums are unchanged). Both orders are fixed per program, so
//! results still do not depend on the thread count.
//!
//! Which loops: an `scf.for` with static bounds of at least `MIN_TRIPS`
//! iterations and one iter_arg that
//! - starts as a `vector.transfer_read` of a memref (maybe through a
//!   `vector.broadcast`), unmasked and in bounds, minor-identity, used only
//!   there;
//! - is only the accumulator of one `vector.contract` of kind add (maybe
//!   through a `vector.extract`) whose result is yielded (maybe through a
//!   `vector.broadcast`);
//! - ends in a `vector.transfer_write` (maybe through a `vector.extract`)
//!   to the same memref at the same indices with the same map;
//!
//! and whose body only reads memory (`READ_ONLY_OPS`), so the read of C can
//! move after it. It runs after bufferization (prefetches take a memref),
//! before the clean-up `canonicalize,cse`, which folds the broadcast and
//! extract pairs this leaves behind.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::HashMap;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-late-accumulate";

/// Shorter loops are left alone: the prefetches would not land before the
/// add, and the unchanged loop loses nothing.
pub const MIN_TRIPS: i64 = 32;

/// At most this many cache lines are prefetched per tile (an 8×32 f32 tile
/// is 16 lines); a larger accumulator is not a register tile.
const MAX_LINES: usize = 32;

/// Ops a k loop may hold: none writes memory.
const READ_ONLY_OPS: &[&str] = &[
    "vector.transfer_read",
    "vector.load",
    "vector.broadcast",
    "vector.extract",
    "vector.contract",
    "vector.outerproduct",
    "vector.fma",
    "vector.shape_cast",
    "vector.transpose",
    "memref.load",
    "memref.subview",
    "memref.expand_shape",
    "memref.collapse_shape",
    "affine.apply",
    "scf.yield",
];

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Start register-tile accumulators at zero; prefetch C before the k loop, add it after",
        &[DialectHandle::arith(), DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { accumulate_late(module) };
            true
        },
    )
}

/// Rewrites every eligible loop of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn accumulate_late(module: MlirOperation) -> usize {
    unsafe {
        ops_named(module, "scf.for")
            .into_iter()
            .filter_map(|l| find_tile(l))
            .map(|t| rewrite(&t))
            .count()
    }
}

/// A matched k loop and the ops around it.
struct Tile {
    lp: MlirOperation,
    /// The read of C and the broadcast of it that feeds the loop, if any.
    read: MlirOperation,
    widen: Option<MlirOperation>,
    /// The op that takes the loop's result: the write of C or an extract
    /// feeding it.
    user: MlirOperation,
    user_operand: isize,
}

/// `v`, or the source of the single-use `name` op (a broadcast or
/// extract) that defines it.
unsafe fn through(v: MlirValue, name: &str) -> (MlirValue, Option<MlirOperation>) {
    unsafe {
        match defined_by(v, name) {
            Some(op) if sole_use(v).is_some() => (mlirOperationGetOperand(op, 0), Some(op)),
            _ => (v, None),
        }
    }
}

unsafe fn find_tile(lp: MlirOperation) -> Option<Tile> {
    unsafe {
        // lb, ub, step and exactly one iter_arg.
        if mlirOperationGetNumOperands(lp) != 4 || mlirOperationGetNumResults(lp) != 1 {
            return None;
        }
        let (lb, ub, step) = constant_bounds(lp)?;
        if step <= 0 || (ub - lb) / step < MIN_TRIPS {
            return None;
        }
        let init = mlirOperationGetOperand(lp, 3);
        let (src, widen) = through(init, "vector.broadcast");
        let read = defined_by(src, "vector.transfer_read")?;
        sole_use(src)?;
        if !simple_transfer(read, 0)
            || mlirOperationGetBlock(read).ptr != mlirOperationGetBlock(lp).ptr
            || !reads_only(lp)
            || !accumulates(lp)
        {
            return None;
        }
        let (user, user_operand) = sole_use(mlirOperationGetResult(lp, 0))?;
        let write = if op_name(user) == "vector.extract" {
            sole_use(result(user)).map(|(w, _)| w)?
        } else {
            user
        };
        if op_name(write) != "vector.transfer_write"
            || !simple_transfer(write, 1)
            || mlirOperationGetBlock(write).ptr != mlirOperationGetBlock(lp).ptr
            || !same_place(read, write)
        {
            return None;
        }
        Some(Tile {
            lp,
            read,
            widen,
            user,
            user_operand,
        })
    }
}

/// Whether every op in the loop's body (nested ones too) only reads memory.
unsafe fn reads_only(lp: MlirOperation) -> bool {
    let mut ok = true;
    unsafe {
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0));
        let mut op = mlirBlockGetFirstOperation(body);
        while !op.ptr.is_null() {
            walk(op, |o| {
                let name = op_name(o);
                if !(READ_ONLY_OPS.contains(&name.as_str()) || name.starts_with("arith.")) {
                    ok = false;
                }
                MlirWalkResult_MlirWalkResultAdvance
            });
            op = mlirOperationGetNextInBlock(op);
        }
    }
    ok
}

/// Whether the iter_arg is only the accumulator of one additive
/// `vector.contract` whose result (maybe widened back) is what the loop
/// yields.
unsafe fn accumulates(lp: MlirOperation) -> bool {
    unsafe {
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0));
        let acc = mlirBlockGetArgument(body, 1);
        let Some((mut user, mut at)) = sole_use(acc) else {
            return false;
        };
        if op_name(user) == "vector.extract" {
            let Some(u) = sole_use(result(user)) else {
                return false;
            };
            (user, at) = u;
        }
        let kind = mlirOperationGetAttributeByName(user, string_ref("kind"));
        if op_name(user) != "vector.contract"
            || at != 2
            || kind.ptr.is_null()
            || !print_attr(kind).contains("add")
        {
            return false;
        }
        let Some((mut next, _)) = sole_use(result(user)) else {
            return false;
        };
        if op_name(next) == "vector.broadcast" {
            let Some((n, _)) = sole_use(result(next)) else {
                return false;
            };
            next = n;
        }
        op_name(next) == "scf.yield" && mlirOperationGetParentOperation(next).ptr == lp.ptr
    }
}

/// The prefetches of every cache line the read of C covers, before the
/// loop; none when there are more than `MAX_LINES`.
unsafe fn prefetch(t: &Tile) {
    unsafe {
        let (mem, idx, _) = place(t.read, 0);
        let vt = mlirValueGetType(result(t.read));
        let vrank = mlirShapedTypeGetRank(vt) as usize;
        let shape: Vec<i64> = (0..vrank)
            .map(|d| mlirShapedTypeGetDimSize(vt, d as isize))
            .collect();
        if vrank == 0 || vrank > idx.len() {
            return;
        }
        let per_line = elements_per_line(vt);
        let lines_per_row = (shape[vrank - 1] + per_line - 1) / per_line;
        let rows: i64 = shape[..vrank - 1].iter().product();
        if (rows * lines_per_row) as usize > MAX_LINES {
            return;
        }
        let ctx = mlirOperationGetContext(t.lp);
        let loc = mlirOperationGetLocation(t.lp);
        let index = mlirIndexTypeGet(ctx);
        let first = idx.len() - vrank;
        // Index constants made so far, so each offset has one.
        let mut constants: HashMap<i64, MlirValue> = HashMap::new();
        let mut constant = |v: i64| {
            *constants
                .entry(v)
                .or_insert_with(|| index_constant(t.lp, v))
        };
        // Index + offset sums made so far, by dimension and offset.
        let mut sums: HashMap<(usize, i64), MlirValue> = HashMap::new();
        for r in 0..rows {
            // The row's offsets along the vector's leading dimensions.
            let mut rest = r;
            let mut offsets = vec![0i64; vrank];
            for d in (0..vrank - 1).rev() {
                offsets[d] = rest % shape[d];
                rest /= shape[d];
            }
            for line in 0..lines_per_row {
                offsets[vrank - 1] = line * per_line;
                let mut operands = vec![mem];
                for (d, &i) in idx.iter().enumerate() {
                    let off = if d >= first { offsets[d - first] } else { 0 };
                    operands.push(match (off, constant_int(i)) {
                        (0, _) => i,
                        (_, Some(base)) => constant(base + off),
                        _ => match sums.get(&(d, off)) {
                            Some(&v) => v,
                            None => {
                                let c = constant(off);
                                let v = insert_before(
                                    t.lp,
                                    build(ctx, "arith.addi", loc, &[i, c], &[index], &[]),
                                );
                                sums.insert((d, off), v);
                                v
                            }
                        },
                    });
                }
                let p = read_prefetch(ctx, loc, &operands);
                mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(t.lp), t.lp, p);
            }
        }
    }
}

unsafe fn rewrite(t: &Tile) {
    unsafe {
        prefetch(t);
        let ctx = mlirOperationGetContext(t.lp);
        let loc = mlirOperationGetLocation(t.lp);
        let ty = mlirValueGetType(mlirOperationGetOperand(t.lp, 3));
        let float = mlirTypeIsAFloat(mlirShapedTypeGetElementType(ty));
        let zero = zero_vector_before(t.lp, ty);
        mlirOperationSetOperand(t.lp, 3, zero);
        // C after the loop (the body writes no memory), widened like the
        // loop's value, added to the loop's sum.
        mlirOperationMoveAfter(t.read, t.lp);
        let mut c_op = t.read;
        if let Some(w) = t.widen {
            mlirOperationMoveAfter(w, t.read);
            c_op = w;
        }
        let add = build(
            ctx,
            if float { "arith.addf" } else { "arith.addi" },
            loc,
            &[mlirOperationGetResult(t.lp, 0), result(c_op)],
            &[ty],
            &[],
        );
        mlirBlockInsertOwnedOperationAfter(mlirOperationGetBlock(t.lp), c_op, add);
        mlirOperationSetOperand(t.user, t.user_operand, result(add));
    }
}

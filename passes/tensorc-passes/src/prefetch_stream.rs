//! `tensorc-prefetch-stream`: a reduction loop that streams a long
//! contiguous run of memory prefetches `AHEAD_BYTES` ahead of its reads.
//!
//! Why: a full reduction (W7: `sum` of 64M f32, split into 64 rows of 1M
//! for threads) reads each row once, in order, and does almost nothing
//! with it; one core then reads only as fast as the hardware prefetchers
//! keep lines in flight. A C loop of the same shape (four 16-lane
//! accumulators, 64 rows of 4 MiB, 2 MiB-aligned, one thread) read
//! 40.6–41.3 GB/s without software prefetches and 44.2–45.3 GB/s with one
//! `prefetcht0` 4 KiB ahead per 256 bytes read (three rounds alternated in
//! the same minutes; one per line, 2–16 KiB ahead or into L2 only all
//! measured 43.5–45 GB/s), and tensorc's W7 read like the first. XLA's sum
//! of the same vector read 43 GB/s where tensorc's read 40.
//!
//! Which loops: an `scf.for` with constant bounds that carries a vector
//! (a reduction's partial results) and whose body reads
//! `vector.transfer_read %m[%i.., %j]` — a 1-D vector, `%m` a memref of
//! static shape whose last dimension has stride 1, `%j` the loop's
//! induction variable, the other indices defined outside the loop — over a
//! run of at least `MIN_RUN_BYTES` (the loop's range times the element
//! size): rows that long come from memory, not from a cache another pass
//! filled. Each such read gets one `memref.prefetch` per iteration of the
//! element `AHEAD_BYTES` further along its row. No address may leave the
//! row, so the loop is split where the first prefetch would: the
//! iterations before prefetch, a copy of the loop without prefetches runs
//! the last ones (`add_prefetch` says why not a clamp). Loops already
//! holding a prefetch (the row loops of `tensorc-prefetch-rows`) are left
//! alone. Prefetches change no value.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::PREFETCH_STREAM;

/// How far ahead of a read its prefetch goes (bytes).
pub const AHEAD_BYTES: i64 = 4096;

/// The shortest run a loop must read to get prefetches (bytes): well past
/// L1 and the distance ahead.
pub const MIN_RUN_BYTES: i64 = 64 * 1024;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Prefetch ahead in reduction loops that stream long contiguous runs",
        &[DialectHandle::arith(), DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { prefetch_stream(module) };
            true
        },
    )
}

/// Adds the prefetches to every eligible loop of `module` (module docs);
/// returns how many reads got one.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn prefetch_stream(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for lp in ops_named(module, "scf.for") {
            let reads = streamed_reads(lp);
            let Some((lb, ub, step)) = constant_bounds(lp) else { continue };
            // The first iteration whose prefetch of some read would leave its row.
            let split = reads
                .iter()
                .map(|&read| {
                    let (ahead, last) = reach(read);
                    let inside = last - ahead - lb; // j − lb for the last j inside
                    if inside < 0 { lb } else { lb + (inside / step + 1) * step }
                })
                .min()
                .unwrap_or(ub);
            if split <= lb {
                continue;
            }
            if split < ub {
                split_off_tail(lp, split);
            }
            for read in reads {
                add_prefetch(lp, read);
                count += 1;
            }
        }
        count
    }
}

/// The reads of loop `lp` that get a prefetch (module docs).
unsafe fn streamed_reads(lp: MlirOperation) -> Vec<MlirOperation> {
    unsafe {
        let Some((lb, ub, step)) = constant_bounds(lp) else { return Vec::new() };
        let carries_vector = (0..mlirOperationGetNumResults(lp))
            .any(|i| mlirTypeIsAVector(mlirValueGetType(mlirOperationGetResult(lp, i))));
        let ops = block_ops(body(lp));
        if step <= 0 || !carries_vector || ops.iter().any(|&op| op_name(op) == "memref.prefetch") {
            return Vec::new();
        }
        let j = iv(lp);
        ops.into_iter()
            .filter(|&op| op_name(op) == "vector.transfer_read")
            .filter(|&op| {
                streams_along(op, j, lp) && stored_bytes(op).is_some_and(|bytes| (ub - lb) * bytes >= MIN_RUN_BYTES)
            })
            .collect()
    }
}

/// The bytes one element `read` reads takes in memory (booleans are
/// stored a byte each), for floats and integers.
unsafe fn stored_bytes(read: MlirOperation) -> Option<i64> {
    unsafe { element_bits(mlirValueGetType(result(read))).map(|bits| i64::from(bits.max(8)) / 8) }
}

/// Whether `read` is `%m[%i.., %j]` of a 1-D vector from a static memref
/// whose last stride is 1, `%j` the loop's induction variable and every
/// other index defined outside `lp`.
unsafe fn streams_along(read: MlirOperation, j: MlirValue, lp: MlirOperation) -> bool {
    unsafe {
        let m = mlirOperationGetOperand(read, 0);
        let t = mlirValueGetType(m);
        if !mlirTypeIsAMemRef(t)
            || !mlirShapedTypeHasStaticShape(t)
            || mlirShapedTypeGetRank(mlirValueGetType(result(read))) != 1
        {
            return false;
        }
        let rank = mlirShapedTypeGetRank(t) as isize;
        // Operands: the memref, `rank` indices, the padding (and a mask).
        if rank == 0 || mlirOperationGetNumOperands(read) < rank + 2 {
            return false;
        }
        let map = mlirOperationGetAttributeByName(read, string_ref("permutation_map"));
        if memref_strides(t).and_then(|s| s.last().copied()) != Some(1)
            || !(map.ptr.is_null() || is_minor_identity(map, rank as usize, 1))
        {
            return false;
        }
        mlirValueEqual(mlirOperationGetOperand(read, rank), j)
            && (1..rank).all(|i| !defined_inside(mlirOperationGetOperand(read, i), lp))
    }
}

/// How many elements ahead `read`'s prefetch goes, and the last column
/// of its memref's rows.
unsafe fn reach(read: MlirOperation) -> (i64, i64) {
    unsafe {
        let t = mlirValueGetType(mlirOperationGetOperand(read, 0));
        let rank = mlirShapedTypeGetRank(t) as isize;
        let ahead = (AHEAD_BYTES / stored_bytes(read).unwrap_or(4)).max(1);
        (ahead, mlirShapedTypeGetDimSize(t, rank - 1) - 1)
    }
}

/// Splits the `scf.for` `lp` at iteration value `split` (a multiple of the
/// step past its lower bound, below its upper bound): `lp` keeps `[lb,
/// split)`, a copy right after it runs `[split, ub)` from `lp`'s results,
/// and takes over every use of them.
unsafe fn split_off_tail(lp: MlirOperation, split: i64) {
    unsafe {
        let results = mlirOperationGetNumResults(lp);
        let users: Vec<Vec<(MlirOperation, isize)>> =
            (0..results).map(|k| uses(mlirOperationGetResult(lp, k))).collect();
        let tail = mlirOperationClone(lp);
        mlirBlockInsertOwnedOperationAfter(mlirOperationGetBlock(lp), lp, tail);
        let at = index_constant(lp, split);
        mlirOperationSetOperand(lp, 1, at);
        mlirOperationSetOperand(tail, 0, at);
        for k in 0..results {
            mlirOperationSetOperand(tail, 3 + k, mlirOperationGetResult(lp, k));
            for &(user, pos) in &users[k as usize] {
                mlirOperationSetOperand(user, pos, mlirOperationGetResult(tail, k));
            }
        }
    }
}

/// Before `read` (in loop `lp`), a prefetch of `m[%i.., %j + ahead]`; the
/// caller has cut off the iterations where that would leave the row.
///
/// Why not one loop with the column clamped by `minsi` (the first form):
/// the clamp is a `cmp`/`cmov` per prefetch, and with it x86 read more
/// slowly than without prefetches at all. `reduce_max` of 4096² f32 (a C
/// copy of the loop, one thread, the forms alternated in one process):
/// 1.35–1.46 ms unclamped, 1.90–2.1 clamped (also with a bound never
/// reached), 1.91–1.99 without prefetches. A branch around each prefetch
/// instead measured like the unclamped form in C, but LLVM laid the
/// prefetches of `sum`'s unrolled loop out as a chain of jumps (4096² f32:
/// 1.17 → 1.51 ms).
unsafe fn add_prefetch(lp: MlirOperation, read: MlirOperation) {
    unsafe {
        let ctx = mlirOperationGetContext(read);
        let loc = mlirOperationGetLocation(read);
        let m = mlirOperationGetOperand(read, 0);
        let rank = mlirShapedTypeGetRank(mlirValueGetType(m)) as isize;
        let (ahead, _) = reach(read);
        let column = index_op(read, "arith.addi", iv(lp), index_constant(read, ahead));
        let mut operands = vec![m];
        operands.extend((1..rank).map(|i| mlirOperationGetOperand(read, i)));
        operands.push(column);
        mlirBlockInsertOwnedOperationBefore(
            mlirOperationGetBlock(read),
            read,
            read_prefetch(ctx, loc, &operands),
        );
    }
}

//! `tensorc-fold-partials`: the levels of a reduction's combining tree stay
//! in registers instead of going through a small buffer.
//!
//! Why: the reduction schedule (`reduction_schedule.rs`) combines a row's
//! 64 partial results as a tree, each level a `linalg` op of its own: after
//! bufferization a level writes its vector (64, 16, 8, … lanes) into a tiny
//! buffer and the next level reads it back in slices in a loop. LLVM turned
//! those round trips into lane-by-lane extracts and inserts (`vpextrq`,
//! `vinsertps`, `vmovd` chains): in W5 (softmax) about a tenth of the
//! samples sat on them. Reading the slices straight out of the written
//! vector (`vector.extract_strided_slice`), combined in the loop's order,
//! gives the same values with no memory in between: W5 1.30 → 1.27 ms
//! (one thread, the same minutes).
//!
//! Which loops: a `vector.transfer_write %v, %buf[i…]` of a 1-D vector of
//! `W` lanes, followed directly by an `scf.for` from 0 to `W` (static, step
//! `w` dividing `W`) with one iter_arg whose body is only
//! `vector.transfer_read %buf[i…, k]` of `w` lanes (same buffer and leading
//! indices, the loop's index last, in bounds), one `arith` op of the read
//! and the iter_arg, and the yield of that op. The loop is replaced by the
//! same op on slices of `%v`: as a tree when the op is associative and
//! commutative (`parallel_mark::COMBINERS`), combined with the loop's
//! start value last unless that is the op's neutral element (`neutral`:
//! -inf for a max, 0 for a sum), else in the loop's order from the start
//! value. A level of
//! four slices was a chain of four dependent ops (the start value first),
//! now two; rows so short that each is a few vectors wait on these chains
//! (softmax 16384×64 0.44 → 0.40 ms, 100000×10 1.44 → 1.29 ms, argmax
//! 100000×10 0.86 → 0.72 ms, one thread; float sums round differently,
//! as any reassociation). The write stays (other code may read the
//! buffer).
//!
//! The peeled remainder step of a split reduction (a row of 37 elements
//! split 16 ways: two full steps, then a step of 5) sits between the
//! partials' write and the first level: it reads the first lanes of the
//! buffer back, combines them with its elements and writes them over
//! the first lanes. A narrow write over part of a wide one, then a read
//! that spans both, is a store-forwarding stall on x86 (one per row: sum
//! of 100000×37 f32 took 0.85 ms, XLA 0.28 ms). So that step is folded
//! first: its read becomes a slice of `%v`
//! (`vector.extract_strided_slice`), its result is put back into `%v`
//! (`vector.insert_strided_slice`), and one write of the whole vector
//! replaces both writes — the buffer ends up holding the same lanes, and
//! the level after it is folded as above.
//!
//! Which remainders: a `vector.transfer_write %v, %buf[0…]` of a whole
//! local buffer (`memref.alloc`/`alloca` of shape 1×…×1×W), later in the
//! same block a write of `r < W` lanes at lane `c` (`c + r ≤ W`; into
//! `%buf` or a unit-stride `memref.subview` of it at static offsets) of
//! one `arith` op of a read of the same lanes and another value, with
//! nothing between but that read, views of `%buf` and region-free ops
//! that do not use the buffer.

use crate::external_pass::{PassId, module_pass};
use crate::parallel_mark::COMBINERS;
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-fold-partials";

/// Loops with more steps are left alone (they are not tree levels).
const MAX_STEPS: i64 = 16;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Combine a written vector's slices in registers instead of reading them back",
        &[DialectHandle::arith()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { fold_partials(module) };
            true
        },
    )
}

/// Rewrites every eligible loop of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn fold_partials(module: MlirOperation) -> usize {
    unsafe {
        let remainders: Vec<Remainder> = ops_named(module, "vector.transfer_write")
            .into_iter()
            .filter_map(|w| remainder(w))
            .collect();
        for r in &remainders {
            fold_remainder(r);
        }
        let found: Vec<Level> = ops_named(module, "scf.for")
            .into_iter()
            .filter_map(|l| level(l))
            .collect();
        for l in &found {
            rewrite(l);
        }
        remainders.len() + found.len()
    }
}

/// A tree level: the loop, the combining op and whether the read is its
/// first operand. The written vector is looked up again when rewriting: it
/// may be the result of the level before, replaced by then.
struct Level {
    lp: MlirOperation,
    combine: MlirOperation,
    read_first: bool,
    width: i64,
    step: i64,
}

unsafe fn level(lp: MlirOperation) -> Option<Level> {
    unsafe {
        if mlirOperationGetNumOperands(lp) != 4 || mlirOperationGetNumResults(lp) != 1 {
            return None;
        }
        let (lb, ub, step) = constant_bounds(lp)?;
        if lb != 0 || step <= 0 || ub % step != 0 || ub / step > MAX_STEPS {
            return None;
        }
        // The write right before the loop.
        let write = previous(lp);
        if write.ptr.is_null() || op_name(write) != "vector.transfer_write" {
            return None;
        }
        let written = mlirOperationGetOperand(write, 0);
        let wt = mlirValueGetType(written);
        if mlirShapedTypeGetRank(wt) != 1 || mlirShapedTypeGetDimSize(wt, 0) != ub {
            return None;
        }
        let buf = mlirOperationGetOperand(write, 1);
        let rank = mlirShapedTypeGetRank(mlirValueGetType(buf)) as isize;
        if mlirOperationGetNumOperands(write) != 2 + rank || !in_bounds(write) {
            return None;
        }
        // The body: read, combine, yield.
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0));
        let (k, acc) = (mlirBlockGetArgument(body, 0), mlirBlockGetArgument(body, 1));
        let read = mlirBlockGetFirstOperation(body);
        if read.ptr.is_null() || op_name(read) != "vector.transfer_read" {
            return None;
        }
        let combine = mlirOperationGetNextInBlock(read);
        if combine.ptr.is_null() {
            return None;
        }
        let yield_op = mlirOperationGetNextInBlock(combine);
        if yield_op.ptr.is_null()
            || op_name(yield_op) != "scf.yield"
            || !mlirOperationGetNextInBlock(yield_op).ptr.is_null()
            || !op_name(combine).starts_with("arith.")
            || mlirOperationGetNumOperands(combine) != 2
            || mlirOperationGetNumResults(combine) != 1
            || mlirOperationGetNumRegions(combine) != 0
            || !mlirValueEqual(mlirOperationGetOperand(yield_op, 0), result(combine))
        {
            return None;
        }
        let (a, b) = (
            mlirOperationGetOperand(combine, 0),
            mlirOperationGetOperand(combine, 1),
        );
        let read_first = mlirValueEqual(a, result(read)) && mlirValueEqual(b, acc);
        if !read_first && !(mlirValueEqual(b, result(read)) && mlirValueEqual(a, acc)) {
            return None;
        }
        // read %buf[same leading indices, k] of `step` lanes.
        let rt = mlirValueGetType(result(read));
        if mlirOperationGetNumOperands(read) != 2 + rank
            || !mlirValueEqual(mlirOperationGetOperand(read, 0), buf)
            || mlirShapedTypeGetRank(rt) != 1
            || mlirShapedTypeGetDimSize(rt, 0) != step
            || !in_bounds(read)
            || !mlirValueEqual(mlirOperationGetOperand(read, rank), k)
            || constant_int(mlirOperationGetOperand(write, 1 + rank)) != Some(0)
            || (0..rank - 1).any(|d| {
                !mlirValueEqual(
                    mlirOperationGetOperand(read, 1 + d),
                    mlirOperationGetOperand(write, 2 + d),
                )
            })
        {
            return None;
        }
        Some(Level {
            lp,
            combine,
            read_first,
            width: ub,
            step,
        })
    }
}

/// The op before `op` in its block (null for the first).
unsafe fn previous(op: MlirOperation) -> MlirOperation {
    unsafe {
        let mut prev = MlirOperation {
            ptr: std::ptr::null_mut(),
        };
        let mut o = mlirBlockGetFirstOperation(mlirOperationGetBlock(op));
        while !o.ptr.is_null() && o.ptr != op.ptr {
            prev = o;
            o = mlirOperationGetNextInBlock(o);
        }
        prev
    }
}

/// A 1-D transfer with its one dimension in bounds and the default map.
unsafe fn in_bounds(op: MlirOperation) -> bool {
    unsafe {
        let b = mlirOperationGetAttributeByName(op, string_ref("in_bounds"));
        let map = mlirOperationGetAttributeByName(op, string_ref("permutation_map"));
        let mem = if op_name(op) == "vector.transfer_read" {
            0
        } else {
            1
        };
        let rank =
            mlirShapedTypeGetRank(mlirValueGetType(mlirOperationGetOperand(op, mem))) as usize;
        !b.ptr.is_null()
            && print_attr(b) == "[true]"
            && (map.ptr.is_null() || is_minor_identity(map, rank, 1))
    }
}

unsafe fn rewrite(l: &Level) {
    unsafe {
        let slice_type = mlirValueGetType(mlirOperationGetResult(l.lp, 0));
        let written = mlirOperationGetOperand(previous(l.lp), 0);
        let init = mlirOperationGetOperand(l.lp, 3);
        let slices: Vec<MlirValue> = (0..l.width / l.step)
            .map(|i| slice_before(l.lp, written, i * l.step, slice_type))
            .collect();
        // The combining op keeps its attributes (fastmath flags); the
        // read's operand position is kept.
        let combine = |acc: MlirValue, slice: MlirValue| {
            let combined = mlirOperationClone(l.combine);
            let operands = if l.read_first { [slice, acc] } else { [acc, slice] };
            mlirOperationSetOperand(combined, 0, operands[0]);
            mlirOperationSetOperand(combined, 1, operands[1]);
            insert_before(l.lp, combined)
        };
        let acc = if associative(l.combine) {
            // A tree of the slices (log2 of them deep instead of one chain
            // through all), then the start value unless it is the
            // combiner's neutral element.
            let mut level = slices;
            while level.len() > 1 {
                level = level
                    .chunks(2)
                    .map(|pair| if pair.len() == 2 { combine(pair[0], pair[1]) } else { pair[0] })
                    .collect();
            }
            if neutral(init, l.combine) {
                level[0]
            } else {
                combine(init, level[0])
            }
        } else {
            slices.into_iter().fold(init, combine)
        };
        mlirValueReplaceAllUsesOfWith(mlirOperationGetResult(l.lp, 0), acc);
        mlirOperationDestroy(l.lp);
    }
}

/// Whether the combining op `op` may be reassociated into a tree:
/// associative and commutative (floats up to rounding, like every split
/// reduction), the combiners `parallel_mark` splits reductions of.
unsafe fn associative(op: MlirOperation) -> bool {
    unsafe { COMBINERS.contains(&op_name(op).as_str()) }
}

/// Whether `v` is a splat constant that `op` leaves every value alone with:
/// `x op c = x` exactly, NaN and infinities included (±0 for `addf`: the
/// split reduction's partials start from +0 and the result is combined
/// with the output's own start value last, so a sum whose terms are all
/// -0 still ends as that start value makes it, as before).
unsafe fn neutral(v: MlirValue, op: MlirOperation) -> bool {
    unsafe {
        let Some(c) = defined_by(v, "arith.constant") else { return false };
        let value = mlirOperationGetAttributeByName(c, string_ref("value"));
        if value.ptr.is_null() || !mlirAttributeIsADenseElements(value) || !mlirDenseElementsAttrIsSplat(value) {
            return false;
        }
        let splat = mlirDenseElementsAttrGetSplatValue(value);
        if mlirAttributeIsAFloat(splat) {
            let x = mlirFloatAttrGetValueDouble(splat);
            match op_name(op).as_str() {
                "arith.addf" => x == 0.0,
                "arith.mulf" => x == 1.0,
                "arith.maximumf" => x == f64::NEG_INFINITY,
                "arith.minimumf" => x == f64::INFINITY,
                _ => false,
            }
        } else if mlirAttributeIsAInteger(splat) {
            let x = mlirIntegerAttrGetValueInt(splat);
            match op_name(op).as_str() {
                "arith.addi" | "arith.ori" | "arith.xori" | "arith.maxui" => x == 0,
                "arith.muli" => x == 1,
                _ => false,
            }
        } else {
            false
        }
    }
}

/// The lanes of the 1-D vector `v` from `offset` as a value of the 1-D
/// vector type `t` (`vector.extract_strided_slice`), inserted before `at`.
unsafe fn slice_before(at: MlirOperation, v: MlirValue, offset: i64, t: MlirType) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let slice = build(
            ctx,
            "vector.extract_strided_slice",
            mlirOperationGetLocation(at),
            &[v],
            &[t],
            &[
                ("offsets", attr(ctx, &format!("[{offset} : i64]"))),
                ("sizes", attr(ctx, &format!("[{} : i64]", mlirShapedTypeGetDimSize(t, 0)))),
                ("strides", attr(ctx, "[1 : i64]")),
            ],
        );
        insert_before(at, slice)
    }
}

/// A remainder step between the write of a reduction's partials and their
/// first tree level (see the module doc).
struct Remainder {
    /// `vector.transfer_write %v, %buf[0…]` of the whole buffer.
    whole: MlirOperation,
    /// The read of `lanes` lanes at `lane` of the buffer.
    read: MlirOperation,
    /// The write of the combined lanes over the same lanes.
    write: MlirOperation,
    lane: i64,
}

unsafe fn remainder(whole: MlirOperation) -> Option<Remainder> {
    unsafe {
        let v = mlirOperationGetOperand(whole, 0);
        let vt = mlirValueGetType(v);
        let buf = mlirOperationGetOperand(whole, 1);
        let bt = mlirValueGetType(buf);
        if !mlirTypeIsAVector(vt) || mlirShapedTypeGetRank(vt) != 1 || !in_bounds(whole) {
            return None;
        }
        let width = mlirShapedTypeGetDimSize(vt, 0);
        // A local buffer (nothing else can alias it) of exactly the vector.
        let local = ["memref.alloc", "memref.alloca"]
            .iter()
            .any(|n| defined_by(buf, n).is_some());
        let rank = mlirShapedTypeGetRank(bt) as isize;
        if !local
            || !mlirShapedTypeHasStaticShape(bt)
            || (0..rank - 1).any(|d| mlirShapedTypeGetDimSize(bt, d) != 1)
            || mlirShapedTypeGetDimSize(bt, rank - 1) != width
            || mlirOperationGetNumOperands(whole) != 2 + rank
            || (0..rank).any(|d| constant_int(mlirOperationGetOperand(whole, 2 + d)) != Some(0))
        {
            return None;
        }
        let mut read: Option<(MlirOperation, i64)> = None;
        let mut op = mlirOperationGetNextInBlock(whole);
        while !op.ptr.is_null() {
            let name = op_name(op);
            if mlirOperationGetNumRegions(op) != 0 {
                return None;
            }
            if name == "memref.subview" && mlirValueEqual(mlirOperationGetOperand(op, 0), buf) {
                op = mlirOperationGetNextInBlock(op);
                continue;
            }
            if name == "vector.transfer_read" && read.is_none() {
                if let Some(lane) = lane_of(op, 0, buf) {
                    read = Some((op, lane));
                    op = mlirOperationGetNextInBlock(op);
                    continue;
                }
            }
            if name == "vector.transfer_write" {
                if let (Some(lane), Some((r, read_lane))) = (lane_of(op, 1, buf), read) {
                    let n = lanes(mlirOperationGetOperand(op, 0))?;
                    let combine = defining_op(mlirOperationGetOperand(op, 0))?;
                    let p = result(r);
                    // Narrower than the buffer (a full-width one would
                    // be another record's whole write, rewritten twice).
                    let ok = lane == read_lane
                        && n == lanes(p)?
                        && n < width
                        && lane + n <= width
                        && combines(combine, p)
                        && sole_use(p).is_some_and(|(o, _)| o.ptr == combine.ptr)
                        && sole_use(result(combine)).is_some_and(|(o, _)| o.ptr == op.ptr);
                    return ok.then_some(Remainder {
                        whole,
                        read: r,
                        write: op,
                        lane,
                    });
                }
            }
            // Anything else must leave the buffer alone.
            if (0..mlirOperationGetNumOperands(op)).any(|i| touches(mlirOperationGetOperand(op, i), buf)) {
                return None;
            }
            op = mlirOperationGetNextInBlock(op);
        }
        None
    }
}

/// Whether `v` is `buf` or a view of it.
unsafe fn touches(v: MlirValue, buf: MlirValue) -> bool {
    unsafe {
        mlirValueEqual(v, buf)
            || (mlirValueIsAOpResult(v)
                && op_name(mlirOpResultGetOwner(v)).starts_with("memref.")
                && mlirOperationGetNumOperands(mlirOpResultGetOwner(v)) > 0
                && mlirValueEqual(mlirOperationGetOperand(mlirOpResultGetOwner(v), 0), buf))
    }
}

/// The lane of `buf` where the 1-D transfer `op` (memref operand `mem_at`)
/// starts, when it reads or writes `buf` itself at indices 0…0, c or a
/// unit-stride subview of it at static offsets 0…0, c' (indices 0…0, c).
unsafe fn lane_of(op: MlirOperation, mem_at: isize, buf: MlirValue) -> Option<i64> {
    unsafe {
        if !in_bounds(op) {
            return None;
        }
        let (mem, idx, _) = place(op, mem_at);
        if mlirOperationGetNumOperands(op) != mem_at + 1 + idx.len() as isize + (1 - mem_at) {
            return None;
        }
        let idx: Vec<i64> = idx.iter().map(|&i| constant_int(i)).collect::<Option<_>>()?;
        let (last, lead) = idx.split_last()?;
        if lead.iter().any(|&i| i != 0) {
            return None;
        }
        if mlirValueEqual(mem, buf) {
            return Some(*last);
        }
        let view = defined_by(mem, "memref.subview")?;
        if !mlirValueEqual(mlirOperationGetOperand(view, 0), buf) {
            return None;
        }
        let (offsets, _) = subview_offsets(view)?;
        let offsets: Vec<i64> = offsets.into_iter().map(Offset::constant).collect::<Option<_>>()?;
        let (view_last, view_lead) = offsets.split_last()?;
        (view_lead.iter().all(|&o| o == 0) && offsets.len() == idx.len()).then_some(view_last + last)
    }
}

/// The lanes of a 1-D vector value.
unsafe fn lanes(v: MlirValue) -> Option<i64> {
    unsafe {
        let t = mlirValueGetType(v);
        (mlirTypeIsAVector(t) && mlirShapedTypeGetRank(t) == 1).then(|| mlirShapedTypeGetDimSize(t, 0))
    }
}

/// The op that defines `v`, if an op does.
unsafe fn defining_op(v: MlirValue) -> Option<MlirOperation> {
    unsafe { mlirValueIsAOpResult(v).then(|| mlirOpResultGetOwner(v)) }
}

/// Whether `op` is one binary `arith` op with `p` as an operand.
unsafe fn combines(op: MlirOperation, p: MlirValue) -> bool {
    unsafe {
        op_name(op).starts_with("arith.")
            && mlirOperationGetNumOperands(op) == 2
            && mlirOperationGetNumResults(op) == 1
            && mlirOperationGetNumRegions(op) == 0
            && (0..2).any(|i| mlirValueEqual(mlirOperationGetOperand(op, i), p))
    }
}

/// Folds a remainder step into the whole vector (see the module doc).
unsafe fn fold_remainder(r: &Remainder) {
    unsafe {
        let ctx = mlirOperationGetContext(r.whole);
        let loc = mlirOperationGetLocation(r.write);
        let v = mlirOperationGetOperand(r.whole, 0);
        let p = result(r.read);
        let slice = slice_before(r.read, v, r.lane, mlirValueGetType(p));
        mlirValueReplaceAllUsesOfWith(p, slice);
        mlirOperationDestroy(r.read);
        let put = build(
            ctx,
            "vector.insert_strided_slice",
            loc,
            &[mlirOperationGetOperand(r.write, 0), v],
            &[mlirValueGetType(v)],
            &[
                ("offsets", attr(ctx, &format!("[{} : i64]", r.lane))),
                ("strides", attr(ctx, "[1 : i64]")),
            ],
        );
        let put = insert_before(r.write, put);
        let whole = mlirOperationClone(r.whole);
        mlirOperationSetOperand(whole, 0, put);
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(r.write), r.write, whole);
        mlirOperationDestroy(r.write);
        mlirOperationDestroy(r.whole);
    }
}

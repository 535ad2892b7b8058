//! `tensorc-lane-per-row`: a loop that reduces one short row per
//! iteration by a maximum or minimum, each row first gathered into one
//! vector of `L` lanes (4 to 16) and then combined across its lanes, runs
//! `L` rows per iteration instead: the `L` row vectors are combined by a
//! butterfly of shuffles into one vector whose lane `j` is row `j`'s
//! result, combined with the `L` accumulators in one vector read and
//! written once.
//!
//! Why: the reduction schedule reduces a row held in one vector (rows of
//! 14 to 64 elements: `reduce_max` of `f32[100000][16]`) by a tree across
//! its lanes (16 → 4 × 4 → 4 → 2 → 1), every step a NaN-propagating
//! `maximumf` that x86 has no instruction for (two compares and two
//! selects), on 4, 2 and 1 lanes: about 45 instructions per row, four
//! times the sum of the same rows (0.43 against 0.11 ms for 100000 × 16
//! on one thread; XLA 0.11). The butterfly does the same combinations on
//! whole vectors: `L − 1` combinations and `2(L − 1)` shuffles per `L`
//! rows. Maxima and minima do not depend on the order of combination
//! (NaN propagates from any lane), so the result is the same; sums would
//! be reassociated and are left alone (they are fast already).
//!
//! The tree's partial results are also written to scratch buffers nothing
//! reads (the schedule's tree levels before `tensorc-fold-partials`);
//! those writes go, in the loop left for the remaining rows too.
//!
//! What it matches (it checks each point and leaves the loop otherwise):
//! an `scf.for` of step 1 and no results whose body ends by writing one
//! element, `out[…, iv]` (the memref's innermost stride 1, defined
//! outside the loop), with `vector.multi_reduction <kind>` of a value
//! combined with a read of that same element, `kind` a maximum or minimum;
//! the reduced value is computed from one 1-D vector `X` of `L` lanes by
//! `extract_strided_slice`, `broadcast`, `shape_cast` and the kind's
//! `arith` op only, and covers every lane of `X` (checked by following the
//! lanes through those ops); the other ops of the body (which compute `X`)
//! write nothing but scratch buffers nothing reads and do not touch `out`.
//! They are cloned once per row of the step.
//!
//! It runs after `tensorc-merge-chunks` (the loops are final), before
//! `canonicalize` (which removes the scratch buffers left unused).

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::HashMap;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-lane-per-row";

/// The most rows one step takes: the lanes of a 512-bit vector of f32.
/// Narrower elements would clone the row's ops more often than it pays.
const MAX_LANES: i64 = 16;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Reduce short rows by max/min several rows per step, one lane per row",
        &[DialectHandle::arith(), DialectHandle::scf()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { lanes_per_row(module) };
            true
        },
    )
}

/// A loop the pass rewrites.
struct Site {
    lp: MlirOperation,
    /// The row's vector (in the loop body).
    x: MlirValue,
    lanes: i64,
    /// The `arith` op of the reduction's kind.
    combine: &'static str,
    /// The write of the row's result and the read of its accumulator.
    write: MlirOperation,
    /// The ops that compute `x`, in order.
    prefix: Vec<MlirOperation>,
    /// Writes into scratch buffers nothing reads.
    dead: Vec<MlirOperation>,
}

/// Rewrites every loop that matches (module docs) in `module`; returns how
/// many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn lanes_per_row(module: MlirOperation) -> usize {
    unsafe { rewrite_all(module, "scf.for", |lp| find_site(lp), |s| rewrite(s)) }
}

/// The `arith` op that combines two values of a `vector.multi_reduction`
/// of kind `kind` (the printed attribute), for the kinds whose result does
/// not depend on the order of combination.
pub(crate) fn combiner(kind: &str) -> Option<&'static str> {
    let k = kind.trim_start_matches("#vector.kind<").trim_end_matches('>');
    Some(match k {
        "maximumf" => "arith.maximumf",
        "minimumf" => "arith.minimumf",
        "maxnumf" => "arith.maxnumf",
        "minnumf" => "arith.minnumf",
        "maxsi" => "arith.maxsi",
        "minsi" => "arith.minsi",
        "maxui" => "arith.maxui",
        "minui" => "arith.minui",
        _ => return None,
    })
}

/// The buffer a chain of views of `m` starts from (`m` itself when it is
/// not a view).
unsafe fn view_root(m: MlirValue) -> MlirValue {
    unsafe {
        let mut v = m;
        while mlirValueIsAOpResult(v) {
            let op = mlirOpResultGetOwner(v);
            match op_name(op).as_str() {
                "memref.subview"
                | "memref.expand_shape"
                | "memref.collapse_shape"
                | "memref.cast"
                | "memref.reinterpret_cast" => v = mlirOperationGetOperand(op, 0),
                _ => break,
            }
        }
        v
    }
}

/// The `memref.alloc` (or `alloca`) a chain of views of `m` starts from.
unsafe fn alloc_root(m: MlirValue) -> Option<MlirOperation> {
    unsafe {
        let root = view_root(m);
        if !mlirValueIsAOpResult(root) {
            return None;
        }
        let op = mlirOpResultGetOwner(root);
        matches!(op_name(op).as_str(), "memref.alloc" | "memref.alloca").then_some(op)
    }
}

/// Whether `m` is (a view of) a buffer only ever written, viewed or freed:
/// its contents are never read.
unsafe fn write_only(m: MlirValue) -> bool {
    unsafe fn unread(v: MlirValue) -> bool {
        unsafe {
            uses(v).into_iter().all(|(user, at)| match op_name(user).as_str() {
                "vector.transfer_write" | "vector.store" => at == 1,
                "memref.dealloc" => true,
                "memref.subview" | "memref.expand_shape" | "memref.collapse_shape" => unread(result(user)),
                _ => false,
            })
        }
    }
    unsafe { alloc_root(m).is_some_and(|a| unread(result(a))) }
}

/// Whether `op` (and everything nested in it) only computes values, reads
/// memory other than `out`'s buffer, or prefetches: it may run once per
/// row in any order.
unsafe fn pure_row_op(op: MlirOperation, out: MlirValue) -> bool {
    unsafe {
        let mut ok = true;
        walk(op, |inner| {
            let name = op_name(inner);
            let allowed = name.starts_with("arith.")
                || name.starts_with("math.")
                || matches!(
                    name.as_str(),
                    "affine.apply"
                        | "affine.min"
                        | "affine.max"
                        | "vector.transfer_read"
                        | "vector.load"
                        | "vector.extract_strided_slice"
                        | "vector.insert_strided_slice"
                        | "vector.broadcast"
                        | "vector.shape_cast"
                        | "vector.extract"
                        | "vector.insert"
                        | "vector.shuffle"
                        | "vector.splat"
                        | "vector.fma"
                        | "memref.subview"
                        | "memref.load"
                        | "memref.prefetch"
                        | "scf.for"
                        | "scf.yield"
                );
            let touches_out = (0..mlirOperationGetNumOperands(inner)).any(|i| {
                let v = mlirOperationGetOperand(inner, i);
                mlirTypeIsAMemRef(mlirValueGetType(v)) && mlirValueEqual(view_root(v), view_root(out))
            });
            if !allowed || touches_out {
                ok = false;
                return MlirWalkResult_MlirWalkResultInterrupt;
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        ok
    }
}

/// The ops that move lanes between a row's vector and its reduction
/// without combining them (`follow_lanes` says where each lane goes).
const LANE_MOVING: [&str; 3] = ["vector.extract_strided_slice", "vector.broadcast", "vector.shape_cast"];

/// The lanes of `x` each lane of a tail value holds, as bit sets (up to
/// 64 lanes: `tensorc-max-tree` follows trees of 64).
type Lanes = Vec<u64>;

/// Follows `x`'s lanes through the tail ops (in block order) to `src`, the
/// value the reduction reduces; returns the tail ops when every one of
/// them is a lane-moving op or `combine`, every value they make is used
/// only by tail ops, `reduction` or write-only scratch writes (returned
/// too), and `src` holds every lane of `x`.
pub(crate) unsafe fn follow_lanes(
    body: &[MlirOperation],
    x: MlirValue,
    lanes: i64,
    src: MlirValue,
    combine: &str,
    reduction: MlirOperation,
) -> Option<(Vec<MlirOperation>, Vec<MlirOperation>)> {
    unsafe {
        let key = |v: MlirValue| v.ptr as usize;
        let mut held: HashMap<usize, Lanes> = HashMap::new();
        held.insert(key(x), (0..lanes).map(|i| 1u64 << i).collect());
        let mut tail = Vec::new();
        let mut dead = Vec::new();
        for &op in body {
            let operands: Vec<MlirValue> = (0..mlirOperationGetNumOperands(op))
                .map(|i| mlirOperationGetOperand(op, i))
                .collect();
            if !operands.iter().any(|&v| held.contains_key(&key(v))) {
                continue;
            }
            let name = op_name(op);
            let of = |v: MlirValue| held.get(&key(v)).cloned();
            let made: Option<Lanes> = match name.as_str() {
                "vector.extract_strided_slice" => {
                    let from = of(operands[0])?;
                    let (offsets, sizes) = (i64_array(op, "offsets")?, i64_array(op, "sizes")?);
                    let strides = i64_array(op, "strides").unwrap_or_else(|| vec![1]);
                    if offsets.len() != 1 || sizes.len() != 1 || strides != [1] {
                        return None;
                    }
                    let (o, s) = (offsets[0] as usize, sizes[0] as usize);
                    Some(from.get(o..o + s)?.to_vec())
                }
                "vector.broadcast" | "vector.shape_cast" => {
                    let from = of(operands[0])?;
                    let n: i64 = shape(mlirValueGetType(result(op))).iter().product();
                    (n == from.len() as i64).then_some(from)
                }
                n if n == combine => {
                    let (a, b) = (of(operands[0])?, of(operands[1])?);
                    (a.len() == b.len()).then(|| a.iter().zip(&b).map(|(p, q)| p | q).collect())
                }
                "vector.transfer_write" if write_only(operands[1]) && !held.contains_key(&key(operands[1])) => {
                    dead.push(op);
                    continue;
                }
                _ if op.ptr == reduction.ptr => continue,
                _ => return None,
            };
            held.insert(key(result(op)), made?);
            tail.push(op);
        }
        let all = u64::MAX >> (64 - lanes);
        let covered = held.get(&key(src))?.iter().fold(0, |acc, l| acc | l);
        if covered != all {
            return None;
        }
        // Every tail value is used only by the tail, the reduction or a
        // scratch write.
        for &op in &tail {
            for (user, _) in uses(result(op)) {
                let inside = user.ptr == reduction.ptr
                    || tail.iter().any(|t| t.ptr == user.ptr)
                    || dead.iter().any(|d| d.ptr == user.ptr);
                if !inside {
                    return None;
                }
            }
        }
        Some((tail, dead))
    }
}

/// The loop's match (module docs), if it is one.
unsafe fn find_site(lp: MlirOperation) -> Option<Site> {
    unsafe {
        if mlirOperationGetNumResults(lp) != 0 || constant_int(mlirOperationGetOperand(lp, 2)) != Some(1) {
            return None;
        }
        let body_block = body(lp);
        let ops = block_ops(body_block);
        let n = ops.len();
        if n < 4 || mlirOperationGetNumOperands(ops[n - 1]) != 0 {
            return None;
        }
        let write = ops[n - 2];
        if op_name(write) != "vector.transfer_write" || !simple_write_of_one(write) {
            return None;
        }
        let (out, idx, _) = place(write, 1);
        let iv = iv(lp);
        let last = *idx.last()?;
        if !mlirValueEqual(last, iv)
            || defined_inside(out, lp)
            || idx[..idx.len() - 1].iter().any(|&i| defined_inside(i, lp))
            || memref_strides(mlirValueGetType(out)).and_then(|s| s.last().copied()) != Some(1)
        {
            return None;
        }
        let reduction = mlirOpResultGetOwner(mlirOperationGetOperand(write, 0));
        if !mlirValueIsAOpResult(mlirOperationGetOperand(write, 0))
            || op_name(reduction) != "vector.multi_reduction"
            || mlirOperationGetBlock(reduction).ptr != body_block.ptr
        {
            return None;
        }
        let kind = mlirOperationGetAttributeByName(reduction, string_ref("kind"));
        if kind.ptr.is_null() {
            return None;
        }
        let combine = combiner(&print_attr(kind))?;
        let src = mlirOperationGetOperand(reduction, 0);
        let acc = mlirOperationGetOperand(reduction, 1);
        let acc_read = defined_by(acc, "vector.transfer_read")?;
        if mlirOperationGetBlock(acc_read).ptr != body_block.ptr
            || !same_place(acc_read, write)
            || sole_use(acc).is_none()
        {
            return None;
        }
        // The reduced value is `1 × N` reduced along its second dimension.
        let st = mlirValueGetType(src);
        if mlirShapedTypeGetRank(st) != 2 || mlirShapedTypeGetDimSize(st, 0) != 1 {
            return None;
        }
        let dims = i64_array(reduction, "reduction_dims")?;
        if dims != [1] {
            return None;
        }
        // `X`: the one value outside the tail that the tail starts from.
        let body_ops = &ops[..n - 2];
        let x = row_vector(body_ops, src, combine, body_block)?;
        // The row's ops make `X`, once per row.
        if !mlirValueIsAOpResult(x) || !body_ops.iter().any(|o| o.ptr == mlirOpResultGetOwner(x).ptr) {
            return None;
        }
        let xt = mlirValueGetType(x);
        let lanes = mlirShapedTypeGetDimSize(xt, 0);
        if mlirShapedTypeGetRank(xt) != 1
            || !(4..=MAX_LANES).contains(&lanes)
            || lanes & (lanes - 1) != 0
            || !mlirTypeEqual(mlirShapedTypeGetElementType(xt), mlirShapedTypeGetElementType(st))
        {
            return None;
        }
        let (tail, dead) = follow_lanes(body_ops, x, lanes, src, combine, reduction)?;
        let skip = |op: MlirOperation| {
            op.ptr == acc_read.ptr
                || op.ptr == reduction.ptr
                || tail.iter().any(|t| t.ptr == op.ptr)
                || dead.iter().any(|d| d.ptr == op.ptr)
        };
        let mut prefix = Vec::new();
        let mut more_dead = Vec::new();
        for &op in body_ops {
            if skip(op) {
                continue;
            }
            if op_name(op) == "vector.transfer_write" && write_only(mlirOperationGetOperand(op, 1)) {
                more_dead.push(op);
            } else if pure_row_op(op, out) {
                prefix.push(op);
            } else {
                return None;
            }
        }
        let mut dead = dead;
        dead.extend(more_dead);
        // The prefix must not use what the tail makes.
        for &op in &prefix {
            let mut uses_tail = false;
            walk(op, |inner| {
                for i in 0..mlirOperationGetNumOperands(inner) {
                    let v = mlirOperationGetOperand(inner, i);
                    if mlirValueIsAOpResult(v) {
                        let owner = mlirOpResultGetOwner(v);
                        if owner.ptr == acc_read.ptr || tail.iter().any(|t| t.ptr == owner.ptr) {
                            uses_tail = true;
                        }
                    }
                }
                MlirWalkResult_MlirWalkResultAdvance
            });
            if uses_tail {
                return None;
            }
        }
        Some(Site { lp, x, lanes, combine, write, prefix, dead })
    }
}

/// A write of a one-element 1-D vector, in bounds, with no mask and the
/// default map.
unsafe fn simple_write_of_one(write: MlirOperation) -> bool {
    unsafe {
        let vt = mlirValueGetType(mlirOperationGetOperand(write, 0));
        simple_transfer(write, 1) && shape(vt) == [1]
    }
}

/// The value the tail of `src` starts from: walking back from `src`
/// through the lane-moving ops and `combine` ops of the body, the one
/// value reached that such an op of the body does not make (it may come
/// from outside the body). `None` when there are several.
pub(crate) unsafe fn row_vector(
    body: &[MlirOperation],
    src: MlirValue,
    combine: &str,
    block: MlirBlock,
) -> Option<MlirValue> {
    unsafe {
        let in_body = |op: MlirOperation| body.iter().any(|b| b.ptr == op.ptr);
        let mut found: Option<MlirValue> = None;
        let mut todo = vec![src];
        let mut seen = 0;
        while let Some(v) = todo.pop() {
            seen += 1;
            if seen > 4096 {
                return None;
            }
            // The op of the body that makes `v`, if one does.
            let maker = Some(v)
                .filter(|&v| mlirValueIsAOpResult(v))
                .map(|v| mlirOpResultGetOwner(v))
                .filter(|&op| in_body(op));
            let name = maker.map(|op| op_name(op)).unwrap_or_default();
            let moves = LANE_MOVING.contains(&name.as_str());
            let tree = name == combine && mlirTypeIsAVector(mlirValueGetType(v));
            if let Some(op) = maker.filter(|&op| moves || tree && is_tree_op(op, block)) {
                let inputs = if moves { 1 } else { 2 };
                todo.extend((0..inputs).map(|i| mlirOperationGetOperand(op, i)));
            } else {
                match found {
                    Some(f) if !mlirValueEqual(f, v) => return None,
                    _ => found = Some(v),
                }
            }
        }
        found
    }
}

/// Whether a combining op belongs to the tail: both its operands come
/// from lane-moving ops or other combining ops (the tree), not from a
/// loop or a read (a row's running combination over its chunks, which
/// makes `X`).
unsafe fn is_tree_op(op: MlirOperation, block: MlirBlock) -> bool {
    unsafe {
        (0..2).all(|i| {
            let v = mlirOperationGetOperand(op, i);
            mlirValueIsAOpResult(v) && {
                let owner = mlirOpResultGetOwner(v);
                mlirOperationGetBlock(owner).ptr == block.ptr && LANE_MOVING.contains(&op_name(owner).as_str())
                    || op_name(owner) == op_name(op) && is_tree_op(owner, block)
            }
        })
    }
}

/// Clones `op` before `at` with its operands (and those of the ops nested
/// in it) replaced as `map` says; records its results in `map`.
unsafe fn clone_mapped(op: MlirOperation, at: MlirOperation, map: &mut HashMap<usize, MlirValue>) {
    unsafe {
        let copy = mlirOperationClone(op);
        walk(copy, |inner| {
            for i in 0..mlirOperationGetNumOperands(inner) {
                let v = mlirOperationGetOperand(inner, i);
                if let Some(&m) = map.get(&(v.ptr as usize)) {
                    mlirOperationSetOperand(inner, i, m);
                }
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(at), at, copy);
        for r in 0..mlirOperationGetNumResults(op) {
            map.insert(mlirOperationGetResult(op, r).ptr as usize, mlirOperationGetResult(copy, r));
        }
    }
}

/// The shuffle masks of one butterfly level: `rows` rows per input vector
/// of `lanes` lanes, each row's partial results in a block of
/// `lanes / rows`; the outputs hold twice the rows, each in half the block.
/// Combining the two outputs halves every row's partial results.
fn butterfly_masks(lanes: i64, rows: i64) -> (Vec<i64>, Vec<i64>) {
    let block = lanes / rows;
    let half = block / 2;
    let pick = |from: i64, to: i64| -> Vec<i64> {
        [0, lanes]
            .iter()
            .flat_map(|&base| (0..rows).flat_map(move |r| (from..to).map(move |t| base + r * block + t)))
            .collect()
    };
    (pick(0, half), pick(half, block))
}

unsafe fn rewrite(s: &Site) {
    unsafe {
        let lp = s.lp;
        let ctx = mlirOperationGetContext(lp);
        let loc = mlirOperationGetLocation(lp);
        let (lb, ub) = (mlirOperationGetOperand(lp, 0), mlirOperationGetOperand(lp, 1));
        // The rows a whole number of steps cover: lb + (ub − lb) / L · L
        // (a negative count gives at most lb, and neither loop runs).
        let step = index_constant(lp, s.lanes);
        let count = index_op(lp, "arith.subi", ub, lb);
        let steps = index_op(lp, "arith.divsi", count, step);
        let span = index_op(lp, "arith.muli", steps, step);
        let split = index_op(lp, "arith.addi", lb, span);
        let main = empty_for(ctx, loc, lb, split, step);
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(lp), lp, main);
        let main_body = body(main);
        let end = mlirBlockGetTerminator(main_body);
        let r0 = mlirBlockGetArgument(main_body, 0);
        let old_iv = iv(lp);

        let mut rows = Vec::new();
        for j in 0..s.lanes {
            let row = if j == 0 { r0 } else { index_op(end, "arith.addi", r0, index_constant(end, j)) };
            let mut map = HashMap::new();
            map.insert(old_iv.ptr as usize, row);
            for &op in &s.prefix {
                clone_mapped(op, end, &mut map);
            }
            rows.push(*map.get(&(s.x.ptr as usize)).expect("the prefix makes the row vector"));
        }

        let vt = mlirValueGetType(s.x);
        let mut per = 1;
        while rows.len() > 1 {
            let (lo, hi) = butterfly_masks(s.lanes, per);
            let mask = |m: &[i64]| {
                let list: Vec<String> = m.iter().map(|i| i.to_string()).collect();
                attr(ctx, &format!("array<i64: {}>", list.join(", ")))
            };
            let (lo, hi) = (mask(&lo), mask(&hi));
            rows = rows
                .chunks(2)
                .map(|pair| {
                    let shuffle = |m| insert_before(end, build(ctx, "vector.shuffle", loc, &[pair[0], pair[1]], &[vt], &[("mask", m)]));
                    let (a, b) = (shuffle(lo), shuffle(hi));
                    insert_before(end, build(ctx, s.combine, loc, &[a, b], &[vt], &[]))
                })
                .collect();
            per *= 2;
        }

        // The accumulators of the step's rows: one vector read and write.
        let (out, idx, _) = place(s.write, 1);
        let mut at: Vec<MlirValue> = idx[..idx.len() - 1].to_vec();
        at.push(r0);
        let mut operands = vec![out];
        operands.extend(&at);
        let acc = insert_before(end, build(ctx, "vector.load", loc, &operands, &[vt], &[]));
        let total = insert_before(end, build(ctx, s.combine, loc, &[rows[0], acc], &[vt], &[]));
        let mut operands = vec![total, out];
        operands.extend(&at);
        insert_before(end, build(ctx, "vector.store", loc, &operands, &[], &[]));

        // The remaining rows: the loop as it was, from where the steps end,
        // without its scratch writes.
        mlirOperationSetOperand(lp, 0, split);
        for &d in &s.dead {
            mlirOperationDestroy(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn butterfly_masks_split_each_rows_block() {
        // One row per vector of 4: halves of each, first from a then b.
        assert_eq!(butterfly_masks(4, 1), (vec![0, 1, 4, 5], vec![2, 3, 6, 7]));
        // Two rows of two partials: the first partial of each row, then
        // the second.
        assert_eq!(butterfly_masks(4, 2), (vec![0, 2, 4, 6], vec![1, 3, 5, 7]));
        let (lo, hi) = butterfly_masks(16, 4);
        assert_eq!(lo, vec![0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29]);
        assert_eq!(hi, vec![2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31]);
    }

    /// Simulates the butterfly on lane sets: lane `j` of the result holds
    /// exactly row `j`'s lanes.
    #[test]
    fn butterfly_puts_row_j_in_lane_j() {
        for lanes in [4i64, 8, 16] {
            // rows[r][l] = the set {(r, l)} as a bit in a u64 per row.
            let mut rows: Vec<Vec<(i64, u64)>> =
                (0..lanes).map(|r| (0..lanes).map(|l| (r, 1u64 << l)).collect()).collect();
            let mut per = 1;
            while rows.len() > 1 {
                let (lo, hi) = butterfly_masks(lanes, per);
                rows = rows
                    .chunks(2)
                    .map(|p| {
                        let cat: Vec<(i64, u64)> = p[0].iter().chain(&p[1]).cloned().collect();
                        lo.iter()
                            .zip(&hi)
                            .map(|(&a, &b)| {
                                let (ra, la) = cat[a as usize];
                                let (rb, lb) = cat[b as usize];
                                assert_eq!(ra, rb, "a combination mixes rows");
                                (ra, la | lb)
                            })
                            .collect()
                    })
                    .collect();
                per *= 2;
            }
            let full = (1u64 << lanes) - 1;
            for (j, &(r, set)) in rows[0].iter().enumerate() {
                assert_eq!((r, set), (j as i64, full));
            }
        }
    }
}

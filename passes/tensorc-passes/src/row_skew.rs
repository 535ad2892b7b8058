//! `tensorc-row-skew`: in a loop over rows whose last pass over the row
//! reads a scratch row an earlier pass wrote (softmax's division of the
//! `exp`s by their sum), that last pass runs one row late, fused into the
//! earlier pass of the next row.
//!
//! Why: W5 (softmax over rows of 1024) makes four passes per row: the
//! maximum, `exp` of the differences into a scratch row, their sum, and
//! the scratch row divided by the sum into the result. The `exp` pass is
//! bound by the FMA pipes, the division pass by the divider (`vdivps` of 16
//! lanes every 2.5 cycles on this Zen 5), and each ran while the other unit
//! idled: the division was 20–25 % of W5's samples. Fused with the next
//! row's `exp` pass, the divisions run in the shadow of the FMAs. A C model
//! of the four passes on this machine: 180 → 148 ns a row.
//!
//! What is matched, on buffers (an `scf.for` over rows `R`, no iter_args,
//! static bounds, at least two trips):
//! - `D`, the last op of `R`'s body: an `scf.for` without iter_args whose
//!   reads (`vector.transfer_read`, `vector.load`, `memref.load`) all read
//!   one scratch buffer `S` — a `memref.alloc` outside `R`, used outside it
//!   only by its `memref.dealloc`s — and whose writes go to memrefs no
//!   other op of `R` touches;
//! - `B`, the one op of `R`'s body that writes `S`: an `scf.for` without
//!   iter_args with `D`'s static bounds;
//! - the values `D` uses from `R`'s body: the row index and index or view
//!   arithmetic on it (recomputed for the previous row), or non-memref
//!   values computed in `R`'s body itself (the sum: carried to the next
//!   iteration as iter_args).
//!
//! The rewrite: a second scratch buffer `S′`; iteration `i` uses `S` or `S′`
//! by its parity (the current one), and the other holds the previous row's.
//! In every iteration but the first, `B` is replaced by a copy of `B` with
//! the previous row's `D` fused into its body (its reads from the previous
//! buffer, its values carried or recomputed for row `i − 1`); after the
//! loop, `D` runs for the last row. `D`'s writes for row `i − 1` and `B`'s
//! for row `i` go to different memory, and what `D` reads was complete
//! when its row ended, so every store writes what it wrote before. (The
//! scratch row holds a tensor of one iteration, which bufferization gave a
//! buffer reused across iterations: what `D` reads, `B` wrote in the same
//! iteration, and nothing before `B` reads it — checked.)
//! Placed before `tensorc-running-max`, after the loops are outlined.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::HashMap;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::ROW_SKEW;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Run a row loop's last pass one row late, fused into the next row's pass that fills its scratch row",
        &[DialectHandle::arith(), DialectHandle::scf(), DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { skew_rows(module) };
            true
        },
    )
}

/// Rewrites every matching row loop of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn skew_rows(module: MlirOperation) -> usize {
    unsafe {
        // One at a time: a rewrite replaces the row loop, and the loops it
        // makes carry `SKEWED`, so each is rewritten once.
        let mut count = 0;
        loop {
            let mut site = None;
            walk(module, |op| {
                if op_name(op) == "scf.for" && !has_attr(op, SKEWED) {
                    site = find(op);
                    if site.is_some() {
                        return MlirWalkResult_MlirWalkResultInterrupt;
                    }
                }
                MlirWalkResult_MlirWalkResultAdvance
            });
            let Some(site) = site else { return count };
            rewrite(&site);
            count += 1;
        }
    }
}

/// Marks a row loop this pass made.
const SKEWED: &str = "tensorc.skewed";

struct Site {
    rows: MlirOperation,
    producer: MlirOperation,
    last: MlirOperation,
    scratch: MlirValue,
    /// Values `last` uses from the row body, carried to the next iteration.
    carried: Vec<MlirValue>,
    /// Ops of the row body whose results `last` uses (directly or through
    /// each other), recomputed for another row: in body order.
    recomputed: Vec<MlirOperation>,
}

/// Follows views (`memref.subview`, `expand_shape`, `collapse_shape`,
/// `cast`) to the memref they view.
unsafe fn root(v: MlirValue) -> MlirValue {
    unsafe {
        let mut v = v;
        while mlirValueIsAOpResult(v) {
            let def = mlirOpResultGetOwner(v);
            if !is_view(def) {
                break;
            }
            v = mlirOperationGetOperand(def, 0);
        }
        v
    }
}

unsafe fn is_view(op: MlirOperation) -> bool {
    unsafe {
        matches!(
            op_name(op).as_str(),
            "memref.subview" | "memref.expand_shape" | "memref.collapse_shape" | "memref.cast"
        )
    }
}

/// The memref operand a memory op reads (`Some(true, m)`) or writes
/// (`Some(false, m)`); `None` for ops that touch no memory. `Err` for ops
/// whose effects this pass does not know.
unsafe fn access(op: MlirOperation) -> Result<Option<(bool, MlirValue)>, ()> {
    unsafe {
        let name = op_name(op);
        let operand = |i| mlirOperationGetOperand(op, i);
        Ok(match name.as_str() {
            "vector.transfer_read" | "vector.load" | "memref.load" => Some((true, operand(0))),
            "vector.transfer_write" | "vector.store" | "memref.store" => Some((false, operand(1))),
            "memref.prefetch" | "scf.for" | "scf.if" | "scf.yield" => None,
            n if is_view(op) || n.starts_with("arith.") || n.starts_with("math.") || n.starts_with("affine.") => None,
            n if n.starts_with("vector.") && !n.contains("gather") && !n.contains("scatter") && !n.contains("mask") => None,
            _ => return Err(()),
        })
    }
}

unsafe fn find(rows: MlirOperation) -> Option<Site> {
    unsafe {
        let (lb, ub, st) = constant_bounds(rows)?;
        if mlirOperationGetNumResults(rows) != 0 || st <= 0 || (ub - lb + st - 1) / st < 2 {
            return None;
        }
        let ops = block_ops(body(rows));
        let (_, ops) = ops.split_last()?; // the yield
        let (&last, before) = ops.split_last()?;
        if op_name(last) != "scf.for" || mlirOperationGetNumResults(last) != 0 {
            return None;
        }
        let bounds = constant_bounds(last)?;
        // What `last` reads and writes.
        let (mut reads, mut writes) = (Vec::new(), Vec::new());
        let mut known = true;
        walk(last, |op| {
            match access(op) {
                Ok(Some((true, m))) => reads.push(root(m)),
                Ok(Some((false, m))) => writes.push(root(m)),
                Ok(None) => {}
                Err(()) => known = false,
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        let scratch = *reads.first()?;
        if !known || reads.iter().any(|r| !mlirValueEqual(*r, scratch)) || writes.is_empty() {
            return None;
        }
        let alloc = defined_by(scratch, "memref.alloc")?;
        if nested_in(alloc, rows) || writes.iter().any(|w| mlirValueEqual(*w, scratch)) {
            return None;
        }
        // The scratch buffer is used outside the row loop only by its
        // releases; its writers in the loop are one op before `last`.
        for (user, _) in uses(scratch) {
            if !nested_in(user, rows) && op_name(user) != "memref.dealloc" {
                return None;
            }
        }
        let mut producer = None;
        for &op in before {
            let (mut reads_scratch, mut writes_scratch) = (false, false);
            let mut touches_written = false;
            walk(op, |o| {
                if let Ok(Some((read, m))) = access(o) {
                    let m = root(m);
                    reads_scratch |= read && mlirValueEqual(m, scratch);
                    writes_scratch |= !read && mlirValueEqual(m, scratch);
                    touches_written |= writes.iter().any(|w| mlirValueEqual(*w, m));
                }
                MlirWalkResult_MlirWalkResultAdvance
            });
            // Nothing before the producer may read the scratch row (it
            // would read the previous row's, which the skew moves).
            if touches_written || (producer.is_none() && reads_scratch && !writes_scratch) {
                return None;
            }
            if writes_scratch {
                if producer.is_some() {
                    return None;
                }
                producer = Some(op);
            }
        }
        let producer = producer?;
        if op_name(producer) != "scf.for"
            || mlirOperationGetNumResults(producer) != 0
            || constant_bounds(producer) != Some(bounds)
        {
            return None;
        }
        // The values `last` takes from the row body.
        let row_body = body(rows);
        let row = iv(rows);
        let mut used = Vec::new();
        walk(last, |op| {
            for i in 0..mlirOperationGetNumOperands(op) {
                let v = mlirOperationGetOperand(op, i);
                if !mlirValueIsAOpResult(v) {
                    continue;
                }
                let def = mlirOpResultGetOwner(v);
                if mlirOperationGetBlock(def).ptr == row_body.ptr && !used.iter().any(|u: &MlirValue| mlirValueEqual(*u, v)) {
                    used.push(v);
                }
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        let (mut carried, mut recomputed) = (Vec::new(), Vec::new());
        for v in used {
            // Into a copy first: a value that is not recomputable leaves no
            // ops it reached in the list (their clones would be dead).
            let mut trial = recomputed.clone();
            if recomputable(mlirOpResultGetOwner(v), row_body, row, &mut trial) {
                recomputed = trial;
                continue;
            }
            let t = mlirValueGetType(v);
            if mlirTypeIsAMemRef(t) || zero_attr(t).is_none() {
                return None;
            }
            carried.push(v);
        }
        // Recomputed in body order, so each clone's operands come first.
        recomputed.sort_by(|a, b| {
            if a.ptr == b.ptr {
                std::cmp::Ordering::Equal
            } else if mlirOperationIsBeforeInBlock(*a, *b) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        Some(Site { rows, producer, last, scratch, carried, recomputed })
    }
}

/// Whether `op` (in the row body) computes from the row index and values
/// from outside the loop only, by index or view arithmetic; adds it and the
/// ops it needs to `ops`.
unsafe fn recomputable(op: MlirOperation, row_body: MlirBlock, row: MlirValue, ops: &mut Vec<MlirOperation>) -> bool {
    unsafe {
        if ops.iter().any(|o| o.ptr == op.ptr) {
            return true;
        }
        let name = op_name(op);
        let pure = is_view(op)
            || name == "affine.apply"
            || (name.starts_with("arith.")
                && (0..mlirOperationGetNumResults(op)).all(|i| {
                    let t = mlirValueGetType(mlirOperationGetResult(op, i));
                    mlirTypeIsAIndex(t) || mlirTypeIsAInteger(t)
                }));
        if !pure || mlirOperationGetNumRegions(op) != 0 {
            return false;
        }
        for i in 0..mlirOperationGetNumOperands(op) {
            let v = mlirOperationGetOperand(op, i);
            if mlirValueEqual(v, row) {
                continue;
            }
            if mlirValueIsAOpResult(v) {
                let def = mlirOpResultGetOwner(v);
                if mlirOperationGetBlock(def).ptr == row_body.ptr {
                    if !recomputable(def, row_body, row, ops) {
                        return false;
                    }
                    continue;
                }
                if nested_in(def, mlirBlockGetParentOperation(row_body)) {
                    return false;
                }
            } else if mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v)).ptr
                == mlirBlockGetParentOperation(row_body).ptr
            {
                // Another block argument of the row loop (none: no iter_args).
                return false;
            }
        }
        ops.push(op);
        true
    }
}

/// Replaces every operand of `op` and the ops nested in it found in `map`.
unsafe fn remap(op: MlirOperation, map: &HashMap<*const std::ffi::c_void, MlirValue>) {
    unsafe {
        walk(op, |o| {
            for i in 0..mlirOperationGetNumOperands(o) {
                if let Some(&v) = map.get(&mlirOperationGetOperand(o, i).ptr) {
                    mlirOperationSetOperand(o, i, v);
                }
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
    }
}

/// Clones `site.recomputed` before `at` for the row `row`, the scratch
/// buffer `scratch`, adding each clone's results to `map`.
unsafe fn recompute(site: &Site, at: MlirOperation, map: &mut HashMap<*const std::ffi::c_void, MlirValue>) {
    unsafe {
        for &op in &site.recomputed {
            let clone = mlirOperationClone(op);
            remap(clone, map);
            insert_before(at, clone);
            for i in 0..mlirOperationGetNumResults(op) {
                map.insert(mlirOperationGetResult(op, i).ptr, mlirOperationGetResult(clone, i));
            }
        }
    }
}

unsafe fn rewrite(site: &Site) {
    unsafe {
        let ctx = mlirOperationGetContext(site.rows);
        let loc = mlirOperationGetLocation(site.rows);
        let (lb, ub, st) = constant_bounds(site.rows).expect("checked by find");
        let trips = (ub - lb + st - 1) / st;
        // The second scratch buffer, released with the first.
        let alloc = defined_by(site.scratch, "memref.alloc").expect("checked by find");
        let alloc2 = mlirOperationClone(alloc);
        mlirBlockInsertOwnedOperationAfter(mlirOperationGetBlock(alloc), alloc, alloc2);
        let scratch2 = result(alloc2);
        for (user, _) in uses(site.scratch) {
            if op_name(user) == "memref.dealloc" {
                let free = mlirOperationClone(user);
                mlirOperationSetOperand(free, 0, scratch2);
                mlirBlockInsertOwnedOperationAfter(mlirOperationGetBlock(user), user, free);
            }
        }
        // Carried values start as zeros (the first iteration runs no `last`).
        let inits: Vec<MlirValue> = site
            .carried
            .iter()
            .map(|&v| {
                let t = mlirValueGetType(v);
                let value = zero_attr(t).expect("checked by find");
                insert_before(site.rows, build(ctx, "arith.constant", loc, &[], &[t], &[("value", value)]))
            })
            .collect();
        let mut previous = Vec::new();
        let rows = append_iter_args(site.rows, &inits, |args, _| {
            previous = args.to_vec();
            site.carried.clone()
        });
        mlirOperationSetAttributeByName(rows, string_ref(SKEWED), mlirUnitAttrGet(ctx));
        let block = body(rows);
        let first = mlirBlockGetFirstOperation(block);
        let row = iv(rows);
        // Index constants, once each, before the loop.
        let constants = std::cell::RefCell::new(HashMap::new());
        let c = |v: i64| *constants.borrow_mut().entry(v).or_insert_with(|| index_constant(rows, v));
        // This iteration's scratch buffer and the previous one's, by parity.
        let trip = index_op(first, "arith.subi", row, c(lb));
        let trip = index_op(first, "arith.divui", trip, c(st));
        let parity = index_op(first, "arith.remui", trip, c(2));
        let i1 = mlirIntegerTypeGet(ctx, 1);
        let pred = |p: i64| attr(ctx, &format!("{p} : i64"));
        let even = insert_before(first, build(ctx, "arith.cmpi", loc, &[parity, c(0)], &[i1], &[("predicate", pred(0))]));
        let ty = mlirValueGetType(site.scratch);
        let select = |a, b| insert_before(first, build(ctx, "arith.select", loc, &[even, a, b], &[ty], &[]));
        let current = select(site.scratch, scratch2);
        let before = select(scratch2, site.scratch);
        let prev_row = index_op(first, "arith.subi", row, c(st));
        // `last` for the previous row: its values recomputed or carried.
        let mut map: HashMap<*const std::ffi::c_void, MlirValue> = HashMap::new();
        map.insert(row.ptr, prev_row);
        map.insert(site.scratch.ptr, before);
        for (v, p) in site.carried.iter().zip(&previous) {
            map.insert(v.ptr, *p);
        }
        recompute(site, site.producer, &mut map);
        let late = mlirOperationClone(site.last);
        remap(late, &map);
        // The epilogue: `last` for the last row, after the loop.
        let after = mlirOperationGetNextInBlock(rows);
        let mut end_map: HashMap<*const std::ffi::c_void, MlirValue> = HashMap::new();
        end_map.insert(row.ptr, index_constant(after, lb + (trips - 1) * st));
        let last_buffer = if (trips - 1) % 2 == 0 { site.scratch } else { scratch2 };
        end_map.insert(site.scratch.ptr, last_buffer);
        for (k, v) in site.carried.iter().enumerate() {
            end_map.insert(v.ptr, mlirOperationGetResult(rows, k as isize));
        }
        recompute(site, after, &mut end_map);
        let tail = mlirOperationClone(site.last);
        remap(tail, &end_map);
        insert_before(after, tail);
        // Every other use of the scratch buffer in the loop is this row's.
        for (user, at) in uses(site.scratch) {
            if nested_in(user, rows) && user.ptr != mlirOpResultGetOwner(current).ptr && user.ptr != mlirOpResultGetOwner(before).ptr {
                mlirOperationSetOperand(user, at, current);
            }
        }
        // In every iteration but the first, the producer with the previous
        // row's `last` fused into its body.
        let not_first = insert_before(
            site.producer,
            build(ctx, "arith.cmpi", loc, &[row, c(lb)], &[i1], &[("predicate", pred(1))]),
        );
        let branch_op = build_if(site.producer, not_first, &[]);
        insert_before(site.producer, branch_op);
        let fused = mlirOperationClone(site.producer);
        let then_block = branch(branch_op, 0);
        mlirBlockAppendOwnedOperation(then_block, fused);
        append_yield(site.producer, then_block, &[]);
        let else_block = branch(branch_op, 1);
        let else_yield = append_yield(site.producer, else_block, &[]);
        mlirOperationMoveBefore(site.producer, else_yield);
        let fused_body = body(fused);
        let fused_yield = mlirBlockGetTerminator(fused_body);
        let late_body = body(late);
        mlirValueReplaceAllUsesOfWith(iv(late), iv(fused));
        for op in block_ops(late_body) {
            if op.ptr != mlirBlockGetTerminator(late_body).ptr {
                mlirOperationMoveBefore(op, fused_yield);
            }
        }
        mlirOperationDestroy(late);
        mlirOperationDestroy(site.last);
        // The row's own copies of what only `last` used are dead now.
        for &op in site.recomputed.iter().rev() {
            let dead = (0..mlirOperationGetNumResults(op)).all(|i| uses(mlirOperationGetResult(op, i)).is_empty());
            if dead {
                mlirOperationDestroy(op);
            }
        }
    }
}

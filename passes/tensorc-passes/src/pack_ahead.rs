//! `tensorc-pack-ahead`: a packed product packs the next K block of B
//! while the register tiles run over the current one, a slice per tile,
//! into a second buffer.
//!
//! Why: the packed schedule (`packed_matmul.rs`) packs each block of B
//! (128 rows of K by an N block of 32 panels, 256 KiB) in a loop of its
//! own at the start of the block, then runs every register tile over it.
//! That loop reads the block from L3 or memory and does nothing else: on
//! W6 (256×1024·1024×4096, one thread) it was about 5.5 % of the samples
//! although the next block's lines were prefetched during the current one
//! (`tensorc-prefetch-panels`), and the k loops ran at the FMA peak. Spread
//! over the tiles, the copies (a few 64-byte loads and stores per tile of
//! 2048 FMAs) run in the shadow of the FMAs, and the out-of-order core
//! waits for none of them.
//!
//! What is matched, on buffers: an `scf.for` (the K block loop, static
//! bounds, at least two trips) whose body is, in order,
//! - a `memref.subview` of a 2-D memref `Bv` defined outside the loop at
//!   `[iv, o]` of static sizes `[KB, 16·NC]`, the loop's step being KB,
//!   and its `memref.expand_shape` into `[KB, NC, 16]`;
//! - the pack: `scf.for r = 0 to KB step 16 { scf.for c = 0 to NC step 1 {
//!   read [r, c, 0] as 16×1×16; transpose [1, 0, 2]; extract [0]; write
//!   P[c, r, 0] } }` with P a `memref.alloc` of `[NC, KB, 16]` defined
//!   outside the loop, used in it by nothing but this write and reads in
//!   the panel loop (after the loop, a partial last block peeled from it
//!   may pack and read P again), freed by one `memref.dealloc`;
//! - the panel loop: an `scf.for` with static bounds whose body holds one
//!   `scf.for` (the tile loop, static bounds) and otherwise no op with
//!   regions.
//!
//! The rewrite: a second buffer P′ beside P; the first block is packed
//! before the loop (a copy of the pack with the loop's lower bound for its
//! variable, into P); in the loop, the tiles read `cur` (P in even blocks,
//! P′ in odd ones, an `arith.select` of the two) and each tile `g` of the
//! block first copies its share of the next block into the other buffer
//! (rows `f` of `[g·q, (g+1)·q)` of the block's `KB·NC` 16-float rows,
//! `f = k·NC + c`: row `iv + KB + k` of Bv at column `o + 16·c` into
//! `[c, k, 0]`, `q` = the rows over the tiles, rounded up; nothing in the
//! last block) and prefetches the rows the tile `PREFETCH_TILES` on will
//! copy. The pack in the loop and its views go (so
//! `tensorc-prefetch-panels` finds no block view to prefetch). The copies write only the buffer
//! the current block does not read, and each block reads a buffer written
//! entirely in the block before it (or before the loop): the values read
//! are the ones the pack wrote, so nothing computed changes.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::PACK_AHEAD;

/// f32 lanes of one B panel row: the packed schedule's `tile` on AVX-512.
/// AVX2's 8-wide panels (`PackedMatmul::for_isa`) are left to their pack
/// loop: copied a 32-byte row at a time, with the index arithmetic per
/// row, the tiles' shares of the next block made W6 3–4 % slower (Zen 3,
/// one thread, alternated in one process; the pass matched them once its
/// tile loop could be followed by the peeled 2-panel tile).
const LANES: i64 = 16;

/// How many tiles ahead a tile prefetches the rows it will copy: about a
/// microsecond (a tile is 2048 FMAs), well past memory's latency and short
/// enough that the lines are still in L1 or L2 when they are copied. A
/// whole block ahead (the next block's rows during the current one), the
/// lines had left L2 under the block's traffic (C, the two buffers, A)
/// and W6 ran 5 % slower than with the pack in a loop of its own; 2, 4
/// and 16 tiles ahead measured the same (1–2.5 % faster than that loop).
const PREFETCH_TILES: i64 = 4;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Pack the next K block of B during the current one, a slice per register tile",
        &[DialectHandle::arith(), DialectHandle::scf(), DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { pack_ahead(module) };
            true
        },
    )
}

/// A matched K block loop.
struct Site {
    k_loop: MlirOperation,
    /// The block's view of B, its expansion and the pack nest.
    view: MlirOperation,
    expand: MlirOperation,
    pack: MlirOperation,
    /// The packed block buffer and its dealloc.
    buffer: MlirOperation,
    dealloc: MlirOperation,
    panel: MlirOperation,
    tile: MlirOperation,
    /// K rows per block, panels per block.
    kb: i64,
    nc: i64,
}

/// Rewrites every matched K block loop of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn pack_ahead(module: MlirOperation) -> usize {
    unsafe { rewrite_all(module, "scf.for", |op| find_site(op), |s| rewrite(s)) }
}

/// The ops of `op`'s body but its terminator.
unsafe fn body_ops(op: MlirOperation) -> Vec<MlirOperation> {
    unsafe {
        let mut ops = block_ops(body(op));
        ops.pop();
        ops
    }
}

unsafe fn find_site(k_loop: MlirOperation) -> Option<Site> {
    unsafe {
        let (lb, ub, step) = constant_bounds(k_loop)?;
        if (ub - lb) / step < 2 || (ub - lb) % step != 0 || mlirOperationGetNumResults(k_loop) != 0 {
            return None;
        }
        let ops: Vec<MlirOperation> =
            body_ops(k_loop).into_iter().filter(|&o| op_name(o) != "arith.constant").collect();
        let [view, expand, pack, panel] = ops.try_into().ok()?;
        // The block's view of B at [iv, o], KB = step rows.
        let (offsets, sizes) = subview_offsets(view)?;
        let bv = mlirOperationGetOperand(view, 0);
        if defined_inside(bv, k_loop) || mlirShapedTypeGetRank(mlirValueGetType(bv)) != 2 {
            return None;
        }
        match (offsets.as_slice(), sizes.as_slice()) {
            ([Offset::Dynamic(k), Offset::Static(_)], [rows, cols])
                if mlirValueEqual(*k, iv(k_loop)) && *rows == step && cols % LANES == 0 => {}
            _ => return None,
        }
        let (kb, nc) = (step, sizes[1] / LANES);
        let et = mlirValueGetType(result(expand));
        if op_name(expand) != "memref.expand_shape"
            || !mlirValueEqual(mlirOperationGetOperand(expand, 0), result(view))
            || mlirShapedTypeGetRank(et) != 3
            || (0..3).map(|d| mlirShapedTypeGetDimSize(et, d)).collect::<Vec<_>>() != [kb, nc, LANES]
        {
            return None;
        }
        let buffer_value = pack_target(pack, result(expand), kb, nc)?;
        let buffer = defined_by(buffer_value, "memref.alloc")?;
        if mlirOperationGetBlock(buffer).ptr != mlirOperationGetBlock(k_loop).ptr
            || print_type(mlirValueGetType(buffer_value)) != format!("memref<{nc}x{kb}x{LANES}xf32>")
        {
            return None;
        }
        // The panel loop: one tile loop, static bounds both.
        if op_name(panel) != "scf.for" || constant_bounds(panel).is_none() {
            return None;
        }
        let loops: Vec<MlirOperation> =
            body_ops(panel).into_iter().filter(|&o| mlirOperationGetNumRegions(o) != 0).collect();
        let [tile] = loops.try_into().ok()?;
        if op_name(tile) != "scf.for" || constant_bounds(tile).is_none() {
            return None;
        }
        // P: in the loop, the pack's write and reads in the panel loop;
        // after it, anything (a partial last block, peeled, packs and
        // reads P again); one dealloc.
        let after: Vec<usize> = block_ops(mlirOperationGetBlock(k_loop))
            .into_iter()
            .skip_while(|o| o.ptr != k_loop.ptr)
            .skip(1)
            .map(|o| o.ptr as usize)
            .collect();
        let mut dealloc = None;
        for (user, _) in uses(buffer_value) {
            let holder = holder_in(user, mlirOperationGetBlock(k_loop))?;
            match op_name(user).as_str() {
                "memref.dealloc" if dealloc.is_none() => dealloc = Some(user),
                "vector.transfer_write" if nested_in(user, pack) => {}
                "vector.transfer_read" if nested_in(user, panel) => {}
                _ if after.contains(&(holder.ptr as usize)) => {}
                _ => return None,
            }
        }
        Some(Site { k_loop, view, expand, pack, buffer, dealloc: dealloc?, panel, tile, kb, nc })
    }
}

/// The buffer the pack nest writes, when it is the 16-row by one-panel
/// copy of `src` (`[KB, NC, 16]`) into `[NC, KB, 16]` the module doc
/// describes.
unsafe fn pack_target(pack: MlirOperation, src: MlirValue, kb: i64, nc: i64) -> Option<MlirValue> {
    unsafe {
        if op_name(pack) != "scf.for" || constant_bounds(pack)? != (0, kb, LANES) {
            return None;
        }
        let [inner] = body_ops(pack).try_into().ok()?;
        if op_name(inner) != "scf.for" || constant_bounds(inner)? != (0, nc, 1) {
            return None;
        }
        let [read, tr, ex, write] = body_ops(inner).try_into().ok()?;
        let names = [read, tr, ex, write].map(|o| op_name(o));
        if names != ["vector.transfer_read", "vector.transpose", "vector.extract", "vector.transfer_write"] {
            return None;
        }
        let (r, c) = (iv(pack), iv(inner));
        let zero = |v: MlirValue| constant_int(v) == Some(0);
        let operand = mlirOperationGetOperand;
        let read_ok = mlirValueEqual(operand(read, 0), src)
            && mlirValueEqual(operand(read, 1), r)
            && mlirValueEqual(operand(read, 2), c)
            && zero(operand(read, 3))
            && mlirOperationGetNumOperands(read) == 5
            && print_type(mlirValueGetType(result(read))) == format!("vector<{LANES}x1x{LANES}xf32>");
        let perm = mlirOperationGetAttributeByName(tr, string_ref("permutation"));
        let tr_ok = mlirValueEqual(operand(tr, 0), result(read))
            && !perm.ptr.is_null()
            && print_attr(perm) == "array<i64: 1, 0, 2>";
        let ex_ok = mlirValueEqual(operand(ex, 0), result(tr))
            && mlirOperationGetNumOperands(ex) == 1
            && print_attr(mlirOperationGetAttributeByName(ex, string_ref("static_position"))) == "array<i64: 0>";
        let write_ok = mlirValueEqual(operand(write, 0), result(ex))
            && mlirOperationGetNumOperands(write) == 5
            && mlirValueEqual(operand(write, 2), c)
            && mlirValueEqual(operand(write, 3), r)
            && zero(operand(write, 4));
        (read_ok && tr_ok && ex_ok && write_ok && mlirTypeIsAMemRef(mlirValueGetType(operand(write, 1))))
            .then(|| operand(write, 1))
    }
}

unsafe fn rewrite(s: &Site) {
    unsafe {
        let ctx = mlirOperationGetContext(s.k_loop);
        let loc = mlirOperationGetLocation(s.k_loop);
        let (lb, ub, step) = constant_bounds(s.k_loop).expect("checked by find_site");
        let p = result(s.buffer);
        let ty = mlirValueGetType(p);
        // The second buffer, freed with the first.
        let p2_op = mlirOperationClone(s.buffer);
        mlirBlockInsertOwnedOperationAfter(mlirOperationGetBlock(s.buffer), s.buffer, p2_op);
        let p2 = result(p2_op);
        let free = mlirOperationClone(s.dealloc);
        mlirOperationSetOperand(free, 0, p2);
        mlirBlockInsertOwnedOperationAfter(mlirOperationGetBlock(s.dealloc), s.dealloc, free);
        // The first block's pack, before the loop: the view, its expansion
        // and the nest copied with the loop's lower bound.
        let first = index_constant(s.k_loop, lb);
        let view = mlirOperationClone(s.view);
        for i in 0..mlirOperationGetNumOperands(view) {
            if mlirValueEqual(mlirOperationGetOperand(view, i), iv(s.k_loop)) {
                mlirOperationSetOperand(view, i, first);
            }
        }
        insert_before(s.k_loop, view);
        let expand = mlirOperationClone(s.expand);
        mlirOperationSetOperand(expand, 0, result(view));
        insert_before(s.k_loop, expand);
        let pack = mlirOperationClone(s.pack);
        walk(pack, |op| {
            for i in 0..mlirOperationGetNumOperands(op) {
                if mlirValueEqual(mlirOperationGetOperand(op, i), result(s.expand)) {
                    mlirOperationSetOperand(op, i, result(expand));
                }
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(s.k_loop), s.k_loop, pack);
        // In the loop: which buffer this block reads and which it fills.
        let bv = mlirOperationGetOperand(s.view, 0);
        let col0 = match subview_offsets(s.view).expect("checked").0[1] {
            Offset::Static(o) => o,
            Offset::Dynamic(_) => unreachable!("checked by find_site"),
        };
        let at = s.panel;
        let c = |v: i64| index_constant(at, v);
        let trip = index_op(at, "arith.subi", iv(s.k_loop), c(lb));
        let trip = index_op(at, "arith.divui", trip, c(step));
        let parity = index_op(at, "arith.remui", trip, c(2));
        let i1 = mlirIntegerTypeGet(ctx, 1);
        let cmp = |at: MlirOperation, pred: i64, a: MlirValue, b: MlirValue| {
            let op = build(ctx, "arith.cmpi", loc, &[a, b], &[i1], &[("predicate", attr(ctx, &format!("{pred} : i64")))]);
            insert_before(at, op)
        };
        let even = cmp(at, 0, parity, c(0));
        let select = |a: MlirValue, b: MlirValue| {
            insert_before(at, build(ctx, "arith.select", loc, &[even, a, b], &[ty], &[]))
        };
        let cur = select(p, p2);
        let next = select(p2, p);
        for (user, operand) in uses(p) {
            if nested_in(user, s.panel) {
                mlirOperationSetOperand(user, operand, cur);
            }
        }
        // Each tile's share of the next block.
        let (plb, pub_, pstep) = constant_bounds(s.panel).expect("checked by find_site");
        let (tlb, tub, tstep) = constant_bounds(s.tile).expect("checked by find_site");
        let (ptrips, ttrips) = ((pub_ - plb + pstep - 1) / pstep, (tub - tlb + tstep - 1) / tstep);
        let rows = s.kb * s.nc;
        let share = (rows + ptrips * ttrips - 1) / (ptrips * ttrips);
        let at = mlirBlockGetFirstOperation(body(s.tile));
        let c = |v: i64| index_constant(at, v);
        let number = |lp: MlirOperation, lb: i64, step: i64| {
            let i = index_op(at, "arith.subi", iv(lp), c(lb));
            index_op(at, "arith.divui", i, c(step))
        };
        let g = index_op(at, "arith.muli", number(s.panel, plb, pstep), c(ttrips));
        let g = index_op(at, "arith.addi", g, number(s.tile, tlb, tstep));
        let lo = index_op(at, "arith.muli", g, c(share));
        let hi = index_op(at, "arith.addi", lo, c(share));
        let hi = index_op(at, "arith.minsi", hi, c(rows));
        // Nothing to pack in the last block.
        let next_block = index_op(at, "arith.addi", iv(s.k_loop), c(step));
        let more = cmp(at, 2, next_block, c(ub)); // slt
        let hi = insert_before(
            at,
            build(ctx, "arith.select", loc, &[more, hi, lo], &[mlirIndexTypeGet(ctx)], &[]),
        );
        let copy = empty_for(ctx, loc, lo, hi, c(1));
        mlirBlockInsertOwnedOperationBefore(body(s.tile), at, copy);
        let y = mlirBlockGetFirstOperation(body(copy));
        let yc = |v: i64| index_constant(y, v);
        let f = iv(copy);
        let k = index_op(y, "arith.divui", f, yc(s.nc));
        let col = index_op(y, "arith.remui", f, yc(s.nc));
        let row = index_op(y, "arith.addi", next_block, k);
        let bcol = index_op(y, "arith.muli", col, yc(LANES));
        let bcol = index_op(y, "arith.addi", bcol, yc(col0));
        let f32 = mlirF32TypeGet(ctx);
        let vty = mlirVectorTypeGet(1, [LANES].as_ptr(), f32);
        // In bounds: the padding is never read.
        let pad = insert_before(
            y,
            build(ctx, "arith.constant", loc, &[], &[f32], &[("value", attr(ctx, "0.0 : f32"))]),
        );
        let read = build(
            ctx,
            "vector.transfer_read",
            loc,
            &[bv, row, bcol, pad],
            &[vty],
            &[
                ("permutation_map", attr(ctx, "affine_map<(d0, d1) -> (d1)>")),
                ("in_bounds", attr(ctx, "[true]")),
                ("operandSegmentSizes", attr(ctx, "array<i32: 1, 2, 1, 0>")),
            ],
        );
        let v = insert_before(y, read);
        let write = build(
            ctx,
            "vector.transfer_write",
            loc,
            &[v, next, col, k, yc(0)],
            &[],
            &[
                ("permutation_map", attr(ctx, "affine_map<(d0, d1, d2) -> (d2)>")),
                ("in_bounds", attr(ctx, "[true]")),
                ("operandSegmentSizes", attr(ctx, "array<i32: 1, 1, 3, 0>")),
            ],
        );
        mlirBlockInsertOwnedOperationBefore(body(copy), y, write);
        // And the rows `PREFETCH_TILES` tiles on will copy (clamped to the
        // block's last row).
        let f2 = index_op(y, "arith.addi", f, yc(PREFETCH_TILES * share));
        let f2 = index_op(y, "arith.minsi", f2, yc(rows - 1));
        let k2 = index_op(y, "arith.divui", f2, yc(s.nc));
        let c2 = index_op(y, "arith.remui", f2, yc(s.nc));
        let ahead = index_op(y, "arith.addi", next_block, k2);
        let last_row = mlirShapedTypeGetDimSize(mlirValueGetType(bv), 0) - 1;
        let ahead = index_op(y, "arith.minsi", ahead, yc(last_row));
        let bcol2 = index_op(y, "arith.muli", c2, yc(LANES));
        let bcol2 = index_op(y, "arith.addi", bcol2, yc(col0));
        mlirBlockInsertOwnedOperationBefore(body(copy), y, read_prefetch(ctx, loc, &[bv, ahead, bcol2]));
        // The pack in the loop goes, then its views.
        mlirOperationDestroy(s.pack);
        mlirOperationDestroy(s.expand);
        mlirOperationDestroy(s.view);
    }
}

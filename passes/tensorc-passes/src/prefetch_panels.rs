//! `tensorc-prefetch-panels`: while a register tile loop runs over one
//! panel of an operand, it prefetches the next panel, a slice per tile.
//!
//! Why: in the matmul schedules a panel of A (8 rows by a K block) is read
//! by every register tile of the panel loop's iteration: the first tile
//! brings it into L1 and the others find it there. That first tile waits
//! for memory: the panels stream from L3 or DRAM and the hardware
//! prefetchers only start after a few demand misses, in the middle of a
//! k loop that needs one new line every other step. On W3 (2048³, one
//! thread) the k loops ran at 92 % of the FMA peak although the same loop
//! over a panel already in cache runs at 97–98 % (a C model of the packed
//! schedule, alternated in the same minutes: 223 GFLOPS without the
//! prefetches, 248 with them). Spreading the next panel's lines over the
//! tiles of the current one fetches each line once, a few per tile, long
//! before its first use.
//!
//! Which loops: an `scf.for` (the k loop) with static bounds and at least
//! `MIN_TRIPS` iterations, directly in an `scf.for` with static bounds (the
//! tile loop), directly in an `scf.for` with a static step or a
//! one-dimensional `scf.forall` with a static step (the panel loop: a
//! parallel loop's chunks are single panels when the panels are few).
//! Its reads that get prefetches: `vector.transfer_read`s in the k loop's
//! body, in bounds, unmasked, minor identity, of a memref with static
//! strides defined outside the panel loop, whose indices
//! - do not depend on the tile loop's induction variable (every tile reads
//!   the same panel),
//! - depend on the panel loop's (each panel reads another one),
//! - are linear in the k loop's, and one step of k moves the read, a 1-D
//!   vector, by exactly its bytes, at most a cache line (the panel is one
//!   contiguous stream: packed A panels). Reads of several rows (the
//!   unpacked schedule's 8×1 columns of A) are left alone: each row is a
//!   stream the hardware prefetchers follow, and with the prefetches
//!   1000³ and 256³ ran 2 % slower.
//!
//! The rewrite: before the k loop, a loop over this tile's share of the k
//! range, one step per cache line, prefetches the read's lines at the next
//! panel (the panel loop's induction variable plus its step; the index
//! computations are copied with it and the prefetch step in place of k).
//! Indices that move with the panel are clamped to the memref's last
//! element, so the last panel's prefetches stay inside the buffer.
//!
//! The next block too: when the panel loop (or the parallel loop whose
//! chunks hold it) sits directly in an `scf.for` (the packed schedule's K
//! blocks), every `memref.subview` before it in that loop's body that
//! slides with the loop (a static 2-D slice of a memref defined outside,
//! unit strides, an offset that depends on the loop's induction variable:
//! the slice of B the block's pack reads) gets its next iteration's lines
//! prefetched, spread over all the tiles of the block (each tile its share,
//! one prefetch per line, rows and columns clamped to the memref). The pack
//! at the start of the next block then reads B from cache instead of
//! memory: W6 (256×1024·1024×4096 + bias + relu, one thread, AOT library,
//! alternated in the same minutes) 9.51–9.54 → 9.17–9.28 ms; W3 unchanged
//! (its B block serves 256 panels, the pack is 2 % of its time).
//! Where `tensorc-pack-ahead` (which runs before) moved the pack into the
//! tiles, the block's view is gone and so are these prefetches: the tiles
//! then prefetch the rows they copy themselves. They are left for the
//! products it does not rewrite (the threads splitting each block's A
//! panels, with the panel chunks in an `scf.forall`).
//!
//! Prefetches do not change what the program computes.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::HashMap;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-prefetch-panels";

/// Shorter k loops are left alone: their panels are small and a tile's
/// loads are few either way.
pub const MIN_TRIPS: i64 = 32;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Prefetch the next panel of an operand, a slice per register tile",
        &[
            DialectHandle::arith(),
            DialectHandle::memref(),
            DialectHandle::scf(),
        ],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { prefetch_panels(module) };
            true
        },
    )
}

/// Adds the prefetches before every eligible k loop of `module`; returns
/// how many loops got them.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn prefetch_panels(module: MlirOperation) -> usize {
    unsafe { rewrite_all(module, "scf.for", |k| candidate(k), |s| rewrite(s)) }
}

/// A k loop, its tile and panel loops, and the panel reads in it.
struct Site {
    k: MlirOperation,
    tile: MlirOperation,
    panel: MlirOperation,
    reads: Vec<PanelRead>,
}

/// A read of a panel and how it streams.
struct PanelRead {
    read: MlirOperation,
    /// Its indices.
    idx: Vec<MlirValue>,
    /// k iterations per cache line of each row of the read.
    steps_per_line: i64,
}

/// The loop `op` sits in directly, if it is an `scf.for`.
unsafe fn parent_for(op: MlirOperation) -> Option<MlirOperation> {
    unsafe {
        let p = mlirOperationGetParentOperation(op);
        (!p.ptr.is_null() && op_name(p) == "scf.for").then_some(p)
    }
}

/// The step of the panel loop `op`: an `scf.for` with a constant step or
/// a one-dimensional `scf.forall` with a static one (the chunks of a
/// parallel loop, one panel each when the panels are few).
unsafe fn panel_step(op: MlirOperation) -> Option<i64> {
    unsafe {
        if op.ptr.is_null() {
            return None;
        }
        let step = match op_name(op).as_str() {
            "scf.for" => constant_int(mlirOperationGetOperand(op, 2))?,
            "scf.forall" => single_static(op, "staticStep")?,
            _ => return None,
        };
        (step > 0).then_some(step)
    }
}

/// Inserts before `at` the number of the current iteration of the loop
/// `lp` (lower bound `lb`, step `step`): `(iv - lb) / step`.
unsafe fn trip_number(at: MlirOperation, lp: MlirOperation, lb: i64, step: i64) -> MlirValue {
    unsafe {
        let i = index_op(at, "arith.subi", iv(lp), index_constant(at, lb));
        index_op(at, "arith.divui", i, index_constant(at, step))
    }
}

/// The coefficient of `x` in the index value `v` when `v` is linear in it
/// (sums, differences and products by constants of `x` and values that do
/// not depend on it, through `arith` and `affine.apply`).
unsafe fn coefficient(v: MlirValue, x: MlirValue, scope: MlirOperation) -> Option<i64> {
    unsafe {
        if mlirValueEqual(v, x) {
            return Some(1);
        }
        if !depends(v, x, scope) {
            return Some(0);
        }
        let def = mlirOpResultGetOwner(v);
        let operand = |i| mlirOperationGetOperand(def, i);
        match op_name(def).as_str() {
            "arith.addi" => {
                Some(coefficient(operand(0), x, scope)? + coefficient(operand(1), x, scope)?)
            }
            "arith.subi" => {
                Some(coefficient(operand(0), x, scope)? - coefficient(operand(1), x, scope)?)
            }
            "arith.muli" => match (constant_int(operand(0)), constant_int(operand(1))) {
                (Some(c), _) => coefficient(operand(1), x, scope)?.checked_mul(c),
                (_, Some(c)) => coefficient(operand(0), x, scope)?.checked_mul(c),
                _ => None,
            },
            "affine.apply" => {
                let m = mlirAffineMapAttrGetValue(mlirOperationGetAttributeByName(
                    def,
                    string_ref("map"),
                ));
                if mlirAffineMapGetNumResults(m) != 1 {
                    return None;
                }
                let args = (0..mlirOperationGetNumOperands(def))
                    .map(|i| coefficient(operand(i), x, scope))
                    .collect::<Option<Vec<i64>>>()?;
                expr_coefficient(
                    mlirAffineMapGetResult(m, 0),
                    mlirAffineMapGetNumDims(m) as usize,
                    &args,
                )
            }
            _ => None,
        }
    }
}

/// `coefficient` for an affine expression whose operands have the
/// coefficients `args` (dimensions first, then symbols).
unsafe fn expr_coefficient(e: MlirAffineExpr, dims: usize, args: &[i64]) -> Option<i64> {
    unsafe {
        if mlirAffineExprIsAConstant(e) {
            return Some(0);
        }
        if mlirAffineExprIsADim(e) {
            return args.get(mlirAffineDimExprGetPosition(e) as usize).copied();
        }
        if mlirAffineExprIsASymbol(e) {
            return args
                .get(dims + mlirAffineSymbolExprGetPosition(e) as usize)
                .copied();
        }
        let (l, r) = (
            mlirAffineBinaryOpExprGetLHS(e),
            mlirAffineBinaryOpExprGetRHS(e),
        );
        if mlirAffineExprIsAAdd(e) {
            return Some(expr_coefficient(l, dims, args)? + expr_coefficient(r, dims, args)?);
        }
        if mlirAffineExprIsAMul(e) {
            let (cl, cr) = (
                expr_coefficient(l, dims, args)?,
                expr_coefficient(r, dims, args)?,
            );
            return match (mlirAffineExprIsAConstant(l), mlirAffineExprIsAConstant(r)) {
                (true, _) => cr.checked_mul(mlirAffineConstantExprGetValue(l)),
                (_, true) => cl.checked_mul(mlirAffineConstantExprGetValue(r)),
                // A product of two operands is linear only if neither moves.
                _ => (cl == 0 && cr == 0).then_some(0),
            };
        }
        // Divisions and modulos are not linear unless nothing in them moves.
        (expr_coefficient(l, dims, args)? == 0 && expr_coefficient(r, dims, args)? == 0)
            .then_some(0)
    }
}

/// The static strides of a memref type and its element size in bytes.
unsafe fn strides_and_bytes(t: MlirType) -> Option<(Vec<i64>, i64)> {
    unsafe {
        if !mlirTypeIsAMemRef(t) || !mlirShapedTypeHasStaticShape(t) {
            return None;
        }
        let rank = mlirShapedTypeGetRank(t) as usize;
        let mut strides = vec![0i64; rank];
        let mut offset = 0i64;
        if mlirMemRefTypeGetStridesAndOffset(t, strides.as_mut_ptr(), &mut offset).value == 0
            || strides
                .iter()
                .any(|&s| mlirShapedTypeIsDynamicStrideOrOffset(s) || s < 0)
        {
            return None;
        }
        let bits = element_bits(t)?;
        (bits % 8 == 0).then_some((strides, i64::from(bits / 8)))
    }
}

unsafe fn candidate(k: MlirOperation) -> Option<Site> {
    unsafe {
        let (lb, ub, step) = constant_bounds(k)?;
        if step <= 0 || (ub - lb) / step < MIN_TRIPS {
            return None;
        }
        let tile = parent_for(k)?;
        let (tl, tu, ts) = constant_bounds(tile)?;
        if ts <= 0 || tu <= tl {
            return None;
        }
        let panel = mlirOperationGetParentOperation(tile);
        panel_step(panel)?;
        let reads: Vec<PanelRead> = block_ops(body(k))
            .into_iter()
            .filter(|&op| op_name(op) == "vector.transfer_read")
            .filter_map(|op| panel_read(op, k, tile, panel))
            .collect();
        (!reads.is_empty()).then_some(Site {
            k,
            tile,
            panel,
            reads,
        })
    }
}

/// `read` as a panel read of the k loop `k` (module comment), with its
/// prefetch step.
unsafe fn panel_read(
    read: MlirOperation,
    k: MlirOperation,
    tile: MlirOperation,
    panel: MlirOperation,
) -> Option<PanelRead> {
    unsafe {
        let mem = mlirOperationGetOperand(read, 0);
        let mt = mlirValueGetType(mem);
        let (strides, bytes) = strides_and_bytes(mt)?;
        let rank = strides.len();
        let vt = mlirValueGetType(result(read));
        // One row (1-D), and source, indices, padding: no mask.
        if rank == 0
            || mlirShapedTypeGetRank(vt) != 1
            || mlirOperationGetNumOperands(read) != 2 + rank as isize
            || defined_inside(mem, panel)
        {
            return None;
        }
        let bounds = mlirOperationGetAttributeByName(read, string_ref("in_bounds"));
        let map = mlirOperationGetAttributeByName(read, string_ref("permutation_map"));
        if bounds.ptr.is_null()
            || print_attr(bounds).contains("false")
            || !(map.ptr.is_null() || is_minor_identity(map, rank, 1))
            || strides[rank - 1] != 1
        {
            return None;
        }
        let idx: Vec<MlirValue> = (0..rank)
            .map(|d| mlirOperationGetOperand(read, 1 + d as isize))
            .collect();
        let (k_iv, tile_iv, panel_iv) = (iv(k), iv(tile), iv(panel));
        if idx.iter().any(|&i| depends(i, tile_iv, panel))
            || !idx.iter().any(|&i| depends(i, panel_iv, panel))
            || !idx.iter().all(|&i| copyable(i, panel))
        {
            return None;
        }
        // Bytes one step of k moves the read by: exactly the vector's
        // length (a contiguous stream).
        let (_, _, k_step) = constant_bounds(k)?;
        let mut moved = 0i64;
        for (d, &i) in idx.iter().enumerate() {
            moved = moved.checked_add(coefficient(i, k_iv, panel)?.checked_mul(strides[d])?)?;
        }
        let moved = moved.checked_mul(bytes)?.checked_mul(k_step)?;
        let row_bytes = mlirShapedTypeGetDimSize(vt, 0) * bytes;
        if moved != row_bytes || moved <= 0 || moved > LINE_BYTES || LINE_BYTES % moved != 0 {
            return None;
        }
        Some(PanelRead {
            read,
            idx,
            steps_per_line: LINE_BYTES / moved,
        })
    }
}

/// Copies the computation of `v` for a prefetch: each `subs` value is
/// replaced by its substitute (the k loop's induction variable by the
/// prefetch loop's, the panel or block loop's by the next iteration's).
/// Ops inside `scope` that depend on a replaced value, and ops inside
/// `fresh` (which do not dominate the prefetch), are copied before `at`
/// (memoized in `done`); everything else is used as it is.
struct Remap {
    subs: Vec<(MlirValue, MlirValue)>,
    scope: MlirOperation,
    fresh: MlirOperation,
    at: MlirOperation,
    done: HashMap<usize, MlirValue>,
}

impl Remap {
    unsafe fn value(&mut self, v: MlirValue) -> MlirValue {
        unsafe {
            if let Some(&(_, to)) = self.subs.iter().find(|(from, _)| mlirValueEqual(v, *from)) {
                return to;
            }
            let moves = self
                .subs
                .iter()
                .any(|&(from, _)| depends(v, from, self.scope));
            if mlirValueIsABlockArgument(v) || (!moves && !defined_inside(v, self.fresh)) {
                return v;
            }
            if let Some(&c) = self.done.get(&(v.ptr as usize)) {
                return c;
            }
            let def = mlirOpResultGetOwner(v);
            let copy = mlirOperationClone(def);
            for i in 0..mlirOperationGetNumOperands(def) {
                let o = self.value(mlirOperationGetOperand(def, i));
                mlirOperationSetOperand(copy, i, o);
            }
            mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(self.at), self.at, copy);
            let n = mlirOpResultGetResultNumber(v);
            let c = mlirOperationGetResult(copy, n);
            self.done.insert(v.ptr as usize, c);
            c
        }
    }
}

/// Whether every op `v` is computed from inside the panel loop can be
/// copied (pure index arithmetic).
unsafe fn copyable(v: MlirValue, panel: MlirOperation) -> bool {
    unsafe {
        if mlirValueIsABlockArgument(v) || !defined_inside(v, panel) {
            return true;
        }
        let def = mlirOpResultGetOwner(v);
        let name = op_name(def);
        (name.starts_with("arith.") || name == "affine.apply")
            && (0..mlirOperationGetNumOperands(def))
                .all(|i| copyable(mlirOperationGetOperand(def, i), panel))
    }
}

unsafe fn rewrite(s: &Site) {
    unsafe {
        let ctx = mlirOperationGetContext(s.k);
        let loc = mlirOperationGetLocation(s.k);
        let index = mlirIndexTypeGet(ctx);
        let arith = |name: &str, a: MlirValue, b: MlirValue| index_op(s.k, name, a, b);
        let (lb, ub, step) = constant_bounds(s.k).expect("checked by candidate");
        let (tl, tu, ts) = constant_bounds(s.tile).expect("checked by candidate");
        let tiles = (tu - tl + ts - 1) / ts;
        let trips = (ub - lb + step - 1) / step;
        let panel_step = index_constant(s.k, panel_step(s.panel).expect("checked by candidate"));
        let next = arith("arith.addi", iv(s.panel), panel_step);
        let t = trip_number(s.k, s.tile, tl, ts);
        for r in &s.reads {
            // The k range in whole lines, split evenly over the tiles.
            let lines = (trips + r.steps_per_line - 1) / r.steps_per_line;
            let per_tile = (lines + tiles - 1) / tiles;
            let chunk = per_tile * r.steps_per_line * step;
            let lo = arith("arith.muli", t, index_constant(s.k, chunk));
            let lo = arith("arith.addi", lo, index_constant(s.k, lb));
            let hi = arith("arith.addi", lo, index_constant(s.k, chunk));
            let hi = arith("arith.minsi", hi, index_constant(s.k, ub));
            let by = index_constant(s.k, r.steps_per_line * step);
            let lp = empty_for(ctx, loc, lo, hi, by);
            mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(s.k), s.k, lp);
            let inner = body(lp);
            let yield_op = mlirBlockGetFirstOperation(inner);
            let mut remap = Remap {
                subs: vec![(iv(s.k), iv(lp)), (iv(s.panel), next)],
                scope: s.panel,
                fresh: s.k,
                at: yield_op,
                done: HashMap::new(),
            };
            let mem = mlirOperationGetOperand(r.read, 0);
            let mt = mlirValueGetType(mem);
            let mut operands = vec![mem];
            for (d, &i) in r.idx.iter().enumerate() {
                let mut v = remap.value(i);
                if depends(i, iv(s.panel), s.panel) {
                    // The last panel's next one is past the buffer: clamp.
                    let last =
                        index_constant(yield_op, mlirShapedTypeGetDimSize(mt, d as isize) - 1);
                    v = insert_before(
                        yield_op,
                        build(ctx, "arith.minsi", loc, &[v, last], &[index], &[]),
                    );
                }
                operands.push(v);
            }
            let p = read_prefetch(ctx, loc, &operands);
            mlirBlockInsertOwnedOperationBefore(inner, yield_op, p);
        }
        prefetch_next_block(s, t);
    }
}

/// The panel loop's lower bound and trip count when both are static.
unsafe fn panel_range(op: MlirOperation) -> Option<(i64, i64)> {
    unsafe {
        let step = panel_step(op)?;
        let (lb, ub, _) = loop_bounds(op)?;
        // A parallel loop's chunks start at 0 or more.
        let from = op_name(op) == "scf.for" || lb >= 0;
        (from && ub > lb).then_some((lb, (ub - lb + step - 1) / step))
    }
}

/// A view the block loop slides with its induction variable: a
/// `memref.subview` in the block loop's body, before the panel loop, of a
/// static 2-D memref defined outside the block loop (unit innermost
/// stride), with static sizes, unit strides and an offset that moves with
/// the block loop. Returns its two offsets; changes nothing.
unsafe fn sliding_view(op: MlirOperation, block_loop: MlirOperation) -> Option<[Offset; 2]> {
    unsafe {
        if op_name(op) != "memref.subview" {
            return None;
        }
        let src = mlirOperationGetOperand(op, 0);
        let (strides, _) = strides_and_bytes(mlirValueGetType(src))?;
        let vt = mlirValueGetType(result(op));
        if strides.len() != 2
            || strides[1] != 1
            || defined_inside(src, block_loop)
            || !mlirShapedTypeHasStaticShape(vt)
        {
            return None;
        }
        let (offsets, _) = subview_offsets(op)?;
        let values: [Offset; 2] = offsets.try_into().ok()?;
        let iv = iv(block_loop);
        let slides = values.iter().any(|v| {
            matches!(v, Offset::Dynamic(d) if depends(*d, iv, block_loop) && copyable(*d, block_loop))
        });
        slides.then_some(values)
    }
}

/// Prefetches, spread over every tile of the panel loop (each tile a
/// slice), the lines the block loop's next iteration will read through
/// each of its sliding views: the packed schedule's next block of B, read
/// by the pack at the start of the next K block. Nothing when the panel
/// loop is not directly in an `scf.for` with static bounds.
unsafe fn prefetch_next_block(s: &Site, tile_number: MlirValue) {
    unsafe {
        // The panel loop, maybe inside a parallel loop's chunks of panels,
        // directly in the block loop.
        let parent = mlirOperationGetParentOperation(s.panel);
        let chunks = (!parent.ptr.is_null() && op_name(parent) == "scf.forall").then_some(parent);
        let block_loop = chunks.map_or(parent, |c| mlirOperationGetParentOperation(c));
        if block_loop.ptr.is_null() || op_name(block_loop) != "scf.for" {
            return;
        }
        let Some((_, _, block_step)) = constant_bounds(block_loop) else {
            return;
        };
        let Some((panel_lb, panel_trips)) = panel_range(s.panel) else {
            return;
        };
        let chunk_range = match chunks {
            Some(c) => match panel_range(c) {
                Some(r) => Some((c, r)),
                None => return,
            },
            None => None,
        };
        let views: Vec<(MlirOperation, [Offset; 2])> = ops_before(chunks.unwrap_or(s.panel))
            .into_iter()
            .filter_map(|op| Some((op, sliding_view(op, block_loop)?)))
            .collect();
        if views.is_empty() {
            return;
        }
        let (tl, tu, ts) = constant_bounds(s.tile).expect("checked by candidate");
        let tile_trips = (tu - tl + ts - 1) / ts;
        let tiles = tile_trips * panel_trips * chunk_range.map_or(1, |(_, (_, n))| n);
        let ctx = mlirOperationGetContext(s.k);
        let loc = mlirOperationGetLocation(s.k);
        let c = |v: i64| index_constant(s.k, v);
        // This tile's number among all the block loop's tiles.
        let step_of = |lp| panel_step(lp).expect("checked above");
        let mut g = trip_number(s.k, s.panel, panel_lb, step_of(s.panel));
        if let Some((chunks, (chunk_lb, _))) = chunk_range {
            let chunk = trip_number(s.k, chunks, chunk_lb, step_of(chunks));
            let chunk = index_op(s.k, "arith.muli", chunk, c(panel_trips));
            g = index_op(s.k, "arith.addi", chunk, g);
        }
        let g = index_op(s.k, "arith.muli", g, c(tile_trips));
        let g = index_op(s.k, "arith.addi", g, tile_number);
        let next = index_op(s.k, "arith.addi", iv(block_loop), c(block_step));
        for (view, offsets) in views {
            let src = mlirOperationGetOperand(view, 0);
            let st = mlirValueGetType(src);
            let vt = mlirValueGetType(result(view));
            let per_line = elements_per_line(st);
            let (rows, cols) = (
                mlirShapedTypeGetDimSize(vt, 0),
                mlirShapedTypeGetDimSize(vt, 1),
            );
            let row_lines = (cols + per_line - 1) / per_line;
            let lines = rows * row_lines;
            let per_tile = (lines + tiles - 1) / tiles;
            let lo = index_op(s.k, "arith.muli", g, c(per_tile));
            let hi = index_op(s.k, "arith.addi", lo, c(per_tile));
            let hi = index_op(s.k, "arith.minsi", hi, c(lines));
            let lp = empty_for(ctx, loc, lo, hi, c(1));
            mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(s.k), s.k, lp);
            let yield_op = mlirBlockGetFirstOperation(body(lp));
            let mut remap = Remap {
                subs: vec![(iv(block_loop), next)],
                scope: block_loop,
                fresh: s.k,
                at: yield_op,
                done: HashMap::new(),
            };
            let l = iv(lp);
            let y = |v: i64| index_constant(yield_op, v);
            let row = index_op(yield_op, "arith.divui", l, y(row_lines));
            let col = index_op(yield_op, "arith.remui", l, y(row_lines));
            let col = index_op(yield_op, "arith.muli", col, y(per_line));
            let mut operands = vec![src];
            for (d, (o, within)) in offsets.iter().zip([row, col]).enumerate() {
                let o = match *o {
                    Offset::Static(v) => y(v),
                    Offset::Dynamic(v) => remap.value(v),
                };
                let v = index_op(yield_op, "arith.addi", o, within);
                // The last block's next one is past the matrix: clamp.
                let last = y(mlirShapedTypeGetDimSize(st, d as isize) - 1);
                operands.push(index_op(yield_op, "arith.minsi", v, last));
            }
            let pf = read_prefetch(ctx, loc, &operands);
            mlirBlockInsertOwnedOperationBefore(body(lp), yield_op, pf);
        }
    }
}


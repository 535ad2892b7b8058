//! `tensorc-k-block-ends`: in a product cut into K blocks, the first block
//! writes C instead of adding to zeros, and the last block runs the
//! element-wise epilogue on its register tiles instead of writing C for a
//! later pass to read back.
//!
//! Why: the packed schedule (`packed_matmul.rs`) keeps C in a packed
//! buffer (or, after `tensorc-unpack-in-place`, a strided view of the
//! result) that every K block reads and writes tile by tile
//! (`tensorc-late-accumulate`'s `C + Σ`). Before the blocks, a pass wrote
//! all of C with zeros (the frontend's zero fill), and after them, when an
//! element-wise consumer was fused into the unpack (W6's bias + relu), a
//! second pass read the whole packed C again to write the result. On W6
//! (256×1024·1024×4096, one thread) the epilogue was about 2 % of the
//! time and the fill 0.4 %, two passes over 4 MiB outside the k loops;
//! W2 (1024³) and W3 (2048³) lose a pass of 4 and 16 MiB of zeros.
//!
//! What is matched, on buffers (after `tensorc-late-accumulate`, whose
//! `C + Σ` form it needs):
//!
//! - the site: a `vector.transfer_write` of `C + Σ` (maybe through a
//!   `vector.extract` of leading unit dimensions), the read of C being a
//!   tile read (`drop_zero_fill::tile_read`) of the same memref at the
//!   same indices; unmasked, in bounds, minor identity;
//! - C (the site's memref, or the memref its `memref.subview` views) is a
//!   `memref.alloc` or a chain of single-use views of a function argument
//!   used by nothing else, with a static shape;
//! - every op enclosing the site up to the function's body is an `scf.for`
//!   or a one-dimensional `scf.forall` and plays one of three parts: an
//!   index loop (its induction variable is one of the write's indices:
//!   static bounds within the view, step the vector's extent), an offset
//!   loop (its variable places the view: `d0 * size` or the variable
//!   itself, its trips times the size being C's dimension), or the K block
//!   loop (static bounds, at least two trips, its variable in neither);
//!   loops of one trip are ignored. A write index that is no loop's
//!   variable is a constant. So each K block writes a box of the view
//!   exactly once, the index loops' spans by the constants' extents;
//! - C's sites come in one or two parts: sites in a K block loop (all the
//!   same loop) and, after that loop in the same block, sites in no K loop
//!   (the partial last block the schedule peels when the block does not
//!   divide K), or only sites in no K loop (a single block). The sites of
//!   a part write the same view and cover it exactly once between them:
//!   one site the whole view, or sites that cover it in all dimensions
//!   but one, where their spans follow each other from 0 to the view's
//!   size (a register tile loop and the narrower tile peeled after it:
//!   AVX2's 4×24 tiles over an N block of 32 8-wide panels end in a
//!   4×16 one). That is the exact cover the rewrites rely on; the first K
//!   block is the first iteration of the first part's sites, the last is
//!   the last part's;
//! - every other access to C is a prefetch inside the product, a
//!   `memref.dealloc`, a `vector.transfer_write` of a zero constant in
//!   another op of the function's body before the product (the fill), or
//!   a `vector.transfer_read` in an op after the product: when it is the
//!   only one and reads a whole `[tm, tn]` tile of a 4-D C `[P, Q, tm, tn]`
//!   it is the epilogue's candidate (a padded product's unpack reads C
//!   twice, the whole tiles and the partial last row of tiles: it keeps
//!   its unpack, and loses its fill).
//!
//! The rewrites:
//!
//! 1. With fill writes: in the first K block each site writes `Σ` instead
//!    of `C + Σ` (an `scf.if` on the block loop's variable yielding the sum
//!    or, with the read of C and the add inside, `C + Σ`; a site in no K
//!    block loop: the read and the add go), and the ops holding the fill
//!    are erased (they may only hold loops, index arithmetic, views and
//!    the fill's writes). Exact: in the first block each element's first
//!    access is its tile's read, which read the fill's zero.
//! 2. With the epilogue read, and the last part's vectors ending in whole
//!    `[tm, tn]` tiles of C: its loop nest must be two `scf.for`s (rows
//!    0 to P·tm by tm, columns 0 to Q·tn by tn; index arithmetic only
//!    between them) whose read's indices are `row floordiv tm` and
//!    `col floordiv tn`, holding no op with regions, writing only to
//!    function arguments the product does not use, reading nothing it
//!    writes, and using only values defined before the product. In the
//!    last K block each site of the last part then runs a copy of the nest's body per
//!    `[tm, tn]` tile of its vector (the row and column computed from the
//!    tile's place in C), in place of the write (a peeled last block's
//!    site: always), and the nest is erased.
//!    C's final tiles were read only by that nest, which now gets them
//!    from registers; the tiles' order changes, and each tile's epilogue
//!    reads and writes only its own elements of other buffers.
//!
//! Neither rewrite changes a value except as `tensorc-drop-zero-fill`
//! does: the first block's sum is written as it is, not added to +0.0
//! (a sum of products that all underflow to -0.0 stays -0.0).

use crate::drop_zero_fill::{TileRead, is_zero, tile_read};
use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;
use std::collections::{HashMap, HashSet};

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::K_BLOCK_ENDS;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "In products cut into K blocks: write C in the first block (no zero fill), run the epilogue in the last",
        &[DialectHandle::arith(), DialectHandle::scf()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { rewrite_block_ends(module) };
            true
        },
    )
}

/// The K block loop of a site: the loop, its lower bound and the value of
/// its variable in the last block.
#[derive(Clone, Copy)]
struct KLoop {
    lp: MlirOperation,
    first: i64,
    last: i64,
}

/// Where one dimension of the site's vector lands in C: `offset + index`
/// (a constant or a value each) plus the position within the vector.
#[derive(Clone, Copy)]
enum Place {
    Const(i64),
    Value(MlirValue),
}

/// A register tile's write of `C + Σ` that covers a box of C's view once
/// per K block (`find_tile`); with the other tiles of its part of the K
/// blocks, all of C (`site`).
struct Tile {
    write: MlirOperation,
    read: TileRead,
    k: Option<KLoop>,
    /// Per dimension of C: the view's offset and the write's index.
    places: Vec<(Place, Place)>,
    /// The vector's extent in each dimension of C (1 outside the vector).
    extents: Vec<i64>,
    /// Per dimension of the view: the indices the tile's writes cover,
    /// `[start, end)`, and the view's size.
    spans: Vec<(i64, i64, i64)>,
    root: MlirValue,
    top: MlirOperation,
    func: MlirOperation,
}

/// The tiles of one C and what they may rewrite: the first K block is the
/// first iteration of the tiles in `first`, the last is the last one of
/// those in `last` (the same tiles when no block is peeled).
struct Site {
    tiles: Vec<Tile>,
    first: Vec<usize>,
    last: Vec<usize>,
    fills: Vec<MlirOperation>,
    epilogue: Option<Epilogue>,
}

/// The loop nest to run in the last K block.
struct Epilogue {
    nest: MlirOperation,
    /// The ops to copy, in order: the outer body's index arithmetic, then
    /// the inner body but its read of C and its yield.
    ops: Vec<MlirOperation>,
    read: MlirOperation,
    /// The row and column loops' variables.
    row: MlirValue,
    col: MlirValue,
}

/// Rewrites every matched site of `module`; returns how many.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn rewrite_block_ends(module: MlirOperation) -> usize {
    unsafe {
        // The tiles of each C, in the order they run.
        let mut groups: Vec<Vec<Tile>> = Vec::new();
        for t in ops_named(module, "vector.transfer_write").into_iter().filter_map(|w| find_tile(w)) {
            match groups.iter_mut().find(|g| mlirValueEqual(g[0].root, t.root)) {
                Some(g) => g.push(t),
                None => groups.push(vec![t]),
            }
        }
        let sites: Vec<Site> = groups.into_iter().filter_map(|g| site(g)).collect();
        // Two sites never share a C: each needs every access to C to be
        // its own, so rewriting one cannot invalidate another.
        for s in &sites {
            rewrite(s);
        }
        sites.len()
    }
}

/// The op of the function's body that holds `op` (or `op` itself), and
/// the function.
unsafe fn top_level(op: MlirOperation) -> Option<(MlirOperation, MlirOperation)> {
    unsafe {
        let func = enclosing_func(op)?;
        Some((holder_in(op, body(func))?, func))
    }
}

/// The memref C: the site's memref, or what its subview views; the view.
unsafe fn root_of(m: MlirValue) -> (MlirValue, Option<MlirOperation>) {
    unsafe {
        match defined_by(m, "memref.subview") {
            Some(v) => (mlirOperationGetOperand(v, 0), Some(v)),
            None => (m, None),
        }
    }
}

/// Whether C may be rewritten as a whole: a static `memref.alloc`, or a
/// chain of single-use views of a function argument with no other use.
unsafe fn root_ok(root: MlirValue) -> bool {
    unsafe {
        if !mlirShapedTypeHasStaticShape(mlirValueGetType(root)) {
            return false;
        }
        let mut v = root;
        loop {
            if mlirValueIsABlockArgument(v) {
                let owner = mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v));
                return op_name(owner) == "func.func" && (v.ptr == root.ptr || sole_use(v).is_some());
            }
            let def = mlirOpResultGetOwner(v);
            match op_name(def).as_str() {
                "memref.alloc" => return v.ptr == root.ptr,
                "memref.transpose" | "memref.expand_shape" | "memref.collapse_shape" | "memref.cast"
                    if v.ptr == root.ptr || sole_use(v).is_some() =>
                {
                    v = mlirOperationGetOperand(def, 0);
                }
                _ => return false,
            }
        }
    }
}

/// The ancestor loop whose variable `v` is, with its trip count, lower
/// bound, upper bound and step (an `scf.for` with constant bounds or a
/// one-dimensional `scf.forall` with static ones).
unsafe fn loop_of(v: MlirValue) -> Option<(MlirOperation, i64, i64, i64)> {
    unsafe {
        if !mlirValueIsABlockArgument(v) || mlirBlockArgumentGetArgNumber(v) != 0 {
            return None;
        }
        let lp = mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v));
        let (lb, ub, step) = loop_bounds(lp)?;
        (step > 0 && ub > lb).then_some((lp, lb, ub, step))
    }
}

/// The trip count of an enclosing `scf.for` or one-dimensional
/// `scf.forall`, when static.
unsafe fn trips(lp: MlirOperation) -> Option<i64> {
    unsafe {
        let body = body(lp);
        if mlirBlockGetNumArguments(body) < 1 {
            return None;
        }
        let (_, lb, ub, step) = loop_of(mlirBlockGetArgument(body, 0))?;
        Some((ub - lb + step - 1) / step)
    }
}

/// Matches `write` as a register tile's write of `C + Σ` that covers C
/// exactly once per K block (module doc); changes nothing.
unsafe fn find_tile(write: MlirOperation) -> Option<Tile> {
    unsafe {
        let m = mlirOperationGetOperand(write, 1);
        let mut value = mlirOperationGetOperand(write, 0);
        let vty = mlirValueGetType(value);
        if !simple_transfer(write, 1) {
            return None;
        }
        if let Some(x) = defined_by(value, "vector.extract") {
            // Register tiles of one B panel (the 4×8 tile peeled after
            // AVX2's 4×24 ones over 28 panels) drop two unit dimensions
            // (`[0, 0]` of `1×1×4×8`), wider ones one.
            let src = mlirValueGetType(mlirOperationGetOperand(x, 0));
            let dropped = mlirShapedTypeGetRank(src) - mlirShapedTypeGetRank(vty);
            if mlirOperationGetNumOperands(x) != 1
                || dropped < 1
                || (0..dropped).any(|d| mlirShapedTypeGetDimSize(src, d as isize) != 1)
            {
                return None;
            }
            value = mlirOperationGetOperand(x, 0);
        }
        let add = defined_by(value, "arith.addf").or_else(|| defined_by(value, "arith.addi"))?;
        let read = (0..2).find_map(|i| {
            let v = mlirOperationGetOperand(add, i);
            let v = match defined_by(v, "vector.broadcast") {
                Some(b) => mlirOperationGetOperand(b, 0),
                None => v,
            };
            let r = defined_by(v, "vector.transfer_read")?;
            match tile_read(r)? {
                t @ TileRead::Added { add: a, .. } if a.ptr == add.ptr => Some(t),
                _ => None,
            }
        })?;
        let TileRead::Added { read: r, .. } = read else {
            return None;
        };
        if !same_place(r, write)
            || !simple_transfer(r, 0)
            || mlirOperationGetBlock(r).ptr != mlirOperationGetBlock(write).ptr
        {
            return None;
        }
        let (root, view) = root_of(m);
        if !root_ok(root) {
            return None;
        }
        let (top, func) = top_level(write)?;
        let (places, extents, spans, k) = cover(write, root, view, top, vty)?;
        Some(Tile { write, read, k, places, extents, spans, root, top, func })
    }
}

/// The site of one C's tiles: tiles in one K block loop, or in none (one
/// block), or both: tiles in a K block loop followed, in the same block,
/// by tiles in no K loop (a partial last block peeled after the loop);
/// each part's tiles together cover C exactly once (`covers`); then C's
/// other accesses must be a fill and reads after the product, of which a
/// single one may be an epilogue (module doc).
unsafe fn site(tiles: Vec<Tile>) -> Option<Site> {
    unsafe {
        let looped: Vec<usize> = (0..tiles.len()).filter(|&i| tiles[i].k.is_some()).collect();
        let peeled: Vec<usize> = (0..tiles.len()).filter(|&i| tiles[i].k.is_none()).collect();
        if let Some(&a) = looped.first() {
            let k = tiles[a].k?;
            if looped.iter().any(|&i| tiles[i].k.map(|l| l.lp.ptr) != Some(k.lp.ptr)) {
                return None;
            }
            // The peeled tiles run after the K loop, in the same block.
            let block = mlirOperationGetBlock(k.lp);
            let ops = block_ops(block);
            let at = |op: MlirOperation| ops.iter().position(|o| o.ptr == op.ptr);
            let k_at = at(k.lp)?;
            for &b in &peeled {
                let after = holder_in(tiles[b].write, block)?;
                if tiles[a].top.ptr != tiles[b].top.ptr || at(after)? <= k_at {
                    return None;
                }
            }
        }
        let part = |idx: &[usize]| idx.iter().map(|&i| &tiles[i]).collect::<Vec<_>>();
        if !covers(&part(&looped)) || !covers(&part(&peeled)) {
            return None;
        }
        let (first, last) = match (looped.is_empty(), peeled.is_empty()) {
            (false, true) => (looped.clone(), looped),
            (true, false) => (peeled.clone(), peeled),
            (false, false) => (looped, peeled),
            (true, true) => return None,
        };
        let head = &tiles[first[0]];
        let own: Vec<MlirOperation> = tiles
            .iter()
            .flat_map(|t| {
                let TileRead::Added { read, .. } = t.read else {
                    unreachable!("find_tile keeps added reads only")
                };
                [t.write, read]
            })
            .collect();
        let (fills, later_reads) = accesses(head.root, &own, head.top)?;
        // Reads after the product see C's final values whether or not the
        // fill ran, so they never stop the fill's removal; only a single
        // one matching the epilogue nest is fused (a padded product's
        // unpack reads C twice: the whole tiles, then the partial last row
        // of tiles).
        let epilogue = match later_reads.as_slice() {
            [e] if mlirValueEqual(mlirOperationGetOperand(*e, 0), head.root) => {
                epilogue(*e, head.root, head.top, head.func)
            }
            _ => None,
        };
        // The epilogue takes whole [tm, tn] tiles of C (C's last two
        // dimensions): the last tiles' vectors must end in them.
        let ct = mlirValueGetType(head.root);
        let whole = last.iter().all(|&i| {
            let ext = &tiles[i].extents;
            ext.len() == 4
                && ext[2] == mlirShapedTypeGetDimSize(ct, 2)
                && ext[3] == mlirShapedTypeGetDimSize(ct, 3)
        });
        let epilogue = epilogue.filter(|_| whole);
        if fills.is_empty() && epilogue.is_none() {
            return None;
        }
        Some(Site { tiles, first, last, fills, epilogue })
    }
}

/// Whether `part`'s tiles (all in one K loop, or all in none) write C's
/// view exactly once between them: each covers the whole view but in at
/// most one dimension, the same for all, where their spans follow each
/// other from 0 to the view's size (a register tile loop and the narrower
/// tile peeled after it: AVX2's 3-panel tiles over 32 panels end in a
/// 2-panel one). An empty part covers nothing and passes.
unsafe fn covers(part: &[&Tile]) -> bool {
    unsafe {
        let Some(head) = part.first() else {
            return true;
        };
        let m = mlirOperationGetOperand(head.write, 1);
        if part.iter().any(|t| !mlirValueEqual(mlirOperationGetOperand(t.write, 1), m)) {
            return false;
        }
        let full = |t: &Tile, d: usize| t.spans[d].0 == 0 && t.spans[d].1 == t.spans[d].2;
        let rank = head.spans.len();
        let partial: Vec<usize> = (0..rank).filter(|&d| part.iter().any(|t| !full(t, d))).collect();
        match partial.as_slice() {
            [] => part.len() == 1,
            [d] => {
                let mut spans: Vec<(i64, i64)> = part.iter().map(|t| (t.spans[*d].0, t.spans[*d].1)).collect();
                spans.sort_unstable();
                let mut at = 0;
                for (start, end) in spans {
                    if start != at {
                        return false;
                    }
                    at = end;
                }
                at == head.spans[*d].2
            }
            _ => false,
        }
    }
}

/// The exact-cover check (module doc): per dimension of C the view's
/// offset and the write's index, the vector's extents, and the K block
/// loop.
#[allow(clippy::type_complexity)]
unsafe fn cover(
    write: MlirOperation,
    root: MlirValue,
    view: Option<MlirOperation>,
    top: MlirOperation,
    vty: MlirType,
) -> Option<(Vec<(Place, Place)>, Vec<i64>, Vec<(i64, i64, i64)>, Option<KLoop>)> {
    unsafe {
        let ct = mlirValueGetType(root);
        let rank = mlirShapedTypeGetRank(ct) as usize;
        let dims: Vec<i64> = (0..rank).map(|d| mlirShapedTypeGetDimSize(ct, d as isize)).collect();
        let (offsets, sizes) = match view {
            Some(v) => subview_offsets(v)?,
            None => (vec![Offset::Static(0); rank], dims.clone()),
        };
        if offsets.len() != rank {
            return None;
        }
        let vrank = mlirShapedTypeGetRank(vty) as usize;
        let extents: Vec<i64> = (0..rank)
            .map(|d| if d + vrank >= rank { mlirShapedTypeGetDimSize(vty, (d + vrank - rank) as isize) } else { 1 })
            .collect();
        let mut used: HashSet<usize> = HashSet::new();
        let mut places = Vec::with_capacity(rank);
        let mut spans = Vec::with_capacity(rank);
        for d in 0..rank {
            let offset = match offsets[d] {
                Offset::Static(0) if sizes[d] == dims[d] => Place::Const(0),
                Offset::Static(_) => return None,
                Offset::Dynamic(v) => {
                    // `d0 * size` of a unit-step variable, or the variable
                    // itself stepping by the size.
                    let (iv, scale) = match defined_by(v, "affine.apply") {
                        Some(a) if mlirOperationGetNumOperands(a) == 1 => {
                            let map = print_attr(mlirOperationGetAttributeByName(a, string_ref("map")));
                            if map != format!("affine_map<(d0) -> (d0 * {})>", sizes[d]) {
                                return None;
                            }
                            (mlirOperationGetOperand(a, 0), sizes[d])
                        }
                        Some(_) => return None,
                        None => (v, 1),
                    };
                    let (lp, lb, ub, step) = loop_of(iv)?;
                    if lb != 0 || step * scale != sizes[d] || (ub / step) * sizes[d] != dims[d] || ub % step != 0 {
                        return None;
                    }
                    if !used.insert(lp.ptr as usize) {
                        return None;
                    }
                    Place::Value(v)
                }
            };
            // The write's index: a constant, or an index loop stepping by
            // the vector's extent; the span it covers in the view.
            let idx = mlirOperationGetOperand(write, 2 + d as isize);
            let (index, span) = match constant_int(idx) {
                Some(c) => {
                    if c < 0 || c + extents[d] > sizes[d] {
                        return None;
                    }
                    (Place::Const(c), (c, c + extents[d]))
                }
                None => {
                    let (lp, lb, ub, step) = loop_of(idx)?;
                    if op_name(lp) != "scf.for"
                        || lb < 0
                        || ub > sizes[d]
                        || step != extents[d]
                        || (ub - lb) % step != 0
                    {
                        return None;
                    }
                    if !used.insert(lp.ptr as usize) {
                        return None;
                    }
                    (Place::Value(idx), (lb, ub))
                }
            };
            places.push((offset, index));
            spans.push((span.0, span.1, sizes[d]));
        }
        // Every enclosing op: a used loop, a one-trip loop, or the K block
        // loop (at most one).
        let mut k = None;
        let mut op = mlirOperationGetParentOperation(write);
        loop {
            let name = op_name(op);
            if name != "scf.for" && name != "scf.forall" {
                return None;
            }
            if !used.contains(&(op.ptr as usize)) {
                match trips(op)? {
                    1 => {}
                    n if n >= 2 && name == "scf.for" && k.is_none() => {
                        let (lb, ub, step) = constant_bounds(op)?;
                        k = Some(KLoop { lp: op, first: lb, last: lb + (ub - lb - 1) / step * step });
                    }
                    _ => return None,
                }
            }
            if op.ptr == top.ptr {
                break;
            }
            op = mlirOperationGetParentOperation(op);
        }
        Some((places, extents, spans, k))
    }
}

/// The memref `v` is a view of, through views of every kind.
unsafe fn base(mut v: MlirValue) -> MlirValue {
    unsafe {
        while mlirValueIsAOpResult(v) {
            let def = mlirOpResultGetOwner(v);
            match op_name(def).as_str() {
                "memref.subview" | "memref.cast" | "memref.transpose" | "memref.expand_shape"
                | "memref.collapse_shape" | "memref.reinterpret_cast" => v = mlirOperationGetOperand(def, 0),
                _ => break,
            }
        }
        v
    }
}

/// Every access to C besides the site's write and read (module doc): the
/// ops holding the fill's writes, and the reads of C after the product
/// (an epilogue's candidates); `None` when something else touches C.
unsafe fn accesses(
    root: MlirValue,
    own: &[MlirOperation],
    top: MlirOperation,
) -> Option<(Vec<MlirOperation>, Vec<MlirOperation>)> {
    unsafe {
        let before: HashSet<usize> = ops_before(top).iter().map(|o| o.ptr as usize).collect();
        let (mut fills, mut fill_writes, mut later) = (Vec::new(), HashSet::new(), Vec::new());
        let mut pending = vec![root];
        while let Some(v) = pending.pop() {
            for (user, operand) in uses(v) {
                let name = op_name(user);
                let (holder, _) = top_level(user)?;
                match (name.as_str(), operand) {
                    ("memref.subview", 0) => pending.push(result(user)),
                    ("memref.dealloc", 0) => {}
                    ("memref.prefetch", 0) if nested_in(user, top) => {}
                    ("vector.transfer_write", 1) | ("vector.transfer_read", 0)
                        if own.iter().any(|o| o.ptr == user.ptr) => {}
                    ("vector.transfer_write", 1)
                        if is_zero(mlirOperationGetOperand(user, 0)) && before.contains(&(holder.ptr as usize)) =>
                    {
                        fill_writes.insert(user.ptr as usize);
                        if !fills.iter().any(|f: &MlirOperation| f.ptr == holder.ptr) {
                            fills.push(holder);
                        }
                    }
                    ("vector.transfer_read", 0)
                        if !before.contains(&(holder.ptr as usize)) && holder.ptr != top.ptr =>
                    {
                        later.push(user);
                    }
                    _ => return None,
                }
            }
        }
        // The fill's ops hold nothing else with an effect.
        for &f in &fills {
            if mlirOperationGetNumResults(f) != 0 {
                return None;
            }
            let mut clean = true;
            walk(f, |op| {
                let name = op_name(op);
                let ok = matches!(
                    name.as_str(),
                    "scf.for" | "scf.forall" | "scf.yield" | "scf.forall.in_parallel" | "memref.subview"
                        | "affine.apply" | "affine.min" | "affine.max"
                ) || name.starts_with("arith.")
                    || (name == "vector.transfer_write" && fill_writes.contains(&(op.ptr as usize)));
                clean &= ok;
                MlirWalkResult_MlirWalkResultAdvance
            });
            if !clean {
                return None;
            }
        }
        Some((fills, later))
    }
}

/// Ops an epilogue body may hold (besides writes, checked apart).
fn epilogue_op(name: &str) -> bool {
    ["arith.", "math.", "vector.", "index."].iter().any(|p| name.starts_with(p))
        || matches!(name, "affine.apply" | "memref.load" | "memref.subview" | "ub.poison")
}

/// Matches the epilogue nest around `read` (module doc); changes nothing.
unsafe fn epilogue(
    read: MlirOperation,
    root: MlirValue,
    top: MlirOperation,
    func: MlirOperation,
) -> Option<Epilogue> {
    unsafe {
        let ct = mlirValueGetType(root);
        let vt = mlirValueGetType(result(read));
        if mlirShapedTypeGetRank(ct) != 4 || mlirShapedTypeGetRank(vt) != 2 || !simple_transfer(read, 0) {
            return None;
        }
        let dim = |t: MlirType, d: isize| mlirShapedTypeGetDimSize(t, d);
        let (tm, tn) = (dim(ct, 2), dim(ct, 3));
        if dim(vt, 0) != tm || dim(vt, 1) != tn {
            return None;
        }
        let index = mlirOperationGetOperand;
        if constant_int(index(read, 3)) != Some(0) || constant_int(index(read, 4)) != Some(0) {
            return None;
        }
        // `row floordiv tm`, `col floordiv tn`.
        let divided = |v: MlirValue, by: i64| -> Option<MlirValue> {
            let a = defined_by(v, "affine.apply")?;
            let map = print_attr(mlirOperationGetAttributeByName(a, string_ref("map")));
            (mlirOperationGetNumOperands(a) == 1 && map == format!("affine_map<(d0) -> (d0 floordiv {by})>"))
                .then(|| mlirOperationGetOperand(a, 0))
        };
        let row = divided(index(read, 1), tm)?;
        let col = divided(index(read, 2), tn)?;
        let (rl, rlb, rub, rstep) = loop_of(row)?;
        let (cl, clb, cub, cstep) = loop_of(col)?;
        if op_name(rl) != "scf.for"
            || op_name(cl) != "scf.for"
            || (rlb, rub, rstep) != (0, dim(ct, 0) * tm, tm)
            || (clb, cub, cstep) != (0, dim(ct, 1) * tn, tn)
        {
            return None;
        }
        // Two perfectly nested loops, the outer one in the function's body.
        let inner = mlirOperationGetParentOperation(read);
        let nest = mlirOperationGetParentOperation(inner);
        let pair = [rl.ptr, cl.ptr];
        if inner.ptr == nest.ptr
            || !pair.contains(&inner.ptr)
            || !pair.contains(&nest.ptr)
            || mlirOperationGetParentOperation(nest).ptr != func.ptr
            || mlirOperationGetNumResults(nest) != 0
        {
            return None;
        }
        // Ops whose results only index the read of C are not copied.
        let only_index = |op: MlirOperation| {
            mlirOperationGetNumResults(op) > 0
                && (0..mlirOperationGetNumResults(op)).all(|r| {
                uses(mlirOperationGetResult(op, r)).iter().all(|(u, _)| u.ptr == read.ptr)
            })
        };
        let mut ops = Vec::new();
        for op in block_ops(body(nest)) {
            let name = op_name(op);
            if op.ptr == inner.ptr || name == "scf.yield" || only_index(op) {
                continue;
            }
            if !(name.starts_with("arith.") || name == "affine.apply") {
                return None;
            }
            ops.push(op);
        }
        // The product's memrefs (by what they view): the epilogue may
        // neither write them nor read what it writes.
        let mut product_bases: HashSet<usize> = HashSet::new();
        walk(top, |op| {
            for i in 0..mlirOperationGetNumOperands(op) {
                let v = mlirOperationGetOperand(op, i);
                if mlirTypeIsAMemRef(mlirValueGetType(v)) {
                    product_bases.insert(base(v).ptr as usize);
                }
            }
            MlirWalkResult_MlirWalkResultAdvance
        });
        let (mut written, mut read_from) = (HashSet::new(), HashSet::new());
        for op in block_ops(body(inner)) {
            let name = op_name(op);
            if op.ptr == read.ptr || name == "scf.yield" || only_index(op) {
                continue;
            }
            if mlirOperationGetNumRegions(op) != 0 {
                return None;
            }
            match name.as_str() {
                "vector.transfer_write" | "vector.store" | "memref.store" => {
                    let target = base(mlirOperationGetOperand(op, 1));
                    let is_arg = mlirValueIsABlockArgument(target)
                        && mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(target)).ptr == func.ptr;
                    if !is_arg || product_bases.contains(&(target.ptr as usize)) {
                        return None;
                    }
                    written.insert(target.ptr as usize);
                }
                "vector.transfer_read" | "vector.load" | "memref.load" => {
                    read_from.insert(base(mlirOperationGetOperand(op, 0)).ptr as usize);
                }
                n if epilogue_op(n) => {}
                _ => return None,
            }
            ops.push(op);
        }
        if written.is_empty() || written.iter().any(|w| read_from.contains(w)) {
            return None;
        }
        // Values from outside the nest must be visible in the product:
        // the function's arguments and ops of its body before the product.
        let before: HashSet<usize> = ops_before(top).iter().map(|o| o.ptr as usize).collect();
        for &op in &ops {
            for i in 0..mlirOperationGetNumOperands(op) {
                let v = mlirOperationGetOperand(op, i);
                if defined_inside(v, nest) {
                    continue;
                }
                let visible = if mlirValueIsABlockArgument(v) {
                    mlirBlockGetParentOperation(mlirBlockArgumentGetOwner(v)).ptr == func.ptr
                } else {
                    before.contains(&(mlirOpResultGetOwner(v).ptr as usize))
                };
                if !visible {
                    return None;
                }
            }
        }
        Some(Epilogue { nest, ops, read, row, col })
    }
}

/// `iv == at`, inserted before `op`.
unsafe fn is_iteration(op: MlirOperation, k: KLoop, at: i64) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(op);
        let c = index_constant(op, at);
        let cmp = build(
            ctx,
            "arith.cmpi",
            mlirOperationGetLocation(op),
            &[iv(k.lp), c],
            &[mlirIntegerTypeGet(ctx, 1)],
            &[("predicate", attr(ctx, "0 : i64"))],
        );
        insert_before(op, cmp)
    }
}

unsafe fn rewrite(s: &Site) {
    unsafe {
        if !s.fills.is_empty() {
            for &t in &s.first {
                drop_fill(&s.tiles[t]);
            }
            for &f in &s.fills {
                mlirOperationDestroy(f);
            }
        }
        if let Some(e) = &s.epilogue {
            for &t in &s.last {
                fuse_epilogue(&s.tiles[t], e);
            }
            mlirOperationDestroy(e.nest);
        }
    }
}

/// Rewrite 1: the first block writes the tile's sum without reading C
/// (the caller erases the fill).
unsafe fn drop_fill(s: &Tile) {
    unsafe {
        let TileRead::Added { read, widen, add, sum } = s.read else {
            unreachable!("find_tile keeps added reads only")
        };
        match s.k {
            None => {
                mlirValueReplaceAllUsesOfWith(result(add), sum);
                mlirOperationDestroy(add);
                if let Some(w) = widen {
                    mlirOperationDestroy(w);
                }
                mlirOperationDestroy(read);
            }
            Some(k) => {
                // `first ? Σ : C + Σ`, a choice between two values in
                // registers. Choosing the addend instead (zeros or C's
                // tile) put the tile through the stack: LLVM spilled the
                // 12 vectors of AVX2's 4×24 tiles on every tile.
                let first = is_iteration(add, k, k.first);
                let ty = mlirValueGetType(result(add));
                let choice = build_if(add, first, &[ty]);
                mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(add), add, choice);
                append_yield(add, branch(choice, 0), &[sum]);
                mlirValueReplaceAllUsesOfWith(result(add), result(choice));
                let otherwise = branch(choice, 1);
                for op in [Some(read), widen, Some(add)].into_iter().flatten() {
                    mlirOperationRemoveFromParent(op);
                    mlirBlockAppendOwnedOperation(otherwise, op);
                }
                append_yield(add, otherwise, &[result(add)]);
            }
        }
    }
}

/// Rewrite 2: in the last block each `[tm, tn]` tile of the site's vector
/// goes through a copy of the epilogue instead of into C (the caller
/// erases the epilogue's nest).
unsafe fn fuse_epilogue(s: &Tile, e: &Epilogue) {
    unsafe {
        let w = s.write;
        let value = mlirOperationGetOperand(w, 0);
        let ctx = mlirOperationGetContext(w);
        let loc = mlirOperationGetLocation(w);
        let anchor = match s.k {
            Some(k) => {
                let last = is_iteration(w, k, k.last);
                let choice = build_if(w, last, &[]);
                mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(w), w, choice);
                let then_yield = append_yield(w, branch(choice, 0), &[]);
                mlirOperationRemoveFromParent(w);
                mlirBlockAppendOwnedOperation(branch(choice, 1), w);
                append_yield(w, branch(choice, 1), &[]);
                then_yield
            }
            None => w,
        };
        let vty = mlirValueGetType(value);
        let vrank = mlirShapedTypeGetRank(vty) as usize;
        let rank = s.extents.len();
        // C's dimensions the vector covers beyond its [tm, tn] tiles.
        let lead: Vec<usize> = (rank - vrank..rank - 2).collect();
        let ranges: Vec<i64> = lead.iter().map(|&d| s.extents[d]).collect();
        let tiles: i64 = ranges.iter().product();
        let place = |p: Place| match p {
            Place::Const(c) => index_constant(anchor, c),
            Place::Value(v) => v,
        };
        // C's [tm, tn] tiles, the vector's last two extents (`site`).
        let (tm, tn) = (s.extents[rank - 2], s.extents[rank - 1]);
        for t in 0..tiles {
            // The tile's position along the lead dimensions.
            let mut pos = vec![0i64; lead.len()];
            let mut rest = t;
            for i in (0..lead.len()).rev() {
                pos[i] = rest % ranges[i];
                rest /= ranges[i];
            }
            let tile = if lead.is_empty() {
                value
            } else {
                let list = pos.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
                let x = build(
                    ctx,
                    "vector.extract",
                    loc,
                    &[value],
                    &[mlirVectorTypeGet(2, [tm, tn].as_ptr(), mlirShapedTypeGetElementType(vty))],
                    &[("static_position", attr(ctx, &format!("array<i64: {list}>")))],
                );
                insert_before(anchor, x)
            };
            // Row and column of the epilogue: (offset + index + pos) * tile.
            let at_dim = |d: usize, scale: i64| {
                let (o, i) = s.places[d];
                let within = lead.iter().position(|&l| l == d).map_or(0, |p| pos[p]);
                let mut v = index_op(anchor, "arith.addi", place(o), place(i));
                if within != 0 {
                    v = index_op(anchor, "arith.addi", v, index_constant(anchor, within));
                }
                index_op(anchor, "arith.muli", v, index_constant(anchor, scale))
            };
            let row = at_dim(0, tm);
            let col = at_dim(1, tn);
            let mut map: HashMap<usize, MlirValue> = HashMap::new();
            map.insert(e.row.ptr as usize, row);
            map.insert(e.col.ptr as usize, col);
            map.insert(result(e.read).ptr as usize, tile);
            for &op in &e.ops {
                let copy = mlirOperationClone(op);
                for i in 0..mlirOperationGetNumOperands(copy) {
                    let v = mlirOperationGetOperand(copy, i);
                    if let Some(&n) = map.get(&(v.ptr as usize)) {
                        mlirOperationSetOperand(copy, i, n);
                    }
                }
                mlirBlockInsertOwnedOperationBefore(mlirOperationGetBlock(anchor), anchor, copy);
                for r in 0..mlirOperationGetNumResults(op) {
                    map.insert(
                        mlirOperationGetResult(op, r).ptr as usize,
                        mlirOperationGetResult(copy, r),
                    );
                }
            }
        }
        if s.k.is_none() {
            mlirOperationDestroy(w);
        }
    }
}

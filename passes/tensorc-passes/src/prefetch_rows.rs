//! `tensorc-prefetch-rows`: in a loop over rows that reads each row more
//! than once (the fused row chains of softmax and layernorm), a later pass
//! over the row prefetches the row `ROWS_AHEAD` rows down.
//!
//! Why: a fused row chain (`row_fuse_schedule.rs`) runs several passes
//! over one row (softmax: the max, then exp and sum, then the division);
//! only the first reads the row from memory, the others find it in L1. The
//! hardware prefetchers follow demand misses, so while the later passes
//! compute they fetch nothing, and every row's first pass waits for memory:
//! on W5 (softmax of 4096×1024) the max pass took a quarter of the time,
//! half of it on one instruction after the loads. Prefetching the next rows
//! during a later pass overlaps that wait with the exp and the division:
//! W5 went from 1.65 to 1.45 ms (one thread, hand-edited IR alternated in
//! the same minutes; two rows ahead measured 1–3 % better than one).
//!
//! Writes too: the same later passes write the results row by row, and
//! each store that misses waits for its line to be read first (the store
//! buffer fills and the division stalls: a fifth of W5's samples sat on one
//! store). A write prefetch of the row two ahead fetches those lines owned
//! while the row computes: W5 1.29 → 1.21 ms (aligned buffers, hand-edited
//! IR alternated in the same minutes).
//!
//! Which loops: an `scf.for` (the pass) with a static step, nested directly
//! in an `scf.for` of step 1 (the row loop), whose body reads
//! `vector.transfer_read %m[%row, %j]` — a 2-D memref of static shape,
//! a 1-D vector, `%j` the pass's induction variable, `%row` defined outside
//! the pass from the row loop's induction variable — when it is the first
//! loop of the row loop's body to read `%m` that way and the body holds
//! another pass (a loop or a linalg op: softmax's max pass reads the row
//! through views, so its exp pass gets the prefetches; argmax's max pass
//! reads it directly and its index pass is a linalg op). Each
//! iteration prefetches the cache lines its read covers, `ROWS_AHEAD` rows
//! down; the row index is clamped to the last row so no address leaves the
//! buffer. And when the pass is not the row loop's first loop, each
//! `vector.transfer_write` in it of a 1-D vector to a view (subviews with
//! unit strides, no rank change) of a static 2-D memref at column `%j` and
//! a row that moves with the row loop gets write prefetches the same way,
//! at the view's position in that memref.
//!
//! Lane scans too (`scan_place`): argmax's one-pass lane-wise scan reads
//! each row once, after its first chunk, in a loop over chunks through an
//! `expand_shape` view `[1, chunks, lanes]` of the row; each chunk's read
//! prefetches its lines `ROWS_AHEAD` rows down. The hardware prefetchers
//! restart at each 4 KiB page, and a row of 1024 f32 is one: argmax
//! 4096×1024 streamed its 16 MiB at about 10 GB/s. AOT, one thread,
//! alternated, AVX2: 4096×1024 0.66–0.71× the time, 2000×1536 0.70×,
//! 1000×1000 and 8000×130 (in L2/L3) 0.98×.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use crate::reduction_schedule::MATVEC_STREAM_BYTES;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = "tensorc-prefetch-rows";

/// How many rows ahead the prefetches run.
pub const ROWS_AHEAD: i64 = 2;

/// How far ahead (bytes of the matrix, rounded up to whole blocks of rows)
/// a block read's prefetches run. Measured on two-row blocks (one thread,
/// batched matrix·vector products from memory): rows of 1 KiB were
/// fastest 16 rows ahead, of 2 KiB 4 rows ahead, of 4 KiB 4 rows ahead
/// (8 rows: 3–10 % slower; one block: 5–10 % slower).
pub const BLOCK_BYTES_AHEAD: i64 = 12 << 10;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Prefetch the rows ahead in later passes of multi-pass row loops",
        &[DialectHandle::arith(), DialectHandle::memref()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { prefetch_rows(module) };
            true
        },
    )
}

/// Adds the prefetches to every eligible loop of `module`; returns how many
/// loops got them.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn prefetch_rows(module: MlirOperation) -> usize {
    unsafe {
        let loops = ops_named(module, "scf.for");
        let reads: Vec<(MlirOperation, MlirOperation)> = loops
            .iter()
            .filter_map(|&l| Some((l, row_read(l)?)))
            .collect();
        let writes: Vec<(MlirOperation, Vec<Place>)> = loops
            .iter()
            .map(|&l| (l, row_writes(l)))
            .filter(|(_, w)| !w.is_empty())
            .collect();
        for &(lp, read) in &reads {
            let m = mlirOperationGetOperand(read, 0);
            let row = clamped_row(
                lp,
                mlirOperationGetOperand(read, 1),
                m,
                mlirOperationGetLocation(read),
            );
            line_prefetches(
                read,
                m,
                &[],
                row,
                mlirOperationGetOperand(read, 2),
                mlirValueGetType(result(read)),
                false,
            );
        }
        for (_, places) in &writes {
            for w in places {
                let row = root_index(w, 0, w.write);
                let row = clamped_row(w.write, row, w.root, mlirOperationGetLocation(w.write));
                let col = root_index(w, 1, w.write);
                let vt = mlirValueGetType(mlirOperationGetOperand(w.write, 0));
                line_prefetches(w.write, w.root, &[], row, col, vt, true);
            }
        }
        let scans: Vec<(MlirOperation, Place)> = loops
            .iter()
            .filter_map(|&l| {
                let (body, j, row_iv) = pass_of_row_loop(l)?;
                let read = block_ops(body).into_iter().find(|&op| op_name(op) == "vector.transfer_read")?;
                Some((l, scan_place(read, j, row_iv)?))
            })
            .collect();
        for (_, p) in &scans {
            let row = root_index(p, 0, p.write);
            let row = clamped_row(p.write, row, p.root, mlirOperationGetLocation(p.write));
            let col = root_index(p, 1, p.write);
            let vt = mlirValueGetType(result(p.write));
            line_prefetches(p.write, p.root, &[], row, col, vt, false);
        }
        let blocks: Vec<(MlirOperation, MlirOperation, i64)> =
            loops.iter().filter_map(|&l| block_read(l).map(|(read, rows)| (l, read, rows))).collect();
        for &(_, read, rows) in &blocks {
            block_prefetches(read, rows);
        }
        let mut touched: Vec<usize> = reads.iter().map(|(l, _)| l.ptr as usize).collect();
        touched.extend(scans.iter().map(|(l, _)| l.ptr as usize));
        touched.extend(blocks.iter().map(|(l, _, _)| l.ptr as usize));
        touched.extend(writes.iter().map(|(l, _)| l.ptr as usize));
        touched.sort();
        touched.dedup();
        touched.len()
    }
}

/// A block of rows read together (`tensorc-matvec`'s matrix·vector
/// reductions: `vector.transfer_read %m[%b…, %row, %j]` of a
/// `vector<R×W>`, R rows at a time): in a loop `lp` with a constant step
/// directly in a row loop of step R > 1, the read of a static memref of
/// rank 2 or more and over `MATVEC_STREAM_BYTES` (one that comes from
/// memory: prefetching a matrix in L3 cost 10–20 %), the default (minor
/// identity) map, `%j` the loop's induction variable, `%row` from the row
/// loop's and, like the leading indices, defined outside `lp`. The read
/// and R. Also a narrow product's block (`reduction_schedule::
/// narrow_product_tag`: rows of A read broadcast along the result columns,
/// a `vector<R×N×W>` of a 2-D A with the map `(d0, d1) -> (d0, 0, d1)`,
/// or for R = 1 `vector<N×W>` with `(d0, d1) -> (0, d1)`): 4096×4096·8 f32
/// streamed A at about 14 GB/s without (5.3 ms), 25 with (2.6; XLA 2.9).
unsafe fn block_read(lp: MlirOperation) -> Option<(MlirOperation, i64)> {
    unsafe {
        constant_int(mlirOperationGetOperand(lp, 2))?;
        let rows_loop = mlirOperationGetParentOperation(lp);
        if op_name(rows_loop) != "scf.for" {
            return None;
        }
        let rows = constant_int(mlirOperationGetOperand(rows_loop, 2))?;
        if rows < 1 {
            return None;
        }
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0));
        let j = mlirBlockGetArgument(body, 0);
        let row_iv = mlirBlockGetArgument(mlirOperationGetBlock(lp), 0);
        let outside = |v: MlirValue| !mlirValueIsAOpResult(v) || !nested_in(mlirOpResultGetOwner(v), lp);
        let read = block_ops(body).into_iter().find(|&op| {
            if op_name(op) != "vector.transfer_read" {
                return false;
            }
            let t = mlirValueGetType(mlirOperationGetOperand(op, 0));
            let vt = mlirValueGetType(result(op));
            if !mlirTypeIsAMemRef(t) || !mlirShapedTypeHasStaticShape(t) {
                return false;
            }
            let rank = mlirShapedTypeGetRank(t) as isize;
            let map = mlirOperationGetAttributeByName(op, string_ref("permutation_map"));
            // (One row of A a block: its unit axis folded away, `vector<N×W>`
            // with the map `(d0, d1) -> (0, d1)`.)
            let narrow = rank == 2
                && !map.ptr.is_null()
                && match mlirShapedTypeGetRank(vt) {
                    3 => print_attr(map) == "affine_map<(d0, d1) -> (d0, 0, d1)>",
                    2 => rows == 1 && print_attr(map) == "affine_map<(d0, d1) -> (0, d1)>",
                    _ => false,
                };
            if !narrow && (mlirShapedTypeGetRank(vt) != 2 || rows < 2) {
                return false;
            }
            if rank < 2
                || static_bytes(t) <= MATVEC_STREAM_BYTES
                || mlirOperationGetNumOperands(op) != rank + 2
                || ((mlirShapedTypeGetRank(vt) == 3 || !narrow) && mlirShapedTypeGetDimSize(vt, 0) != rows)
                || (!narrow && !map.ptr.is_null() && !is_minor_identity(map, rank as usize, 2))
            {
                return false;
            }
            let index = |d: isize| mlirOperationGetOperand(op, 1 + d);
            mlirValueEqual(index(rank - 1), j)
                && from_iv(index(rank - 2), row_iv)
                && (0..rank - 1).all(|d| outside(index(d)))
        })?;
        Some((read, rows))
    }
}

/// Before a block read of `rows` rows (`block_read`), prefetches of the
/// lines it reads in each row of the block `BLOCK_BYTES_AHEAD` ahead,
/// clamped to the matrix's last row. A matrix of rank 3 or more with the
/// identity layout (a batch of matrices) is prefetched through a 2-D view
/// of all its rows, so the last blocks of one matrix prefetch the next
/// one's first rows (clamped within each matrix, a batch of 64-row
/// matrices lost a fifth of its prefetches).
unsafe fn block_prefetches(read: MlirOperation, rows: i64) {
    unsafe {
        let ctx = mlirOperationGetContext(read);
        let loc = mlirOperationGetLocation(read);
        let index = mlirIndexTypeGet(ctx);
        let mut m = mlirOperationGetOperand(read, 0);
        let t = mlirValueGetType(m);
        let rank = mlirShapedTypeGetRank(t) as isize;
        let dims: Vec<i64> = shape(t);
        let mut lead: Vec<MlirValue> = (0..rank - 2).map(|d| mlirOperationGetOperand(read, 1 + d)).collect();
        let mut row = mlirOperationGetOperand(read, rank - 1);
        let col = mlirOperationGetOperand(read, rank);
        let mut last_row = dims[rank as usize - 2] - 1;
        if rank > 2 && mlirAffineMapIsIdentity(mlirMemRefTypeGetAffineMap(t)) {
            let all_rows: i64 = dims[..rank as usize - 1].iter().product();
            let flat = parse_type(ctx, &format!("memref<{all_rows}x{}x{}>", dims[rank as usize - 1], print_type(mlirShapedTypeGetElementType(t))));
            if let Some(flat) = flat {
                let groups: Vec<String> = (0..rank - 1).map(|d| d.to_string()).collect();
                let re = attr(ctx, &format!("[[{}], [{}]]", groups.join(", "), rank - 1));
                let view = build(ctx, "memref.collapse_shape", loc, &[m], &[flat], &[("reassociation", re)]);
                m = insert_before(read, view);
                // The row's place among all rows: ((l0·d1 + l1)·d2 + …)·rows + row.
                let mut linear: Option<MlirValue> = None;
                for (d, &l) in lead.iter().enumerate() {
                    linear = Some(match linear {
                        None => l,
                        Some(acc) => {
                            let k = index_constant(read, dims[d]);
                            let scaled = insert_before(read, build(ctx, "arith.muli", loc, &[acc, k], &[index], &[]));
                            insert_before(read, build(ctx, "arith.addi", loc, &[scaled, l], &[index], &[]))
                        }
                    });
                }
                if let Some(acc) = linear {
                    let k = index_constant(read, dims[rank as usize - 2]);
                    let scaled = insert_before(read, build(ctx, "arith.muli", loc, &[acc, k], &[index], &[]));
                    row = insert_before(read, build(ctx, "arith.addi", loc, &[scaled, row], &[index], &[]));
                }
                lead.clear();
                last_row = all_rows - 1;
            }
        }
        let vt = mlirValueGetType(result(read));
        let row_bytes = dims[rank as usize - 1] * i64::from(element_bits(t).unwrap_or(32)) / 8;
        let blocks = ((BLOCK_BYTES_AHEAD + rows * row_bytes - 1) / (rows * row_bytes).max(1)).max(1);
        for r in 0..rows {
            let ahead = row_ahead(read, row, rows * blocks + r, last_row, loc);
            line_prefetches(read, m, &lead, ahead, col, vt, false);
        }
    }
}

/// Whether `v` is `iv` or computed from it by one op.
unsafe fn from_iv(v: MlirValue, iv: MlirValue) -> bool {
    unsafe {
        if mlirValueEqual(v, iv) {
            return true;
        }
        if !mlirValueIsAOpResult(v) {
            return false;
        }
        let def = mlirOpResultGetOwner(v);
        (0..mlirOperationGetNumOperands(def))
            .any(|i| mlirValueEqual(mlirOperationGetOperand(def, i), iv))
    }
}

/// For a pass `lp` (a loop with a constant step) directly in a row loop
/// of step 1: the pass's body, its induction variable and the row loop's.
unsafe fn pass_of_row_loop(lp: MlirOperation) -> Option<(MlirBlock, MlirValue, MlirValue)> {
    unsafe {
        constant_int(mlirOperationGetOperand(lp, 2))?;
        let rows = mlirOperationGetParentOperation(lp);
        if op_name(rows) != "scf.for" || constant_int(mlirOperationGetOperand(rows, 2)) != Some(1) {
            return None;
        }
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(lp, 0));
        let row_iv = mlirBlockGetArgument(mlirOperationGetBlock(lp), 0);
        Some((body, mlirBlockGetArgument(body, 0), row_iv))
    }
}

/// The read of a row, `%m[%row, %j]`, in pass `lp`, if `lp` is the row
/// loop's first direct reader of `%m` and the row loop has another pass
/// (see the module comment).
unsafe fn row_read(lp: MlirOperation) -> Option<MlirOperation> {
    unsafe {
        let (body, j, row_iv) = pass_of_row_loop(lp)?;
        block_ops(body).into_iter().find(|&op| {
            op_name(op) == "vector.transfer_read"
                && is_row_read(op, j, row_iv, lp)
                && !direct_reader_before(lp, mlirOperationGetOperand(op, 0), row_iv)
                && has_other_pass(lp)
        })
    }
}

/// `vector.transfer_read %m[%row, %j]` of a 1-D vector from a static 2-D
/// memref, `%row` from the row loop's `row_iv` and defined outside `lp`.
unsafe fn is_row_read(
    read: MlirOperation,
    j: MlirValue,
    row_iv: MlirValue,
    lp: MlirOperation,
) -> bool {
    unsafe {
        let m = mlirOperationGetOperand(read, 0);
        let t = mlirValueGetType(m);
        let vt = mlirValueGetType(result(read));
        if !mlirTypeIsAMemRef(t)
            || !mlirShapedTypeHasStaticShape(t)
            || mlirShapedTypeGetRank(t) != 2
            || mlirShapedTypeGetRank(vt) != 1
            || mlirOperationGetNumOperands(read) != 4
        {
            return false;
        }
        let row = mlirOperationGetOperand(read, 1);
        let defined_outside =
            !mlirValueIsAOpResult(row) || !nested_in(mlirOpResultGetOwner(row), lp);
        mlirValueEqual(mlirOperationGetOperand(read, 2), j)
            && defined_outside
            && from_iv(row, row_iv)
    }
}

/// Whether a loop before `lp` in its block reads a row of `m` the way
/// `is_row_read` wants (that loop gets the prefetches).
unsafe fn direct_reader_before(lp: MlirOperation, m: MlirValue, row_iv: MlirValue) -> bool {
    unsafe {
        ops_before(lp).into_iter().any(|op| {
            if op_name(op) != "scf.for" || mlirOperationGetNumRegions(op) != 1 {
                return false;
            }
            let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
            let j = mlirBlockGetArgument(body, 0);
            block_ops(body).into_iter().any(|o| {
                op_name(o) == "vector.transfer_read"
                    && mlirValueEqual(mlirOperationGetOperand(o, 0), m)
                    && is_row_read(o, j, row_iv, op)
            })
        })
    }
}

/// Whether the row loop's body holds another pass besides `lp`: a loop or
/// a linalg op, which computes on the row while memory would sit idle.
unsafe fn has_other_pass(lp: MlirOperation) -> bool {
    unsafe {
        block_ops(mlirOperationGetBlock(lp)).into_iter().any(|op| {
            let name = op_name(op);
            op.ptr != lp.ptr && (name == "scf.for" || name.starts_with("linalg."))
        })
    }
}

/// `row + ROWS_AHEAD`, at most `m`'s last row, computed before `at`.
unsafe fn clamped_row(
    at: MlirOperation,
    row: MlirValue,
    m: MlirValue,
    loc: MlirLocation,
) -> MlirValue {
    unsafe {
        let last_row = mlirShapedTypeGetDimSize(mlirValueGetType(m), 0) - 1;
        row_ahead(at, row, ROWS_AHEAD, last_row, loc)
    }
}

/// `row + ahead`, at most `last_row`, computed before `at`.
unsafe fn row_ahead(at: MlirOperation, row: MlirValue, ahead: i64, last_row: i64, loc: MlirLocation) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let index = mlirIndexTypeGet(ctx);
        let ahead = index_constant(at, ahead);
        let next = insert_before(
            at,
            build(ctx, "arith.addi", loc, &[row, ahead], &[index], &[]),
        );
        let last = index_constant(at, last_row);
        insert_before(
            at,
            build(ctx, "arith.minsi", loc, &[next, last], &[index], &[]),
        )
    }
}

/// Before `at`, one prefetch of `m[lead…, row, col + k]` per cache line of
/// a row of a vector of type `vt` (its last dimension) starting at `col`.
unsafe fn line_prefetches(
    at: MlirOperation,
    m: MlirValue,
    lead: &[MlirValue],
    row: MlirValue,
    col: MlirValue,
    vt: MlirType,
    write: bool,
) {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let loc = mlirOperationGetLocation(at);
        let index = mlirIndexTypeGet(ctx);
        let per_line = elements_per_line(vt);
        let width = mlirShapedTypeGetDimSize(vt, mlirShapedTypeGetRank(vt) as isize - 1);
        let mut offset = 0;
        while offset < width {
            let c = if offset == 0 {
                col
            } else {
                let k = index_constant(at, offset);
                insert_before(at, build(ctx, "arith.addi", loc, &[col, k], &[index], &[]))
            };
            mlirBlockInsertOwnedOperationBefore(
                mlirOperationGetBlock(at),
                at,
                prefetch(ctx, loc, &[&[m], lead, &[row, c]].concat(), write),
            );
            offset += per_line;
        }
    }
}

/// A write (or a lane scan's read) of a row through views: the op, the 2-D
/// memref at the root of its views and, per dimension, the index terms
/// whose sum is the accessed position in the root (the op's own index and
/// each view's offset, static or not).
struct Place {
    write: MlirOperation,
    root: MlirValue,
    terms: [Vec<Term>; 2],
}

#[derive(Clone, Copy)]
enum Term {
    Value(MlirValue),
    Constant(i64),
    /// A value times a constant (a lane scan's chunk index times its lanes).
    Scaled(MlirValue, i64),
}

/// The writes of pass `lp` that get write prefetches (module comment).
unsafe fn row_writes(lp: MlirOperation) -> Vec<Place> {
    let mut found = Vec::new();
    unsafe {
        let Some((body, j, row_iv)) = pass_of_row_loop(lp) else {
            return found;
        };
        if !has_loop_before(lp) {
            return found;
        }
        found.extend(
            block_ops(body)
                .into_iter()
                .filter(|&op| op_name(op) == "vector.transfer_write")
                .filter_map(|op| place(op, j, row_iv)),
        );
    }
    found
}

/// Whether an `scf.for` comes before `lp` in its block.
unsafe fn has_loop_before(lp: MlirOperation) -> bool {
    unsafe {
        ops_before(lp).into_iter().any(|op| op_name(op) == "scf.for")
    }
}

/// The place of `write` in the root of its views, if it writes a 1-D vector
/// along the last dimension at column `j` of a static 2-D memref through
/// rank-2 subviews with unit strides, at a row that moves with `row_iv`.
unsafe fn place(write: MlirOperation, j: MlirValue, row_iv: MlirValue) -> Option<Place> {
    unsafe {
        if mlirOperationGetNumOperands(write) != 4
            || mlirShapedTypeGetRank(mlirValueGetType(mlirOperationGetOperand(write, 0))) != 1
        {
            return None;
        }
        let terms = [
            vec![Term::Value(mlirOperationGetOperand(write, 2))],
            vec![Term::Value(mlirOperationGetOperand(write, 3))],
        ];
        // The column: the pass's index plus static view offsets only.
        let column_is_j = mlirValueEqual(mlirOperationGetOperand(write, 3), j)
            || constant_int(mlirOperationGetOperand(write, 3)).is_some();
        let j_seen = mlirValueEqual(mlirOperationGetOperand(write, 3), j);
        rooted(write, mlirOperationGetOperand(write, 1), terms, j, row_iv, column_is_j, j_seen)
    }
}

/// A lane scan's chunk read (`lane_scan_schedule.rs`): in a pass whose
/// index `j` counts chunks, `vector.transfer_read %e[0, %j, c]` of a 1-D
/// vector, `%e = memref.expand_shape %v [[0], [1, 2]]` viewing a one-row
/// view `%v` as `[1, chunks, lanes]`, `%v` reached from a static 2-D memref
/// as in `place`: its place there, column `j · lanes + c` plus the views'
/// offsets. The row loop reads the row in this one pass (after a loop over
/// its first chunk), so the hardware prefetchers, which restart at each
/// 4 KiB page, leave every row's first lines to demand misses.
unsafe fn scan_place(read: MlirOperation, j: MlirValue, row_iv: MlirValue) -> Option<Place> {
    unsafe {
        if mlirOperationGetNumOperands(read) != 5 || mlirShapedTypeGetRank(mlirValueGetType(result(read))) != 1 {
            return None;
        }
        let e = mlirOperationGetOperand(read, 0);
        let expand = defined_by(e, "memref.expand_shape")?;
        let v = mlirOperationGetOperand(expand, 0);
        let (vt, et) = (mlirValueGetType(v), mlirValueGetType(e));
        if mlirShapedTypeGetRank(vt) != 2
            || mlirShapedTypeGetRank(et) != 3
            || mlirShapedTypeGetDimSize(vt, 0) != 1
            || mlirShapedTypeGetDimSize(et, 0) != 1
            || mlirShapedTypeIsDynamicDim(et, 2)
            || constant_int(mlirOperationGetOperand(read, 1)) != Some(0)
            || !mlirValueEqual(mlirOperationGetOperand(read, 2), j)
        {
            return None;
        }
        let c = constant_int(mlirOperationGetOperand(read, 3))?;
        let lanes = mlirShapedTypeGetDimSize(et, 2);
        let terms = [vec![Term::Constant(0)], vec![Term::Scaled(j, lanes), Term::Constant(c)]];
        rooted(read, v, terms, j, row_iv, true, true)
    }
}

/// The `Place` of `op` accessing `m` at `terms` (per dimension), `m`
/// followed up rank-2 subviews with unit strides to a static 2-D memref;
/// `None` unless the row moves with `row_iv` and, with the views' column
/// offsets, the column is still `j` (`column_is_j`: the pass's index or
/// constants; `j_seen`: `j` among them).
unsafe fn rooted(
    op: MlirOperation,
    mut m: MlirValue,
    mut terms: [Vec<Term>; 2],
    j: MlirValue,
    row_iv: MlirValue,
    mut column_is_j: bool,
    mut j_seen: bool,
) -> Option<Place> {
    unsafe {
        while let Some(view) = defined_by(m, "memref.subview") {
            let src = mlirOperationGetOperand(view, 0);
            let (st, vt) = (mlirValueGetType(src), mlirValueGetType(m));
            let offsets = mlirOperationGetAttributeByName(view, string_ref("static_offsets"));
            let strides = mlirOperationGetAttributeByName(view, string_ref("static_strides"));
            if mlirShapedTypeGetRank(st) != 2
                || mlirShapedTypeGetRank(vt) != 2
                || offsets.ptr.is_null()
                || strides.ptr.is_null()
                || (0..2).any(|d| mlirDenseI64ArrayGetElement(strides, d) != 1)
            {
                return None;
            }
            // Dynamic offsets are the operands right after the source.
            let mut dynamic = 1;
            for d in 0..2 {
                let o = mlirDenseI64ArrayGetElement(offsets, d as isize);
                if mlirShapedTypeIsDynamicSize(o) {
                    let v = mlirOperationGetOperand(view, dynamic);
                    dynamic += 1;
                    if d == 1 {
                        j_seen |= mlirValueEqual(v, j);
                        column_is_j &= mlirValueEqual(v, j) || constant_int(v).is_some();
                    }
                    terms[d].push(Term::Value(v));
                } else {
                    terms[d].push(Term::Constant(o));
                }
            }
            m = src;
        }
        let t = mlirValueGetType(m);
        let moves = terms[0]
            .iter()
            .any(|t| matches!(t, Term::Value(v) if from_iv(*v, row_iv)));
        (mlirTypeIsAMemRef(t)
            && mlirShapedTypeHasStaticShape(t)
            && mlirShapedTypeGetRank(t) == 2
            && column_is_j
            && j_seen
            && moves)
            .then_some(Place {
                write: op,
                root: m,
                terms,
            })
    }
}

/// The sum of `p`'s terms in dimension `d`, computed before `at`.
unsafe fn root_index(p: &Place, d: usize, at: MlirOperation) -> MlirValue {
    unsafe {
        let ctx = mlirOperationGetContext(at);
        let loc = mlirOperationGetLocation(at);
        let index = mlirIndexTypeGet(ctx);
        let constant: i64 = p.terms[d]
            .iter()
            .map(|t| match t {
                Term::Constant(c) => *c,
                Term::Value(_) | Term::Scaled(..) => 0,
            })
            .sum();
        let mut sum: Option<MlirValue> = None;
        for t in &p.terms[d] {
            let v = match *t {
                Term::Value(v) => Some(v),
                Term::Scaled(v, k) => {
                    let k = index_constant(at, k);
                    Some(insert_before(at, build(ctx, "arith.muli", loc, &[v, k], &[index], &[])))
                }
                Term::Constant(_) => None,
            };
            let Some(v) = v else { continue };
            if constant_int(v) == Some(0) {
                continue;
            }
            sum = Some(match sum {
                None => v,
                Some(s) => insert_before(at, build(ctx, "arith.addi", loc, &[s, v], &[index], &[])),
            });
        }
        match (sum, constant) {
            (None, c) => index_constant(at, c),
            (Some(s), 0) => s,
            (Some(s), c) => {
                let k = index_constant(at, c);
                insert_before(at, build(ctx, "arith.addi", loc, &[s, k], &[index], &[]))
            }
        }
    }
}

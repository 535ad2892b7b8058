//! `tensorc-matvec`: matrix·vector and vector·matrix products become the
//! reductions they are, and reductions over outer axes are cut for threads
//! into wide column strips.
//!
//! Why: a contraction in which one operand has no free axis (`dot` of a
//! 1×K row with a K×N matrix, of an M×K matrix with a K×1 column, of a
//! 1-D vector with a matrix, a batch of one) reads every element of the
//! matrix once and does one multiply-add with it: it is memory-bound, like
//! a `sum`. The matmul schedules tile it into 8×32 register tiles of which
//! a single row or column is used (vector·matrix ran at 0.27× NumPy,
//! matrix·vector at 0.57×), and the frontend's generic for 1-D operands
//! stayed scalar loops reading the matrix column-wise (0.02×). Rewritten
//! as a `linalg.generic` whose loops follow the matrix's layout, the
//! product is exactly the shape the reduction schedule
//! (`reduction_schedule.rs`) streams at the memory bandwidth (contractions
//! shorter than `MIN_CONTRACTION` stay matmuls: there the reduction's
//! per-row overhead outweighs the work):
//! - the matrix contracted over its last axis (matrix·vector, M×K·K×1):
//!   a row reduction with a multiply, four rows at a time with 32 partial
//!   sums each (`reduction_schedule::matvec_reduction_tag`; two rows at a
//!   time for matrices over `MATVEC_STREAM_BYTES`, which stream from
//!   memory; short rows get the plain row reduction's tags);
//! - the matrix contracted over another axis (vector·matrix, 1×K·K×N): an
//!   outer-axis reduction, rows of the matrix scaled by one vector element
//!   each and accumulated into a vector of N results in blocks of rows,
//!   tagged like `sum x, axes: [0]`.
//!
//! Size-one axes are dropped (`tensor.collapse_shape` of the operands,
//! `tensor.expand_shape` of the result, both free views after
//! bufferization), so a batch of one or the unit M/N of a named matmul
//! leaves no loop behind. The body (multiply, add, any conversions) is
//! moved over unchanged, and each result element still sums in the order
//! of its contracted axis before the schedule splits it, as for `sum`.
//!
//! Threads: the pass runs after `tensorc-parallel-mark`, which split the
//! original op; the new op gets its split here, by the same rules
//! (`parallel_mark::decide`) for rows, and for outer-axis reductions (the
//! new vector·matrix ops and the frontend's `sum`/`reduce_max`/… over
//! outer axes, which the marker tagged already) one that keeps each chunk's
//! slice of a row at least `MIN_RUN` elements long, or, for narrower rows,
//! chunks of rows each with a partial result (`row_chunks`; none for small
//! ones): the marker's 64-column chunks made every chunk a
//! column strip that reads 256 bytes per row and then jumps a whole row
//! ahead, which streams at half the bandwidth, on one thread too (chunks
//! run in loop order). Splitting the rows instead (a partial result per
//! chunk of rows, added up after) was tried and measured 5–15 % slower on
//! one thread than 1024-column strips for rows wide enough for two: the
//! accumulators of a whole 4096-wide row do not stay in L1 beside eight
//! input streams. Rows too narrow for two strips ran whole on one thread
//! before `row_chunks`.
//!
//! Few rows (`few_rows_plan`): a `linalg.matmul` of 2 to 4 rows with a B
//! of 128 KiB or more becomes a generic over `[K][M][N]` tagged
//! `tensorc.few_rows` for the reduction schedule (blocks of rows of B,
//! each read once for every row of A), its multiply and add marked
//! `contract`, split for threads in strips of N like the outer-axis
//! reductions (never chunks of M, which would each read all of B); one of
//! 5 to 8 rows with a B of 8 MiB or more (`split_into_few_rows`) becomes
//! two such products on slices of A and C.
//!
//! Which ops: function-level `linalg.matmul`, `linalg.batch_matmul` and
//! contraction `linalg.generic`s (`mlirLinalgIsAContractionOp`) with two
//! inputs and one init, static shapes, projected-permutation maps, and,
//! after dropping size-one loops, one contracted loop and free loops in
//! exactly one operand; ops another schedule already tagged (`tensorc.*`
//! other than the marker's `tensorc.par_*`) are left alone.

use crate::external_pass::{PassId, module_pass};
use crate::parallel_mark::{CHUNK_WORK, Decision, MAX_CHUNKS, MIN_WORK, analyze, decide, partials, single_combiner};
use crate::parallel_schedule::{MAX_DIM, MAX_TARGET, reduction_tag, tag as parallel_tag};
use crate::raw::*;
use crate::reduction_schedule::{FEW_ROWS_TAG, matvec_reduction_tag, outer_reduction_tag};
use melior::pass::Pass;
use mlir_sys::*;
use std::fmt::Write as _;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::MATVEC;

/// The slice of a row (in elements of the split loop and the loops after
/// it) that a thread's chunk of an outer-axis reduction reads before moving
/// to the next row is at least this long: 4 KiB of f32. Rows shorter than
/// two such slices are not split: on one thread whole rows of 1999 or 2000
/// summed over axis 0 were 1.3–2× faster than the marker's 32-column
/// strips and than halves, and on two threads still as fast as either
/// (3000×2000: 0.29 ms whole on one thread, 0.54 ms in two halves on two).
pub const MIN_RUN: u64 = 1024;

/// Shortest contracted loop that is rewritten (see `plan`).
pub const MIN_CONTRACTION: u64 = 64;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Rewrite matrix-vector contractions as reductions; split outer-axis reductions in wide strips",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { run(module) };
            true
        },
    )
}

/// How a matrix-vector contraction is computed (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The matrix is contracted over its last axis: one reduction per row.
    Rows,
    /// The matrix is contracted over an outer axis: rows accumulated.
    Outer,
    /// A product of a few rows of A (`few_rows_plan`): blocks of rows of
    /// B accumulated into every row of the result.
    FewRows,
}

/// The loops of a contraction as the classification needs them: per loop,
/// its extent, and per operand (inputs, then the init), the loops its
/// indexing map reads, in the order of the operand's axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contraction {
    pub extents: Vec<u64>,
    pub operands: [Vec<usize>; 3],
}

/// What the rewrite does with a contraction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub kind: Kind,
    /// The old loops that remain, in the new loop order (the matrix's axes,
    /// size-one ones dropped).
    pub order: Vec<usize>,
    /// The contracted loop (an old loop index).
    pub k: usize,
}

/// The plan for `c` (pure, so it is unit-tested): `None` unless, after
/// dropping size-one loops, exactly one loop is contracted (read by both
/// inputs, not the init), one input (the matrix) reads every loop, the
/// other (the vector) reads only the contracted loop and batch loops, and
/// the matrix has loops of its own (else it is a dot of two vectors).
pub fn plan(c: &Contraction) -> Option<Plan> {
    let live = |l: &usize| c.extents[*l] > 1;
    let uses: Vec<Vec<usize>> = c
        .operands
        .iter()
        .map(|o| o.iter().copied().filter(live).collect())
        .collect();
    let nloops = c.extents.len();
    // Every loop read by some operand (a loop no operand reads has no extent).
    if (0..nloops).any(|l| !c.operands.iter().any(|o| o.contains(&l))) {
        return None;
    }
    let out = &uses[2];
    let reduced: Vec<usize> = (0..nloops)
        .filter(|l| live(l) && !out.contains(l))
        .collect();
    let &[k] = reduced.as_slice() else {
        return None;
    };
    // Short contractions stay with the matmul schedule: per row, the
    // reduction's split and partial-sum tree cost more than the few
    // multiply-adds (batched 31×48·48×1 products ran 3× slower rewritten,
    // 16×8×24×1 9× slower), while its register tiles handle them well.
    if c.extents[k] < MIN_CONTRACTION {
        return None;
    }
    let all: Vec<usize> = (0..nloops).filter(live).collect();
    let covers = |u: &Vec<usize>| all.iter().all(|l| u.contains(l));
    let matrix = match (covers(&uses[0]), covers(&uses[1])) {
        (true, false) => 0,
        (false, true) => 1,
        _ => return None,
    };
    let vector = &uses[1 - matrix];
    // The vector reads the contracted loop and loops it shares with the
    // result and the matrix (batch loops), nothing of its own.
    if !vector.contains(&k) || vector.iter().any(|l| *l != k && !out.contains(l)) {
        return None;
    }
    // The matrix has free loops: result loops the vector does not read.
    if !out.iter().any(|l| !vector.contains(l)) {
        return None;
    }
    let order = uses[matrix].clone();
    let last = *order.last()?;
    let kind = if last == k {
        Kind::Rows
    } else if out.last() == Some(&last) {
        // Rows of the matrix are accumulated into the result: the
        // innermost loop must be contiguous in both.
        Kind::Outer
    } else {
        return None;
    };
    Some(Plan { kind, order, k })
}

/// The split for threads of an outer-axis reduction with loops `extents`
/// (`parallel` per loop), whose input reads them in order (so a chunk of
/// loop `d` reads runs of `chunk · extents[d+1..]` contiguous elements): the
/// first parallel loop that can give two chunks whose runs are at least
/// `MIN_RUN` long, with about one
/// chunk per `CHUNK_WORK` iterations (at most `MAX_CHUNKS`) and chunks a
/// power of two, as `parallel_mark::decide`.
pub fn outer_decision(extents: &[u64], parallel: &[bool]) -> Option<Decision> {
    let work = extents.iter().fold(1u64, |a, &e| a.saturating_mul(e));
    if work < MIN_WORK || extents.contains(&0) {
        return None;
    }
    let wanted = (work / CHUNK_WORK).clamp(1, MAX_CHUNKS);
    (0..extents.len().min(MAX_DIM + 1))
        .filter(|&d| parallel[d])
        .find_map(|d| {
            let inner: u64 = extents[d + 1..].iter().product::<u64>().max(1);
            let extent = extents[d];
            let least = MIN_RUN.div_ceil(inner);
            if extent / least < 2 {
                return None;
            }
            let chunk = extent
                .div_ceil(wanted)
                .max(least)
                .next_power_of_two()
                .min(MAX_TARGET);
            (chunk < extent).then_some(Decision { dim: d, chunk })
        })
}

/// Rows per chunk of an outer-axis reduction split into chunks of rows
/// (`row_chunks`), at least: eight blocks of `BLOCK_ROWS`.
const MIN_CHUNK_ROWS: u64 = 64;

/// Iterations an outer-axis reduction needs before it is split into
/// chunks of rows (a megabyte of f32): a smaller one is over in a few
/// microseconds, about what waking the pool costs.
const MIN_ROW_CHUNK_WORK: u64 = 1 << 18;

/// The number of chunks of rows of an outer-axis reduction whose rows are
/// too short for two `MIN_RUN` strips (`outer_decision` gives `None`):
/// its only reduction is its first loop (`sum x, axes: [0]` of
/// 100000×1500 or 4096×1024 ran whole, on one thread). Each chunk reduces
/// its rows into a partial row of results, in row order, and the partial
/// rows are combined after (`parallel_schedule::reduction_tag`, upstream
/// `split_reduction`), so a float sum is reassociated across chunks only,
/// the same way whatever the thread count. As many chunks as a full
/// reduction's partials (`parallel_mark::partials`), halved until they
/// divide the rows with at least `MIN_CHUNK_ROWS` rows each; `None`
/// otherwise (and below
/// `MIN_ROW_CHUNK_WORK`). Two threads, same minutes: `sum x, axes: [0]` of
/// 3000×1999 f32 0.34 → 0.16 ms, 100000×1500 14.2 → 7.3 ms, softmax over
/// axis 0 of 4096×1024 1.54 → 0.82 ms; one thread 3–5 % slower (the
/// partial rows and their combination).
pub fn row_chunks(extents: &[u64], parallel: &[bool]) -> Option<u64> {
    let (&rows, _) = extents.split_first()?;
    if parallel.first() != Some(&false) || !parallel[1..].iter().all(|&p| p) {
        return None;
    }
    let work = extents.iter().fold(1u64, |a, &e| a.saturating_mul(e));
    if work < MIN_ROW_CHUNK_WORK {
        return None;
    }
    let mut c = partials(work);
    while c >= 2 && (!rows.is_multiple_of(c) || rows / c < MIN_CHUNK_ROWS) {
        c /= 2;
    }
    (c >= 2).then_some(c)
}

/// Rewrites the module's matrix-vector contractions and splits its
/// outer-axis reductions (see the module comment).
///
/// # Safety
/// `module` must be a live `builtin.module`.
unsafe fn run(module: MlirOperation) {
    unsafe {
        let ctx = mlirOperationGetContext(module);
        let ops = linalg_ops(module);
        for op in ops {
            if !at_function_level(op) || scheduled(op) {
                continue;
            }
            let contracted = contraction(op);
            // Named products only: `split_rows` rebuilds them as
            // `linalg.matmul`s, which a generic's body need not be.
            if op_name(op) == "linalg.matmul"
                && let Some(c) = &contracted
                && float_body(op)
            {
                let b_bytes = static_bytes(mlirValueGetType(mlirOperationGetOperand(op, 1)));
                if let Some(p) = few_rows_plan(c, b_bytes) {
                    few_rows(ctx, op, c, &p);
                    continue;
                }
                if split_into_few_rows(c, b_bytes) {
                    for part in split_rows(op, &row_groups(c.extents[0])) {
                        if let Some(c) = contraction(part)
                            && let Some(p) = few_rows_plan(&c, b_bytes)
                        {
                            few_rows(ctx, part, &c, &p);
                        }
                    }
                    continue;
                }
            }
            let planned = contracted.and_then(|c| plan(&c).map(|p| (c, p)));
            if let Some((c, p)) = planned {
                let generic = rewrite(ctx, op, &c, &p);
                if p.kind == Kind::Outer {
                    let extents: Vec<u64> = p.order.iter().map(|&l| c.extents[l]).collect();
                    let parallel: Vec<bool> = p.order.iter().map(|&l| l != p.k).collect();
                    set_parallel_tag(ctx, generic, outer_decision(&extents, &parallel));
                }
            } else if let Some((extents, parallel)) = outer_reduction(op) {
                drop_parallel_tags(op);
                match outer_decision(&extents, &parallel) {
                    Some(d) => set_parallel_tag(ctx, op, Some(d)),
                    // Rows too short for two wide strips: chunks of rows,
                    // each with a partial result (`split_reduction`).
                    None => {
                        if mlirOperationGetNumOperands(op) == 2
                            && single_combiner(op)
                            && let Some(c) = row_chunks(&extents, &parallel)
                        {
                            mlirOperationSetAttributeByName(
                                op,
                                string_ref(&reduction_tag(c)),
                                mlirUnitAttrGet(ctx),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The fewest and most rows of A of a few-row product (`few_rows_plan`).
/// With five rows or more the accumulators' loads and stores (one each per
/// row and block) outweighed the stream: blocks of two rows of B (four
/// would spill A's broadcasts), one thread, 5×4096·4096² 5.2 → 6.0 ms,
/// 7×4099·4099×1025 0.47 → 0.69, 8×4096·4096² 5.8 → 5.9 (6×8192·8192×2048
/// 5.2 → 4.3).
pub const FEW_ROWS: std::ops::RangeInclusive<u64> = 2..=4;

/// The smallest B (bytes) of a few-row product: past L1, where the matrix
/// schedule's tiles were as fast (4×100·100×300, 117 KiB, 1.2 against 1.3
/// µs one thread).
pub const FEW_ROWS_MIN_B_BYTES: u64 = 128 << 10;

/// The plan of a few-row product (pure, so it is unit-tested): a
/// `linalg.matmul`'s loops (m, n, k) with 2 to 4 rows (`FEW_ROWS`), two
/// columns or more and a B (`b_bytes`) of at least `FEW_ROWS_MIN_B_BYTES`
/// become a generic over `[K][M][N]`, which the reduction schedule tiles
/// in blocks of rows of B, each vector of B read once for every row of A
/// (`reduction_schedule::add_few_rows`). The matrix schedule's tiles read
/// B in column strips, 32 columns of every row (a new page per row), and
/// session 35's one vector·matrix product per row (two rows of a B over 16
/// MiB) all of B once per row. One thread, same minutes, B from memory:
/// 4×4096·4096² f32 5.1 → 2.4 ms (XLA 3.3), 3×4096·4096² 5.1 → 2.4,
/// 4×2048·2048×8192 5.0 → 2.3, 3×1024·1024×4096 0.50 → 0.27; two rows,
/// against one product per row: 2×4096·4096² 2.6 → 1.7, 2×2048·2048² 0.30
/// → 0.17; B in L2 or L3, against the matrix schedule: 2×2048·2048×1024
/// 0.24 → 0.073, 4×1024·1024² 0.082 → 0.041, 3×1536·1536² 0.142 → 0.093,
/// 4×128·128×1024 0.0083 → 0.0043, 4×256·256² 0.0024 → 0.0021.
pub fn few_rows_plan(c: &Contraction, b_bytes: u64) -> Option<Plan> {
    (plain_matmul(c) && FEW_ROWS.contains(&c.extents[0]) && c.extents[1] >= 2 && b_bytes >= FEW_ROWS_MIN_B_BYTES)
        .then(|| Plan { kind: Kind::FewRows, order: vec![2, 0, 1], k: 2 })
}

/// Rewrites the matmul `op` as the few-row product of `plan`
/// (`few_rows_plan`): the generic, its multiply and add `contract`, split
/// for threads in strips of N.
unsafe fn few_rows(ctx: MlirContext, op: MlirOperation, c: &Contraction, plan: &Plan) {
    unsafe {
        let generic = rewrite(ctx, op, c, plan);
        contract_body(ctx, generic);
        let loops = [c.extents[2], c.extents[0], c.extents[1]];
        set_parallel_tag(ctx, generic, outer_decision(&loops, &[false, false, true]));
    }
}

/// The most rows of A of a product split into few-row products
/// (`split_into_few_rows`).
pub const SPLIT_ROWS: std::ops::RangeInclusive<u64> = 5..=8;

/// The smallest B (bytes) of a product split into few-row products: from
/// 16 MiB the split won, at 4 MiB it measured the same as the matrix
/// schedule (8×1024·1024², 8×512·512×2048: 0.080 and 0.073 ms, two 4-row
/// products 2 × 0.041 and 2 × 0.039).
pub const SPLIT_MIN_B_BYTES: u64 = 8 << 20;

/// Whether the `linalg.matmul` `c` (loops m, n, k) of 5 to 8 rows
/// (`SPLIT_ROWS`) with a B of at least `SPLIT_MIN_B_BYTES` is computed as
/// few-row products of up to 4 rows each (`row_groups`), each reading B
/// once: B read twice, where the matrix schedule's tiles read it in column
/// strips. One thread, same minutes: 8×4096·4096² f32 5.85 → 2 × 2.29 ms,
/// 8×2048·2048² 0.54 → 2 × 0.19. N of at least two `MIN_RUN` strips, so
/// each product runs on two threads: with one strip, two threads took
/// 8×4096·4096×1024 0.25 → 0.37 ms (one thread 0.53 → 0.39).
pub fn split_into_few_rows(c: &Contraction, b_bytes: u64) -> bool {
    plain_matmul(c) && SPLIT_ROWS.contains(&c.extents[0]) && c.extents[1] >= 2 * MIN_RUN && b_bytes >= SPLIT_MIN_B_BYTES
}

/// `m` rows in groups of at most four, as even as possible, in order:
/// (first row, rows) each.
pub fn row_groups(m: u64) -> Vec<(u64, u64)> {
    let groups = m.div_ceil(4).max(1);
    let (base, extra) = (m / groups, m % groups);
    let mut start = 0;
    (0..groups)
        .map(|g| {
            let rows = base + u64::from(g < extra);
            let group = (start, rows);
            start += rows;
            group
        })
        .collect()
}

/// Replaces the `linalg.matmul` `op` (`[M][K]·[K][N]` into C, tensors of
/// static shape) by one `linalg.matmul` per group of rows of A (`groups`),
/// each on slices of A and C, inserted back into C in turn; returns them.
/// Built by parsing a helper function (as `pack_mark`'s unbatching), whose
/// ops are moved in front of `op`.
unsafe fn split_rows(op: MlirOperation, groups: &[(u64, u64)]) -> Vec<MlirOperation> {
    unsafe {
        let ctx = mlirOperationGetContext(op);
        let ty = |i| print_type(mlirValueGetType(mlirOperationGetOperand(op, i)));
        let (ta, tb, tc) = (ty(0), ty(1), ty(2));
        let (a_shape, c_shape) = (shape(mlirValueGetType(mlirOperationGetOperand(op, 0))), shape(mlirValueGetType(result(op))));
        let (k, n) = (a_shape[1], c_shape[1]);
        let elem = print_type(mlirShapedTypeGetElementType(mlirValueGetType(result(op))));
        let mut text = format!("func.func @tensorc_row_groups(%a: {ta}, %b: {tb}, %c: {tc}) -> {tc} {{\n");
        let mut acc = "%c".to_owned();
        for (g, &(start, rows)) in groups.iter().enumerate() {
            let (sa, sc) = (format!("tensor<{rows}x{k}x{elem}>"), format!("tensor<{rows}x{n}x{elem}>"));
            let _ = write!(
                text,
                "  %a{g} = tensor.extract_slice %a[{start}, 0] [{rows}, {k}] [1, 1] : {ta} to {sa}\n\
                 \x20 %c{g} = tensor.extract_slice {acc}[{start}, 0] [{rows}, {n}] [1, 1] : {tc} to {sc}\n\
                 \x20 %p{g} = linalg.matmul ins(%a{g}, %b : {sa}, {tb}) outs(%c{g} : {sc}) -> {sc}\n\
                 \x20 %u{g} = tensor.insert_slice %p{g} into {acc}[{start}, 0] [{rows}, {n}] [1, 1] : {sc} into {tc}\n"
            );
            acc = format!("%u{g}");
        }
        let _ = write!(text, "  return {acc} : {tc}\n}}");
        let helper = mlirOperationCreateParse(ctx, string_ref(&text), string_ref(NAME));
        if helper.ptr.is_null() {
            // Not expected (the types come from a verified op); the matrix
            // schedule still takes the product.
            return Vec::new();
        }
        let body = mlirRegionGetFirstBlock(mlirOperationGetRegion(helper, 0));
        for i in 0..3 {
            mlirValueReplaceAllUsesOfWith(mlirBlockGetArgument(body, i), mlirOperationGetOperand(op, i as isize));
        }
        let mut parts = Vec::new();
        let ops = block_ops(body);
        if let Some((ret, moved)) = ops.split_last() {
            for &o in moved {
                mlirOperationMoveBefore(o, op);
                if op_name(o) == "linalg.matmul" {
                    parts.push(o);
                }
            }
            mlirValueReplaceAllUsesOfWith(result(op), mlirOperationGetOperand(*ret, 0));
            mlirOperationDestroy(op);
        }
        mlirOperationDestroy(helper);
        parts
    }
}

/// Whether `c` has a `linalg.matmul`'s loops (m, n, k) and maps: A reads
/// (m, k), B (k, n), C (m, n).
fn plain_matmul(c: &Contraction) -> bool {
    c.extents.len() == 3 && c.operands == [vec![0, 2], vec![2, 1], vec![0, 1]]
}

/// Whether `op`'s body multiplies and adds floats (`arith.mulf`, `addf`).
unsafe fn float_body(op: MlirOperation) -> bool {
    unsafe {
        let ops = block_ops(mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0)));
        let names: Vec<String> = ops.iter().map(|&o| op_name(o)).collect();
        names.iter().any(|n| n == "arith.mulf") && names.iter().any(|n| n == "arith.addf")
    }
}

/// Marks the multiply and add of `generic`'s body `fastmath<contract>`, so
/// each product and its sum become one FMA (`tensorc-fused-row-sums`), as
/// in the matrix schedules' register tiles.
unsafe fn contract_body(ctx: MlirContext, generic: MlirOperation) {
    unsafe {
        let flags = attr(ctx, "#arith.fastmath<contract>");
        for o in block_ops(mlirRegionGetFirstBlock(mlirOperationGetRegion(generic, 0))) {
            if matches!(op_name(o).as_str(), "arith.mulf" | "arith.addf") {
                mlirOperationSetAttributeByName(o, string_ref("fastmath"), flags);
            }
        }
    }
}

/// Whether `op` sits directly in a function body (not in a loop another
/// step made, whose ops are tiles already).
unsafe fn at_function_level(op: MlirOperation) -> bool {
    unsafe {
        let parent = mlirOperationGetParentOperation(op);
        !parent.ptr.is_null() && op_name(parent) == "func.func"
    }
}

/// Whether an earlier step tagged `op` for a schedule of its own (any
/// `tensorc.` attribute but the parallel marker's).
unsafe fn scheduled(op: MlirOperation) -> bool {
    unsafe {
        attribute_names(op)
            .iter()
            .any(|n| n.starts_with("tensorc.") && !n.starts_with("tensorc.par_"))
    }
}

unsafe fn attribute_names(op: MlirOperation) -> Vec<String> {
    unsafe {
        (0..mlirOperationGetNumAttributes(op))
            .map(|i| from_string_ref(mlirIdentifierStr(mlirOperationGetAttribute(op, i).name)))
            .collect()
    }
}

/// Removes the parallel marker's tags from `op`.
unsafe fn drop_parallel_tags(op: MlirOperation) {
    unsafe {
        for n in attribute_names(op) {
            if n.starts_with("tensorc.par_") {
                mlirOperationRemoveAttributeByName(op, string_ref(&n));
            }
        }
    }
}

unsafe fn set_parallel_tag(ctx: MlirContext, op: MlirOperation, d: Option<Decision>) {
    if let Some(d) = d {
        unsafe {
            mlirOperationSetAttributeByName(
                op,
                string_ref(&parallel_tag(d.dim, d.chunk)),
                mlirUnitAttrGet(ctx),
            )
        };
    }
}

/// The indexing maps of `op` when there is one per operand and each is a
/// projected permutation: per operand, the loops of its axes in order, and
/// the number of loops.
pub(crate) unsafe fn permutation_maps(
    op: MlirOperation,
    maps: MlirAttribute,
) -> Option<(Vec<Vec<usize>>, usize)> {
    unsafe {
        if maps.ptr.is_null()
            || !mlirAttributeIsAArray(maps)
            || mlirArrayAttrGetNumElements(maps) != mlirOperationGetNumOperands(op)
        {
            return None;
        }
        let mut loops = 0;
        let mut operands = Vec::new();
        for i in 0..mlirArrayAttrGetNumElements(maps) {
            let map = mlirAffineMapAttrGetValue(mlirArrayAttrGetElement(maps, i));
            if !mlirAffineMapIsProjectedPermutation(map) {
                return None;
            }
            loops = mlirAffineMapGetNumDims(map) as usize;
            operands.push(
                (0..mlirAffineMapGetNumResults(map))
                    .map(|j| mlirAffineDimExprGetPosition(mlirAffineMapGetResult(map, j)) as usize)
                    .collect(),
            );
        }
        Some((operands, loops))
    }
}

/// Per loop, its extent, from the static shapes of `op`'s operands read
/// through `operands` (the loops of each operand's axes).
pub(crate) unsafe fn extents(op: MlirOperation, operands: &[Vec<usize>], loops: usize) -> Option<Vec<u64>> {
    unsafe {
        let mut extents = vec![None; loops];
        for (i, axes) in operands.iter().enumerate() {
            let shape =
                crate::parallel_mark::static_shape(mlirOperationGetOperand(op, i as isize))?;
            for (&l, &size) in axes.iter().zip(&shape) {
                extents[l] = Some(size);
            }
        }
        extents.into_iter().collect()
    }
}

/// `op` as a contraction the plan can classify: a matmul, batch matmul or
/// contraction generic with two tensor inputs and one tensor init, one
/// result, static shapes and projected-permutation maps.
unsafe fn contraction(op: MlirOperation) -> Option<Contraction> {
    unsafe {
        let name = op_name(op);
        if !matches!(
            name.as_str(),
            "linalg.matmul" | "linalg.batch_matmul" | "linalg.generic"
        ) || mlirOperationGetNumOperands(op) != 3
            || mlirOperationGetNumResults(op) != 1
            || mlirOperationGetNumRegions(op) != 1
            || !mlirLinalgIsAContractionOp(op)
        {
            return None;
        }
        for i in 0..3 {
            if !mlirTypeIsARankedTensor(mlirValueGetType(mlirOperationGetOperand(op, i))) {
                return None;
            }
        }
        let (operands, loops) = permutation_maps(op, mlirLinalgGetIndexingMapsAttribute(op))?;
        let extents = extents(op, &operands, loops)?;
        let operands: [Vec<usize>; 3] = operands.try_into().ok()?;
        Some(Contraction { extents, operands })
    }
}

/// The loops of `op` (extents, whether parallel) when it is an outer-axis
/// reduction whose split `outer_decision` makes: a function-level
/// `linalg.generic` with static shapes, projected-permutation maps, a
/// parallel innermost loop and some reduction loop, one input reading every
/// loop in order, and a split from the parallel marker already (ops the
/// marker left whole are too small to split).
unsafe fn outer_reduction(op: MlirOperation) -> Option<(Vec<u64>, Vec<bool>)> {
    unsafe {
        if op_name(op) != "linalg.generic"
            || !attribute_names(op)
                .iter()
                .any(|n| n.starts_with("tensorc.par_d"))
        {
            return None;
        }
        let (maps, parallel) = generic_maps_and_kinds(op)?;
        if parallel.last() != Some(&true) || parallel.iter().all(|&p| p) {
            return None;
        }
        let (operands, loops) = permutation_maps(op, maps)?;
        let inputs = operands.len() - mlirOperationGetNumResults(op) as usize;
        let identity: Vec<usize> = (0..loops).collect();
        if !operands[..inputs].contains(&identity) {
            return None;
        }
        Some((extents(op, &operands, loops)?, parallel))
    }
}

/// The type of tensor `t` without the axes at `drop`.
unsafe fn without_axes(t: MlirType, drop: &[bool]) -> MlirType {
    unsafe {
        let shape: Vec<i64> = (0..mlirShapedTypeGetRank(t))
            .filter(|&i| !drop[i as usize])
            .map(|i| mlirShapedTypeGetDimSize(t, i as isize))
            .collect();
        mlirRankedTensorTypeGet(
            shape.len() as isize,
            shape.as_ptr(),
            mlirShapedTypeGetElementType(t),
            mlirAttributeGetNull(),
        )
    }
}

/// The reassociation that folds the axes at `drop` (size one) into their
/// neighbours: each kept axis with the dropped ones before it, the dropped
/// ones after the last kept axis with that one. At least one axis is kept.
fn reassociation(drop: &[bool]) -> String {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut pending = Vec::new();
    for (i, &d) in drop.iter().enumerate() {
        pending.push(i);
        if !d {
            groups.push(std::mem::take(&mut pending));
        }
    }
    if let Some(last) = groups.last_mut() {
        last.extend(pending);
    }
    let groups: Vec<String> = groups
        .iter()
        .map(|g| {
            let g: Vec<String> = g.iter().map(|i| i.to_string()).collect();
            format!("[{}]", g.join(", "))
        })
        .collect();
    format!("[{}]", groups.join(", "))
}

/// The size in bytes of the matrix among the inputs `values` of the new
/// generic (the input that reads every loop of `plan`).
unsafe fn matrix_bytes(values: &[MlirValue], c: &Contraction, plan: &Plan) -> u64 {
    unsafe {
        let elements: u64 = plan.order.iter().map(|&l| c.extents[l]).product();
        let bits = values[..2]
            .iter()
            .map(|&v| mlirValueGetType(v))
            .filter(|&t| mlirShapedTypeGetRank(t) as usize == plan.order.len())
            .filter_map(|t| element_bits(t))
            .max()
            .unwrap_or(32);
        elements * u64::from(bits) / 8
    }
}

/// Replaces the contraction `op` by the generic of `plan` (see the module
/// comment), tagged for the reduction schedule, and for threads when it is
/// a row reduction (the caller splits the others); returns the generic.
unsafe fn rewrite(
    ctx: MlirContext,
    op: MlirOperation,
    c: &Contraction,
    plan: &Plan,
) -> MlirOperation {
    unsafe {
        let position = |l: usize| plan.order.iter().position(|&x| x == l);
        let mut values = Vec::new();
        let mut maps = Vec::new();
        let mut out_type = None;
        for (i, axes) in c.operands.iter().enumerate() {
            let v = mlirOperationGetOperand(op, i as isize);
            let t = mlirValueGetType(v);
            let drop: Vec<bool> = axes.iter().map(|&l| c.extents[l] == 1).collect();
            let kept: Vec<String> = axes
                .iter()
                .filter_map(|&l| position(l).map(|p| format!("d{p}")))
                .collect();
            maps.push(format!(
                "affine_map<({}) -> ({})>",
                (0..plan.order.len())
                    .map(|p| format!("d{p}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                kept.join(", ")
            ));
            let v = if drop.contains(&true) {
                reshape_before(op, v, without_axes(t, &drop), &reassociation(&drop), false)
            } else {
                v
            };
            if i == 2 {
                out_type = Some((mlirValueGetType(v), drop));
            }
            values.push(v);
        }
        let (out_type, out_drop) = out_type.expect("a contraction has an init");
        let parallel: Vec<bool> = plan.order.iter().map(|&l| l != plan.k).collect();
        let region = mlirRegionCreate();
        mlirRegionTakeBody(region, mlirOperationGetRegion(op, 0));
        let generic = generic_before(op, &values, 2, &[out_type], &maps, &parallel, region);
        let old = result(op);
        let new = if out_drop.contains(&true) {
            reshape_before(op, result(generic), mlirValueGetType(old), &reassociation(&out_drop), true)
        } else {
            result(generic)
        };
        mlirValueReplaceAllUsesOfWith(old, new);
        mlirOperationDestroy(op);
        let rank = plan.order.len();
        let schedule = match plan.kind {
            Kind::Rows => matvec_reduction_tag(rank, c.extents[plan.k], matrix_bytes(&values, c, plan)),
            Kind::Outer => Some(outer_reduction_tag(rank, position(plan.k))),
            Kind::FewRows => Some(FEW_ROWS_TAG.to_owned()),
        };
        if let Some(schedule) = schedule {
            mlirOperationSetAttributeByName(generic, string_ref(&schedule), mlirUnitAttrGet(ctx));
        }
        if plan.kind == Kind::Rows {
            set_parallel_tag(ctx, generic, analyze(generic).as_ref().and_then(decide));
        }
        generic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A matmul's loops (m, n, k): A reads (m, k), B (k, n), C (m, n).
    fn matmul(m: u64, n: u64, k: u64) -> Contraction {
        Contraction {
            extents: vec![m, n, k],
            operands: [vec![0, 2], vec![2, 1], vec![0, 1]],
        }
    }

    #[test]
    fn few_rows_of_a_large_b_are_few_row_products() {
        let few = Some(Plan { kind: Kind::FewRows, order: vec![2, 0, 1], k: 2 });
        assert_eq!(few_rows_plan(&matmul(4, 4096, 4096), 64 << 20), few);
        assert_eq!(few_rows_plan(&matmul(2, 300, 100), FEW_ROWS_MIN_B_BYTES), few);
        // Five rows, one row (the vector·matrix rewrite's), one column, a
        // small B, and a transposed B stay as they are.
        assert_eq!(few_rows_plan(&matmul(5, 4096, 4096), 64 << 20), None);
        assert_eq!(few_rows_plan(&matmul(1, 4096, 4096), 64 << 20), None);
        assert_eq!(few_rows_plan(&matmul(4, 1, 4096), 64 << 20), None);
        assert_eq!(few_rows_plan(&matmul(4, 300, 100), FEW_ROWS_MIN_B_BYTES - 1), None);
        let bt = Contraction { extents: vec![4, 300, 100], operands: [vec![0, 2], vec![1, 2], vec![0, 1]] };
        assert_eq!(few_rows_plan(&bt, 64 << 20), None);
    }

    #[test]
    fn five_to_eight_rows_of_a_large_b_split_into_few_row_products() {
        assert_eq!(row_groups(8), vec![(0, 4), (4, 4)]);
        assert_eq!(row_groups(7), vec![(0, 4), (4, 3)]);
        assert_eq!(row_groups(6), vec![(0, 3), (3, 3)]);
        assert_eq!(row_groups(5), vec![(0, 3), (3, 2)]);
        assert!(split_into_few_rows(&matmul(8, 4096, 4096), 64 << 20));
        assert!(split_into_few_rows(&matmul(5, 2048, 1024), SPLIT_MIN_B_BYTES));
        assert!(!split_into_few_rows(&matmul(5, 2048, 1024), SPLIT_MIN_B_BYTES - 1));
        // One strip of N for threads: left to the matrix schedule.
        assert!(!split_into_few_rows(&matmul(8, 2047, 4096), 64 << 20));
        assert!(!split_into_few_rows(&matmul(9, 4096, 4096), 64 << 20));
        assert!(!split_into_few_rows(&matmul(4, 4096, 4096), 64 << 20));
    }

    #[test]
    fn vector_times_matrix_accumulates_rows() {
        assert_eq!(
            plan(&matmul(1, 4096, 4096)),
            Some(Plan {
                kind: Kind::Outer,
                order: vec![2, 1],
                k: 2
            })
        );
        // B stored N×K (a·bᵀ, contracted over B's last axis): rows.
        let c = Contraction {
            extents: vec![1, 300, 77],
            operands: [vec![0, 2], vec![1, 2], vec![0, 1]],
        };
        assert_eq!(
            plan(&c),
            Some(Plan {
                kind: Kind::Rows,
                order: vec![1, 2],
                k: 2
            })
        );
    }

    #[test]
    fn matrix_times_vector_reduces_rows() {
        assert_eq!(
            plan(&matmul(4096, 1, 4096)),
            Some(Plan {
                kind: Kind::Rows,
                order: vec![0, 2],
                k: 2
            })
        );
        // The frontend's 1-D form: loops (m, k), v reads (k).
        let c = Contraction {
            extents: vec![2999, 4001],
            operands: [vec![0, 1], vec![1], vec![0]],
        };
        assert_eq!(
            plan(&c),
            Some(Plan {
                kind: Kind::Rows,
                order: vec![0, 1],
                k: 1
            })
        );
        // vector[K] · matrix[K][N]: loops (n, k), m reads (k, n).
        let c = Contraction {
            extents: vec![1999, 3000],
            operands: [vec![1], vec![1, 0], vec![0]],
        };
        assert_eq!(
            plan(&c),
            Some(Plan {
                kind: Kind::Outer,
                order: vec![1, 0],
                k: 1
            })
        );
    }

    #[test]
    fn batches_keep_their_loop_and_a_batch_of_one_loses_it() {
        // (b, m, n, k): A (b, m, k), B (b, k, n), C (b, m, n).
        let bmm = |b, m, n, k| Contraction {
            extents: vec![b, m, n, k],
            operands: [vec![0, 1, 3], vec![0, 3, 2], vec![0, 1, 2]],
        };
        assert_eq!(
            plan(&bmm(8, 1, 512, 512)),
            Some(Plan {
                kind: Kind::Outer,
                order: vec![0, 3, 2],
                k: 3
            })
        );
        assert_eq!(
            plan(&bmm(1, 512, 1, 512)),
            Some(Plan {
                kind: Kind::Rows,
                order: vec![1, 3],
                k: 3
            })
        );
    }

    #[test]
    fn real_matmuls_dots_and_outer_products_are_left_alone() {
        assert_eq!(plan(&matmul(5, 4096, 4096)), None);
        assert_eq!(plan(&matmul(2, 2, 100)), None);
        // 1×K·K×1: a dot of two vectors.
        assert_eq!(plan(&matmul(1, 1, 4096)), None);
        // K = 1: an outer product, nothing to reduce.
        assert_eq!(plan(&matmul(1, 100, 1)), None);
        // Contractions shorter than MIN_CONTRACTION stay matmuls.
        assert_eq!(plan(&matmul(31, 1, 48)), None);
        assert!(plan(&matmul(31, 1, MIN_CONTRACTION)).is_some());
        // Two contracted loops.
        let c = Contraction {
            extents: vec![100, 7, 9],
            operands: [vec![1, 2], vec![1, 2, 0], vec![0]],
        };
        assert_eq!(plan(&c), None);
    }

    #[test]
    fn outer_reductions_split_in_wide_strips() {
        // 4096 rows of 4096: the columns in 4 strips of 1024 (the marker's
        // 64 of 64 read 256 bytes per row).
        assert_eq!(
            outer_decision(&[4096, 4096], &[false, true]),
            Some(Decision {
                dim: 1,
                chunk: 1024
            })
        );
        // Three strips of 1000.
        assert_eq!(
            outer_decision(&[3001, 3000], &[false, true]),
            Some(Decision {
                dim: 1,
                chunk: 1024
            })
        );
        // Narrower than two strips: no column split (`row_chunks` then
        // splits rows).
        assert_eq!(outer_decision(&[100_000, 1500], &[false, true]), None);
        assert_eq!(outer_decision(&[512, 1000], &[false, true]), None);
        assert_eq!(outer_decision(&[3000, 1999], &[false, true]), None);
        assert_eq!(outer_decision(&[2000, 37], &[false, true]), None);
        // Rank 3 with the reduction first: the middle loop, whose chunks
        // read whole rows of 1024.
        assert_eq!(
            outer_decision(&[64, 256, 1024], &[false, true, true]),
            Some(Decision { dim: 1, chunk: 4 })
        );
        // Too little work.
        assert_eq!(outer_decision(&[10, 1024], &[false, true]), None);
    }

    #[test]
    fn narrow_outer_reductions_split_rows() {
        // 3000 rows of 1999: chunks of 375 rows (8 divides 3000, 16 not).
        assert_eq!(row_chunks(&[3000, 1999], &[false, true]), Some(8));
        // 4096×1024: 64 chunks of 64 rows; 100000×1500: 32 of 3125.
        assert_eq!(row_chunks(&[4096, 1024], &[false, true]), Some(64));
        assert_eq!(row_chunks(&[4096, 1, 1024], &[false, true, true]), Some(64));
        assert_eq!(row_chunks(&[100_000, 1500], &[false, true]), Some(32));
        // Too little work, rows that no power of two divides into chunks
        // of 64 rows, the reduction not first or not the only one.
        assert_eq!(row_chunks(&[2000, 37], &[false, true]), None);
        assert_eq!(row_chunks(&[4099, 1024], &[false, true]), None);
        assert_eq!(row_chunks(&[100, 5000], &[false, true]), None);
        assert_eq!(row_chunks(&[1024, 4096], &[true, false]), None);
        assert_eq!(row_chunks(&[64, 256, 1024], &[false, false, true]), None);
    }

    #[test]
    fn unit_axes_fold_into_their_neighbours() {
        assert_eq!(reassociation(&[true, false]), "[[0, 1]]");
        assert_eq!(reassociation(&[false, true]), "[[0, 1]]");
        assert_eq!(
            reassociation(&[true, false, true, false]),
            "[[0, 1], [2, 3]]"
        );
        assert_eq!(reassociation(&[false, false]), "[[0], [1]]");
    }
}

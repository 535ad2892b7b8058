//! `tensorc-parallel-mark`: decides which linalg ops run on several threads,
//! along which loop and in chunks of what size, and tags them for the
//! transform step of `parallel_schedule.rs`, which cuts them into
//! `scf.forall`s.
//!
//! Why in Rust: the decision needs facts the transform dialect's matchers
//! cannot express. A loop may only be split when every indexing map is
//! monotonic in it (a `reverse` reads `-d0 + 4`, and MLIR 22's tiling then
//! computes wrong slices), and the chunk size should follow the op's whole
//! work (every loop extent, not one), so small ops stay on one thread and big
//! ones get enough chunks to balance.
//!
//! The rules, for every linalg op with static, non-empty loops:
//! - the loop to split is *parallel* (each chunk writes its own slice of the
//!   result; other reductions are never split, so every element is computed
//!   in the same order whatever the thread count), among the first
//!   `MAX_DIM + 1`: the first that can give `ENOUGH_CHUNKS` chunks (or as
//!   many as the op wants), else the one that gives most; for matmul-class
//!   ops the candidates are the batch, M (chunks of at least
//!   `MATMUL_MIN_ROWS`) and N (at least `MATMUL_MIN_COLUMNS`), so a
//!   matrix-vector product or a batch of two is still split finely;
//! - generic ops qualify when every indexing-map result is built from loop
//!   indices and constants with sums and non-negative multiples (no
//!   subtraction, division or modulo); named ops qualify when their iteration
//!   space starts with their output's dimensions (matmuls, convolutions,
//!   poolings, fill, copy, transpose, broadcast, map);
//! - the op must have at least `MIN_WORK` loop iterations; it gets about one
//!   chunk per `CHUNK_WORK` iterations, at most `MAX_CHUNKS`, and at least
//!   two (else it stays whole);
//! - the chunk size is rounded up to a power of two (the transform library
//!   has one action per size), and matmul chunks have at least
//!   `MATMUL_MIN_ROWS` rows (or `MATMUL_MIN_COLUMNS` columns) so the matmul
//!   schedule keeps its 8x32 register tiles.
//!
//! The tag is the unit attribute `tensorc.par_d<loop>_t<size>`
//! (`parallel_schedule::tag`).
//!
//! Reductions with few rows are the exception to "reductions are never
//! split": a `sum` or `reduce_max` of a whole vector into a scalar (one
//! loop, a reduction) has no parallel loop, so without a split it runs on
//! one thread however long it is (W7 sums 64M floats), and one over the
//! last axis of 2 or 3 rows splits into 2 or 3 uneven chunks. So a
//! reduction over its last loop whose other loops (all parallel) make
//! fewer than `ENOUGH_CHUNKS` rows, whose body is a single associative
//! and commutative combiner with a neutral element (`COMBINERS`: what
//! upstream `split_reduction` supports), and which has at least
//! `MIN_WORK` elements, gets `reduction_chunks` partial results per row (a
//! power of two, about one per `CHUNK_WORK` elements, at most
//! `MAX_REDUCTION_CHUNKS`), tagged `tensorc.par_r<chunks>`
//! (`parallel_schedule::reduction_tag`). `split_reduction` needs the
//! chunks to divide the reduced length, so this pass first cuts off the
//! remainder: the op is cloned onto the first `n - n % chunks` elements of
//! every row (the clone gets the tag) and the original reduces the last
//! `n % chunks`, starting from the clone's result. Each partial is reduced in order and the
//! partials are combined in order, with a chunk count fixed at compile
//! time: the result does not depend on the thread count. Against the
//! unsplit reduction it is reassociated, which changes float results by
//! rounding only; integer combiners (wrapping `addi`/`muli`, bitwise ops,
//! `max`/`min`) give exactly the same result in any grouping.

use crate::external_pass::{PassId, module_pass};
use crate::matmul_schedule::{K_BLOCK_ROWS, k_block_tag};
use crate::packed_matmul::{PACKED, PackedMatmul};
use crate::parallel_schedule::{MAX_DIM, MAX_REDUCTION_CHUNKS, MAX_TARGET, reduction_tag, tag};
use crate::raw::*;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::PARALLEL_MARK;

/// Fewer loop iterations than this stay on one thread.
pub const MIN_WORK: u64 = 1 << 15;
/// About this many iterations per chunk.
pub const CHUNK_WORK: u64 = 1 << 14;
/// At most this many chunks per op.
pub const MAX_CHUNKS: u64 = 64;
/// Smallest number of rows of a matmul chunk.
pub const MATMUL_MIN_ROWS: u64 = 16;
/// B operands (K × N) with more elements than this (1 MiB of f32, this
/// machine's L2) do not stay in L2 between row chunks: each chunk of an
/// unpacked product reads all of B again from the shared L3, so such
/// products get chunks of up to `MATMUL_WIDE_ROWS` rows (keeping at least
/// `ENOUGH_CHUNKS` chunks, so M is still the loop split). With 16-row chunks a
/// 1000×1000·1000×1000 product read B 64 times per call, and two threads
/// waited on L3: chunks of 64 rows made 1000³, a·bᵀ 1000×777·777×1100 and
/// 2000×300·300×2000 4–7 % faster on two threads (one thread within ±3 %).
pub const B_IN_L2: u64 = 1 << 18;
/// See `B_IN_L2`.
pub const MATMUL_WIDE_ROWS: u64 = 64;

/// The smallest chunk of M rows of a matmul-class op with M, N, K `m`,
/// `n`, `k`: `MATMUL_MIN_ROWS`, or for a B beyond `B_IN_L2` the largest
/// power of two up to `MATMUL_WIDE_ROWS` that leaves `ENOUGH_CHUNKS`
/// chunks.
pub fn matmul_min_rows(m: u64, n: u64, k: u64) -> u64 {
    if n.saturating_mul(k) <= B_IN_L2 {
        return MATMUL_MIN_ROWS;
    }
    let rows = (m / ENOUGH_CHUNKS).clamp(MATMUL_MIN_ROWS, MATMUL_WIDE_ROWS);
    1 << (63 - rows.leading_zeros())
}

/// Smallest number of columns of a matmul chunk (when M is too short to
/// split: a matrix-vector product).
pub const MATMUL_MIN_COLUMNS: u64 = 64;
/// A loop that gives this many chunks (or as many as the op wants) is split
/// even when a later one could give more.
pub const ENOUGH_CHUNKS: u64 = 16;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Tag linalg ops with the loop and chunk size to run them in parallel",
        &[],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { mark_module(module) };
            true
        },
    )
}

/// What the analysis of one op decided.
#[derive(Debug, PartialEq, Eq)]
pub struct Decision {
    /// The loop to split.
    pub dim: usize,
    /// The target chunk size (a power of two).
    pub chunk: u64,
}

/// The loops of an op as the decision needs them.
#[derive(Debug)]
pub struct Loops {
    /// Static extents of every loop.
    pub extents: Vec<u64>,
    /// Which loops are parallel.
    pub parallel: Vec<bool>,
    /// Loop iterations in total.
    pub work: u64,
    /// A matmul-class op (the M loop is preferred and chunks stay large).
    pub matmul: bool,
    /// A block of a packed product (`packed_matmul.rs`: loops A panels, B
    /// panels, k, panel rows, panel columns): A panels are preferred, and
    /// B panels are split in whole register tiles.
    pub packed: bool,
    /// A matmul cut into K blocks (`matmul_schedule::k_block`): its M
    /// chunks follow `k_blocked_rows` when M has enough rows for it.
    pub k_blocked: bool,
}

/// Most rows of an M chunk of a product cut into K blocks: each chunk
/// reads every block of B from L3 or memory once, so chunks of 64 rows
/// (the unpacked products' usual) read all of B once per 64 rows. f64
/// 2000³, one thread: 178 → 141 ms with 256-row chunks.
pub const K_BLOCKED_ROWS: u64 = 256;

/// At least this many M chunks of a product cut into K blocks, and an
/// even number (the pool gives each thread an equal run of chunks; this
/// machine has two): f64 1200³ in 5 chunks of 256 rows left 3 on one
/// thread (0.95× NumPy on two threads; 10 chunks of 128: 1.17×), while
/// smaller chunks than needed cost one thread (1500³ in 12 chunks of 128
/// rows: 63.8 ms, in 6 of 256: 58.8).
pub const K_BLOCKED_CHUNKS: u64 = 4;

/// Fewest rows of such a chunk.
pub const K_BLOCKED_MIN_ROWS: u64 = 64;

/// The rows of an M chunk of a product of `m` rows cut into K blocks: the
/// largest power of two from `K_BLOCKED_MIN_ROWS` to `K_BLOCKED_ROWS` that
/// leaves an even number of chunks, at least `K_BLOCKED_CHUNKS`, or `None`
/// (the usual rule).
pub fn k_blocked_rows(m: u64) -> Option<u64> {
    let mut rows = K_BLOCKED_ROWS;
    while rows >= K_BLOCKED_MIN_ROWS {
        let chunks = m.div_ceil(rows);
        if chunks >= K_BLOCKED_CHUNKS && chunks % 2 == 0 {
            return Some(rows);
        }
        rows /= 2;
    }
    None
}

/// The decision for an op with `loops` (pure, so it is unit-tested).
pub fn decide(loops: &Loops) -> Option<Decision> {
    if loops.work < MIN_WORK || loops.extents.contains(&0) {
        return None;
    }
    let wanted = (loops.work / CHUNK_WORK).clamp(1, MAX_CHUNKS);
    // The loops that may be split, in order of preference, each with its
    // smallest chunk: matmul-class ops their batch, M (whole 8-row register
    // tiles), then N (whole 32-column ones); other ops their loops in order.
    let candidates: Vec<(usize, u64)> = if loops.matmul {
        // batch_matmul: (b, m, n, k); matmul: (m, n, k).
        let m = loops.extents.len().checked_sub(3)?;
        let batch = (m > 0).then_some((0, 1));
        if loops.k_blocked && let Some(rows) = k_blocked_rows(loops.extents[m]) {
            // M only (N chunks would each read all of A and cut the N
            // blocks).
            vec![(m, rows)]
        } else {
            batch
                .into_iter()
                .chain([
                    (m, matmul_min_rows(loops.extents[m], loops.extents[m + 1], loops.extents[m + 2])),
                    (m + 1, MATMUL_MIN_COLUMNS),
                ])
                .collect()
        }
    } else if loops.packed {
        // Chunks of one B panel made 8×16 register tiles instead of 8×32:
        // 100×2000·2000×2000 (13 A panels, so the B panels were split) ran
        // 20 % slower than in chunks of two.
        let reg_n = u64::from(PackedMatmul::default().reg_n);
        vec![(0, 1), (1, reg_n)]
    } else {
        (0..loops.extents.len()).map(|d| (d, 1)).collect()
    };
    // (loop, smallest chunk, chunks it can give)
    let usable: Vec<(usize, u64, u64)> = candidates
        .into_iter()
        .filter(|&(d, _)| d <= MAX_DIM && loops.parallel[d])
        .map(|(d, least)| (d, least, loops.extents[d] / least))
        .filter(|&(_, _, available)| available >= 2)
        .collect();
    // The first loop that gives enough chunks, else the one that gives most
    // (the first of those): a loop of 2 or 3 rows would leave threads idle
    // or unbalanced when a later loop can be cut finer.
    let enough = wanted.min(ENOUGH_CHUNKS);
    let &(dim, least, _) = usable.iter().find(|u| u.2 >= enough).or_else(|| {
        usable
            .iter()
            .reduce(|best, u| if u.2 > best.2 { u } else { best })
    })?;
    let extent = loops.extents[dim];
    let chunks = wanted.min(extent);
    if chunks < 2 {
        return None;
    }
    let chunk = extent
        .div_ceil(chunks)
        .next_power_of_two()
        .max(least)
        .min(MAX_TARGET);
    // One chunk covering the whole loop is no split.
    (chunk < extent).then_some(Decision { dim, chunk })
}

/// The number of partial results of a reduction of `rows` rows (the
/// product of its parallel loops) of `n` elements each (`None`: not to be
/// split that way: too little work, or rows enough to split those).
pub fn reduction_chunks(rows: u64, n: u64) -> Option<u64> {
    let work = rows.saturating_mul(n);
    if rows >= ENOUGH_CHUNKS || work < MIN_WORK {
        return None;
    }
    // With fewer than `ENOUGH_CHUNKS` rows, each partial still covers over
    // 1000 elements of every row.
    Some(partials(work))
}

/// The partial results of a split reduction of `work` iterations: about
/// one per `CHUNK_WORK`, from 2 to `MAX_REDUCTION_CHUNKS`, rounded down to
/// a power of two (the parallel library has one action per power of two).
pub fn partials(work: u64) -> u64 {
    let c = (work / CHUNK_WORK).clamp(2, MAX_REDUCTION_CHUNKS);
    1 << (63 - c.leading_zeros())
}

/// Combiner ops whose reductions may be split: associative, commutative,
/// and with a neutral element upstream `split_reduction` knows (it fails
/// on any other, which would fail the whole pipeline).
pub(crate) const COMBINERS: &[&str] = &[
    "arith.addf",
    "arith.mulf",
    "arith.addi",
    "arith.muli",
    "arith.andi",
    "arith.ori",
    "arith.xori",
    "arith.maximumf",
    "arith.minimumf",
    "arith.maxsi",
    "arith.minsi",
    "arith.maxui",
    "arith.minui",
];

/// The input's shape if `op` is a reduction this pass can split into
/// partial results: a `linalg.generic` with one input `tensor<... x N x T>`
/// read with the identity map, one init holding every loop but the last
/// (`(d0, .., dk, dn) -> (d0, .., dk)`), every loop parallel but the last,
/// a reduction, and a body that is one `COMBINERS` op of the two block
/// arguments, yielded.
unsafe fn splittable_reduction(op: MlirOperation) -> Option<Vec<u64>> {
    unsafe {
        if op_name(op) != "linalg.generic"
            || mlirOperationGetNumOperands(op) != 2
            || mlirOperationGetNumResults(op) != 1
        {
            return None;
        }
        let iters = mlirOperationGetAttributeByName(op, string_ref("iterator_types"));
        let maps = mlirOperationGetAttributeByName(op, string_ref("indexing_maps"));
        if iters.ptr.is_null() || maps.ptr.is_null() || mlirArrayAttrGetNumElements(maps) != 2 {
            return None;
        }
        let loops = mlirArrayAttrGetNumElements(iters);
        for i in 0..loops {
            let kind = print_attr(mlirArrayAttrGetElement(iters, i));
            let want = if i + 1 == loops { "reduction" } else { "parallel" };
            if !kind.contains(want) {
                return None;
            }
        }
        let input_map = mlirAffineMapAttrGetValue(mlirArrayAttrGetElement(maps, 0));
        let init_map = mlirAffineMapAttrGetValue(mlirArrayAttrGetElement(maps, 1));
        if !mlirAffineMapIsIdentity(input_map)
            || mlirAffineMapGetNumResults(init_map) != loops - 1
        {
            return None;
        }
        for k in 0..loops - 1 {
            let e = mlirAffineMapGetResult(init_map, k);
            if !mlirAffineExprIsADim(e) || mlirAffineDimExprGetPosition(e) != k {
                return None;
            }
        }
        let (x, init) = (mlirOperationGetOperand(op, 0), mlirOperationGetOperand(op, 1));
        if !mlirTypeIsARankedTensor(mlirValueGetType(x))
            || !mlirTypeIsARankedTensor(mlirValueGetType(init))
        {
            return None;
        }
        let shape = static_shape(x)?;
        if shape.len() as isize != loops || static_shape(init)?[..] != shape[..shape.len() - 1] {
            return None;
        }
        single_combiner(op).then_some(shape)
    }
}

/// Whether the body of the one-input, one-init `op` is one `COMBINERS` op
/// of its two block arguments (in either order), yielded: what
/// `split_reduction` can split (it knows those ops' neutral elements).
pub(crate) unsafe fn single_combiner(op: MlirOperation) -> bool {
    unsafe {
        if mlirOperationGetNumRegions(op) != 1 {
            return false;
        }
        let block = mlirRegionGetFirstBlock(mlirOperationGetRegion(op, 0));
        if block.ptr.is_null() || mlirBlockGetNumArguments(block) != 2 {
            return false;
        }
        let combine = mlirBlockGetFirstOperation(block);
        if combine.ptr.is_null() || !COMBINERS.contains(&op_name(combine).as_str()) {
            return false;
        }
        let yield_op = mlirOperationGetNextInBlock(combine);
        if yield_op.ptr.is_null()
            || op_name(yield_op) != "linalg.yield"
            || !mlirOperationGetNextInBlock(yield_op).ptr.is_null()
            || mlirOperationGetNumOperands(yield_op) != 1
            || !mlirValueEqual(mlirOperationGetOperand(yield_op, 0), result(combine))
            || mlirOperationGetNumOperands(combine) != 2
        {
            return false;
        }
        // The two operands are the two block arguments (in either order).
        let arg = |i| {
            let v = mlirOperationGetOperand(combine, i);
            (mlirValueIsABlockArgument(v) && mlirBlockEqual(mlirBlockArgumentGetOwner(v), block))
                .then(|| mlirBlockArgumentGetArgNumber(v))
        };
        matches!((arg(0), arg(1)), (Some(0), Some(1)) | (Some(1), Some(0)))
    }
}

/// Tags the reduction `op` (see the module comment) for splitting into
/// partial results, cutting off the remainder first; false when it is not
/// one to split.
unsafe fn split_reduction_op(ctx: MlirContext, op: MlirOperation) -> bool {
    unsafe {
        let Some(shape) = splittable_reduction(op) else {
            return false;
        };
        let (&n, outer) = shape.split_last().expect("a reduction loop");
        let Some(chunks) = reduction_chunks(outer.iter().product(), n) else {
            return false;
        };
        let rest = n % chunks;
        let main = if rest == 0 {
            op
        } else {
            let loc = mlirOperationGetLocation(op);
            let block = mlirOperationGetBlock(op);
            let x = mlirOperationGetOperand(op, 0);
            let element = mlirShapedTypeGetElementType(mlirValueGetType(x));
            // Whole outer dimensions, [offset, offset + size) of the last.
            let slice = |offset: u64, size: u64| {
                let mut sizes: Vec<i64> = outer.iter().map(|&d| d as i64).collect();
                sizes.push(size as i64);
                let list = |v: &[i64]| {
                    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
                };
                let mut offsets = vec![0i64; outer.len()];
                offsets.push(offset as i64);
                let ty = mlirRankedTensorTypeGet(
                    sizes.len() as isize,
                    sizes.as_ptr(),
                    element,
                    mlirAttributeGetNull(),
                );
                let s = build(
                    ctx,
                    "tensor.extract_slice",
                    loc,
                    &[x],
                    &[ty],
                    &[
                        ("operandSegmentSizes", attr(ctx, "array<i32: 1, 0, 0, 0>")),
                        ("static_offsets", attr(ctx, &format!("array<i64: {}>", list(&offsets)))),
                        ("static_sizes", attr(ctx, &format!("array<i64: {}>", list(&sizes)))),
                        ("static_strides", attr(ctx, &format!("array<i64: {}>", list(&vec![1; sizes.len()])))),
                    ],
                );
                mlirBlockInsertOwnedOperationBefore(block, op, s);
                result(s)
            };
            let head = slice(0, n - rest);
            let tail = slice(n - rest, rest);
            let clone = mlirOperationClone(op);
            mlirBlockInsertOwnedOperationBefore(block, op, clone);
            mlirOperationSetOperand(clone, 0, head);
            mlirOperationSetOperand(op, 0, tail);
            mlirOperationSetOperand(op, 1, result(clone));
            clone
        };
        let name = reduction_tag(chunks);
        mlirOperationSetAttributeByName(main, string_ref(&name), mlirUnitAttrGet(ctx));
        true
    }
}

/// Tags every op of `module` that should run in parallel.
///
/// # Safety
/// `module` must be a live `builtin.module`.
unsafe fn mark_module(module: MlirOperation) {
    unsafe {
        let ctx = mlirOperationGetContext(module);
        let ops = linalg_ops(module);
        for op in ops {
            // Ops the packing step already put in an `scf.forall` (products
            // whose threads split N) are one thread's work.
            if nested_in_named(op, "scf.forall") {
                continue;
            }
            // Reductions with few rows first: their rows would split
            // coarsely or not at all.
            if split_reduction_op(ctx, op) {
                continue;
            }
            let loops = analyze(op);
            let decided = loops.as_ref().and_then(decide);
            if let (Some(l), Some(d)) = (loops, decided)
                && let Some(d) = whole_transpose_blocks(op, &l, d)
            {
                let name = tag(d.dim, d.chunk);
                mlirOperationSetAttributeByName(op, string_ref(&name), mlirUnitAttrGet(ctx));
            }
        }
    }
}

/// `d` for `op`, with chunks of whole register blocks when `op` is a
/// transpose the transpose schedule tiles in blocks (`tensorc.transpose_*`
/// tag) and `d` splits one of the two blocked axes; `None` when that leaves
/// one chunk. Why: the schedule tiles each chunk, so a chunk narrower than
/// a block makes narrow blocks: `[8192][256]` f32 transposed was cut into
/// chunks of 4 output rows, whose 4×16 blocks read each input line in four
/// 16-byte pieces on four passes (0.79 ms, XLA 0.45).
unsafe fn whole_transpose_blocks(op: MlirOperation, loops: &Loops, d: Decision) -> Option<Decision> {
    unsafe {
        if op_name(op) != "linalg.transpose" {
            return Some(d);
        }
        let rank = loops.extents.len();
        let names: Vec<String> = (0..mlirOperationGetNumAttributes(op))
            .map(|i| from_string_ref(mlirIdentifierStr(mlirOperationGetAttribute(op, i).name)))
            .collect();
        let Some((q, bits)) = names.iter().find_map(|n| transpose_tag_parts(n, rank)) else {
            return Some(d);
        };
        let sizes = crate::transpose_schedule::tile_sizes(rank, q, bits);
        let side = u64::from(sizes[d.dim]);
        let chunk = d.chunk.max(side);
        (chunk < loops.extents[d.dim]).then_some(Decision { dim: d.dim, chunk })
    }
}

/// The `q` and element bits of a transpose tag of rank `rank`
/// (`transpose_schedule::tag`).
fn transpose_tag_parts(name: &str, rank: usize) -> Option<(usize, u32)> {
    let rest = name.strip_prefix(&format!("tensorc.transpose_r{rank}_q"))?;
    let (q, bits) = rest.split_once("_b")?;
    let (q, bits) = (q.parse().ok()?, bits.parse().ok()?);
    (crate::transpose_schedule::tag(rank, q, bits) == name).then_some((q, bits))
}

/// Named ops whose iteration space starts with their output's dimensions,
/// all parallel (the output is their last operand).
const OUTPUT_FIRST: &[&str] = &[
    "linalg.matmul",
    "linalg.batch_matmul",
    "linalg.conv_",
    "linalg.depthwise_conv_",
    "linalg.pooling_",
    "linalg.fill",
    "linalg.copy",
    "linalg.transpose",
    "linalg.broadcast",
    "linalg.map",
];

/// The static shape of `v`'s type, if it is a ranked shaped type with one.
pub(crate) unsafe fn static_shape(v: MlirValue) -> Option<Vec<u64>> {
    unsafe {
        let t = mlirValueGetType(v);
        if !mlirTypeIsAShaped(t) || !mlirShapedTypeHasRank(t) || !mlirShapedTypeHasStaticShape(t) {
            return None;
        }
        Some(
            (0..mlirShapedTypeGetRank(t) as isize)
                .map(|i| mlirShapedTypeGetDimSize(t, i) as u64)
                .collect(),
        )
    }
}

/// The loops of `op`, when it is an op this pass knows how to split.
pub(crate) unsafe fn analyze(op: MlirOperation) -> Option<Loops> {
    unsafe {
        let name = op_name(op);
        let n = mlirOperationGetNumOperands(op);
        if name == "linalg.generic" {
            return analyze_generic(op);
        }
        if n < 1 || !OUTPUT_FIRST.iter().any(|p| name.starts_with(p)) {
            return None;
        }
        let out = static_shape(mlirOperationGetOperand(op, n - 1))?;
        let elements: u64 = out.iter().product();
        let matmul = name == "linalg.matmul" || name == "linalg.batch_matmul";
        let mut extents = out;
        let mut parallel = vec![true; extents.len()];
        let factor = if matmul {
            // The K loop, after the output's: the last dimension of A.
            let k = *static_shape(mlirOperationGetOperand(op, 0))?.last()?;
            extents.push(k);
            parallel.push(false);
            k
        } else if n >= 3 && (name.contains("conv_") || name.starts_with("linalg.pooling_")) {
            // Roughly the window: every element of the filter (or window).
            static_shape(mlirOperationGetOperand(op, 1))?
                .iter()
                .product::<u64>()
                .max(1)
        } else {
            1
        };
        Some(Loops {
            parallel,
            work: elements.saturating_mul(factor),
            extents,
            matmul,
            packed: false,
            k_blocked: matmul && has_attr(op, &k_block_tag(K_BLOCK_ROWS)),
        })
    }
}

/// A `linalg.generic`: extents from the operand shapes through the maps,
/// iterator kinds from `iterator_types`.
unsafe fn analyze_generic(op: MlirOperation) -> Option<Loops> {
    unsafe {
        let (maps, parallel) = generic_maps_and_kinds(op)?;
        let mut extents: Vec<Option<u64>> = vec![None; parallel.len()];
        let nmaps = mlirArrayAttrGetNumElements(maps);
        if nmaps != mlirOperationGetNumOperands(op) {
            return None;
        }
        for k in 0..nmaps {
            let map = mlirAffineMapAttrGetValue(mlirArrayAttrGetElement(maps, k));
            let shape = static_shape(mlirOperationGetOperand(op, k))?;
            for j in 0..mlirAffineMapGetNumResults(map) {
                let e = mlirAffineMapGetResult(map, j);
                if !monotonic(e) {
                    return None;
                }
                if mlirAffineExprIsADim(e) {
                    let d = mlirAffineDimExprGetPosition(e) as usize;
                    extents[d] = Some(*shape.get(j as usize)?);
                }
            }
        }
        let extents: Vec<u64> = extents.into_iter().collect::<Option<_>>()?;
        Some(Loops {
            work: extents.iter().fold(1u64, |a, &e| a.saturating_mul(e)),
            extents,
            parallel,
            matmul: false,
            packed: has_attr(op, PACKED),
            k_blocked: false,
        })
    }
}

/// Whether an indexing expression only grows with every loop index: loop
/// indices and constants, sums, and products with a non-negative constant.
unsafe fn monotonic(e: MlirAffineExpr) -> bool {
    unsafe {
        if mlirAffineExprIsADim(e) || mlirAffineExprIsAConstant(e) {
            return true;
        }
        let (l, r) = (
            mlirAffineBinaryOpExprGetLHS(e),
            mlirAffineBinaryOpExprGetRHS(e),
        );
        if mlirAffineExprIsAAdd(e) {
            return monotonic(l) && monotonic(r);
        }
        if mlirAffineExprIsAMul(e) {
            let nonneg = |x: MlirAffineExpr| {
                mlirAffineExprIsAConstant(x) && mlirAffineConstantExprGetValue(x) >= 0
            };
            return (nonneg(l) && monotonic(r)) || (nonneg(r) && monotonic(l));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loops(extents: &[u64], parallel: &[bool], matmul: bool) -> Loops {
        let work = extents.iter().product();
        Loops {
            extents: extents.to_vec(),
            parallel: parallel.to_vec(),
            work,
            matmul,
            packed: false,
            k_blocked: false,
        }
    }

    #[test]
    fn transpose_tags_give_their_axis_and_width() {
        use crate::transpose_schedule::tag;
        assert_eq!(transpose_tag_parts(&tag(2, 0, 32), 2), Some((0, 32)));
        assert_eq!(transpose_tag_parts(&tag(4, 2, 8), 4), Some((2, 8)));
        assert_eq!(transpose_tag_parts(&tag(4, 2, 8), 3), None);
        assert_eq!(transpose_tag_parts("tensorc.transpose_block", 2), None);
    }

    #[test]
    fn k_blocked_products_split_m_in_large_chunks() {
        let product = |m: u64, k_blocked: bool| Loops {
            k_blocked,
            ..loops(&[m, 2000, 2000], &[true, true, false], true)
        };
        // f64 2000³ cut into K blocks: 8 chunks of 256 rows (64 without);
        // 1500 rows: 6 of 256; 1200 rows: 10 of 128 (5 of 256 is odd);
        // 500 rows: 4 of 128.
        assert_eq!(decide(&product(2000, true)), Some(Decision { dim: 0, chunk: 256 }));
        assert_eq!(decide(&product(2000, false)), Some(Decision { dim: 0, chunk: 64 }));
        assert_eq!(decide(&product(1500, true)), Some(Decision { dim: 0, chunk: 256 }));
        assert_eq!(decide(&product(1200, true)), Some(Decision { dim: 0, chunk: 128 }));
        assert_eq!(decide(&product(500, true)), Some(Decision { dim: 0, chunk: 128 }));
        // No even count of 4 chunks or more of 64 rows or more: the usual rule.
        assert_eq!(decide(&product(100, true)), decide(&product(100, false)));
    }

    #[test]
    fn packed_blocks_split_a_panels_else_whole_register_tiles_of_b() {
        let block = |m1: u64, n1: u64| Loops {
            packed: true,
            ..loops(&[m1, n1, 128, 8, 16], &[true, true, false, true, true], false)
        };
        // 250 A panels (2000 rows): 64 chunks of A panels.
        assert_eq!(decide(&block(250, 32)), Some(Decision { dim: 0, chunk: 4 }));
        // 13 A panels (100 rows): B panels, two at a time (an 8×32 tile).
        assert_eq!(decide(&block(13, 32)), Some(Decision { dim: 1, chunk: 2 }));
        // Not packed, the same loops split B panels one by one.
        let plain = loops(&[13, 32, 128, 8, 16], &[true, true, false, true, true], false);
        assert_eq!(decide(&plain), Some(Decision { dim: 1, chunk: 1 }));
    }

    #[test]
    fn small_ops_stay_whole() {
        assert_eq!(
            decide(&loops(&[7, 5, 13], &[true, true, false], true)),
            None
        );
        assert_eq!(decide(&loops(&[100, 100], &[true, true], false)), None);
    }

    #[test]
    fn rows_of_an_element_wise_op() {
        // 300x1000: 18 chunks of about 17 rows -> 32 (a power of two).
        assert_eq!(
            decide(&loops(&[300, 1000], &[true, true], false)),
            Some(Decision { dim: 0, chunk: 32 })
        );
        // A 1-D op: 64 chunks.
        assert_eq!(
            decide(&loops(&[16 << 20], &[true], false)),
            Some(Decision {
                dim: 0,
                chunk: 1 << 18
            })
        );
    }

    #[test]
    fn never_a_reduction_loop() {
        // A sum over the first axis splits the second.
        assert_eq!(
            decide(&loops(&[2000, 37], &[false, true], false)),
            Some(Decision { dim: 1, chunk: 16 })
        );
        // A full reduction has no parallel loop to split (it is split
        // into partial results instead: `reduction_chunks`).
        assert_eq!(decide(&loops(&[1 << 20], &[false], false)), None);
    }

    #[test]
    fn reductions_get_a_power_of_two_of_partials() {
        assert_eq!(reduction_chunks(1, MIN_WORK - 1), None);
        assert_eq!(reduction_chunks(1, 3), None);
        // 2^15 elements: two partials of 2^14.
        assert_eq!(reduction_chunks(1, MIN_WORK), Some(2));
        // 100003 / 2^14 = 6, rounded down to 4.
        assert_eq!(reduction_chunks(1, 100_003), Some(4));
        // W7, 2^26 elements: capped at the library's largest action.
        assert_eq!(reduction_chunks(1, 1 << 26), Some(MAX_REDUCTION_CHUNKS));
        for n in [MIN_WORK, 99_999, 1 << 20, (1 << 21) + 7, u64::MAX] {
            let c = reduction_chunks(1, n).unwrap();
            assert!(c.is_power_of_two() && (2..=MAX_REDUCTION_CHUNKS).contains(&c));
            assert!(n / c >= CHUNK_WORK / 2, "{n}: {c} chunks");
        }
        // Three rows of 100000: 18 partials wanted, 16 (of 6250 each).
        assert_eq!(reduction_chunks(3, 100_000), Some(16));
        // 8 rows of 4096 = 2^15: 2 partials of 2048 columns.
        assert_eq!(reduction_chunks(8, 4096), Some(2));
        assert_eq!(reduction_chunks(12, 100), None);
        // 16 rows or more: split the rows instead (`decide`).
        assert_eq!(reduction_chunks(ENOUGH_CHUNKS, 1 << 20), None);
    }

    #[test]
    fn size_one_loops_are_skipped() {
        // A batch of one: the output rows.
        assert_eq!(
            decide(&loops(
                &[1, 112, 112, 64, 3, 3, 3],
                &[true, true, true, true, false, false, false],
                false
            )),
            Some(Decision { dim: 1, chunk: 2 })
        );
    }

    #[test]
    fn matmul_rows_stay_in_register_tiles() {
        // The loops as `analyze` builds them for named matmuls: the output's
        // dimensions, then K (a reduction).
        // 257x255x129: M split, chunks of at least 16 rows.
        assert_eq!(
            decide(&loops(&[257, 255, 129], &[true, true, false], true)),
            Some(Decision { dim: 0, chunk: 16 })
        );
        // A B beyond L2 (1024 x 1024): chunks of 64 rows, or fewer to keep
        // 16 chunks (1000 rows: 32; 300 rows: 16).
        assert_eq!(
            decide(&loops(&[1024, 1024, 1024], &[true, true, false], true)),
            Some(Decision { dim: 0, chunk: 64 })
        );
        assert_eq!(
            decide(&loops(&[1000, 1000, 1000], &[true, true, false], true)),
            Some(Decision { dim: 0, chunk: 32 })
        );
        assert_eq!(
            decide(&loops(&[300, 2000, 2000], &[true, true, false], true)),
            Some(Decision { dim: 0, chunk: 16 })
        );
        // B of exactly 1 MiB of f32 stays in 16-row chunks.
        assert_eq!(matmul_min_rows(1024, 512, 512), MATMUL_MIN_ROWS);
        assert_eq!(matmul_min_rows(1024, 513, 512), MATMUL_WIDE_ROWS);
        // Batch matmul: the batch when there are several, else M.
        assert_eq!(
            decide(&loops(&[6, 40, 20, 30], &[true, true, true, false], true)),
            Some(Decision { dim: 0, chunk: 1 })
        );
        assert_eq!(
            decide(&loops(&[1, 200, 48, 64], &[true, true, true, false], true)),
            Some(Decision { dim: 1, chunk: 16 })
        );
    }

    #[test]
    fn short_outer_loops_give_way_to_longer_ones() {
        // A matrix-vector product (M = 1): N in chunks of 64 columns.
        assert_eq!(
            decide(&loops(&[1, 4096, 4096], &[true, true, false], true)),
            Some(Decision { dim: 1, chunk: 64 })
        );
        // A batch of two with 512 rows each: M (32 chunks), not the batch.
        assert_eq!(
            decide(&loops(&[2, 512, 64, 64], &[true, true, true, false], true)),
            Some(Decision { dim: 1, chunk: 16 })
        );
        // A batch of two small matmuls: nothing longer, the batch.
        assert_eq!(
            decide(&loops(&[2, 20, 20, 2000], &[true, true, true, false], true)),
            Some(Decision { dim: 0, chunk: 1 })
        );
        // Three rows of 100000: the columns (18 chunks wanted, 5556
        // columns each, rounded up to 8192).
        assert_eq!(
            decide(&loops(&[3, 100_000], &[true, true], false)),
            Some(Decision { dim: 1, chunk: 8192 })
        );
        // Three rows of 5 (and a long reduction): the longer of the two.
        assert_eq!(
            decide(&loops(&[3, 5, 100_000], &[true, true, false], false)),
            Some(Decision { dim: 1, chunk: 1 })
        );
    }
}

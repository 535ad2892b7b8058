//! The transform-dialect schedule for reductions over the innermost loop
//! (`sum`, `reduce_max`, … over the last axis or all axes: W5, W7, W8).
//!
//! Why: a scalar reduction loop carries one accumulator, so every add waits
//! for the previous one, and LLVM may not reassociate floats to vectorize
//! it (W7 ran at 8 GB/s). The schedule gives each reduction a *vector*
//! accumulator: the parallel loops are tiled by 1 (one output element at a
//! time), then `tile_reduction_using_for` splits the reduced loop into
//! `lanes` interleaved partial reductions (64 for long rows, fewer for
//! short ones: `ROW_CLASSES`) — a `lanes`-wide partial tensor
//! initialized with the combiner's neutral element, updated element-wise
//! per step, and combined into the output once at the end. The partial
//! update, the neutral fill and the final combination are vectorized, and
//! the partial vector is hoisted into the loop's iter_args so it stays in
//! registers. The combination at the end is a tree: the combining op is
//! split again into a quarter, then half as many partials per level (64 ->
//! 16 -> 8 -> 4 -> 2 -> 1, `tree_widths`), since LLVM lowers a horizontal
//! `vector.reduce.fadd` (ordered) or `fmaximum` of 64 lanes into a chain of
//! 64 scalar steps, which cost as much as the whole loop on 1024-element
//! rows. The reduced loop is peeled: a trip count that `lanes` does
//! not divide gets one static remainder step (narrower vector), so nothing
//! is masked or read out of bounds.
//!
//! This reassociates the reduction (`lanes` interleaved sums, then a tree),
//! like NumPy's pairwise sums; integer sums are exact either way.
//!
//! `argmax`/`argmin`'s index reduction over short rows gets this schedule
//! too, through a tag (`ARG_KEY`, `short_row_reduction_tag`): it reads the
//! row's best value broadcast, which `REDUCTION_MAPS` refuses.
//!
//! Which ops: `linalg.generic`s of rank 1 to `MAX_RANK` whose loops are all
//! parallel except the last, which is a reduction, whose body combines the
//! single init with one combiner op (`match.structured.body
//! {reduction_position = 0}`), and whose loops all have a static, non-zero
//! size. A combiner with no known neutral element makes the split fail; that
//! op is left (row-tiled) to the scalar lowering: each op is scheduled in
//! its own `failures(suppress)` sequence.

use std::fmt::Write as _;

use crate::elementwise_schedule::{
    Library, MAX_RANK, leading_parallel, nonempty_dims, peel_each, rank_is, tile_and_peel, tile_by_lanes,
    vectorize_each, vectorize_tagged,
};

/// Tile sizes of the reduction schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReductionTiles {
    /// Partial accumulators (the vector length of the reduced loop's step).
    pub lanes: u32,
}

impl Default for ReductionTiles {
    /// 64 f32 lanes: four AVX-512 registers, so four independent add chains
    /// hide the add latency (one 16-lane chain would cap a sum at 16 floats
    /// per 4 cycles).
    fn default() -> Self {
        ReductionTiles { lanes: 64 }
    }
}

/// Predicates shared by the reduction matchers: one init, and a body that is
/// a single combiner of it.
const ONE_COMBINER: &str = "      %ninit = transform.match.structured.num_inits %s : (!transform.any_op) -> !transform.param<i64>\n\
     \x20     %one = transform.param.constant 1 : i64 -> !transform.param<i64>\n\
     \x20     transform.match.param.cmpi eq %ninit, %one : !transform.param<i64>\n\
     \x20     transform.match.structured.body %s {reduction_position = 0} : !transform.any_op\n";

/// Predicate lines for the index maps: every input reads the whole
/// iteration space in some order (a permutation: no broadcast input, no
/// offsets or reversals, which tiling mishandles), the init is a projection.
/// Inputs that are broadcast along some loop are where the frontend's
/// sort ranks compare `linalg.index`es of two loops; vectorizing such a
/// split reduction makes MLIR 22 abort (`vector.extract` folding,
/// "SmallVector unable to grow"), and the match ops cannot see the body's
/// index ops, so the permutation requirement is what keeps them out.
const REDUCTION_MAPS: &str = "      transform.match.structured.input %s[all] {permutation} : !transform.any_op\n\
\x20     transform.match.structured.init %s[all] {projected_permutation} : !transform.any_op\n";

/// The tag of the ops the split produces, vectorized by `vectorize_reductions`.
const SPLIT_TAG: &str = "tensorc.redv";

/// A class of row reductions by the length of their reduced loop: rows of
/// `min..=max` elements (tagged `tag`), reduced as `split` says.
struct RowClass {
    /// Tag suffix after `tensorc.red`.
    suffix: &'static str,
    min: u64,
    max: Option<u64>,
    split: Split,
}

/// How a row class is reduced.
#[derive(Clone, Copy)]
enum Split {
    /// Into `ReductionTiles::lanes` partials, combined as a tree.
    Tiles,
    /// Into this many partials, combined as a tree.
    Lanes(u32),
    /// Not split: each row vectorized whole.
    Whole,
}

/// The row classes, longest first (`foreach_match` tags an op with the
/// first matcher that accepts it). Long rows get `ReductionTiles::lanes`
/// (64: four registers of independent chains); shorter ones as many lanes
/// as fit at least once, so the split loop has a full step and its
/// partials a register: split 64 ways, a row of 37 elements had no full
/// step, its partials went through a 64-element buffer allocated per row
/// and were combined in a chain of 64 scalar steps (sum of 100000×37 f32:
/// 3.4 ms, 0.55× NumPy; 16 lanes: 0.88 ms, 32 lanes 1.13 ms; 100000×10:
/// 3.9 ms, 8 lanes 0.094 ms, 4 lanes 0.15 ms; one thread). Rows of 2–7
/// elements are vectorized whole, one vector per row and no split (LLVM's
/// horizontal reduction of at most 7 lanes): with 4 or 2 partials and a
/// one-element remainder step, argmax of 100000×5 took 3.0 ms and of
/// 100000×3 2.3 ms (NumPy 1.6 and 1.1), its index reduction's scalar
/// selects turned into branches; whole, 1.9 and 1.3 ms. One class for
/// 2–7, not one per length: every class's matchers and sequences are in
/// the library each compilation parses (six more classes cost 15–20 ms of
/// compile time per program). Rows of one element are left alone.
const ROW_CLASSES: [RowClass; 4] = [
    RowClass { suffix: "l", min: 65, max: None, split: Split::Tiles },
    RowClass { suffix: "", min: 16, max: Some(64), split: Split::Lanes(16) },
    RowClass { suffix: "s8", min: 8, max: Some(15), split: Split::Lanes(8) },
    RowClass { suffix: "s1", min: 2, max: Some(7), split: Split::Whole },
];

impl RowClass {
    fn tag(&self, rank: usize) -> String {
        format!("tensorc.red{}{rank}", self.suffix)
    }

    fn holds(&self, len: u64) -> bool {
        len >= self.min && self.max.is_none_or(|m| len <= m)
    }
}

/// The class of rows of `len` elements, if any (none for one element).
fn row_class(len: u64) -> Option<&'static RowClass> {
    ROW_CLASSES.iter().find(|c| c.holds(len))
}

/// Rows of at most this many elements, when an op reduces two rows or more
/// (its first or second loop has two or more), are left to the scalar
/// lowering:
/// `convert-linalg-to-loops` makes a loop over the row's elements per row,
/// LLVM unrolls it whole and vectorizes the loop over rows instead, 16
/// rows per step, the rows' elements read as interleaved groups (wide loads
/// and `vpermt2ps`; `llvm_ir::set_llvm_options` allows groups of up to 16
/// members, LLVM's default is 8). The vector schedule reduces one row per
/// step, its combination a chain of dependent horizontal steps: one thread,
/// 100000 rows, vector → scalar: argmax of 5 elements 1.8 → 0.082 ms, of
/// 10 0.78 → 0.26, of 13 0.68 → 0.42; `reduce_max` of 10 0.53 → 0.13; sum
/// of 3 0.054 → 0.016, of 10 0.092 → 0.072. At 14 elements and more LLVM
/// no longer vectorizes the loop over rows (sum of 16: 0.39 ms against 0.11
/// for the split). Ops of a single row in each of their first two loops
/// (the one-row tiles of `tensorc-row-fuse-mark`'s chains, which sit
/// between vectorized element-wise ops) keep the classes below; chains
/// over short rows take several rows per step
/// (`row_fuse_schedule::SHORT_ROWS_STEP`), whose reductions are left to
/// LLVM like these.
pub const SCALAR_ROW_MAX: u64 = 13;

/// The tag of reductions over many short rows (`SCALAR_ROW_MAX`): no
/// action matches it, it only keeps the class matchers off them.
fn scalar_rows_tag(rank: usize) -> String {
    format!("tensorc.reds0{rank}")
}

/// The tag that gives a reduction over its innermost loop of rank `rank`
/// and `len` elements this schedule (for ops another pass classifies, as
/// `tensorc-matvec` does matrix-vector products, whose broadcast vector
/// input the matchers here do not accept: see `REDUCTION_MAPS`; the
/// frontend writes the same tags on argmax's index reductions). `None` for
/// rows of one element or none.
pub fn row_reduction_tag(rank: usize, len: u64) -> Option<String> {
    row_class(len).map(|c| c.tag(rank))
}

/// The attribute the frontend puts on `argmax`/`argmin`'s index reduction
/// (`tensorc_frontend::ARG_KEY`), which `tensorc-row-fuse-mark` gives the
/// tag of its row length when that is short (`short_row_reduction_tag`).
pub const ARG_KEY: &str = "tensorc.arg_key";

/// The frontend's tag of a matrix product with few columns written as a
/// reduction over rows of A and of Bᵀ (`tensorc_frontend::NARROW_KEY`):
/// `tensorc-row-fuse-mark` gives it `narrow_product_tag`'s schedule (and so
/// every generic of its maps, `row_fuse::narrow_product`), which reduces all
/// its result columns (rows of Bᵀ) against one or two rows of A at a time.
pub const NARROW_KEY: &str = "tensorc.narrow_n";

/// `row_reduction_tag` for an op with loops `extents` (the reduced loop
/// last) whose rows are short enough for a class with a bound (at most 64
/// elements), else `None`; `None` too for rows left to the scalar lowering
/// (`SCALAR_ROW_MAX`).
pub fn short_row_reduction_tag(extents: &[u64]) -> Option<String> {
    let (&len, rows) = extents.split_last()?;
    if scalar_rows(rows, len) {
        return None;
    }
    row_class(len).filter(|c| c.max.is_some()).map(|c| c.tag(extents.len()))
}

/// `row_reduction_tag` for a row reduction with loops `extents` (the
/// reduced loop last) that reads a broadcast input, which the matchers
/// refuse (`tensorc-row-fuse-mark` tags it): any row length but the rows
/// left to the scalar lowering (`SCALAR_ROW_MAX`).
pub fn broadcast_row_reduction_tag(extents: &[u64]) -> Option<String> {
    let (&len, rows) = extents.split_last()?;
    if scalar_rows(rows, len) {
        return None;
    }
    row_class(len).map(|c| c.tag(extents.len()))
}

/// Whether rows of `len` elements under leading loops `rows` are left to
/// the scalar lowering (`SCALAR_ROW_MAX`): two or more in the first or
/// the second loop (the row-fusion step's tiles of `[B][S][D]` chains are
/// one row of `B` by several of `S`).
fn scalar_rows(rows: &[u64], len: u64) -> bool {
    len <= SCALAR_ROW_MAX && rows.iter().take(2).any(|&r| r >= 2)
}

/// Adds the reduction matchers and the tiling, splitting and peeling to `lib`.
///
/// Each class of row lengths (`ROW_CLASSES`) gets its own matchers and
/// split; the partials of every class are combined as a tree, so every
/// row reduction of more than one element is reassociated (like NumPy's
/// pairwise sums; integer results are exact either way).
pub fn add_reductions(lib: &mut Library, tiles: ReductionTiles) {
    add_scalar_rows(lib);
    for class in &ROW_CLASSES {
        add_reductions_of(lib, tiles, class);
    }
    add_matvec_rows(lib);
}

/// The matchers of reductions over many short rows (`SCALAR_ROW_MAX`,
/// `scalar_rows`), before the classes' (`foreach_match` tags an op with the
/// first matcher that accepts it): every loop but the last parallel (convs,
/// whose window loops are reductions too, stay with their schedule), the
/// first (or, with three loops or more, the second: another matcher) at
/// least 2, the last at most `SCALAR_ROW_MAX`.
fn add_scalar_rows(lib: &mut Library) {
    for (rank, many) in (2..=MAX_RANK).flat_map(|r| (0..2.min(r - 1)).map(move |d| (r, d))) {
        let mut predicates = rank_is(rank);
        predicates.push_str(&leading_parallel(rank - 1));
        predicates.push_str(
            "      transform.match.structured.dim %s[-1] {reduction} : !transform.any_op\n",
        );
        predicates.push_str(&nonempty_dims(rank));
        let _ = writeln!(
            predicates,
            "      %two = transform.param.constant 2 : i64 -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi ge %d{many}, %two : !transform.param<i64>\n\
             \x20     %short = transform.param.constant {SCALAR_ROW_MAX} : i64 -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi le %d{}, %short : !transform.param<i64>",
            rank - 1
        );
        lib.tagging_matcher(
            &format!("tensorc_k_reds0{rank}_{many}"),
            "linalg.generic",
            &predicates,
            &scalar_rows_tag(rank),
        );
    }
}

fn add_reductions_of(lib: &mut Library, tiles: ReductionTiles, class: &RowClass) {
    for rank in 1..=MAX_RANK {
        let mut predicates = rank_is(rank);
        predicates.push_str(&leading_parallel(rank - 1));
        predicates.push_str(
            "      transform.match.structured.dim %s[-1] {reduction} : !transform.any_op\n",
        );
        predicates.push_str(ONE_COMBINER);
        predicates.push_str(REDUCTION_MAPS);
        predicates.push_str(&nonempty_dims(rank));
        let _ = writeln!(
            predicates,
            "      %lo = transform.param.constant {} : i64 -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi ge %d{}, %lo : !transform.param<i64>",
            class.min,
            rank - 1
        );
        if let Some(max) = class.max {
            let _ = writeln!(
                predicates,
                "      %hi = transform.param.constant {max} : i64 -> !transform.param<i64>\n\
                 \x20     transform.match.param.cmpi le %d{}, %hi : !transform.param<i64>",
                rank - 1
            );
        }
        lib.tagging_matcher(
            &format!("tensorc_k_red{}{rank}", class.suffix),
            "linalg.generic",
            &predicates,
            &class.tag(rank),
        );
    }
    let body = lib.body();
    let l = class.suffix;
    for rank in 1..=MAX_RANK {
        let _ = writeln!(
            body,
            "    %red{l}{rank} = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{t}}} in %root : (!transform.any_op) -> !transform.any_op\n\
             \x20   transform.foreach %red{l}{rank} : !transform.any_op {{\n\
             \x20   ^bb0(%r: !transform.any_op):\n\
             \x20     transform.sequence %r : !transform.any_op failures(suppress) {{\n\
             \x20     ^bb1(%r2: !transform.any_op):",
            t = class.tag(rank)
        );
        let rows = if rank > 1 {
            let mut sizes = vec!["1"; rank - 1];
            sizes.push("0");
            let loop_types = vec!["!transform.any_op"; rank].join(", ");
            let _ = writeln!(
                body,
                "        %row, %rowl:{n} = transform.structured.tile_using_for %r2 tile_sizes [{sizes}] : (!transform.any_op) -> ({loop_types})",
                n = rank - 1,
                sizes = sizes.join(", ")
            );
            "row"
        } else {
            "r2"
        };
        match class.split {
            Split::Tiles => split_rows(body, rank, rows, tiles.lanes, true),
            Split::Lanes(lanes) => split_rows(body, rank, rows, lanes, true),
            Split::Whole => {
                let _ = writeln!(body, "        transform.annotate %{rows} \"{SPLIT_TAG}\" : !transform.any_op");
            }
        }
        body.push_str("      }\n    }\n");
    }
}

/// Appends the split of the reduction of the rows in handle `%{rows}` (rank
/// `rank`) into `lanes` interleaved partial results, the peel of the
/// reduced loop and, when `tree`, the combination of the partials as a
/// tree: each level splits the combining op again into fewer partials (64
/// -> 16 -> 8 -> 4 -> 2 -> 1), so the horizontal step is a few vector
/// operations deep instead of a chain of `lanes` scalar ones (which LLVM
/// emits for an ordered `vector.reduce.fadd` or a `vector.reduce.fmaximum`).
fn split_rows(body: &mut String, rank: usize, rows: &str, lanes: u32, tree: bool) {
    let mut split = vec!["0".to_owned(); rank - 1];
    split.push(lanes.to_string());
    let _ = writeln!(
        body,
        "        %fill, %part, %comb, %loop = transform.structured.tile_reduction_using_for %{rows} by tile_sizes = [{split}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)\n\
         \x20       transform.annotate %fill \"{SPLIT_TAG}\" : !transform.any_op\n\
         \x20       transform.annotate %part \"{SPLIT_TAG}\" : !transform.any_op\n\
         \x20       transform.annotate %comb \"{SPLIT_TAG}\" : !transform.any_op",
        split = split.join(", ")
    );
    peel_each(body, "loop");
    let mut comb = "comb".to_owned();
    let widths = if tree { tree_widths(lanes) } else { Vec::new() };
    for (level, width) in widths.into_iter().enumerate() {
        let mut sizes = vec!["0".to_owned(); rank - 1];
        sizes.push(width.to_string());
        let _ = writeln!(
            body,
            "        %tf{level}, %tp{level}, %tc{level}, %tl{level} = transform.structured.tile_reduction_using_for %{comb} by tile_sizes = [{sizes}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)\n\
             \x20       transform.annotate %tf{level} \"{SPLIT_TAG}\" : !transform.any_op\n\
             \x20       transform.annotate %tp{level} \"{SPLIT_TAG}\" : !transform.any_op\n\
             \x20       transform.annotate %tc{level} \"{SPLIT_TAG}\" : !transform.any_op",
            sizes = sizes.join(", ")
        );
        peel_each(body, &format!("tl{level}"));
        comb = format!("tc{level}");
    }
}

/// The tag of matrix-vector products reduced `rows` rows at a time, of
/// rank `rank` (set by `tensorc-matvec`, no matcher).
fn matvec_tag(rank: usize, rows: u32) -> String {
    if rows == MATVEC_ROWS {
        format!("tensorc.mvr{rank}")
    } else {
        format!("tensorc.mvr{rank}x{rows}")
    }
}

/// Rows of a matrix-vector product reduced together, and the partial
/// results per row: each step loads `MATVEC_LANES` elements of the vector
/// once for `MATVEC_ROWS` rows (one row at a time loads it once per row, and
/// the per-row combination of the partials, done `MATVEC_ROWS` rows at
/// once, is a quarter as frequent).
pub const MATVEC_ROWS: u32 = 4;
/// See `MATVEC_ROWS`: two registers of partial results per row, 8 in all.
pub const MATVEC_LANES: u32 = 32;

/// Rows reduced together in matrix-vector products whose matrix comes
/// from memory (over `MATVEC_STREAM_BYTES`). Two rows streamed with
/// prefetches (`tensorc-prefetch-rows`' block reads) ran at 46–48 GB/s in
/// a C model of the loop (16384×1024 f32, one thread), four at 28–36 and
/// one at 38; a matrix in L3 favours more rows (2048×1024: 63 GB/s with
/// two, 79 with four).
pub const MATVEC_STREAM_ROWS: u32 = 2;
/// See `MATVEC_STREAM_ROWS`: matrices above this size (bytes) are
/// streamed two rows at a time. Half the 32 MiB L3 of the machine the
/// schedules were measured on: with two threads (or other data) the rest
/// is taken.
pub const MATVEC_STREAM_BYTES: u64 = 16 << 20;

/// The tag that gives a matrix-vector product (a reduction over the
/// innermost loop of rank `rank`, reading a broadcast vector, `len` long,
/// from a matrix of `bytes`) this schedule: several rows at a time when the
/// rows are long enough for the partials, else the plain row reduction's
/// (`None`: no schedule).
pub fn matvec_reduction_tag(rank: usize, len: u64, bytes: u64) -> Option<String> {
    if len > 2 * u64::from(MATVEC_LANES) {
        let rows = if bytes > MATVEC_STREAM_BYTES { MATVEC_STREAM_ROWS } else { MATVEC_ROWS };
        Some(matvec_tag(rank, rows))
    } else {
        row_reduction_tag(rank, len)
    }
}

/// Appends the schedule of matrix-vector products (`matvec_tag`): the
/// innermost parallel loop tiled by `MATVEC_ROWS` (`MATVEC_STREAM_ROWS` for
/// the streamed matrices' tag; peeled: a remainder block of fewer rows),
/// the other parallel loops by 1, then every block
/// (found again by its tag) split like a row reduction into `MATVEC_LANES`
/// partials per row, combined as a tree.
pub fn add_matvec_rows(lib: &mut Library) {
    for (rank, rows) in (2..=MAX_RANK).flat_map(|r| [(r, MATVEC_ROWS), (r, MATVEC_STREAM_ROWS)]) {
        let h = if rows == MATVEC_ROWS { format!("mvr{rank}") } else { format!("mvr{rank}x{rows}") };
        let mut sizes = vec!["1".to_owned(); rank - 2];
        sizes.push(rows.to_string());
        sizes.push("0".to_owned());
        add_row_blocks(lib, &h, &matvec_tag(rank, rows), &sizes, rank - 2, MATVEC_LANES);
    }
    for (batched, rows) in [false, true].into_iter().flat_map(|b| NARROW_ROWS.map(|r| (b, r))) {
        let mut sizes: Vec<String> = if batched { vec!["1".into()] } else { Vec::new() };
        sizes.extend([rows.to_string(), "0".into(), "0".into()]);
        let rank = sizes.len();
        add_row_blocks(lib, &format!("mvn{rank}x{rows}"), &narrow_tag(rank, rows), &sizes, rank - 3, NARROW_LANES);
    }
}

/// Appends a schedule found by `tag` (handles named after `h`): the op
/// tiled by `sizes` (the reduced loop last, `0`), the loop `peel` peeled
/// (a remainder block), then every block split like a row reduction into
/// `lanes` partials per result element, combined as a tree.
fn add_row_blocks(lib: &mut Library, h: &str, tag: &str, sizes: &[String], peel: usize, lanes: u32) {
    let body = lib.body();
    let rank = sizes.len();
    tile_and_peel(body, h, tag, sizes, peel);
    let _ = writeln!(
        body,
        "    %{h}b = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{tag}}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.foreach %{h}b : !transform.any_op {{\n\
         \x20   ^bb0(%r: !transform.any_op):\n\
         \x20     transform.sequence %r : !transform.any_op failures(suppress) {{\n\
         \x20     ^bb1(%r2: !transform.any_op):",
    );
    split_rows(body, rank, "r2", lanes, true);
    body.push_str("      }\n    }\n");
}

/// Rows of A per block of a narrow product (`narrow_product_tag`): two
/// for up to 8 result columns, one for up to 16 (`2 × 8` or `1 × 16`
/// partial vectors of `NARROW_LANES`, half the AVX-512 registers).
pub const NARROW_ROWS: [u32; 2] = [2, 1];
/// Partial results per result element of a narrow product: one AVX-512
/// register of f32.
pub const NARROW_LANES: u32 = 16;

/// The tag of narrow products of rank `rank` (3, or 4 with a batch loop
/// first, tiled by 1) reduced `rows` rows of A at a time.
fn narrow_tag(rank: usize, rows: u32) -> String {
    format!("tensorc.mvn{rank}x{rows}")
}

/// The tag of the frontend's narrow product (`NARROW_KEY`: loops
/// `[M][N][K]`, A read `(m, k)`, Bᵀ `(n, k)`, or `[B][M][N][K]` for a
/// batch) of rank `rank` with `n` columns: each block
/// of one or two rows of A and all N rows of Bᵀ is reduced along K in
/// `NARROW_LANES` partials per result element, so a step loads one vector
/// of each row of A and of Bᵀ for `rows · n` multiply-adds, and A is read
/// once (the matrix-vector tags took a few rows of Bᵀ at a time and read
/// each row of A N/2 times: 4096×4096·8 f32 5.4 ms, XLA 3.1). `None` for
/// more than 16 columns.
pub fn narrow_product_tag(rank: usize, n: u64) -> Option<String> {
    if !(3..=4).contains(&rank) {
        return None;
    }
    match n {
        0..=8 => Some(narrow_tag(rank, NARROW_ROWS[0])),
        9..=16 => Some(narrow_tag(rank, NARROW_ROWS[1])),
        _ => None,
    }
}

/// The tag of reductions whose innermost loop is parallel, of rank `rank`.
fn outer_tag(rank: usize) -> String {
    format!("tensorc.ored{rank}")
}

/// Loop positions of the reduction that get blocks of rows: the first loop
/// (`sum x, axes: [0]`, a vector-matrix product) and the second (a sum over
/// axis 1 of a 3-D tensor, and `tensorc-matvec`'s chunks of rows: a
/// parallel loop of chunks, then the rows of each).
const BLOCKED_AT: [usize; 2] = [0, 1];

/// The tag of reductions whose innermost loop is parallel and whose loop
/// `at` is a reduction after parallel loops only, of rank `rank`:
/// accumulated in blocks of rows.
fn blocked_tag(rank: usize, at: usize) -> String {
    if at == 0 {
        format!("tensorc.oredb{rank}")
    } else {
        format!("tensorc.oredb{rank}p{at}")
    }
}

/// The tag that gives a reduction whose innermost loop is parallel this
/// schedule: in blocks of rows when its reduction loop `at` (after parallel
/// loops only) is one of the first two (`Some`), else row by row. For ops
/// classified elsewhere (`tensorc-matvec`'s vector-matrix products).
pub fn outer_reduction_tag(rank: usize, at: Option<usize>) -> String {
    match at {
        Some(at) if BLOCKED_AT.contains(&at) && at + 1 < rank => blocked_tag(rank, at),
        _ => outer_tag(rank),
    }
}

/// Rows accumulated per tile of an outer-axis reduction whose first loop is
/// the reduction: one accumulator load and store per eight input vectors,
/// read from eight rows at once (eight streams the prefetchers follow).
pub const BLOCK_ROWS: u32 = 8;

/// Adds reductions over axes other than the last (`sum x, axes: [0]`):
/// generics of rank 2 to `MAX_RANK` whose last loop is parallel and some
/// other loop a reduction, with one combiner body and one init. Like the
/// element-wise schedule, every loop is tiled by 1 except the innermost, by
/// `lanes`, peeled: each tile adds one row's `lanes` consecutive elements
/// into `lanes` partial results held in the output (accumulate rows into a
/// vector of partial sums), so the input is read in order, a vector at a
/// time, and no reassociation happens (each output is still combined in
/// row order).
///
/// When the reduction is the first loop (the frontend keeps the input's
/// axis order, so that is `axes: [0]`) or the second after a parallel one,
/// that loop is tiled by `BLOCK_ROWS` first (peeled), so a tile adds
/// `BLOCK_ROWS` rows into the partial results at once: one load and store
/// of the accumulators per `BLOCK_ROWS` input vectors instead of per vector
/// (the accumulators of a 4096-wide row are 16 KiB, so each of those is an
/// L1 round trip that competed with the stream: 0.54× NumPy). Each output
/// is still combined in row order.
pub fn add_outer_reductions(lib: &mut Library, lanes: u32) {
    for rank in 2..=MAX_RANK {
        let blocked = BLOCKED_AT
            .iter()
            .filter(|&&at| at + 1 < rank)
            .map(|&at| Some(at));
        for at in blocked.chain([None]) {
            let mut predicates = rank_is(rank);
            predicates.push_str(
                "      transform.match.structured.dim %s[-1] {parallel} : !transform.any_op\n",
            );
            if let Some(at) = at {
                predicates.push_str(&leading_parallel(at));
                let _ = writeln!(
                    predicates,
                    "      transform.match.structured.dim %s[{at}] {{reduction}} : !transform.any_op"
                );
            }
            predicates.push_str(ONE_COMBINER);
            predicates.push_str(REDUCTION_MAPS);
            predicates.push_str(&nonempty_dims(rank));
            // The blocked matchers come first: `foreach_match` tags an op
            // with the first matcher that accepts it.
            let name = match at {
                Some(at) => format!("tensorc_k_oredb{rank}p{at}"),
                None => format!("tensorc_k_ored{rank}"),
            };
            lib.tagging_matcher(
                &name,
                "linalg.generic",
                &predicates,
                &outer_reduction_tag(rank, at),
            );
        }
    }
    let body = lib.body();
    for rank in 2..=MAX_RANK {
        for at in BLOCKED_AT.into_iter().filter(|&at| at + 1 < rank) {
            add_blocks_of_rows(body, rank, at, lanes);
        }
        tile_by_lanes(body, &format!("ored{rank}"), &outer_tag(rank), rank, lanes);
    }
    add_few_rows(body, lanes);
}

/// The tag of few-row products (`add_few_rows`).
pub const FEW_ROWS_TAG: &str = "tensorc.few_rows";

/// The rows of B per block of a few-row product: the block's `rows × M`
/// broadcast elements of A stay in registers. One thread, alternated in
/// one process: 4×4096·4096² f32 5.4 (two-row tiles) → 2.4 ms with blocks
/// of four, 2.9–4.1 with eight (32 broadcasts spilled), 3.4–3.6 with two.
pub const FEW_ROWS_BLOCK: u32 = 4;

/// Few-row products, generics over `[K][M][N]` reading A's `[M][K]` and
/// B's `[K][N]` (`tensorc-matvec` makes them of `linalg.matmul`s of 2 to 4
/// rows, tags them and splits them for threads in strips of N): K by
/// `FEW_ROWS_BLOCK` (peeled), then N by `lanes` (peeled), M whole. Each
/// tile loads a vector of each of the block's rows of B once and adds its
/// products with all M rows of A (broadcast) into M vectors of results
/// (`tensorc-fused-row-sums` makes each an FMA), so B streams once, along
/// its rows, like a vector·matrix product's.
fn add_few_rows(body: &mut String, lanes: u32) {
    let s = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>();
    tile_and_peel(body, "fewr", FEW_ROWS_TAG, &s(&[FEW_ROWS_BLOCK, 0, 0]), 0);
    tile_and_peel(body, "fewrr", FEW_ROWS_TAG, &s(&[0, 0, lanes]), 0);
}

/// Blocks of rows of the ops tagged `blocked_tag(rank, at)`: the loops
/// before `at` by 1 and loop `at` by `BLOCK_ROWS` (peeled), then each block
/// (the main ones and the remainder, found again by their tag) with that
/// loop kept whole, the other loops by 1 and the innermost by `lanes`
/// (peeled).
fn add_blocks_of_rows(body: &mut String, rank: usize, at: usize, lanes: u32) {
    let h = format!("oredb{rank}p{at}");
    let t = blocked_tag(rank, at);
    let mut sizes = vec!["1".to_owned(); at];
    sizes.push(BLOCK_ROWS.to_string());
    sizes.resize(rank, "0".to_owned());
    tile_and_peel(body, &h, &t, &sizes, at);
    let mut sizes = vec!["0".to_owned(); at + 1];
    sizes.resize(rank - 1, "1".to_owned());
    sizes.push(lanes.to_string());
    tile_and_peel(body, &format!("{h}r"), &t, &sizes, rank - at - 2);
}

/// Appends the vectorization of the tiles of `add_outer_reductions` (they
/// keep their tag through tiling and peeling).
pub fn vectorize_outer_reductions(lib: &mut Library) {
    let body = lib.body();
    for rank in 2..=MAX_RANK {
        for at in BLOCKED_AT.into_iter().filter(|&at| at + 1 < rank) {
            vectorize_tagged(body, &format!("oredbv{rank}p{at}"), &blocked_tag(rank, at));
        }
        vectorize_tagged(body, &format!("oredv{rank}"), &outer_tag(rank));
    }
    vectorize_tagged(body, "fewrv", FEW_ROWS_TAG);
}

/// The widths of the tree levels that combine `lanes` partials: a quarter
/// first (four registers into one), then halves down to 2.
pub fn tree_widths(lanes: u32) -> Vec<u32> {
    let mut widths = Vec::new();
    let mut w = lanes / 4;
    while w >= 2 {
        widths.push(w);
        w /= 2;
    }
    widths
}

/// Appends the vectorization of the split reductions' ops (after the caller
/// has canonicalized the peeled tile sizes) and the hoisting that keeps the
/// partial accumulators in registers across the reduced loop.
pub fn vectorize_reductions(lib: &mut Library) {
    let body = lib.body();
    let _ = writeln!(
        body,
        "    %redv = transform.structured.match attributes{{{SPLIT_TAG}}} in %root : (!transform.any_op) -> !transform.any_op"
    );
    vectorize_each(body, "redv");
}

/// Appends the hoisting of loop-invariant vector reads/writes (the partial
/// accumulators) out of every `scf.for`, after vector cleanup.
pub fn hoist_accumulators(lib: &mut Library) {
    lib.body().push_str(
        "    %redloops = transform.structured.match ops{[\"scf.for\"]} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.loop.hoist_loop_invariant_subsets %redloops : !transform.any_op\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_reductions_are_tiled_like_element_wise_ops() {
        let mut lib = Library::default();
        add_outer_reductions(&mut lib, 16);
        vectorize_outer_reductions(&mut lib);
        let s = lib.finish();
        assert!(s.contains("tile_sizes [1, 16] "), "{s}");
        assert!(s.contains(&format!("tile_sizes [{}16] ", "1, ".repeat(MAX_RANK - 1))));
        // With the reduction first: blocks of rows, then each block by
        // lanes with its rows kept whole.
        assert!(s.contains(&format!("tile_sizes [{BLOCK_ROWS}, 0] ")), "{s}");
        assert!(s.contains("tile_sizes [0, 16] "), "{s}");
        assert!(
            s.contains(&format!("tile_sizes [{BLOCK_ROWS}, 0, 0] ")),
            "{s}"
        );
        assert!(s.contains("tile_sizes [0, 1, 16] "), "{s}");
        // Second: the loop before by 1.
        assert!(
            s.contains(&format!("tile_sizes [1, {BLOCK_ROWS}, 0] ")),
            "{s}"
        );
        assert!(s.contains("tile_sizes [0, 0, 16] "), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 1, 16] "), "{s}");
        // Few-row products: blocks of FEW_ROWS_BLOCK rows, then lanes with
        // M whole.
        assert!(s.contains(&format!("attributes{{{FEW_ROWS_TAG}}}")), "{s}");
        assert!(s.contains(&format!("tile_sizes [{FEW_ROWS_BLOCK}, 0, 0] ")), "{s}");
        // Per rank: the unblocked lanes loop, the blocks and their lanes
        // loop peeled, each kind vectorized; ranks from 3 have both
        // blocked kinds; the few-row products' two loops and one kind.
        let kinds = 2 * (MAX_RANK - 1) - 1;
        assert_eq!(
            crate::matmul_schedule::peel_count(&s),
            (MAX_RANK - 1) + 2 * kinds + 2
        );
        assert_eq!(
            s.matches("transform.structured.vectorize ").count(),
            (MAX_RANK - 1) + kinds + 1
        );
        assert_eq!(
            s.matches("%s[-1] {parallel}").count(),
            (MAX_RANK - 1) + kinds
        );
        assert_eq!(s.matches("%s[0] {reduction}").count(), MAX_RANK - 1);
        assert_eq!(s.matches("%s[1] {reduction}").count(), MAX_RANK - 2);
        // The blocked matchers are tried first.
        assert!(
            s.find("@tensorc_k_oredb2p0 ->") < s.find("@tensorc_k_ored2 ->"),
            "{s}"
        );
        assert!(
            s.find("@tensorc_k_oredb3p1 ->") < s.find("@tensorc_k_ored3 ->"),
            "{s}"
        );
        assert_eq!(outer_reduction_tag(3, Some(0)), "tensorc.oredb3");
        assert_eq!(outer_reduction_tag(3, Some(1)), "tensorc.oredb3p1");
        assert_eq!(outer_reduction_tag(2, Some(1)), "tensorc.ored2");
        assert_eq!(outer_reduction_tag(3, Some(2)), "tensorc.ored3");
        assert_eq!(outer_reduction_tag(3, None), "tensorc.ored3");
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    #[test]
    fn rows_are_tiled_by_one_and_the_reduced_loop_split_by_lanes() {
        let mut lib = Library::default();
        add_reductions(&mut lib, ReductionTiles { lanes: 32 });
        vectorize_reductions(&mut lib);
        hoist_accumulators(&mut lib);
        let s = lib.finish();
        assert!(
            s.contains("tile_reduction_using_for %r2 by tile_sizes = [32]"),
            "{s}"
        );
        assert!(s.contains("tile_using_for %r2 tile_sizes [1, 1, 0]"), "{s}");
        assert!(
            s.contains("tile_reduction_using_for %row by tile_sizes = [0, 0, 32]"),
            "{s}"
        );
        // The split, then the tree levels 8, 4, 2 combining the 32 partials.
        assert_eq!(tree_widths(32), [8, 4, 2]);
        assert_eq!(tree_widths(64), [16, 8, 4, 2]);
        assert!(tree_widths(4).is_empty());
        // Every class of row lengths but the shortest gets the split and
        // the tree of its partials: long rows (over 64 elements) the
        // tiles' 32 (three levels), 16..=64 elements 16 (two), 8..=15 8
        // (one); rows of 2..=7 are vectorized whole (their row tile tagged
        // for the vectorizer); matrix-vector products (rank 2 and up) the
        // split and the tree of their `MATVEC_LANES` partials.
        let levels: usize = [32, 16, 8].iter().map(|&l| 1 + tree_widths(l).len()).sum();
        assert_eq!(levels, 4 + 3 + 2);
        assert!(s.contains(&format!("transform.annotate %row \"{SPLIT_TAG}\"")), "{s}");
        assert!(s.contains(&format!("transform.annotate %r2 \"{SPLIT_TAG}\"")), "{s}");
        let matvec_levels = 1 + tree_widths(MATVEC_LANES).len();
        // Narrow products: blocks of two rows or one, all columns, split
        // into 16 lanes (two tree levels).
        let narrow_levels = 1 + tree_widths(NARROW_LANES).len();
        assert_eq!(
            s.matches("transform.structured.tile_reduction_using_for")
                .count(),
            MAX_RANK * levels + 2 * (MAX_RANK - 1) * matvec_levels + 2 * NARROW_ROWS.len() * narrow_levels
        );
        assert!(s.contains("tile_using_for %mvn3x2 tile_sizes [2, 0, 0]"), "{s}");
        assert!(s.contains("tile_using_for %mvn3x1 tile_sizes [1, 0, 0]"), "{s}");
        assert!(s.contains("tile_using_for %mvn4x2 tile_sizes [1, 2, 0, 0]"), "{s}");
        assert!(s.contains("tile_reduction_using_for %r2 by tile_sizes = [0, 0, 16]"), "{s}");
        for lanes in [16, 8] {
            assert!(
                s.contains(&format!("tile_reduction_using_for %row by tile_sizes = [0, {lanes}]")),
                "{s}"
            );
        }
        // Matrix-vector products: blocks of rows (peeled), then the split.
        assert!(
            s.contains(&format!(
                "tile_using_for %mvr2 tile_sizes [{MATVEC_ROWS}, 0]"
            )),
            "{s}"
        );
        assert!(
            s.contains(&format!(
                "tile_using_for %mvr3 tile_sizes [1, {MATVEC_ROWS}, 0]"
            )),
            "{s}"
        );
        assert!(s.contains("attributes{tensorc.mvr3}"), "{s}");
        assert!(s.contains(&format!("tile_using_for %mvr3x2 tile_sizes [1, {MATVEC_STREAM_ROWS}, 0]")), "{s}");
        assert!(s.contains("attributes{tensorc.mvr3x2}"), "{s}");
        assert!(
            s.contains(&format!(
                "tile_reduction_using_for %r2 by tile_sizes = [0, 0, {MATVEC_LANES}]"
            )),
            "{s}"
        );
        assert_eq!(matvec_reduction_tag(2, 4096, 1 << 20).as_deref(), Some("tensorc.mvr2"));
        assert_eq!(matvec_reduction_tag(3, 4096, MATVEC_STREAM_BYTES + 4).as_deref(), Some("tensorc.mvr3x2"));
        assert_eq!(matvec_reduction_tag(2, 64, 1 << 20).as_deref(), Some("tensorc.red2"));
        // Narrow products: two rows of A per block up to 8 columns, one up
        // to 16, none wider.
        assert_eq!(narrow_product_tag(3, 3).as_deref(), Some("tensorc.mvn3x2"));
        assert_eq!(narrow_product_tag(3, 8).as_deref(), Some("tensorc.mvn3x2"));
        assert_eq!(narrow_product_tag(3, 9).as_deref(), Some("tensorc.mvn3x1"));
        assert_eq!(narrow_product_tag(4, 16).as_deref(), Some("tensorc.mvn4x1"));
        assert_eq!(narrow_product_tag(3, 17), None);
        assert_eq!(narrow_product_tag(5, 4), None);
        // Broadcasting row reductions: any class, but not the scalar rows.
        assert_eq!(broadcast_row_reduction_tag(&[4096, 1000]), row_reduction_tag(2, 1000));
        assert_eq!(broadcast_row_reduction_tag(&[1, 10]), row_reduction_tag(2, 10));
        assert_eq!(broadcast_row_reduction_tag(&[5000, 9]), None);
        // Each class's matcher bounds the last dimension (the long one from
        // below only).
        assert_eq!(s.matches("transform.match.param.cmpi ge %d0, %lo").count(), ROW_CLASSES.len());
        assert_eq!(s.matches("transform.match.param.cmpi le %d0, %hi").count(), ROW_CLASSES.len() - 1);
        assert!(s.contains("%lo = transform.param.constant 65 : i64"), "{s}");
        assert!(s.contains("attributes{tensorc.redl3}"), "{s}");
        assert!(
            s.contains("tile_reduction_using_for %comb by tile_sizes = [0, 0, 8]"),
            "{s}"
        );
        assert!(
            s.contains("tile_reduction_using_for %tc1 by tile_sizes = [2]"),
            "{s}"
        );
        assert_eq!(s.matches("{reduction_position = 0}").count(), ROW_CLASSES.len() * MAX_RANK);
        // Tags for ops classified elsewhere, by length.
        let tags: Vec<Option<String>> =
            [4096, 65, 64, 16, 15, 8, 7, 4, 3, 2, 1, 0].iter().map(|&n| row_reduction_tag(2, n)).collect();
        let want = ["redl2", "redl2", "red2", "red2", "reds82", "reds82", "reds12", "reds12", "reds12", "reds12"];
        for (tag, want) in tags.iter().zip(want) {
            assert_eq!(tag.as_deref(), Some(format!("tensorc.{want}").as_str()));
        }
        assert_eq!(tags[10..], [None, None]);
        // Short ones only (argmax's index reductions; long ones stay loops),
        // and of those not many rows of at most SCALAR_ROW_MAX elements
        // (the scalar lowering's); one row of them keeps its class.
        assert_eq!(short_row_reduction_tag(&[1, 1, 10]).as_deref(), Some("tensorc.reds83"));
        assert_eq!(short_row_reduction_tag(&[1, 7, 10]), None);
        assert_eq!(short_row_reduction_tag(&[1, 5]).as_deref(), Some("tensorc.reds12"));
        assert_eq!(short_row_reduction_tag(&[9, 64]).as_deref(), Some("tensorc.red2"));
        assert_eq!(short_row_reduction_tag(&[2, 14]).as_deref(), Some("tensorc.reds82"));
        assert_eq!(short_row_reduction_tag(&[2, 13]), None);
        assert_eq!(short_row_reduction_tag(&[1, 16, 10]), None);
        assert_eq!(short_row_reduction_tag(&[1, 1, 7, 10]).as_deref(), Some("tensorc.reds84"));
        assert_eq!(short_row_reduction_tag(&[100000, 2]), None);
        assert_eq!(short_row_reduction_tag(&[3, 65]), None);
        assert_eq!(short_row_reduction_tag(&[3, 1]), None);
        assert_eq!(short_row_reduction_tag(&[]), None);
        // The scalar rows' matchers: ranks 2 and up, before every class's.
        assert_eq!(s.matches("%short = transform.param.constant 13 : i64").count(), 2 * MAX_RANK - 3);
        assert!(s.contains("tensorc_k_reds02_0"), "{s}");
        assert!(!s.contains("tensorc_k_reds02_1"), "{s}");
        assert!(s.contains("tensorc_k_reds03_1"), "{s}");
        assert!(s.contains("transform.match.param.cmpi ge %d1, %two"), "{s}");
        assert!(!s.contains("tensorc_k_reds01"), "{s}");
        assert!(s.find("@tensorc_k_reds02_0 ->").unwrap() < s.find("@tensorc_k_reds12 ->").unwrap(), "{s}");
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }
}

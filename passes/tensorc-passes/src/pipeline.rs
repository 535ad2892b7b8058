//! The CPU pass pipeline as `mlir-opt`-style pipeline strings.
//!
//! Kept as plain strings (not a melior `PassManager`) so that the same text
//! drives `tensorc-mlir` in process and `mlir-opt --pass-pipeline` in tests
//! and when debugging: a pipeline that passes one passes the other. Both
//! functions return comma-separated pipeline *elements* meant to be nested in
//! `builtin.module(...)`, e.g. `builtin.module(<opt>,<lowering>)`.

use crate::conv_schedule::ConvTiles;
use crate::elementwise_schedule::{ENTRY as KERNEL_ENTRY, kernel_schedule};
use crate::flatten_schedule::{ENTRY as FLATTEN_ENTRY, flatten_schedule};
use crate::matmul_schedule::{MatmulTiles, PEEL_EACH_DEFINITION, matmul_schedule, script_file};
use crate::packed_matmul::{PACK_ENTRY, PackedMatmul, pack_schedule};
use crate::parallel_schedule::{ENTRY as PARALLEL_ENTRY, parallel_schedule};
use crate::row_fuse_schedule::{ENTRY as ROW_FUSE_ENTRY, row_fuse_schedule};
use crate::transpose_schedule::{ENTRY as TRANSPOSE_ENTRY, transpose_schedule};

/// The vector registers the code generator's target has, which sizes the
/// register tiles of the matmul, packed-matmul and convolution schedules
/// (`tensorc_cpu::Pipelines::for_target` picks one by asking LLVM about
/// the target). The element-wise and reduction schedules keep 16-lane f32
/// vectors on both: on AVX2 each is two ymm registers, which only unrolls
/// their loops by two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorIsa {
    /// 32 zmm registers of 512 bits (AVX-512F).
    Avx512,
    /// 16 ymm registers of 256 bits (AVX2 and FMA, no AVX-512F).
    Avx2,
}

/// The Rust pass that outlines parallel loops into thread-pool calls
/// (`outline_parallel.rs`). It is not an MLIR-registered pass: tensorc-mlir
/// runs the pipeline in parts around it (`register_external_pass`), and
/// `full_cpu_pipeline` leaves it out for `mlir-opt`.
pub const OUTLINE_PARALLEL: &str = "tensorc-outline-parallel";

/// The location name of ops whose float arithmetic must stay exact as
/// written: the Vulkan math expansions' (`vulkan_math.rs`,
/// `vulkan_math_f64.rs`) and the frontend's f32 ones (the same string as
/// `tensorc_frontend`'s `EXACT_LOC`, checked by a test there), whose
/// SPIR-V arithmetic `tensorc-vulkan-exact-float` decorates `NoContraction`.
pub const EXACT_LOC: &str = "tensorc.exact";

/// The attribute with which a schedule marks an `scf.for` whose iterations
/// are independent (each writes its own slice and reads nothing another
/// writes): `tensorc-outline-parallel` outlines it like an `scf.parallel`
/// once bufferization has left it without results. The transform dialect
/// cannot make an `scf.forall` out of a loop it has peeled, and a
/// `tile_using_forall` with a partial last chunk leaves dynamic shapes that
/// do not vectorize (`packed_matmul.rs`: A's pack and the unpack).
pub const PARALLEL_FOR: &str = "tensorc.parallel_for";

/// The Rust pass that decides which ops run in parallel (`parallel_mark.rs`),
/// run like `OUTLINE_PARALLEL`; without it the parallel step changes nothing.
pub const PARALLEL_MARK: &str = "tensorc-parallel-mark";

/// The Rust pass that rewrites matrix-vector contractions as reductions
/// and splits outer-axis reductions for threads in wide strips
/// (`matvec.rs`), run like `OUTLINE_PARALLEL`, right after
/// `PARALLEL_MARK`, whose splits of those ops it replaces.
pub const MATVEC: &str = "tensorc-matvec";

/// The Rust pass that lets packed matmuls compute in a strided view of
/// their result instead of a packed temporary (`unpack_in_place.rs`), run
/// like `OUTLINE_PARALLEL`, right after bufferization.
pub const UNPACK_IN_PLACE: &str = "tensorc-unpack-in-place";

/// The Rust pass that replaces padded copies by masked reads of the
/// operand they copy (`read_through_pads.rs`), run like `OUTLINE_PARALLEL`,
/// right after bufferization.
pub const READ_THROUGH_PADS: &str = "tensorc-read-through-pads";

/// The Rust pass that fills only the halo of a padded temporary the
/// previous one leaves (`fill_halo.rs`), run like `OUTLINE_PARALLEL`,
/// right after it.
pub const FILL_HALO: &str = "tensorc-fill-halo";

/// The Rust pass that splits large copies outside parallel loops into
/// parallel loops of slice copies (`parallel_copies.rs`), run like
/// `OUTLINE_PARALLEL`, right after `FILL_HALO`.
pub const PARALLEL_COPIES: &str = "tensorc-parallel-copies";

/// The Rust pass that writes loops' running maxima and minima as
/// compare-selects with a NaN tracker beside them (`running_max.rs`), run like
/// `OUTLINE_PARALLEL`, right before `arith-expand`.
pub const RUNNING_MAX: &str = "tensorc-running-max";

/// The Rust pass that writes sums over the leading rows of contractable
/// products as chains of FMAs (`fused_row_sums.rs`), run like
/// `OUTLINE_PARALLEL`, right before `lower-vector-multi-reduction`.
pub const FUSED_ROW_SUMS: &str = "tensorc-fused-row-sums";

/// The Rust pass that runs a row loop's last pass one row late, fused into
/// the next row's pass that fills its scratch row (`row_skew.rs`), run like
/// `OUTLINE_PARALLEL`, right before `RUNNING_MAX`.
pub const ROW_SKEW: &str = "tensorc-row-skew";

/// The Rust pass that decides which matrix products are packed (tags them)
/// and turns batches of them into loops of `linalg.matmul`s
/// (`pack_mark.rs`), run like `OUTLINE_PARALLEL`, right before the packing
/// step; without it nothing is packed.
pub const PACK_MARK: &str = "tensorc-pack-mark";

/// The repitching of unpacked products' B (`repitch_b.rs`), right after
/// `PACK_MARK` (it reads its decisions), on AVX-512 targets.
pub const REPITCH_B: &str = "tensorc-repitch-b";

/// `PACK_MARK` with the decisions of AVX2's packed schedule
/// (`PackedMatmul::for_isa`), in the AVX2 lowering: it packs more products
/// and counts in 8-wide B panels (its N chunks).
pub const PACK_MARK_AVX2: &str = "tensorc-pack-mark-avx2";

/// The Rust pass that starts register-tile accumulators at zero and adds C
/// after the k loop, prefetched before it (`late_accumulate.rs`), run like
/// `OUTLINE_PARALLEL`, right after bufferization.
pub const LATE_ACCUMULATE: &str = "tensorc-late-accumulate";

/// The Rust pass that drops the zero fill of unpacked products whose tiles
/// then write C instead of adding to it (`drop_zero_fill.rs`), run like
/// `OUTLINE_PARALLEL`, right after `LATE_ACCUMULATE`.
pub const DROP_ZERO_FILL: &str = "tensorc-drop-zero-fill";

/// The Rust pass that lets the first K block of a blocked product write C
/// (its zero fill goes) and the last run the element-wise epilogue on the
/// register tiles (`k_block_ends.rs`), run like `OUTLINE_PARALLEL`, right
/// after `DROP_ZERO_FILL`.
pub const K_BLOCK_ENDS: &str = "tensorc-k-block-ends";

/// The Rust pass that packs the next K block of B during the current one,
/// a slice per register tile, into a second buffer (`pack_ahead.rs`), run
/// like `OUTLINE_PARALLEL`, right after `K_BLOCK_ENDS`.
pub const PACK_AHEAD: &str = "tensorc-pack-ahead";

/// The Rust pass that prefetches the rows ahead in the later passes of
/// multi-pass row loops (`prefetch_rows.rs`), run like `OUTLINE_PARALLEL`,
/// right after `LATE_ACCUMULATE`.
pub const PREFETCH_ROWS: &str = "tensorc-prefetch-rows";

/// The Rust pass that prefetches ahead in reduction loops streaming long
/// contiguous runs (`prefetch_stream.rs`), run like `OUTLINE_PARALLEL`,
/// right after `PREFETCH_ROWS`.
pub const PREFETCH_STREAM: &str = "tensorc-prefetch-stream";

/// The Rust pass that prefetches the next panel of an operand while the
/// register tiles run over the current one (`prefetch_panels.rs`), run like
/// `OUTLINE_PARALLEL`, right after `PREFETCH_STREAM`.
pub const PREFETCH_PANELS: &str = "tensorc-prefetch-panels";

/// The Rust pass that stores large results with non-temporal stores when
/// their buffers are aligned (`stream_stores.rs`), run like
/// `OUTLINE_PARALLEL`, right after `PREFETCH_PANELS` (it moves the write
/// prefetches of `PREFETCH_ROWS` into the unaligned case).
pub const STREAM_STORES: &str = "tensorc-stream-stores";

/// The Rust pass that keeps a reduction tree's levels in registers
/// (`fold_partials.rs`), run like `OUTLINE_PARALLEL`, right after
/// `STREAM_STORES`.
pub const FOLD_PARTIALS: &str = "tensorc-fold-partials";

/// The Rust pass that joins the two parallel loops the parallel step cuts
/// an op into (`merge_chunks.rs`), run like `OUTLINE_PARALLEL`, right after
/// `FOLD_PARTIALS`.
pub const MERGE_CHUNKS: &str = "tensorc-merge-chunks";

/// The Rust pass that reduces short rows by a maximum or minimum several
/// rows per step, one lane per row (`lane_per_row.rs`), run like
/// `OUTLINE_PARALLEL`, right after `MERGE_CHUNKS`.
pub const LANE_PER_ROW: &str = "tensorc-lane-per-row";

/// The Rust pass that combines a row's lanes for a maximum or minimum by
/// compare-selects plus one NaN check (`max_tree.rs`), run like
/// `OUTLINE_PARALLEL`, right after `LANE_PER_ROW`.
pub const MAX_TREE: &str = "tensorc-max-tree";

/// The Rust pass that lowers 0-d vector transfers to scalar loads and
/// stores (`scalar_transfers.rs`), run like `OUTLINE_PARALLEL`, right after
/// `convert-vector-to-scf` (which makes some of them).
pub const SCALAR_TRANSFERS: &str = "tensorc-scalar-transfers";

/// The Rust pass that rewrites `math.absi`/`ctlz`/`cttz` of n-D vectors
/// into ops that lower (`nd_int_math.rs`), run like `OUTLINE_PARALLEL`, right after
/// `SCALAR_TRANSFERS`.
pub const ND_INT_MATH: &str = "tensorc-nd-int-math";

/// The Rust pass that fuses element-wise chains into their last op in
/// place and folds splat constant inputs into bodies
/// (`fuse_elementwise.rs`), first in the `opt` stage after `canonicalize`,
/// before upstream's `linalg-fuse-elementwise-ops` (which fuses what it
/// leaves). The CPU and the Vulkan compiles register it.
pub const FUSE_ELEMENTWISE: &str = "tensorc-fuse-elementwise";

/// The Rust pass that makes a reduction whose combined value is loop
/// invariant read it from a filled input (`invariant_reductions.rs`: MLIR
/// 22's vectorizer adds such a value once instead of once per reduced
/// point), in the `opt` stage after `POW_BY_CONSTANT`. The CPU and the
/// Vulkan compiles register it.
pub const INVARIANT_REDUCTIONS: &str = "tensorc-invariant-reductions";

/// The Rust pass that turns contraction generics whose operands hold their
/// axes in matrix order, in groups (the frontend's `dot` with several
/// free, batch or contracted axes), into named matrix products on
/// collapsed views (`name_contractions.rs`), in the `opt` stage right
/// after upstream's element-wise fusion (which would fold the views back).
/// The CPU and the Vulkan compiles register it.
pub const NAME_CONTRACTIONS: &str = "tensorc-name-contractions";

/// The Rust pass that writes `pow` by a constant 2, 1, 0, −1 or ½ as the
/// arithmetic it equals (`pow_by_constant.rs`), in the `opt` stage after
/// element-wise fusion and its `canonicalize` (fusion moves the frontend's
/// 0-d exponent tensor into the body as a scalar constant). The CPU and
/// the Vulkan compiles register it.
pub const POW_BY_CONSTANT: &str = "tensorc-pow-by-constant";

/// The Rust pass that lowers gathers from non-contiguous memrefs to
/// conditional loads (`strided_gather.rs`), run like `OUTLINE_PARALLEL`,
/// right after `SCALAR_TRANSFERS`.
pub const STRIDED_GATHER: &str = "tensorc-strided-gather";

/// The Rust pass that loads the lanes of odd-length vectors that are only
/// extracted one by one as scalars (`lane_loads.rs`), on the LLVM dialect.
pub const LANE_LOADS: &str = "tensorc-lane-loads";

/// The Rust pass that keeps the bf16 rounding of every emulated bf16 op
/// (`bf16_rounding.rs`), run like `OUTLINE_PARALLEL`, right after
/// `arith-emulate-unsupported-floats` (also in the Vulkan pipeline).
pub const BF16_ROUNDING: &str = "tensorc-bf16-rounding";

/// The Rust pass that selects between the i16 bit patterns of bf16 values
/// (`bf16_selects.rs`: LLVM 22 fails on some bf16 vector selects on hosts
/// with AVX512-BF16), right after `BF16_ROUNDING`, CPU pipeline only; run
/// like `OUTLINE_PARALLEL`.
pub const BF16_SELECTS: &str = "tensorc-bf16-selects";

/// The Rust pass that extends bf16 to f64 through f32
/// (`bf16_wide_extends.rs`: LLVM 22 fails on some bf16 → f64 vector
/// extensions on hosts with AVX512-BF16), right after `BF16_SELECTS`, CPU
/// pipeline only; run like `OUTLINE_PARALLEL`.
pub const BF16_WIDE_EXTENDS: &str = "tensorc-bf16-wide-extends";

/// Stores of integer vectors bitcast to bf16 store the integers
/// (`bf16_stores.rs`), on the LLVM dialect, right after `convert-to-llvm`.
pub const BF16_STORES: &str = "tensorc-bf16-stores";

/// The Rust pass that writes f64 transcendental functions as f64
/// arithmetic the vectorizer widens instead of libm calls
/// (`vulkan_math_f64.rs`, `expanded_on_cpu`), first in the CPU lowering; run
/// like `OUTLINE_PARALLEL`.
pub const EXPAND_MATH_F64: &str = "tensorc-expand-math-f64";

/// The Rust pass that runs reductions over every element of their inputs
/// as one loop on 1-D views (`flatten_reductions.rs`), in the CPU lowering
/// right after `EXPAND_MATH_F64`; run like `OUTLINE_PARALLEL`.
pub const FLATTEN_REDUCTIONS: &str = "tensorc-flatten-reductions";

/// The entry points' buffer pointers are `noalias` (`noalias_args.rs`), on
/// the LLVM dialect, right after `convert-to-llvm`.
pub const NOALIAS_ARGS: &str = "tensorc-noalias-args";

/// The Rust pass that picks the row-wise chains to fuse and tags
/// broadcasting element-wise generics (`row_fuse.rs`), run like
/// `OUTLINE_PARALLEL`; without it the row-fusion step changes nothing.
pub const ROW_FUSE_MARK: &str = "tensorc-row-fuse-mark";

/// The Rust pass that tags element-wise ops over short rows for the
/// flattening step (`flatten_mark.rs`), run like `OUTLINE_PARALLEL`;
/// without it the flattening step changes nothing.
pub const FLATTEN_MARK: &str = "tensorc-flatten-mark";

/// The Rust pass that fills a fresh buffer instead of copying a filled one
/// into it (`refill_copies.rs`), right after bufferization; run like
/// `OUTLINE_PARALLEL`.
pub const REFILL_COPIES: &str = "tensorc-refill-copies";

/// The Rust pass that computes `sin` and `cos` of f32 vectors in vector
/// arithmetic when every lane is in range (`vector_trig.rs`), after
/// `convert-vector-to-scf`; run like `OUTLINE_PARALLEL`.
pub const VECTOR_TRIG: &str = "tensorc-vector-trig";

/// tensorc's optimization stage over linalg on tensors (the `opt` stage).
///
/// - `canonicalize`: fold the frontend's redundant constants, no-op reshapes
///   and repeated index computations.
/// - `tensorc-fuse-elementwise` (`fuse_elementwise.rs`): the frontend emits
///   one `linalg.generic` per element-wise node; each chain of them whose
///   intermediate results have one use, read element for element, becomes
///   one op, built in place (each body op moved once, so time linear in the
///   chain), and splat constant inputs become scalars in the body.
/// - `linalg-fuse-elementwise-ops`: the rest of the fusion (producers read
///   through broadcasts or permutations). Fusing producer into consumer
///   removes the intermediate tensors (and thus buffers and memory
///   passes). Upstream's fusion of an
///   all-parallel producer keeps its output as an extra output of the fused
///   op, visited at each *consumer* loop point (repeatedly when the consumer
///   broadcasts it), so a fusable generic must never read its init (the frontend writes
///   reductions over no loops into `tensor.empty`, see its `reduce.rs`).
/// - `tensorc-name-contractions` (`name_contractions.rs`): contraction
///   generics whose operands' axes group as `[batch][free][contracted]`
///   and `[batch][contracted][free]` (the frontend's `dot` with several
///   axes of a kind, transposed into that order) become `linalg.matmul`
///   or `batch_matmul` on collapsed views, which the CPU schedules take.
///   After the fusion above, which folds such views into the ops around
///   them; the `canonicalize` after it moves fills through the views.
/// - `tensorc-invariant-reductions` (`invariant_reductions.rs`): a
///   reduction whose combined value is loop invariant (the fusion folds a
///   filled input into the body as its scalar) reads it from a filled input
///   again: the linalg vectorizer of MLIR 22 adds a scalar operand once,
///   not once per reduced point (the sum of a constant 3×4 tensor along
///   its rows was 2 instead of 8).
/// - `eliminate-empty-tensors`, last: a `tensor.empty` whose value ends up in
///   a result is replaced by that result's out-parameter, so bufferization
///   computes straight into the caller's buffer instead of a temporary that
///   is copied out (cpu-pipeline.md §1.1). It runs after fusion (which makes
///   fresh `tensor.empty`s) and deliberately with no `cse` before it: `cse`
///   merges two identical computations returned as two results (say two
///   `argmax` of one input), and eliminating empties after that let the
///   second result overwrite the first (MLIR 22). Unmerged, each writes its
///   own out-parameter; `cse` runs later, in the lowering, where distinct
///   destinations keep them apart.
pub fn opt_pipeline() -> &'static str {
    "canonicalize,tensorc-fuse-elementwise,linalg-fuse-elementwise-ops,tensorc-name-contractions,canonicalize,tensorc-pow-by-constant,tensorc-invariant-reductions,eliminate-empty-tensors"
}

/// Scheduling, bufferization and lowering to the LLVM dialect.
///
/// - Before everything, `transform-preload-library` loads the transform
///   libraries of every step below as one module, from a content-named file
///   in the temporary directory (`cpu_lowering_pipeline_for` says why one);
///   each step runs `transform-interpreter` from its own entry point. If
///   the file cannot be written the steps are left out: the rest of the
///   pipeline is still correct, only slower.
/// - First the parallel step: `tensorc-parallel-mark` tags the linalg ops
///   worth running on several threads with a parallel loop and a chunk size
///   (`parallel_mark.rs`), and the transform library of
///   `parallel_schedule.rs` (its own library and entry point) cuts
///   them into static chunks of an `scf.forall`, so the schedules below see
///   each chunk as an op of its own.
/// - After it, the transpose step (`transpose_schedule.rs`, its own library
///   and entry point): the transposes the frontend tagged (and their
///   chunks) are tiled into square register blocks, vectorized as row reads,
///   a transpose in registers and row writes. Before the matmul schedule, so
///   its function-wide vector patterns see no other vector code.
/// - Before it, the row-fusion step: `tensorc-row-fuse-mark` tags row-wise
///   chains (last-axis reductions, their broadcasts and the element-wise ops
///   around them, as in softmax and layernorm) and broadcasting element-wise
///   generics (`row_fuse.rs`), and the library of `row_fuse_schedule.rs`
///   fuses each chain into a loop over single rows (inside an `scf.forall`
///   of row chunks for threads), so the input is read once.
/// - Before everything, the packing step of `packed_matmul.rs` (its own
///   library and entry point): large matmuls become pack(A), pack(B), a
///   packed contraction cut into N and K cache blocks, and an unpack, so
///   B is packed once and the parallel step below chunks each block (the
///   chunks share its B block).
/// - `transform-interpreter` (the default entry point): the matmul-class
///   schedule of `matmul_schedule.rs` (tile 8×32×1, peel remainders,
///   vectorize every static-shaped linalg op, hoist accumulators; tile the
///   packed blocks with 8×32 register tiles, lower packs to tiled
///   transposes, vectorize unpacks and the fused element-wise consumer tile
///   by tile). It runs here, not in the `opt` stage, so `emit --stage opt`
///   stays linalg on tensors.
///   Then `canonicalize,cse` fold the schedule's index arithmetic.
/// - The kernel schedules (`kernel_interpreter`, same way, own entry point):
///   element-wise generics tiled by 16 lanes, innermost-loop reductions split
///   into 64 partial accumulators, channels-last convolutions in 8×32 register
///   tiles, all vectorized (`elementwise_schedule.rs`, `reduction_schedule.rs`,
///   `conv_schedule.rs`); then `canonicalize,cse`.
/// - Deliberately *no* `eliminate-empty-tensors` (which would let results be
///   computed straight into the out-param memrefs, saving one copy per
///   result): in MLIR 22.1 it miscompiles once CSE has merged two identical
///   `tensor.empty`+`linalg.fill` accumulators that feed two results (two
///   `argmax`es of one input): the second result is written into the first
///   out-param and then overwritten. Found by `tests/run_values.rs`
///   (`argmax_argmin_ties_and_nan`); reproducer in the crate's
///   `tests/cases/shared_accumulator.nxir`.
/// - `one-shot-bufferize{bufferize-function-boundaries
///   function-boundary-type-conversion=identity-layout-map}`: tensors to
///   memrefs across the whole module; identity layouts keep static strides
///   on arguments (the default `infer-layout-map` gives dynamic ones).
/// - `drop-equivalent-buffer-results`: removes results that alias arguments.
/// - `scf-forall-to-parallel`, `tensorc-outline-parallel` (after the
///   clean-up below bufferization): the now buffer-only foralls become
///   `scf.parallel`, whose bodies the Rust pass outlines into functions run
///   by the runtime's thread pool (`tensorc_parallel_for`).
/// - `buffer-deallocation-pipeline`: frees every temporary buffer.
/// - `convert-bufferization-to-memref`: lowers the `bufferization.clone` and
///   dealloc ops that the previous pipeline inserts (left alone, they survive
///   `mlir-opt` and only fail at translation).
/// - `tensorc-read-through-pads` (`read_through_pads.rs`): a temporary that
///   holds a padded copy of an operand (packing an operand whose size is
///   not a multiple of the tile) and is only read goes away; its reads
///   read the operand, masked where they may leave it.
/// - `tensorc-fill-halo` (`fill_halo.rs`): a padded temporary that stays
///   (padding before the operand: a convolution's) is filled only where the
///   operand's copy does not write, not whole before it.
/// - `tensorc-parallel-copies` (`parallel_copies.rs`): a large copy outside
///   every parallel loop (such a temporary's interior) becomes a parallel
///   loop of slice copies, run on the pool once outlined.
/// - `tensorc-unpack-in-place` (`unpack_in_place.rs`): a packed matmul
///   whose packed result is only unpacked into the result computes in a
///   strided view of the result (no packed temporary, no unpack copy).
/// - `tensorc-late-accumulate` (`late_accumulate.rs`): register tiles of
///   long k loops start from zero, their C lines are prefetched before the
///   loop and C is added after it, so no tile waits for C before its first
///   FMA (on buffers: prefetches take a memref).
/// - `tensorc-drop-zero-fill` (`drop_zero_fill.rs`): an unpacked product
///   marked by `tensorc-pack-mark` whose C starts as zeros loses its fill,
///   and its register tiles write their sums instead of adding them to C.
/// - `tensorc-k-block-ends` (`k_block_ends.rs`): in a product cut into K
///   blocks, the first block writes C (the zero fill goes) and the last
///   runs the element-wise epilogue on the register tiles (the pass over
///   C after the product goes).
/// - `tensorc-pack-ahead` (`pack_ahead.rs`): a packed product's register
///   tiles each copy a slice of the next K block of B into a second buffer
///   (and prefetch the block after it), instead of one loop packing each
///   block at its start.
/// - `tensorc-prefetch-rows` (`prefetch_rows.rs`): in row loops that read
///   each row more than once (fused softmax/layernorm chains), a later pass
///   over the row prefetches the rows ahead, which the hardware prefetchers
///   would not fetch while the row is being computed on.
/// - `tensorc-prefetch-stream` (`prefetch_stream.rs`): a reduction loop
///   reading a long contiguous run (a full reduction's rows) prefetches
///   4 KiB ahead, which one core's hardware prefetchers alone do not (the
///   loop split where a prefetch would leave the row).
/// - `tensorc-prefetch-panels` (`prefetch_panels.rs`): a register tile loop
///   over one panel of A prefetches the next panel, a slice per tile, so
///   the next panel's first tile does not wait for memory.
/// - `tensorc-fold-partials` (`fold_partials.rs`): a reduction tree level
///   that wrote its partial vector to a small buffer and read it back in
///   slices combines the slices in registers (same order, same values).
/// - `tensorc-merge-chunks` (`merge_chunks.rs`): the two parallel loops of
///   an op the parallel step cut in chunks of two sizes become one loop
///   (one fork-join; a part of one chunk no longer runs alone).
/// - `tensorc-lane-per-row` (`lane_per_row.rs`): a loop reducing one short
///   row per iteration by a maximum or minimum across the lanes of one
///   vector takes as many rows per step as the vector has lanes and
///   combines them by a butterfly of shuffles, one lane per row.
/// - `tensorc-max-tree` (`max_tree.rs`): the other trees combining one
///   row's lanes for a `maximumf`/`minimumf` reduction (softmax's row
///   chains) compare and select (`vmaxps`), and one NaN check of the row
///   makes the result NaN when a lane is.
/// - `tensorc-fused-row-sums` (`fused_row_sums.rs`, after the outlining):
///   a `multi_reduction <add>` over the leading rows of a `contract`
///   product (the few-row products' blocks) becomes a chain of
///   `vector.fma`s, so each product and its add are one FMA.
/// - `canonicalize,cse`, then `func.func(lower-vector-multi-reduction)`:
///   vectorized reductions become `vector.multi_reduction`, which the LLVM
///   conversion does not know (it would survive until translation fails).
/// - `convert-vector-to-scf{full-unroll target-rank=1}`: transfers of
///   vectors of rank > 1 become rank-1 transfers, fully unrolled (without
///   `full-unroll` it puts a `memref.alloca` inside the K loop, which
///   overflows the stack; cpu-pipeline.md §1.6).
/// - `tensorc-scalar-transfers` (`scalar_transfers.rs`): 0-d vector
///   transfers, some made by the unrolling above, become
///   `memref.load`/`store` (the LLVM lowering of a 0-d transfer needs a unit
///   innermost stride; strided views failed).
/// - `tensorc-strided-gather` (`strided_gather.rs`): `vector.gather`s from
///   memrefs whose layout is not contiguous (a `take` from a strided
///   `slice` or from a slice of a larger buffer), which the LLVM lowering
///   refuses or reads wrongly, become one conditional `memref.load` per
///   lane.
/// - `tensorc-nd-int-math` (`nd_int_math.rs`): `math.absi` of n-D vectors
///   (which `convert-math-to-llvm` leaves illegal) becomes
///   `arith.maxsi(x, 0 - x)`; `math.ctlz`/`cttz` of n-D vectors (likewise
///   left illegal) run on the vector flattened to 1-D.
/// - `convert-linalg-to-loops`: every linalg op the schedule did not
///   vectorize to `scf.for` loops.
/// - `math-extend-to-supported-types{extra-types=f16 target-type=f32}`:
///   bf16 math ops (`ceil`, `floor`, `round`, `absf`, `sqrt`, … — those
///   the frontend does not already compute in f32) run in f32 between an
///   `extf` and a `truncf`, exact for these. Left to LLVM, a bf16 vector
///   of a length it widens (9 elements: a `ceil` of a 3×3 tensor loaded
///   from memory) aborted instruction selection on AVX512-BF16 hosts ("Do
///   not know how to soft promote this operator's operand", generated
///   seed 61096); f16 math is left as it is (LLVM promotes it correctly).
/// - `arith-emulate-unsupported-floats{source-types=bf16 target-type=f32}`,
///   `arith-expand{include-bf16=true}`: bf16 arithmetic is done in f32 and
///   rounded back to bf16 by integer arithmetic (round to nearest even,
///   NaN kept quiet). Left to LLVM, the f32 -> bf16 truncation becomes
///   `VCVTNEPS2BF16` on AVX512-BF16 hosts, which flushes subnormal inputs
///   to zero (the interpreter, as the spec says, rounds them); the integer
///   rounding is exact for every input. `arith-expand` also expands
///   `maximumf`/`minimumf` and the ceil/floor divisions into compares and
///   selects, which is what LLVM does with them on x86 anyway.
/// - `tensorc-bf16-rounding` (`bf16_rounding.rs`), between the two: the
///   emulation's conversions lose their `contract` flag, with which
///   `arith-expand`'s folding removed each `extf(truncf(x))` and so the
///   rounding of every bf16 result but a chain's last.
/// - `tensorc-bf16-selects` (`bf16_selects.rs`), after it: selects between
///   bf16 values select between their i16 bit patterns (LLVM 22 stops with
///   a fatal error on a select of `<9 x bfloat>` on AVX512-BF16 hosts).
/// - `tensorc-bf16-wide-extends` (`bf16_wide_extends.rs`), after it: bf16
///   → f64 conversions go through f32, which `arith-expand` writes out
///   (LLVM 22 stops on `fpext <9 x bfloat> to <9 x double>` there too).
/// - `expand-strided-metadata,lower-affine`: subviews and affine index maps
///   to plain arithmetic the LLVM lowering understands.
/// - `convert-math-to-funcs{convert-ctlz=false}`: `math.ipowi` (integer
///   `pow`) has no LLVM intrinsic; this outlines it as a generated function.
///   `ctlz` is left to the LLVM intrinsic.
/// - `convert-math-to-llvm`: math ops with an LLVM intrinsic (`sqrt`,
///   `absi`, `ctpop`, `copysign`, `exp`, …). It must run before
///   `convert-math-to-libm`, which fails on any math op it cannot map (for
///   example `math.absi`).
/// - `convert-math-to-libm`: the remaining transcendental functions (`erf`,
///   `erfc`, `cbrt`, …) to libm calls, the only run-time dependency.
/// - `convert-scf-to-cf`: structured loops to branches.
/// - `convert-vector-to-llvm{vector-contract-lowering=outerproduct}`: the
///   8×1·1×32 contractions become one broadcast and FMA per row (the
///   inner loop of cpu-pipeline.md §1.3 (b1)).
/// - `finalize-memref-to-llvm{use-generic-functions=true use-aligned-alloc=true}`:
///   memref to the LLVM dialect, with temporaries allocated by
///   `_mlir_memref_to_llvm_aligned_alloc`/`_mlir_memref_to_llvm_free`
///   instead of `malloc`/`free`: tensorc's runtime implements them as a
///   cache reused across calls (`tensorc-cpu/runtime/tensorc_workspace.c`),
///   so steady-state calls do not malloc their temporaries.
/// - `convert-to-llvm,reconcile-unrealized-casts`:
///   everything else (func, arith, cf, math, index) to the LLVM dialect;
///   `llvm.emit_c_interface` makes `convert-to-llvm` add the
///   `_mlir_ciface_*` wrappers.
pub fn cpu_lowering_pipeline() -> String {
    cpu_lowering_pipeline_for(VectorIsa::Avx512)
}

/// `cpu_lowering_pipeline` with the register tiles of `isa`.
///
/// Every transform step's library is preloaded once, first, as one module
/// (`Libraries`): each `transform-preload-library` merges its file into
/// the transform dialect's library, and MLIR 22's merge verifies the whole
/// library gathered so far and the new file, twice each. Seven preloads
/// cost 0.60 s a compile on this machine (more than the rest of the MLIR
/// pipeline); one preload of the same sequences 0.30–0.35 s (its parse
/// alone 0.12 s). The steps keep their own entry points.
pub fn cpu_lowering_pipeline_for(isa: VectorIsa) -> String {
    let mut libs = Libraries::default();
    let packed = PackedMatmul::for_isa(isa);
    let schedule = matmul_schedule(MatmulTiles::for_isa(isa), packed);
    let interpreter = libs.step(schedule, "", None, "canonicalize,cse,");
    let pack = pack_interpreter(&mut libs, isa);
    let steps = format!(
        "{EXPAND_MATH_F64},{FLATTEN_REDUCTIONS},{pack}{}{}{}{}{interpreter}{}",
        row_fuse_interpreter(&mut libs),
        flatten_interpreter(&mut libs),
        parallel_interpreter(&mut libs),
        transpose_interpreter(&mut libs),
        kernel_interpreter(&mut libs, isa)
    );
    match libs.preload() {
        Some(preload) => format!("{preload}{steps}{LOWERING}"),
        // Every step is an optimization: without its library the pipeline
        // is still correct, only slower.
        // (The packing step needs the matmul schedule, which lowers its
        // packs: they come and go together.)
        None => LOWERING.to_owned(),
    }
}

/// The transform libraries of a pipeline's steps, gathered into one module
/// that one `transform-preload-library` loads before them.
#[derive(Default)]
struct Libraries {
    scripts: Vec<String>,
}

impl Libraries {
    /// One transform step: `before` (Rust passes that tag what the library
    /// transforms), the interpreter run from `entry` (the default entry
    /// point when `None`) over the preloaded library, then `after`; each
    /// element ends with a comma. `script` (a whole library module) joins
    /// the preloaded library.
    fn step(&mut self, script: String, before: &str, entry: Option<&str>, after: &str) -> String {
        self.scripts.push(script);
        let interpreter = match entry {
            Some(e) => format!("transform-interpreter{{entry-point={e}}}"),
            None => "transform-interpreter".to_owned(),
        };
        format!("{before}{interpreter},{after}")
    }

    /// The preload of every step's library as one module, from a
    /// content-named file (`script_file`); `None` when the file cannot be
    /// written.
    fn preload(&self) -> Option<String> {
        let path = script_file(&merged_library(&self.scripts)).ok()?;
        Some(format!("transform-preload-library{{transform-library-paths={}}},", path.display()))
    }
}

/// The library modules `scripts` as one module: their bodies (the named
/// sequences; every library names its own) inside one
/// `module attributes {transform.with_named_sequence}`. The shared peel
/// sequence, which every library that peels loops defines, is kept once,
/// first.
fn merged_library(scripts: &[String]) -> String {
    const HEAD: &str = "module attributes {transform.with_named_sequence} {";
    let mut out = format!("{HEAD}\n");
    if scripts.iter().any(|s| s.contains(PEEL_EACH_DEFINITION)) {
        out.push_str(PEEL_EACH_DEFINITION);
    }
    for s in scripts {
        let body = s
            .trim()
            .strip_prefix(HEAD)
            .and_then(|b| b.strip_suffix('}'))
            .expect("a transform library is one module with named sequences")
            .replacen(PEEL_EACH_DEFINITION, "", 1);
        out.push_str(body.trim_matches('\n'));
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

/// The kernel schedules (`elementwise_schedule.rs`, `reduction_schedule.rs`,
/// `conv_schedule.rs`), run from their own entry point, after the matmul
/// schedule.
fn kernel_interpreter(libs: &mut Libraries, isa: VectorIsa) -> String {
    libs.step(kernel_schedule(ConvTiles::for_isa(isa)), "", Some(KERNEL_ENTRY), "canonicalize,cse,")
}

/// The transpose step (`transpose_schedule.rs`), from its own entry point,
/// after the parallel step (it tiles each chunk); without it transposes
/// are scalar loops.
fn transpose_interpreter(libs: &mut Libraries) -> String {
    libs.step(transpose_schedule(), "", Some(TRANSPOSE_ENTRY), "canonicalize,")
}

/// The packing step of large matmuls (`packed_matmul.rs`), from its own
/// entry point, before the parallel step so that B is packed once and the
/// chunks split the packed computation; without it the unpacked schedule
/// handles every matmul.
fn pack_interpreter(libs: &mut Libraries, isa: VectorIsa) -> String {
    // Repitching was measured on AVX-512 only (AVX2 packs the large
    // products anyway).
    let mark = match isa {
        VectorIsa::Avx512 => format!("{PACK_MARK},{REPITCH_B},"),
        VectorIsa::Avx2 => format!("{PACK_MARK_AVX2},"),
    };
    libs.step(pack_schedule(PackedMatmul::for_isa(isa)), &mark, Some(PACK_ENTRY), "")
}

/// The row-fusion step (`row_fuse.rs` marks, `row_fuse_schedule.rs`
/// fuses each chain into a loop over rows, chunked for threads), before the
/// parallel step so that its marker sees the one-row ops; without it each
/// op runs whole.
fn row_fuse_interpreter(libs: &mut Libraries) -> String {
    libs.step(row_fuse_schedule(), &format!("{ROW_FUSE_MARK},"), Some(ROW_FUSE_ENTRY), "canonicalize,")
}

/// The flattening step (`flatten_mark.rs` marks, `flatten_schedule.rs`
/// makes each marked element-wise op one loop over all its elements),
/// after row fusion and before the parallel step, which chunks the loop.
fn flatten_interpreter(libs: &mut Libraries) -> String {
    libs.step(flatten_schedule(), &format!("{FLATTEN_MARK},"), Some(FLATTEN_ENTRY), "canonicalize,")
}

/// The parallel step's library, run from its entry point after the marker
/// and the matrix-vector rewrite; without it everything runs on one thread.
fn parallel_interpreter(libs: &mut Libraries) -> String {
    libs.step(parallel_schedule(), &format!("{PARALLEL_MARK},{MATVEC},"), Some(PARALLEL_ENTRY), "canonicalize,")
}

/// The lowering after scheduling (see `cpu_lowering_pipeline`).
const LOWERING: &str = "one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},\
drop-equivalent-buffer-results,\
buffer-deallocation-pipeline,\
convert-bufferization-to-memref,\
tensorc-refill-copies,\
tensorc-read-through-pads,\
tensorc-fill-halo,\
tensorc-parallel-copies,\
tensorc-unpack-in-place,\
tensorc-late-accumulate,\
tensorc-drop-zero-fill,\
tensorc-k-block-ends,\
tensorc-pack-ahead,\
tensorc-prefetch-rows,\
tensorc-prefetch-stream,\
tensorc-prefetch-panels,\
tensorc-stream-stores,\
tensorc-fold-partials,\
tensorc-merge-chunks,\
tensorc-lane-per-row,\
tensorc-max-tree,\
canonicalize,\
cse,\
scf-forall-to-parallel,\
tensorc-outline-parallel,\
tensorc-fused-row-sums,\
func.func(lower-vector-multi-reduction),\
convert-vector-to-scf{full-unroll target-rank=1},\
tensorc-scalar-transfers,\
tensorc-strided-gather,\
tensorc-nd-int-math,\
tensorc-vector-trig,\
convert-linalg-to-loops,\
math-extend-to-supported-types{extra-types=f16 target-type=f32},\
arith-emulate-unsupported-floats{source-types=bf16 target-type=f32},\
tensorc-bf16-rounding,\
tensorc-bf16-selects,\
tensorc-bf16-wide-extends,\
tensorc-row-skew,\
tensorc-running-max,\
arith-expand{include-bf16=true},\
expand-strided-metadata,\
lower-affine,\
convert-math-to-funcs{convert-ctlz=false},\
convert-math-to-llvm,\
convert-math-to-libm,\
convert-scf-to-cf,\
convert-vector-to-llvm{vector-contract-lowering=outerproduct},\
finalize-memref-to-llvm{use-generic-functions=true use-aligned-alloc=true},\
convert-to-llvm,\
tensorc-noalias-args,\
tensorc-bf16-stores,\
tensorc-lane-loads,\
reconcile-unrealized-casts";

/// The steps that follow `cpu_lowering_pipeline` when the code generator's
/// target has AVX-512F (`tensorc_cpu::Pipelines::for_target` asks LLVM):
/// `tensorc-ldexp-scale` (`ldexp_scale.rs`) turns `exp`'s power-of-two
/// scaling into `vscalefps`, which other targets would make a libm call
/// per lane.
pub const AVX512_LOWERING: &str = "tensorc-ldexp-scale";

/// The full CPU pipeline as one `builtin.module(...)` string, for
/// `mlir-opt`: without tensorc's Rust passes, which only tensorc-mlir knows,
/// so nothing is marked parallel and the code is single-threaded.
pub fn full_cpu_pipeline() -> String {
    format!(
        "builtin.module({},{})",
        opt_pipeline()
            .replace(&format!("{FUSE_ELEMENTWISE},"), "")
            .replace(&format!("{NAME_CONTRACTIONS},"), "")
            .replace(&format!("{POW_BY_CONSTANT},"), "")
            .replace(&format!("{INVARIANT_REDUCTIONS},"), ""),
        cpu_lowering_pipeline()
            .replace(&format!("{PARALLEL_MARK},"), "")
            .replace(&format!("{MATVEC},"), "")
            .replace(&format!("{ROW_FUSE_MARK},"), "")
            .replace(&format!("{FLATTEN_MARK},"), "")
            .replace(&format!("{REFILL_COPIES},"), "")
            .replace(&format!("{VECTOR_TRIG},"), "")
            .replace(&format!("{OUTLINE_PARALLEL},"), "")
            .replace(&format!("{LATE_ACCUMULATE},"), "")
            .replace(&format!("{DROP_ZERO_FILL},"), "")
            .replace(&format!("{K_BLOCK_ENDS},"), "")
            .replace(&format!("{PACK_AHEAD},"), "")
            .replace(&format!("{UNPACK_IN_PLACE},"), "")
            .replace(&format!("{READ_THROUGH_PADS},"), "")
            .replace(&format!("{FILL_HALO},"), "")
            .replace(&format!("{PARALLEL_COPIES},"), "")
            .replace(&format!("{RUNNING_MAX},"), "")
            .replace(&format!("{FUSED_ROW_SUMS},"), "")
            .replace(&format!("{ROW_SKEW},"), "")
            .replace(&format!("{PACK_MARK},"), "")
            .replace(&format!("{REPITCH_B},"), "")
            .replace(&format!("{FOLD_PARTIALS},"), "")
            .replace(&format!("{MERGE_CHUNKS},"), "")
            .replace(&format!("{LANE_PER_ROW},"), "")
            .replace(&format!("{LANE_LOADS},"), "")
            .replace(&format!("{MAX_TREE},"), "")
            .replace(&format!("{SCALAR_TRANSFERS},"), "")
            .replace(&format!("{ND_INT_MATH},"), "")
            .replace(&format!("{BF16_ROUNDING},"), "")
            .replace(&format!("{BF16_SELECTS},"), "")
            .replace(&format!("{BF16_WIDE_EXTENDS},"), "")
            .replace(&format!("{BF16_STORES},"), "")
            .replace(&format!("{NOALIAS_ARGS},"), "")
            .replace(&format!("{EXPAND_MATH_F64},"), "")
            .replace(&format!("{FLATTEN_REDUCTIONS},"), "")
            .replace(&format!("{STRIDED_GATHER},"), "")
            .replace(&format!("{PREFETCH_ROWS},"), "")
            .replace(&format!("{PREFETCH_STREAM},"), "")
            .replace(&format!("{PREFETCH_PANELS},"), "")
            .replace(&format!("{STREAM_STORES},"), "")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p_find(what: &str) -> usize {
        cpu_lowering_pipeline().find(what).unwrap_or_else(|| panic!("{what} not in the pipeline"))
    }

    #[test]
    fn one_preload_holds_every_library() {
        let a = "module attributes {transform.with_named_sequence} {\n  transform.named_sequence @a() {\n    transform.yield\n  }\n}\n";
        let b = "module attributes {transform.with_named_sequence} {\n  transform.named_sequence @b() {\n    transform.yield\n  }\n}\n";
        let m = merged_library(&[a.to_owned(), b.to_owned()]);
        assert_eq!(
            m,
            "module attributes {transform.with_named_sequence} {\n  transform.named_sequence @a() {\n    transform.yield\n  }\n  transform.named_sequence @b() {\n    transform.yield\n  }\n}\n"
        );
        // Two libraries that peel: one copy of the shared peel sequence.
        let peeling = |l: &str| l.replacen("{\n", &format!("{{\n{PEEL_EACH_DEFINITION}"), 1);
        let m = merged_library(&[peeling(a), b.to_owned(), peeling(b)]);
        assert_eq!(m.matches(PEEL_EACH_DEFINITION).count(), 1, "{m}");
        assert_eq!(m.matches("transform.named_sequence @b()").count(), 2, "{m}");
        assert!(m.find(PEEL_EACH_DEFINITION) < m.find("@a()"), "{m}");
        // Every step's library is in the one file the pipeline preloads.
        for isa in [VectorIsa::Avx512, VectorIsa::Avx2] {
            let p = cpu_lowering_pipeline_for(isa);
            let path = p
                .strip_prefix("transform-preload-library{transform-library-paths=")
                .and_then(|r| r.split('}').next())
                .expect("the pipeline starts with the preload");
            let library = std::fs::read_to_string(path).unwrap();
            for entry in [PACK_ENTRY, ROW_FUSE_ENTRY, FLATTEN_ENTRY, PARALLEL_ENTRY, TRANSPOSE_ENTRY, KERNEL_ENTRY, "__transform_main"] {
                assert_eq!(library.matches(&format!("transform.named_sequence @{entry}(")).count(), 1, "{entry}");
                if entry != "__transform_main" {
                    assert!(p.contains(&format!("transform-interpreter{{entry-point={entry}}}")), "{entry}");
                }
            }
        }
    }

    #[test]
    fn pipelines_are_well_formed_element_lists() {
        for p in [opt_pipeline().to_owned(), cpu_lowering_pipeline()] {
            assert!(!p.starts_with("builtin.module"), "elements only: {p}");
            assert!(
                !p.contains(' ') || p.contains('{'),
                "spaces only inside options: {p}"
            );
            assert!(!p.ends_with(','));
            assert_eq!(p.matches('{').count(), p.matches('}').count());
        }
        assert!(full_cpu_pipeline().ends_with("reconcile-unrealized-casts)"));
        // The Rust pass runs right after forall-to-parallel, in process only.
        assert!(cpu_lowering_pipeline().contains(&format!("scf-forall-to-parallel,{OUTLINE_PARALLEL},")));
        assert!(!full_cpu_pipeline().contains(OUTLINE_PARALLEL));
        assert!(cpu_lowering_pipeline().contains(&format!("{MATVEC},transform-interpreter{{entry-point={PARALLEL_ENTRY}}}")));
        assert!(!full_cpu_pipeline().contains(PARALLEL_MARK));
        assert!(cpu_lowering_pipeline().contains(&format!("{PARALLEL_MARK},{MATVEC},")));
        assert!(!full_cpu_pipeline().contains(MATVEC));
        // The late accumulation runs on buffers, before their clean-up.
        assert!(cpu_lowering_pipeline().contains(&format!(
            "convert-bufferization-to-memref,{REFILL_COPIES},{READ_THROUGH_PADS},{FILL_HALO},{PARALLEL_COPIES},{UNPACK_IN_PLACE},{LATE_ACCUMULATE},{DROP_ZERO_FILL},{K_BLOCK_ENDS},{PACK_AHEAD},{PREFETCH_ROWS},{PREFETCH_STREAM},{PREFETCH_PANELS},{STREAM_STORES},{FOLD_PARTIALS},{MERGE_CHUNKS},{LANE_PER_ROW},{MAX_TREE},canonicalize,"
        )));
        assert!(!full_cpu_pipeline().contains(LATE_ACCUMULATE));
        assert!(!full_cpu_pipeline().contains(REFILL_COPIES));
        assert!(!full_cpu_pipeline().contains(VECTOR_TRIG));
        assert!(!full_cpu_pipeline().contains(DROP_ZERO_FILL));
        assert!(!full_cpu_pipeline().contains(K_BLOCK_ENDS));
        assert!(!full_cpu_pipeline().contains(PACK_AHEAD));
        assert!(!full_cpu_pipeline().contains(PREFETCH_ROWS));
        assert!(!full_cpu_pipeline().contains(PREFETCH_PANELS));
        assert!(!full_cpu_pipeline().contains(STREAM_STORES));
        assert!(!full_cpu_pipeline().contains(UNPACK_IN_PLACE));
        assert!(!full_cpu_pipeline().contains(READ_THROUGH_PADS));
        assert!(!full_cpu_pipeline().contains(PACK_MARK));
        // Batches of large products become matmuls before they are packed.
        assert!(cpu_lowering_pipeline().starts_with("transform-preload-library{"));
        assert_eq!(cpu_lowering_pipeline().matches("transform-preload-library").count(), 1);
        assert!(cpu_lowering_pipeline().contains(&format!("}},{EXPAND_MATH_F64},{FLATTEN_REDUCTIONS},{PACK_MARK},{REPITCH_B},transform-interpreter{{entry-point={PACK_ENTRY}}}")));
        assert!(!full_cpu_pipeline().contains(EXPAND_MATH_F64));
        assert!(!full_cpu_pipeline().contains(FLATTEN_REDUCTIONS));
        assert!(!full_cpu_pipeline().contains(REPITCH_B));
        assert!(!full_cpu_pipeline().contains(FOLD_PARTIALS));
        assert!(!full_cpu_pipeline().contains(MERGE_CHUNKS));
        assert!(!full_cpu_pipeline().contains(LANE_PER_ROW));
        assert!(!full_cpu_pipeline().contains(MAX_TREE));
        assert!(!full_cpu_pipeline().contains(SCALAR_TRANSFERS));
        assert!(!full_cpu_pipeline().contains(ND_INT_MATH));
        assert!(!full_cpu_pipeline().contains(BF16_ROUNDING));
        assert!(!full_cpu_pipeline().contains(BF16_SELECTS));
        assert!(!full_cpu_pipeline().contains(BF16_WIDE_EXTENDS));
        assert!(!full_cpu_pipeline().contains(BF16_STORES));
        assert!(cpu_lowering_pipeline().contains(&format!("convert-to-llvm,{NOALIAS_ARGS},{BF16_STORES},")));
        assert!(!full_cpu_pipeline().contains(NOALIAS_ARGS));
        assert!(!full_cpu_pipeline().contains(STRIDED_GATHER));
        assert!(!full_cpu_pipeline().contains(POW_BY_CONSTANT));
        assert!(!full_cpu_pipeline().contains(FUSE_ELEMENTWISE));
        assert!(opt_pipeline().starts_with(&format!("canonicalize,{FUSE_ELEMENTWISE},linalg-fuse-elementwise-ops,{NAME_CONTRACTIONS},canonicalize,")));
        assert!(!full_cpu_pipeline().contains(NAME_CONTRACTIONS));
        assert!(opt_pipeline().ends_with(&format!(",canonicalize,{POW_BY_CONSTANT},{INVARIANT_REDUCTIONS},eliminate-empty-tensors")));
        assert!(!full_cpu_pipeline().contains(INVARIANT_REDUCTIONS));
        // bf16 results keep their rounding: the flags go before arith-expand folds.
        assert!(cpu_lowering_pipeline().contains(&format!(
            "math-extend-to-supported-types{{extra-types=f16 target-type=f32}},arith-emulate-unsupported-floats{{source-types=bf16 target-type=f32}},{BF16_ROUNDING},{BF16_SELECTS},{BF16_WIDE_EXTENDS},{ROW_SKEW},{RUNNING_MAX},arith-expand{{include-bf16=true}},"
        )));
        // 0-d transfers are lowered after convert-vector-to-scf, which makes some.
        assert!(cpu_lowering_pipeline().contains(&format!(
            "convert-vector-to-scf{{full-unroll target-rank=1}},{SCALAR_TRANSFERS},{STRIDED_GATHER},{ND_INT_MATH},{VECTOR_TRIG},"
        )));
        // Row fusion runs before the parallel step, in process only.
        assert!(cpu_lowering_pipeline().contains(&format!("{ROW_FUSE_MARK},transform-interpreter{{entry-point={ROW_FUSE_ENTRY}}}")));
        assert!(
            cpu_lowering_pipeline().find(ROW_FUSE_MARK) < cpu_lowering_pipeline().find(PARALLEL_MARK)
        );
        assert!(!full_cpu_pipeline().contains(ROW_FUSE_MARK));
        // Flattening runs after row fusion, before the parallel step.
        let (rf, fl) = (p_find(ROW_FUSE_ENTRY), p_find(FLATTEN_MARK));
        assert!(rf < fl && fl < p_find(FLATTEN_ENTRY) && p_find(FLATTEN_ENTRY) < p_find(PARALLEL_MARK));
        assert!(!full_cpu_pipeline().contains(FLATTEN_MARK));
        // The transpose step runs after the parallel step, before the matmul schedule.
        let p = cpu_lowering_pipeline();
        let tr = p.find(TRANSPOSE_ENTRY).unwrap();
        assert!(p.find(PARALLEL_ENTRY).unwrap() < tr, "{p}");
        assert!(tr < p.find(",transform-interpreter,").unwrap(), "{p}");
    }
}

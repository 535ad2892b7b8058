//! The transform-dialect schedule that tiles and vectorizes matmul-class ops
//! (`linalg.matmul`, `linalg.batch_matmul`) on the CPU.
//!
//! Generated from Rust (the tile sizes are parameters, not copied text) and
//! handed to MLIR's `transform-interpreter` through a script file, so the
//! whole CPU path stays a pipeline *string* that both `mlir-opt` and the
//! in-process pass manager run (see `pipeline.rs`).
//!
//! Strategy (cpu-pipeline.md §1.3, schedule (b1)): an `m_tile`×`n_tile`
//! register tile, K by 1, vectorize into `vector.contract`s, then hoist the
//! accumulator reads/writes out of the K loop so the tile stays in registers.
//! Sizes that are not tile multiples are handled by *peeling*: each tiled M
//! and N loop is split into full tiles plus one static remainder tile, so
//! every tile has a static shape and vectorizes (nothing is masked and no
//! element is computed twice). A loop that needs no peeling (the tile divides
//! the size, or the size is smaller than one tile) makes `loop.peel` fail;
//! each peel runs in its own `failures(suppress)` sequence, so that failure
//! only means "nothing to peel". Only ops whose loops all have at least one
//! iteration are scheduled (see `matcher`); the others stay scalar loops.
//!
//! A tile wider than one 16-lane register but narrower than the 32-wide
//! tile (an N remainder of 17..31, or N itself there) is split into a
//! 16-wide tile and the rest (`split_n`): LLVM legalizes a
//! `vector<17..31xf32>` element by element, with the accumulators spilled
//! to the stack, and that one tile made a 32×(100×70·70×90) batch matmul
//! run at 0.15× NumPy (passes.md, "Matmul remainders"). Widths of at most
//! 16 lanes and multiples of 16 lower to whole registers. The split is made
//! inside the K loop, so both parts share the broadcasts of A and their
//! accumulators are hoisted together: an 8×26 tile becomes 8×16 + 8×10 in
//! 16 registers, as fast per FMA as a full tile.
//!
//! The register tile depends on the op (`classes`): ops with N ≤ 16 get
//! 16×16 tiles (one register per row, so twice the rows keep as many
//! accumulators), and ops with 64-bit results tiles of the same registers,
//! 8×16 (16×8 when N ≤ 8), with the split after 8 columns: the 8×32 tile
//! of f64 needs 32 accumulator registers and spilled (passes.md, "Matmul
//! remainders").
//!
//! Unpacked products whose B exceeds L2 and whose K is short enough for
//! an 8-row slab of A to stay in L1 are first cut into N blocks
//! (`n_block`, tagged by `tensorc-pack-mark`): the register tiles then run
//! over every row tile of a thread's rows within one block of B, which
//! stays in L2, instead of streaming all of B from L3 once per 8-row tile
//! (`add_n_blocks`).
//!
//! Large matmuls are not tiled here: the packing step of `packed_matmul.rs`
//! has already turned them into packs, a packed contraction and an unpack,
//! cut into N and K cache blocks, and `add_packed` (called from this
//! schedule's entry point) tiles those into 8×32 register tiles and tags
//! the tiles `tensorc.vec`.
//!
//! Only the matmul tiles and the packed schedule's tiles are vectorized
//! (`structured.vectorize` on the re-matched, now static-shaped tiles). `vectorize_children_and_apply_patterns`
//! would vectorize every static linalg op of the function *whole*: a
//! 16M-element element-wise generic became one 16M-lane vector and took
//! 5.9 s to compile. Element-wise ops, fills and reductions stay loops until
//! they get a tiled schedule of their own. `reduction_to_contract` runs on
//! its own, right after vectorizing and before any canonicalization: the
//! canonicalizer folds the size-1 K reduction into a plain `mulf`+`addf`
//! (no contraction, hence no FMA; cpu-pipeline.md §1.6). With the transfer
//! permutation and sink patterns beside it (the set that
//! `vectorize_children_and_apply_patterns` uses) the contraction comes out
//! as 8×1·1×32, reading A and B without broadcasts in the transfer maps.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::packed_matmul::{PackedMatmul, VEC, add_packed, foreach_tagged_op};

/// Register tile sizes for matmul-class ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulTiles {
    /// Rows of C per tile (one `vbroadcastss` of A each per K step).
    pub m: u32,
    /// Columns of C per tile (a multiple of `lanes`).
    pub n: u32,
    /// f32 lanes of one vector register of the target (16 for AVX-512, 8
    /// for AVX2): the widest vector LLVM lowers well when its length is
    /// not a multiple of it (see `split_n`), and the unit the classes'
    /// tiles scale by.
    pub lanes: u32,
}

impl Default for MatmulTiles {
    /// 8×32: 16 zmm accumulators, the tile that matched OpenBLAS at 1024³
    /// (cpu-pipeline.md §0, row (b1)).
    fn default() -> Self {
        MatmulTiles { m: 8, n: 32, lanes: 16 }
    }
}

impl MatmulTiles {
    /// The register tile for `isa`: AVX-512's default, or for AVX2 (16
    /// ymm registers) 6×16, 12 accumulators with room for two B vectors
    /// and the broadcast of A (the 8×32 tile needs 32 ymm accumulators
    /// there and spilled: W2 at 0.3× NumPy).
    pub fn for_isa(isa: crate::pipeline::VectorIsa) -> Self {
        match isa {
            crate::pipeline::VectorIsa::Avx512 => Self::default(),
            crate::pipeline::VectorIsa::Avx2 => MatmulTiles { m: 6, n: 16, lanes: 8 },
        }
    }
}

/// Appends the schedule for every op named `op` tagged `tag` whose
/// iteration space is `batch_dims` parallel batch dimensions followed by
/// (M, N, K). With `vec_tag`, the K tiles are also tagged with it before the
/// peeling (which copies the tag into the remainder loops).
fn tile_op(
    out: &mut String,
    op: &str,
    batch_dims: usize,
    tiles: MatmulTiles,
    id: &str,
    tag: &str,
    vec_tag: Option<&str>,
) {
    let rank = batch_dims + 3;
    // Batch dimensions are tiled by 1 so each tile is one 2-D matmul.
    let mut outer: Vec<String> = vec!["1".into(); batch_dims];
    outer.push(tiles.m.to_string());
    outer.push(tiles.n.to_string());
    outer.push("0".into());
    let mut k: Vec<&str> = vec!["0"; rank - 1];
    k.push("1");
    let loops = batch_dims + 2;
    let loop_types = vec!["!transform.any_op"; loops + 1].join(", ");
    let _ = writeln!(
        out,
        "    %{id} = transform.structured.match ops{{[\"{op}\"]}} attributes{{{tag}}} in %root : (!transform.any_op) -> !transform.any_op"
    );
    let _ = writeln!(
        out,
        "    %{id}_t, %{id}_l:{loops} = transform.structured.tile_using_for %{id} tile_sizes [{}] : (!transform.any_op) -> ({loop_types})",
        outer.join(", ")
    );
    let _ = writeln!(
        out,
        "    %{id}_k, %{id}_kl = transform.structured.tile_using_for %{id}_t tile_sizes [{}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)",
        k.join(", ")
    );
    if let Some(v) = vec_tag {
        let _ = writeln!(
            out,
            "    transform.annotate %{id}_k \"{v}\" : !transform.any_op"
        );
    }
    // Peel N (innermost tiled loop) before M: peeling consumes only the
    // loop it is given, so the handle to the enclosing M loop stays valid.
    for which in [batch_dims + 1, batch_dims] {
        peel_each(out, &format!("%{id}_l#{which}"), "    ");
    }
}

/// The named sequence `peel_each` calls: the peeling of every `scf.for` in
/// its operand into full tiles plus one static remainder. A loop that needs
/// no peeling (the step divides the trip count, or there is one iteration)
/// makes `loop.peel` fail; each peel runs in its own `failures(suppress)`
/// sequence, so that failure only means "nothing to peel". Every library
/// that peels defines it (`PEEL_EACH_DEFINITION`, once per module;
/// `pipeline.rs` keeps one copy when it merges the libraries), privately, so
/// libraries preloaded one by one (the tests' fixtures) do not collide:
/// the transform dialect renames colliding private symbols. One shared
/// sequence instead of the same eight lines at each of the ~390 places
/// that peel: the preloaded library is parsed and verified on every
/// compile (`pipeline::cpu_lowering_pipeline_for`), so its size is compile
/// time. The operand is only read: the peels consume the loops' own
/// handles, as they did written inline (a handle to loops enclosing them
/// stays valid).
pub(crate) const PEEL_EACH_DEFINITION: &str = "  transform.named_sequence private @tensorc_peel_each(%loops: !transform.any_op {transform.readonly}) {
    transform.foreach %loops : !transform.any_op {
      ^bb0(%l: !transform.any_op):
        transform.sequence %l : !transform.any_op failures(suppress) {
        ^bb1(%l2: !transform.any_op):
          %for = transform.cast %l2 : !transform.any_op to !transform.op<\"scf.for\">
          %main, %rest = transform.loop.peel %for : (!transform.op<\"scf.for\">) -> (!transform.any_op, !transform.any_op)
        }
    }
    transform.yield
  }
";

/// The loop peels a library text asks for: the `loop.peel`s written in
/// it plus one per call of the shared peel sequence (for tests).
#[cfg(test)]
pub(crate) fn peel_count(library: &str) -> usize {
    library.matches("transform.loop.peel").count() + library.matches("include @tensorc_peel_each ").count()
        - library.matches("@tensorc_peel_each(%loops").count()
}

/// Appends, at indentation `indent`, the peeling of every `scf.for` in
/// `handle` (a call of `PEEL_EACH_DEFINITION`'s sequence).
pub(crate) fn peel_each(out: &mut String, handle: &str, indent: &str) {
    let _ = writeln!(
        out,
        "{indent}transform.include @tensorc_peel_each failures(propagate) ({handle}) : (!transform.any_op) -> ()"
    );
}

/// The N block widths `n_block` chooses from (multiples of 64 columns):
/// one schedule sequence each.
pub const N_BLOCKS: [u32; 8] = [64, 128, 192, 256, 320, 384, 448, 512];

/// The narrowest block holds this many bytes of each row of B (128 f32,
/// 64 f64 columns): narrower blocks were not measured.
const N_BLOCK_MIN_ROW_BYTES: u64 = 512;

/// Bytes of B one N block may hold: half of this machine's 1 MiB L2, the
/// rest for the rows of A and C passing through.
const N_BLOCK_BYTES: u64 = 512 * 1024;

/// The longest row of A (K elements, in bytes) whose products are cut into
/// N blocks: each row tile of a block rereads its 8 rows of A (45 KiB at
/// this bound, about the 48 KiB L1), so the blocks stop paying where that
/// slab outgrows L1. f32: K ≤ 1440; f64: K ≤ 720.
/// Measured (alternated, same minutes, one and two threads): K = 300 11 %
/// faster with blocks, K = 1000–1025 2–8 %, 1200³ 16 % (its B rows, 4800
/// bytes apart, stream badly from L3), 777×1333·1333×555 3–4 %, K = 1400
/// 0.5–1 %, K = 1500 0.5–3 % slower.
const N_BLOCK_MAX_ROW_BYTES: u64 = 1440 * 4;

/// The N block width of an unpacked `M×K·K×N` product of elements of
/// `bytes` (4 or 8), or `None` when it is not cut into N blocks: only when
/// B (`K·N` elements) exceeds 1 MiB (a B that fits in L2 stays there
/// between row tiles anyway), a row of A is at most
/// `N_BLOCK_MAX_ROW_BYTES`, and M has at least two 8-row tiles to share a
/// block (a product of one row is a matrix-vector product, which
/// `tensorc-matvec` rewrites as a reduction). The width is the widest of
/// `N_BLOCKS` whose `K × width` block of B fits in `N_BLOCK_BYTES`, and at
/// least `N_BLOCK_MIN_ROW_BYTES` of each row; N is then wider than one
/// block (B is over twice a block of 512 KiB, or a row of A over 4 KiB and
/// N over 227 f32 or 113 f64 columns).
///
/// Why: the unpacked schedule runs its 8×32 register tiles with the N
/// tiles innermost, so each 8-row tile of A reads all of B; a B larger
/// than L2 then streams from L3 once per 8 rows (2000×300·300×2000: 250
/// passes over 2.4 MB). Within a block, B is read from L3 once per
/// thread-chunk of rows and then from L2. 2000×300·300×2000, one thread,
/// alternated: 10.2 → 9.2 ms with 384-column blocks (200 columns: 10.0,
/// 512: 9.4, 640: 9.4).
pub fn n_block(m: u64, n: u64, k: u64, bytes: u64) -> Option<u32> {
    if !blocks_pay(m, n, k, bytes) || bytes * k > N_BLOCK_MAX_ROW_BYTES {
        return None;
    }
    let narrowest = (N_BLOCK_MIN_ROW_BYTES / bytes) as u32;
    let fits = N_BLOCKS.iter().rev().find(|&&w| w >= narrowest && bytes * k * u64::from(w) <= N_BLOCK_BYTES);
    Some(fits.copied().unwrap_or(narrowest))
}

/// The column count of the copy of B that an unpacked `M×K·K×N` product of
/// elements of `bytes` (4 or 8) reads instead of B (`tensorc-repitch-b`),
/// or `None` when it reads B itself: when the product is cut into N blocks
/// (`n_block`), M is at least `REPITCH_MIN_ROWS` and B's rows are within a
/// cache line of a multiple of 2 KiB apart, the copy's rows are the fewest
/// whole lines at least N long whose count is odd.
///
/// Why: the 8×32 register tiles read two lines of B per step of k, one row
/// after the other; L1 has 64 sets of 64-byte lines, and rows within a line
/// of a multiple of 2 KiB apart start in the same one or two sets for
/// several rows running, evicting each other, the prefetcher's lines and
/// the tile's rows of A. Rows an odd number of lines apart walk through all
/// 64 sets before one repeats. 1023×1025·1025×N, one thread, GFLOPS: N =
/// 1027 (12 bytes past 4 KiB) 236–244, 1028 247–253, 1031 249–251, 1036
/// 252–256, 1040 (a line past) 259–261. Measured with the copy
/// (`tensorc bench`, alternated; passes.md, "Repitched B").
pub fn repitched_columns(m: u64, n: u64, k: u64, bytes: u64) -> Option<u64> {
    if !matches!(bytes, 4 | 8) || m < REPITCH_MIN_ROWS || n_block(m, n, k, bytes).is_none() {
        return None;
    }
    const LINE: u64 = 64;
    const PERIOD: u64 = 2048;
    let pitch = n * bytes;
    let off = pitch % PERIOD;
    if pitch + LINE <= PERIOD || off.min(PERIOD - off) >= LINE {
        return None;
    }
    let per_line = LINE / bytes;
    let lines = n.div_ceil(per_line);
    Some((lines | 1) * per_line)
}

/// Products with fewer rows keep B as it is: the copy (a pass over B) did
/// not pay for itself over 64 or 200 rows (1025×1027 B, one thread:
/// 0.56–0.57 → 0.60–0.61 ms; 1.76–1.78 → 1.78–1.80 ms).
pub const REPITCH_MIN_ROWS: u64 = 256;

/// The rule `n_block` and `k_block` share: B (`K·N` elements of `bytes`)
/// over 1 MiB, and M of two 8-row tiles or more.
fn blocks_pay(m: u64, n: u64, k: u64, bytes: u64) -> bool {
    bytes * n * k > 1 << 20 && m >= 16
}

/// Rows of B (the K extent) of one K block of `k_block`.
pub const K_BLOCK_ROWS: u32 = 128;

/// The K block and N block width of an unpacked `M×K·K×N` product of
/// 64-bit elements (`bytes` 8) whose rows of A are too long for `n_block`
/// (over `N_BLOCK_MAX_ROW_BYTES`, K > 720), or `None`: the same B and M
/// rules as `n_block`; the width is the widest
/// of `N_BLOCKS` whose `K_BLOCK_ROWS × width` block of B fits in
/// `N_BLOCK_BYTES` (512). Each N block is then cut into K blocks of
/// `K_BLOCK_ROWS` rows, so the 8-row tiles of a thread chunk reuse one
/// block of B from L2, at the price of one pass over C's block per K
/// block. 64-bit products are never packed, and without it every 8-row
/// tile streamed all of B from L3 or memory: f64 2000³ ran at 0.29×
/// NumPy (519 ms), 1500³ at 0.58×. 32-bit products this long are packed
/// or measured at parity unblocked.
pub fn k_block(m: u64, n: u64, k: u64, bytes: u64) -> Option<(u32, u32)> {
    if bytes != 8 || !blocks_pay(m, n, k, bytes) || bytes * k <= N_BLOCK_MAX_ROW_BYTES {
        return None;
    }
    let rows = u64::from(K_BLOCK_ROWS);
    let width = N_BLOCKS.iter().rev().find(|&&w| bytes * rows * u64::from(w) <= N_BLOCK_BYTES)?;
    Some((*width, K_BLOCK_ROWS))
}

/// The attribute `tensorc-pack-mark` tags a product cut into K blocks of
/// `rows` rows (inside its N blocks) with.
pub fn k_block_tag(rows: u32) -> String {
    format!("tensorc.kblock{rows}")
}

/// The attribute `tensorc-pack-mark` tags a product cut into N blocks of
/// `width` columns with.
pub fn n_block_tag(width: u32) -> String {
    format!("tensorc.nblock{width}")
}

/// Appends the cutting of every tagged product into N blocks: a loop over
/// the blocks (`tile_using_for` by the width in N only), peeled so that
/// the full blocks and the last one have static widths, and the op that
/// holds the block loops (the thread chunk's `scf.forall`, or the
/// function) canonicalized so the peeled blocks' `affine.min` widths fold
/// into the tiles' shapes before the register tiling (which then tiles
/// each block's op: the tiles keep the schedule's tags). A width that
/// divides N leaves nothing to peel: the peel fails and the block's
/// `try_block` stops there (the blocks are tiled already, with static
/// widths).
fn add_n_blocks(out: &mut String) {
    for width in N_BLOCKS {
        let body = block_loop("b", &format!("0, {width}, 0"));
        foreach_tagged_op(out, "linalg.matmul", &format!("nb{width}"), &n_block_tag(width), &body);
    }
}

/// Appends the cutting of every product tagged `k_block_tag` (after its N
/// blocks, so each block's op, full or peeled, is cut) into K blocks: a
/// loop over the blocks carrying C (`tile_using_for` in K only), peeled so
/// the blocks have static sizes, the op holding it canonicalized, as for
/// the N blocks.
fn add_k_blocks(out: &mut String) {
    let rows = K_BLOCK_ROWS;
    let body = block_loop("k", &format!("0, 0, {rows}"));
    foreach_tagged_op(out, "linalg.matmul", &format!("kb{rows}"), &k_block_tag(rows), &body);
}

/// The body that cuts the op `%h` into a loop of blocks (`tile_using_for`
/// by `sizes`), peels the loop and canonicalizes the op holding it (so the
/// peeled sizes fold into the ops' shapes); its handles start with `p`.
fn block_loop(p: &str, sizes: &str) -> String {
    format!(
        "%{p}t, %{p}l = transform.structured.tile_using_for %h tile_sizes [{sizes}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
         %{p}f = transform.get_parent_op %{p}l : (!transform.any_op) -> !transform.any_op\n\
         %{p}for = transform.cast %{p}l : !transform.any_op to !transform.op<\"scf.for\">\n\
         %{p}main, %{p}rest = transform.loop.peel %{p}for : (!transform.op<\"scf.for\">) -> (!transform.any_op, !transform.any_op)\n\
         transform.apply_patterns to %{p}f {{\n\
         \x20 transform.apply_patterns.canonicalization\n\
         }} : !transform.any_op"
    )
}

/// The attribute that marks the ops this schedule may transform. Tiling
/// copies it onto the tiles, so the tiles are found again for vectorizing.
const TAG: &str = "tensorc.schedule";

/// A class of matmul-class ops and the register tile it gets. Every class
/// holds as many accumulator registers as the default tile (16 for 8×32).
#[derive(Clone, Copy, Debug)]
struct Class {
    /// Prefix of its matchers' and handles' names ("" for the default).
    id: &'static str,
    /// The attribute its ops are tagged with before tiling.
    tag: &'static str,
    /// The element width of C the class requires, if any.
    bits: Option<u32>,
    /// Elements of C per AVX-512 register.
    lanes: u32,
    /// Only ops with N ≤ `lanes`: one register per row of C, so an 8-row
    /// tile keeps only 8 accumulators, which with the FMA latency leaves
    /// the FMA units idle half the time on short K loops; they get twice
    /// the rows (64×(100×13·13×13): 10 % faster).
    narrow: bool,
}

/// The classes in matching order (the first that matches an op wins), the
/// default last, for registers of `lanes` f32 lanes. 64-bit results take
/// twice the registers per element: the default 8×32 tile of f64 needs 32
/// accumulator registers and spilled (16×(128×64·64×128) f64: 0.43 ms,
/// 0.27 ms with 8×16 tiles).
fn classes(lanes: u32) -> [Class; 4] {
    [
        Class {
            id: "wn",
            tag: "tensorc.schedule_w64n",
            bits: Some(64),
            lanes: lanes / 2,
            narrow: true,
        },
        Class {
            id: "w",
            tag: "tensorc.schedule_w64",
            bits: Some(64),
            lanes: lanes / 2,
            narrow: false,
        },
        Class {
            id: "n",
            tag: "tensorc.schedule_narrow",
            bits: None,
            lanes,
            narrow: true,
        },
        Class {
            id: "",
            tag: TAG,
            bits: None,
            lanes,
            narrow: false,
        },
    ]
}

impl Class {
    /// The register tile of this class, scaled from the default `tiles`.
    fn tiles(self, tiles: MatmulTiles) -> MatmulTiles {
        if self.narrow {
            MatmulTiles {
                m: 2 * tiles.m,
                n: self.lanes,
                ..tiles
            }
        } else {
            MatmulTiles {
                m: tiles.m,
                n: tiles.n * self.lanes / tiles.lanes,
                ..tiles
            }
        }
    }

    /// How many times `split_n` splits this class's tiles: a tile `n` wide
    /// has at most ⌈n / lanes⌉ − 1 parts to cut off (none when narrow).
    fn split_passes(self, tiles: MatmulTiles) -> u32 {
        self.tiles(tiles).n.saturating_sub(1) / self.lanes
    }

    /// The name of the action that tags this class's ops.
    fn tag_action(self) -> String {
        format!(
            "tensorc_tag_{}",
            if self.id.is_empty() { "all" } else { self.id }
        )
    }
}

/// Appends a matcher named `name` for ops `op` (with `rank` loops) whose every
/// loop has at least one iteration. Zero-size loops are left to the scalar
/// lowering: MLIR 22's `tile_using_for` segfaults on a matmul with K = 0
/// (`tests/cases/ops/dot.nxir`, `empty_contraction`), and a vector type cannot
/// have a zero-size dimension anyway.
///
/// With `n_range = Some((d, lo, hi))` loop `d` must also have more than
/// `lo` and fewer than `hi` iterations (the tiles `split_n` cuts), and with
/// `bits` the elements of the result must be that wide.
fn matcher(
    out: &mut String,
    op: &str,
    rank: usize,
    name: &str,
    n_range: Option<(usize, u32, u32)>,
    bits: Option<u32>,
) {
    let _ = writeln!(
        out,
        "  transform.named_sequence @{name}(%op: !transform.any_op {{transform.readonly}}) -> !transform.any_op {{\n\
         \x20   transform.match.operation_name %op [\"{op}\"] : !transform.any_op\n\
         \x20   %zero = transform.param.constant 0 : i64 -> !transform.param<i64>\n\
         \x20   transform.match.structured %op : !transform.any_op {{\n\
         \x20   ^bb0(%s: !transform.any_op):"
    );
    for d in 0..rank {
        let _ = writeln!(
            out,
            "      %d{d} = transform.match.structured.dim %s[{d}] : (!transform.any_op) -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi gt %d{d}, %zero : !transform.param<i64>"
        );
    }
    if let Some((d, lo, hi)) = n_range {
        let _ = writeln!(
            out,
            "      %lo = transform.param.constant {lo} : i64 -> !transform.param<i64>\n\
             \x20     %hi = transform.param.constant {hi} : i64 -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi gt %d{d}, %lo : !transform.param<i64>\n\
             \x20     transform.match.param.cmpi lt %d{d}, %hi : !transform.param<i64>"
        );
    }
    if let Some(bits) = bits {
        out.push_str(&init_width_is(bits));
    }
    out.push_str(
        "      transform.match.structured.yield
    }
    transform.yield %op : !transform.any_op
  }
",
    );
}

/// The lines of a `transform.match.structured` block (its operand `%s`)
/// that admit an op only when its first init's elements are `bits` wide.
pub(crate) fn init_width_is(bits: u32) -> String {
    format!(
        "      %c = transform.match.structured.init %s[0] : (!transform.any_op) -> !transform.any_value\n\
         \x20     %cbits = transform.match.structured.elemental_bitwidth %c : (!transform.any_value) -> !transform.param<i64>\n\
         \x20     %bits = transform.param.constant {bits} : i64 -> !transform.param<i64>\n\
         \x20     transform.match.param.cmpi eq %cbits, %bits : !transform.param<i64>\n"
    )
}

/// The whole schedule: tile and peel every matmul and batch matmul, tile
/// what the packing step made of the large matmuls (`packed_matmul.rs`),
/// then fold the now-static tile sizes, vectorize, and hoist accumulators.
pub fn matmul_schedule(tiles: MatmulTiles, packed: PackedMatmul) -> String {
    let mut s = String::new();
    s.push_str("module attributes {transform.with_named_sequence} {\n");
    s.push_str(PEEL_EACH_DEFINITION);
    // One matcher per class and op, in `classes` order: `foreach_match`
    // applies the first that succeeds.
    let mut arms = Vec::new();
    for class in classes(tiles.lanes) {
        for (op, batch_dims, id) in MATMUL_OPS {
            let name = format!("tensorc_match_{}{id}", class.id);
            let n_range = class.narrow.then_some((batch_dims + 1, 0, class.lanes + 1));
            matcher(&mut s, op, batch_dims + 3, &name, n_range, class.bits);
            arms.push(format!("@{name} -> @{}", class.tag_action()));
        }
        let _ = writeln!(
            s,
            "  transform.named_sequence @{}(%op: !transform.any_op {{transform.readonly}}) {{\n\
             \x20   transform.annotate %op \"{}\" : !transform.any_op\n\
             \x20   transform.yield\n\
             \x20 }}",
            class.tag_action(),
            class.tag
        );
        if class.split_passes(tiles) > 0 {
            for (op, batch_dims, id) in MATMUL_OPS {
                split_sequences(&mut s, op, batch_dims, class, tiles, id);
            }
        }
    }
    arms.extend(crate::packed_matmul::width_arms(&mut s));
    // `foreach_match` consumes the root handle and returns the updated one,
    // so the rest of the schedule works on `%root`, its result.
    let _ = writeln!(
        s,
        "  transform.named_sequence @__transform_main(%arg0: !transform.any_op) {{\n\
         \x20   %root = transform.foreach_match in %arg0\n        {}\n        : (!transform.any_op) -> !transform.any_op",
        arms.join(",\n        ")
    );
    add_n_blocks(&mut s);
    add_k_blocks(&mut s);
    // The default class first: the other classes' tiles get its `TAG` (for
    // the vectorizer), which its match must not see yet.
    for class in classes(tiles.lanes).iter().rev() {
        let vec_tag = (class.tag != TAG).then_some(TAG);
        for (op, batch_dims, id) in MATMUL_OPS {
            let handle = format!("{}{id}", class.id);
            tile_op(
                &mut s,
                op,
                batch_dims,
                class.tiles(tiles),
                &handle,
                class.tag,
                vec_tag,
            );
        }
    }
    add_packed(&mut s, packed);
    // Canonicalize *before* vectorizing: peeling leaves `affine.min` tile
    // sizes that only fold to constants under canonicalization, and the
    // vectorizer skips any op whose shape is still dynamic at that point.
    s.push_str(
        "    %f = transform.structured.match ops{[\"func.func\"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %f {
      transform.apply_patterns.canonicalization
    } : !transform.any_op\n",
    );
    // The tile sizes are static now, which the split matchers compare.
    let root = split_n(&mut s, tiles);
    let _ = write!(
        s,
        "    %tiles = transform.structured.match ops{{[\"linalg.matmul\", \"linalg.batch_matmul\"]}} attributes{{{TAG}}} in {root} : (!transform.any_op) -> !transform.any_op
    transform.structured.vectorize %tiles : !transform.any_op
    %ptiles = transform.structured.match attributes{{{VEC}}} in {root} : (!transform.any_op) -> !transform.any_op
    transform.structured.vectorize %ptiles : !transform.any_op
    %fc = transform.structured.match ops{{[\"func.func\"]}} in {root} : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %fc {{
      transform.apply_patterns.vector.reduction_to_contract
      transform.apply_patterns.vector.transfer_permutation_patterns
      transform.apply_patterns.vector.sink_ops
    }} : !transform.any_op
    %fv = transform.structured.match ops{{[\"func.func\"]}} in {root} : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %fv {{
      transform.apply_patterns.canonicalization
      transform.apply_patterns.tensor.fold_tensor_subset_ops_into_vector_transfers
    }} : !transform.any_op
    transform.apply_cse to %fv : !transform.any_op
    %loops = transform.structured.match ops{{[\"scf.for\"]}} in {root} : (!transform.any_op) -> !transform.any_op
    transform.loop.hoist_loop_invariant_subsets %loops : !transform.any_op
    transform.yield
  }}
}}
",
    );
    s
}

/// The matmul-class ops this schedule tiles: name, batch dimensions, and
/// the id their handles and sequences are named by.
const MATMUL_OPS: [(&str, usize, &str); 2] = [
    ("linalg.matmul", 0, "mm"),
    ("linalg.batch_matmul", 1, "bmm"),
];

/// Appends the module-level sequences of `split_n` for `op` in `class`: a
/// matcher of its non-empty tiles whose N is between one register and the
/// class's tile width (exclusive), and an action that splits such a tile
/// after one register's columns.
fn split_sequences(
    out: &mut String,
    op: &str,
    batch_dims: usize,
    class: Class,
    tiles: MatmulTiles,
    id: &str,
) {
    let n_dim = batch_dims + 1;
    let lanes = class.lanes;
    let cid = class.id;
    matcher(
        out,
        op,
        batch_dims + 3,
        &format!("tensorc_mid_n_{cid}{id}"),
        Some((n_dim, lanes, class.tiles(tiles).n)),
        class.bits,
    );
    let _ = writeln!(
        out,
        "  transform.named_sequence @tensorc_split_n_{cid}{id}(%op: !transform.any_op {{transform.consumed}}) {{\n\
         \x20   %parts = transform.structured.split %op after {lanes} {{dimension = {n_dim}}} : !transform.any_op\n\
         \x20   transform.yield\n\
         \x20 }}"
    );
}

/// Appends the splitting of every matmul-class tile whose N is strictly
/// between one register and its class's tile width into a one-register
/// part and the rest (the module comment says why), once per further
/// register the tile width allows, so every part ends a whole number of
/// registers wide or narrower than one. Runs after the tiles' sizes became
/// static and before vectorizing; the parts keep the tiles' tag (splitting
/// clones the op). The classes with a bit width come first in `classes`,
/// so a tile is split at its own class's register width. Returns the
/// handle the rest of the schedule uses: `foreach_match` consumes its root
/// and returns the updated one.
fn split_n(out: &mut String, tiles: MatmulTiles) -> String {
    let mut root = "%root".to_string();
    let classes = classes(tiles.lanes);
    let passes = classes
        .iter()
        .map(|c| c.split_passes(tiles))
        .max()
        .unwrap_or(0);
    for pass in 1..=passes {
        let next = format!("%root_split{pass}");
        let mut arms = Vec::new();
        for class in classes.iter().filter(|c| c.split_passes(tiles) >= pass) {
            for (_, _, id) in MATMUL_OPS {
                let cid = class.id;
                arms.push(format!(
                    "@tensorc_mid_n_{cid}{id} -> @tensorc_split_n_{cid}{id}"
                ));
            }
        }
        let _ = writeln!(
            out,
            "    {next} = transform.foreach_match in {root}\n        {}\n        : (!transform.any_op) -> !transform.any_op",
            arms.join(",\n        ")
        );
        root = next;
    }
    root
}

/// Writes `script` to a file named after its content in the system's
/// temporary directory and returns the path. The name depends only on the
/// content, so concurrent compilations agree on it; the file is written to a
/// unique name first and renamed into place, so no reader sees it half
/// written.
pub fn script_file(script: &str) -> std::io::Result<PathBuf> {
    // FNV-1a: stable across runs and Rust versions (unlike `DefaultHasher`).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in script.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let dir = std::env::temp_dir();
    let path = dir.join(format!("tensorc-schedule-{h:016x}.mlir"));
    if std::fs::read_to_string(&path).is_ok_and(|s| s == script) {
        return Ok(path);
    }
    let tmp = dir.join(format!(
        "tensorc-schedule-{h:016x}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, script)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_blocks_hold_half_of_l2_of_b() {
        // 2000×300·300×2000: 436 columns of 300 rows fit in 512 KiB.
        assert_eq!(n_block(64, 2000, 300, 4), Some(384));
        assert_eq!(n_block(64, 1100, 600, 4), Some(192));
        assert_eq!(n_block(64, 1000, 1000, 4), Some(128));
        // Past 1024 rows even 128 columns exceed 512 KiB: the narrowest.
        assert_eq!(n_block(64, 1027, 1025, 4), Some(128));
        assert_eq!(n_block(64, 4000, 256, 4), Some(512));
        // K too long for A's 8-row slab in L1 (1500³ was slower blocked).
        assert_eq!(n_block(64, 1500, 1500, 4), None);
        assert_eq!(n_block(64, 4096, 1441, 4), None);
        assert_eq!(n_block(64, 1200, 1200, 4), Some(128));
        // B in L2 (1 MiB and less).
        assert_eq!(n_block(64, 4096, 64, 4), None);
        assert_eq!(n_block(64, 1024, 256, 4), None);
        assert_eq!(n_block(64, 1025, 256, 4), Some(512));
        // Fewer than two row tiles share a block: not cut.
        assert_eq!(n_block(15, 2000, 300, 4), None);
        assert_eq!(n_block(1, 1000, 512, 4), None);
        // f64: the same bytes per block and per row of A, so half the
        // columns and half the K; at least 64 columns.
        assert_eq!(n_block(64, 2000, 300, 8), Some(192));
        assert_eq!(n_block(64, 1000, 700, 8), Some(64));
        assert_eq!(n_block(64, 1000, 720, 8), Some(64));
        assert_eq!(n_block(64, 1000, 721, 8), None);
        assert_eq!(n_block(64, 1024, 1024, 8), None);
        // Whenever a product is cut, it has at least two blocks.
        for bytes in [4, 8] {
            for k in 1..=1500 {
                for n in (16..6000).step_by(7) {
                    if let Some(w) = n_block(16, n, k, bytes) {
                        assert!(n > u64::from(w), "{n}×{k}×{bytes}: {w}");
                        assert!(N_BLOCKS.contains(&w));
                    }
                }
            }
        }
    }

    #[test]
    fn repitches_b_rows_within_a_line_of_a_multiple_of_2_kib() {
        // f32: 1027 columns are 4108 bytes, 12 past 4 KiB → 1040 columns,
        // 65 lines; 1023 (4 short) → 1040; exactly 4 KiB (64 lines) → 65.
        assert_eq!(repitched_columns(1023, 1027, 1025, 4), Some(1040));
        assert_eq!(repitched_columns(1000, 1023, 1000, 4), Some(1040));
        assert_eq!(repitched_columns(1000, 1024, 1000, 4), Some(1040));
        // 2052 bytes (4 past 2 KiB): 33 lines, odd already; 2000 bytes
        // (48 short of 2 KiB) → 32 lines → 33.
        assert_eq!(repitched_columns(2000, 513, 1025, 4), Some(528));
        assert_eq!(repitched_columns(1023, 500, 1000, 4), Some(528));
        // f64: 515 columns are 4120 bytes, 24 past 4 KiB: 65 lines.
        assert_eq!(repitched_columns(512, 515, 600, 8), Some(520));
        // The copy's rows are always an odd number of lines apart.
        for n in 1000..1100 {
            if let Some(c) = repitched_columns(1000, n, 1000, 4) {
                assert!(c >= n && c % 16 == 0 && (c / 16) % 2 == 1, "{n} → {c}");
            }
        }
    }

    #[test]
    fn keeps_b_with_other_pitches_no_n_blocks_or_few_rows() {
        // 1040 columns: a line past 4 KiB; 1000: 96 bytes short.
        assert_eq!(repitched_columns(1023, 1040, 1025, 4), None);
        assert_eq!(repitched_columns(1023, 1000, 1025, 4), None);
        // Rows more than a line short of 2 KiB.
        assert_eq!(repitched_columns(1023, 400, 1000, 4), None);
        // No N blocks: B of 1 MiB or less, rows of A over 1440 f32 (K =
        // 2000: repitched, 1023×2000·2000×1027 ran 17.4–17.9 → 19.2–19.6 ms).
        assert_eq!(repitched_columns(1023, 1027, 255, 4), None);
        assert_eq!(repitched_columns(1023, 1027, 2000, 4), None);
        // Fewer than 256 rows.
        assert_eq!(repitched_columns(200, 1027, 1025, 4), None);
        // Other element widths.
        assert_eq!(repitched_columns(1023, 2054, 1025, 2), None);
    }

    #[test]
    fn n_blocks_are_cut_before_the_register_tiles() {
        let s = matmul_schedule(MatmulTiles::default(), PackedMatmul::default());
        for w in N_BLOCKS {
            let at = s
                .find(&format!("attributes{{{}}}", n_block_tag(w)))
                .unwrap_or_else(|| panic!("{w}: {s}"));
            assert!(s[at..].contains(&format!("tile_sizes [0, {w}, 0]")), "{s}");
            assert!(at < s.find("%mm = ").expect("the default tiles"), "{s}");
        }
        assert_eq!(s.matches("%bf = transform.get_parent_op %bl :").count(), N_BLOCKS.len(), "{s}");
    }

    #[test]
    fn k_blocks_for_long_rows_of_64_bit_products() {
        // f64 rows over 5760 bytes (K > 720) with B over 1 MiB: 512-column
        // blocks of 128 rows (512 KiB); at K = 720 the N blocks alone.
        assert_eq!(k_block(2000, 2000, 2000, 8), Some((512, 128)));
        assert_eq!(k_block(1000, 1000, 721, 8), Some((512, 128)));
        assert_eq!(k_block(1000, 1000, 720, 8), None);
        assert!(n_block(1000, 1000, 720, 8).is_some());
        // f32, a B within 1 MiB, one 8-row tile, a K of one block: none.
        assert_eq!(k_block(2000, 2000, 2000, 4), None);
        assert_eq!(k_block(1000, 100, 1000, 8), None);
        assert_eq!(k_block(8, 2000, 2000, 8), None);
        assert_eq!(k_block_tag(K_BLOCK_ROWS), "tensorc.kblock128");
    }

    #[test]
    fn schedule_tiles_with_the_requested_sizes() {
        let s = matmul_schedule(MatmulTiles { m: 4, n: 16, lanes: 16 }, PackedMatmul::default());
        assert!(s.contains("tile_sizes [4, 16, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 1]"), "{s}");
        assert!(s.contains("tile_sizes [1, 4, 16, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 0, 1]"), "{s}");
        assert_eq!(s.matches('{').count(), s.matches('}').count());
        // Two peels (N then M) per op kind and class, one per N block
        // width, one for the K blocks, plus the packed step's.
        let mut packed = String::new();
        add_packed(&mut packed, PackedMatmul::default());
        let packed_peels = peel_count(&packed);
        assert_eq!(
            peel_count(&s),
            2 * 2 * classes(16).len() + N_BLOCKS.len() + 1 + packed_peels
        );
        // The packed schedule's tiles are vectorized by the tag it gives them.
        assert!(s.contains(&format!(
            "match attributes{{{}}} in %root",
            crate::packed_matmul::VEC
        )));
        // Every matcher checks every loop for being non-empty; the narrow
        // ones also bound N (above 0, at most one register), the 64-bit
        // ones the element width of C.
        let narrow = classes(16).iter().filter(|c| c.narrow).count();
        assert_eq!(
            s.matches("transform.match.param.cmpi gt").count(),
            classes(16).len() * (3 + 4) + 2 * narrow
        );
        assert_eq!(s.matches("%hi = transform.param.constant 17 ").count(), 2);
        assert_eq!(s.matches("%hi = transform.param.constant 9 ").count(), 2);
        // (and the packed ops' width tags: `packed_matmul::width_arms`).
        assert_eq!(s.matches("%bits = transform.param.constant 64 ").count(), 4 + 1);
        assert!(s.contains("@tensorc_pk_w64 -> @tensorc_pk_tag64"), "{s}");
        // Narrow ops get twice the rows; 64-bit ones half the columns.
        assert!(s.contains("%nbmm_t, %nbmm_l:3 = transform.structured.tile_using_for %nbmm tile_sizes [1, 8, 16, 0]"), "{s}");
        assert!(
            s.contains(
                "%nmm_t, %nmm_l:2 = transform.structured.tile_using_for %nmm tile_sizes [8, 16, 0]"
            ),
            "{s}"
        );
        assert!(s.contains("%wbmm tile_sizes [1, 4, 8, 0]"), "{s}");
        assert!(s.contains("%wnbmm tile_sizes [1, 8, 8, 0]"), "{s}");
        // Classes are matched in `classes` order, the default last, and
        // tiled the other way round; the other classes' K tiles get the tag
        // the vectorizer matches before peeling copies them.
        let pos = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle}: {s}"));
        assert!(pos("@tensorc_match_wnbmm ->") < pos("@tensorc_match_wbmm ->"));
        assert!(pos("@tensorc_match_wbmm ->") < pos("@tensorc_match_nbmm ->"));
        assert!(pos("@tensorc_match_nbmm ->") < pos("@tensorc_match_bmm -> @tensorc_tag_all"));
        for cid in ["n", "w", "wn"] {
            assert!(pos("%bmm = ") < pos(&format!("%{cid}bmm = ")));
            let tag = pos(&format!(
                "transform.annotate %{cid}bmm_k \"tensorc.schedule\""
            ));
            assert!(tag < pos(&format!("%{cid}bmm_l#2")));
        }
        assert!(!s.contains("transform.annotate %bmm_k"));
        // A 16-wide tile is one register: nothing to split.
        assert!(!s.contains("structured.split"), "{s}");
    }

    #[test]
    fn tiles_between_one_and_two_registers_wide_are_split() {
        let s = matmul_schedule(MatmulTiles::default(), PackedMatmul::default());
        // N is dimension 1 of a matmul and 2 of a batch matmul; both split
        // after one register, in one pass for a 32-wide tile.
        assert!(s.contains("split %op after 16 {dimension = 1}"), "{s}");
        assert!(s.contains("split %op after 16 {dimension = 2}"), "{s}");
        assert_eq!(s.matches("transform.foreach_match in %root\n").count(), 1);
        assert!(s.contains("cmpi gt %d1, %lo") && s.contains("cmpi lt %d2, %hi"));
        assert!(s.contains("%hi = transform.param.constant 32 "));
        // 64-bit tiles (8×16) split after one register of 8, matched first.
        assert!(s.contains("%wbmm tile_sizes [1, 8, 16, 0]"), "{s}");
        assert!(s.contains("split %op after 8 {dimension = 2}"), "{s}");
        let split = &s[s.find("%root_split1 = ").unwrap()..];
        assert!(
            split.find("@tensorc_mid_n_wbmm").unwrap() < split.find("@tensorc_mid_n_bmm").unwrap()
        );
        // Vectorizing and hoisting work on the handle the split returned.
        assert!(s.contains("attributes{tensorc.schedule} in %root_split1 "));
        let after = &s[s.find("%root_split1 = ").unwrap()..];
        assert!(!after.contains("in %root :"), "{after}");
        // A 64-wide tile can leave 17..63 columns: three passes.
        let wide = matmul_schedule(MatmulTiles { m: 8, n: 64, lanes: 16 }, PackedMatmul::default());
        assert!(wide.contains("%root_split3 = transform.foreach_match in %root_split2"));
        assert!(!wide.contains("%root_split4"));
    }

    #[test]
    fn script_file_round_trips_and_is_stable() {
        let s = matmul_schedule(MatmulTiles::default(), PackedMatmul::default());
        let a = script_file(&s).unwrap();
        let b = script_file(&s).unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::read_to_string(a).unwrap(), s);
    }
}

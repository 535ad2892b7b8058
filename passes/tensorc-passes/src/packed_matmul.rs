//! Packing and cache blocking for large `linalg.matmul`s (cpu-pipeline.md
//! §1.3 schedule (b2)), plus the fusion of an element-wise consumer (W6's
//! bias + relu) into the unpacking of the result.
//!
//! Why: the unpacked 8×32×1 schedule (`matmul_schedule.rs`) streams B rows
//! that are `4·N` bytes apart. For power-of-two N those rows map to the same
//! cache sets, and with no K blocking a B panel does not stay in cache: W2
//! (1024³) ran at 0.52× NumPy and W3 (2048³) at 0.34× (cpu-pipeline.md §1.6
//! (8)). Packing copies A into `[M/tile_m][K][tile_m]` and B into
//! `[N/16][K][16]` panels, contiguous in the order the register tile reads
//! them; B one cache block at a time, into a block-sized temporary, just
//! before the block is used (its pack is fused into the block loops). The
//! loops over the packed product follow BLIS, with the roles of A and B
//! swapped because our register tile loads B and broadcasts A:
//! N blocks of `n_block` panels → K blocks of `k_block` (a 128×512 block of
//! packed B, 256 KiB, stays in L2 for all of M) → A row panels (an A
//! micro-panel stays in L1 across the N block) → one 8×32 C tile (8 rows by
//! two B panels) in 16 zmm registers → k: per k, two B loads, eight
//! broadcasts of A and 16 FMAs. docs/benchmarks.md has the measurements
//! behind this order and the sizes.
//!
//! Which ops: the `linalg.matmul`s `pack_mark.rs` tagged `tensorc.pack`
//! (`PackedMatmul::packs`): f32/i32 (32-bit), M ≥ `min_m` (packing B costs
//! as much as a matmul with a handful of rows), N ≥ `min_nk`, K ≥ `min_k`,
//! one of them ≥ `min_large`, and B's rows a multiple of `conflict_stride`
//! (2 KiB) and at least 4 KiB apart, or within `near_slack` (8) bytes of a
//! multiple of 4 KiB (`conflict_page`; they share cache sets; unless the
//! unpacked schedule repitches B, `matmul_schedule::repitched_columns`) with B not
//! fitting in L2 (`min_conflicting_b`), or B larger than `max_unpacked_b`
//! (12 MiB; 7 MiB when N ≥ `wide_n`, 2000). Everything else keeps the unpacked schedule, which was
//! as fast or faster there (W1's 256³, W10's batches, 1000³, 1500³: no
//! packs, fill or unpack). Batches of such products become loops of them
//! (`pack_mark.rs`).
//!
//! Every shape works: `structured.pack` pads M and N up to multiples of the
//! packing sizes with zeros, which add nothing to the sums, and the unpack
//! drops the padding again. Loops whose trip counts the tiles do not divide
//! are peeled so every tile that gets vectorized has a static shape (the
//! last N block too, so the register tiles in it are static).
//!
//! Two steps, because the parallel step (`parallel_schedule.rs`) cuts every
//! linalg op into `scf.forall` chunks between them:
//! 1. `pack_schedule` (its own library and entry point, run *before* the
//!    parallel step): pack the matmul, so B is packed once for all chunks
//!    (one block at a time, inside the block loops);
//!    tag the packed op, its fill, its packs and its unpack; cut the packed
//!    op into N and K cache blocks (`add_blocks`), so the parallel step
//!    splits each block along the A panels and the chunks share its B
//!    block (products tagged for N or M chunks are cut into an
//!    `scf.forall` of chunks first, each blocked and packing its own B
//!    blocks); fuse the unpack into an element-wise consumer's `tile_m`×16
//!    tiles (`add_epilogue`: after the parallel step that consumer would be
//!    chunked and out of reach).
//! 2. `add_packed` (inside the matmul schedule's entry point, after the
//!    parallel step): tile each block (A panels, one 8×32 C tile, k by 1),
//!    tile the fill, lower packs to transposes tiled into 16-row blocks and
//!    tile unpacks into `tile_m`×16 tiles of the result. All tiles are
//!    tagged `VEC` for the matmul schedule's vectorizer.

use std::fmt::Write as _;

use crate::matmul_schedule::{peel_each, repitched_columns};
use crate::pipeline::PARALLEL_FOR;

/// The attribute of the `linalg.matmul`s the packing library packs
/// (`pack_mark.rs` puts it on them).
pub const PACK: &str = "tensorc.pack";

/// The entry point of the packing library.
pub const PACK_ENTRY: &str = "tensorc_pack_main";

/// Tag of the ops the packing step created (packed op, its fill, its packs,
/// its unpack); tiling copies it onto the chunks and tiles.
pub(crate) const PACKED: &str = "tensorc.packed";

/// Tag of the pack of B, which is lowered like the others but in a
/// different loop order (see `add_packed`).
const PACKED_B: &str = "tensorc.packed_b";

/// The A panel height: the register tile's 8 rows. With 16-row panels an M
/// just above a multiple of 16 computed up to 15 rows of padding (M = 100:
/// 112 rows, and 100×1024·1024×4096 + bias + relu took 5.1–5.2 ms against
/// 4.8–4.9 ms with 8-row panels, same minutes); W3 and W6 were the same
/// either way.
const TILE_M: u32 = 8;

/// A panels per thread-pool chunk of A's pack (64 rows of A).
const PACK_CHUNK: u32 = 8;

/// Tag of the tiles the matmul schedule vectorizes (see `matmul_schedule`).
pub const VEC: &str = "tensorc.vec";

/// Sizes and thresholds of the packed schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedMatmul {
    /// N packing size: the width of a B panel and of a C tile's columns
    /// (16 f32 lanes, one zmm register; 8, one ymm, on AVX2).
    pub tile: u32,
    /// M packing size: the height of an A panel. A multiple of `reg_m`.
    pub tile_m: u32,
    /// K cache block: the rows of a B block and the length of the k loop
    /// per register tile. 128, not 256: with the next block's B prefetched
    /// during the current one (`prefetch_panels.rs`), a 256 KiB block and
    /// the next one's source both fit in L2; products with few rows, whose
    /// time the packs of B weigh on most, ran 2.5–5.5 % faster (W6
    /// 9.45 → 8.97 ms, 100×2048·2048×2048 4.87 → 4.62 ms, one thread), the
    /// others within ±2 % (W2, W3, 1536³, 4×1024³, alternated runs).
    pub k_block: u32,
    /// N cache block, in `tile`-wide panels: a `k_block`×(`n_block`·`tile`)
    /// block of packed B (128×512 f32 = 256 KiB) stays in the 1 MiB L2
    /// while every row panel of A runs over it (64 panels: W2 2 % slower,
    /// W3 2 % faster, W6 the same).
    pub n_block: u32,
    /// Rows of the register tile (a divisor of `tile_m`): the A values
    /// broadcast per k.
    pub reg_m: u32,
    /// `tile`-wide B panels of the register tile: the B vectors loaded per
    /// k. The tile keeps `reg_m`·`reg_n` accumulators in vector registers.
    pub reg_n: u32,
    /// Smallest M that is packed.
    pub min_m: u32,
    /// Smallest N that is packed.
    pub min_nk: u32,
    /// Smallest K that is packed: a shorter k loop spends more of its time
    /// on the C tile than on FMAs. Small K still packs well when B's rows
    /// conflict (4096×128·128×4096: 0.85× NumPy unpacked, 1.22× packed;
    /// 2048×200·200×2048: 0.65× and 1.11×).
    pub min_k: u32,
    /// N or K must be at least this for the op to be packed.
    pub min_large: u32,
    /// A product that passes the sizes above is packed when B's row stride
    /// in bytes is a multiple of this and at least twice it (its rows share
    /// cache sets: 1024 and 1536 columns of f32, not 512)...
    pub conflict_stride: u64,
    /// ... or within `near_slack` bytes of a multiple of this (one way of
    /// L1: 64 sets of 64 bytes), at least this far apart: rows 4 or 8
    /// bytes short of or past 4, 8 or 12 KiB also fall into a few sets
    /// (1000×1000·1000×N, one thread, unpacked: N = 1023 and 1025 202 and
    /// 199 GFLOPS, 1022 and 1026 225 and 224, 1020 and 1028 254 and 255,
    /// 1016 256; 2047 191, 2049 197, 3071 176; packed: 1023 244, 1022 242,
    /// 2047 238, 2049 242, 3071 237). Near 6 KiB they do not (1535 and
    /// 1537: 245 and 247 unpacked, 241 and 237 packed). Session 31: not
    /// when `repitched_columns` takes the product (N blocks, M ≥ 256): the
    /// unpacked schedule on a copy of B with rows an odd number of lines
    /// apart beat packing (1023³ 8.82–9.14 → 8.22–8.43 ms, one thread)...
    pub conflict_page: u64,
    /// See `conflict_page`.
    pub near_slack: u64,
    /// ... and B has at least this many bytes (a B that fits in L2 is read
    /// from there whatever its stride: batches of 256×64·64×1024 products
    /// ran at 0.71× NumPy unpacked one by one, 1.03× as one batch
    /// schedule)...
    pub min_conflicting_b: u64,
    /// ... or when B has more bytes than this (too many to stream from L3
    /// once per register tile row of A).
    pub max_unpacked_b: u64,
    /// ... or when N is at least `wide_n` and B has more bytes than
    /// `max_unpacked_wide_b`. Session 15, same minutes, one and two threads
    /// (ms, unpacked → packed): 3000×1000·1000×3000 (12 MB) 85–93 → 74 and
    /// 46.5 → 38.8; 1000×1000·1000×3000 25.7–27.0 → 25.3–25.4 and
    /// 17.7–22.3 → 15.7–15.9; 4000×500·500×4000 (8 MB) 62.4 → 64.5–65.4
    /// and 39.9–41.6 → 33.7–34.3; a·bᵀ 1999×1000·1000×2001 (8 MB) 37.5 →
    /// 34.5 and 19.4 → 18.6; 800×1200·1200×2400 (11.5 MB) within noise.
    /// Narrower products with as large a B stay unpacked, where they were
    /// faster: 1500³ (9 MB) 27.6 → 28.1–29.3 one thread, 1000×1500·1500×1800
    /// 12.5–12.7 → 14.1–14.2 two threads, 1500×1000·1000×1700 10.4 → 11.2.
    pub wide_n: u64,
    /// See `wide_n`.
    pub max_unpacked_wide_b: u64,
    /// Whether 64-bit products are packed too (with the same thresholds,
    /// B's bytes counted at 8 per element), their register tiles
    /// `reg_n_64` panels wide instead of `reg_n`.
    pub packs_64_bit: bool,
    /// `tile`-wide B panels of a 64-bit product's register tile: a panel
    /// row of 64-bit elements takes twice the registers of a 32-bit one.
    pub reg_n_64: u32,
}

impl Default for PackedMatmul {
    /// The sizes measured best on the benchmark machine (docs/benchmarks.md,
    /// passes.md); thresholds so that W1 (256³) and W10 keep schedule (b1).
    fn default() -> Self {
        PackedMatmul {
            tile: 16,
            tile_m: TILE_M,
            k_block: 128,
            n_block: 32,
            reg_m: 8,
            reg_n: 2,
            min_m: 64,
            min_nk: 256,
            min_k: 64,
            min_large: 512,
            conflict_stride: 2048,
            conflict_page: 4096,
            near_slack: 8,
            min_conflicting_b: 1 << 20,
            max_unpacked_b: 12 << 20,
            wide_n: 2000,
            max_unpacked_wide_b: 7 << 20,
            packs_64_bit: false,
            reg_n_64: 1,
        }
    }
}

impl PackedMatmul {
    /// The packed schedule for `isa`: AVX-512's default, or for AVX2 (16
    /// ymm registers) register tiles of 4 rows by three 8-wide B panels:
    /// 12 accumulators beside three B vectors and the broadcast of A, 7
    /// loads per 12 FMAs (6×16 tiles: 8), on 4-row A panels, which M =
    /// 256, 1024 and 2048 need no padding for, so the product writes its
    /// result in place (`tensorc-unpack-in-place`) and drops its zero fill
    /// (`tensorc-k-block-ends`). Blocks of 128 K rows by 32 panels (256
    /// columns, a 128 KiB block of B in a 512 KiB L2). Every product past
    /// the size thresholds is packed (`max_unpacked_b` 0): the unpacked
    /// 6×16 schedule streams B's strided rows from L2 or L3 and stays far
    /// below the FMA peak there. The measurements: passes.md, "Register
    /// tiles per vector ISA". 64-bit products are packed too, on 4×8
    /// register tiles (one 8-wide panel: two ymm registers per row, eight
    /// accumulators, as many as two FMA pipes of latency 4 keep busy):
    /// unpacked, their 6×8 tiles streamed B's strided rows (f64 1024³ at
    /// 0.61× NumPy); packed with the 32-bit tiles, 4×24 doubles need 24
    /// accumulators and spilled (1.1× the unpacked time), 4×16 1.1× less
    /// (0.81×), 4×8 0.52× (passes.md, "64-bit products"). AVX-512 keeps
    /// them unpacked: not measured there.
    pub fn for_isa(isa: crate::pipeline::VectorIsa) -> Self {
        match isa {
            crate::pipeline::VectorIsa::Avx512 => Self::default(),
            crate::pipeline::VectorIsa::Avx2 => PackedMatmul {
                tile: 8,
                tile_m: 4,
                reg_m: 4,
                reg_n: 3,
                n_block: 32,
                max_unpacked_b: 0,
                packs_64_bit: true,
                reg_n_64: 1,
                ..Self::default()
            },
        }
    }

    /// Whether an M×K·K×N product of `bits`-wide elements is packed:
    /// `packs` for 32 bits, for 64 when `packs_64_bit` (B's stride and
    /// size in bytes of its elements).
    pub fn packs_bits(&self, m: u64, n: u64, k: u64, bits: u32) -> bool {
        match bits {
            32 => self.packs_elements(m, n, k, 4),
            64 => self.packs_64_bit && self.packs_elements(m, n, k, 8),
            _ => false,
        }
    }

    /// Whether an M×K·K×N 32-bit product is packed (`pack_mark.rs` tags it):
    /// M ≥ `min_m`, N ≥ `min_nk`, K ≥ `min_k`, N or K ≥ `min_large`, and B's
    /// rows conflict in the caches or B is larger than `max_unpacked_b` (or,
    /// when N is at least `wide_n`, `max_unpacked_wide_b`).
    pub fn packs(&self, m: u64, n: u64, k: u64) -> bool {
        self.packs_elements(m, n, k, 4)
    }

    /// `packs` for elements of `bytes` bytes.
    fn packs_elements(&self, m: u64, n: u64, k: u64, bytes: u64) -> bool {
        let (min_m, min_nk, min_k, min_large) = (
            u64::from(self.min_m),
            u64::from(self.min_nk),
            u64::from(self.min_k),
            u64::from(self.min_large),
        );
        let stride = bytes * n;
        m >= min_m
            && n >= min_nk
            && k >= min_k
            && n.max(k) >= min_large
            && ((self.conflicts(stride, || repitched_columns(m, n, k, bytes).is_some())
                && k * stride >= self.min_conflicting_b)
                || k * stride > self.max_unpacked_b
                || (n >= self.wide_n && k * stride > self.max_unpacked_wide_b))
    }

    /// Whether rows `stride` bytes apart share cache sets
    /// (`conflict_stride`, `conflict_page`), except rows near a page apart
    /// when `repitched` (the unpacked schedule then reads B through a copy
    /// whose rows do not, `tensorc-repitch-b`).
    fn conflicts(&self, stride: u64, repitched: impl FnOnce() -> bool) -> bool {
        let off_page = stride % self.conflict_page;
        (stride.is_multiple_of(self.conflict_stride) && stride >= 2 * self.conflict_stride)
            || (stride + self.near_slack >= self.conflict_page
                && off_page.min(self.conflict_page - off_page) <= self.near_slack
                && !repitched())
    }
}

/// Smallest and largest N chunk, in panels, of a product whose threads
/// split N (`PackedMatmul::n_chunk`): below 16 panels an A micro-panel
/// serves too few register tiles per load; 32 is the N block.
const MIN_N_CHUNK: u32 = 16;

/// The attribute `pack_mark.rs` puts on a matmul whose threads split N in
/// chunks of `panels` panels, and the one the packing step puts on the
/// packed op it becomes (instead of `PACKED`, until its blocks are made).
pub fn n_chunk_tag(panels: u32) -> String {
    format!("tensorc.pack_n{panels}")
}

fn packed_n_tag(panels: u32) -> String {
    format!("tensorc.packed_n{panels}")
}

/// The attribute `pack_mark.rs` puts on a matmul whose threads split M
/// in `M_CHUNKS` chunks (`PackedMatmul::splits_m`), and the one the
/// packing step puts on the packed op it becomes (instead of `PACKED`,
/// until its blocks are made).
pub const PACK_M: &str = "tensorc.pack_m";
const PACKED_M: &str = "tensorc.packed_m";

/// Chunks of A panels of a product whose threads split M: two, one per
/// core of the benchmark machine; each chunk packs all of B again (one
/// more pass over B per chunk), so no more than the threads need.
const M_CHUNKS: u32 = 2;

/// Smallest M chunk, in A panels (512 rows): each chunk packs all of B, so
/// a chunk must hold enough rows that the pack stays a small part of its
/// work (B's packs were 9 % of W6's time, 256 rows, before they were
/// prefetched; about 1 % of 2000³'s).
const MIN_M_CHUNK: u64 = 64;

impl PackedMatmul {
    /// Whether the threads of a packed M×K·K×N product split M into
    /// `M_CHUNKS` chunks of A panels, each running every N and K block of
    /// its rows and packing its own B blocks. Only when N does not split
    /// (`n_chunk`: 2000 columns are 125 panels) and the chunks hold at
    /// least `MIN_M_CHUNK` panels. An odd panel count makes chunks one
    /// panel apart (3000 rows: 188 and 187 panels): the chunk's panel loop
    /// then has a bound known at run time only, while its register tiles
    /// (one panel each) stay static; 3000³ on two threads, AOT, alternated:
    /// 121.3 → 114.5 ms (one thread unchanged, 216–218 ms). Otherwise the
    /// threads split each block's A panels: two fork-joins per (N block, K
    /// block) pair (B's pack, then the panels; 128 per call for 2000³) and
    /// each thread read half its B block from the other core's L2 (2000³
    /// on two threads: the packed loops took 11 % more samples than on one,
    /// the pool's waits another 6 %).
    pub fn splits_m(&self, m: u64, n: u64) -> bool {
        let panels = m.div_ceil(u64::from(self.tile_m));
        let chunks = u64::from(M_CHUNKS);
        self.n_chunk(n).is_none()
            && panels / chunks >= MIN_M_CHUNK
    }
}

impl PackedMatmul {
    /// The N chunk, in panels, when the threads of a packed M×K·K×N product
    /// split N instead of each block's A panels: every thread then packs
    /// and keeps its own B blocks (in its own L2) and the product is one
    /// fork-join, where splitting A panels made two per (N block, K block)
    /// pair (B's pack, then the panels) and left each thread reading half
    /// its B block from the other core. The chunks must be static and
    /// equal, so that a thread count that divides their number balances:
    /// N a multiple of `tile`, an even number of chunks that divides the
    /// panels, each at most `n_block` and at least `MIN_N_CHUNK` panels
    /// (the fewest such chunks). Otherwise (2000 columns: 125 panels; N
    /// below 512) the threads split A panels.
    pub fn n_chunk(&self, n: u64) -> Option<u32> {
        let tile = u64::from(self.tile);
        if n == 0 || !n.is_multiple_of(tile) {
            return None;
        }
        let panels = n / tile;
        (2..=panels / u64::from(MIN_N_CHUNK))
            .step_by(2)
            .filter(|c| panels.is_multiple_of(*c))
            .map(|c| panels / c)
            .find(|&size| size <= u64::from(self.n_block))
            .and_then(|size| u32::try_from(size).ok())
    }
}

/// Step 1, a library of its own run before the parallel step: pack every
/// large matmul and tag what packing made.
pub fn pack_schedule(p: PackedMatmul) -> String {
    let t = p.tile;
    let mp = p.tile_m;
    let mut s = String::from("module attributes {transform.with_named_sequence} {\n");
    s.push_str(crate::matmul_schedule::PEEL_EACH_DEFINITION);
    epilogue_matcher(&mut s);
    // Pack M and N (not K: a trailing unit K0 dimension makes the panel
    // reads scalar, cpu-pipeline.md §1.6 (7)); B's panels are transposed to
    // [N/16][K][16] so each k reads 16 contiguous floats of B. Returns the
    // packed op, which the caller tags.
    let _ = writeln!(
        s,
        "  transform.named_sequence @tensorc_pk_pack(%m: !transform.any_op {{transform.consumed}}) -> !transform.any_op {{\n\
         \x20   %pk = transform.structured.pack %m packed_sizes = [{mp}, {t}, 0] : (!transform.any_op) -> (!transform.op<\"linalg.generic\">)\n\
         \x20   %pb = transform.get_producer_of_operand %pk[1] : (!transform.op<\"linalg.generic\">) -> (!transform.op<\"linalg.pack\">)\n\
         \x20   %pk2, %pb2, %pe = transform.structured.pack_transpose %pb with_compute_op(%pk) outer_perm = [1, 0]\n\
         \x20       : (!transform.op<\"linalg.pack\">, !transform.op<\"linalg.generic\">) -> (!transform.op<\"linalg.generic\">, !transform.op<\"linalg.pack\">, !transform.any_op)\n\
         \x20   %packed = transform.cast %pk2 : !transform.op<\"linalg.generic\"> to !transform.any_op\n\
         \x20   transform.yield %packed : !transform.any_op\n\
         \x20 }}"
    );
    // Products whose threads split N (`n_chunk`) carry their chunk in a
    // tag of their own, one per chunk size; their packed op gets the
    // matching tag instead of `PACKED` (see `add_blocks`).
    let chunks = MIN_N_CHUNK..=p.n_block;
    let pack_tagged = |s: &mut String, handle: &str, matmul_tag: &str, packed_tag: &str| {
        let _ = writeln!(
            s,
            "    %{handle} = transform.structured.match ops{{[\"linalg.matmul\"]}} attributes{{{matmul_tag}}} in %arg0 : (!transform.any_op) -> !transform.any_op\n\
             \x20   transform.foreach %{handle} : !transform.any_op {{\n\
             \x20   ^bb0(%mm: !transform.any_op):\n\
             \x20     %pkd = transform.include @tensorc_pk_pack failures(propagate) (%mm) : (!transform.any_op) -> !transform.any_op\n\
             \x20     transform.annotate %pkd \"{packed_tag}\" : !transform.any_op\n\
             \x20   }}"
        );
    };
    // After canonicalization (which folds C's pack of a fill into a fill of
    // the packed tensor) and `fold_into_pack_and_unpack` (a pack of a
    // `linalg.transpose` becomes a pack of its input with the permutation
    // folded in: the frontend writes a dot with a transposed operand as a
    // transpose and a matmul, and its B then packs straight from the N×K
    // layout and its A from K×M, with no transposed copy in between), tag
    // the producers and the consumer of each packed
    // op; an operand that is not a pack (or an init that is not a fill)
    // only fails its own `try_block`.
    let tag_operand = |s: &mut String, i: usize, want: &str, tag: &str| {
        try_block(
            s,
            "%g",
            "      ",
            &format!(
                "%p = transform.get_producer_of_operand %h[{i}] : (!transform.any_op) -> !transform.any_op\n\
                 transform.match.operation_name %p [\"{want}\"] : !transform.any_op\n\
                 transform.annotate %p \"{tag}\" : !transform.any_op"
            ),
        );
    };
    let _ = writeln!(
        s,
        "  transform.named_sequence @{PACK_ENTRY}(%arg0: !transform.any_op) {{"
    );
    for c in chunks.clone() {
        pack_tagged(&mut s, &format!("to_pack_n{c}"), &n_chunk_tag(c), &packed_n_tag(c));
    }
    pack_tagged(&mut s, "to_pack_m", PACK_M, PACKED_M);
    pack_tagged(&mut s, "to_pack", PACK, PACKED);
    let _ = writeln!(
        s,
        "    %root = transform.merge_handles %arg0 : !transform.any_op\n\
         \x20   %f = transform.structured.match ops{{[\"func.func\"]}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.apply_patterns to %f {{\n\
         \x20     transform.apply_patterns.tensor.fold_into_pack_and_unpack\n\
         \x20     transform.apply_patterns.canonicalization\n\
         \x20   }} : !transform.any_op\n\
         \x20   %packed_m = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{PACKED}}} in %root : (!transform.any_op) -> !transform.any_op"
    );
    let _ = writeln!(
        s,
        "    %packed_msplit = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{PACKED_M}}} in %root : (!transform.any_op) -> !transform.any_op"
    );
    let mut all = String::from("%packed_m, %packed_msplit");
    for c in chunks.clone() {
        let _ = writeln!(
            s,
            "    %packed_n{c} = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{}}} in %root : (!transform.any_op) -> !transform.any_op",
            packed_n_tag(c)
        );
        let _ = write!(all, ", %packed_n{c}");
    }
    let _ = writeln!(
        s,
        "    %packed = transform.merge_handles {all} : !transform.any_op\n\
         \x20   transform.foreach %packed : !transform.any_op {{\n\
         \x20   ^bb0(%g: !transform.any_op):"
    );
    tag_operand(&mut s, 0, "linalg.pack", PACKED);
    tag_operand(&mut s, 1, "linalg.pack", PACKED_B);
    tag_operand(&mut s, 2, "linalg.fill", PACKED);
    tag_operand(&mut s, 2, "linalg.pack", PACKED);
    try_block(
        &mut s,
        "%g",
        "      ",
        &format!(
            "%u = transform.get_consumers_of_result %h[0] : (!transform.any_op) -> !transform.any_op\n\
             transform.match.operation_name %u [\"linalg.unpack\"] : !transform.any_op\n\
             transform.annotate %u \"{PACKED}\" : !transform.any_op"
        ),
    );
    s.push_str("    }\n");
    add_blocks(&mut s, p);
    add_epilogue(&mut s, mp, t);
    s.push_str("    transform.yield\n  }\n}\n");
    s
}

/// Appends, at `indent`, the transform ops `body` (one per line, the target
/// op bound to `%h`) run on `handle` as a unit that stops at its first
/// silenceable failure and then leaves the rest of the script running: a
/// `failures(propagate)` sequence (which stops at a failure) inside a
/// `failures(suppress)` one (which swallows it). A lone `suppress` sequence
/// would go on with the next op after a failed one.
fn try_block(s: &mut String, handle: &str, indent: &str, body: &str) {
    let _ = writeln!(
        s,
        "{indent}transform.sequence {handle} : !transform.any_op failures(suppress) {{\n\
         {indent}^bb0(%try: !transform.any_op):\n\
         {indent}  transform.sequence %try : !transform.any_op failures(propagate) {{\n\
         {indent}  ^bb1(%h: !transform.any_op):"
    );
    for line in body.lines() {
        let _ = writeln!(s, "{indent}    {line}");
    }
    let _ = writeln!(s, "{indent}  }}\n{indent}}}");
}

/// Appends the cache blocking of every packed op (loops (m1, n1, k, m0,
/// n0)): first N blocks of `n_block` panels, then K blocks of `k_block`,
/// so one block of packed B (`k_block` × `n_block`·16 floats) is reused
/// from L2 by every A panel. Against K blocks outermost (the previous
/// order) the C tiles a K block revisits are an N block of C instead of
/// all of it, and B comes from L2 instead of L3.
///
/// It runs in the packing step, before the parallel step, so that the
/// parallel step splits each block along the A panels (threads share the
/// B block; one thread runs the chunks one after the other over the same
/// B block in L2). Split first, each chunk would run every block over a
/// few rows only, reloading the B block from L3 once per chunk. Both
/// loops are peeled, K first, and the function canonicalized, so the
/// blocks of a partial last N or K block are static too: the parallel
/// step only splits static ops, and the register tiles inside must be
/// static to vectorize.
fn add_blocks(s: &mut String, p: PackedMatmul) {
    let (nb, kc) = (p.n_block, p.k_block);
    // B's pack is fused into the innermost block loop (K blocks, or N
    // blocks when K is a single block): it packs one block just before the
    // A panels run over it, into a block-sized temporary that is still in
    // L2 when they do, instead of packing all of B up front into a buffer
    // as large as B that went to memory and was read back (W6's 16 MiB B:
    // 12 % of its time was that pack). Fusing happens before peeling, so
    // the peeled loops each get their own copy.
    let mut body = nk_blocks("%h", "%pb", "%pb2", p);
    // Peel K first: peeling consumes the loop it is given and keeps the
    // enclosing one.
    peel_each(&mut body, "%lkc", "");
    peel_each(&mut body, "%lnb", "");
    foreach_tagged(s, "pk", PACKED, &body);
    // Products whose threads split N: an `scf.forall` of equal static N
    // chunks (`n_chunk`; each the N block), B's pack fused into it and
    // into the K block loop inside each chunk, the same K blocks as above.
    // Their blocks get `PACKED` only now, so the loop above never saw them.
    for c in MIN_N_CHUNK..=nb {
        let mut body = format!(
            "%pb = transform.get_producer_of_operand %h[1] : (!transform.any_op) -> !transform.any_op\n\
             %ch, %fa = transform.structured.tile_using_forall %h tile_sizes [0, {c}, 0, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
             {}\
             %pbc = transform.get_producer_of_operand %ch[1] : (!transform.any_op) -> !transform.any_op\n\
             %blk, %lkc = transform.structured.tile_using_for %ch tile_sizes [0, 0, {kc}, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
             {}\
             transform.annotate %blk \"{PACKED}\" : !transform.any_op\n",
            fuse_pack("%pb", "%pb2", "", "%fa"),
            fuse_pack("%pbc", "%pb3", "", "%lkc")
        );
        peel_each(&mut body, "%lkc", "");
        foreach_tagged(s, &format!("pkn{c}"), &packed_n_tag(c), &body);
    }
    // Products whose threads split M: an `scf.forall` of `M_CHUNKS`
    // (equal, or one panel apart)
    // chunks of A panels, each blocked like the products above (N blocks,
    // K blocks, B's pack fused into the innermost block loop: each chunk
    // packs its own B blocks into its own L2). Their blocks get `PACKED`
    // only now, so the loop above never saw them.
    let mut body = format!(
        "%pb = transform.get_producer_of_operand %h[1] : (!transform.any_op) -> !transform.any_op\n\
         %ch, %fa = transform.structured.tile_using_forall %h num_threads [{M_CHUNKS}, 0, 0, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
         {}\
         {}\
         transform.annotate %blk \"{PACKED}\" : !transform.any_op\n",
        fuse_pack("%pb", "%pb2", "", "%fa"),
        nk_blocks("%ch", "%pbc", "%pb3", p)
    );
    peel_each(&mut body, "%lkc", "");
    peel_each(&mut body, "%lnb", "");
    foreach_tagged(s, "pkm", PACKED_M, &body);
    // `fold_tensor_empty` turns the slice of the whole packed B that each
    // fused pack writes into a block-sized `tensor.empty`;
    // `for_loop_canonicalization` folds the `affine.min` sizes of B's
    // column slices in the peeled main N loop (min(N - 16·n, 512) is 512
    // for every n the loop takes), so the packs there are static and need
    // no padding.
    s.push_str(
        "    %pk_f = transform.structured.match ops{[\"func.func\"]} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.apply_patterns to %pk_f {\n\
         \x20     transform.apply_patterns.tensor.fold_tensor_empty\n\
         \x20     transform.apply_patterns.scf.for_loop_canonicalization\n\
         \x20     transform.apply_patterns.canonicalization\n\
         \x20   } : !transform.any_op\n",
    );
}

/// The transform ops that cut the packed op `target` into N blocks (loop
/// `%lnb`) and K blocks (`%lkc`), the block op `%blk`, and fuse B's pack
/// (`producer`, `arg` inside the fusing sequence) into the innermost block
/// loop; the caller peels the loops.
fn nk_blocks(target: &str, producer: &str, arg: &str, p: PackedMatmul) -> String {
    let (nb, kc) = (p.n_block, p.k_block);
    format!(
        "{producer} = transform.get_producer_of_operand {target}[1] : (!transform.any_op) -> !transform.any_op\n\
         %blk, %lnb, %lkc = transform.structured.tile_using_for {target} tile_sizes [0, {nb}, {kc}, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)\n\
         {}",
        fuse_pack(
            producer,
            arg,
            "%inner = transform.get_parent_op %blk {op_name = \"scf.for\"} : (!transform.any_op) -> !transform.any_op",
            "%inner"
        )
    )
}

/// Appends a `transform.foreach` over the generics tagged `tag` (handle
/// `%{handle}`) running `body` on each (bound to `%h`) in a `try_block`.
fn foreach_tagged(s: &mut String, handle: &str, tag: &str, body: &str) {
    foreach_tagged_op(s, "linalg.generic", handle, tag, body);
}

/// `foreach_tagged` over the ops named `op`.
pub(crate) fn foreach_tagged_op(s: &mut String, op: &str, handle: &str, tag: &str, body: &str) {
    let _ = writeln!(
        s,
        "    %{handle} = transform.structured.match ops{{[\"{op}\"]}} attributes{{{tag}}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.foreach %{handle} : !transform.any_op {{\n\
         \x20   ^bb0(%{handle}_1: !transform.any_op):"
    );
    try_block(s, &format!("%{handle}_1"), "      ", body);
    s.push_str("    }\n");
}

/// A sequence that fuses `producer` (`arg` inside it) into the loop
/// `into` when it is a `linalg.pack` (B's pack: a product whose B is
/// something else is blocked all the same), after the transform op `find`
/// (none when empty) that finds the loop.
fn fuse_pack(producer: &str, arg: &str, find: &str, into: &str) -> String {
    let find = if find.is_empty() { String::new() } else { format!("  {find}\n") };
    format!(
        "transform.sequence {producer} : !transform.any_op failures(suppress) {{\n\
         ^bb2({arg}: !transform.any_op):\n\
         \x20 transform.match.operation_name {arg} [\"linalg.pack\"] : !transform.any_op\n\
         {find}\
         \x20 %fpb, %floop = transform.structured.fuse_into_containing_op {arg} into {into} : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
         }}\n"
    )
}

/// Appends the epilogue fusion: an all-parallel 2-D consumer of the
/// unpacked result (bias + relu in W6) is tiled 16×16 and the unpack is
/// fused into its tile loop, so each C tile goes from the packed layout
/// through the epilogue into the result in one pass (no unpacked
/// temporary). Only when the unpack has exactly this one consumer; anything
/// else fails its `try_block` and is left to the element-wise schedule.
///
/// It runs in the packing step, before the parallel step: afterwards the
/// consumer would be cut into `scf.forall` chunks and no longer be the
/// unpack's direct consumer. Its 16×16 tiles are below the parallel step's
/// threshold, so they stay whole for the matmul schedule to vectorize; the
/// loop over the rows of tiles is marked `PARALLEL_FOR` instead (each
/// iteration writes its own rows), or the epilogue would run on one thread.
fn add_epilogue(s: &mut String, mp: u32, t: u32) {
    let _ = writeln!(
        s,
        "    %pk_unpacks0 = transform.structured.match ops{{[\"linalg.unpack\"]}} attributes{{{PACKED}}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.foreach %pk_unpacks0 : !transform.any_op {{\n\
         \x20   ^bb0(%up: !transform.any_op):"
    );
    let mut body = format!(
        "%cons = transform.get_consumers_of_result %h[0] : (!transform.any_op) -> !transform.any_op\n\
         %n = transform.num_associations %cons : (!transform.any_op) -> !transform.param<i64>\n\
         %one = transform.param.constant 1 : i64 -> !transform.param<i64>\n\
         transform.match.param.cmpi eq %n, %one : !transform.param<i64>\n\
         %epi = transform.include @tensorc_mm_epilogue failures(propagate) (%cons) : (!transform.any_op) -> !transform.any_op\n\
         %et, %el:2 = transform.structured.tile_using_for %epi tile_sizes [{mp}, {t}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)\n\
         transform.annotate %et \"{VEC}\" : !transform.any_op\n\
         %fu, %nl = transform.structured.fuse_into_containing_op %h into %el#1 : (!transform.any_op, !transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
         transform.annotate %fu \"{PACKED}\" : !transform.any_op\n\
         transform.annotate %el#0 \"{PARALLEL_FOR}\" : !transform.any_op\n"
    );
    peel_each(&mut body, "%nl", "");
    peel_each(&mut body, "%el#0", "");
    try_block(s, "%up", "      ", &body);
    s.push_str("    }\n");
}

/// The matcher `add_epilogue` uses.
fn epilogue_matcher(s: &mut String) {
    // An all-parallel 2-D generic: the consumer whose tiles can read the
    // unpacked result tile straight from the packed one.
    s.push_str(
        "  transform.named_sequence @tensorc_mm_epilogue(%op: !transform.any_op {transform.readonly}) -> !transform.any_op {
    transform.match.operation_name %op [\"linalg.generic\"] : !transform.any_op
    %two = transform.param.constant 2 : i64 -> !transform.param<i64>
    transform.match.structured %op : !transform.any_op {
    ^bb0(%s: !transform.any_op):
      %r = transform.match.structured.rank %s : (!transform.any_op) -> !transform.param<i64>
      transform.match.param.cmpi eq %r, %two : !transform.param<i64>
      transform.match.structured.dim %s[all] {parallel} : !transform.any_op
      transform.match.structured.yield
    }
    transform.yield %op : !transform.any_op
  }
",
    );
}

/// The tags `width_arms` puts on packed ops of 32- and 64-bit elements.
const PACKED_32: &str = "tensorc.packed32";
const PACKED_64: &str = "tensorc.packed64";

/// Appends (at module level, to the matmul schedule) the matchers and
/// actions that tag the packed ops step 1 made by the width of their
/// elements, `PACKED_32` or `PACKED_64` (any 5-D generic of the packed
/// op's loop kinds; the tiling below matches the tag with `PACKED`), and
/// returns their `foreach_match` arms. A transform matcher reads the
/// element width; the packing step, a library of its own, cannot leave a
/// mark the tiled ops keep apart otherwise.
pub fn width_arms(s: &mut String) -> Vec<String> {
    let mut arms = Vec::new();
    for (bits, tag) in [(32, PACKED_32), (64, PACKED_64)] {
        let width = crate::matmul_schedule::init_width_is(bits);
        let _ = writeln!(
            s,
            "  transform.named_sequence @tensorc_pk_w{bits}(%op: !transform.any_op {{transform.readonly}}) -> !transform.any_op {{\n\
             \x20   transform.match.operation_name %op [\"linalg.generic\"] : !transform.any_op\n\
             \x20   %five = transform.param.constant 5 : i64 -> !transform.param<i64>\n\
             \x20   transform.match.structured %op : !transform.any_op {{\n\
             \x20   ^bb0(%s: !transform.any_op):\n\
             \x20     %r = transform.match.structured.rank %s : (!transform.any_op) -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi eq %r, %five : !transform.param<i64>\n\
             \x20     transform.match.structured.dim %s[0, 1, 3, 4] {{parallel}} : !transform.any_op\n\
             \x20     transform.match.structured.dim %s[2] {{reduction}} : !transform.any_op\n\
             {width}\
             \x20     transform.match.structured.yield\n\
             \x20   }}\n\
             \x20   transform.yield %op : !transform.any_op\n\
             \x20 }}\n\
             \x20 transform.named_sequence @tensorc_pk_tag{bits}(%op: !transform.any_op {{transform.readonly}}) {{\n\
             \x20   transform.annotate %op \"{tag}\" : !transform.any_op\n\
             \x20   transform.yield\n\
             \x20 }}"
        );
        arms.push(format!("@tensorc_pk_w{bits} -> @tensorc_pk_tag{bits}"));
    }
    arms
}

/// Step 2, appended to the matmul schedule's entry point (which has
/// `%root`): tile what step 1 made and tag the tiles `VEC`.
pub fn add_packed(s: &mut String, p: PackedMatmul) {
    let t = p.tile;
    let (rm, rn) = (p.reg_m, p.reg_n);
    // Inside a block: A panel (m1), `reg_m` rows of it (m0), then the
    // register tiles along N (n1, `reg_n` panels at a time), so the A
    // micro-panel stays in L1 while the B block streams from L2, as in the
    // unpacked schedule that reaches 96 % of peak at 256³. `reg_m`·`reg_n`
    // accumulators stay in registers over the K block; then k by 1. The n1
    // loop is peeled when `reg_n` does not divide the panel count, so the
    // last tile is a static narrower one; `reg_m` divides `tile_m`.
    // 64-bit products (`packs_64_bit`) have their own register tile width
    // (`reg_n_64`); `width_arms`' tags tell the packed ops apart.
    for (w, width_tag, rn) in [("", PACKED_32, rn), ("64", PACKED_64, p.reg_n_64)] {
        let _ = writeln!(
            s,
            "    %pk_blks{w} = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{PACKED}, {width_tag}}} in %root : (!transform.any_op) -> !transform.any_op\n\
             \x20   %pk_mn{w}, %pk_lm{w}, %pk_lm0{w}, %pk_ln{w} = transform.structured.tile_using_for %pk_blks{w} tile_sizes [1, {rn}, 0, {rm}, 0] interchange = [0, 3, 1, 2, 4] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)\n\
             \x20   %pk_k{w}, %pk_lk{w} = transform.structured.tile_using_for %pk_mn{w} tile_sizes [0, 0, 1, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
             \x20   transform.annotate %pk_k{w} \"{VEC}\" : !transform.any_op"
        );
        debug_assert!(rn > 0, "register tile {rm}×{rn} panels");
        peel_each(s, &format!("%pk_ln{w}"), "    ");
    }
    let _ = writeln!(
        s,
        "    %pk_fill = transform.structured.match ops{{[\"linalg.fill\"]}} attributes{{{PACKED}}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   %pk_ft, %pk_fl:2 = transform.structured.tile_using_for %pk_fill tile_sizes [1, 1, 0, 0] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)\n\
         \x20   transform.annotate %pk_ft \"{VEC}\" : !transform.any_op"
    );
    debug_assert!(rm > 0 && p.tile_m.is_multiple_of(rm), "register tile rows {rm}");
    // Packs become pad + expand_shape + transpose; the transposes are tiled
    // into blocks of 16 rows of K by one panel (the K loop peeled when 16
    // does not divide K). The pads stay whole-tensor copies (a zero pad
    // folds away); vectorizing one whole would make a vector the size of
    // the matrix. A is packed panel by panel (a panel's rows are read
    // sequentially); B, whose panels are column strips of a row-major
    // matrix, row block by row block: panel by panel it walked down all K
    // rows once per panel, one page per row, and W6's 16 MiB B took twice
    // as long to pack.
    for (n, (tag, order, k_loop)) in [
        (PACKED, "", "%tl#1"),
        (PACKED_B, " interchange = [1, 0, 2]", "%tl#0"),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = writeln!(
            s,
            "    %pk_packs_{n} = transform.structured.match ops{{[\"linalg.pack\"]}} attributes{{{tag}}} in %root : (!transform.any_op) -> !transform.any_op\n\
             \x20   transform.foreach %pk_packs_{n} : !transform.any_op {{\n\
             \x20   ^bb0(%p: !transform.any_op):\n\
             \x20     %p2 = transform.cast %p : !transform.any_op to !transform.op<\"linalg.pack\">\n\
             \x20     %pad, %exp, %tr = transform.structured.lower_pack %p2 : (!transform.op<\"linalg.pack\">) -> (!transform.op<\"tensor.pad\">, !transform.op<\"tensor.expand_shape\">, !transform.op<\"linalg.transpose\">)"
        );
        // A is packed once, before the blocks, by every thread: its
        // transpose is cut into chunks of `PACK_CHUNK` panels whose loop is
        // marked `PARALLEL_FOR`, so that `tensorc-outline-parallel` runs it
        // on the thread pool (a copy: the result does not depend on the
        // thread count); on one thread it took 2-3 % of W3 while the second
        // core waited. The last chunk may be short: only the panel loop
        // inside it is, the [1][16][tile_m] tiles stay static. B's packs run
        // inside the block loops, one block at a time (below).
        let tr = if n == 0 {
            let _ = writeln!(
                s,
                "      %trc, %trl = transform.structured.tile_using_for %tr tile_sizes [{PACK_CHUNK}, 0, 0] : (!transform.op<\"linalg.transpose\">) -> (!transform.any_op, !transform.any_op)\n\
                 \x20     transform.annotate %trl \"{PARALLEL_FOR}\" : !transform.any_op"
            );
            ("%trc", "!transform.any_op")
        } else {
            ("%tr", "!transform.op<\"linalg.transpose\">")
        };
        let _ = writeln!(
            s,
            "      %tt, %tl:2 = transform.structured.tile_using_for {} tile_sizes [1, {t}, 0]{order} : ({}) -> (!transform.any_op, !transform.any_op, !transform.any_op)\n\
             \x20     transform.annotate %tt \"{VEC}\" : !transform.any_op",
            tr.0, tr.1
        );
        if n == 1 {
            // B's pack of one block runs between the blocks' parallel
            // chunks: its loop over 16-row slices (each writes its own rows
            // of every panel) runs on the thread pool too.
            let _ = writeln!(
                s,
                "      transform.annotate {k_loop} \"{PARALLEL_FOR}\" : !transform.any_op"
            );
        }
        peel_each(s, k_loop, "      ");
        s.push_str("    }\n");
    }
    // Unpacks (the epilogue's fused tiles included): tiled into `tile_m`×16
    // tiles of the result (both loops peeled, so edge tiles are static) and
    // vectorized as they are, each a read of one packed C tile, a transpose
    // in registers and a write into the result. Lowered whole first
    // (`lower_unpack`: a transpose into a temporary, then a copy into the
    // result), an unpack without epilogue made two passes over C instead
    // of one.
    //
    // The loop over rows of tiles (`tile_m` rows of the result each) runs
    // on the thread pool (`PARALLEL_FOR`): each iteration reads its packed
    // C tiles and writes its own rows, static tiles with no temporary.
    // (Session 31: on one thread it was 2.9 % of 3000×1000·1000×3000's
    // samples, which pads C to 3008 columns and keeps its unpack; two
    // threads, AOT, alternated: 39.55–39.61 → 38.37–38.42 ms.) Cut into
    // row chunks of run-time size instead (an earlier try), an unpack whose
    // N is not a multiple of 16 went through a chunk-sized temporary that
    // bufferization allocated once, outside the loop, and the threads
    // raced on it (`matmul_packed_odd` failed on two threads). A loop can
    // only be marked when its body writes nothing but its own slice of the
    // result.
    let mp = p.tile_m;
    let _ = writeln!(
        s,
        "    %pk_unpacks = transform.structured.match ops{{[\"linalg.unpack\"]}} attributes{{{PACKED}}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.foreach %pk_unpacks : !transform.any_op {{\n\
         \x20   ^bb0(%up: !transform.any_op):\n\
         \x20     %ut, %ul:2 = transform.structured.tile_using_for %up tile_sizes [{mp}, {t}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)\n\
         \x20     transform.annotate %ut \"{VEC}\" : !transform.any_op"
    );
    let _ = writeln!(s, "      transform.annotate %ul#0 \"{PARALLEL_FOR}\" : !transform.any_op");
    // N then M, as in `matmul_schedule::tile_op`.
    peel_each(s, "%ul#1", "      ");
    peel_each(s, "%ul#0", "      ");
    s.push_str("    }\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_library_packs_the_tagged_matmuls_and_tags_what_it_makes() {
        let p = PackedMatmul {
            tile: 8,
            tile_m: 4,
            k_block: 128,
            n_block: 12,
            ..PackedMatmul::default()
        };
        let s = pack_schedule(p);
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        assert!(s.contains(&format!("@{PACK_ENTRY}(")));
        // M packed by tile_m, N by tile, K not at all.
        assert!(s.contains("packed_sizes = [4, 8, 0]"), "{s}");
        // The epilogue's tiles are one packed C tile; its rows of tiles
        // run on the thread pool.
        assert!(s.contains("%epi tile_sizes [4, 8]"), "{s}");
        assert!(s.contains(&format!("transform.annotate %el#0 \"{PARALLEL_FOR}\"")), "{s}");
        // N blocks, then K blocks, both peeled (K first) before the
        // parallel step, with B's pack fused into the innermost block loop
        // (in the M chunks of `PACK_M` products too); the epilogue peels
        // its two loops.
        assert!(s.contains("tile_sizes [0, 12, 128, 0, 0] :"), "{s}");
        assert_eq!(crate::matmul_schedule::peel_count(&s), 6, "{s}");
        assert!(s.find("@tensorc_peel_each failures(propagate) (%lkc)") < s.find("@tensorc_peel_each failures(propagate) (%lnb)"), "{s}");
        assert!(s.contains("fuse_into_containing_op %pb2 into %inner"), "{s}");
        assert!(s.contains("transform.apply_patterns.tensor.fold_tensor_empty"), "{s}");
        // Exactly the matmuls `pack_mark.rs` tagged are packed.
        assert!(
            s.contains(&format!("transform.structured.match ops{{[\"linalg.matmul\"]}} attributes{{{PACK}}} in %arg0")),
            "{s}"
        );
        assert!(s.contains("transform.include @tensorc_pk_pack failures(propagate) (%mm)"), "{s}");
        // A's pack and the fill or pack of C are tagged as packed, B's pack
        // with its own tag (it is lowered in another loop order), and the
        // unpack.
        assert_eq!(
            s.matches(&format!("transform.annotate %p \"{PACKED}\""))
                .count(),
            3
        );
        assert_eq!(
            s.matches(&format!("transform.annotate %p \"{PACKED_B}\""))
                .count(),
            1
        );
        assert!(s.contains("get_producer_of_operand %h[1]"), "{s}");
        assert_eq!(
            s.matches(&format!("transform.annotate %u \"{PACKED}\""))
                .count(),
            1
        );
    }

    #[test]
    fn packs_large_products_whose_b_rows_conflict_or_do_not_fit() {
        let p = PackedMatmul::default();
        // W2, W3, W6: rows of B 4, 8 and 16 KiB apart.
        assert!(p.packs(1024, 1024, 1024));
        assert!(p.packs(2048, 2048, 2048));
        assert!(p.packs(256, 4096, 1024));
        // 2000³: B (16 MB) does not fit the unpacked schedule's L3 budget.
        assert!(p.packs(2000, 2000, 2000));
        // 1536 columns: rows 6 KiB apart (unpacked 1.03× NumPy on one thread
        // but 0.80× on two; packed 0.94× and 0.92×).
        assert!(p.packs(1536, 1536, 1536));
        // Rows up to 8 bytes off 4, 8 or 12 KiB: 1022–1026, 2047, 3071
        // columns; not 1020 or 1028, nor near 6 KiB (1535), nor under
        // 4 KiB (511); when the unpacked schedule would not repitch B
        // (K over 1440: no N blocks; M under 256).
        for n in [1022, 1023, 1025, 1026, 2047, 2049, 3071, 3073] {
            assert!(p.packs(1000, n, 1500), "{n}");
            assert!(p.packs(200, n, 1000), "{n}");
        }
        for n in [1020, 1021, 1027, 1028, 1535, 1537, 511, 513] {
            assert!(!p.packs(1000, n, 1500), "{n}");
        }
        // Repitched instead: 1023³, 1000×1000·1000×1025 (but 2047 and
        // more columns over 1000 rows of B are over 7 MiB: packed).
        for n in [1022, 1023, 1025, 1026] {
            assert!(!p.packs(1000, n, 1000), "{n}");
            assert!(!p.packs(1023, n, 1023), "{n}");
        }
        assert!(p.packs(1000, 2047, 1000));
        // Strides that are not multiples of 2 KiB, or 2 KiB (512 columns),
        // B up to 12 MiB: unpacked was faster (1000³, 1500³, 768×2048×768,
        // batches of 512³).
        for (m, n, k) in [(1000, 1000, 1000), (1500, 1500, 1500), (768, 768, 2048), (512, 512, 512)] {
            assert!(!p.packs(m, n, k), "{m}x{k}x{n}");
        }
        // Too small in some dimension: W1 (256³), few rows, short K.
        assert!(!p.packs(256, 256, 256));
        assert!(!p.packs(32, 1024, 1024));
        assert!(!p.packs(1024, 1024, 32));
        // Short K with conflicting rows still packs, unless B fits in L2.
        assert!(p.packs(4096, 4096, 128));
        assert!(p.packs(2048, 2048, 200));
        assert!(!p.packs(256, 1024, 64));
        assert!(p.packs(64, 1024, 256));
    }

    #[test]
    fn threads_split_n_in_equal_static_chunks_of_at_most_one_block() {
        let p = PackedMatmul::default();
        // W2 (64 panels), W3 (128), W6 (256): chunks of one N block.
        assert_eq!(p.n_chunk(1024), Some(32));
        assert_eq!(p.n_chunk(2048), Some(32));
        assert_eq!(p.n_chunk(4096), Some(32));
        // 96 panels: three blocks would leave one thread of two idle a
        // third of the time; four chunks of 24 balance.
        assert_eq!(p.n_chunk(1536), Some(24));
        assert_eq!(p.n_chunk(1152), Some(18));
        assert_eq!(p.n_chunk(3072), Some(32));
        // Two chunks of the smallest size.
        assert_eq!(p.n_chunk(512), Some(16));
        // No even count of equal chunks in range: 125 panels (2000
        // columns), 33 panels, a padded panel, too few panels.
        for n in [2000, 528, 1030, 256, 496, 0] {
            assert_eq!(p.n_chunk(n), None, "{n}");
        }
    }

    #[test]
    fn threads_split_m_in_two_equal_chunks_only_when_n_does_not_split() {
        let p = PackedMatmul::default();
        // 2000 columns cannot split N; 250 and 128 panels of A halve into
        // chunks of at least 64 (the last panel of 1020 rows is padded).
        assert!(p.splits_m(2000, 2000));
        assert!(p.splits_m(1024, 2000));
        assert!(p.splits_m(1020, 2000));
        assert!(p.splits_m(2000, 1030));
        // N splits: the threads take N chunks instead.
        // Wide products with a B over 7 MiB (not 1500³, 9 MB but 1500
        // columns; not 2000×700·700×2000, 5.6 MB).
        assert!(p.packs(3000, 3000, 1000));
        assert!(p.packs(4000, 4000, 500));
        assert!(p.packs(1999, 2001, 1000));
        assert!(!p.packs(1500, 1500, 1500));
        assert!(!p.packs(2000, 2000, 700));
        assert!(!p.packs(1000, 1800, 1500));
        // Odd panel counts too: 129 and 375 panels.
        assert!(p.splits_m(1032, 2000));
        assert!(p.splits_m(3000, 3000));
        assert!(!p.splits_m(2048, 2048));
        // An odd number of panels (125, 127) and chunks under 64 panels.
        assert!(!p.splits_m(1000, 2000));
        assert!(!p.splits_m(1016, 2000));
        assert!(!p.splits_m(1008, 2000));
        assert!(!p.splits_m(256, 2000));
    }

    #[test]
    fn pack_library_splits_m_in_a_forall_of_blocked_chunks() {
        let s = pack_schedule(PackedMatmul::default());
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        // Tagged products are packed before the others, their packed op
        // tagged `PACKED_M` and later cut into `M_CHUNKS` chunks...
        assert!(s.contains(&format!("attributes{{{PACK_M}}} in %arg0")), "{s}");
        assert!(s.contains(&format!("transform.annotate %pkd \"{PACKED_M}\"")), "{s}");
        assert!(s.find("%to_pack_m ") < s.find("%to_pack "), "{s}");
        assert!(
            s.contains(&format!("%h num_threads [{M_CHUNKS}, 0, 0, 0, 0]")),
            "{s}"
        );
        // ... whose every chunk is blocked along N and K, with B's pack
        // fused into the chunk and then into its innermost block loop,
        // after the other products' blocks (which would block them again).
        let m = &s[s.find("foreach %pkm ").expect("M chunks")..];
        let m = &m[..m.find("\n    }\n").expect("end")];
        assert!(m.contains("fuse_into_containing_op %pb2 into %fa"), "{m}");
        assert!(m.contains("%ch tile_sizes [0, 32, 128, 0, 0]"), "{m}");
        assert!(m.contains("fuse_into_containing_op %pb3 into %inner"), "{m}");
        assert!(m.contains(&format!("transform.annotate %blk \"{PACKED}\"")), "{m}");
        assert!(s.find("foreach %pk ") < s.find("foreach %pkm "), "{s}");
    }

    #[test]
    fn pack_library_has_one_n_split_per_chunk_size() {
        let p = PackedMatmul::default();
        let s = pack_schedule(p);
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        for c in MIN_N_CHUNK..=p.n_block {
            // Products tagged with the chunk are packed first and their
            // packed op tagged with it...
            assert!(
                s.contains(&format!("attributes{{{}}} in %arg0", n_chunk_tag(c))),
                "{s}"
            );
            assert!(
                s.contains(&format!("transform.annotate %pkd \"{}\"", packed_n_tag(c))),
                "{s}"
            );
            // ... then cut into an `scf.forall` of chunks of that size.
            assert!(
                s.contains(&format!("%h tile_sizes [0, {c}, 0, 0, 0]")),
                "{s}"
            );
        }
        assert!(
            !s.contains(&format!("tensorc.pack_n{}", MIN_N_CHUNK - 1)),
            "{s}"
        );
        assert!(
            !s.contains(&format!("tensorc.pack_n{}", p.n_block + 1)),
            "{s}"
        );
        // B's pack is fused into the chunk, then into its K block loop;
        // the K loop is peeled, and the chunk's blocks become `PACKED`
        // for the second step.
        assert!(s.contains("fuse_into_containing_op %pb2 into %fa"), "{s}");
        assert!(s.contains("fuse_into_containing_op %pb3 into %lkc"), "{s}");
        assert!(
            s.contains(&format!("transform.annotate %blk \"{PACKED}\"")),
            "{s}"
        );
        // The split products are packed before the others (whose foreach
        // would take them too, as they are also tagged `PACK`), and their
        // blocks made after the others' (which would block them again).
        assert!(s.find("%to_pack_n16 ") < s.find("%to_pack "), "{s}");
        assert!(s.find("foreach %pk ") < s.find("foreach %pkn16 "), "{s}");
    }

    #[test]
    fn packed_step_uses_the_sizes_and_peels_every_partial_tile() {
        let mut s = String::new();
        add_packed(&mut s, PackedMatmul::default());
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        // A panel, its rows, then N register tiles.
        assert!(
            s.contains("tile_sizes [1, 2, 0, 8, 0] interchange = [0, 3, 1, 2, 4] :"),
            "{s}"
        );
        // A's pack panel by panel, B's row block by row block.
        assert!(s.contains("tile_sizes [1, 16, 0] :"), "{s}");
        assert!(s.contains("tile_sizes [1, 16, 0] interchange = [1, 0, 2] :"), "{s}");
        // Unpacks in tile_m×16 tiles of the result.
        assert!(s.contains("%up tile_sizes [8, 16]"), "{s}");
        // 64-bit packed ops: one panel per register tile; each width
        // matched by its tag.
        assert!(s.contains("%pk_blks64 tile_sizes [1, 1, 0, 8, 0] interchange = [0, 3, 1, 2, 4] :"), "{s}");
        assert!(s.contains(&format!("attributes{{{PACKED}, {PACKED_32}}}")), "{s}");
        assert!(s.contains(&format!("attributes{{{PACKED}, {PACKED_64}}}")), "{s}");
        // Register tiles (N/16) of each width, both packs' K loops, the
        // unpack tiles' N and M loops.
        assert_eq!(crate::matmul_schedule::peel_count(&s), 6);
        // A's pack and B's block packs run in chunks on the thread pool,
        // and the unpack's rows of tiles: their loops are marked for
        // `tensorc-outline-parallel`.
        assert_eq!(s.matches(&format!("\"{PARALLEL_FOR}\"")).count(), 3, "{s}");
        assert!(s.contains(&format!("transform.annotate %ul#0 \"{PARALLEL_FOR}\"")), "{s}");
        assert!(s.contains("%tr tile_sizes [8, 0, 0] :"), "{s}");
        assert!(s.contains("@tensorc_peel_each failures(propagate) (%pk_ln)"), "{s}");
        // Packed ops of each width, fill, both packs' transposes, unpack
        // tiles.
        assert_eq!(s.matches(&format!("\"{VEC}\"")).count(), 6);
    }

    #[test]
    fn width_arms_tag_packed_ops_by_element_width() {
        let mut s = String::new();
        let arms = width_arms(&mut s);
        assert_eq!(arms, ["@tensorc_pk_w32 -> @tensorc_pk_tag32", "@tensorc_pk_w64 -> @tensorc_pk_tag64"]);
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        assert!(s.contains(&format!("transform.annotate %op \"{PACKED_64}\"")), "{s}");
        assert!(s.contains("%bits = transform.param.constant 32 "), "{s}");
        assert!(s.contains("transform.match.structured.dim %s[2] {reduction}"), "{s}");
    }

    /// 64-bit products pack on AVX2 only, with B's bytes at 8 per element:
    /// AVX2 packs every product past the sizes, so 64-bit ones pack where
    /// 32-bit ones do; AVX-512's 1000×1000·1000×512 B conflicts at 8 bytes
    /// per element (4 KiB rows), not at 4.
    #[test]
    fn products_of_64_bit_elements_pack_on_avx2() {
        use crate::pipeline::VectorIsa;
        let (wide, narrow) = (PackedMatmul::for_isa(VectorIsa::Avx512), PackedMatmul::for_isa(VectorIsa::Avx2));
        assert!(narrow.packs_bits(1024, 1024, 1024, 64) && narrow.packs_bits(1000, 1000, 700, 64));
        assert!(!narrow.packs_bits(32, 1024, 1024, 64) && !narrow.packs_bits(1024, 1024, 1024, 16));
        assert!(!wide.packs_bits(1024, 1024, 1024, 64) && wide.packs_bits(1024, 1024, 1024, 32));
        let wide_64 = PackedMatmul { packs_64_bit: true, ..wide };
        assert!(wide_64.packs_bits(1000, 512, 1000, 64) && !wide_64.packs_bits(1000, 512, 1000, 32));
    }
}

//! The transform-dialect schedule for channels-last convolutions on the CPU
//! (`linalg.conv_2d_nhwc_hwcf`, `linalg.conv_1d_nwc_wcf` and
//! `linalg.depthwise_conv_2d_nhwc_hwc`, the named ops `frontend/conv.rs`
//! emits for plain and depthwise convolutions in any layout, transposing
//! the others into and out of channels-last; W9).
//!
//! Why: lowered to loops, a convolution is a scalar seven-deep loop nest
//! (W9 ran at 3.7 GFLOPS). MLIR's vectorizer handles only 1-D convolutions,
//! so the schedule brings every convolution down to small 1-D ones: the
//! output is tiled into register tiles of `ow` output columns × `f` output
//! channels for one image row (batch and output row by 1), the filter's
//! spatial loops are tiled by 1 (depthwise: its rows only, see `KINDS`),
//! and `structured.decompose` rewrites the
//! 2-D tile (now one output row and one filter row) as a 1-D convolution.
//! The vectorizer turns that into `vector.contract`s (or, depthwise,
//! `ow`×`f` multiply-adds), which the
//! outer-product lowering makes broadcasts and FMAs into an `ow`×`f`
//! accumulator tile. The `ow` and `f` loops are peeled so remainder tiles
//! are static and vectorize too.
//!
//! The 1-D tiles then take the input channels one at a time (an 8×1·1×32
//! contraction per step, its accumulator carried in registers through the
//! channel and tap loops), after tiles of 17..31 channels were split into
//! 16 + rest (see `split_wide_remainders`).
//!
//! Convolutions with few output channels over wide rows come as a
//! channel-major generic instead (`CHANNEL_MAJOR`, the frontend's
//! `channel_major`): their register tiles run the vectors along the output
//! columns, every output channel × 32 columns of one row
//! (`add_channel_major`, `vectorize_channel_major`).
//!
//! Ops with an empty or dynamic loop keep the scalar lowering; each tile is
//! vectorized in its own `failures(suppress)` sequence. The frontend emits
//! every 1-D and 2-D convolution channels-last (`scheduled_ops`); 3-D ones
//! and 1-D depthwise ones are not scheduled yet.

use std::fmt::Write as _;

use crate::elementwise_schedule::{Library, nonempty_dims, peel_each, vectorize_each};

/// Register tile of the convolution schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTiles {
    /// Output columns per tile.
    pub ow: u32,
    /// Output channels per tile (a multiple of `lanes`).
    pub f: u32,
    /// Input channels per step of the reduction over them.
    pub c: u32,
    /// f32 lanes of one vector register of the target (16 for AVX-512, 8
    /// for AVX2; `matmul_schedule.rs` splits at the same width for the
    /// same reason).
    pub lanes: u32,
    /// Output columns per register tile of a channel-major convolution
    /// (`CHANNEL_MAJOR`): one row of registers per output channel, so at
    /// the frontend's limit of 12 channels 12 × `cm_columns` / `lanes`
    /// accumulators (AVX-512: two zmm per channel, 24; 16 channels, 32
    /// accumulators, spilled).
    pub cm_columns: u32,
}

impl Default for ConvTiles {
    /// 8 columns × 32 channels: 16 zmm accumulators, the matmul kernel's
    /// register tile (cpu-pipeline.md §1.3 (b1)).
    fn default() -> Self {
        ConvTiles { ow: 8, f: 32, c: 1, lanes: 16, cm_columns: 32 }
    }
}

impl ConvTiles {
    /// The register tiles for `isa`: AVX-512's default, or for AVX2 (16
    /// ymm registers) 6 columns × 16 channels (12 accumulators, like the
    /// matmul's 6×16) and channel-major tiles of 8 columns (one ymm per
    /// channel, 12 at most).
    pub fn for_isa(isa: crate::pipeline::VectorIsa) -> Self {
        match isa {
            crate::pipeline::VectorIsa::Avx512 => Self::default(),
            crate::pipeline::VectorIsa::Avx2 => ConvTiles { ow: 6, f: 16, c: 1, lanes: 8, cm_columns: 8 },
        }
    }
}

/// One scheduled convolution op: its name, the number of loops, which loop
/// is the output column and which the output channel, the filter's spatial
/// loops (tiled by 1), and whether the tile must be decomposed to 1-D.
struct ConvKind {
    op: &'static str,
    id: &'static str,
    rank: usize,
    ow: usize,
    f: usize,
    window: &'static [usize],
    decompose: bool,
}

const KINDS: &[ConvKind] = &[
    // (n, oh, ow, f, kh, kw, c)
    ConvKind {
        op: "linalg.conv_2d_nhwc_hwcf",
        id: "c2",
        rank: 7,
        ow: 2,
        f: 3,
        window: &[4, 5],
        decompose: true,
    },
    // (n, ow, f, kw, c)
    ConvKind {
        op: "linalg.conv_1d_nwc_wcf",
        id: "c1",
        rank: 5,
        ow: 1,
        f: 2,
        window: &[3],
        decompose: false,
    },
    // (n, oh, ow, c, kh, kw): only the filter rows tiled by 1 (the
    // decomposition needs one), the taps of a row left in the 1-D tile,
    // whose vectorized form then reads and writes its accumulators once
    // per filter row instead of once per tap (one thread: 2×57×57×64
    // depthwise 0.101 → 0.069 ms, 63 channels 0.175 → 0.104 ms).
    ConvKind {
        op: "linalg.depthwise_conv_2d_nhwc_hwc",
        id: "dw2",
        rank: 6,
        ow: 2,
        f: 3,
        window: &[4],
        decompose: true,
    },
];

/// The named ops this schedule tiles and vectorizes; the frontend emits
/// channels-last convolutions in exactly these forms whatever the tensors'
/// layouts (`frontend/conv.rs` `channels_last_scheduled`).
pub fn scheduled_ops() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.op)
}

/// The tag of convolution ops (and their tiles).
const TAG: &str = "tensorc.conv";

/// Adds the convolution matchers and the tiling, peeling and decomposition
/// to `lib`. The 1-D tiles are vectorized by `vectorize_convs`, after the
/// caller has canonicalized the tile sizes.
pub fn add_convs(lib: &mut Library, tiles: ConvTiles) {
    for k in KINDS {
        lib.tagging_matcher(
            &format!("tensorc_k_{}", k.id),
            k.op,
            &nonempty_dims(k.rank),
            TAG,
        );
    }
    // After the ops' own matchers: `foreach_match` applies only the first
    // matcher that succeeds, and the original ops must get `TAG`.
    add_mid_matchers(lib, tiles);
    let body = lib.body();
    for k in KINDS {
        let id = k.id;
        // Output tile: every loop before the channel loop by 1 except the
        // column loop; reduction loops untiled.
        let outer: Vec<String> = (0..k.rank)
            .map(|d| match d {
                d if d == k.ow => tiles.ow.to_string(),
                d if d == k.f => tiles.f.to_string(),
                d if d < k.f.max(k.ow) => "1".to_owned(),
                _ => "0".to_owned(),
            })
            .collect();
        let n_outer = k.f.max(k.ow) + 1;
        let window: Vec<&str> = (0..k.rank)
            .map(|d| if k.window.contains(&d) { "1" } else { "0" })
            .collect();
        let nw = k.window.len();
        let _ = writeln!(
            body,
            "    %{id} = transform.structured.match ops{{[\"{op}\"]}} attributes{{{TAG}}} in %root : (!transform.any_op) -> !transform.any_op\n\
             \x20   %{id}_t, %{id}_l:{n_outer} = transform.structured.tile_using_for %{id} tile_sizes [{outer}] : (!transform.any_op) -> ({lt})\n\
             \x20   %{id}_w, %{id}_wl:{nw} = transform.structured.tile_using_for %{id}_t tile_sizes [{window}] : (!transform.any_op) -> ({wt})",
            op = k.op,
            outer = outer.join(", "),
            lt = vec!["!transform.any_op"; n_outer + 1].join(", "),
            window = window.join(", "),
            wt = vec!["!transform.any_op"; nw + 1].join(", "),
        );
        // Peel the inner of the two tiled output loops first: peeling
        // consumes only the loop it is given, so the outer handle stays valid.
        peel_each(body, &format!("{id}_l#{}", k.f.max(k.ow)));
        peel_each(body, &format!("{id}_l#{}", k.f.min(k.ow)));
    }
    add_channel_major(body, tiles);
}

/// The attribute of the channel-major convolution generics the frontend
/// emits for 2-D convolutions with few output channels
/// (`tensorc_frontend` `conv.rs`, `channel_major`): loops `(n, f, oh, ow,
/// c, kh, kw)` over an NCHW input, an OIHW kernel and an NCHW result, the
/// output columns at stride 1.
pub const CHANNEL_MAJOR: &str = "tensorc.conv_cm";

/// Appends the tiling of the channel-major convolutions (`CHANNEL_MAJOR`)
/// into register tiles of every output channel × `tiles.cm_columns`
/// columns of one output row, the column loop peeled so the full tiles
/// are static, and the remainder tile (fewer columns) likewise cut into
/// `tiles.lanes` columns and a rest: LLVM made a remainder of 24 columns (56
/// columns) element by element through the stack, which took most of the
/// convolution's time.
fn add_channel_major(body: &mut String, tiles: ConvTiles) {
    let (columns, lanes) = (tiles.cm_columns, tiles.lanes);
    // The remainder is cut only when it can hold a whole register of
    // columns, and only when there is one: when the tile width divides the
    // row, the peel leaves no remainder loop, and a match in the empty
    // handle is a definite error that `failures(suppress)` does not catch
    // (64 columns were an internal error).
    let remainder = if columns > lanes {
        format!(
            "\x20       transform.foreach %crest : !transform.any_op {{\n\
             \x20       ^bb2(%cr: !transform.any_op):\n\
             \x20         %crg = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{CHANNEL_MAJOR}}} in %cr : (!transform.any_op) -> !transform.any_op\n\
             \x20         %crg_t, %crg_l = transform.structured.tile_using_for %crg tile_sizes [0, 0, 0, {lanes}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n\
             \x20         %crfor = transform.cast %crg_l : !transform.any_op to !transform.op<\"scf.for\">\n\
             \x20         %crmain, %crrest = transform.loop.peel %crfor : (!transform.op<\"scf.for\">) -> (!transform.any_op, !transform.any_op)\n\
             \x20       }}\n"
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        body,
        "    %cm = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{CHANNEL_MAJOR}}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   %cm_t, %cm_l:3 = transform.structured.tile_using_for %cm tile_sizes [1, 0, 1, {columns}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)\n\
         \x20   transform.foreach %cm_l#2 : !transform.any_op {{\n\
         \x20   ^bb0(%cl: !transform.any_op):\n\
         \x20     transform.sequence %cl : !transform.any_op failures(suppress) {{\n\
         \x20     ^bb1(%cl2: !transform.any_op):\n\
         \x20       %cfor = transform.cast %cl2 : !transform.any_op to !transform.op<\"scf.for\">\n\
         \x20       %cmain, %crest = transform.loop.peel %cfor : (!transform.op<\"scf.for\">) -> (!transform.any_op, !transform.any_op)\n\
         {remainder}\x20     }}\n\
         \x20   }}"
    );
}

/// Appends the vectorization of each channel-major register tile: its
/// input channel and kernel taps tiled by 1, the unit loops folded away
/// (the input's map `d3 + d6` becomes a plain column, which the vectorizer
/// needs), then every output channel's accumulator row gets a broadcast of
/// the channel's tap times one row of the input per step; the accumulators
/// are hoisted out of the loops with the others (`hoist_accumulators`).
fn vectorize_channel_major(body: &mut String) {
    let _ = writeln!(
        body,
        "    %cmv = transform.structured.match ops{{[\"linalg.generic\"]}} attributes{{{CHANNEL_MAJOR}}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   transform.foreach %cmv : !transform.any_op {{\n\
         \x20   ^bb0(%cg: !transform.any_op):\n\
         \x20     transform.sequence %cg : !transform.any_op failures(suppress) {{\n\
         \x20     ^bb1(%cg2: !transform.any_op):\n\
         \x20       %cmr, %cmr_l:3 = transform.structured.tile_using_for %cg2 tile_sizes [0, 0, 0, 0, 1, 1, 1] : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op, !transform.any_op)\n\
         \x20       transform.apply_patterns to %cmr_l#2 {{\n\
         \x20         transform.apply_patterns.linalg.fold_unit_extent_dims_via_slices\n\
         \x20         transform.apply_patterns.canonicalization\n\
         \x20       }} : !transform.any_op\n\
         \x20       %cmg = transform.structured.match ops{{[\"linalg.generic\"]}} in %cmr_l#2 : (!transform.any_op) -> !transform.any_op\n\
         \x20       transform.structured.vectorize %cmg : !transform.any_op\n\
         \x20     }}\n\
         \x20   }}"
    );
}

/// Appends the decomposition of the 2-D tiles to 1-D convolutions and the
/// vectorization of every convolution tile. Decomposition needs static unit
/// sizes, so this runs after the caller has canonicalized the peeled tiles.
pub fn vectorize_convs(lib: &mut Library, tiles: ConvTiles) {
    let body = lib.body();
    for k in KINDS {
        let id = k.id;
        let _ = writeln!(
            body,
            "    %{id}v = transform.structured.match ops{{[\"{op}\"]}} attributes{{{TAG}}} in %root : (!transform.any_op) -> !transform.any_op",
            op = k.op
        );
        if k.decompose {
            // One decomposition per tile, each allowed to fail (a tile whose
            // sizes did not fold to 1 stays 2-D and is lowered to loops).
            let _ = writeln!(
                body,
                "    transform.foreach %{id}v : !transform.any_op {{\n\
                 \x20   ^bb0(%cv: !transform.any_op):\n\
                 \x20     transform.sequence %cv : !transform.any_op failures(suppress) {{\n\
                 \x20     ^bb1(%cv2: !transform.any_op):\n\
                 \x20       %c1d = transform.structured.decompose %cv2 : (!transform.any_op) -> !transform.any_op\n\
                 \x20       transform.annotate %c1d \"{TAG}1d\" : !transform.any_op\n\
                 \x20     }}\n\
                 \x20   }}"
            );
        } else {
            let _ = writeln!(
                body,
                "    transform.annotate %{id}v \"{TAG}1d\" : !transform.any_op"
            );
        }
    }
    split_wide_remainders(body, tiles);
    // The input channels of each 1-D tile by `tiles.c`, after the
    // decomposition: tiled before it, the loop carried the 2-D tile while its
    // body wrote a rank-reduced slice of it, a read/write pair that
    // `hoist_loop_invariant_subsets` does not match, and the accumulators
    // went through memory on every step.
    let _ = writeln!(
        body,
        "    %c1c = transform.structured.match ops{{[\"linalg.conv_1d_nwc_wcf\"]}} attributes{{{TAG}1d}} in %root : (!transform.any_op) -> !transform.any_op\n\
         \x20   %c1c_t, %c1c_l = transform.structured.tile_using_for %c1c tile_sizes [0, 0, 0, 0, {}] : (!transform.any_op) -> (!transform.any_op, !transform.any_op)",
        tiles.c
    );
    let _ = writeln!(
        body,
        "    %convv = transform.structured.match attributes{{{TAG}1d}} in %root : (!transform.any_op) -> !transform.any_op"
    );
    vectorize_each(body, "convv");
    vectorize_channel_major(body);
}

/// The 1-D tiles with a channel loop (loop 2 of both) and their matcher ids.
const ONE_D: [(&str, &str); 2] = [
    ("linalg.conv_1d_nwc_wcf", "c1"),
    ("linalg.depthwise_conv_1d_nwc_wc", "dw1"),
];

/// The tag of 1-D tiles whose channel loop is strictly between one
/// register and the tile width.
const MID: &str = "tensorc.conv_mid";

/// Adds the matchers `split_wide_remainders` runs on the 1-D tiles. The
/// library also runs them first, on the original ops: a 1-D convolution
/// with 17..31 channels is one such tile.
fn add_mid_matchers(lib: &mut Library, tiles: ConvTiles) {
    for (op, id) in ONE_D {
        let predicates = format!(
            "      %ch = transform.match.structured.dim %s[2] : (!transform.any_op) -> !transform.param<i64>\n\
             \x20     %lo = transform.param.constant {} : i64 -> !transform.param<i64>\n\
             \x20     %hi = transform.param.constant {} : i64 -> !transform.param<i64>\n\
             \x20     transform.match.param.cmpi gt %ch, %lo : !transform.param<i64>\n\
             \x20     transform.match.param.cmpi lt %ch, %hi : !transform.param<i64>\n",
            tiles.lanes, tiles.f
        );
        lib.tagging_matcher(&format!("tensorc_mid_{id}"), op, &predicates, MID);
    }
}

/// Appends the splitting of every 1-D tile whose channel loop is strictly
/// between one register and the tile width into `tiles.lanes` channels and
/// the rest, once per further register the width allows. LLVM legalizes a
/// `vector<17..31xf32>` element by element with the accumulators on the
/// stack: 56 output channels (32 + 24) ran at 18 ms where 64 took 0.9 ms.
/// The sizes are tested by matchers (`foreach_match` over the functions):
/// match ops inside a sequence do not stop it. Split before the input
/// channels are tiled, so each part carries its own accumulators through
/// its loop (split inside it, the parts wrote rank-reduced slices of the
/// loop's tile and nothing was hoisted).
fn split_wide_remainders(body: &mut String, tiles: ConvTiles) {
    let arms: Vec<String> = ONE_D
        .iter()
        .map(|(_, id)| format!("@tensorc_mid_{id} -> @tensorc_mid_{id}_tag"))
        .collect();
    let lanes = tiles.lanes;
    for pass in 0..tiles.f.saturating_sub(1) / lanes {
        let _ = writeln!(
            body,
            "    %cm{pass}f = transform.structured.match ops{{[\"func.func\"]}} in %root : (!transform.any_op) -> !transform.any_op\n\
             \x20   %cm{pass}u = transform.foreach_match in %cm{pass}f\n\
             \x20       {}\n\
             \x20       : (!transform.any_op) -> !transform.any_op\n\
             \x20   %cm{pass} = transform.structured.match attributes{{{MID}}} in %root : (!transform.any_op) -> !transform.any_op\n\
             \x20   transform.foreach %cm{pass} : !transform.any_op {{\n\
             \x20   ^bb0(%t: !transform.any_op):\n\
             \x20     transform.sequence %t : !transform.any_op failures(suppress) {{\n\
             \x20     ^bb1(%t2: !transform.any_op):\n\
             \x20       %parts = transform.structured.split %t2 after {lanes} {{dimension = 2}} : !transform.any_op\n\
             \x20     }}\n\
             \x20   }}",
            arms.join(",\n        ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_tiles_and_unit_filter_taps() {
        let mut lib = Library::default();
        add_convs(&mut lib, ConvTiles { ow: 4, f: 16, c: 1, ..ConvTiles::default() });
        vectorize_convs(&mut lib, ConvTiles { ow: 4, f: 16, c: 1, ..ConvTiles::default() });
        let s = lib.finish();
        // conv_2d_nhwc_hwcf: (n, oh, ow, f, kh, kw, c)
        assert!(s.contains("tile_sizes [1, 1, 4, 16, 0, 0, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 0, 0, 1, 1, 0]"), "{s}");
        // conv_1d_nwc_wcf: (n, ow, f, kw, c)
        assert!(s.contains("tile_sizes [1, 4, 16, 0, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 0, 1, 0]"), "{s}");
        // depthwise_conv_2d_nhwc_hwc: (n, oh, ow, c, kh, kw), the kw taps
        // left in the tile.
        assert!(s.contains("tile_sizes [1, 1, 4, 16, 0, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 0, 0, 1, 0]"), "{s}");
        assert_eq!(s.matches("transform.structured.decompose").count(), 2);
        // Two per kind, and the channel-major column loop and its
        // remainder's 16 columns.
        assert_eq!(crate::matmul_schedule::peel_count(&s), 2 * KINDS.len() + 2);
        // The input channels of the 1-D tiles (n, ow, f, kw, c) one at a time.
        assert!(s.contains("tile_sizes [0, 0, 0, 0, 1]"), "{s}");
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    #[test]
    fn channel_major_tiles_are_every_channel_by_32_columns() {
        let mut lib = Library::default();
        add_convs(&mut lib, ConvTiles::default());
        vectorize_convs(&mut lib, ConvTiles::default());
        let s = lib.finish();
        // (n, f, oh, ow, c, kh, kw): one row, every channel, 32 columns;
        // the remainder by 16; then input channels and taps by 1.
        assert!(s.contains(&format!("attributes{{{CHANNEL_MAJOR}}} in %root")), "{s}");
        assert!(s.contains("tile_using_for %cm tile_sizes [1, 0, 1, 32] "), "{s}");
        assert!(s.contains("tile_using_for %crg tile_sizes [0, 0, 0, 16] "), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 0, 0, 1, 1, 1] "), "{s}");
        assert!(s.contains("fold_unit_extent_dims_via_slices"), "{s}");
        // Tiled before the vectorization of every tile.
        assert!(s.find("%cm_t,").unwrap() < s.find("%cmv =").unwrap(), "{s}");
    }

    #[test]
    fn tiles_between_one_and_two_registers_wide_are_split() {
        let mut lib = Library::default();
        let tiles = ConvTiles::default();
        add_convs(&mut lib, tiles);
        vectorize_convs(&mut lib, tiles);
        let s = lib.finish();
        // Channels strictly between 16 and 32, for both 1-D kinds.
        for (_, id) in ONE_D {
            assert!(s.contains(&format!("@tensorc_mid_{id}(")), "{s}");
            assert!(s.contains(&format!("@tensorc_mid_{id} -> @tensorc_mid_{id}_tag")), "{s}");
        }
        assert!(s.contains("%hi = transform.param.constant 32 "), "{s}");
        assert_eq!(s.matches("split %t2 after 16 {dimension = 2}").count(), 1, "{s}");
        // The ops' own matchers come first in the library's foreach_match.
        let first = s.find("@tensorc_k_c1 -> ").unwrap();
        assert!(first < s.find("@tensorc_mid_c1 -> ").unwrap(), "{s}");
        // Split before the input channels are tiled.
        assert!(s.find("split %t2").unwrap() < s.find("tile_sizes [0, 0, 0, 0, 1]").unwrap());
        // A 64-wide tile can leave 17..63 channels: three passes.
        let mut wide = Library::default();
        let tiles = ConvTiles { f: 64, ..tiles };
        add_convs(&mut wide, tiles);
        vectorize_convs(&mut wide, tiles);
        assert_eq!(wide.finish().matches("transform.structured.split").count(), 3);
    }
}

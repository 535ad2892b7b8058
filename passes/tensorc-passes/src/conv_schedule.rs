//! The transform-dialect schedule for channels-last convolutions on the CPU
//! (`linalg.conv_2d_nhwc_hwcf`, `linalg.conv_1d_nwc_wcf` and
//! `linalg.depthwise_conv_2d_nhwc_hwc`, the named ops `frontend/conv.rs`
//! emits for plain and depthwise convolutions in NHWC layout; W9).
//!
//! Why: lowered to loops, a convolution is a scalar seven-deep loop nest
//! (W9 ran at 3.7 GFLOPS). MLIR's vectorizer handles only 1-D convolutions,
//! so the schedule brings every convolution down to small 1-D ones: the
//! output is tiled into register tiles of `ow` output columns × `f` output
//! channels for one image row (batch and output row by 1), the filter's
//! spatial loops are tiled by 1, and `structured.decompose` rewrites the
//! 2-D tile (now one output row and one filter row) as a 1-D convolution.
//! The vectorizer turns that into one `ow`×C · C×`f` `vector.contract`
//! per filter tap (or, depthwise, `ow`×`f` multiply-adds), which the
//! outer-product lowering makes broadcasts and FMAs into an `ow`×`f`
//! accumulator tile. The `ow` and `f` loops are peeled so remainder tiles
//! are static and vectorize too.
//!
//! Ops with an empty or dynamic loop keep the scalar lowering; each tile is
//! vectorized in its own `failures(suppress)` sequence. Channels-first
//! convolutions and 3-D ones are not scheduled yet.

use std::fmt::Write as _;

use crate::elementwise_schedule::{Library, nonempty_dims, peel_each, vectorize_each};

/// Register tile of the convolution schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTiles {
    /// Output columns per tile.
    pub ow: u32,
    /// Output channels per tile (a multiple of the 16-lane f32 vector).
    pub f: u32,
}

impl Default for ConvTiles {
    /// 8 columns × 32 channels: 16 zmm accumulators, the matmul kernel's
    /// register tile (cpu-pipeline.md §1.3 (b1)).
    fn default() -> Self {
        ConvTiles { ow: 8, f: 32 }
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
    // (n, oh, ow, c, kh, kw)
    ConvKind {
        op: "linalg.depthwise_conv_2d_nhwc_hwc",
        id: "dw2",
        rank: 6,
        ow: 2,
        f: 3,
        window: &[4, 5],
        decompose: true,
    },
];

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
        let _ = writeln!(
            body,
            "    %{id} = transform.structured.match ops{{[\"{op}\"]}} attributes{{{TAG}}} in %root : (!transform.any_op) -> !transform.any_op\n\
             \x20   %{id}_t, %{id}_l:{n_outer} = transform.structured.tile_using_for %{id} tile_sizes [{outer}] : (!transform.any_op) -> ({lt})\n\
             \x20   %{id}_w, %{id}_wl:{nw} = transform.structured.tile_using_for %{id}_t tile_sizes [{window}] : (!transform.any_op) -> ({wt})",
            op = k.op,
            outer = outer.join(", "),
            lt = vec!["!transform.any_op"; n_outer + 1].join(", "),
            nw = k.window.len(),
            window = window.join(", "),
            wt = vec!["!transform.any_op"; k.window.len() + 1].join(", "),
        );
        // Peel the inner of the two tiled output loops first: peeling
        // consumes only the loop it is given, so the outer handle stays valid.
        peel_each(body, &format!("{id}_l#{}", k.f.max(k.ow)));
        peel_each(body, &format!("{id}_l#{}", k.f.min(k.ow)));
    }
}

/// Appends the decomposition of the 2-D tiles to 1-D convolutions and the
/// vectorization of every convolution tile. Decomposition needs static unit
/// sizes, so this runs after the caller has canonicalized the peeled tiles.
pub fn vectorize_convs(lib: &mut Library) {
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
    let _ = writeln!(
        body,
        "    %convv = transform.structured.match attributes{{{TAG}1d}} in %root : (!transform.any_op) -> !transform.any_op"
    );
    vectorize_each(body, "convv");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_tiles_and_unit_filter_taps() {
        let mut lib = Library::default();
        add_convs(&mut lib, ConvTiles { ow: 4, f: 16 });
        vectorize_convs(&mut lib);
        let s = lib.finish();
        // conv_2d_nhwc_hwcf: (n, oh, ow, f, kh, kw, c)
        assert!(s.contains("tile_sizes [1, 1, 4, 16, 0, 0, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 0, 0, 1, 1, 0]"), "{s}");
        // conv_1d_nwc_wcf: (n, ow, f, kw, c)
        assert!(s.contains("tile_sizes [1, 4, 16, 0, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 0, 1, 0]"), "{s}");
        // depthwise_conv_2d_nhwc_hwc: (n, oh, ow, c, kh, kw)
        assert!(s.contains("tile_sizes [1, 1, 4, 16, 0, 0]"), "{s}");
        assert!(s.contains("tile_sizes [0, 0, 0, 0, 1, 1]"), "{s}");
        assert_eq!(s.matches("transform.structured.decompose").count(), 2);
        assert_eq!(s.matches("transform.loop.peel").count(), 2 * KINDS.len());
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }
}

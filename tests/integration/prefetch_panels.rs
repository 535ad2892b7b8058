//! `tensorc-prefetch-panels` (`passes/tensorc-passes/src/prefetch_panels.rs`):
//! a register tile loop over one panel of A prefetches the next panel, a
//! slice per tile.
//!
//! - the pass before and after on buffer-level loop nests it rewrites (a
//!   packed A panel under an `scf.for` of panels, and under an
//!   `scf.forall` of one-panel chunks) and on ones it must leave alone (a
//!   read of several rows, a short k loop, a read that moves with the tile,
//!   one that stays on one panel, a strided one, a k loop with no tile loop
//!   around it), by snapshot and by the prefetches' indices; and a K-block
//!   loop whose tiles also prefetch the next block's slice of B;
//! - interpreter-vs-CPU runs, on one and two threads, of packed matmuls
//!   that get the prefetches (M not a multiple of the panel, so the last
//!   panel's clamped prefetch is exercised; K in several blocks; a batch;
//!   the bias + relu epilogue);
//! - the pass fires in the CPU pipeline on W3's packed tiles.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

/// One function per case. `%a` is the packed A (`[panels][k][8]`), `%b`
/// the packed B block (`[tiles][k][16]`).
const NESTS: &str = r#"
#row = affine_map<(d0)[s0] -> (d0 * 4 + s0)>
module {
  // The packed schedule: panels of a four-panel chunk, 16 tiles of two B
  // panels, 256 steps of k in the K block at %kb.
  func.func @packed(%a: memref<64x1024x8xf32>, %b: memref<32x256x16xf32>, %chunk: index, %kb: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c32 = arith.constant 32 : index
    %c256 = arith.constant 256 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<16xf32>
    scf.for %i = %c0 to %c4 step %c1 {
      %panel = affine.apply #row(%chunk)[%i]
      scf.for %j = %c0 to %c32 step %c2 {
        %s = scf.for %k = %c0 to %c256 step %c1 iter_args(%acc = %z) -> (vector<16xf32>) {
          %kk = arith.addi %kb, %k : index
          %x = vector.transfer_read %a[%panel, %kk, %c0], %p {in_bounds = [true]} : memref<64x1024x8xf32>, vector<8xf32>
          %y = vector.transfer_read %b[%j, %k, %c0], %p {in_bounds = [true]} : memref<32x256x16xf32>, vector<16xf32>
          %e = vector.extract %x[0] : f32 from vector<8xf32>
          %xb = vector.broadcast %e : f32 to vector<16xf32>
          %f = vector.fma %xb, %y, %acc : vector<16xf32>
          scf.yield %f : vector<16xf32>
        }
        vector.transfer_write %s, %b[%j, %c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<32x256x16xf32>
      }
    }
    return
  }
  // A parallel loop whose chunks are single panels (W6: 32 panels).
  func.func @chunks(%a: memref<32x1024x8xf32>, %b: memref<32x256x16xf32>, %kb: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c32 = arith.constant 32 : index
    %c256 = arith.constant 256 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<16xf32>
    scf.forall (%i) in (32) {
      scf.for %j = %c0 to %c32 step %c2 {
        %s = scf.for %k = %c0 to %c256 step %c1 iter_args(%acc = %z) -> (vector<16xf32>) {
          %kk = arith.addi %kb, %k : index
          %x = vector.transfer_read %a[%i, %kk, %c0], %p {in_bounds = [true]} : memref<32x1024x8xf32>, vector<8xf32>
          %y = vector.transfer_read %b[%j, %k, %c0], %p {in_bounds = [true]} : memref<32x256x16xf32>, vector<16xf32>
          %e = vector.extract %x[0] : f32 from vector<8xf32>
          %xb = vector.broadcast %e : f32 to vector<16xf32>
          %f = vector.fma %xb, %y, %acc : vector<16xf32>
          scf.yield %f : vector<16xf32>
        }
        vector.transfer_write %s, %b[%j, %c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<32x256x16xf32>
      }
    }
    return
  }
  // The packed schedule's K-block loop: each block packs a 256×512 slice
  // of B (`%src`, read through a view that slides with the block; its
  // column offset is a constant), then a parallel loop of four-panel
  // chunks runs the tiles over it.
  func.func @blocks(%a: memref<64x1024x8xf32>, %src: memref<1024x2048xf32>, %pb: memref<256x512xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c4 = arith.constant 4 : index
    %c32 = arith.constant 32 : index
    %c256 = arith.constant 256 : index
    %c1024 = arith.constant 1024 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<16xf32>
    scf.for %kb = %c0 to %c1024 step %c256 {
      %v = memref.subview %src[%kb, 512] [256, 512] [1, 1] : memref<1024x2048xf32> to memref<256x512xf32, strided<[2048, 1], offset: ?>>
      memref.copy %v, %pb : memref<256x512xf32, strided<[2048, 1], offset: ?>> to memref<256x512xf32>
      scf.forall (%ch) in (16) {
        scf.for %i = %c0 to %c4 step %c1 {
          %panel = affine.apply #row(%ch)[%i]
          scf.for %j = %c0 to %c32 step %c2 {
            %s = scf.for %k = %c0 to %c256 step %c1 iter_args(%acc = %z) -> (vector<16xf32>) {
              %kk = arith.addi %kb, %k : index
              %x = vector.transfer_read %a[%panel, %kk, %c0], %p {in_bounds = [true]} : memref<64x1024x8xf32>, vector<8xf32>
              %y = vector.transfer_read %pb[%k, %j], %p {in_bounds = [true]} : memref<256x512xf32>, vector<16xf32>
              %e = vector.extract %x[0] : f32 from vector<8xf32>
              %xb = vector.broadcast %e : f32 to vector<16xf32>
              %f = vector.fma %xb, %y, %acc : vector<16xf32>
              scf.yield %f : vector<16xf32>
            }
            vector.transfer_write %s, %pb[%c0, %j] {in_bounds = [true]} : vector<16xf32>, memref<256x512xf32>
          }
        }
      }
    }
    return
  }
  // Left alone: the unpacked schedule's 8×1 column of A (eight rows, each
  // a stream the hardware prefetchers follow).
  func.func @rows(%a: memref<64x256xf32>, %b: memref<256x64xf32>) {
    %c0 = arith.constant 0 : index
    %c8 = arith.constant 8 : index
    %c32 = arith.constant 32 : index
    %c64 = arith.constant 64 : index
    %c1 = arith.constant 1 : index
    %c256 = arith.constant 256 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<8x1xf32>
    scf.for %i = %c0 to %c64 step %c8 {
      scf.for %j = %c0 to %c64 step %c32 {
        %s = scf.for %k = %c0 to %c256 step %c1 iter_args(%acc = %z) -> (vector<8x1xf32>) {
          %x = vector.transfer_read %a[%i, %k], %p {in_bounds = [true, true]} : memref<64x256xf32>, vector<8x1xf32>
          %f = arith.addf %x, %acc : vector<8x1xf32>
          scf.yield %f : vector<8x1xf32>
        }
        vector.transfer_write %s, %b[%i, %j] {in_bounds = [true, true]} : vector<8x1xf32>, memref<256x64xf32>
      }
    }
    return
  }
  // Left alone: 16 steps of k.
  func.func @short(%a: memref<64x16x8xf32>, %o: memref<64x8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<8xf32>
    scf.for %i = %c0 to %c64 step %c1 {
      scf.for %j = %c0 to %c4 step %c1 {
        %s = scf.for %k = %c0 to %c16 step %c1 iter_args(%acc = %z) -> (vector<8xf32>) {
          %x = vector.transfer_read %a[%i, %k, %c0], %p {in_bounds = [true]} : memref<64x16x8xf32>, vector<8xf32>
          %f = arith.addf %x, %acc : vector<8xf32>
          scf.yield %f : vector<8xf32>
        }
        vector.transfer_write %s, %o[%i, %c0] {in_bounds = [true]} : vector<8xf32>, memref<64x8xf32>
      }
    }
    return
  }
  // Left alone: the read moves with the tile (B's micro-panel), or stays
  // on one panel whatever the panel loop does (a shared operand), or steps
  // 64 bytes per k for a 32-byte vector (not one stream).
  func.func @others(%a: memref<64x256x16xf32>, %o: memref<64x8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c64 = arith.constant 64 : index
    %c256 = arith.constant 256 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<8xf32>
    scf.for %i = %c0 to %c64 step %c1 {
      scf.for %j = %c0 to %c4 step %c1 {
        %s = scf.for %k = %c0 to %c256 step %c1 iter_args(%acc = %z) -> (vector<8xf32>) {
          %x = vector.transfer_read %a[%j, %k, %c0], %p {in_bounds = [true]} : memref<64x256x16xf32>, vector<8xf32>
          %y = vector.transfer_read %a[%c1, %k, %c0], %p {in_bounds = [true]} : memref<64x256x16xf32>, vector<8xf32>
          %w = vector.transfer_read %a[%i, %k, %c0], %p {in_bounds = [true]} : memref<64x256x16xf32>, vector<8xf32>
          %f = arith.addf %x, %acc : vector<8xf32>
          %g = arith.addf %y, %f : vector<8xf32>
          %h = arith.addf %w, %g : vector<8xf32>
          scf.yield %h : vector<8xf32>
        }
        vector.transfer_write %s, %o[%i, %c0] {in_bounds = [true]} : vector<8xf32>, memref<64x8xf32>
      }
    }
    return
  }
  // Left alone: no tile loop between the k loop and the panel loop.
  func.func @untiled(%a: memref<64x256x8xf32>, %o: memref<64x8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %c256 = arith.constant 256 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<8xf32>
    scf.for %i = %c0 to %c64 step %c1 {
      %s = scf.for %k = %c0 to %c256 step %c1 iter_args(%acc = %z) -> (vector<8xf32>) {
        %x = vector.transfer_read %a[%i, %k, %c0], %p {in_bounds = [true]} : memref<64x256x8xf32>, vector<8xf32>
        %f = arith.addf %x, %acc : vector<8xf32>
        scf.yield %f : vector<8xf32>
      }
      vector.transfer_write %s, %o[%i, %c0] {in_bounds = [true]} : vector<8xf32>, memref<64x8xf32>
    }
    return
  }
}
"#;

#[test]
fn prefetch_panels_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::prefetch_panels;
    tensorc_mlir::register_external_pass(prefetch_panels::NAME, prefetch_panels::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, NESTS, prefetch_panels::NAME);
    for (name, panels) in [("packed", 64), ("chunks", 32)] {
        let f = function_text(&after, name);
        // One prefetch, in a loop stepping two k (32 bytes a step, 64 a
        // line) over this tile's 8 of the panel's 128 lines...
        assert_eq!(f.matches("memref.prefetch").count(), 1, "{f}");
        let lp = f.find("scf.for %arg").unwrap();
        let k = f.find("iter_args").unwrap();
        let pf = f.find("memref.prefetch").unwrap();
        assert!(
            lp < pf && pf < k,
            "the prefetch loop comes before the k loop:\n{f}"
        );
        // ... at the next panel, clamped to the last one.
        assert!(
            f.contains(&format!("arith.constant {} : index", panels - 1)),
            "{f}"
        );
        assert!(f.contains("arith.minsi"), "{f}");
    }
    // The block loop's next slice of B: 256 rows of 512 floats = 8192
    // lines over 16 chunks × 4 panels × 16 tiles, 8 per tile, in a second
    // prefetch loop of step 1 whose rows start at the next block
    // (%kb + 256), clamped to B's last row and column.
    let blocks = function_text(&after, "blocks");
    assert_eq!(blocks.matches("memref.prefetch").count(), 2, "{blocks}");
    assert!(blocks.contains("memref.prefetch %arg1["), "{blocks}");
    for c in ["1023", "2047", "8192", "32 : index", "512 : index"] {
        assert!(
            blocks.contains(&format!("arith.constant {c}")),
            "no constant {c}:\n{blocks}"
        );
    }
    for name in ["rows", "short", "others", "untiled"] {
        assert_eq!(
            function_text(&before, name),
            function_text(&after, name),
            "@{name} changed"
        );
    }
    insta::assert_snapshot!(
        "prefetch_panels_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

/// A program computing the f32 product of an `m`×`k` and a `k`×`n` matrix.
pub(crate) fn dot(m: usize, k: usize, n: usize) -> String {
    format!(
        "def main(a: f32[{m}][{k}], b: f32[{k}][{n}]) -> f32[{m}][{n}] {{\n  c = dot a, [1], [], b, [0], []\n  return c\n}}\n"
    )
}

#[test]
fn panel_prefetched_matmuls_agree_with_the_interpreter() {
    let programs = [
        // 67 rows: nine panels, the last one padded; K in three blocks.
        ("rows_67", dot(67, 700, 1024), 1e-4),
        // 200 rows (25 panels: one-panel chunks), a K of one block.
        ("rows_200", dot(200, 256, 1536), 1e-4),
        (
            "batched",
            "def main(a: f32[2][72][300], b: f32[2][300][1024]) -> f32[2][72][1024] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n"
                .to_owned(),
            1e-4,
        ),
        (
            "bias_relu",
            "def main(x: f32[90][512], w: f32[512][2048], b: f32[2048]) -> f32[90][2048] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n"
                .to_owned(),
            1e-4,
        ),
    ];
    let failures =
        crate::threads::on_threads(&[1, 2], || differential_all(&programs, EdgeSet::Mild, 7));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The pass fires in the CPU pipeline: a W3-like packed product has two
/// prefetches more than the 16 of its C tile (late accumulation): the next
/// A panel's and the next block of B's.
#[test]
fn packed_tiles_prefetch_the_next_panel() {
    let llvm = crate::harness::avx512_llvm_dialect("w3like.nxir", &dot(256, 1024, 1024));
    assert!(llvm.matches("llvm.intr.prefetch").count() >= 18, "{llvm}");
}

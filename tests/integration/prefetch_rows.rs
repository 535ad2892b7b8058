//! `tensorc-prefetch-rows` (`passes/tensorc-passes/src/prefetch_rows.rs`):
//! later passes over a row prefetch the rows ahead.
//!
//! - the pass before and after on buffer-level row loops: a two-pass row
//!   loop (rewritten: clamped row, one prefetch per cache line of the first
//!   pass's reads and the second pass's writes), a one-pass loop (left
//!   alone), a second pass over another buffer (each buffer prefetched by
//!   its first reader), a read whose column is not the pass's index and
//!   writes to a fixed column or row (no prefetch), a row written through
//!   views (the prefetch at the view's place), a lane scan's chunk loop
//!   reading the row through an `expand_shape` view (prefetched though it
//!   is the row's one reading pass), by snapshot and counts;
//! - the fused softmax and layernorm get their prefetches in the LLVM
//!   dialect, and interpreter-vs-CPU runs of row chains whose last rows
//!   prefetch past the end (clamped) with odd widths and row counts.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};
use crate::rowfuse::{layernorm, softmax};
use tensorc::Stage;

const ROWS: &str = r#"
module {
  // Two passes over each row of %x: the first prefetches 2 rows down.
  func.func @two_passes(%x: memref<100x64xf32>, %y: memref<100x64xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    %c64 = arith.constant 64 : index
    %c100 = arith.constant 100 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<16xf32>
    scf.for %r = %c0 to %c100 step %c1 {
      %s = scf.for %j = %c0 to %c64 step %c16 iter_args(%a = %z) -> (vector<16xf32>) {
        %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<100x64xf32>, vector<16xf32>
        %n = arith.addf %a, %v : vector<16xf32>
        scf.yield %n : vector<16xf32>
      }
      // Reads of 32 lanes: two lines per step.
      scf.for %j = %c0 to %c64 step %c32 {
        %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<100x64xf32>, vector<32xf32>
        vector.transfer_write %v, %y[%r, %j] {in_bounds = [true]} : vector<32xf32>, memref<100x64xf32>
      }
    }
    return
  }
  // One pass per row: the hardware prefetchers see every load.
  func.func @one_pass(%x: memref<100x64xf32>, %y: memref<100x64xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %c100 = arith.constant 100 : index
    %p = ub.poison : f32
    scf.for %r = %c0 to %c100 step %c1 {
      scf.for %j = %c0 to %c64 step %c16 {
        %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<100x64xf32>, vector<16xf32>
        vector.transfer_write %v, %y[%r, %j] {in_bounds = [true]} : vector<16xf32>, memref<100x64xf32>
      }
    }
    return
  }
  // The second pass reads another buffer than the first.
  func.func @other_buffer(%x: memref<100x64xf32>, %w: memref<100x64xf32>, %y: memref<100x64xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %c100 = arith.constant 100 : index
    %p = ub.poison : f32
    scf.for %r = %c0 to %c100 step %c1 {
      scf.for %j = %c0 to %c64 step %c16 {
        %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<100x64xf32>, vector<16xf32>
        vector.transfer_write %v, %y[%r, %j] {in_bounds = [true]} : vector<16xf32>, memref<100x64xf32>
      }
      scf.for %j = %c0 to %c64 step %c16 {
        %v = vector.transfer_read %w[%r, %j], %p {in_bounds = [true]} : memref<100x64xf32>, vector<16xf32>
        vector.transfer_write %v, %y[%r, %j] {in_bounds = [true]} : vector<16xf32>, memref<100x64xf32>
      }
    }
    return
  }
  // Later passes whose writes get no prefetch: a fixed column, a fixed row.
  func.func @writes_left_alone(%x: memref<100x64xf32>, %y: memref<100x64xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %c100 = arith.constant 100 : index
    %z = arith.constant dense<0.0> : vector<16xf32>
    scf.for %r = %c0 to %c100 step %c1 {
      scf.for %j = %c0 to %c64 step %c16 {
        vector.transfer_write %z, %y[%r, %c0] {in_bounds = [true]} : vector<16xf32>, memref<100x64xf32>
      }
      scf.for %j = %c0 to %c64 step %c16 {
        vector.transfer_write %z, %y[%r, %c0] {in_bounds = [true]} : vector<16xf32>, memref<100x64xf32>
        vector.transfer_write %z, %y[%c0, %j] {in_bounds = [true]} : vector<16xf32>, memref<100x64xf32>
      }
    }
    return
  }
  // A later pass writing a row through views (as the fused row chains do):
  // the prefetch is at the view's place in %y.
  func.func @write_through_views(%x: memref<100x64xf32>, %y: memref<100x64xf32>, %chunk: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %c20 = arith.constant 20 : index
    %c64 = arith.constant 64 : index
    %z = arith.constant dense<0.0> : vector<16xf32>
    %rows = memref.subview %y[%chunk, 0] [20, 64] [1, 1] : memref<100x64xf32> to memref<20x64xf32, strided<[64, 1], offset: ?>>
    scf.for %r = %c0 to %c20 step %c1 {
      %row = memref.subview %rows[%r, 0] [1, 64] [1, 1] : memref<20x64xf32, strided<[64, 1], offset: ?>> to memref<1x64xf32, strided<[64, 1], offset: ?>>
      scf.for %j = %c0 to %c64 step %c16 {
        vector.transfer_write %z, %row[%c0, %j] {in_bounds = [true]} : vector<16xf32>, memref<1x64xf32, strided<[64, 1], offset: ?>>
      }
      scf.for %j = %c0 to %c64 step %c16 {
        %piece = memref.subview %row[0, %j] [1, 16] [1, 1] : memref<1x64xf32, strided<[64, 1], offset: ?>> to memref<1x16xf32, strided<[64, 1], offset: ?>>
        vector.transfer_write %z, %piece[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<1x16xf32, strided<[64, 1], offset: ?>>
      }
    }
    return
  }
  // A lane scan's chunk loop (`lane_scan_schedule.rs`), the row loop's one
  // reading pass (its first chunk's loop left out): the row past its first
  // chunk viewed as [1, 31, 32]; each chunk's read prefetches its two lines
  // two rows down, at column 32 + 32 * %c, row %chunk + %r + 2 (clamped).
  func.func @lane_scan(%x: memref<64x1024xf32>, %chunk: index) -> vector<32xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %c31 = arith.constant 31 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<32xf32>
    %tail = memref.subview %x[0, 32] [64, 992] [1, 1] : memref<64x1024xf32> to memref<64x992xf32, strided<[1024, 1], offset: 32>>
    %rows = memref.subview %tail[%chunk, 0] [16, 992] [1, 1] : memref<64x992xf32, strided<[1024, 1], offset: 32>> to memref<16x992xf32, strided<[1024, 1], offset: ?>>
    %best = scf.for %r = %c0 to %c16 step %c1 iter_args(%b = %z) -> (vector<32xf32>) {
      %row = memref.subview %rows[%r, 0] [1, 992] [1, 1] : memref<16x992xf32, strided<[1024, 1], offset: ?>> to memref<1x992xf32, strided<[1024, 1], offset: ?>>
      %e = memref.expand_shape %row [[0], [1, 2]] output_shape [1, 31, 32] : memref<1x992xf32, strided<[1024, 1], offset: ?>> into memref<1x31x32xf32, strided<[1024, 32, 1], offset: ?>>
      %m = scf.for %c = %c0 to %c31 step %c1 iter_args(%a = %b) -> (vector<32xf32>) {
        %v = vector.transfer_read %e[%c0, %c, %c0], %p {in_bounds = [true]} : memref<1x31x32xf32, strided<[1024, 32, 1], offset: ?>>, vector<32xf32>
        %n = arith.maximumf %a, %v : vector<32xf32>
        scf.yield %n : vector<32xf32>
      }
      scf.yield %m : vector<32xf32>
    }
    return %best : vector<32xf32>
  }
  // The second pass reads a fixed column, not along the row.
  func.func @fixed_column(%x: memref<100x64xf32>, %y: memref<100x64xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %c100 = arith.constant 100 : index
    %p = ub.poison : f32
    scf.for %r = %c0 to %c100 step %c1 {
      scf.for %j = %c0 to %c64 step %c16 {
        %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<100x64xf32>, vector<16xf32>
        vector.transfer_write %v, %y[%r, %j] {in_bounds = [true]} : vector<16xf32>, memref<100x64xf32>
      }
      scf.for %j = %c0 to %c64 step %c16 {
        %v = vector.transfer_read %x[%r, %c0], %p {in_bounds = [true]} : memref<100x64xf32>, vector<16xf32>
        vector.transfer_write %v, %y[%r, %j] {in_bounds = [true]} : vector<16xf32>, memref<100x64xf32>
      }
    }
    return
  }
}
"#;

#[test]
fn prefetch_rows_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::prefetch_rows;
    tensorc_mlir::register_external_pass(prefetch_rows::NAME, prefetch_rows::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, ROWS, prefetch_rows::NAME);
    let reads = |f: &str| f.matches("read, locality<3>").count();
    let writes = |f: &str| f.matches("write, locality<3>").count();
    let two = function_text(&after, "two_passes");
    // The first pass reads each row from memory: it prefetches one line
    // per 16-lane read two rows down (clamped to row 99); the second pass
    // writes prefetches for its two lines per 32-lane write.
    assert_eq!((reads(two), writes(two)), (1, 2), "{two}");
    assert!(two.contains("arith.minsi"), "{two}");
    assert!(two.contains("arith.constant 99 : index"), "{two}");
    assert!(
        two.contains(&format!(
            "arith.constant {} : index",
            tensorc_passes::prefetch_rows::ROWS_AHEAD
        )),
        "{two}"
    );
    let second_pass = &two[two.rfind("scf.for").unwrap()..];
    assert_eq!((reads(second_pass), writes(second_pass)), (0, 2), "{two}");
    for name in ["one_pass", "writes_left_alone"] {
        assert_eq!(
            function_text(&before, name),
            function_text(&after, name),
            "@{name} changed"
        );
    }
    // Each buffer's first direct reader prefetches it (x in the first pass,
    // w in the second); a read that stays in one column gets none; the
    // second passes' row writes get theirs.
    let f = function_text(&after, "other_buffer");
    assert_eq!((reads(f), writes(f)), (2, 1), "{f}");
    let f = function_text(&after, "fixed_column");
    assert_eq!((reads(f), writes(f)), (1, 1), "{f}");
    // A lane scan: two lines per 32-lane chunk, at column 32 + 32 * %c.
    let scan = function_text(&after, "lane_scan");
    assert_eq!((reads(scan), writes(scan)), (2, 0), "{scan}");
    assert!(scan.contains("arith.muli") && scan.contains("arith.minsi"), "{scan}");
    // Through views: one line per write, at row %chunk + %r + 2 (clamped).
    let views = function_text(&after, "write_through_views");
    assert_eq!((reads(views), writes(views)), (0, 1), "{views}");
    assert!(views.contains("arith.minsi"), "{views}");
    insta::assert_snapshot!(
        "prefetch_rows_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

/// The fused row chains of W5 and W8 and argmax (its lane scan on both
/// ISAs' shapes) get their prefetches.
#[test]
fn fused_row_chains_prefetch_the_rows_ahead() {
    let argmax = "def main(x: f32[512][1000]) -> s32[512] {
  y = argmax x, axis: 1, tie_break: :low, keep_axis: false
  return y
}
"
    .to_owned();
    for (name, source) in [
        ("softmax", softmax("f32", 512, 1024)),
        ("layernorm", layernorm("f32", 512, 1024)),
        ("argmax", argmax),
    ] {
        let llvm = tensorc::emit(&format!("{name}.nxir"), &source, Stage::LlvmDialect)
            .unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(llvm.contains("llvm.intr.prefetch"), "{name}:\n{llvm}");
    }
}

#[test]
fn prefetched_row_chains_agree_with_the_interpreter() {
    let programs = [
        // The last rows' prefetches are clamped to the last row.
        ("softmax_3x1000", softmax("f32", 3, 1000), 1e-5),
        ("softmax_67x130", softmax("f32", 67, 130), 1e-5),
        ("softmax_300x1024", softmax("f32", 300, 1024), 1e-5),
        ("layernorm_129x257", layernorm("f32", 129, 257), 1e-4),
        ("layernorm_2x2048", layernorm("f32", 2, 2048), 1e-4),
        (
            "argmax_37x1000",
            "def main(x: f32[37][1000]) -> s32[37] {\n  y = argmax x, axis: 1, tie_break: :low, keep_axis: false\n  return y\n}\n".to_owned(),
            0.0,
        ),
    ];
    let failures = differential_all(&programs, EdgeSet::Mild, 5);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const BLOCKS: &str = r#"
module {
  // A 32 MiB matrix read two rows at a time (tensorc-matvec's streamed
  // blocks): each step prefetches its two lines in each row of the block
  // 12 KiB ahead (two blocks of two 4 KiB rows: rows %r + 4 and %r + 5,
  // clamped to row 8191).
  func.func @matvec(%a: memref<8192x1024xf32>, %x: memref<1024xf32>) {
    %c0 = arith.constant 0 : index
    %c2 = arith.constant 2 : index
    %c32 = arith.constant 32 : index
    %c1024 = arith.constant 1024 : index
    %c8192 = arith.constant 8192 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<2x32xf32>
    scf.for %r = %c0 to %c8192 step %c2 {
      %s = scf.for %j = %c0 to %c1024 step %c32 iter_args(%acc = %z) -> (vector<2x32xf32>) {
        %v = vector.transfer_read %a[%r, %j], %p {in_bounds = [true, true]} : memref<8192x1024xf32>, vector<2x32xf32>
        %w = vector.transfer_read %x[%j], %p {in_bounds = [true, true], permutation_map = affine_map<(d0) -> (0, d0)>} : memref<1024xf32>, vector<2x32xf32>
        %m = arith.mulf %v, %w : vector<2x32xf32>
        %n = arith.addf %acc, %m : vector<2x32xf32>
        scf.yield %n : vector<2x32xf32>
      }
    }
    return
  }
  // A batch of 64 matrices of 512 rows of 1 KiB: prefetched through a
  // 32768-row view, six blocks (12 rows) ahead, across matrices.
  func.func @batched(%a: memref<64x512x256xf32>, %x: memref<64x256xf32>) {
    %c0 = arith.constant 0 : index
    %c2 = arith.constant 2 : index
    %c32 = arith.constant 32 : index
    %c64 = arith.constant 64 : index
    %c256 = arith.constant 256 : index
    %c512 = arith.constant 512 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<2x32xf32>
    scf.forall (%b) in (64) {
      scf.for %r = %c0 to %c512 step %c2 {
        %s = scf.for %j = %c0 to %c256 step %c32 iter_args(%acc = %z) -> (vector<2x32xf32>) {
          %v = vector.transfer_read %a[%b, %r, %j], %p {in_bounds = [true, true]} : memref<64x512x256xf32>, vector<2x32xf32>
          %n = arith.addf %acc, %v : vector<2x32xf32>
          scf.yield %n : vector<2x32xf32>
        }
      }
    }
    return
  }
  // A 4 MiB matrix stays in L3: no prefetches.
  func.func @small(%a: memref<1024x1024xf32>) {
    %c0 = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %c32 = arith.constant 32 : index
    %c1024 = arith.constant 1024 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<4x32xf32>
    scf.for %r = %c0 to %c1024 step %c4 {
      %s = scf.for %j = %c0 to %c1024 step %c32 iter_args(%acc = %z) -> (vector<4x32xf32>) {
        %v = vector.transfer_read %a[%r, %j], %p {in_bounds = [true, true]} : memref<1024x1024xf32>, vector<4x32xf32>
        %n = arith.addf %acc, %v : vector<4x32xf32>
        scf.yield %n : vector<4x32xf32>
      }
    }
    return
  }
  // Blocks of a height other than the row loop's step: not a block read.
  func.func @other_height(%a: memref<8192x1024xf32>) {
    %c0 = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %c32 = arith.constant 32 : index
    %c1024 = arith.constant 1024 : index
    %c8192 = arith.constant 8192 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<2x32xf32>
    scf.for %r = %c0 to %c8192 step %c4 {
      %s = scf.for %j = %c0 to %c1024 step %c32 iter_args(%acc = %z) -> (vector<2x32xf32>) {
        %v = vector.transfer_read %a[%r, %j], %p {in_bounds = [true, true]} : memref<8192x1024xf32>, vector<2x32xf32>
        %n = arith.addf %acc, %v : vector<2x32xf32>
        scf.yield %n : vector<2x32xf32>
      }
    }
    return
  }
}
"#;

/// Blocks of rows read together from a matrix that comes from memory
/// (`tensorc-matvec`'s streamed matrix·vector products) prefetch the block
/// `BLOCK_BYTES_AHEAD` ahead; batches through a view of all their rows.
#[test]
fn block_reads_prefetch_the_block_ahead() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::prefetch_rows;
    tensorc_mlir::register_external_pass(prefetch_rows::NAME, prefetch_rows::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, BLOCKS, prefetch_rows::NAME);
    let reads = |f: &str| f.matches("read, locality<3>").count();
    assert_eq!(prefetch_rows::BLOCK_BYTES_AHEAD, 12 << 10, "the comments below count with 12 KiB");
    let mv = function_text(&after, "matvec");
    // Two lines in each of two rows; the broadcast vector gets none.
    assert_eq!(reads(mv), 4, "{mv}");
    for c in ["4", "5", "8191"] {
        assert!(mv.contains(&format!("arith.constant {c} : index")), "{mv}");
    }
    let b = function_text(&after, "batched");
    assert_eq!(reads(b), 4, "{b}");
    assert!(b.contains("memref.collapse_shape %arg0 [[0, 1], [2]] : memref<64x512x256xf32> into memref<32768x256xf32>"), "{b}");
    for c in ["12", "13", "32767"] {
        assert!(b.contains(&format!("arith.constant {c} : index")), "{b}");
    }
    for name in ["small", "other_height"] {
        assert_eq!(function_text(&before, name), function_text(&after, name), "@{name} changed");
    }
    insta::assert_snapshot!("prefetch_rows_blocks", format!("// before\n{before}\n// after\n{after}"));
}

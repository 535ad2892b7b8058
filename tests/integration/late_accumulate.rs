//! `tensorc-late-accumulate` (`passes/tensorc-passes/src/late_accumulate.rs`):
//! register tiles start from zero, C is prefetched before the k loop and
//! added after it.
//!
//! - the pass before and after on buffer-level tiles it rewrites (a packed
//!   f32 tile read through a broadcast, an unpacked i32 tile) and on ones it
//!   must leave alone (a short loop, a body that writes memory, a max
//!   contraction, a write elsewhere), by snapshot and by counts;
//! - interpreter-vs-CPU runs of matmuls whose tiles it rewrites: packed
//!   with K split in several blocks (so C is added back once per block),
//!   odd sizes, i32, f64, batched, the fused bias + relu epilogue;
//! - the pass fires on W3's packed tiles (prefetches in the LLVM dialect).

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};

/// One function per case; `{body}` of each is a loop around a contraction
/// on tiles of `%c`.
const TILES: &str = r#"
#a = affine_map<(d0, d1, d2, d3) -> (d1, d2)>
#b = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
#c = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
#ua = affine_map<(d0, d1, d2) -> (d0, d2)>
#ub = affine_map<(d0, d1, d2) -> (d2, d1)>
#uc = affine_map<(d0, d1, d2) -> (d0, d1)>
module {
  // The packed schedule's tile: C read through a broadcast, extracted for
  // the write; 256 steps.
  func.func @packed(%c: memref<4x8x16x16xf32>, %a: memref<256x16xf32>, %b: memref<8x256x16xf32>, %i: index, %j: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c256 = arith.constant 256 : index
    %p = ub.poison : f32
    %r = vector.transfer_read %c[%i, %j, %c0, %c0], %p {in_bounds = [true, true, true]} : memref<4x8x16x16xf32>, vector<2x8x16xf32>
    %w = vector.broadcast %r : vector<2x8x16xf32> to vector<1x2x8x16xf32>
    %l = scf.for %k = %c0 to %c256 step %c1 iter_args(%acc = %w) -> (vector<1x2x8x16xf32>) {
      %x = vector.transfer_read %a[%k, %c0], %p {in_bounds = [true]} : memref<256x16xf32>, vector<8xf32>
      %y = vector.transfer_read %b[%j, %k, %c0], %p {in_bounds = [true, true, true]} : memref<8x256x16xf32>, vector<2x1x16xf32>
      %xb = vector.broadcast %x : vector<8xf32> to vector<1x8xf32>
      %e = vector.extract %acc[0] : vector<2x8x16xf32> from vector<1x2x8x16xf32>
      %s = vector.contract {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "reduction", "parallel", "parallel"], kind = #vector.kind<add>} %xb, %y, %e : vector<1x8xf32>, vector<2x1x16xf32> into vector<2x8x16xf32>
      %sb = vector.broadcast %s : vector<2x8x16xf32> to vector<1x2x8x16xf32>
      scf.yield %sb : vector<1x2x8x16xf32>
    }
    %o = vector.extract %l[0] : vector<2x8x16xf32> from vector<1x2x8x16xf32>
    vector.transfer_write %o, %c[%i, %j, %c0, %c0] {in_bounds = [true, true, true]} : vector<2x8x16xf32>, memref<4x8x16x16xf32>
    return
  }
  // The unpacked schedule's 8×32 tile, i32, 64 steps: rows of two lines.
  func.func @unpacked_i32(%c: memref<64x64xi32>, %a: memref<64x64xi32>, %b: memref<64x64xi32>, %i: index, %j: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %p = arith.constant 0 : i32
    %r = vector.transfer_read %c[%i, %j], %p {in_bounds = [true, true]} : memref<64x64xi32>, vector<8x32xi32>
    %l = scf.for %k = %c0 to %c64 step %c1 iter_args(%acc = %r) -> (vector<8x32xi32>) {
      %x = vector.transfer_read %a[%i, %k], %p {in_bounds = [true, true]} : memref<64x64xi32>, vector<8x1xi32>
      %y = vector.transfer_read %b[%k, %j], %p {in_bounds = [true]} : memref<64x64xi32>, vector<32xi32>
      %yb = vector.broadcast %y : vector<32xi32> to vector<1x32xi32>
      %s = vector.contract {indexing_maps = [#ua, #ub, #uc], iterator_types = ["parallel", "parallel", "reduction"], kind = #vector.kind<add>} %x, %yb, %acc : vector<8x1xi32>, vector<1x32xi32> into vector<8x32xi32>
      scf.yield %s : vector<8x32xi32>
    }
    vector.transfer_write %l, %c[%i, %j] {in_bounds = [true, true]} : vector<8x32xi32>, memref<64x64xi32>
    return
  }
  // Left alone: 16 steps are too few for the prefetches to land.
  func.func @short(%c: memref<64x64xf32>, %a: memref<64x64xf32>, %b: memref<64x64xf32>, %i: index, %j: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %p = ub.poison : f32
    %r = vector.transfer_read %c[%i, %j], %p {in_bounds = [true, true]} : memref<64x64xf32>, vector<8x32xf32>
    %l = scf.for %k = %c0 to %c16 step %c1 iter_args(%acc = %r) -> (vector<8x32xf32>) {
      %x = vector.transfer_read %a[%i, %k], %p {in_bounds = [true, true]} : memref<64x64xf32>, vector<8x1xf32>
      %y = vector.transfer_read %b[%k, %j], %p {in_bounds = [true]} : memref<64x64xf32>, vector<32xf32>
      %yb = vector.broadcast %y : vector<32xf32> to vector<1x32xf32>
      %s = vector.contract {indexing_maps = [#ua, #ub, #uc], iterator_types = ["parallel", "parallel", "reduction"], kind = #vector.kind<add>} %x, %yb, %acc : vector<8x1xf32>, vector<1x32xf32> into vector<8x32xf32>
      scf.yield %s : vector<8x32xf32>
    }
    vector.transfer_write %l, %c[%i, %j] {in_bounds = [true, true]} : vector<8x32xf32>, memref<64x64xf32>
    return
  }
  // Left alone: the body writes memory (C might be what it writes).
  func.func @writes(%c: memref<64x64xf32>, %a: memref<64x64xf32>, %b: memref<64x64xf32>, %i: index, %j: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %r = vector.transfer_read %c[%i, %j], %p {in_bounds = [true, true]} : memref<64x64xf32>, vector<8x32xf32>
    %l = scf.for %k = %c0 to %c64 step %c1 iter_args(%acc = %r) -> (vector<8x32xf32>) {
      %x = vector.transfer_read %a[%i, %k], %p {in_bounds = [true, true]} : memref<64x64xf32>, vector<8x1xf32>
      %y = vector.transfer_read %b[%k, %j], %p {in_bounds = [true]} : memref<64x64xf32>, vector<32xf32>
      vector.transfer_write %y, %c[%k, %j] {in_bounds = [true]} : vector<32xf32>, memref<64x64xf32>
      %yb = vector.broadcast %y : vector<32xf32> to vector<1x32xf32>
      %s = vector.contract {indexing_maps = [#ua, #ub, #uc], iterator_types = ["parallel", "parallel", "reduction"], kind = #vector.kind<add>} %x, %yb, %acc : vector<8x1xf32>, vector<1x32xf32> into vector<8x32xf32>
      scf.yield %s : vector<8x32xf32>
    }
    vector.transfer_write %l, %c[%i, %j] {in_bounds = [true, true]} : vector<8x32xf32>, memref<64x64xf32>
    return
  }
  // Left alone: a max does not start from zero.
  func.func @max(%c: memref<64x64xf32>, %a: memref<64x64xf32>, %b: memref<64x64xf32>, %i: index, %j: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %r = vector.transfer_read %c[%i, %j], %p {in_bounds = [true, true]} : memref<64x64xf32>, vector<8x32xf32>
    %l = scf.for %k = %c0 to %c64 step %c1 iter_args(%acc = %r) -> (vector<8x32xf32>) {
      %x = vector.transfer_read %a[%i, %k], %p {in_bounds = [true, true]} : memref<64x64xf32>, vector<8x1xf32>
      %y = vector.transfer_read %b[%k, %j], %p {in_bounds = [true]} : memref<64x64xf32>, vector<32xf32>
      %yb = vector.broadcast %y : vector<32xf32> to vector<1x32xf32>
      %s = vector.contract {indexing_maps = [#ua, #ub, #uc], iterator_types = ["parallel", "parallel", "reduction"], kind = #vector.kind<maxnumf>} %x, %yb, %acc : vector<8x1xf32>, vector<1x32xf32> into vector<8x32xf32>
      scf.yield %s : vector<8x32xf32>
    }
    vector.transfer_write %l, %c[%i, %j] {in_bounds = [true, true]} : vector<8x32xf32>, memref<64x64xf32>
    return
  }
  // Left alone: the sum is written somewhere other than where C was read.
  func.func @elsewhere(%c: memref<64x64xf32>, %a: memref<64x64xf32>, %b: memref<64x64xf32>, %i: index, %j: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %r = vector.transfer_read %c[%i, %j], %p {in_bounds = [true, true]} : memref<64x64xf32>, vector<8x32xf32>
    %l = scf.for %k = %c0 to %c64 step %c1 iter_args(%acc = %r) -> (vector<8x32xf32>) {
      %x = vector.transfer_read %a[%i, %k], %p {in_bounds = [true, true]} : memref<64x64xf32>, vector<8x1xf32>
      %y = vector.transfer_read %b[%k, %j], %p {in_bounds = [true]} : memref<64x64xf32>, vector<32xf32>
      %yb = vector.broadcast %y : vector<32xf32> to vector<1x32xf32>
      %s = vector.contract {indexing_maps = [#ua, #ub, #uc], iterator_types = ["parallel", "parallel", "reduction"], kind = #vector.kind<add>} %x, %yb, %acc : vector<8x1xf32>, vector<1x32xf32> into vector<8x32xf32>
      scf.yield %s : vector<8x32xf32>
    }
    vector.transfer_write %l, %c[%j, %i] {in_bounds = [true, true]} : vector<8x32xf32>, memref<64x64xf32>
    return
  }
}
"#;

#[test]
fn late_accumulate_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::late_accumulate;
    tensorc_mlir::register_external_pass(late_accumulate::NAME, late_accumulate::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, TILES, late_accumulate::NAME);
    // Packed: 2×8 rows of one line each prefetched; the loop starts from
    // zeros; C is read after it and added.
    let packed = function_text(&after, "packed");
    assert_eq!(packed.matches("memref.prefetch").count(), 16, "{packed}");
    assert!(packed.contains("iter_args(%arg6 = %cst)"), "{packed}");
    let (lp, add) = (
        packed.find("scf.for").unwrap(),
        packed.find("arith.addf").unwrap(),
    );
    let read_c = packed.find("vector.transfer_read %arg0").unwrap();
    assert!(lp < read_c && read_c < add, "{packed}");
    // Unpacked i32: 8 rows of 128 bytes = 16 lines, an integer add.
    let unpacked = function_text(&after, "unpacked_i32");
    assert_eq!(
        unpacked.matches("memref.prefetch").count(),
        16,
        "{unpacked}"
    );
    assert!(unpacked.contains("arith.addi %"), "{unpacked}");
    assert!(
        unpacked.contains("dense<0> : vector<8x32xi32>"),
        "{unpacked}"
    );
    // The others are unchanged.
    for name in ["short", "writes", "max", "elsewhere"] {
        assert_eq!(
            function_text(&before, name),
            function_text(&after, name),
            "@{name} changed"
        );
    }
    insta::assert_snapshot!(
        "late_accumulate_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

fn dot(at: &str, bt: &str, ot: &str) -> String {
    format!(
        "def main(a: {at}, b: {bt}) -> {ot} {{\n  c = dot a, [1], [], b, [0], []\n  return c\n}}\n"
    )
}

#[test]
fn late_accumulated_matmuls_agree_with_the_interpreter() {
    let programs = [
        // Packed, K = 700 in six blocks of 128 (the last 60): C goes
        // through the late add six times; M, N no tile divides.
        ("packed_odd", dot("f32[130][700]", "f32[700][1024]", "f32[130][1024]"), 1e-4),
        // Packed, K below one block, N large.
        ("packed_wide", dot("f32[70][300]", "f32[300][2048]", "f32[70][2048]"), 1e-4),
        // 32-bit integers take the packed path too: exact.
        ("packed_s32", dot("s32[96][600]", "s32[600][1024]", "s32[96][1024]"), 0.0),
        // Unpacked 8×32 tiles, 8×16 for 64-bit.
        ("unpacked", dot("f32[40][100]", "f32[100][70]", "f32[40][70]"), 1e-5),
        ("unpacked_f64", dot("f64[24][300]", "f64[300][40]", "f64[24][40]"), 1e-12),
        (
            "batched",
            "def main(a: f32[3][40][64], b: f32[3][64][96]) -> f32[3][40][96] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n"
                .to_owned(),
            1e-5,
        ),
        (
            "bias_relu",
            "def main(x: f32[100][600], w: f32[600][1024], b: f32[1024]) -> f32[100][1024] {\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n"
                .to_owned(),
            1e-4,
        ),
    ];
    let failures = differential_all(&programs, EdgeSet::Mild, 3);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The pass fires in the CPU pipeline: W3's packed tiles prefetch their C
/// lines.
#[test]
fn packed_tiles_prefetch_c() {
    let source = dot("f32[256][1024]", "f32[1024][512]", "f32[256][512]");
    let llvm = crate::harness::avx512_llvm_dialect("w3like.nxir", &source);
    assert!(llvm.matches("llvm.intr.prefetch").count() >= 16, "{llvm}");
}

//! `tensorc-prefetch-stream` (`passes/tensorc-passes/src/prefetch_stream.rs`):
//! reduction loops that stream a long contiguous run prefetch 4 KiB ahead.
//!
//! - the pass before and after on buffer-level loops: a long 2-D row and a
//!   long f64 vector (rewritten: one prefetch per read, 1024 and 512
//!   elements ahead, the loop split where a prefetch would leave the row,
//!   the copy running the last iterations without prefetches), a dot of
//!   two long vectors (both reads), and loops left alone: a short row, a loop
//!   carrying no vector, a read along an outer dimension, a read whose row
//!   moves inside the loop, a loop that already prefetches; by snapshot
//!   and counts;
//! - full reductions get their prefetches in the LLVM dialect (and short
//!   ones none), and interpreter-vs-CPU runs of long reductions of every
//!   kind, lengths no chunk divides, on one and two threads.

use crate::harness::{EdgeSet, before_and_after, cpu_ir_between, differential_all, function_text};
use tensorc::Stage;

const LOOPS: &str = r#"
module {
  // 4 rows of 32768 f32 (128 KiB each), summed along the row: prefetched
  // 1024 elements ahead up to column 31743 (the loop split at 31744).
  func.func @long_row(%x: memref<4x32768xf32>, %r: index) -> vector<64xf32> {
    %c0 = arith.constant 0 : index
    %c64 = arith.constant 64 : index
    %n = arith.constant 32768 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<64xf32>
    %s = scf.for %j = %c0 to %n step %c64 iter_args(%a = %z) -> (vector<64xf32>) {
      %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<4x32768xf32>, vector<64xf32>
      %t = arith.addf %a, %v : vector<64xf32>
      scf.yield %t : vector<64xf32>
    }
    return %s : vector<64xf32>
  }
  // 16384 f64 (128 KiB): 512 elements ahead.
  func.func @long_f64(%x: memref<16384xf64>) -> vector<32xf64> {
    %c0 = arith.constant 0 : index
    %c32 = arith.constant 32 : index
    %n = arith.constant 16384 : index
    %p = ub.poison : f64
    %z = arith.constant dense<0.0> : vector<32xf64>
    %s = scf.for %j = %c0 to %n step %c32 iter_args(%a = %z) -> (vector<32xf64>) {
      %v = vector.transfer_read %x[%j], %p {in_bounds = [true]} : memref<16384xf64>, vector<32xf64>
      %t = arith.maximumf %a, %v : vector<32xf64>
      scf.yield %t : vector<32xf64>
    }
    return %s : vector<32xf64>
  }
  // A dot of two long vectors: both reads prefetched.
  func.func @two_reads(%x: memref<65536xf32>, %y: memref<65536xf32>) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %n = arith.constant 65536 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<16xf32>
    %s = scf.for %j = %c0 to %n step %c16 iter_args(%a = %z) -> (vector<16xf32>) {
      %v = vector.transfer_read %x[%j], %p {in_bounds = [true]} : memref<65536xf32>, vector<16xf32>
      %w = vector.transfer_read %y[%j], %p {in_bounds = [true]} : memref<65536xf32>, vector<16xf32>
      %m = arith.mulf %v, %w : vector<16xf32>
      %t = arith.addf %a, %m : vector<16xf32>
      scf.yield %t : vector<16xf32>
    }
    return %s : vector<16xf32>
  }
  // A 4 KiB row: it fits in L1, left alone.
  func.func @short_row(%x: memref<4x1024xf32>, %r: index) -> vector<64xf32> {
    %c0 = arith.constant 0 : index
    %c64 = arith.constant 64 : index
    %n = arith.constant 1024 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<64xf32>
    %s = scf.for %j = %c0 to %n step %c64 iter_args(%a = %z) -> (vector<64xf32>) {
      %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<4x1024xf32>, vector<64xf32>
      %t = arith.addf %a, %v : vector<64xf32>
      scf.yield %t : vector<64xf32>
    }
    return %s : vector<64xf32>
  }
  // A copy: no partial results carried, left alone.
  func.func @no_carry(%x: memref<65536xf32>, %y: memref<65536xf32>) {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %n = arith.constant 65536 : index
    %p = ub.poison : f32
    scf.for %j = %c0 to %n step %c16 {
      %v = vector.transfer_read %x[%j], %p {in_bounds = [true]} : memref<65536xf32>, vector<16xf32>
      vector.transfer_write %v, %y[%j] {in_bounds = [true]} : vector<16xf32>, memref<65536xf32>
    }
    return
  }
  // A column sum: the loop moves down the rows, the vector lies along
  // them (the loop's index is not the last one), left alone.
  func.func @down_rows(%x: memref<32768x16xf32>) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant 32768 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<16xf32>
    %s = scf.for %i = %c0 to %n step %c1 iter_args(%a = %z) -> (vector<16xf32>) {
      %v = vector.transfer_read %x[%i, %c0], %p {in_bounds = [true]} : memref<32768x16xf32>, vector<16xf32>
      %t = arith.addf %a, %v : vector<16xf32>
      scf.yield %t : vector<16xf32>
    }
    return %s : vector<16xf32>
  }
  // A vector along the outer dimension (a transposed read), left alone.
  func.func @outer_vector(%x: memref<32768x32768xf32>, %r: index) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant 32768 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<16xf32>
    %s = scf.for %j = %c0 to %n step %c1 iter_args(%a = %z) -> (vector<16xf32>) {
      %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true], permutation_map = affine_map<(d0, d1) -> (d0)>} : memref<32768x32768xf32>, vector<16xf32>
      %t = arith.addf %a, %v : vector<16xf32>
      scf.yield %t : vector<16xf32>
    }
    return %s : vector<16xf32>
  }
  // The row index moves inside the loop, left alone.
  func.func @moving_row(%x: memref<4x32768xf32>) -> vector<64xf32> {
    %c0 = arith.constant 0 : index
    %c3 = arith.constant 3 : index
    %c64 = arith.constant 64 : index
    %n = arith.constant 32768 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<64xf32>
    %s = scf.for %j = %c0 to %n step %c64 iter_args(%a = %z) -> (vector<64xf32>) {
      %r = arith.remui %j, %c3 : index
      %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<4x32768xf32>, vector<64xf32>
      %t = arith.addf %a, %v : vector<64xf32>
      scf.yield %t : vector<64xf32>
    }
    return %s : vector<64xf32>
  }
  // Already prefetching (a row loop of tensorc-prefetch-rows), left alone.
  func.func @prefetched(%x: memref<4x32768xf32>, %r: index) -> vector<64xf32> {
    %c0 = arith.constant 0 : index
    %c64 = arith.constant 64 : index
    %n = arith.constant 32768 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<64xf32>
    %s = scf.for %j = %c0 to %n step %c64 iter_args(%a = %z) -> (vector<64xf32>) {
      memref.prefetch %x[%r, %j], read, locality<3>, data : memref<4x32768xf32>
      %v = vector.transfer_read %x[%r, %j], %p {in_bounds = [true]} : memref<4x32768xf32>, vector<64xf32>
      %t = arith.addf %a, %v : vector<64xf32>
      scf.yield %t : vector<64xf32>
    }
    return %s : vector<64xf32>
  }
}
"#;

/// `op x, axes: nil` of a `ty[n]` vector, returning `out`.
fn full(ty: &str, op: &str, n: usize, out: &str) -> String {
    format!("def main(x: {ty}[{n}]) -> {out} {{\n  s = {op} x, axes: nil, keep_axes: false\n  return s\n}}\n")
}

#[test]
fn prefetch_stream_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::prefetch_stream;
    tensorc_mlir::register_external_pass(prefetch_stream::NAME, prefetch_stream::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, LOOPS, prefetch_stream::NAME);
    let prefetches = |f: &str| f.matches("memref.prefetch").count();
    let loops = |f: &str| f.matches("scf.for").count();
    let row = function_text(&after, "long_row");
    assert_eq!((prefetches(row), loops(row)), (1, 2), "{row}");
    assert!(row.contains("memref.prefetch %arg0[%arg1, "), "{row}");
    // The split: the first loop ends where the second starts, at the first
    // column whose prefetch would pass 32767; no clamp is left.
    for constant in ["arith.constant 1024 : index", "arith.constant 31744 : index"] {
        assert!(row.contains(constant), "{constant} in {row}");
    }
    assert!(!row.contains("arith.minsi"), "{row}");
    let f64s = function_text(&after, "long_f64");
    assert_eq!((prefetches(f64s), loops(f64s)), (1, 2), "{f64s}");
    assert!(f64s.contains("arith.constant 512 : index") && f64s.contains("arith.constant 15872 : index"), "{f64s}");
    let dot = function_text(&after, "two_reads");
    assert_eq!((prefetches(dot), loops(dot)), (2, 2), "{dot}");
    assert!(dot.contains("arith.constant 64512 : index"), "{dot}");
    for name in ["short_row", "no_carry", "down_rows", "outer_vector", "moving_row", "prefetched"] {
        assert_eq!(function_text(&before, name), function_text(&after, name), "@{name} changed");
    }
    insta::assert_snapshot!("prefetch_stream_pass", format!("// before\n{before}\n// after\n{after}"));
}

/// W7's sum and other full reductions of long vectors get one prefetch per
/// chunk loop from the pass (and the LLVM dialect keeps them); a short sum
/// and a sum along rows of 4 KiB come out of the pass unchanged.
#[test]
fn long_reductions_prefetch_ahead() {
    let w7 = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench/w07_sum.nxir"))
        .unwrap_or_else(|e| panic!("the shared bench's W7: {e}"));
    let pass = |name: &str, source: &str| {
        cpu_ir_between(&format!("{name}.nxir"), source, "tensorc-prefetch-rows,", "tensorc-prefetch-stream,")
    };
    let prefetches = |ir: &str| ir.matches("memref.prefetch").count();
    for (name, source) in [
        ("w07", w7),
        ("sum_f32", full("f32", "sum", 1_000_003, "f32")),
        ("max_f64", full("f64", "reduce_max", 300_001, "f64")),
        ("sum_s32", full("s32", "sum", 200_000, "s32")),
    ] {
        let (before, after) = pass(name, &source);
        assert_eq!(prefetches(&before), 0, "{name}:\n{before}");
        assert!(prefetches(&after) >= 1, "{name}:\n{after}");
        let llvm = tensorc::emit(&format!("{name}.nxir"), &source, Stage::LlvmDialect)
            .unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(llvm.contains("llvm.intr.prefetch"), "{name}:\n{llvm}");
    }
    for (name, source) in [
        ("sum_short", full("f32", "sum", 4000, "f32")),
        (
            "rows",
            "def main(x: f32[512][1024]) -> f32[512] {\n  s = sum x, axes: [1], keep_axes: false\n  return s\n}\n".to_owned(),
        ),
    ] {
        let (before, after) = pass(name, &source);
        assert_eq!(before, after, "{name}");
    }
}

#[test]
fn prefetched_reductions_agree_with_the_interpreter() {
    let programs = [
        // Lengths no chunk count divides: a split prefix and a remainder;
        // each chunk loop split where its prefetches would pass the end.
        ("sum_f32_1048579", full("f32", "sum", 1_048_579, "f32"), 1e-3),
        ("sum_f32_65537", full("f32", "sum", 65_537, "f32"), 1e-3),
        ("max_f32_300007", full("f32", "reduce_max", 300_007, "f32"), 0.0),
        ("min_f64_200003", full("f64", "reduce_min", 200_003, "f64"), 0.0),
        ("sum_f64_500001", full("f64", "sum", 500_001, "f64"), 1e-10),
        ("sum_s32_250001", full("s32", "sum", 250_001, "s32"), 0.0),
        ("sum_u8_1000001", full("u8", "sum", 1_000_001, "u32"), 0.0),
        (
            "dot_f32_250007",
            "def main(x: f32[250007], y: f32[250007]) -> f32 {\n  d = dot x, [0], [], y, [0], []\n  return d\n}\n".to_owned(),
            1e-3,
        ),
        (
            "sum_2d_f32",
            "def main(x: f32[3][100003]) -> f32 {\n  s = sum x, axes: nil, keep_axes: false\n  return s\n}\n".to_owned(),
            1e-3,
        ),
    ];
    let failures = differential_all(&programs, EdgeSet::Mild, 7);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

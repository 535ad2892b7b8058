//! `tensorc-fold-partials` (`passes/tensorc-passes/src/fold_partials.rs`):
//! reduction tree levels combined in registers.
//!
//! - the pass before and after on buffer-level tree levels: two chained
//!   levels (64 → 16 → 8 lanes; the second reads what the first produced,
//!   rewritten after it), and levels it must leave alone (a body with
//!   another op, a read of another buffer, a loop not right after the
//!   write), by snapshot and by counts;
//! - interpreter-vs-CPU runs of row reductions whose trees it rewrites
//!   (sum, max with NaN, min, product, argmax-style max, f32 and f64, rows
//!   longer than 64 and odd), and W5's softmax has no lane-by-lane code.

use crate::harness::{EdgeSet, before_and_after, differential_all, function_text};
use tensorc::Stage;

const LEVELS: &str = r#"
module {
  func.func @chained(%v: vector<64xf32>, %buf: memref<1x64xf32>, %buf2: memref<1x16xf32>) -> vector<8xf32> {
    %c0 = arith.constant 0 : index
    %c8 = arith.constant 8 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %i16 = arith.constant dense<0xFF800000> : vector<16xf32>
    %i8 = arith.constant dense<0xFF800000> : vector<8xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<64xf32>, memref<1x64xf32>
    %a = scf.for %k = %c0 to %c64 step %c16 iter_args(%acc = %i16) -> (vector<16xf32>) {
      %r = vector.transfer_read %buf[%c0, %k], %p {in_bounds = [true]} : memref<1x64xf32>, vector<16xf32>
      %m = arith.maximumf %r, %acc : vector<16xf32>
      scf.yield %m : vector<16xf32>
    }
    vector.transfer_write %a, %buf2[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<1x16xf32>
    %b = scf.for %k = %c0 to %c16 step %c8 iter_args(%acc = %i8) -> (vector<8xf32>) {
      %r = vector.transfer_read %buf2[%c0, %k], %p {in_bounds = [true]} : memref<1x16xf32>, vector<8xf32>
      %m = arith.maximumf %r, %acc : vector<8xf32>
      scf.yield %m : vector<8xf32>
    }
    return %b : vector<8xf32>
  }
  func.func @extra_op(%v: vector<64xf32>, %buf: memref<1x64xf32>) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %i16 = arith.constant dense<0.0> : vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<64xf32>, memref<1x64xf32>
    %a = scf.for %k = %c0 to %c64 step %c16 iter_args(%acc = %i16) -> (vector<16xf32>) {
      %r = vector.transfer_read %buf[%c0, %k], %p {in_bounds = [true]} : memref<1x64xf32>, vector<16xf32>
      %s = arith.mulf %r, %r : vector<16xf32>
      %m = arith.addf %s, %acc : vector<16xf32>
      scf.yield %m : vector<16xf32>
    }
    return %a : vector<16xf32>
  }
  func.func @other_buffer(%v: vector<64xf32>, %buf: memref<1x64xf32>, %other: memref<1x64xf32>) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %i16 = arith.constant dense<0.0> : vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<64xf32>, memref<1x64xf32>
    %a = scf.for %k = %c0 to %c64 step %c16 iter_args(%acc = %i16) -> (vector<16xf32>) {
      %r = vector.transfer_read %other[%c0, %k], %p {in_bounds = [true]} : memref<1x64xf32>, vector<16xf32>
      %m = arith.addf %r, %acc : vector<16xf32>
      scf.yield %m : vector<16xf32>
    }
    return %a : vector<16xf32>
  }
  func.func @not_after_the_write(%v: vector<64xf32>, %buf: memref<1x64xf32>, %w: vector<16xf32>) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %i16 = arith.constant dense<0.0> : vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<64xf32>, memref<1x64xf32>
    vector.transfer_write %w, %buf[%c0, %c16] {in_bounds = [true]} : vector<16xf32>, memref<1x64xf32>
    %a = scf.for %k = %c0 to %c64 step %c16 iter_args(%acc = %i16) -> (vector<16xf32>) {
      %r = vector.transfer_read %buf[%c0, %k], %p {in_bounds = [true]} : memref<1x64xf32>, vector<16xf32>
      %m = arith.addf %r, %acc : vector<16xf32>
      scf.yield %m : vector<16xf32>
    }
    return %a : vector<16xf32>
  }
}
"#;

#[test]
fn fold_partials_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::fold_partials;
    tensorc_mlir::register_external_pass(fold_partials::NAME, fold_partials::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, LEVELS, fold_partials::NAME);
    let chained = function_text(&after, "chained");
    // Both loops gone: 4 + 2 slices, 4 + 2 maximums, in loop order (the
    // read first, the accumulator second).
    assert!(!chained.contains("scf.for"), "{chained}");
    assert_eq!(
        chained.matches("vector.extract_strided_slice").count(),
        6,
        "{chained}"
    );
    assert_eq!(chained.matches("arith.maximumf").count(), 6, "{chained}");
    assert!(
        chained.contains("{offsets = [48], sizes = [16], strides = [1]}"),
        "{chained}"
    );
    assert!(
        chained.contains("{offsets = [8], sizes = [8], strides = [1]}"),
        "{chained}"
    );
    for name in ["extra_op", "other_buffer", "not_after_the_write"] {
        assert_eq!(
            function_text(&before, name),
            function_text(&after, name),
            "@{name} changed"
        );
    }
    insta::assert_snapshot!(
        "fold_partials_pass",
        format!("// before\n{before}\n// after\n{after}")
    );
}

fn rows(op: &str, dtype: &str, r: usize, c: usize) -> String {
    format!(
        "def main(x: {dtype}[{r}][{c}]) -> {dtype}[{r}] {{\n  y = {op} x, axes: [1]\n  return y\n}}\n"
    )
}

#[test]
fn folded_row_reductions_agree_with_the_interpreter() {
    let programs = [
        ("sum_f32", rows("sum", "f32", 33, 1000), 1e-5),
        ("max_f32", rows("reduce_max", "f32", 17, 777), 0.0),
        ("min_f64", rows("reduce_min", "f64", 9, 130), 0.0),
        ("product_f32", rows("product", "f32", 5, 129), 1e-5),
        ("sum_f64", rows("sum", "f64", 7, 4096), 1e-12),
    ];
    // Full edge values: NaN and infinities must propagate as before.
    let failures = differential_all(&programs, EdgeSet::Edge, 4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// W5's trees leave no lane-by-lane extracts and inserts.
#[test]
fn softmax_trees_stay_in_registers() {
    let source = crate::rowfuse::softmax("f32", 256, 1024);
    let asm = tensorc::emit("softmax.nxir", &source, Stage::Asm)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(
        !asm.contains("insertps") && !asm.contains("pextrq"),
        "{asm}"
    );
}

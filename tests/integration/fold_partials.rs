//! `tensorc-fold-partials` (`passes/tensorc-passes/src/fold_partials.rs`):
//! reduction tree levels combined in registers.
//!
//! - the pass before and after on buffer-level tree levels: two chained
//!   levels (64 → 16 → 8 lanes; the second reads what the first produced,
//!   rewritten after it; trees of slices without the neutral start value
//!   -inf), a start value that is not neutral combined once after the
//!   tree, a non-associative combiner kept in loop order, and levels it
//!   must leave alone (a body with
//!   another op, a read of another buffer, a loop not right after the
//!   write), by snapshot and by counts;
//! - the pass before and after on peeled remainder steps: a 5-lane step
//!   between the 16-lane write and the first level folds into the vector
//!   (then the level folds too), and steps it must leave alone (the buffer
//!   read by another op in between, a buffer that is an argument, a read
//!   of other lanes than the write's, full-width steps);
//! - interpreter-vs-CPU runs of row reductions whose trees it rewrites
//!   (sum, max with NaN, min, product, argmax-style max, f32, f64 and
//!   integers, rows longer than 64 and odd, rows with a remainder step in
//!   each class), and W5's softmax has no lane-by-lane code;
//! - on the real pipeline, a sum over rows of 37 leaves no narrow write
//!   into the partials (the store-forwarding stall the fold removes).

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
  func.func @start_kept(%v: vector<64xf32>, %buf: memref<1x64xf32>) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %i16 = arith.constant dense<1.0> : vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<64xf32>, memref<1x64xf32>
    %a = scf.for %k = %c0 to %c64 step %c16 iter_args(%acc = %i16) -> (vector<16xf32>) {
      %r = vector.transfer_read %buf[%c0, %k], %p {in_bounds = [true]} : memref<1x64xf32>, vector<16xf32>
      %m = arith.addf %r, %acc : vector<16xf32>
      scf.yield %m : vector<16xf32>
    }
    return %a : vector<16xf32>
  }
  func.func @in_order(%v: vector<64xf32>, %buf: memref<1x64xf32>) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c64 = arith.constant 64 : index
    %p = ub.poison : f32
    %i16 = arith.constant dense<0.0> : vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<64xf32>, memref<1x64xf32>
    %a = scf.for %k = %c0 to %c64 step %c16 iter_args(%acc = %i16) -> (vector<16xf32>) {
      %r = vector.transfer_read %buf[%c0, %k], %p {in_bounds = [true]} : memref<1x64xf32>, vector<16xf32>
      %m = arith.subf %acc, %r : vector<16xf32>
      scf.yield %m : vector<16xf32>
    }
    return %a : vector<16xf32>
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

const REMAINDERS: &str = r#"
module {
  func.func @remainder(%x: memref<100x37xf32>, %i: index) -> vector<4xf32> {
    %c0 = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %c16 = arith.constant 16 : index
    %c32 = arith.constant 32 : index
    %p = ub.poison : f32
    %z = arith.constant dense<0.0> : vector<4xf32>
    %buf = memref.alloc() {alignment = 64 : i64} : memref<1x16xf32>
    %v = vector.transfer_read %x[%i, %c0], %p {in_bounds = [true]} : memref<100x37xf32>, vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<1x16xf32>
    %sv = memref.subview %buf[0, 0] [1, 5] [1, 1] : memref<1x16xf32> to memref<1x5xf32, strided<[16, 1]>>
    %e = vector.transfer_read %x[%i, %c32], %p {in_bounds = [true]} : memref<100x37xf32>, vector<5xf32>
    %old = vector.transfer_read %buf[%c0, %c0], %p {in_bounds = [true]} : memref<1x16xf32>, vector<5xf32>
    %s = arith.addf %old, %e : vector<5xf32>
    vector.transfer_write %s, %sv[%c0, %c0] {in_bounds = [true]} : vector<5xf32>, memref<1x5xf32, strided<[16, 1]>>
    %a = scf.for %k = %c0 to %c16 step %c4 iter_args(%acc = %z) -> (vector<4xf32>) {
      %r = vector.transfer_read %buf[%c0, %k], %p {in_bounds = [true]} : memref<1x16xf32>, vector<4xf32>
      %m = arith.addf %r, %acc : vector<4xf32>
      scf.yield %m : vector<4xf32>
    }
    memref.dealloc %buf : memref<1x16xf32>
    return %a : vector<4xf32>
  }
  func.func @read_between(%x: memref<100x37xf32>, %i: index, %out: memref<16xf32>) {
    %c0 = arith.constant 0 : index
    %c32 = arith.constant 32 : index
    %p = ub.poison : f32
    %buf = memref.alloc() {alignment = 64 : i64} : memref<1x16xf32>
    %v = vector.transfer_read %x[%i, %c0], %p {in_bounds = [true]} : memref<100x37xf32>, vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<1x16xf32>
    %sv = memref.subview %buf[0, 0] [1, 5] [1, 1] : memref<1x16xf32> to memref<1x5xf32, strided<[16, 1]>>
    %e = vector.transfer_read %x[%i, %c32], %p {in_bounds = [true]} : memref<100x37xf32>, vector<5xf32>
    %old = vector.transfer_read %buf[%c0, %c0], %p {in_bounds = [true]} : memref<1x16xf32>, vector<5xf32>
    %w = vector.transfer_read %buf[%c0, %c0], %p {in_bounds = [true]} : memref<1x16xf32>, vector<16xf32>
    vector.transfer_write %w, %out[%c0] {in_bounds = [true]} : vector<16xf32>, memref<16xf32>
    %s = arith.addf %old, %e : vector<5xf32>
    vector.transfer_write %s, %sv[%c0, %c0] {in_bounds = [true]} : vector<5xf32>, memref<1x5xf32, strided<[16, 1]>>
    memref.dealloc %buf : memref<1x16xf32>
    return
  }
  func.func @argument_buffer(%x: memref<100x37xf32>, %i: index, %buf: memref<1x16xf32>) {
    %c0 = arith.constant 0 : index
    %c32 = arith.constant 32 : index
    %p = ub.poison : f32
    %v = vector.transfer_read %x[%i, %c0], %p {in_bounds = [true]} : memref<100x37xf32>, vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<1x16xf32>
    %e = vector.transfer_read %x[%i, %c32], %p {in_bounds = [true]} : memref<100x37xf32>, vector<5xf32>
    %old = vector.transfer_read %buf[%c0, %c0], %p {in_bounds = [true]} : memref<1x16xf32>, vector<5xf32>
    %s = arith.maximumf %old, %e : vector<5xf32>
    vector.transfer_write %s, %buf[%c0, %c0] {in_bounds = [true]} : vector<5xf32>, memref<1x16xf32>
    return
  }
  func.func @full_width_step(%x: memref<100x37xf32>, %i: index) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %p = ub.poison : f32
    %buf = memref.alloc() {alignment = 64 : i64} : memref<1x16xf32>
    %v = vector.transfer_read %x[%i, %c0], %p {in_bounds = [true]} : memref<100x37xf32>, vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<1x16xf32>
    %e = vector.transfer_read %x[%i, %c16], %p {in_bounds = [true]} : memref<100x37xf32>, vector<16xf32>
    %old = vector.transfer_read %buf[%c0, %c0], %p {in_bounds = [true]} : memref<1x16xf32>, vector<16xf32>
    %s = arith.addf %old, %e : vector<16xf32>
    vector.transfer_write %s, %buf[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<1x16xf32>
    %old2 = vector.transfer_read %buf[%c0, %c0], %p {in_bounds = [true]} : memref<1x16xf32>, vector<16xf32>
    %s2 = arith.addf %old2, %e : vector<16xf32>
    vector.transfer_write %s2, %buf[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<1x16xf32>
    %r = vector.transfer_read %buf[%c0, %c0], %p {in_bounds = [true]} : memref<1x16xf32>, vector<16xf32>
    memref.dealloc %buf : memref<1x16xf32>
    return %r : vector<16xf32>
  }
  func.func @other_lanes(%x: memref<100x37xf32>, %i: index) -> vector<16xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c32 = arith.constant 32 : index
    %p = ub.poison : f32
    %buf = memref.alloc() {alignment = 64 : i64} : memref<1x16xf32>
    %v = vector.transfer_read %x[%i, %c0], %p {in_bounds = [true]} : memref<100x37xf32>, vector<16xf32>
    vector.transfer_write %v, %buf[%c0, %c0] {in_bounds = [true]} : vector<16xf32>, memref<1x16xf32>
    %e = vector.transfer_read %x[%i, %c32], %p {in_bounds = [true]} : memref<100x37xf32>, vector<5xf32>
    %old = vector.transfer_read %buf[%c0, %c1], %p {in_bounds = [true]} : memref<1x16xf32>, vector<5xf32>
    %s = arith.addf %old, %e : vector<5xf32>
    vector.transfer_write %s, %buf[%c0, %c0] {in_bounds = [true]} : vector<5xf32>, memref<1x16xf32>
    %r = vector.transfer_read %buf[%c0, %c0], %p {in_bounds = [true]} : memref<1x16xf32>, vector<16xf32>
    memref.dealloc %buf : memref<1x16xf32>
    return %r : vector<16xf32>
  }
}
"#;

#[test]
fn fold_partials_folds_remainder_steps() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::fold_partials;
    tensorc_mlir::register_external_pass(fold_partials::NAME, fold_partials::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, REMAINDERS, fold_partials::NAME);
    let folded = function_text(&after, "remainder");
    // The remainder's read is lanes 0..5 of the vector, its sum goes back
    // into the vector, one write of all 16 lanes is left, and the level
    // after it is folded (no loop, four 4-lane slices of the new vector).
    assert!(!folded.contains("scf.for"), "{folded}");
    assert!(!folded.contains("vector<5xf32>, memref"), "{folded}");
    assert!(
        folded.contains("{offsets = [0], sizes = [5], strides = [1]} : vector<16xf32> to vector<5xf32>"),
        "{folded}"
    );
    assert!(
        folded.contains("vector.insert_strided_slice %"),
        "{folded}"
    );
    assert_eq!(folded.matches("vector.transfer_write").count(), 1, "{folded}");
    assert_eq!(folded.matches("sizes = [4]").count(), 4, "{folded}");
    // Full-width read-modify-writes are no remainders (two in a row were
    // each the other's whole write).
    for name in ["read_between", "argument_buffer", "other_lanes", "full_width_step"] {
        assert_eq!(
            function_text(&before, name),
            function_text(&after, name),
            "@{name} changed"
        );
    }
    insta::assert_snapshot!(
        "fold_partials_remainders",
        format!("// before\n{before}\n// after\n{after}")
    );
}

/// On the real pipeline, a sum over rows of 37 (two 16-lane steps and a
/// step of 5) writes its partials once per row, all 16 lanes.
#[test]
fn short_row_remainders_fold_in_the_pipeline() {
    use crate::harness::cpu_ir_upto;
    let source = rows("sum", "f32", 1000, 37);
    let opt = tensorc::emit("r37.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let after = cpu_ir_upto("r37.nxir", &source, &opt, fold_partials_step());
    assert!(after.contains("vector<16xf32>"), "{after}");
    assert!(!after.contains("vector<5xf32>, memref<1x5xf32"), "{after}");
    assert!(after.contains("vector.insert_strided_slice"), "{after}");
}

fn fold_partials_step() -> &'static str {
    tensorc_passes::fold_partials::NAME
}

#[test]
fn fold_partials_before_and_after() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::fold_partials;
    tensorc_mlir::register_external_pass(fold_partials::NAME, fold_partials::create);
    let mlir = Mlir::new();
    let (_, before, after) = before_and_after(&mlir, LEVELS, fold_partials::NAME);
    let chained = function_text(&after, "chained");
    // Both loops gone: 4 + 2 slices combined as trees, 3 + 1 maximums (the
    // start value -inf is max's neutral element, so it is not combined).
    assert!(!chained.contains("scf.for"), "{chained}");
    assert_eq!(
        chained.matches("vector.extract_strided_slice").count(),
        6,
        "{chained}"
    );
    assert_eq!(chained.matches("arith.maximumf").count(), 4, "{chained}");
    // A start value that is not neutral is combined once, after the tree.
    let kept = function_text(&after, "start_kept");
    assert!(!kept.contains("scf.for"), "{kept}");
    assert_eq!(kept.matches("arith.addf").count(), 4, "{kept}");
    // A combiner that is not associative stays a chain in loop order.
    let ordered = function_text(&after, "in_order");
    assert!(!ordered.contains("scf.for"), "{ordered}");
    assert_eq!(ordered.matches("arith.subf").count(), 4, "{ordered}");
    assert!(ordered.contains("arith.subf %cst"), "{ordered}");
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

/// `r` rows of `c` under two loops of one: many rows of up to
/// `SCALAR_ROW_MAX` elements are left to LLVM, a single row in the first
/// two loops keeps its vector class (and its remainder step).
fn one_by_rows(op: &str, dtype: &str, r: usize, c: usize) -> String {
    format!(
        "def main(x: {dtype}[1][1][{r}][{c}]) -> {dtype}[1][1][{r}] {{\n  y = {op} x, axes: [3]\n  return y\n}}\n"
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
        // Remainder steps folded into the partials: 16 + 5, 64 + 13,
        // 8 + 2, 16 + 15, integers exact.
        ("sum_f32_37", rows("sum", "f32", 41, 37), 1e-5),
        ("max_f32_77", rows("reduce_max", "f32", 23, 77), 0.0),
        ("min_f64_10", one_by_rows("reduce_min", "f64", 19, 10), 0.0),
        ("sum_s32_31", rows("sum", "s32", 29, 31), 0.0),
        ("max_s64_21", rows("reduce_max", "s64", 13, 21), 0.0),
        ("product_f64_45", rows("product", "f64", 11, 45), 1e-9),
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

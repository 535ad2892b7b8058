//! `tensorc-merge-chunks` (`passes/tensorc-passes/src/merge_chunks.rs`): the
//! two parallel loops the parallel step cuts an op into (chunks of two
//! sizes) become one.
//!
//! - the pass's input and output on the real pipeline's IR of an
//!   element-wise op of 1023 rows (one chunk of 511 rows and one of 512,
//!   each a loop of one trip before): by snapshot and by counts;
//! - a 1023-row product no longer computes its odd chunk on the calling
//!   thread: every register tile is in the outlined bodies, and one
//!   parallel loop runs them (the `LlvmDialect` stage);
//! - the pass on hand-written buffers: views between the loops move before
//!   them; a copy between them, a loop not from 0 or a lone part leave the
//!   loops apart; every mapping goes;
//! - interpreter-vs-CPU runs, one, two and three threads, of ops whose
//!   parallel step leaves a part of one chunk (products, f32 and s32, a
//!   product with an epilogue, element-wise, a row reduction), and two
//!   controls it cuts otherwise (argmax rows, a batch of three).

use crate::harness::{EdgeSet, before_and_after, cpu_ir_between, differential_all};
use crate::prefetch_panels::dot;
use tensorc::Stage;
use tensorc_passes::merge_chunks;
use tensorc_passes::parallel_schedule::{FIRST_PART, SECOND_PART};
use tensorc_passes::pipeline::{FOLD_PARTIALS, MERGE_CHUNKS};

#[test]
fn the_two_parts_run_in_one_loop() {
    let source = "def main(x: f32[1023][64]) -> f32[1023][64] {\n  y = add x, x\n  return y\n}\n";
    let (before, after) = cpu_ir_between("mc.nxir", source, FOLD_PARTIALS, MERGE_CHUNKS);
    // Before: 1023 rows in one chunk of 511 and one of 512, each its own
    // loop of one trip, told apart by their mappings.
    assert_eq!(before.matches("scf.forall (%arg2) in (1)").count(), 2, "{before}");
    assert_eq!(before.matches(&format!("{{mapping = [{FIRST_PART}]}}")).count(), 1, "{before}");
    assert_eq!(before.matches(&format!("{{mapping = [{SECOND_PART}]}}")).count(), 1, "{before}");
    // After: one loop of two trips choosing the part, the second at i - 1.
    assert_eq!(after.matches("scf.forall").count(), 1, "{after}");
    assert!(after.contains("scf.forall (%arg2) in (2)"), "{after}");
    assert!(after.contains("arith.cmpi ult, %arg2, %c1"), "{after}");
    assert_eq!(after.matches("scf.if").count(), 1, "{after}");
    assert!(after.contains("arith.subi %arg2, %c1"), "{after}");
    assert!(!after.contains("mapping"), "{after}");
    // The same work: both parts' vector writes are still there.
    assert_eq!(
        after.matches("vector.transfer_write").count(),
        before.matches("vector.transfer_write").count(),
        "{after}"
    );
    insta::assert_snapshot!("merge_chunks_pass", format!("// before\n{before}\n// after\n{after}"));
}

/// 1023 rows in chunks of about 32: one of 31 and 31 of 32. The 31 rows ran
/// on the calling thread before the parallel loop (a one-trip loop is
/// inlined): 3 % of the product on one thread.
#[test]
fn the_odd_chunk_of_a_product_runs_in_the_parallel_loop() {
    // The AVX-512 pipeline, which leaves this product to the unpacked
    // schedule (AVX2's packs it, and its chunks are A panels).
    let llvm = crate::harness::avx512_llvm_dialect("mc1023.nxir", &dot(1023, 1025, 1027));
    let main = llvm.split("llvm.func @__tensorc_par_").next().unwrap();
    let main = &main[main.find("llvm.func @main(").expect("main")..];
    assert_eq!(main.matches("llvm.intr.fmuladd").count(), 0, "no tile outside the parallel loop: {main}");
    // Two parallel loops: B's copy (`tensorc-repitch-b`: its rows are 4108
    // bytes apart) and the product.
    assert_eq!(main.matches("llvm.call @tensorc_parallel_for").count(), 2, "{main}");
}

/// `first` and `second` are the two parts' loops; `between` sits between
/// them.
fn pair(first: &str, between: &str, second: &str) -> String {
    format!(
        "func.func @f(%m: memref<7x4xf32>, %n: memref<7x4xf32>, %v: f32) {{
  {first} {{
    %c0 = arith.constant 0 : index
    memref.store %v, %m[%i, %c0] : memref<7x4xf32>
  }} {{mapping = [{FIRST_PART}]}}
  {between}
  {second} {{
    %c0 = arith.constant 0 : index
    %sub = memref.subview %m[3, 0] [4, 4] [1, 1] : memref<7x4xf32> to memref<4x4xf32, strided<[4, 1], offset: 12>>
    memref.store %v, %sub[%j, %c0] : memref<4x4xf32, strided<[4, 1], offset: 12>>
  }} {{mapping = [{SECOND_PART}]}}
  return
}}
"
    )
}

fn run_pass(input: &str) -> (String, String) {
    let _ = tensorc::emit("reg.nxir", "def main(x: f32) -> f32 {\n  return x\n}\n", Stage::LlvmDialect);
    let mlir = tensorc_mlir::Mlir::new();
    let (_, before, after) = before_and_after(&mlir, input, merge_chunks::NAME);
    (before, after)
}

#[test]
fn views_between_the_parts_move_before_them() {
    let view = "%w = memref.subview %n[0, 0] [3, 4] [1, 1] : memref<7x4xf32> to memref<3x4xf32, strided<[4, 1]>>";
    let (_, after) = run_pass(&pair("scf.forall (%i) in (3)", view, "scf.forall (%j) in (4)"));
    assert_eq!(after.matches("scf.forall").count(), 1, "{after}");
    assert!(after.contains("in (7)"), "{after}");
    assert!(after.find("memref.subview %arg1").unwrap() < after.find("scf.forall").unwrap(), "{after}");
    assert!(!after.contains("mapping"), "{after}");
    // The first part stores at i, the second at i - 3.
    assert!(after.contains("arith.cmpi ult, %arg3, %c3"), "{after}");
    assert!(after.contains("arith.subi %arg3, %c3"), "{after}");
}

#[test]
fn loops_apart_stay_apart() {
    let copy = "memref.copy %m, %n : memref<7x4xf32> to memref<7x4xf32>";
    let cases = [
        ("a copy between", pair("scf.forall (%i) in (3)", copy, "scf.forall (%j) in (4)")),
        ("not from 0", pair("scf.forall (%i) = (1) to (4) step (1)", "", "scf.forall (%j) in (4)")),
        ("two first parts", pair("scf.forall (%i) in (3)", "", "scf.forall (%j) in (4)").replace(SECOND_PART, FIRST_PART)),
    ];
    for (what, input) in cases {
        let (before, after) = run_pass(&input);
        assert_eq!(after.matches("scf.forall").count(), 2, "{what}: {after}");
        assert!(!after.contains("scf.if"), "{what}: {after}");
        assert!(before.contains("mapping") && !after.contains("mapping"), "{what}: {after}");
    }
}

#[test]
fn merged_parts_agree_with_the_interpreter() {
    let programs = [
        // Chunks of 16 rows: one of 15 and 15 of 16.
        ("dot_255", dot(255, 128, 64), 1e-4),
        // 16 + 17 rows.
        ("dot_33", dot(33, 65, 17), 1e-4),
        ("dot_1023_small_b", dot(1023, 40, 48), 1e-4),
        (
            "bias_relu_255",
            crate::harness::bias_relu("f32", 255, 96, 80),
            1e-4,
        ),
        (
            "elementwise_1023",
            "def main(x: f32[1023][64], y: f32[64]) -> f32[1023][64] {\n  z = multiply x, y\n  w = tanh z\n  return w\n}\n".to_owned(),
            1e-5,
        ),
        (
            "row_sums_1023",
            "def main(x: f32[1023][300]) -> f32[1023] {\n  s = sum x, axes: [1]\n  return s\n}\n".to_owned(),
            1e-4,
        ),
        (
            "argmax_1023",
            "def main(x: f32[1023][300]) -> s32[1023] {\n  i = argmax x, axis: 1\n  return i\n}\n".to_owned(),
            0.0,
        ),
        (
            "batch_3",
            "def main(a: f32[3][64][96], b: f32[3][96][80]) -> f32[3][64][80] {\n  c = dot a, [2], [0], b, [1], [0]\n  return c\n}\n".to_owned(),
            1e-4,
        ),
        (
            "s32_255",
            "def main(a: s32[255][64], b: s32[64][48]) -> s32[255][48] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n".to_owned(),
            0.0,
        ),
    ];
    let failures = crate::threads::on_threads(&[1, 2, 3], || differential_all(&programs, EdgeSet::Mild, 17));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

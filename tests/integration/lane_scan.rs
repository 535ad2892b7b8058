//! The one-pass lane-wise `argmax`/`argmin` (issue 6): the frontend's
//! lane scan (`reduce.rs` in `tensorc-frontend`) and its schedule
//! (`passes/tensorc-passes/src/lane_scan_schedule.rs`).
//!
//! - the scan's generic comes out of the kernel schedule as a loop over the
//!   chunks of a line updating two 64-lane vectors (AVX-512; lines of at
//!   most 1024 elements; snapshot of the tensor-level IR right after the
//!   kernel step), with no generic of two results left; longer lines scan
//!   128 lanes; for AVX2 the frontend sizes the scan to 32 lanes (`emit
//!   --cpu`);
//! - interpreter-vs-CPU runs of the shapes around its conditions (one and
//!   two chunks, the lane count not dividing the line, 64-bit and 16-bit
//!   elements, other axes) on one and two threads. The op case
//!   `tests/cases/ops/argmax_lanes.nxir` has the NaN, tie and ±0.0 lines.

use crate::harness::{EdgeSet, cpu_ir_upto, differential_all};
use tensorc::{Stage, Target};

fn argmax(xt: &str, args: &str, ot: &str) -> String {
    format!("def main(x: {xt}) -> {ot} {{\n  i = argmax x, {args}\n  return i\n}}\n")
}

/// The `opt` stage of `source` for the CPU `cpu`.
fn opt_for(name: &str, source: &str, cpu: &str) -> String {
    tensorc::emit_for(name, source, Stage::Opt, Target::Cpu, Some(cpu)).unwrap_or_else(|e| panic!("{}", e.render()))
}

#[test]
fn lane_scan_is_a_loop_of_vector_updates() {
    let source = argmax("f32[4][512]", "axis: 1", "s32[4]");
    let opt = opt_for("lanes.nxir", &source, "x86-64-v4");
    // The first chunk of 64 starts the lanes; the other seven are scanned.
    assert!(opt.contains("tensor<4x7x64xf32>"), "{opt}");
    let after = cpu_ir_upto("lanes.nxir", &source, &opt, "entry-point=tensorc_kernels_main}");
    // One compare-and-select per chunk on whole lane vectors, the values
    // and chunks carried by the chunk loop.
    assert!(after.contains("arith.cmpf ugt") && after.contains(": vector<64xf32>"), "{after}");
    assert!(after.contains("vector<64xi32>"), "{after}");
    assert!(!after.contains("linalg.generic {indexing_maps = [affine_map<(d0, d1, d2)"), "{after}");
    insta::assert_snapshot!("lane_scan_kernels", after);
}

/// Lines over 1024 elements scan 128 lanes: 1100 is eight chunks after
/// the first, the last overlapping it.
#[test]
fn long_lines_scan_128_lanes() {
    let source = argmax("f32[4][1100]", "axis: 1", "s32[4]");
    let opt = opt_for("lanes_long.nxir", &source, "x86-64-v4");
    assert!(opt.contains("tensor<4x8x128xf32>"), "{opt}");
}

/// For AVX2's sixteen registers the scan keeps four of values (32 lanes)
/// on every line, from 65 elements; 64 elements keep the two-pass form.
/// `linalg` (the frontend) and `asm` follow `--cpu`.
#[test]
fn avx2_scans_32_lanes() {
    let lanes = |n: usize| {
        let source = argmax(&format!("f32[4][{n}]"), "axis: 1", "s32[4]");
        let linalg = tensorc::emit_for("lanes.nxir", &source, Stage::Linalg, Target::Cpu, Some("x86-64-v3"))
            .unwrap_or_else(|e| panic!("{}", e.render()));
        (linalg, opt_for("lanes.nxir", &source, "x86-64-v3"))
    };
    // 512 = 16 chunks of 32; 1100 = 35 (the last overlapping the first);
    // 65 = 3 (two after the first).
    assert!(lanes(512).1.contains("tensor<4x15x32xf32>"));
    assert!(lanes(1100).1.contains("tensor<4x34x32xf32>"));
    let (linalg, _) = lanes(65);
    assert!(linalg.contains("tensor<4x2x32xf32>"), "{linalg}");
    let (linalg, _) = lanes(64);
    assert!(!linalg.contains("x32xf32>") && linalg.contains("tensorc.arg_key"), "{linalg}");
    let source = argmax("f32[4][512]", "axis: 1", "s32[4]");
    let asm = |cpu| {
        tensorc::emit_for("lanes.nxir", &source, Stage::Asm, Target::Cpu, Some(cpu))
            .unwrap_or_else(|e| panic!("{}", e.render()))
    };
    assert!(!asm("x86-64-v3").contains("zmm") && asm("x86-64-v4").contains("zmm"));
}

#[test]
fn lane_scans_agree_with_the_interpreter() {
    let programs: Vec<(&str, String, f64)> = vec![
        // Two chunks (the fewest the scan takes), many rows for threads:
        // of 64 lanes, of 128.
        ("rows_128", argmax("f32[600][128]", "axis: 1", "s32[600]"), 0.0),
        ("rows_256", argmax("f32[600][256]", "axis: 1", "s32[600]"), 0.0),
        ("rows_2048", argmax("f32[40][2048]", "axis: 1", "s32[40]"), 0.0),
        ("rows_1024_min_high", "def main(x: f32[300][1024]) -> s32[300] {\n  t = multiply x, 4.0\n  f = floor t\n  i = argmin f, axis: 1, tie_break: :high\n  return i\n}\n".to_owned(), 0.0),
        // Long lines: 40 chunks.
        ("rows_5120", argmax("f32[7][5120]", "axis: 1", "s32[7]"), 0.0),
        // The lanes not dividing the line: the scanned chunks overlap the
        // first (64 lanes: by 63 elements at 257, by one at 383; 128
        // lanes: by 52 at 1100).
        ("rows_1000", argmax("f32[9][1000]", "axis: 1", "s32[9]"), 0.0),
        ("rows_1100", argmax("f32[9][1100]", "axis: 1", "s32[9]"), 0.0),
        ("rows_257_high", argmax("f32[300][257]", "axis: 1, tie_break: :high", "s32[300]"), 0.0),
        ("rows_383_min", "def main(x: f32[200][383]) -> s32[200] {\n  t = multiply x, 4.0\n  f = floor t\n  i = argmin f, axis: 1\n  return i\n}\n".to_owned(), 0.0),
        // The two-pass form: one line (its reductions split for threads),
        // one chunk, other axes, 64- and 16-bit elements.
        ("one_line", argmax("f32[70000]", "axis: 0", "s32"), 0.0),
        ("rows_127", argmax("f32[9][127]", "axis: 1", "s32[9]"), 0.0),
        ("rows_255", argmax("f32[9][255]", "axis: 1", "s32[9]"), 0.0),
        ("cols_256", argmax("f32[256][40]", "axis: 0", "s32[40]"), 0.0),
        ("rows_f64", argmax("f64[5][512]", "axis: 1", "s32[5]"), 0.0),
        ("rows_f16", argmax("f16[5][512]", "axis: 1", "s32[5]"), 0.0),
        // s32 lines of equal values only (the start value never replaced).
        ("ints_equal", "def main(x: s32[4][384]) -> {s32[4], s32[4]} {\n  z = multiply x, 0\n  a = argmax z, axis: 1\n  b = argmin z, axis: 1, tie_break: :high\n  return {a, b}\n}\n".to_owned(), 0.0),
    ];
    let failures = crate::threads::on_threads(&[1, 2], || {
        differential_all(&programs, EdgeSet::Edge, 3)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Reductions over short rows (`passes/tensorc-passes/src/reduction_schedule.rs`,
//! `ROW_CLASSES` and `SCALAR_ROW_MAX`; argmax's index reduction tagged by the
//! frontend's `ARG_KEY` and given its schedule by `tensorc-row-fuse-mark`).
//!
//! - interpreter-vs-CPU runs of sums, maxima, argmax (tie low) and argmin
//!   (tie high) over rows of every class boundary (1, 2–7, 8–13 | 14–15,
//!   16–64, 65 and up) and a few lengths inside, 2-D, 3-D and 4-D, many
//!   rows (left to LLVM up to 13 elements) and one row in each of the
//!   first two loops (the vector classes), on one and two threads: argmax
//!   and max with the edge
//!   values (NaN, ±inf, ±0.0, ties), sums with the mild ones (they are
//!   reassociated: a tree of partials, or LLVM's across rows);
//! - many rows of 10 elements stay scalar loops after the kernel step (argmax
//!   one reduction carrying value and index), and LLVM vectorizes them
//!   across rows (interleaved groups: wide loads and shuffles);
//! - the kernel step splits argmax's two reductions over 14-element rows
//!   into 8-lane partials (values and indices), with no scalar row loop
//!   left, where they had been split 64 ways into a per-row buffer (the
//!   value) or stayed a scalar loop of branches (the index).

use crate::harness::{EdgeSet, cpu_ir_upto, differential_all};
use tensorc::Stage;

/// Lengths at and around the class boundaries.
const LENGTHS: [usize; 14] = [1, 2, 3, 4, 5, 8, 10, 13, 14, 15, 16, 37, 64, 65];

fn program(op: &str, x: &str, axis: usize, out: &str) -> String {
    let call = match op {
        "sum" => format!("sum x, axes: [{axis}]"),
        "reduce_max" => format!("reduce_max x, axes: [{axis}]"),
        "argmax" => format!("argmax x, axis: {axis}"),
        _ => format!("argmin x, axis: {axis}, tie_break: :high"),
    };
    format!("def main(x: {x}) -> {out} {{\n  y = {call}\n  return y\n}}\n")
}

fn programs(ops: &[&str]) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for n in LENGTHS {
        for op in ops {
            let it = if op.starts_with("arg") { "s32" } else { "f32" };
            out.push((format!("{op}_300x{n}"), program(op, &format!("f32[300][{n}]"), 1, &format!("{it}[300]")), 1e-5));
            out.push((format!("{op}_3x7x{n}"), program(op, &format!("f32[3][7][{n}]"), 2, &format!("{it}[3][7]")), 1e-5));
            out.push((format!("{op}_1x1x9x{n}"), program(op, &format!("f32[1][1][9][{n}]"), 3, &format!("{it}[1][1][9]")), 1e-5));
        }
    }
    out
}

fn run(ops: &[&str], inputs: EdgeSet) -> Vec<String> {
    let programs = programs(ops);
    let refs: Vec<(&str, String, f64)> = programs.iter().map(|(n, s, t)| (n.as_str(), s.clone(), *t)).collect();
    crate::threads::on_threads(&[1, 2], || differential_all(&refs, inputs, 5))
}

#[test]
fn short_argmax_and_max_agree_with_the_interpreter() {
    let failures = run(&["argmax", "argmin", "reduce_max"], EdgeSet::Edge);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn short_sums_agree_with_the_interpreter() {
    let failures = run(&["sum"], EdgeSet::Mild);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn many_short_rows_are_left_to_llvm() {
    let source = program("argmax", "f32[1000][10]", 1, "s32[1000]");
    let opt = tensorc::emit("short.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    let after = cpu_ir_upto("short.nxir", &source, &opt, "entry-point=tensorc_kernels_main}");
    // One reduction carrying the best value and its index (the frontend's
    // one-pass form for lines of at most 13 elements), tagged as scalar
    // rows, neither split nor vectorized by the kernel step.
    assert_eq!(after.matches("tensorc.reds02").count(), 1, "{after}");
    assert_eq!(after.matches("linalg.generic").count(), 1, "{after}");
    assert!(after.contains("outs(%1, %3 : tensor<1000xf32>, tensor<1000xi32>)"), "{after}");
    assert!(!after.contains("vector<"), "{after}");
    // LLVM vectorizes the loop over rows: the rows' elements come from wide
    // loads through shuffles (`vpermt2ps` with AVX-512) or are inserted lane
    // by lane (`vinsertps` with AVX2, Zen 3).
    let asm = tensorc::emit("short.nxir", &source, Stage::Asm).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(asm.contains("vperm") || asm.contains("vinsertps"), "{asm}");
}

#[test]
fn short_argmax_reductions_are_split_into_vector_partials() {
    let source = program("argmax", "f32[1000][14]", 1, "s32[1000]");
    let opt = tensorc::emit("short.nxir", &source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(opt.contains("tensorc.arg_key"), "{opt}");
    let after = cpu_ir_upto("short.nxir", &source, &opt, "entry-point=tensorc_kernels_main}");
    // The value's and the index's partials: 8 lanes each (and a remainder
    // step of 6), then the tree.
    assert!(after.contains("vector<8xf32>"), "{after}");
    assert!(after.contains("vector<8xi32>"), "{after}");
    assert!(after.contains("arith.minsi") && after.contains("vector<2xi32>"), "{after}");
    // No generic is left for the scalar lowering, and no 64-wide partial.
    assert!(!after.contains("linalg.generic"), "{after}");
    assert!(!after.contains("64xf32"), "{after}");
}

/// The one-pass form of `argmax`/`argmin` over many short lines (the
/// frontend's `short_lines`: one reduction carrying value and index, left
/// to the scalar lowering) on every element type, both tie breaks, with the
/// edge values, lines of 2, 7 and 13 elements, behind an element-wise
/// producer and a fused softmax, on one and two threads.
#[test]
fn one_pass_short_argmax_of_every_type_agrees_with_the_interpreter() {
    let mut programs = Vec::new();
    for ty in ["f64", "f16", "bf16", "s32", "s8", "u8", "u16", "s64"] {
        for n in [2, 7, 13] {
            for (op, tie) in [("argmax", "low"), ("argmin", "high"), ("argmin", "low"), ("argmax", "high")] {
                programs.push((
                    format!("{op}_{tie}_{ty}_300x{n}"),
                    format!("def main(x: {ty}[300][{n}]) -> s32[300] {{\n  y = {op} x, axis: 1, tie_break: :{tie}\n  return y\n}}\n"),
                    0.0,
                ));
            }
        }
    }
    programs.push((
        "argmax_of_sum_f32_4x50x9".to_owned(),
        "def main(x: f32[4][50][9], y: f32[9]) -> u8[4][50] {\n  s = add x, y\n  i = argmax s, axis: 2, tie_break: :high  u8[4][50]\n  return i\n}\n".to_owned(),
        0.0,
    ));
    programs.push((
        "argmax_of_softmax_f32_300x11".to_owned(),
        "def main(x: f32[300][11]) -> s32[300] {\n  m = reduce_max x, axes: [1], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [1], keep_axes: true\n  p = divide e, s\n  i = argmax p, axis: 1\n  return i\n}\n".to_owned(),
        0.0,
    ));
    let refs: Vec<(&str, String, f64)> = programs.iter().map(|(n, s, t)| (n.as_str(), s.clone(), *t)).collect();
    let failures = crate::threads::on_threads(&[1, 2], || differential_all(&refs, EdgeSet::Edge, 9));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Reductions over several axes but not all (the frontend's one reduction
/// per axis, the last first): every kind, float and integer types, with
/// and without `keep_axes`, against the interpreter with the edge values
/// (integers, booleans, maxima and minima exactly; float sums and products
/// within the tolerance of a reassociation), on one and two threads.
#[test]
fn reductions_over_several_axes_agree_with_the_interpreter() {
    let mut programs = Vec::new();
    for (op, ty, out_ty) in [
        ("sum", "f32", "f32"),
        ("sum", "s8", "s32"),
        ("sum", "u16", "u32"),
        ("product", "f64", "f64"),
        ("product", "s32", "s32"),
        ("reduce_max", "f32", "f32"),
        ("reduce_min", "bf16", "bf16"),
        ("all", "f32", "u8"),
        ("any", "s16", "u8"),
    ] {
        let tol = if ty.starts_with('f') || ty == "bf16" { 1e-4 } else { 0.0 };
        programs.push((
            format!("{op}_{ty}_axes_0_2"),
            format!("def main(x: {ty}[6][37][11]) -> {out_ty}[37] {{\n  y = {op} x, axes: [0, 2]\n  return y\n}}\n"),
            tol,
        ));
        programs.push((
            format!("{op}_{ty}_axes_1_3_keep"),
            format!(
                "def main(x: {ty}[3][5][4][9]) -> {out_ty}[3][1][4][1] {{\n  y = {op} x, axes: [3, 1], keep_axes: true\n  return y\n}}\n"
            ),
            tol,
        ));
        programs.push((
            format!("{op}_{ty}_axes_1_2"),
            format!("def main(x: {ty}[70][33][65]) -> {out_ty}[70] {{\n  y = {op} x, axes: [1, 2]\n  return y\n}}\n"),
            tol,
        ));
    }
    let refs: Vec<(&str, String, f64)> = programs.iter().map(|(n, s, t)| (n.as_str(), s.clone(), *t)).collect();
    let failures = crate::threads::on_threads(&[1, 2], || differential_all(&refs, EdgeSet::Edge, 11));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

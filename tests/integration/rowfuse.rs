//! Row fusion (issue 6): `tensorc-row-fuse-mark` (`passes/tensorc-passes/src/row_fuse.rs`)
//! and the row-fusion step (`row_fuse_schedule.rs`).
//!
//! - the marker and the step on softmax, before and after (snapshot);
//! - softmax fused into one loop over rows: one parallel loop in the whole
//!   program instead of one per op;
//! - interpreter-vs-CPU runs of the chains it fuses and of the ones it must
//!   leave alone, on odd shapes (rows not a multiple of the thread chunk,
//!   widths not a multiple of 16, one row), keep_axes true and false, f32,
//!   f64, f16, bf16 and s32, several chains in one function, producers with
//!   uses outside the chain, column reductions feeding a row chain;
//! - reductions over axes other than the last (the kernel schedule's
//!   vector of partial results per row) against the interpreter.

use crate::harness::{EdgeSet, Settings, before_and_after, differential};
use tensorc::Stage;

/// Softmax over the last axis of a `rows`×`cols` matrix (also used by other
/// tests of row chains).
pub(crate) fn softmax(dtype: &str, rows: usize, cols: usize) -> String {
    format!(
        "def main(x: {dtype}[{rows}][{cols}]) -> {dtype}[{rows}][{cols}] {{
  m = reduce_max x, axes: [1], keep_axes: true
  d = subtract x, m
  e = exp d
  s = sum e, axes: [1], keep_axes: true
  y = divide e, s
  return y
}}
"
    )
}

/// Layer normalization of each row (no scale or shift).
pub(crate) fn layernorm(dtype: &str, rows: usize, cols: usize) -> String {
    format!(
        "def main(x: {dtype}[{rows}][{cols}]) -> {dtype}[{rows}][{cols}] {{
  s = sum x, axes: [1], keep_axes: true
  mu = divide s, {cols}.0
  d = subtract x, mu
  sq = multiply d, d
  vs = sum sq, axes: [1], keep_axes: true
  var = divide vs, {cols}.0
  ve = add var, 1.0e-5
  r = rsqrt ve
  y = multiply d, r
  return y
}}
"
    )
}

/// Chains the marker fuses and chains it must (partly) leave alone.
fn programs() -> Vec<(String, String, f64)> {
    let mut p: Vec<(String, String, f64)> = Vec::new();
    for (rows, cols) in [
        (1, 5),
        (3, 17),
        (37, 100),
        (300, 1000),
        (1000, 33),
        (65, 16),
        (2, 4097),
    ] {
        p.push((
            format!("softmax_{rows}x{cols}"),
            softmax("f32", rows, cols),
            1e-5,
        ));
    }
    for (rows, cols) in [(1, 1024), (129, 77), (200, 300), (513, 64)] {
        p.push((
            format!("layernorm_{rows}x{cols}"),
            layernorm("f32", rows, cols),
            1e-4,
        ));
    }
    // Rank 3: one batch (tiled along the second loop), several, one row.
    for (b, rows, cols) in [(1, 600, 100), (1, 7, 33), (3, 5, 18), (2, 1, 40)] {
        let t = format!("f32[{b}][{rows}][{cols}]");
        p.push((
            format!("softmax3_{b}x{rows}x{cols}"),
            format!(
                "def main(x: {t}) -> {t} {{
  m = reduce_max x, axes: [2], keep_axes: true
  d = subtract x, m
  e = exp d
  s = sum e, axes: [2], keep_axes: true
  y = divide e, s
  return y
}}
"
            ),
            1e-5,
        ));
    }
    p.push(("softmax_f64".into(), softmax("f64", 41, 23), 1e-12));
    p.push(("layernorm_f64".into(), layernorm("f64", 300, 129), 1e-10));
    p.push(("softmax_f16".into(), softmax("f16", 13, 40), 1e-2));
    p.push(("layernorm_bf16".into(), layernorm("bf16", 9, 70), 5e-2));
    p.push((
        // keep_axes false: a rank-1 root over the rows, two reductions of x.
        "logsumexp_keep_false".into(),
        "def main(x: f32[37][45]) -> f32[37] {
  m = reduce_max x, axes: [1], keep_axes: true
  d = subtract x, m
  e = exp d
  s = sum e, axes: [1]
  l = log s
  mm = reduce_max x, axes: [1]
  y = add l, mm
  return y
}
"
        .into(),
        1e-5,
    ));
    p.push((
        // A member value that is also a result stays outside the chain.
        "softmax_returns_exp".into(),
        "def main(x: f32[70][33]) -> {f32[70][33], f32[70][33]} {
  m = reduce_max x, axes: [1], keep_axes: true
  d = subtract x, m
  e = exp d
  s = sum e, axes: [1], keep_axes: true
  y = divide e, s
  return {y, e}
}
"
        .into(),
        1e-5,
    ));
    p.push((
        // A column reduction feeding a row chain is not row-local.
        "column_mean_then_row_norm".into(),
        "def main(x: f32[50][31]) -> f32[50][31] {
  c = sum x, axes: [0], keep_axes: true
  d = subtract x, c
  s = sum d, axes: [1], keep_axes: true
  y = divide d, s
  return y
}
"
        .into(),
        1e-4,
    ));
    p.push((
        // Two chains in one function, rank 3 (rows are the first axis).
        "two_chains_rank3".into(),
        "def main(x: f32[3][5][33], w: f32[40][18]) -> {f32[3][5][33], f32[40][18]} {
  m = reduce_max x, axes: [2], keep_axes: true
  d = subtract x, m
  e = exp d
  s = sum e, axes: [2], keep_axes: true
  y = divide e, s
  t = sum w, axes: [1], keep_axes: true
  u = subtract w, t
  v = multiply u, u
  return {y, v}
}
"
        .into(),
        1e-5,
    ));
    p.push((
        "integer_row_center".into(),
        "def main(x: s32[77][19]) -> s32[77][19] {
  s = sum x, axes: [1], keep_axes: true
  m = reduce_max x, axes: [1], keep_axes: true
  d = subtract x, s
  y = multiply d, m
  return y
}
"
        .into(),
        0.0,
    ));
    p
}

#[test]
fn fused_chains_agree_with_the_interpreter() {
    let mut failures = Vec::new();
    for (name, source, tolerance) in programs() {
        let settings = Settings {
            tolerance,
            inputs: EdgeSet::Mild,
            seeds: vec![3],
        };
        for f in differential(&format!("{name}.nxir"), &source, &settings) {
            failures.push(format!("{name}: {f}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Chains over rows of at most `SCALAR_ROW_MAX` elements take
/// `SHORT_ROWS_STEP` rows per step (peeled: a remainder step for row
/// counts 16 does not divide; one row per step for 16 rows or fewer), on
/// one and two threads, 2-D and 3-D, with the edge values (NaN and
/// infinities propagate through the scalar reductions as through the
/// vector ones).
#[test]
fn short_row_chains_agree_with_the_interpreter() {
    let mut programs: Vec<(String, String, f64)> = Vec::new();
    for (rows, cols) in [(16, 10), (17, 10), (33, 3), (1000, 13), (4099, 2), (300, 14)] {
        programs.push((format!("softmax_{rows}x{cols}"), softmax("f32", rows, cols), 1e-5));
        programs.push((format!("layernorm_{rows}x{cols}"), layernorm("f32", rows, cols), 1e-4));
    }
    programs.push(("softmax_f64_100x5".into(), softmax("f64", 100, 5), 1e-12));
    programs.push((
        "softmax_3d".into(),
        "def main(x: f32[3][40][7]) -> f32[3][40][7] {\n  m = reduce_max x, axes: [2], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [2], keep_axes: true\n  y = divide e, s\n  return y\n}\n".into(),
        1e-5,
    ));
    programs.push((
        "logsumexp_1x50x9".into(),
        "def main(x: f32[1][50][9]) -> f32[1][50] {\n  m = reduce_max x, axes: [2], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [2], keep_axes: true\n  l = log s\n  r = add l, m\n  y = reshape r  f32[1][50]\n  return y\n}\n".into(),
        1e-5,
    ));
    let named: Vec<(&str, String, f64)> = programs.iter().map(|(n, s, t)| (n.as_str(), s.clone(), *t)).collect();
    let failures = crate::threads::on_threads(&[1, 2], || crate::harness::differential_all(&named, EdgeSet::Edge, 5));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Reductions over axes other than the last (the kernel schedule tiles
/// them 1 x ... x 16: a vector of partial results per row step), on odd
/// shapes, keep_axes true and false, several dtypes.
#[test]
fn outer_axis_reductions_agree_with_the_interpreter() {
    let programs = [
        (
            "sum_axis0",
            "def main(x: f32[33][45]) -> f32[45] {\n  s = sum x, axes: [0]\n  return s\n}\n",
            1e-5,
        ),
        (
            "sum_axis0_keep",
            "def main(x: f32[7][100]) -> f32[1][100] {\n  s = sum x, axes: [0], keep_axes: true\n  return s\n}\n",
            1e-5,
        ),
        (
            "max_axis1_rank3",
            "def main(x: f32[5][7][19]) -> f32[5][19] {\n  s = reduce_max x, axes: [1]\n  return s\n}\n",
            0.0,
        ),
        (
            "min_axes01_rank3",
            "def main(x: f64[4][6][17]) -> f64[17] {\n  s = reduce_min x, axes: [0, 1]\n  return s\n}\n",
            0.0,
        ),
        (
            "sum_axis0_f16",
            "def main(x: f16[9][40]) -> f16[40] {\n  s = sum x, axes: [0]\n  return s\n}\n",
            1e-2,
        ),
        (
            "sum_axis0_s32",
            "def main(x: s32[17][100]) -> s32[100] {\n  s = sum x, axes: [0]\n  return s\n}\n",
            0.0,
        ),
        (
            "product_axis0_one_row",
            "def main(x: f32[1][20]) -> f32[20] {\n  s = product x, axes: [0]\n  return s\n}\n",
            1e-6,
        ),
        (
            // A softmax over the first axis: outer-axis reductions and
            // (0, d1) broadcasts, no row chain.
            "softmax_axis0",
            "def main(x: f32[37][45]) -> f32[37][45] {\n  m = reduce_max x, axes: [0], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [0], keep_axes: true\n  y = divide e, s\n  return y\n}\n",
            1e-5,
        ),
        (
            "sum_axis0_large",
            "def main(x: f32[2000][37]) -> f32[37] {\n  s = sum x, axes: [0]\n  return s\n}\n",
            1e-4,
        ),
    ];
    let mut failures = Vec::new();
    for (name, source, tolerance) in programs {
        let settings = Settings {
            tolerance,
            inputs: EdgeSet::Mild,
            seeds: vec![5],
        };
        for f in differential(&format!("{name}.nxir"), source, &settings) {
            failures.push(format!("{name}: {f}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Vectorized: 16-lane steps (scalar loops before the schedule).
    let llvm = tensorc::emit("sum_axis0.nxir", programs[0].1, Stage::LlvmDialect)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(llvm.contains("vector<16xf32>"), "{llvm}");
}

/// Unfused, a 300×1000 softmax is four parallel ops (the row maximum, the
/// exponentials, the row sums, the division), each a pass over the data;
/// fused it is one loop over row chunks.
/// Layernorm likewise (two reductions, three broadcasting steps).
#[test]
fn softmax_and_layernorm_are_one_parallel_loop_over_rows() {
    for (name, source) in [
        ("softmax", softmax("f32", 300, 1000)),
        ("layernorm", layernorm("f32", 300, 1000)),
    ] {
        let llvm = tensorc::emit(&format!("{name}.nxir"), &source, Stage::LlvmDialect)
            .unwrap_or_else(|e| panic!("{}", e.render()));
        let calls = llvm.matches("llvm.call @tensorc_parallel_for(").count();
        assert_eq!(calls, 1, "{name}: {calls} parallel loops");
        assert!(llvm.contains("vector<16xf32>"), "{name}: {llvm}");
    }
}

#[test]
fn marker_and_row_fusion_before_and_after() {
    use tensorc_mlir::{Mlir, PrintOptions};
    use tensorc_passes::matmul_schedule::script_file;
    use tensorc_passes::row_fuse;
    use tensorc_passes::row_fuse_schedule::{ENTRY, row_fuse_schedule};
    tensorc_mlir::register_external_pass(row_fuse::NAME, row_fuse::create);
    let opt = tensorc::emit("softmax.nxir", &softmax("f32", 6, 40), Stage::Opt)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let mlir = Mlir::new();
    let (mut m, _, marked) = before_and_after(&mlir, &opt, row_fuse::NAME);
    // 6×40 is too small for threads: the root is tagged with chunk 0; the
    // two reductions, their fills and the exponentials are members.
    assert_eq!(
        marked.matches("tensorc.rowfuse_k1_d0_t0").count(),
        1,
        "{marked}"
    );
    assert_eq!(marked.matches("tensorc.rowfuse_m").count(), 5, "{marked}");
    // Both broadcasting steps get the element-wise schedule's tag.
    assert_eq!(marked.matches("tensorc.ew2").count(), 2, "{marked}");
    let library = script_file(&row_fuse_schedule()).unwrap();
    mlir.run_pipeline(
        &mut m,
        &format!(
            "transform-preload-library{{transform-library-paths={}}},transform-interpreter{{entry-point={ENTRY}}},canonicalize",
            library.display()
        ),
        "test",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let fused = mlir.print(&m, PrintOptions::default());
    // One loop over the rows holds every op; the temporaries are one row.
    assert_eq!(fused.matches("scf.for ").count(), 1, "{fused}");
    assert_eq!(fused.matches("linalg.generic").count(), 4, "{fused}");
    assert!(!fused.contains("tensor.empty() : tensor<6x"), "{fused}");
    insta::assert_snapshot!(
        "row_fuse",
        format!("// marked\n{marked}\n// fused\n{fused}")
    );
}

/// A `[1][S][D]` softmax has one row in its first loop: the chain is tiled
/// along the first two (one row of `S` at a time), and threads split `S`.
#[test]
fn batch_one_rank3_softmax_is_tiled_along_its_second_loop() {
    use tensorc_mlir::Mlir;
    use tensorc_passes::row_fuse;
    tensorc_mlir::register_external_pass(row_fuse::NAME, row_fuse::create);
    let source = "def main(x: f32[1][600][100]) -> f32[1][600][100] {
  m = reduce_max x, axes: [2], keep_axes: true
  d = subtract x, m
  e = exp d
  s = sum e, axes: [2], keep_axes: true
  y = divide e, s
  return y
}
";
    let opt = tensorc::emit("softmax3.nxir", source, Stage::Opt)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let mlir = Mlir::new();
    let (_, _, marked) = before_and_after(&mlir, &opt, row_fuse::NAME);
    assert_eq!(
        marked.matches("tensorc.rowfuse_k2_d1_t").count(),
        1,
        "{marked}"
    );
    assert_eq!(marked.matches("tensorc.rowfuse_m").count(), 5, "{marked}");
    let llvm = tensorc::emit("softmax3.nxir", source, Stage::LlvmDialect)
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(
        llvm.matches("llvm.call @tensorc_parallel_for(").count(),
        1,
        "{llvm}"
    );
}

/// `logsumexp` over rows: upstream's fusion puts `exp(x − max)` into the
/// sum, which then reads the row maximum broadcast (`(d0, 0)`), which the
/// reduction matchers refuse: `tensorc-row-fuse-mark` gives such row
/// reductions their class's tag (before: scalar loops with a scalar `exp`,
/// 4096×1000 in 9.6 ms against XLA's 1.35). Variance-like sums of
/// `(x − mean)²` and maxima of `x·c` (a column broadcast) too; many short
/// rows stay with the scalar lowering. Against the interpreter on one and
/// two threads.
#[test]
fn broadcast_row_reductions_get_the_reduction_schedule() {
    use tensorc_passes::reduction_schedule::{broadcast_row_reduction_tag, row_reduction_tag};
    let lse = |rows: usize, cols: usize| {
        format!(
            "def main(x: f32[{rows}][{cols}]) -> f32[{rows}] {{\n  m = reduce_max x, axes: [1], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [1]\n  l = log s\n  m2 = reshape m  f32[{rows}]\n  y = add l, m2\n  return y\n}}\n"
        )
    };
    let cases = [
        ("lse_4096x1000", lse(4096, 1000), Some(row_reduction_tag(2, 1000).unwrap())),
        ("lse_37x77", lse(37, 77), Some(row_reduction_tag(2, 77).unwrap())),
        (
            "var_3x50x77",
            "def main(x: f32[3][50][77]) -> f32[3][50] {\n  s = sum x, axes: [2], keep_axes: true\n  mu = divide s, 77.0\n  d = subtract x, mu\n  q = multiply d, d\n  v = sum q, axes: [2]\n  return v\n}\n".to_string(),
            Some(row_reduction_tag(3, 77).unwrap()),
        ),
        (
            "colmax_300x130",
            "def main(x: f32[300][130], b: f32[130], c: f32[300][1]) -> f32[300] {\n  y = add x, b\n  z = multiply y, c\n  m = reduce_max z, axes: [1]\n  return m\n}\n".to_string(),
            Some(row_reduction_tag(2, 130).unwrap()),
        ),
        (
            "short_5000x9",
            "def main(x: f64[5000][9], c: f64[5000][1]) -> f64[5000] {\n  d = subtract x, c\n  e = exp d\n  s = sum e, axes: [1]\n  return s\n}\n".to_string(),
            None,
        ),
    ];
    for (name, source, tag) in &cases {
        let rel = format!("{name}.nxir");
        let opt = tensorc::emit(&rel, source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        let marked = crate::harness::cpu_ir_upto(&rel, source, &opt, "tensorc-row-fuse-mark,");
        // Only the marker tags here (the matchers tag the plain reductions
        // later), so the class's tag is the broadcast reduction's.
        match tag {
            Some(t) => assert_eq!(marked.matches(t.as_str()).count(), 1, "{name}: {t}:\n{marked}"),
            None => assert!(!marked.contains("tensorc.red"), "{name}:\n{marked}"),
        }
    }
    assert_eq!(broadcast_row_reduction_tag(&[5000, 9]), None);
    let llvm = tensorc::emit("lse.nxir", &cases[0].1, Stage::LlvmDialect).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(llvm.contains("vector<16xf32>"), "logsumexp stays scalar");
    let settings = Settings { tolerance: 2e-6, inputs: EdgeSet::Mild, seeds: vec![9] };
    let failures = crate::threads::on_threads(&[1, 2], || {
        cases.iter().flat_map(|(name, source, _)| differential(&format!("{name}.nxir"), source, &settings)).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

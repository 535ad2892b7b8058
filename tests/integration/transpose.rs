//! Transposes on the CPU (issue 6): the frontend's tags and the transpose
//! step (`passes/tensorc-passes/src/transpose_schedule.rs`).
//!
//! - the step on a small transpose, before and after (snapshot): square
//!   blocks, peeled remainders, vectorized into row reads, a transpose in
//!   registers and row writes;
//! - interpreter-vs-CPU runs of transposes of every rank the schedule
//!   covers (2 to 6, and 7, which it leaves alone), every permutation of
//!   rank 3, the 4-D layouts of attention heads and of NCHW/NHWC, every
//!   element width (s8, u16, bf16, f16, s32, f32, f64), row copies of
//!   one vector and longer ones, sizes that are not
//!   multiples of the blocks, smaller than one block, one-element axes, and
//!   large enough to be cut into thread chunks (in whole blocks, checked
//!   on the parallel marker's tags); transposes feeding
//!   element-wise ops; and dots contracted over an operand's other matrix
//!   axis (whose operand the frontend transposes), plain, batched and of
//!   packed-matmul size.

use crate::harness::{EdgeSet, Settings, before_and_after, differential};
use tensorc::Stage;

/// One function transposing `x: dtype[shape]` by `perm`.
fn transpose(dtype: &str, shape: &[usize], perm: &[usize]) -> String {
    let ty = |s: &[usize]| {
        let dims: String = s.iter().map(|d| format!("[{d}]")).collect();
        format!("{dtype}{dims}")
    };
    let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let list = perm
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "def main(x: {}) -> {} {{\n  y = transpose x, [{list}]\n  return y\n}}\n",
        ty(shape),
        ty(&out)
    )
}

/// Every permutation of `0..n`, in lexicographic order.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut all = Vec::new();
    for first in 0..n {
        for rest in permutations(n - 1) {
            let mut p = vec![first];
            p.extend(rest.into_iter().map(|r| if r >= first { r + 1 } else { r }));
            all.push(p);
        }
    }
    all
}

fn transposes() -> Vec<(String, String)> {
    let mut p = Vec::new();
    let mut add = |dtype: &str, shape: &[usize], perm: &[usize]| {
        p.push((
            format!("{dtype}_{shape:?}_{perm:?}"),
            transpose(dtype, shape, perm),
        ));
    };
    // 2-D: multiples of every block side, odd sizes, smaller than a
    // block, a single row or column, and large enough for thread chunks
    // (whose chunk sizes are not multiples of the block).
    for dtype in ["f32", "f64", "bf16", "f16", "s8", "u16", "s32"] {
        for shape in [
            [16, 16],
            [64, 32],
            [17, 33],
            [5, 3],
            [1, 37],
            [45, 1],
            [100, 257],
        ] {
            add(dtype, &shape, &[1, 0]);
        }
    }
    add("f32", &[1999, 301], &[1, 0]);
    add("f64", &[257, 383], &[1, 0]);
    add("s8", &[300, 517], &[1, 0]);
    // Every permutation of rank 3, on odd sizes and with a unit axis.
    for perm in permutations(3).into_iter().skip(1) {
        add("f32", &[5, 17, 33], &perm);
        add("s8", &[40, 3, 35], &perm);
        add("f64", &[9, 1, 18], &perm);
    }
    // Rank 4: attention heads, NCHW <-> NHWC, a full reversal.
    for perm in [
        [0, 2, 1, 3],
        [0, 2, 3, 1],
        [0, 3, 1, 2],
        [3, 2, 1, 0],
        [1, 0, 3, 2],
    ] {
        add("f32", &[2, 19, 5, 33], &perm);
        add("bf16", &[3, 17, 18, 7], &perm);
    }
    add("f32", &[4, 197, 12, 64], &[0, 2, 1, 3]);
    // Keeping the innermost axis: rows of one vector copy (at most 2048
    // bits) and longer rows, which stay loops.
    for (dtype, n) in [
        ("f32", 64),
        ("f32", 65),
        ("s8", 200),
        ("s8", 300),
        ("f64", 31),
        ("bf16", 129),
    ] {
        add(dtype, &[5, 3, n], &[1, 0, 2]);
    }
    // Ranks 5 and 6 (the schedule's largest), and 7 (left to loops).
    add("f32", &[2, 3, 17, 5, 19], &[4, 0, 3, 1, 2]);
    add("u16", &[2, 3, 2, 17, 2, 18], &[0, 5, 2, 3, 4, 1]);
    add("s32", &[2, 1, 3, 2, 2, 3, 17], &[6, 5, 4, 3, 2, 1, 0]);
    p
}

#[test]
fn transposes_agree_with_the_interpreter() {
    let settings = Settings {
        tolerance: 0.0,
        inputs: EdgeSet::Edge,
        seeds: vec![5],
    };
    let mut failures = Vec::new();
    for (name, source) in transposes() {
        for f in differential(&format!("{name}.nxir"), &source, &settings) {
            failures.push(format!("{name}: {f}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Transposes whose result feeds element-wise ops and reductions, and
/// element-wise results that are transposed: the blocks compose with the
/// element-wise schedule and with fusion.
#[test]
fn transposes_inside_computations_agree_with_the_interpreter() {
    let source = "def add_t(x: f32[37][70], y: f32[70][37]) -> f32[70][37] {
  t = transpose x, [1, 0]
  z = add t, y
  return z
}

def t_of_exp(x: f32[33][130]) -> f32[130][33] {
  e = exp x
  t = transpose e, [1, 0]
  return t
}

def sum_t(x: f64[3][50][20]) -> f64[20][3] {
  t = transpose x, [2, 0, 1]
  s = sum t, axes: [2]
  return s
}

def twice(x: s32[17][40]) -> {s32[40][17], s32[17][40]} {
  t = transpose x, [1, 0]
  u = transpose t, [1, 0]
  return {t, u}
}
";
    let settings = Settings {
        tolerance: 1e-6,
        inputs: EdgeSet::Mild,
        seeds: vec![1],
    };
    let failures = differential("transpose_chains.nxir", source, &settings);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Dots contracted over an operand's other matrix axis: the frontend
/// transposes that operand (a tagged transpose) and emits a named matmul.
#[test]
fn transposed_dots_agree_with_the_interpreter() {
    let mut programs = Vec::new();
    for (m, k, n) in [(3, 5, 4), (17, 33, 65), (100, 70, 90), (129, 257, 513)] {
        programs.push(format!(
            "def a_t_b(a: f32[{k}][{m}], b: f32[{k}][{n}]) -> f32[{m}][{n}] {{\n  c = dot a, [0], [], b, [0], []\n  return c\n}}\n\n\
             def a_b_t(a: f32[{m}][{k}], b: f32[{n}][{k}]) -> f32[{m}][{n}] {{\n  c = dot a, [1], [], b, [1], []\n  return c\n}}\n\n\
             def a_t_b_t(a: f64[{k}][{m}], b: f64[{n}][{k}]) -> f64[{m}][{n}] {{\n  c = dot a, [0], [], b, [1], []\n  return c\n}}\n\n\
             def batched_b_t(a: f32[3][{m}][{k}], b: f32[3][{n}][{k}]) -> f32[3][{m}][{n}] {{\n  c = dot a, [2], [0], b, [2], [0]\n  return c\n}}\n\n\
             def batched_a_t(a: f32[2][{k}][{m}], b: f32[2][{k}][{n}]) -> f32[2][{m}][{n}] {{\n  c = dot a, [1], [0], b, [1], [0]\n  return c\n}}\n\n\
             def batched_a_t_b_t(a: f32[2][{k}][{m}], b: f32[2][{n}][{k}]) -> f32[2][{m}][{n}] {{\n  c = dot a, [1], [0], b, [2], [0]\n  return c\n}}\n"
        ));
    }
    let settings = Settings {
        // FMAs round differently from the interpreter's multiply-then-add.
        tolerance: 1e-5,
        inputs: EdgeSet::Mild,
        seeds: vec![2],
    };
    let mut failures = Vec::new();
    for (i, source) in programs.iter().enumerate() {
        for f in differential(&format!("dots_t{i}.nxir"), source, &settings) {
            failures.push(format!("dots_t{i}: {f}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The frontend tags each transpose with its rank, the output axis of the
/// input's innermost one and the element width; the step tiles a tagged
/// 2-D f32 transpose into 16×16 blocks (remainders peeled: 40 = 2·16 + 8,
/// 21 = 16 + 5), reads whole input rows, transposes in registers (the
/// full blocks by `shuffle_16x16`) and writes whole output rows.
#[test]
fn transpose_step_before_and_after() {
    use tensorc_passes::matmul_schedule::script_file;
    use tensorc_passes::transpose_schedule::{ENTRY, tag, transpose_schedule};
    let source =
        "def main(x: f32[21][40]) -> f32[40][21] {\n  y = transpose x, [1, 0]\n  return y\n}\n";
    let opt =
        tensorc::emit("t.nxir", source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(opt.contains(&tag(2, 0, 32)), "{opt}");
    let library = script_file(&transpose_schedule()).unwrap();
    let mlir = tensorc_mlir::Mlir::new();
    let (_, before, after) = before_and_after(
        &mlir,
        &opt,
        &format!(
            "transform-preload-library{{transform-library-paths={}}},transform-interpreter{{entry-point={ENTRY}}},canonicalize",
            library.display()
        ),
    );
    assert!(!after.contains("linalg.transpose"), "{after}");
    // Full and remainder blocks along both axes: 2 × 2 kinds of block.
    assert_eq!(after.matches("vector.transfer_write").count(), 4, "{after}");
    // Reads are whole rows (no permutation map left); the full block is
    // transposed by shuffles.
    assert!(!after.contains("permutation_map"), "{after}");
    assert!(after.contains("vector.shuffle"), "{after}");
    insta::assert_snapshot!(
        "transpose_step",
        format!("// before\n{before}\n// after\n{after}")
    );
}

/// Threads cut a blocked transpose into chunks of whole blocks (16 rows
/// of f32 on the blocked axis; `tensorc-parallel-mark`,
/// `whole_transpose_blocks`): `[8192][256]` had been cut into chunks of 4
/// output rows, whose 4×16 blocks read each input line in four pieces.
/// The chunks' results agree with the interpreter on one and two threads.
#[test]
fn threads_cut_transposes_in_whole_blocks() {
    let cases = [
        ("t2_8192x256", transpose("f32", &[8192, 256], &[1, 0])),
        ("t3_64x128x256_201", transpose("f32", &[64, 128, 256], &[2, 0, 1])),
        ("t3_40x50x260_210", transpose("f32", &[40, 50, 260], &[2, 1, 0])),
    ];
    for (name, source) in &cases {
        let rel = format!("{name}.nxir");
        let opt = tensorc::emit(&rel, source, Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
        let marked = crate::harness::cpu_ir_upto(&rel, source, &opt, "tensorc-parallel-mark,");
        let split = marked
            .split("tensorc.par_d")
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: no parallel split:\n{marked}"));
        let (dim, chunk) = split.split_once("_t").expect("a parallel tag");
        let chunk: u64 = chunk.chars().take_while(char::is_ascii_digit).collect::<String>().parse().expect("a chunk");
        // Axis 0 (the blocked q axis of these outputs) in whole blocks.
        assert_eq!(dim, "0", "{name}:\n{marked}");
        assert!(chunk >= 16 && chunk % 16 == 0, "{name}: chunks of {chunk}:\n{marked}");
    }
    let settings = Settings { tolerance: 0.0, inputs: EdgeSet::None, seeds: vec![3] };
    let failures = crate::threads::on_threads(&[1, 2], || {
        cases
            .iter()
            .flat_map(|(name, source)| differential(&format!("{name}.nxir"), source, &settings))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Algebraic identities between ops, on pseudo-random inputs: two different
//! code paths of the interpreter must agree exactly (e.g. `dot` against
//! `multiply` + `sum`, whose f32 rounding sequences are the same; transposes
//! and reverses undone; negative padding against `slice`).

use tensorc_interp::run;
use tensorc_ir::check::compile;
use tensorc_ir::random::random_tensor;
use tensorc_ir::{SourceFile, Tensor};

/// Runs `main` on random inputs (seeded) and returns its results.
fn eval_random(src: &str, seed: u64) -> Vec<Tensor> {
    let module = compile(&SourceFile::new("id.nxir", src)).unwrap_or_else(|d| panic!("{}", tensorc_ir::render::render(&d)));
    let f = module.function("main").expect("main");
    let inputs: Vec<_> = f.params.iter().enumerate().map(|(i, (_, t))| random_tensor(t, seed, i as u64)).collect();
    run(&module, "main", &inputs).expect("runs")
}

#[test]
fn movement_ops_undo_each_other() {
    let src = "
def main(x: f32[3][4][5]) {
  t = transpose x, [2, 0, 1]
  u = transpose t, [1, 2, 0]
  r = reverse x, [0, 2]
  rr = reverse r, [0, 2]
  p = pad x, 0.0, [{0, 0, 0}, {-1, -2, 0}, {0, 0, 0}]
  s = slice x, [0, 1, 0], [3, 1, 5]
  i = pad x, 7.0, [{0, 0, 1}, {0, 0, 0}, {0, 0, 2}]
  j = slice i, [0, 0, 0], [5, 4, 13], [2, 1, 3]
  c = concatenate [x, x], axis: 1
  k = slice c, [0, 4, 0], [3, 4, 5]
  return {x, u, rr, p, s, j, k}
}";
    for seed in 0..3 {
        let r = eval_random(src, seed);
        let x = &r[0];
        assert_eq!(&r[1], x, "transpose then inverse transpose");
        assert_eq!(&r[2], x, "reverse twice");
        assert_eq!(r[3], r[4], "negative padding crops like slice");
        assert_eq!(&r[5], x, "strided slice removes interior padding");
        assert_eq!(&r[6], x, "second half of a concatenation");
    }
}

#[test]
fn dot_agrees_with_multiply_and_sum() {
    let src = "
def main(a: f32[4][6], b: f32[6][3], p: s16[2][5], q: s16[5][2]) {
  d = dot a, [1], [], b, [0], []
  a3 = reshape a  f32[4][6][1]
  m = multiply a3, b
  s = sum m, axes: [1]
  e = dot p, [1], [], q, [0], []
  p3 = reshape p  s16[2][5][1]
  n = multiply p3, q
  t = sum n, axes: [1]
  tt = as_type t  s16[2][2]
  return {d, s, e, tt}
}";
    for seed in 0..3 {
        let r = eval_random(src, seed);
        assert_eq!(r[0], r[1], "f32 dot vs multiply+sum (seed {seed})");
        assert_eq!(r[2], r[3], "s16 dot vs multiply+sum (seed {seed})");
    }
}

#[test]
fn batched_dot_agrees_with_per_batch_dots() {
    let src = "
def main(a: f64[2][3][4], b: f64[2][4][5]) {
  d = dot a, [2], [0], b, [1], [0]
  a0 = slice a, [0, 0, 0], [1, 3, 4]
  b0 = slice b, [0, 0, 0], [1, 4, 5]
  a1 = slice a, [1, 0, 0], [1, 3, 4]
  b1 = slice b, [1, 0, 0], [1, 4, 5]
  x0 = reshape a0  f64[3][4]
  y0 = reshape b0  f64[4][5]
  x1 = reshape a1  f64[3][4]
  y1 = reshape b1  f64[4][5]
  d0 = dot x0, [1], [], y0, [0], []
  d1 = dot x1, [1], [], y1, [0], []
  s = stack [d0, d1], axis: 0
  return {d, s}
}";
    for seed in 0..3 {
        let r = eval_random(src, seed);
        assert_eq!(r[0], r[1]);
    }
}

#[test]
fn reductions_agree_with_each_other() {
    let src = "
def main(x: f32[4][5]) {
  m = reduce_max x, axes: [1]
  a = argmax x, axis: 1
  n = negate x
  mn = reduce_min n, axes: [1]
  nm = negate mn
  ai = argmin n, axis: 1
  return {m, nm, a, ai}
}";
    for seed in 0..3 {
        let r = eval_random(src, seed);
        assert_eq!(r[0], r[1], "max x = -min(-x)");
        assert_eq!(r[2], r[3], "argmax x = argmin(-x)");
    }
}

//! Runs `examples/mlp.nxir`, `models/extra.nxir` and `models/names.nxir`, compiled ahead of time by
//! `tensorc-build` (see build.rs), and checks every result against the same
//! computation written here in plain Rust. Prints `ok` and exits 0 when all
//! agree; exits 1 listing the mismatches otherwise.

mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

use std::process::ExitCode;

const B: usize = 4;
const F: usize = 8;
const H: usize = 16;
const C: usize = 3;

/// Deterministic inputs in [-1, 1): the linear congruential generator of
/// examples/c/mlp_main.c.
struct Lcg(u32);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(1103515245).wrapping_add(12345);
        ((self.0 >> 8) & 0xffff) as f32 / 32768.0 - 1.0
    }

    fn fill(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// The MLP of examples/mlp.nxir in f64: softmax probabilities and the first
/// index of each row's maximum (Nx's argmax).
fn mlp_reference(x: &[f32], w1: &[f32], b1: &[f32], w2: &[f32], b2: &[f32]) -> (Vec<f64>, Vec<i32>) {
    let mut probs = vec![0.0; B * C];
    let mut class = vec![0; B];
    for i in 0..B {
        let h: Vec<f64> = (0..H)
            .map(|j| {
                let a = b1[j] as f64 + (0..F).map(|k| x[i * F + k] as f64 * w1[k * H + j] as f64).sum::<f64>();
                a.max(0.0)
            })
            .collect();
        let logits: Vec<f64> = (0..C)
            .map(|j| b2[j] as f64 + (0..H).map(|k| h[k] * w2[k * C + j] as f64).sum::<f64>())
            .collect();
        let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let mut best = 0;
        for j in 0..C {
            probs[i * C + j] = e[j] / s;
            if e[j] > e[best] {
                best = j;
            }
        }
        class[i] = best as i32;
    }
    (probs, class)
}

fn main() -> ExitCode {
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures.push(what);
        }
    };

    // The MLP through the Vec-returning function.
    let mut rng = Lcg(12345);
    let (x, w1, b1, w2, b2) = (rng.fill(B * F), rng.fill(F * H), rng.fill(H), rng.fill(H * C), rng.fill(C));
    let (probs, class) = match models::main(&x, &w1, &b1, &w2, &b2) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("models::main failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (expect_p, expect_c) = mlp_reference(&x, &w1, &b1, &w2, &b2);
    for (i, (p, e)) in probs.iter().zip(&expect_p).enumerate() {
        check((*p as f64 - e).abs() <= 1e-5, format!("probs[{i}] = {p}, expected {e}"));
    }
    check(class == expect_c, format!("class = {class:?}, expected {expect_c:?}"));
    for i in 0..B {
        println!(
            "row {i}: probs {:.6} {:.6} {:.6} class {}",
            probs[i * C],
            probs[i * C + 1],
            probs[i * C + 2],
            class[i]
        );
    }

    // The same call through the ndarray function, with x given as a
    // transposed (column-major) view: the wrapper must copy it to row-major.
    let xt = ndarray::Array2::from_shape_vec((F, B), (0..F * B).map(|n| x[(n % B) * F + n / B]).collect())
        .expect("F x B elements");
    let w1v = ndarray::ArrayView2::from_shape((F, H), &w1).expect("F x H");
    let w2v = ndarray::ArrayView2::from_shape((H, C), &w2).expect("H x C");
    match models::main_nd(xt.t(), w1v, ndarray::ArrayView1::from(&b1), w2v, ndarray::ArrayView1::from(&b2)) {
        Ok((p, c)) => {
            check(p.shape() == [B, C], format!("main_nd probs shape {:?}", p.shape()));
            check(p.iter().copied().eq(probs.iter().copied()), "main_nd probs differ from main".into());
            check(c.iter().copied().eq(class.iter().copied()), "main_nd class differs from main".into());
        }
        Err(e) => check(false, format!("models::main_nd failed: {e}")),
    }

    // Wrong lengths and shapes are refused before the model runs.
    match models::main(&x[1..], &w1, &b1, &w2, &b2) {
        Err(models::Error::Length { argument: "x", expected: 32, actual: 31 }) => {}
        other => check(false, format!("short x: {other:?}")),
    }
    let mut short = vec![0.0f32; B * C - 1];
    let mut cls = vec![0i32; B];
    match models::main_into(&x, &w1, &b1, &w2, &b2, &mut short, &mut cls) {
        Err(e @ models::Error::Length { argument: "out0", .. }) => println!("refused: {e}"),
        other => check(false, format!("short out0: {other:?}")),
    }
    match models::main_nd(xt.view(), w1v, ndarray::ArrayView1::from(&b1), w2v, ndarray::ArrayView1::from(&b2)) {
        Err(models::Error::Shape { argument: "x", expected: &[4, 8], .. }) => {}
        other => check(false, format!("transposed shape: {other:?}")),
    }

    // f64 with a scalar parameter; s32 in, scalar s64 out.
    let m: Vec<f64> = vec![0.5, -1.25, 3.0, 1e10, -0.0, 7.75];
    match models::affine(&m, &[2.5]) {
        Ok(y) => {
            for (i, (a, b)) in y.iter().zip(&m).enumerate() {
                let e = b * 2.5 + 1.0;
                check((a - e).abs() <= 1e-12 * e.abs().max(1.0), format!("affine[{i}] = {a}, expected {e}"));
            }
        }
        Err(e) => check(false, format!("affine failed: {e}")),
    }
    let v = [3, -1, 0, 7, i32::MIN, 42];
    match models::count_positive(&v) {
        Ok(n) => {
            let e = v.iter().filter(|&&a| a > 0).count() as i64;
            check(n == [e], format!("count_positive = {n:?}, expected {e}"));
        }
        Err(e) => check(false, format!("count_positive failed: {e}")),
    }

    // A keyword-named def (`r#match`), keyword/`outN` parameters (`arg0`,
    // `arg1`), f16 as bit patterns and a rank-7 tensor. Negation flips the
    // sign bit: 1.0 (0x3c00), -2.0 (0xc000), +0.0 (0x0000).
    let halves: [u16; 3] = [0x3c00, 0xc000, 0x0000];
    let ints: Vec<i32> = vec![-1, 0, 41, i32::MAX - 1];
    let plus_one: Vec<i32> = ints.iter().map(|v| v + 1).collect();
    match models::r#match(&halves, &ints) {
        Ok((n, b)) => {
            check(n == [0xbc00, 0x4000, 0x8000], format!("match negation = {n:04x?}"));
            check(b == plus_one, format!("match plus one = {b:?}"));
        }
        Err(e) => check(false, format!("match failed: {e}")),
    }
    let rank7 = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 1, 1, 1, 1, 2, 2]), ints.clone())
        .expect("4 elements");
    match models::match_nd(ndarray::ArrayView1::from(&halves[..]), rank7.view()) {
        Ok((_, b)) => {
            check(b.shape() == [1, 1, 1, 1, 1, 2, 2], format!("match_nd shape {:?}", b.shape()));
            check(b.iter().copied().eq(plus_one.iter().copied()), format!("match_nd = {b:?}"));
        }
        Err(e) => check(false, format!("match_nd failed: {e}")),
    }

    match models::Shadow(&[1, 2], &[10, 20], &[100, 200]) {
        // 1 + 10 + 100 and 2 + 20 + 200, both below 256.
        Ok(v) => check(v == [111, 222], format!("Shadow = {v:?}")),
        Err(e) => check(false, format!("Shadow failed: {e}")),
    }

    if failures.is_empty() {
        println!("ok");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("mismatch: {f}");
        }
        ExitCode::FAILURE
    }
}

//! Known answers for regions and control flow (issue 3, family F1): the
//! general `reduce` (examples from Nx's `Nx.reduce/4` documentation), `while`,
//! `cond`, tuples returned through them, and the Threefry-2x32 example checked
//! against the published known-answer vectors of Salmon et al.'s Random123
//! (`kat_vectors`, threefry2x32 with 20 rounds). Every answer was worked out
//! by hand or taken from those publications, and runs on the interpreter and
//! on the CPU JIT.

use std::sync::mpsc;
use std::time::Duration;

use tensorc::{CompileOptions, DType, Scalar, Target, Tensor, TensorType};

use crate::harness::compare;

fn ints(dtype: DType, shape: &[usize], vals: &[i128]) -> Tensor {
    let data: Vec<Scalar> = vals
        .iter()
        .map(|&v| {
            if dtype.is_unsigned_int() {
                Scalar::U(v as u64)
            } else {
                Scalar::I(v as i64)
            }
        })
        .collect();
    Tensor::from_scalars(TensorType::new(dtype, shape.to_vec()), &data).expect("sizes match")
}

fn floats(dtype: DType, shape: &[usize], vals: &[f64]) -> Tensor {
    let data: Vec<Scalar> = vals.iter().map(|&v| Scalar::F(v)).collect();
    Tensor::from_scalars(TensorType::new(dtype, shape.to_vec()), &data).expect("sizes match")
}

const TARGETS: [Target; 2] = [Target::Interp, Target::Cpu];

/// Runs `entry` of `source` on `target`; panics with the rendered error.
fn run(target: Target, name: &str, source: &str, entry: &str, inputs: &[Tensor]) -> Vec<Tensor> {
    let file = format!("known_f1/{name}.nxir");
    let p = tensorc::compile_str(
        &file,
        source,
        &CompileOptions {
            target,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name} ({target:?}): compile failed:\n{}", e.render()));
    p.entry(Some(entry))
        .and_then(|f| f.call(inputs))
        .unwrap_or_else(|e| panic!("{name} ({target:?}): run failed: {}", e.render()))
}

/// Checks one program on both targets.
fn check(name: &str, source: &str, entry: &str, inputs: &[Tensor], expected: &[Tensor]) {
    for target in TARGETS {
        let got = run(target, name, source, entry, inputs);
        assert_eq!(got.len(), expected.len(), "{name} ({target:?}): result count");
        for (i, (g, w)) in got.iter().zip(expected).enumerate() {
            if let Err(m) = compare(g, w, 0.0) {
                panic!("{name} ({target:?}) result {i}: {m}\n  got {g:?}\n  expected {w:?}");
            }
        }
    }
}

const ADD_FN: &str = "fn(acc, v) {\n    s = add acc, v\n    return s\n  }";

#[test]
fn reduce_examples_from_the_nx_docs() {
    use DType::*;
    let t3 = ints(S32, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let cases: &[(&str, &str, Tensor)] = &[
        ("axes: [0]", "s32[2][3]", ints(S32, &[2, 3], &[8, 10, 12, 14, 16, 18])),
        ("axes: [1]", "s32[2][3]", ints(S32, &[2, 3], &[5, 7, 9, 17, 19, 21])),
        ("axes: [0, 2]", "s32[2]", ints(S32, &[2], &[30, 48])),
        ("axes: [-1]", "s32[2][2]", ints(S32, &[2, 2], &[6, 15, 24, 33])),
        (
            "axes: [0], keep_axes: true",
            "s32[1][2][3]",
            ints(S32, &[1, 2, 3], &[8, 10, 12, 14, 16, 18]),
        ),
        ("axes: nil", "s32", ints(S32, &[], &[78])),
    ];
    for (opts, ty, want) in cases {
        let src =
            format!("def main(x: s32[2][2][3]) -> {ty} {{\n  r = reduce x, 0, {opts}, {ADD_FN}\n  return r\n}}\n");
        check(
            &format!("reduce {opts}"),
            &src,
            "main",
            std::slice::from_ref(&t3),
            std::slice::from_ref(want),
        );
    }
    // Floats: [[1.0, 2.0], [3.0, 4.0]] sums to 10.0.
    let src = format!("def main(x: f32[2][2]) -> f32 {{\n  r = reduce x, 0, {ADD_FN}\n  return r\n}}\n");
    check(
        "reduce f32",
        &src,
        "main",
        &[floats(F32, &[2, 2], &[1.0, 2.0, 3.0, 4.0])],
        &[floats(F32, &[], &[10.0])],
    );
    // Nx docs (vectorized example, per entry): init 10 with &Nx.add/2 over axis 1 of
    // [[1, 2, 3], [4, 5, 6]] is [16, 25] -- the init is folded in once per group.
    let src = "def main(x: s32[2][3]) -> s32[2] {\n  r = reduce x, 10, axes: [1], &Nx.add/2\n  return r\n}\n";
    check(
        "reduce init 10",
        src,
        "main",
        &[ints(S32, &[2, 3], &[1, 2, 3, 4, 5, 6])],
        &[ints(S32, &[2], &[16, 25])],
    );
}

#[test]
fn reduce_order_type_and_shorthands() {
    use DType::*;
    let x = ints(S32, &[2, 3], &[1, 2, 3, 4, 5, 6]);
    // A non-commutative combiner shows the order: acc * 10 + v in row-major order.
    let body = "fn(acc, v) {\n    m = multiply acc, 10\n    s = add m, v\n    return s\n  }";
    let src = format!("def main(x: s32[2][3]) -> s32[2] {{\n  r = reduce x, 0, axes: [1], {body}\n  return r\n}}\n");
    check(
        "digits rows",
        &src,
        "main",
        std::slice::from_ref(&x),
        &[ints(S32, &[2], &[123, 456])],
    );
    let src = format!("def main(x: s32[2][3]) -> s32[3] {{\n  r = reduce x, 0, axes: [0], {body}\n  return r\n}}\n");
    check(
        "digits columns",
        &src,
        "main",
        std::slice::from_ref(&x),
        &[ints(S32, &[3], &[14, 25, 36])],
    );
    // The result type is Nx's binary_type of the tensor and the (weak) init:
    // u8 with 0 stays u8 (200 + 100 wraps to 44); u8 with 256 is u16 (556).
    let u = ints(U8, &[2], &[200, 100]);
    let src = "def main(x: u8[2]) -> u8 {\n  r = reduce x, 0, &Nx.add/2\n  return r\n}\n";
    check(
        "u8 wraps",
        src,
        "main",
        std::slice::from_ref(&u),
        &[ints(U8, &[], &[44])],
    );
    let src = "def main(x: u8[2]) -> u16 {\n  r = reduce x, 256, &Nx.add/2\n  return r\n}\n";
    check("u8 with 256", src, "main", &[u], &[ints(U16, &[], &[556])]);
    // Each shorthand on [[3, -1], [2, 5]] over axis 1 with init 1.
    let m = ints(S32, &[2, 2], &[3, -1, 2, 5]);
    for (f, want) in [
        ("add", [3, 8]),
        ("multiply", [-3, 10]),
        ("max", [3, 5]),
        ("min", [-1, 1]),
        ("logical_and", [1, 1]),
        ("logical_or", [1, 1]),
    ] {
        let src =
            format!("def main(x: s32[2][2]) -> s32[2] {{\n  r = reduce x, 1, axes: [1], &Nx.{f}/2\n  return r\n}}\n");
        check(
            &format!("shorthand {f}"),
            &src,
            "main",
            std::slice::from_ref(&m),
            &[ints(S32, &[2], &want)],
        );
    }
    // logical_and with a zero element, init 1: [[0, 4]] gives 0; logical_or of zeros with init 0 gives 0.
    let z = ints(S32, &[1, 2], &[0, 4]);
    let src = "def main(x: s32[1][2]) -> s32[1] {\n  r = reduce x, 1, axes: [1], &Nx.logical_and/2\n  return r\n}\n";
    check("logical_and zero", src, "main", &[z], &[ints(S32, &[1], &[0])]);
}

const LOOPS: &str = "\
def powers(n: s32) -> {s32, s32} {
  s = while {0, 1}, fn(i, p) {
    c = less i, n
    return c
  }, fn(i, p) {
    j = add i, 1
    q = multiply p, 2
    return {j, q}
  }
  return s
}

def factorial(n: s32) -> s32 {
  s = while {n, 1}, fn(k, acc) {
    c = greater k, 0
    return c
  }, fn(k, acc) {
    a = multiply acc, k
    k1 = subtract k, 1
    return {k1, a}
  }
  r = elem s, 1
  return r
}

def squares(x: f32[2][2]) -> f32[2][2] {
  s = while {0, x}, fn(i, a) {
    c = less i, 3
    return c
  }, fn(i, a) {
    j = add i, 1
    b = multiply a, a
    return {j, b}
  }
  r = elem s, 1
  return r
}

def through_call(n: s32) -> s32 {
  t = call powers, n
  p = elem t, 1
  i = elem t, 0
  r = add p, i
  return r
}
";

#[test]
fn while_loops() {
    use DType::*;
    let s = |v| ints(S32, &[], &[v]);
    check("powers", LOOPS, "powers", &[s(10)], &[s(10), s(1024)]);
    check("powers zero trips", LOOPS, "powers", &[s(0)], &[s(0), s(1)]);
    check("factorial", LOOPS, "factorial", &[s(5)], &[s(120)]);
    // x^(2^3) element-wise.
    let x = floats(F32, &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    check(
        "squares",
        LOOPS,
        "squares",
        &[x],
        &[floats(F32, &[2, 2], &[1.0, 256.0, 6561.0, 65536.0])],
    );
    // A tuple result of a function, through call and elem: 2^4 + 4.
    check("through_call", LOOPS, "through_call", &[s(4)], &[s(20)]);
}

const BRANCHES: &str = "\
def pick(p: u8, q: u8, x: s32[2], y: s32[2]) -> {s32[2], s32[2]} {
  r = cond p -> {x, y}, q -> fn() {
    a = add x, y
    b = subtract x, y
    return {a, b}
  }, true -> {y, x}
  return r
}

def safe_divide(a: s32, b: s32) -> s32 {
  z = equal b, 0
  r = cond z -> fn() {
    return 0
  }, true -> fn() {
    q = quotient a, b
    return q
  }
  return r
}
";

#[test]
fn cond_clauses() {
    use DType::*;
    let u = |v| ints(U8, &[], &[v]);
    let (x, y) = (ints(S32, &[2], &[5, 1]), ints(S32, &[2], &[2, 3]));
    check(
        "first",
        BRANCHES,
        "pick",
        &[u(1), u(1), x.clone(), y.clone()],
        &[x.clone(), y.clone()],
    );
    check(
        "second",
        BRANCHES,
        "pick",
        &[u(0), u(2), x.clone(), y.clone()],
        &[ints(S32, &[2], &[7, 4]), ints(S32, &[2], &[3, -2])],
    );
    check("last", BRANCHES, "pick", &[u(0), u(0), x.clone(), y.clone()], &[y, x]);
    let s = |v| ints(S32, &[], &[v]);
    check("divide", BRANCHES, "safe_divide", &[s(7), s(2)], &[s(3)]);
    check(
        "divide by zero guarded",
        BRANCHES,
        "safe_divide",
        &[s(7), s(0)],
        &[s(0)],
    );
}

/// The untaken branch divides by zero and then loops forever: if it were
/// executed (on either target) the call would never return. Taking the first
/// branch must give its value promptly.
#[test]
fn untaken_branch_is_not_executed() {
    let src = "\
def main(p: u8, x: s32) -> s32 {
  r = cond p -> x, true -> fn() {
    d = quotient x, 0
    w = while d, fn(i) {
      one = constant 1  u8
      return one
    }, fn(i) {
      j = add i, 1
      return j
    }
    return w
  }
  return r
}
";
    for target in TARGETS {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let inputs = [ints(DType::U8, &[], &[1]), ints(DType::S32, &[], &[42])];
            let _ = tx.send(run(target, "untaken", src, "main", &inputs));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("{target:?}: the untaken branch (an endless loop) was executed"));
        assert_eq!(got, vec![ints(DType::S32, &[], &[42])], "{target:?}");
    }
}

/// Threefry-2x32-20 known-answer vectors (Random123 `kat_vectors`): counter
/// and key all zeros, all ones, and the digits of pi.
#[test]
fn threefry_known_answer_vectors() {
    use DType::*;
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/threefry.nxir"))
        .expect("examples/threefry.nxir");
    let m = 0xffff_ffff;
    let v = |a: [i128; 3]| ints(U32, &[3], &a);
    let inputs = [
        v([0, m, 0x1319_8a2e]),
        v([0, m, 0x0370_7344]),
        v([0, m, 0x243f_6a88]),
        v([0, m, 0x85a3_08d3]),
    ];
    let expected = [
        v([0x6b20_0159, 0x1cb9_96fc, 0xc492_3a9c]),
        v([0x99ba_4efe, 0xbb00_2be7, 0x483d_f7a0]),
    ];
    check("threefry", &source, "threefry2x32_20", &inputs, &expected);
}

/// The example end to end on random and edge inputs: CPU equals the interpreter.
#[test]
fn threefry_cpu_matches_the_interpreter() {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/threefry.nxir"))
        .expect("examples/threefry.nxir");
    let settings = crate::harness::Settings::parse(&source);
    let failures = crate::harness::differential("examples/threefry.nxir", &source, &settings);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

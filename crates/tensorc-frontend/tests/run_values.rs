//! Executes lowered programs with `mlir-runner` and compares their results
//! with values computed by hand from the spec (§4) — the edge cases where a
//! naive lowering is wrong: division by zero, `MIN / -1`, out-of-range
//! shifts, saturating casts, NaN propagation, tie-breaking, interior padding.
//!
//! Each case is a parameterless `def` whose inputs are `tensor` literals; a
//! generated `@main` allocates the out-params, calls it and prints each result
//! with the MLIR runner utilities. Results are s32/s64/f32/f64 (other dtypes
//! are converted with `as_type` in the program) because those are the types
//! the runner utilities print.

mod common;

use std::path::Path;

use common::{LIB, pipe, tool};
use tensorc_ir::types::DType;

/// Lower `src`, run function `entry` and return each result's elements.
fn run(src: &str, entry: &str) -> Vec<Vec<f64>> {
    let (module, mlir) = common::lower_source("case.nxir", src);
    let f = module.function(entry).expect("entry exists");
    assert!(f.params.is_empty(), "run cases take no parameters");
    let mut main = String::from("  func.func @main() {\n");
    let mut decls = String::new();
    let mut outs = Vec::new();
    let results = f.flat_results();
    for (k, t) in results.iter().enumerate() {
        let mt = {
            let mut s = String::from("memref<");
            for d in &t.shape {
                s.push_str(&format!("{d}x"));
            }
            let e = match t.dtype {
                DType::S32 => "i32",
                DType::S64 => "i64",
                DType::F32 => "f32",
                DType::F64 => "f64",
                other => panic!("print results as s32/s64/f32/f64, not {other}"),
            };
            s.push_str(e);
            s.push('>');
            (s, e)
        };
        main.push_str(&format!("    %o{k} = memref.alloc() : {}\n", mt.0));
        outs.push((format!("%o{k}"), mt));
    }
    let args: Vec<&str> = outs.iter().map(|(n, _)| n.as_str()).collect();
    let tys: Vec<&str> = outs.iter().map(|(_, (t, _))| t.as_str()).collect();
    main.push_str(&format!("    call @{entry}({}) : ({}) -> ()\n", args.join(", "), tys.join(", ")));
    let mut declared = Vec::new();
    for (k, (n, (t, e))) in outs.iter().enumerate() {
        let printer = format!("printMemref{}", e.to_uppercase());
        main.push_str(&format!("    %u{k} = memref.cast {n} : {t} to memref<*x{e}>\n"));
        main.push_str(&format!("    call @{printer}(%u{k}) : (memref<*x{e}>) -> ()\n"));
        if !declared.contains(&printer) {
            decls.push_str(&format!(
                "  func.func private @{printer}(memref<*x{e}>) attributes {{llvm.emit_c_interface}}\n"
            ));
            declared.push(printer);
        }
    }
    main.push_str("    return\n  }\n");
    let end = mlir.rfind('}').expect("module ends with }");
    let program = format!("{}{main}{decls}}}\n", &mlir[..end]);
    if let Ok(dir) = std::env::var("TENSORC_DUMP_DIR") {
        let _ = std::fs::write(Path::new(&dir).join(format!("{entry}-{}.mlir", src.len())), &program);
    }
    let llvm = common::verify_and_lower_to_llvm(&program).unwrap_or_else(|e| panic!("{e}\n{program}"));
    let libs = format!("-shared-libs={LIB}/libmlir_runner_utils.so,{LIB}/libmlir_c_runner_utils.so");
    let out = pipe(&tool("mlir-runner"), &["-e", "main", "-entry-point-result=void", &libs], &llvm)
        .unwrap_or_else(|e| panic!("mlir-runner failed:\n{e}"));
    let parsed: Vec<Vec<f64>> = out
        .split("data =")
        .skip(1)
        .map(|chunk| {
            let data = chunk.split("Unranked").next().unwrap_or("");
            data.split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .map(|t| match t {
                    "nan" | "-nan" => f64::NAN,
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    t => t.parse().unwrap_or_else(|_| panic!("bad number {t:?} in {out}")),
                })
                .collect()
        })
        .collect();
    assert_eq!(parsed.len(), results.len(), "runner output:\n{out}");
    parsed
}

fn close(got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= rel * w.abs().max(1.0)
        };
        assert!(ok, "got {got:?}, want {want:?}");
    }
}

fn exact(got: &[f64], want: &[f64]) {
    close(got, want, 0.0)
}

#[test]
fn integer_division_never_traps() {
    let r = run(
        "def f() -> {s32[4], s32[4], s32[2]} {
           a = tensor [7, -7, 5, -2147483648]  s32[4]
           b = tensor [0, 2, 0, -1]  s32[4]
           q = quotient a, b
           c = tensor [0, 2, 3, -1]  s32[4]
           r = remainder a, c
           x = tensor [10, 200]  u8[2]
           y = tensor [0, 7]  u8[2]
           z = quotient x, y
           w = as_type z  s32[2]
           return {q, r, w}
         }",
        "f",
    );
    exact(&r[0], &[-1.0, -3.0, -1.0, -2147483648.0]);
    exact(&r[1], &[7.0, -1.0, 2.0, 0.0]);
    exact(&r[2], &[255.0, 28.0]);
}

#[test]
fn shifts_out_of_range() {
    let r = run(
        "def f() -> {s32[4], s32[4], s32[2]} {
           a = tensor [1, 1, 1, -8]  s32[4]
           b = tensor [3, 32, -1, 1]  s32[4]
           l = left_shift a, b
           c = tensor [-8, -8, 8, 16]  s32[4]
           d = tensor [1, 40, 40, -2]  s32[4]
           r = right_shift c, d
           x = tensor [255, 128]  u8[2]
           y = tensor [1, 8]  u8[2]
           z = right_shift x, y
           w = as_type z  s32[2]
           return {l, r, w}
         }",
        "f",
    );
    exact(&r[0], &[8.0, 0.0, 0.0, -16.0]);
    exact(&r[1], &[-4.0, -1.0, 0.0, 0.0]);
    exact(&r[2], &[127.0, 0.0]);
}

#[test]
fn as_type_saturates_and_wraps() {
    let r = run(
        "def f() -> {s32[6], s32[4], s32[2], s64[1]} {
           a = tensor [infinity, nan, neg_infinity, 3.9, -3.9, 3.0e9]  f32[6]
           b = as_type a  s32[6]
           c = tensor [300.0, -5.0, 255.9, nan]  f64[4]
           d = as_type c  u8[4]
           e = as_type d  s32[4]
           g = tensor [300, -1]  s32[2]
           h = as_type g  u8[2]
           i = as_type h  s32[2]
           j = tensor [18446744073709551615]  u64[1]
           k = bitcast j  s64[1]
           return {b, e, i, k}
         }",
        "f",
    );
    exact(&r[0], &[2147483647.0, 0.0, -2147483648.0, 3.0, -3.0, 2147483647.0]);
    exact(&r[1], &[255.0, 0.0, 255.0, 0.0]);
    exact(&r[2], &[44.0, 255.0]);
    exact(&r[3], &[-1.0]);
}

#[test]
fn integer_pow() {
    let r = run(
        "def f() -> {s32[6], s64[3]} {
           a = tensor [2, 1, -1, -1, 2, 0]  s32[6]
           b = tensor [10, -5, -3, -4, -1, 0]  s32[6]
           p = pow a, b
           x = tensor [3, 2, 3]  u8[3]
           y = tensor [5, 8, 200]  u8[3]
           q = pow x, y
           u = tensor [7]  u32[1]
           v = tensor [13]  u32[1]
           w = pow u, v
           qq = as_type q  s64[3]
           return {p, qq}
         }",
        "f",
    );
    exact(&r[0], &[1024.0, 1.0, -1.0, 1.0, 0.0, 1.0]);
    // 3^5 = 243; 2^8 wraps to 0; 3^200 mod 256 = 161.
    exact(&r[1], &[243.0, 0.0, 161.0]);
}

#[test]
fn float_rounding_sign_and_nan() {
    let r = run(
        "def f() -> {f32[5], f32[4], f32[2], f32, s32[2], s32[2]} {
           a = tensor [0.5, -0.5, 1.5, 2.5, -2.5]  f32[5]
           r = round a
           b = tensor [-2.0, 0.0, 3.0, nan]  f32[4]
           s = sign b
           c = tensor [1.0, nan]  f32[2]
           d = tensor [nan, 2.0]  f32[2]
           m = max c, d
           e = tensor [1.0, nan, 2.0]  f32[3]
           x = reduce_max e
           n1 = not_equal c, c
           n2 = equal c, c
           n3 = as_type n1  s32[2]
           n4 = as_type n2  s32[2]
           return {r, s, m, x, n3, n4}
         }",
        "f",
    );
    exact(&r[0], &[1.0, -1.0, 2.0, 3.0, -3.0]);
    exact(&r[1], &[-1.0, 0.0, 1.0, f64::NAN]);
    exact(&r[2], &[f64::NAN, f64::NAN]);
    exact(&r[3], &[f64::NAN]);
    exact(&r[4], &[0.0, 1.0]);
    exact(&r[5], &[1.0, 0.0]);
}

#[test]
fn argmax_argmin_ties_and_nan() {
    let r = run(
        "def f() -> {s32, s32, s32, s32, s32, s32[2]} {
           a = tensor [1.0, nan, 3.0, nan]  f32[4]
           i = argmax a
           j = argmax a, tie_break: :high
           k = argmin a
           b = tensor [3, 1, 3]  s8[3]
           l = argmax b
           m = argmax b, tie_break: :high
           c = tensor [[1, 5, 5], [9, 0, 2]]  u16[2][3]
           n = argmax c, axis: 1
           return {i, j, k, l, m, n}
         }",
        "f",
    );
    exact(&r[0], &[1.0]);
    exact(&r[1], &[3.0]);
    exact(&r[2], &[1.0]);
    exact(&r[3], &[0.0]);
    exact(&r[4], &[2.0]);
    exact(&r[5], &[1.0, 0.0]);
}

#[test]
fn pad_slice_reverse_and_friends() {
    let r = run(
        "def f() -> {s32[7], f32[6], s32[3], s32[3][2], s32[2][2], s32[6], s32[2][3]} {
           a = tensor [1, 2, 3]  s32[3]
           p = pad a, -1, [{0, 0, 2}]
           b = tensor [1.0, 2.0, 3.0]  f32[3]
           q = pad b, 0.0, [{-1, 2, 1}]
           c = iota nil  s32[10]
           s = slice c, [1], [7], [3]
           d = tensor [[1, 2, 3], [4, 5, 6]]  s32[2][3]
           t = transpose d, [1, 0]
           e = slice d, [0, 1], [2, 2]
           g = reverse a, [0]
           h = concatenate [a, g], axis: 0
           i = eye  s32[2][3]
           return {p, q, s, t, e, h, i}
         }",
        "f",
    );
    exact(&r[0], &[1.0, -1.0, -1.0, 2.0, -1.0, -1.0, 3.0]);
    exact(&r[1], &[0.0, 2.0, 0.0, 3.0, 0.0, 0.0]);
    exact(&r[2], &[1.0, 4.0, 7.0]);
    exact(&r[3], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    exact(&r[4], &[2.0, 3.0, 5.0, 6.0]);
    exact(&r[5], &[1.0, 2.0, 3.0, 3.0, 2.0, 1.0]);
    exact(&r[6], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn dot_and_reductions() {
    let r = run(
        "def f() -> {f32[2][2], s32[2], s32[1][3], f64} {
           a = tensor [[1.0, 2.0], [3.0, 4.0]]  f32[2][2]
           b = tensor [[5.0, 6.0], [7.0, 8.0]]  f32[2][2]
           c = dot a, [1], [], b, [0], []
           d = tensor [[100, 100, 100], [1, 2, 3]]  s8[2][3]
           s = sum d, axes: [1]
           p = product d, axes: [0], keep_axes: true
           e = tensor [0.5, 0.25]  f64[2]
           m = reduce_min e
           return {c, s, p, m}
         }",
        "f",
    );
    exact(&r[0], &[19.0, 22.0, 43.0, 50.0]);
    // s8 sums accumulate in s32: 300, 6.
    exact(&r[1], &[300.0, 6.0]);
    exact(&r[2], &[100.0, 200.0, 300.0]);
    exact(&r[3], &[0.25]);
}

#[test]
fn erf_inv_matches_known_values() {
    // The runner prints 6 significant digits, so the program computes its own
    // error against reference values and scales it up: the printed number is
    // the error in units of 1e-7 (f32) and 1e-13 (f64). Reference values:
    // erfinv(0.5) = 0.4769362762044699, erfinv(0.875) = 1.084787040069283,
    // erfinv(0.9) = 1.1630871536766745, erfinv(0.998046875) = 2.1900999683537616
    // (bisection on a double-precision erf). Inputs are exact in f32.
    let r = run(
        "def f() -> {f32[4], f32[2], f64[3], f64[2]} {
           a = tensor [0.0, 0.5, -0.875, 0.998046875]  f32[4]
           b = erf_inv a
           want = tensor [0.0, 0.4769362762044699, -1.084787040069283, 2.1900999683537616]  f64[4]
           bw = as_type b  f64[4]
           e1 = subtract bw, want
           e2 = divide e1, want
           e3 = multiply e2, 1.0e7
           e4 = as_type e3  f32[4]
           one = tensor [1.0, -1.0]  f32[2]
           inf = erf_inv one
           c = tensor [0.5, -0.9, 0.998046875]  f64[3]
           d = erf_inv c
           wd = tensor [0.4769362762044699, -1.1630871536766745, 2.1900999683537616]  f64[3]
           f1 = subtract d, wd
           f2 = divide f1, wd
           f3 = multiply f2, 1.0e13
           g = tensor [1.0, 1.5]  f64[2]
           h = erf_inv g
           return {e4, inf, f3, h}
         }",
        "f",
    );
    // The first entry is 0/0 (erf_inv(0) is exactly 0).
    close(&r[0][1..], &[0.0, 0.0, 0.0], 3.0);
    exact(&r[1], &[f64::INFINITY, f64::NEG_INFINITY]);
    close(&r[2], &[0.0, 0.0, 0.0], 1.5);
    exact(&r[3], &[f64::INFINITY, f64::NAN]);
}

#[test]
fn calls_and_tuples_inline() {
    let r = run(
        "def pair(a: s32[3]) -> {s32[3], s32[3]} {
           b = negate a
           c = add a, 1
           return {b, c}
         }
         def f() -> s32[3] {
           x = tensor [1, 2, 3]  s32[3]
           p = call pair, x
           u = elem p, 0
           v = elem p, 1
           w = multiply u, v
           return w
         }",
        "f",
    );
    exact(&r[0], &[-2.0, -6.0, -12.0]);
}

#[test]
fn shape_edge_cases() {
    let r = run(
        "def f() -> {s32[2][3], s32[4][2][3], s32[2], f32[2][2], s32[1][4], s32} {
           x = tensor [[[[1]], [[2]], [[3]]], [[[4]], [[5]], [[6]]]]  s32[2][3][1][1]
           a = reshape x  s32[2][1][3][1]
           s = squeeze a, [1, 3]
           y = tensor [[7, 8, 9]]  s32[1][3]
           b = broadcast y, {4, 2, 3}, [1, 2]
           p = tensor 5  s32
           q = tensor -6  s32
           k = stack [p, q], axis: 0
           m = iota nil  f32[5][4]
           t = slice m, [1, 1], [4, 3], [3, 2]
           u = tensor [[1, 2, 3, 4]]  s32[1][4]
           v = reverse u, [0, 1]
           w = tensor [[9]]  s32[1][1]
           z = squeeze w, [0, 1]
           return {s, b, k, t, v, z}
         }",
        "f",
    );
    exact(&r[0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    exact(&r[1], &[7.0, 8.0, 9.0].repeat(8));
    exact(&r[2], &[5.0, -6.0]);
    // Rows 1 and 4, columns 1 and 3 of a 5x4 iota.
    exact(&r[3], &[5.0, 7.0, 17.0, 19.0]);
    exact(&r[4], &[4.0, 3.0, 2.0, 1.0]);
    exact(&r[5], &[9.0]);
}

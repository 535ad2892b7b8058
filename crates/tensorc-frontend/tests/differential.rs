//! Differential test: every function of every op case, compiled through the
//! frontend and the CPU pipeline and executed with `mlir-runner`, must agree
//! with the reference interpreter (`tensorc-interp`) on deterministic random
//! inputs (`tensorc_ir::random`).
//!
//! Inputs are embedded in a generated `@main` as exact constants (integers in
//! decimal, floats as bit patterns); results are widened to a type the MLIR
//! runner utilities print (i32/i64/f32/f64) and parsed back. The runner prints
//! six significant digits, so floats compare with a matching tolerance;
//! integers compare exactly (modulo the dtype's width).

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::{LIB, pipe, tool};
use tensorc_ir::graph::Op;
use tensorc_ir::types::{DType, TensorType};
use tensorc_ir::{Scalar, SourceFile, Tensor};

const SEED: u64 = 7;

/// Every third element of `t` replaced by one of the dtype's edge values
/// (NaN, ±inf, ±0, extremes, ±1 for floats; MIN, MAX, 0, -1, 1 for integers).
/// `mild` (a case file marked `# inputs: mild`, as the integration harness
/// reads it): floats from `MILD_FLOAT_EDGES` only, whose sums and products
/// do not depend on the order of accumulation. Contractions over
/// `f64::MAX` and `1e-30` cancel to rounding residues of about
/// `ulp(1e278)`, which differ between the interpreter's order and the
/// schedules' fused multiply-adds.
fn with_edges(mut t: Tensor, salt: usize, mild: bool) -> Tensor {
    let d = t.dtype();
    let edges: Vec<Scalar> = if d.is_float() && mild {
        tensorc_ir::random::MILD_FLOAT_EDGES.into_iter().map(Scalar::F).collect()
    } else if d.is_float() {
        let big = match d {
            DType::F64 => f64::MAX,
            DType::F32 => f32::MAX as f64,
            _ => 65504.0,
        };
        [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, big, -big, 1.0, -1.0, 0.5, -2.5, 1e-30]
            .into_iter()
            .map(Scalar::F)
            .collect()
    } else {
        let (lo, hi) = d.int_range().expect("integer dtype");
        let mk = |v: i128| if d.is_signed_int() { Scalar::I(v as i64) } else { Scalar::U(v as u64) };
        let mut v = vec![mk(lo), mk(hi), mk(0), mk(1), mk(hi - 1), mk(2)];
        if d.is_signed_int() {
            v.extend([mk(-1), mk(lo + 1), mk(-2)]);
        }
        v
    };
    for i in (salt % 3..t.len()).step_by(3) {
        t.set(i, edges[(i / 3 + salt) % edges.len()]);
    }
    t
}

fn elem(d: DType) -> &'static str {
    match d {
        DType::S8 | DType::U8 => "i8",
        DType::S16 | DType::U16 => "i16",
        DType::S32 | DType::U32 => "i32",
        DType::S64 | DType::U64 => "i64",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::F64 => "f64",
    }
}

fn shaped(kind: &str, shape: &[usize], e: &str) -> String {
    let mut s = format!("{kind}<");
    for d in shape {
        let _ = write!(s, "{d}x");
    }
    format!("{s}{e}>")
}

/// The printable element type a result of dtype `d` is widened to, and the
/// conversion op (None when it already prints).
fn printable(d: DType) -> (&'static str, Option<&'static str>) {
    match d {
        DType::S8 | DType::S16 => ("i32", Some("arith.extsi")),
        DType::U8 | DType::U16 => ("i32", Some("arith.extui")),
        DType::U32 => ("i64", Some("arith.extui")),
        DType::S32 => ("i32", None),
        DType::S64 | DType::U64 => ("i64", None),
        DType::F16 | DType::BF16 => ("f32", Some("arith.extf")),
        DType::F32 => ("f32", None),
        DType::F64 => ("f64", None),
    }
}

/// An exact MLIR dense literal of a tensor's data.
fn dense(t: &Tensor) -> String {
    let d = t.dtype();
    let bytes = t.bytes();
    let w = d.size_bytes();
    let elems: Vec<String> = (0..t.len())
        .map(|i| {
            let mut b = [0u8; 8];
            b[..w].copy_from_slice(&bytes[i * w..(i + 1) * w]);
            let bits = u64::from_le_bytes(b);
            if d.is_float() {
                format!("0x{:0width$X}", bits, width = w * 2)
            } else {
                // Signless: the bits as a signed value of the width.
                let shift = 64 - 8 * w as u32;
                (((bits << shift) as i64) >> shift).to_string()
            }
        })
        .collect();
    fn nest(shape: &[usize], it: &mut std::vec::IntoIter<String>) -> String {
        match shape.split_first() {
            None => it.next().unwrap_or_default(),
            Some((&n, rest)) => format!("[{}]", (0..n).map(|_| nest(rest, it)).collect::<Vec<_>>().join(", ")),
        }
    }
    if t.is_empty() {
        return "dense<>".into();
    }
    format!("dense<{}>", nest(t.shape(), &mut elems.into_iter()))
}

/// A driver calling function `name` on `inputs` and printing each result.
fn driver(k: usize, name: &str, inputs: &[Tensor], results: &[TensorType], decls: &mut Vec<String>) -> String {
    let mut s = String::new();
    let mut args = Vec::new();
    let mut tys = Vec::new();
    for (i, t) in inputs.iter().enumerate() {
        let ty = shaped("tensor", t.shape(), elem(t.dtype()));
        let _ = writeln!(s, "    %in{k}_{i} = arith.constant {} : {ty}", dense(t));
        args.push(format!("%in{k}_{i}"));
        tys.push(ty);
    }
    for (j, r) in results.iter().enumerate() {
        let ty = shaped("memref", &r.shape, elem(r.dtype));
        let _ = writeln!(s, "    %o{k}_{j} = memref.alloc() : {ty}");
        args.push(format!("%o{k}_{j}"));
        tys.push(ty);
    }
    let _ = writeln!(s, "    call @{name}({}) : ({}) -> ()", args.join(", "), tys.join(", "));
    for (j, r) in results.iter().enumerate() {
        let (pe, conv) = printable(r.dtype);
        let src_ty = shaped("memref", &r.shape, elem(r.dtype));
        let mut v = format!("%o{k}_{j}");
        if let Some(op) = conv {
            let wide = shaped("memref", &r.shape, pe);
            let dims: Vec<String> = (0..r.shape.len()).map(|i| format!("d{i}")).collect();
            let map = format!("affine_map<({}) -> ({})>", dims.join(", "), dims.join(", "));
            let iters = vec!["\"parallel\""; r.shape.len()].join(", ");
            let _ = writeln!(s, "    %w{k}_{j} = memref.alloc() : {wide}");
            let _ = writeln!(
                s,
                "    linalg.generic {{indexing_maps = [{map}, {map}], iterator_types = [{iters}]}} ins({v} : {src_ty}) outs(%w{k}_{j} : {wide}) {{\n    ^bb0(%a: {}, %b: {pe}):\n      %c = {op} %a : {} to {pe}\n      linalg.yield %c : {pe}\n    }}",
                elem(r.dtype),
                elem(r.dtype)
            );
            v = format!("%w{k}_{j}");
        }
        let wide = shaped("memref", &r.shape, pe);
        let printer = format!("printMemref{}", pe.to_uppercase());
        let _ = writeln!(s, "    %u{k}_{j} = memref.cast {v} : {wide} to memref<*x{pe}>");
        let _ = writeln!(s, "    call @{printer}(%u{k}_{j}) : (memref<*x{pe}>) -> ()");
        let decl = format!("  func.func private @{printer}(memref<*x{pe}>) attributes {{llvm.emit_c_interface}}\n");
        if !decls.contains(&decl) {
            decls.push(decl);
        }
    }
    s
}

/// The element tokens of each printed memref, in order.
fn parse_prints(out: &str) -> Vec<Vec<String>> {
    out.split("data =")
        .skip(1)
        .map(|chunk| {
            let data = chunk.split("Unranked").next().unwrap_or("");
            data.split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn float_token(t: &str) -> f64 {
    match t {
        "nan" | "-nan" => f64::NAN,
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        t => t.parse().unwrap_or(f64::NAN),
    }
}

/// Compare a printed result with the interpreter's tensor; Some(message) on mismatch.
///
/// `fused_contraction`: the result comes from a `dot`/`conv` on edge inputs.
/// The CPU schedules accumulate those with fused multiply-adds, which round
/// a product only once: an `f32::MAX` product that overflows to inf in the
/// interpreter's separately rounded multiply (and then meets another inf to
/// give NaN) may stay finite, or give inf where the interpreter has NaN. So
/// there an element that is non-finite on either side is not compared; every
/// element finite on both sides still is.
fn compare(got: &[String], want: &Tensor, fused_contraction: bool) -> Option<String> {
    if want.is_empty() {
        // The runner prints the shape of an empty memref; nothing to compare.
        return None;
    }
    if got.len() != want.len() {
        return Some(format!("got {} elements, want {}", got.len(), want.len()));
    }
    let d = want.dtype();
    for (i, tok) in got.iter().enumerate() {
        let g = float_token(tok);
        let int: Option<i128> = tok.parse().ok();
        let ok = match want.get(i) {
            Scalar::F(w) => {
                if fused_contraction && (!w.is_finite() || !g.is_finite()) {
                    true
                } else if w.is_nan() {
                    g.is_nan()
                } else if w.is_infinite() || g.is_infinite() {
                    g == w
                } else {
                    // Six printed digits, plus a few ulps of libm difference.
                    // Contractions are reassociated (the matmul schedule
                    // accumulates tile by tile with FMAs), so their error
                    // scales with the summed terms (inputs are O(1)), not with
                    // a result that cancels to near zero: the same
                    // `tol * (1 + |w|)` bound as the integration harness.
                    let tol = if d == DType::F32 || d == DType::F64 { 2e-5 } else { 1e-2 };
                    (g - w).abs() <= tol * (1.0 + w.abs())
                }
            }
            Scalar::I(w) => int == Some(w as i128),
            // u64 prints as its signed reinterpretation.
            Scalar::U(w) => int.map(|g| if d == DType::U64 { g as i64 as u64 } else { g as u64 }) == Some(w),
        };
        if !ok {
            let show: Vec<String> = (0..want.len().min(16)).map(|j| format!("{:?}", want.get(j))).collect();
            return Some(format!(
                "element {i}: got {tok}, want {:?}\n  got:  {:?}\n  want: [{}]",
                want.get(i),
                &got[..got.len().min(16)],
                show.join(", ")
            ));
        }
    }
    None
}

fn case_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [root.join("../../tests/cases/ops"), root.join("tests/cases")] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "nxir")));
        }
    }
    files.sort();
    files
}

/// (case, function-label prefix, why) of comparisons known to disagree
/// because the *interpreter* is wrong; reported to its owner.
const KNOWN_INTERPRETER_BUGS: &[(&str, &str, &str)] = &[(
    "asinh.nxir",
    "",
    "edge inputs: asinh(f32::MAX) is ln(2x) = 89.416 (compiled); the interpreter overflows to inf",
)];

#[test]
fn compiled_code_agrees_with_the_interpreter() {
    let only = std::env::var("CASE").ok();
    let libs = format!("-shared-libs={LIB}/libmlir_runner_utils.so,{LIB}/libmlir_c_runner_utils.so");
    let runner = tool("mlir-runner");
    let (mut compared, mut failures, mut skipped) = (0, Vec::new(), Vec::new());
    for path in case_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mild = text.lines().any(|l| l.trim() == "# inputs: mild");
        let file = SourceFile::new(name.clone(), text);
        let Ok(module) = tensorc_ir::check::compile(&file) else {
            skipped.push(format!("{name} (does not check)"));
            continue;
        };
        let mlir = tensorc_frontend::lower(&module, &file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut main = String::from("  func.func @__tensorc_driver() {\n");
        let mut decls = Vec::new();
        let mut expected: Vec<(String, Vec<Tensor>, bool)> = Vec::new();
        for (k, f) in module.functions.iter().enumerate() {
            for edge in [false, true] {
                let inputs: Vec<Tensor> = f
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, (_, t))| {
                        let r = tensorc_ir::random::random_tensor(t, SEED, i as u64);
                        if edge { with_edges(r, i, mild) } else { r }
                    })
                    .collect();
                let label = format!("{}{}", f.name, if edge { " (edge inputs)" } else { "" });
                match tensorc_interp::run(&module, &f.name, &inputs) {
                    Ok(outs) => {
                        let k = 2 * k + edge as usize;
                        main.push_str(&driver(k, &f.name, &inputs, &f.flat_results(), &mut decls));
                        let contraction = f.nodes.iter().any(|n| matches!(n.op, Op::Conv(_) | Op::Dot { .. }));
                        expected.push((label, outs, edge && contraction));
                    }
                    Err(e) => skipped.push(format!("{name}:{label} (interpreter: {e})")),
                }
            }
        }
        main.push_str("    return\n  }\n");
        let end = mlir.rfind('}').unwrap();
        let program = format!("{}{main}{}}}\n", &mlir[..end], decls.concat());
        let llvm = match common::verify_and_lower_to_llvm(&program) {
            Ok(l) => l,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let out = match pipe(&runner, &["-e", "__tensorc_driver", "-entry-point-result=void", &libs], &llvm) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: mlir-runner failed:\n{e}"));
                continue;
            }
        };
        let mut printed = parse_prints(&out).into_iter();
        for (fname, outs, fused_contraction) in &expected {
            let known = KNOWN_INTERPRETER_BUGS
                .iter()
                .find(|(c, f, _)| *c == name && fname.starts_with(f) && fname.ends_with("(edge inputs)"));
            for (j, want) in outs.iter().enumerate() {
                if let Some((_, _, why)) = known {
                    printed.next();
                    skipped.push(format!("{name}:{fname} result {j} (known interpreter bug: {why})"));
                    continue;
                }
                compared += 1;
                match printed.next() {
                    None => failures.push(format!("{name}:{fname} result {j}: not printed")),
                    Some(got) => {
                        if let Some(m) = compare(&got, want, *fused_contraction) {
                            failures.push(format!("{name}:{fname} result {j} ({}): {m}", want.ty()));
                        }
                    }
                }
            }
        }
    }
    if !skipped.is_empty() {
        eprintln!("skipped: {}", skipped.join("; "));
    }
    assert!(failures.is_empty(), "{} mismatches over {compared} results:\n{}", failures.len(), failures.join("\n"));
    assert!(compared > 0 || only.is_some(), "nothing compared");
}

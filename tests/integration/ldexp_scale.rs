//! `tensorc-ldexp-scale` (`passes/tensorc-passes/src/ldexp_scale.rs`):
//! `exp`'s two-step power-of-two scaling as one `vscalefps` on targets with
//! AVX-512F.
//!
//! - the pass before and after on LLVM-dialect functions: the idiom of 16
//!   lanes becomes the x86 intrinsic with the float exponent, of 8 lanes the
//!   generic `llvm.ldexp`; exp's final NaN select goes when its clamps keep
//!   NaN (`ugt`/`ult`), and stays behind ordered ones; scalars and a product with another shift are
//!   left alone;
//! - which targets get the pass: LLVM answers per CPU
//!   (`tensorc_mlir::target_has_avx512`), and `Pipelines::for_target` adds
//!   the step for those only;
//! - the f32 `exp` sweep and a softmax, compiled with and without the step,
//!   give the same bits on every input (subnormal results, overflow, ±inf,
//!   NaN included), and the step is really in the host's code when the host
//!   has AVX-512F.

use crate::harness::{before_and_after, function_text};
use tensorc::{DType, Scalar, Tensor, TensorType};
use tensorc_mlir::CodegenTarget;
use tensorc_passes::pipeline::VectorIsa;

/// Where a test function's exponent `n` comes from.
#[derive(Clone, Copy)]
enum Exponent {
    /// An i32 argument.
    Argument,
    /// `fptosi(floor(t))` of an f32 argument, as in `exp`.
    Floor,
    /// `fptosi(floor(clamped x))`, `x` clamped by `select(x gt -104, x,
    /// -104)` then `select(c lt 89, c, 89)` with these predicates, and
    /// `exp`'s last step `select(x uno x, x, y)`.
    Clamped(&'static str, &'static str),
}

/// An LLVM-dialect function `@name` computing `(p · 2^(n >> 1)) · 2^(n −
/// (n >> 1))` as the frontend's `exp` reaches the LLVM dialect: on vectors
/// of `lanes` (scalars when `None`), powers built with shift `shift` (23
/// is the idiom), the adds and products with their operands swapped when
/// `swapped`.
fn scaling(name: &str, lanes: Option<u32>, exponent: Exponent, shift: u32, swapped: bool) -> String {
    let (f, i) = match lanes {
        Some(l) => (format!("vector<{l}xf32>"), format!("vector<{l}xi32>")),
        None => ("f32".to_owned(), "i32".to_owned()),
    };
    let int = |v: i64| match lanes {
        Some(_) => format!("llvm.mlir.constant(dense<{v}> : {i}) : {i}"),
        None => format!("llvm.mlir.constant({v} : i32) : i32"),
    };
    let float = |v: &str| format!("llvm.mlir.constant(dense<{v}> : {f}) : {f}");
    let mask = f.replace("f32", "i1");
    let mut body = vec![
        format!("%c1 = {}", int(1)),
        format!("%c23 = {}", int(i64::from(shift))),
        format!("%c127 = {}", int(127)),
    ];
    let (args, input) = match exponent {
        Exponent::Argument => (format!("%p: {f}, %n: {i}"), None),
        Exponent::Floor => (format!("%p: {f}, %t: {f}"), Some("%t")),
        Exponent::Clamped(gt, lt) => {
            body.push(format!("%lo = {}", float("-1.040000e+02")));
            body.push(format!("%hi = {}", float("8.900000e+01")));
            body.push(format!("%g = llvm.fcmp \"{gt}\" %x, %lo : {f}"));
            body.push(format!("%xl = llvm.select %g, %x, %lo : {mask}, {f}"));
            body.push(format!("%l = llvm.fcmp \"{lt}\" %xl, %hi : {f}"));
            body.push(format!("%xc = llvm.select %l, %xl, %hi : {mask}, {f}"));
            (format!("%p: {f}, %x: {f}"), Some("%xc"))
        }
    };
    if let Some(t) = input {
        body.push(format!("%fl = llvm.intr.floor({t}) : ({f}) -> {f}"));
        body.push(format!("%n = llvm.fptosi %fl : {f} to {i}"));
    }
    let (add1, mul1, mul2) = if swapped {
        ("%c127, %n1", "%s1, %p", "%s2, %y1")
    } else {
        ("%n1, %c127", "%p, %s1", "%y1, %s2")
    };
    body.extend([
        format!("%n1 = llvm.ashr %n, %c1 : {i}"),
        format!("%n2 = llvm.sub %n, %n1 : {i}"),
        format!("%e1 = llvm.add {add1} : {i}"),
        format!("%b1 = llvm.shl %e1, %c23 : {i}"),
        format!("%s1 = llvm.bitcast %b1 : {i} to {f}"),
        format!("%e2 = llvm.add %n2, %c127 : {i}"),
        format!("%b2 = llvm.shl %e2, %c23 : {i}"),
        format!("%s2 = llvm.bitcast %b2 : {i} to {f}"),
        format!("%y1 = llvm.fmul {mul1} : {f}"),
        format!("%y = llvm.fmul {mul2} : {f}"),
    ]);
    let ret = if let Exponent::Clamped(..) = exponent {
        body.push(format!("%nan = llvm.fcmp \"uno\" %x, %x : {f}"));
        body.push(format!("%r = llvm.select %nan, %x, %y : {mask}, {f}"));
        "%r"
    } else {
        "%y"
    };
    body.push(format!("llvm.return {ret} : {f}"));
    format!("  llvm.func @{name}({args}) -> {f} {{\n    {}\n  }}\n", body.join("\n    "))
}

/// The idiom for 16 lanes (exponent from `floor`: the x86 intrinsic) and 8
/// (exponent an argument, operands swapped: generic `ldexp`), `exp`'s tail
/// with NaN-keeping clamps and with ordered ones, the scalar form (left
/// alone: scalar `ldexp` is a libm call; reading its type as a vector's
/// crashed the pass on generated seed 45) and a look-alike whose shift is 22.
fn idiom_module() -> String {
    let functions = [
        scaling("sixteen", Some(16), Exponent::Floor, 23, false),
        scaling("eight", Some(8), Exponent::Argument, 23, true),
        scaling("exp_tail", Some(16), Exponent::Clamped("ugt", "ult"), 23, false),
        scaling("ordered_clamps", Some(16), Exponent::Clamped("ogt", "olt"), 23, false),
        scaling("scalar", None, Exponent::Argument, 23, false),
        scaling("other_shift", Some(16), Exponent::Argument, 22, false),
    ];
    format!("module {{\n{}}}\n", functions.concat())
}

#[test]
fn ldexp_scale_before_and_after() {
    use tensorc_passes::ldexp_scale;
    tensorc_mlir::register_external_pass(ldexp_scale::NAME, ldexp_scale::create);
    let mlir = tensorc_mlir::Mlir::new();
    let (_, before, after) = before_and_after(&mlir, &idiom_module(), ldexp_scale::NAME);
    let sixteen = function_text(&after, "sixteen");
    assert!(sixteen.contains("llvm.x86.avx512.mask.scalef.ps.512"), "{sixteen}");
    // The float exponent goes straight in; the products are gone.
    assert!(!sixteen.contains("llvm.fmul"), "{sixteen}");
    let eight = function_text(&after, "eight");
    assert!(eight.contains("\"llvm.ldexp\""), "{eight}");
    assert!(!eight.contains("llvm.fmul"), "{eight}");
    // exp's NaN select goes when its clamps keep NaN, and only then.
    let tail = function_text(&after, "exp_tail");
    assert!(tail.contains("scalef") && !tail.contains("\"uno\""), "{tail}");
    let ordered = function_text(&after, "ordered_clamps");
    assert!(ordered.contains("scalef") && ordered.contains("\"uno\""), "{ordered}");
    for unchanged in ["scalar", "other_shift"] {
        assert_eq!(function_text(&before, unchanged), function_text(&after, unchanged));
    }
    insta::assert_snapshot!("ldexp_scale_pass", format!("// before\n{before}\n// after\n{after}"));
}

#[test]
fn llvm_says_which_cpus_have_avx512() {
    let has = |triple: Option<&str>, cpu: &str| {
        tensorc_mlir::target_has_avx512(&CodegenTarget { triple, cpu: Some(cpu) })
    };
    if cfg!(target_arch = "x86_64") {
        for cpu in ["x86-64-v4", "znver4", "skylake-avx512", "sapphirerapids"] {
            assert!(has(None, cpu), "{cpu}");
        }
        for cpu in ["x86-64-v2", "x86-64-v3", "haswell", "znver3", "alderlake"] {
            assert!(!has(None, cpu), "{cpu}");
        }
    }
    assert!(!has(Some("aarch64-unknown-linux-gnu"), "generic"));
    // The steps are added for those targets only, and only once.
    let p = tensorc_cpu::Pipelines {
        opt: String::new(),
        lowering: "canonicalize".into(),
        avx512: tensorc_passes::pipeline::AVX512_LOWERING.into(),
        narrow: String::new(),
    };
    let v4 = p.for_target(&CodegenTarget { triple: None, cpu: Some("x86-64-v4") });
    let v2 = p.for_target(&CodegenTarget { triple: None, cpu: Some("x86-64-v2") });
    if cfg!(target_arch = "x86_64") {
        assert_eq!(v4.lowering, "canonicalize,tensorc-ldexp-scale");
    }
    assert_eq!(v2.lowering, "canonicalize");
    assert!(v4.avx512.is_empty() && v2.avx512.is_empty());
}

/// `source`'s first function compiled by the CPU pipelines with and without
/// the AVX-512 steps, run on `inputs`: the two results.
fn with_and_without(source: &str, inputs: &[Tensor]) -> (Tensor, Tensor) {
    let (module, text) = crate::harness::checked_and_lowered("f.nxir", source);
    let without = crate::harness::isa_pipelines(VectorIsa::Avx512);
    let with = tensorc_cpu::Pipelines { avx512: tensorc_passes::pipeline::AVX512_LOWERING.into(), ..without.clone() };
    let run = |p: &tensorc_cpu::Pipelines| {
        let m = tensorc_cpu::CpuModule::compile(&module, &text, p).unwrap_or_else(|e| panic!("{e}"));
        let f = &m.functions()[0];
        let mut out = vec![Tensor::zeros(f.results()[0].clone()).unwrap()];
        let refs: Vec<&Tensor> = inputs.iter().collect();
        f.call(&refs, &mut out).unwrap();
        out.remove(0)
    };
    (run(&with), run(&without))
}

#[test]
fn exp_gives_the_same_bits_with_and_without_vscalef() {
    let mut values = crate::vulkan_math::f32_sweep();
    // A NaN with the sign bit set keeps it on both paths too.
    values.push(-f64::NAN);
    let n = values.len();
    let s: Vec<Scalar> = values.iter().map(|&v| Scalar::F(v)).collect();
    let x = Tensor::from_scalars(TensorType::new(DType::F32, vec![n]), &s).unwrap();
    let src = format!("def f(x: f32[{n}]) -> f32[{n}] {{\n  y = exp x\n  return y\n}}\n");
    if tensorc_mlir::target_has_avx512(&CodegenTarget::default()) {
        let ir = tensorc::emit("f.nxir", &src, tensorc::Stage::LlvmDialect).unwrap();
        assert!(ir.contains("llvm.x86.avx512.mask.scalef.ps.512"), "the host's exp uses vscalefps");
    }
    let (with, without) = with_and_without(&src, &[x]);
    assert_eq!(with.bytes(), without.bytes(), "exp of the f32 sweep");
}

#[test]
fn softmax_gives_the_same_bits_with_and_without_vscalef() {
    let src = "def f(x: f32[37][300]) -> f32[37][300] {\n  m = reduce_max x, axes: [1], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [1], keep_axes: true\n  y = divide e, s\n  return y\n}\n";
    // Rows from tiny spreads to ones whose smallest terms underflow.
    let s: Vec<Scalar> = (0..37 * 300)
        .map(|i| {
            let (row, col) = (i / 300, i % 300);
            Scalar::F(((col * 7919 + row * 104_729) % 1000) as f64 * 0.0005 * (row * row) as f64)
        })
        .collect();
    let x = Tensor::from_scalars(TensorType::new(DType::F32, vec![37, 300]), &s).unwrap();
    let (with, without) = with_and_without(src, &[x]);
    assert_eq!(with.bytes(), without.bytes(), "softmax");
}

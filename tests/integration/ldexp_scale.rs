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
use tensorc::{DType, Scalar, SourceFile, Tensor, TensorType};
use tensorc_mlir::CodegenTarget;

/// `(p · 2^(n >> 1)) · 2^(n − (n >> 1))` as the frontend's `exp` reaches the
/// LLVM dialect, for 16 lanes (exponent from `floor`) and 8 (exponent an
/// argument: generic `ldexp`), the scalar form (left alone: scalar
/// `ldexp` is a libm call; reading its type as a vector's crashed the pass
/// on generated seed 45) and a look-alike whose shift is 22.
const IDIOM: &str = r#"
module {
  llvm.func @sixteen(%p: vector<16xf32>, %t: vector<16xf32>) -> vector<16xf32> {
    %c1 = llvm.mlir.constant(dense<1> : vector<16xi32>) : vector<16xi32>
    %c23 = llvm.mlir.constant(dense<23> : vector<16xi32>) : vector<16xi32>
    %c127 = llvm.mlir.constant(dense<127> : vector<16xi32>) : vector<16xi32>
    %x = llvm.intr.floor(%t) : (vector<16xf32>) -> vector<16xf32>
    %n = llvm.fptosi %x : vector<16xf32> to vector<16xi32>
    %n1 = llvm.ashr %n, %c1 : vector<16xi32>
    %n2 = llvm.sub %n, %n1 : vector<16xi32>
    %e1 = llvm.add %n1, %c127 : vector<16xi32>
    %b1 = llvm.shl %e1, %c23 : vector<16xi32>
    %s1 = llvm.bitcast %b1 : vector<16xi32> to vector<16xf32>
    %e2 = llvm.add %n2, %c127 : vector<16xi32>
    %b2 = llvm.shl %e2, %c23 : vector<16xi32>
    %s2 = llvm.bitcast %b2 : vector<16xi32> to vector<16xf32>
    %y1 = llvm.fmul %p, %s1 : vector<16xf32>
    %y = llvm.fmul %y1, %s2 : vector<16xf32>
    llvm.return %y : vector<16xf32>
  }
  llvm.func @eight(%p: vector<8xf32>, %n: vector<8xi32>) -> vector<8xf32> {
    %c1 = llvm.mlir.constant(dense<1> : vector<8xi32>) : vector<8xi32>
    %c23 = llvm.mlir.constant(dense<23> : vector<8xi32>) : vector<8xi32>
    %c127 = llvm.mlir.constant(dense<127> : vector<8xi32>) : vector<8xi32>
    %n1 = llvm.ashr %n, %c1 : vector<8xi32>
    %n2 = llvm.sub %n, %n1 : vector<8xi32>
    %e1 = llvm.add %c127, %n1 : vector<8xi32>
    %b1 = llvm.shl %e1, %c23 : vector<8xi32>
    %s1 = llvm.bitcast %b1 : vector<8xi32> to vector<8xf32>
    %e2 = llvm.add %n2, %c127 : vector<8xi32>
    %b2 = llvm.shl %e2, %c23 : vector<8xi32>
    %s2 = llvm.bitcast %b2 : vector<8xi32> to vector<8xf32>
    %y1 = llvm.fmul %s1, %p : vector<8xf32>
    %y = llvm.fmul %s2, %y1 : vector<8xf32>
    llvm.return %y : vector<8xf32>
  }
  llvm.func @exp_tail(%p: vector<16xf32>, %x: vector<16xf32>) -> vector<16xf32> {
    %c1 = llvm.mlir.constant(dense<1> : vector<16xi32>) : vector<16xi32>
    %c23 = llvm.mlir.constant(dense<23> : vector<16xi32>) : vector<16xi32>
    %c127 = llvm.mlir.constant(dense<127> : vector<16xi32>) : vector<16xi32>
    %lo = llvm.mlir.constant(dense<-1.040000e+02> : vector<16xf32>) : vector<16xf32>
    %hi = llvm.mlir.constant(dense<8.900000e+01> : vector<16xf32>) : vector<16xf32>
    %g = llvm.fcmp "ugt" %x, %lo : vector<16xf32>
    %xl = llvm.select %g, %x, %lo : vector<16xi1>, vector<16xf32>
    %l = llvm.fcmp "ult" %xl, %hi : vector<16xf32>
    %xc = llvm.select %l, %xl, %hi : vector<16xi1>, vector<16xf32>
    %t = llvm.intr.floor(%xc) : (vector<16xf32>) -> vector<16xf32>
    %n = llvm.fptosi %t : vector<16xf32> to vector<16xi32>
    %n1 = llvm.ashr %n, %c1 : vector<16xi32>
    %n2 = llvm.sub %n, %n1 : vector<16xi32>
    %e1 = llvm.add %n1, %c127 : vector<16xi32>
    %b1 = llvm.shl %e1, %c23 : vector<16xi32>
    %s1 = llvm.bitcast %b1 : vector<16xi32> to vector<16xf32>
    %e2 = llvm.add %n2, %c127 : vector<16xi32>
    %b2 = llvm.shl %e2, %c23 : vector<16xi32>
    %s2 = llvm.bitcast %b2 : vector<16xi32> to vector<16xf32>
    %y1 = llvm.fmul %p, %s1 : vector<16xf32>
    %y = llvm.fmul %y1, %s2 : vector<16xf32>
    %nan = llvm.fcmp "uno" %x, %x : vector<16xf32>
    %r = llvm.select %nan, %x, %y : vector<16xi1>, vector<16xf32>
    llvm.return %r : vector<16xf32>
  }
  llvm.func @ordered_clamps(%p: vector<16xf32>, %x: vector<16xf32>) -> vector<16xf32> {
    %c1 = llvm.mlir.constant(dense<1> : vector<16xi32>) : vector<16xi32>
    %c23 = llvm.mlir.constant(dense<23> : vector<16xi32>) : vector<16xi32>
    %c127 = llvm.mlir.constant(dense<127> : vector<16xi32>) : vector<16xi32>
    %lo = llvm.mlir.constant(dense<-1.040000e+02> : vector<16xf32>) : vector<16xf32>
    %hi = llvm.mlir.constant(dense<8.900000e+01> : vector<16xf32>) : vector<16xf32>
    %g = llvm.fcmp "ogt" %x, %lo : vector<16xf32>
    %xl = llvm.select %g, %x, %lo : vector<16xi1>, vector<16xf32>
    %l = llvm.fcmp "olt" %xl, %hi : vector<16xf32>
    %xc = llvm.select %l, %xl, %hi : vector<16xi1>, vector<16xf32>
    %t = llvm.intr.floor(%xc) : (vector<16xf32>) -> vector<16xf32>
    %n = llvm.fptosi %t : vector<16xf32> to vector<16xi32>
    %n1 = llvm.ashr %n, %c1 : vector<16xi32>
    %n2 = llvm.sub %n, %n1 : vector<16xi32>
    %e1 = llvm.add %n1, %c127 : vector<16xi32>
    %b1 = llvm.shl %e1, %c23 : vector<16xi32>
    %s1 = llvm.bitcast %b1 : vector<16xi32> to vector<16xf32>
    %e2 = llvm.add %n2, %c127 : vector<16xi32>
    %b2 = llvm.shl %e2, %c23 : vector<16xi32>
    %s2 = llvm.bitcast %b2 : vector<16xi32> to vector<16xf32>
    %y1 = llvm.fmul %p, %s1 : vector<16xf32>
    %y = llvm.fmul %y1, %s2 : vector<16xf32>
    %nan = llvm.fcmp "uno" %x, %x : vector<16xf32>
    %r = llvm.select %nan, %x, %y : vector<16xi1>, vector<16xf32>
    llvm.return %r : vector<16xf32>
  }
  llvm.func @scalar(%p: f32, %n: i32) -> f32 {
    %c1 = llvm.mlir.constant(1 : i32) : i32
    %c23 = llvm.mlir.constant(23 : i32) : i32
    %c127 = llvm.mlir.constant(127 : i32) : i32
    %n1 = llvm.ashr %n, %c1 : i32
    %n2 = llvm.sub %n, %n1 : i32
    %e1 = llvm.add %n1, %c127 : i32
    %b1 = llvm.shl %e1, %c23 : i32
    %s1 = llvm.bitcast %b1 : i32 to f32
    %e2 = llvm.add %n2, %c127 : i32
    %b2 = llvm.shl %e2, %c23 : i32
    %s2 = llvm.bitcast %b2 : i32 to f32
    %y1 = llvm.fmul %p, %s1 : f32
    %y = llvm.fmul %y1, %s2 : f32
    llvm.return %y : f32
  }
  llvm.func @other_shift(%p: vector<16xf32>, %n: vector<16xi32>) -> vector<16xf32> {
    %c1 = llvm.mlir.constant(dense<1> : vector<16xi32>) : vector<16xi32>
    %c22 = llvm.mlir.constant(dense<22> : vector<16xi32>) : vector<16xi32>
    %c127 = llvm.mlir.constant(dense<127> : vector<16xi32>) : vector<16xi32>
    %n1 = llvm.ashr %n, %c1 : vector<16xi32>
    %n2 = llvm.sub %n, %n1 : vector<16xi32>
    %e1 = llvm.add %n1, %c127 : vector<16xi32>
    %b1 = llvm.shl %e1, %c22 : vector<16xi32>
    %s1 = llvm.bitcast %b1 : vector<16xi32> to vector<16xf32>
    %e2 = llvm.add %n2, %c127 : vector<16xi32>
    %b2 = llvm.shl %e2, %c22 : vector<16xi32>
    %s2 = llvm.bitcast %b2 : vector<16xi32> to vector<16xf32>
    %y1 = llvm.fmul %p, %s1 : vector<16xf32>
    %y = llvm.fmul %y1, %s2 : vector<16xf32>
    llvm.return %y : vector<16xf32>
  }
}
"#;

#[test]
fn ldexp_scale_before_and_after() {
    use tensorc_passes::ldexp_scale;
    tensorc_mlir::register_external_pass(ldexp_scale::NAME, ldexp_scale::create);
    let mlir = tensorc_mlir::Mlir::new();
    let (_, before, after) = before_and_after(&mlir, IDIOM, ldexp_scale::NAME);
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
    // Registers tensorc's passes (the facade does it on first use).
    let _ = tensorc::emit("f.nxir", source, tensorc::Stage::LlvmDialect);
    let file = SourceFile::new("f.nxir", source);
    let module = tensorc_ir::check::compile(&file).unwrap();
    let text = tensorc_frontend::lower(&module, &file).unwrap();
    let with = tensorc_cpu::Pipelines {
        opt: tensorc_passes::opt_pipeline().into(),
        lowering: tensorc_passes::cpu_lowering_pipeline(),
        avx512: tensorc_passes::pipeline::AVX512_LOWERING.into(),
    };
    let without = tensorc_cpu::Pipelines { avx512: String::new(), ..with.clone() };
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

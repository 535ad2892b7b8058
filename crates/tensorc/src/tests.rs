//! Facade tests on the interpreter target (the CPU path has its own tests in
//! tensorc-cpu and the differential suite in `tests/`), plus ndarray interop
//! and error texts. Expected values are worked out by hand.

use super::*;
use ndarray::{ArrayD, IxDyn, array};

const TWO: &str = "def add(x: f32[2], y: f32[2]) -> f32[2] {\n  z = add x, y\n  return z\n}\n\ndef neg(x: f32[2]) -> f32[2] {\n  y = negate x\n  return y\n}\n";

fn interp() -> CompileOptions {
    CompileOptions {
        target: Target::Interp,
        threads: None,
        ..CompileOptions::default()
    }
}

#[test]
fn ndarray_roundtrip_in_logical_order() {
    let a = array![[1i32, 2, 3], [4, 5, 6]];
    // A transposed view: logical order, not memory order, must be kept.
    let t = tensor_from_array(a.t());
    assert_eq!(t.ty(), &TensorType::new(DType::S32, vec![3, 2]));
    assert_eq!(t.to_scalars(), [1, 4, 2, 5, 3, 6].map(Scalar::I).to_vec());
    let back: ArrayD<i32> = tensor_to_array(&t).unwrap();
    assert_eq!(back, a.t().into_dyn().to_owned());
    let err = tensor_to_array::<f32>(&t).unwrap_err();
    assert!(matches!(err, Error::Input(_)), "{err}");
    let scalar = tensor_from_array(ndarray::arr0(2.5f64).view());
    assert_eq!(scalar.ty(), &TensorType::scalar(DType::F64));
    let empty = tensor_from_array(ArrayD::<u8>::zeros(IxDyn(&[0, 3])).view());
    assert!(empty.is_empty());
}

#[test]
fn io_errors_name_the_path() {
    let err = compile_file(Path::new("/nonexistent/x.nxir"), &interp()).unwrap_err();
    assert!(
        err.render().starts_with("error: /nonexistent/x.nxir: "),
        "{}",
        err.render()
    );
}

#[test]
fn program_errors_render_as_diagnostics() {
    let err = compile_str(
        "bad.nxir",
        "def f(x: f32[2]) -> f32[2] {\n  y = ad x, 1.0\n  return y\n}\n",
        &interp(),
    )
    .unwrap_err();
    let text = err.render();
    assert!(text.starts_with("bad.nxir:2:"), "{text}");
    assert!(text.contains("error:"), "{text}");
}

#[test]
fn entry_selection() {
    let p = compile_str("two.nxir", TWO, &interp()).unwrap();
    assert_eq!(p.functions(), vec!["add", "neg"]);
    let err = p.entry(None).unwrap_err();
    assert_eq!(
        err.render(),
        "error: the program defines several functions and none is named 'main'; choose one of: add, neg\n"
    );
    let err = p.entry(Some("mul")).unwrap_err();
    assert_eq!(
        err.render(),
        "error: no function named 'mul'; the program defines: add, neg\n"
    );
    let f = p.entry(Some("neg")).unwrap();
    assert!(f.check_fits_in_memory().is_ok());
    assert_eq!(f.name(), "neg");
    assert_eq!(f.params()[0].0, "x");
    assert_eq!(f.results(), vec![TensorType::new(DType::F32, vec![2])]);
}

#[test]
fn interp_call_and_call_into() {
    let p = compile_str("two.nxir", TWO, &interp()).unwrap();
    let add = p.entry(Some("add")).unwrap();
    let x = tensor_from_array(array![1.5f32, -2.0].view());
    let y = tensor_from_array(array![0.25f32, 4.0].view());
    let r = add.call(&[x.clone(), y.clone()]).unwrap();
    assert_eq!(
        tensor_to_array::<f32>(&r[0])
            .unwrap()
            .into_raw_vec_and_offset()
            .0,
        vec![1.75, 2.0]
    );
    let mut out = vec![Tensor::zeros(TensorType::new(DType::F32, vec![2])).unwrap()];
    add.call_into(&[&x, &y], &mut out).unwrap();
    assert_eq!(out[0], r[0]);
}

#[test]
fn inputs_are_checked_with_the_spec_message() {
    let p = compile_str("two.nxir", TWO, &interp()).unwrap();
    let add = p.entry(Some("add")).unwrap();
    let bad = tensor_from_array(array![1.0f64, 2.0, 3.0].view());
    let good = tensor_from_array(array![1.0f32, 2.0].view());
    let err = add.call(&[bad, good.clone()]).unwrap_err();
    assert_eq!(
        err.render(),
        "error: input 'x' expects f32[2], got f64[3]\n"
    );
    let mut out = vec![Tensor::zeros(TensorType::new(DType::S8, vec![2])).unwrap()];
    let err = add.call_into(&[&good, &good], &mut out).unwrap_err();
    assert_eq!(err.render(), "error: output 0 expects f32[2], got s8[2]\n");
}

#[test]
fn huge_results_are_refused_not_aborted() {
    let ty = TensorType::new(DType::F64, vec![1 << 40, 1 << 10]);
    assert!(matches!(program::allocate(ty), Err(Error::Input(_))));
    // 2^46 bytes (64 TiB) of result from a 1-element input, on both targets.
    let src = "def f(x: u8) -> u8[8192][8192][1048576] {\n  y = broadcast x, {8192, 8192, 1048576}, []\n  return y\n}\n";
    for target in [Target::Interp, Target::Cpu] {
        let p = compile_str(
            "big.nxir",
            src,
            &CompileOptions {
                target,
                threads: None,
                ..CompileOptions::default()
            },
        )
        .unwrap();
        let x = Tensor::zeros(TensorType::scalar(DType::U8)).unwrap();
        let f = p.entry(None).unwrap();
        assert!(f.check_fits_in_memory().is_err());
        let err = f.call(&[x]).unwrap_err();
        assert_eq!(
            err.render(),
            "error: value 'y' of type u8[8192][8192][1048576] in function 'f' does not fit in memory\n"
        );
    }
}

#[test]
fn programs_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Program>();
    send_sync::<Function<'static>>();
    send_sync::<Error>();
}

#[test]
fn nxir_stage_is_the_canonical_printer() {
    let text = emit("two.nxir", TWO, Stage::Nxir).unwrap();
    assert!(text.contains("def add"), "{text}");
    assert_eq!(Stage::from_name("llvm-ir"), Some(Stage::LlvmIr));
    assert_eq!(Target::from_name("interp"), Some(Target::Interp));
    assert_eq!(Target::from_name("vulkan"), Some(Target::Vulkan));
}

const CPU_PROGRAM: &str = "\
def add(x: f32[2][3], y: f32[2][3]) -> f32[2][3] {
  z = add x, y
  return z
}

def mm(a: f32[2][3], b: f32[3][2]) -> f32[2][2] {
  c = dot a, [1], [], b, [0], []
  return c
}

def total(x: s32[2][3]) -> {s32, s32[3]} {
  t = sum x, axes: nil
  c = sum x, axes: [0]
  return {t, c}
}

def square(x: f64) -> f64 {
  y = multiply x, x
  return y
}

def empty(a: f32[0][3], b: f32[3]) -> f32[0][3] {
  c = add a, b
  return c
}
";

fn cpu() -> CompileOptions {
    CompileOptions::default()
}

#[test]
fn cpu_end_to_end() {
    let p = compile_str("cpu.nxir", CPU_PROGRAM, &cpu()).unwrap();
    assert_eq!(p.target(), Target::Cpu);

    let x = tensor_from_array(array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]].view());
    let y = tensor_from_array(array![[0.5f32, 0.5, 0.5], [-1.0, -1.0, -1.0]].view());
    let r = p.entry(Some("add")).unwrap().call(&[x.clone(), y]).unwrap();
    assert_eq!(
        tensor_to_array::<f32>(&r[0]).unwrap(),
        array![[1.5f32, 2.5, 3.5], [3.0, 4.0, 5.0]].into_dyn()
    );

    // [[1,2,3],[4,5,6]] . [[1,2],[3,4],[5,6]] = [[22,28],[49,64]]
    let b = tensor_from_array(array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]].view());
    let r = p.entry(Some("mm")).unwrap().call(&[x, b]).unwrap();
    assert_eq!(
        tensor_to_array::<f32>(&r[0]).unwrap(),
        array![[22.0f32, 28.0], [49.0, 64.0]].into_dyn()
    );

    // Two results, the first rank 0: total 1+2+3-4+5+6 = 13, column sums [-3, 7, 9].
    let m = tensor_from_array(array![[1i32, 2, 3], [-4, 5, 6]].view());
    let r = p.entry(Some("total")).unwrap().call(&[m]).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].ty(), &TensorType::scalar(DType::S32));
    assert_eq!(r[0].to_scalars(), vec![Scalar::I(13)]);
    assert_eq!(r[1].to_scalars(), [-3, 7, 9].map(Scalar::I).to_vec());

    let s = tensor_from_array(ndarray::arr0(-1.5f64).view());
    let r = p.entry(Some("square")).unwrap().call(&[s]).unwrap();
    assert_eq!(r[0].to_scalars(), vec![Scalar::F(2.25)]);

    let a = Tensor::zeros(TensorType::new(DType::F32, vec![0, 3])).unwrap();
    let b = tensor_from_array(array![1.0f32, 2.0, 3.0].view());
    let r = p.entry(Some("empty")).unwrap().call(&[a, b]).unwrap();
    assert_eq!(r[0].ty(), &TensorType::new(DType::F32, vec![0, 3]));
}

#[test]
fn cpu_call_into_writes_in_place_and_checks() {
    let p = compile_str("cpu.nxir", CPU_PROGRAM, &cpu()).unwrap();
    let f = p.entry(Some("add")).unwrap();
    let x = tensor_from_array(array![[1.0f32, 1.0, 1.0], [1.0, 1.0, 1.0]].view());
    let mut out = vec![Tensor::zeros(TensorType::new(DType::F32, vec![2, 3])).unwrap()];
    let before = out[0].as_ptr();
    f.call_into(&[&x, &x], &mut out).unwrap();
    assert_eq!(out[0].as_ptr(), before);
    assert_eq!(
        tensor_to_array::<f32>(&out[0]).unwrap(),
        ArrayD::from_elem(IxDyn(&[2, 3]), 2.0f32)
    );
    let bad = tensor_from_array(array![[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]].view());
    assert_eq!(
        f.call(&[bad, x]).unwrap_err().render(),
        "error: input 'x' expects f32[2][3], got f64[3][2]\n"
    );
}

#[test]
fn cpu_matches_interp_on_the_same_program() {
    let c = compile_str("cpu.nxir", CPU_PROGRAM, &cpu()).unwrap();
    let i = compile_str("cpu.nxir", CPU_PROGRAM, &interp()).unwrap();
    for name in c.functions() {
        let fc = c.entry(Some(name)).unwrap();
        let fi = i.entry(Some(name)).unwrap();
        let inputs: Vec<Tensor> = fc
            .params()
            .iter()
            .enumerate()
            .map(|(k, (_, ty))| tensorc_ir::random::random_tensor(ty, 7, k as u64))
            .collect();
        let rc = fc.call(&inputs).unwrap();
        let ri = fi.call(&inputs).unwrap();
        assert_eq!(rc.len(), ri.len());
        for (a, b) in rc.iter().zip(&ri) {
            assert_eq!(a.ty(), b.ty(), "{name}");
            for (x, y) in a.to_scalars().into_iter().zip(b.to_scalars()) {
                let (x, y) = (x.as_f64(), y.as_f64());
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{name}: {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn every_stage_emits() {
    // f64 `sin`: f32 math is expanded into arith ops by the frontend
    // (fastmath.rs) and f64 `exp` by `tensorc-expand-math-f64`; f64 `sin`
    // stays a `math.sin` down to the LLVM intrinsic.
    let src = "def f(x: f64[4]) -> f64[4] {\n  y = sin x\n  return y\n}\n";
    let linalg = emit("s.nxir", src, Stage::Linalg).unwrap();
    assert!(linalg.contains("loc(\"s.nxir\":2:"), "{linalg}");
    let opt = emit("s.nxir", src, Stage::Opt).unwrap();
    assert!(opt.contains("math.sin") && !opt.contains("s.nxir"), "{opt}");
    assert!(opt.contains("bufferization.writable = false"), "{opt}");
    let llvm = emit("s.nxir", src, Stage::LlvmDialect).unwrap();
    assert!(llvm.contains("llvm.func @_mlir_ciface_f"), "{llvm}");
    let ir = emit("s.nxir", src, Stage::LlvmIr).unwrap();
    assert!(ir.contains("define void @_mlir_ciface_f("), "{ir}");
    assert!(ir.contains("@llvm.sin."), "{ir}");
    let asm = emit("s.nxir", src, Stage::Asm).unwrap();
    assert!(asm.contains("_mlir_ciface_f:"), "{asm}");
    for s in Stage::ALL {
        assert_eq!(Stage::from_name(s.name()), Some(s));
    }
}

#[test]
fn mlir_failures_are_internal_errors_naming_the_stage() {
    let e = tensorc_mlir::MlirError {
        kind: tensorc_mlir::ErrorKind::Verify,
        stage: "opt".into(),
        message: "the MLIR verifier rejected the output of `opt`".into(),
        diagnostics: vec![],
    };
    assert_eq!(
        Error::from(e).render(),
        "error: internal error in stage `opt` (this is a tensorc bug): the MLIR verifier rejected the output of `opt`\n"
    );
}

#[test]
fn concurrent_compiles_and_calls() {
    // Several MLIR contexts and JIT engines alive at once, and one program
    // called from several threads.
    let shared = compile_str("cpu.nxir", CPU_PROGRAM, &cpu()).unwrap();
    std::thread::scope(|s| {
        for k in 0..6 {
            let shared = &shared;
            s.spawn(move || {
                let own = compile_str("cpu.nxir", CPU_PROGRAM, &cpu()).unwrap();
                let v = k as f64;
                let x = tensor_from_array(ndarray::arr0(v).view());
                for p in [&own, shared] {
                    let r = p
                        .entry(Some("square"))
                        .unwrap()
                        .call(std::slice::from_ref(&x))
                        .unwrap();
                    assert_eq!(r[0].to_scalars(), vec![Scalar::F(v * v)]);
                }
            });
        }
    });
}

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
}

#[test]
fn nxir_stage_is_the_canonical_printer() {
    let text = emit("two.nxir", TWO, Stage::Nxir).unwrap();
    assert!(text.contains("def add"), "{text}");
    assert_eq!(Stage::from_name("llvm-ir"), Some(Stage::LlvmIr));
    assert_eq!(Target::from_name("interp"), Some(Target::Interp));
    assert_eq!(Target::from_name("vulkan"), None);
}

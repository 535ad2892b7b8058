//! The calling convention between tensorc and generated code, seen from Rust.
//!
//! Every compiled `def` is called as `_mlir_ciface_<name>(in_0*, ..., out_0*, ...)`
//! where each argument points at a strided memref descriptor
//! `{allocated, aligned, offset, sizes[rank], strides[rank]}` (all 64-bit,
//! so no padding for any rank, rank 0 included). The descriptors built here
//! point straight at the caller's `Tensor` storage: inputs are read in place
//! and results are written in place, with no hidden copies.
//!
//! Argument checking lives here too, because it is what makes handing raw
//! pointers to generated code sound: a kernel compiled for `f32[2][3]` trusts
//! that its buffers hold exactly that.

use tensorc_ir::{Tensor, TensorType};

/// `input 'x' expects f32[2][3], got f64[3][2]` and friends; `None` when the
/// inputs match the parameters exactly.
pub fn check_inputs(params: &[(String, TensorType)], inputs: &[&Tensor]) -> Result<(), String> {
    if inputs.len() != params.len() {
        let names: Vec<String> = params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        return Err(format!(
            "expected {} input{} ({}), got {}",
            params.len(),
            if params.len() == 1 { "" } else { "s" },
            names.join(", "),
            inputs.len()
        ));
    }
    for ((name, ty), t) in params.iter().zip(inputs) {
        if t.ty() != ty {
            return Err(format!("input '{name}' expects {ty}, got {}", t.ty()));
        }
    }
    Ok(())
}

/// `output 0 expects f32[2], got f32[3]`; outputs are numbered in the order of
/// the flattened results.
pub fn check_outputs(results: &[TensorType], outputs: &[Tensor]) -> Result<(), String> {
    if outputs.len() != results.len() {
        return Err(format!(
            "expected {} output tensor(s), got {}",
            results.len(),
            outputs.len()
        ));
    }
    for (i, (ty, t)) in results.iter().zip(outputs).enumerate() {
        if t.ty() != ty {
            return Err(format!("output {i} expects {ty}, got {}", t.ty()));
        }
    }
    Ok(())
}

/// A memref descriptor as a flat `i64` array with the C struct's layout.
pub(crate) fn descriptor(data: *mut u8, ty: &TensorType) -> Vec<i64> {
    let mut d = Vec::with_capacity(3 + 2 * ty.rank());
    d.push(data as i64); // allocated
    d.push(data as i64); // aligned
    d.push(0); // offset
    d.extend(ty.shape.iter().map(|&s| s as i64));
    d.extend(ty.strides().iter().map(|&s| s as i64));
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorc_ir::DType;

    fn t(d: DType, shape: &[usize]) -> Tensor {
        Tensor::zeros(TensorType::new(d, shape.to_vec())).unwrap()
    }

    #[test]
    fn input_mismatch_messages() {
        let params = vec![("x".to_string(), TensorType::new(DType::F32, vec![2, 3]))];
        assert_eq!(
            check_inputs(&params, &[&t(DType::F64, &[3, 2])]),
            Err("input 'x' expects f32[2][3], got f64[3][2]".into())
        );
        assert_eq!(check_inputs(&params, &[&t(DType::F32, &[2, 3])]), Ok(()));
        assert_eq!(
            check_inputs(&params, &[]),
            Err("expected 1 input (x: f32[2][3]), got 0".into())
        );
        let res = vec![TensorType::new(DType::F32, vec![2])];
        assert_eq!(
            check_outputs(&res, &[t(DType::F32, &[3])]),
            Err("output 0 expects f32[2], got f32[3]".into())
        );
    }

    #[test]
    fn descriptor_layout() {
        let ty = TensorType::new(DType::F32, vec![2, 3, 4]);
        let p = 0x1000 as *mut u8;
        assert_eq!(
            descriptor(p, &ty),
            vec![0x1000, 0x1000, 0, 2, 3, 4, 12, 4, 1]
        );
        assert_eq!(
            descriptor(p, &TensorType::scalar(DType::S8)),
            vec![0x1000, 0x1000, 0]
        );
    }
}

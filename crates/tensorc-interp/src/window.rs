//! `window_reduce` with a user function (spec §4.5): the window form of the
//! general `reduce`.
//!
//! Kept apart from the built-in window reductions in `scan` because the
//! combiner is a callback into the interpreter (it evaluates a `fn` region),
//! and because its padding is different: padded positions hold the initial
//! value and go through the function like any element, as in Nx and XLA's
//! `reduce_window`.

use tensorc_ir::{Tensor, TensorType};

use crate::InterpError;
use crate::layout::{for_each_index, strides};
use crate::scan::element;
use crate::value::convert_tensor;

/// The normalized options of one window op.
pub struct WindowSpec<'a> {
    pub window: &'a [usize],
    pub strides: &'a [usize],
    pub padding: &'a [(i64, i64)],
    pub dilations: &'a [usize],
}

/// For every output position, fold the window's elements (row-major window
/// order, padding reads as `init`) into `init` with `f(acc, v)`; `x` and
/// `init` are converted to `out`'s dtype first.
pub fn window_reduce_with(
    x: &Tensor,
    init: &Tensor,
    spec: &WindowSpec,
    out: TensorType,
    f: &mut dyn FnMut(&Tensor, &Tensor) -> Result<Tensor, InterpError>,
) -> Result<Tensor, InterpError> {
    let d = out.dtype;
    let x = convert_tensor(x, d)?;
    let init = convert_tensor(init, d)?;
    let shape = x.shape().to_vec();
    let rank = shape.len();
    let lens = [
        spec.window.len(),
        spec.strides.len(),
        spec.padding.len(),
        spec.dilations.len(),
        out.rank(),
    ];
    if lens.iter().any(|&l| l != rank)
        || init.len() != 1
        || spec.strides.contains(&0)
        || spec.dilations.contains(&0)
    {
        return Err(InterpError::Internal(format!(
            "window_reduce of {} into {out}: bad options",
            x.ty()
        )));
    }
    let st = strides(&shape);
    // The input element a window position reads, None in the padding.
    let source = |o: &[usize], k: &[usize]| -> Option<usize> {
        let mut flat = 0;
        for a in 0..rank {
            let q = (o[a] * spec.strides[a] + k[a] * spec.dilations[a]) as i64 - spec.padding[a].0;
            if q < 0 || q >= shape[a] as i64 {
                return None;
            }
            flat += q as usize * st[a];
        }
        Some(flat)
    };
    let mut positions = Vec::new();
    for_each_index(spec.window, |_, k| positions.push(k.to_vec()));
    let mut outs = Vec::new();
    for_each_index(&out.shape, |_, o| outs.push(o.to_vec()));
    let mut bytes = Vec::with_capacity(out.size_bytes());
    for o in &outs {
        let mut acc = init.clone();
        for k in &positions {
            let v = match source(o, k) {
                Some(i) => element(&x, i)?,
                None => init.clone(),
            };
            let r = f(&acc, &v)?;
            if r.ty() != &TensorType::scalar(d) {
                return Err(InterpError::Internal(format!(
                    "window_reduce function returned {}",
                    r.ty()
                )));
            }
            acc = r;
        }
        bytes.extend_from_slice(acc.bytes());
    }
    Tensor::from_bytes(out, &bytes).map_err(|e| InterpError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorc_ir::{DType, Scalar};

    fn ti(shape: &[usize], v: &[i64]) -> Tensor {
        let data: Vec<Scalar> = v.iter().map(|&x| Scalar::I(x)).collect();
        Tensor::from_scalars(TensorType::new(DType::S32, shape.to_vec()), &data).unwrap()
    }

    #[test]
    fn padding_goes_through_the_function_as_init() {
        // x = [1, 2, 3], window 2, padding (1, 1), init 10, f(acc, v) = acc + v:
        // windows [pad, 1], [1, 2], [2, 3], [3, pad] -> 10+10+1, 10+1+2, 10+2+3, 10+3+10.
        let x = ti(&[3], &[1, 2, 3]);
        let init = ti(&[], &[10]);
        let spec = WindowSpec {
            window: &[2],
            strides: &[1],
            padding: &[(1, 1)],
            dilations: &[1],
        };
        let mut add =
            |a: &Tensor, b: &Tensor| Ok(ti(&[], &[(a.get(0).as_f64() + b.get(0).as_f64()) as i64]));
        let r = window_reduce_with(
            &x,
            &init,
            &spec,
            TensorType::new(DType::S32, vec![4]),
            &mut add,
        )
        .unwrap();
        assert_eq!(r, ti(&[4], &[21, 13, 15, 23]));
        // The order is acc first: f(acc, v) = 2*acc - v from 0 over [1, 2] gives 2*(0*2-1)-2 = -4.
        let spec = WindowSpec {
            window: &[2],
            strides: &[1],
            padding: &[(0, 0)],
            dilations: &[1],
        };
        let mut g = |a: &Tensor, b: &Tensor| {
            Ok(ti(
                &[],
                &[2 * a.get(0).as_f64() as i64 - b.get(0).as_f64() as i64],
            ))
        };
        let r = window_reduce_with(
            &ti(&[2], &[1, 2]),
            &ti(&[], &[0]),
            &spec,
            TensorType::new(DType::S32, vec![1]),
            &mut g,
        )
        .unwrap();
        assert_eq!(r, ti(&[1], &[-4]));
    }
}

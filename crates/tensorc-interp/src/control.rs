//! Ops with `fn` regions: the general `reduce`, `while` and `cond`.
//!
//! Regions are evaluated in the enclosing function's environment, so a `fn`
//! body reads captured values directly; a region evaluated again (a loop
//! body, a combiner called once per element) simply overwrites its own
//! values. `cond` evaluates only the branch it takes and `while` evaluates
//! its body only while the condition holds — the interpreter is the
//! reference for "the untaken branch is not executed" as well.

use tensorc_ir::graph::{Function, Op};
use tensorc_ir::{Tensor, ValueId};

use crate::value::convert_tensor;
use crate::{Env, Interp, InterpError, Value, scan};

/// Whether `op` is evaluated here (it needs the environment mutably to run regions).
pub(crate) fn is_control(op: &Op) -> bool {
    matches!(op, Op::ReduceFn { .. } | Op::While { .. } | Op::Cond { .. } | Op::WindowReduce { .. })
}

/// A scalar predicate: nonzero (NaN included) is true.
fn truthy(t: &Tensor) -> Result<bool, InterpError> {
    if t.len() != 1 {
        return Err(InterpError::Internal(format!("predicate of type {}", t.ty())));
    }
    Ok(t.get(0).as_f64() != 0.0)
}

/// The tensors of a state value, one per region parameter.
fn state_args(state: &Value) -> Vec<Value> {
    match state {
        Value::Tuple(vs) => vs.clone(),
        v => vec![v.clone()],
    }
}

fn internal(msg: &str) -> InterpError {
    InterpError::Internal(msg.to_string())
}

impl Interp<'_> {
    pub(crate) fn control(&self, f: &Function, id: ValueId, env: &mut Env) -> Result<Value, InterpError> {
        let node = f.node(id);
        let operand = |i: usize| node.operands.get(i).copied().ok_or_else(|| internal("missing operand"));
        match &node.op {
            Op::ReduceFn { axes, body, .. } => {
                let ty = node
                    .ty
                    .as_tensor()
                    .ok_or_else(|| internal("reduce of tuple type"))?
                    .clone();
                let x = env.tensor(operand(0)?)?.clone();
                let init = env.tensor(operand(1)?)?.clone();
                let d = ty.dtype;
                let mut combine = |acc: &Tensor, v: &Tensor| -> Result<Tensor, InterpError> {
                    let args = vec![Value::Tensor(acc.clone()), Value::Tensor(v.clone())];
                    let r = self.region(f, *body, args, env)?;
                    // Nx gives the function's result the reduction's type.
                    convert_tensor(r.tensor()?, d)
                };
                scan::reduce_with(&x, &init, axes, ty, &mut combine).map(Value::Tensor)
            }
            // F2 (issue 3): window_reduce folds each window with the region.
            Op::WindowReduce { window, strides, padding, dilations, body } => {
                let ty = node.ty.as_tensor().ok_or_else(|| internal("window_reduce of tuple type"))?.clone();
                let x = env.tensor(operand(0)?)?.clone();
                let init = env.tensor(operand(1)?)?.clone();
                let d = ty.dtype;
                let mut combine = |acc: &Tensor, v: &Tensor| -> Result<Tensor, InterpError> {
                    let args = vec![Value::Tensor(acc.clone()), Value::Tensor(v.clone())];
                    let r = self.region(f, *body, args, env)?;
                    convert_tensor(r.tensor()?, d)
                };
                let spec = crate::window::WindowSpec { window, strides, padding, dilations };
                crate::window::window_reduce_with(&x, &init, &spec, ty, &mut combine).map(Value::Tensor)
            }
            Op::While { cond, body } => {
                // One operand of exactly the state type is the whole state;
                // otherwise the operands are a tuple literal's elements.
                let whole = node.operands.len() == 1 && f.node(operand(0)?).ty == node.ty;
                let mut state = if whole {
                    env.get(operand(0)?)?.clone()
                } else {
                    Value::Tuple(
                        node.operands
                            .iter()
                            .map(|&o| env.get(o).cloned())
                            .collect::<Result<_, _>>()?,
                    )
                };
                loop {
                    let c = self.region(f, *cond, state_args(&state), env)?;
                    if !truthy(c.tensor()?)? {
                        return Ok(state);
                    }
                    state = self.region(f, *body, state_args(&state), env)?;
                }
            }
            Op::Cond { branches } => {
                let mut taken = branches
                    .len()
                    .checked_sub(1)
                    .ok_or_else(|| internal("cond without branches"))?;
                for (i, &p) in node.operands.iter().enumerate() {
                    if truthy(env.tensor(p)?)? {
                        taken = i;
                        break;
                    }
                }
                self.region(f, branches[taken], Vec::new(), env)
            }
            other => Err(InterpError::Internal(format!("{other:?} is not a region op"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use tensorc_ir::check::compile;
    use tensorc_ir::{DType, Scalar, SourceFile, Tensor, TensorType};

    fn run(src: &str, entry: &str, inputs: &[Tensor]) -> Vec<Vec<f64>> {
        let m = compile(&SourceFile::new("t.nxir", src.to_string())).unwrap_or_else(|d| panic!("{:?}", d.items));
        crate::run(&m, entry, inputs)
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|t| t.to_scalars().into_iter().map(Scalar::as_f64).collect())
            .collect()
    }

    fn t(d: DType, shape: &[usize], v: &[f64]) -> Tensor {
        let s: Vec<Scalar> = v
            .iter()
            .map(|&x| {
                if d.is_float() {
                    Scalar::F(x)
                } else {
                    Scalar::I(x as i64)
                }
            })
            .collect();
        Tensor::from_scalars(TensorType::new(d, shape.to_vec()), &s).expect("sizes match")
    }

    #[test]
    fn reduce_with_fn_folds_in_row_major_order_from_init() {
        let src = "def f(x: s32[2][3]) -> s32[2] {\n  r = reduce x, 0, axes: [1], fn(acc, v) {\n    m = multiply acc, 10\n    s = add m, v\n    return s\n  }\n  return r\n}\n";
        let x = t(DType::S32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(run(src, "f", std::slice::from_ref(&x)), [vec![123.0, 456.0]]);
        // Nx docs: reduce [[1,2,3],[4,5,6]] with init 10 and &Nx.add/2 over axis 1 is [16, 25]:
        // the init enters each group once.
        let src = "def f(x: s32[2][3]) -> s32[2] {\n  r = reduce x, 10, axes: [1], &Nx.add/2\n  return r\n}\n";
        assert_eq!(run(src, "f", &[x]), [vec![16.0, 25.0]]);
        // A predicate combiner's u8 result takes the reduction's type (f32 here): all of [1, 2, 0] is 0.
        let src = "def f(x: f32[3]) -> f32 {\n  r = reduce x, 1, &Nx.logical_and/2\n  return r\n}\n";
        assert_eq!(run(src, "f", &[t(DType::F32, &[3], &[1.0, 2.0, 0.0])]), [vec![0.0]]);
    }

    #[test]
    fn while_carries_a_tuple_state() {
        let src = "def f(x: f32[2]) -> {s32, f32[2]} {\n  s = while {0, x}, fn(i, a) {\n    c = less i, 3\n    return c\n  }, fn(i, a) {\n    j = add i, 1\n    b = multiply a, 2.0\n    return {j, b}\n  }\n  return s\n}\n";
        assert_eq!(
            run(src, "f", &[t(DType::F32, &[2], &[1.0, -0.5])]),
            [vec![3.0], vec![8.0, -4.0]]
        );
        // A condition false from the start returns the initial state.
        let src = "def f(x: s32) -> s32 {\n  s = while x, fn(i) {\n    c = less i, 0\n    return c\n  }, fn(i) {\n    j = add i, 1\n    return j\n  }\n  return s\n}\n";
        assert_eq!(run(src, "f", &[t(DType::S32, &[], &[5.0])]), [vec![5.0]]);
    }

    #[test]
    fn cond_takes_the_first_true_clause() {
        let src = "def f(p: u8, q: u8, x: s32) -> s32 {\n  r = cond p -> x, q -> fn() {\n    y = add x, 1\n    return y\n  }, true -> fn() {\n    z = add x, 2\n    return z\n  }\n  return r\n}\n";
        let x = t(DType::S32, &[], &[10.0]);
        let u = |v: f64| t(DType::U8, &[], &[v]);
        assert_eq!(run(src, "f", &[u(1.0), u(1.0), x.clone()]), [vec![10.0]]);
        assert_eq!(run(src, "f", &[u(0.0), u(7.0), x.clone()]), [vec![11.0]]);
        assert_eq!(run(src, "f", &[u(0.0), u(0.0), x]), [vec![12.0]]);
    }

    /// The untaken branch holds a loop that never ends: evaluating it would hang.
    #[test]
    fn untaken_branch_is_not_evaluated() {
        let src = "def f(x: s32) -> s32 {\n  one = constant 1  u8\n  r = cond one -> x, true -> fn() {\n    w = while x, fn(i) {\n      return one\n    }, fn(i) {\n      return i\n    }\n    return w\n  }\n  return r\n}\n";
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(run(src, "f", &[t(DType::S32, &[], &[4.0])]));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the untaken infinite loop ran");
        assert_eq!(got, [vec![4.0]]);
    }
}

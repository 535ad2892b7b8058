//! `triangular_solve` (Nx.LinAlg, spec §4.7) as `scf.for` substitution loops.
//!
//! Like the interpreter, every option combination becomes "solve `M x = c`
//! for each right-hand side `c`", with `M` = a or aᵀ (the transpose is only
//! a choice of which index reads a) and `M` lower or upper triangular. Loops
//! run over a's batch axes, the right-hand sides and the unknowns (in
//! solving order), carrying the result tensor, which starts as b; an inner
//! loop carries the scalar `c_i - Σ M[i][j] x_j` over the already solved
//! unknowns j in increasing order (the interpreter's order, so results are
//! bit-identical), and `x_i` is that divided by `M[i][i]`, inserted into the
//! result. Substitution is inherently sequential per right-hand side, so
//! there is no linalg form to tile; the matrices this op is used on are small.

use tensorc_ir::types::TensorType;

use crate::LowerError;
use crate::emit::{Emitter, elem, tensor_ty};
use crate::lower::{Lowerer, Val};
use crate::merge_sort::{index_const, scf_loop};

/// `scf.for` loops over `0..bounds[k]` nested in order, carrying one value of
/// type `ty`; `body(e, ivs, carried)` runs innermost and returns its next value.
fn nest(
    e: &mut Emitter,
    bounds: &[usize],
    ivs: &mut Vec<String>,
    init: String,
    ty: &str,
    body: &mut dyn FnMut(&mut Emitter, &[String], &str) -> String,
) -> String {
    let Some((&first, rest)) = bounds.split_first() else {
        return body(e, ivs, &init);
    };
    let lo = index_const(e, 0);
    let hi = index_const(e, first);
    scf_loop(e, &lo, &hi, &[(init, ty.to_string())], |e, iv, acc| {
        ivs.push(iv.to_string());
        let next = nest(e, rest, ivs, acc[0].clone(), ty, body);
        ivs.pop();
        vec![next]
    })
    .remove(0)
}

impl Lowerer<'_> {
    /// `triangular_solve a, b` with Nx's options; `ty` is b's shape in the
    /// result's float dtype.
    pub(crate) fn triangular_solve(
        &mut self,
        a: &Val,
        b: &Val,
        left_side: bool,
        lower: bool,
        transpose_a: bool,
        ty: &TensorType,
    ) -> Result<String, LowerError> {
        let d = ty.dtype;
        let ra = a.ty.rank();
        if ra < 2 || b.ty.shape != ty.shape {
            return Err(LowerError::Internal(
                "triangular_solve operand shapes".into(),
            ));
        }
        let a = self.convert_tensor(a, d);
        let bc = self.convert_tensor(b, d);
        // The loop nest below solves in place in its init: a private copy
        // keeps b intact when it is also `a` or used elsewhere (see
        // `private_copy`; regression gen_267.nxir).
        let b = if bc.name == b.name { self.private_copy(&bc) } else { bc };
        let n = a.ty.shape[ra - 1];
        let vector = b.ty.rank() == ra - 1;
        let m = if vector {
            1
        } else if left_side {
            b.ty.shape[ra - 1]
        } else {
            b.ty.shape[ra - 2]
        };
        // See the interpreter: M = aᵀ when exactly one of the transpose and
        // the right side holds; M's triangle is a's, flipped by that transpose.
        let t = transpose_a != !left_side;
        let lower_m = lower != t;
        let (et, xt, at) = (elem(d), tensor_ty(ty), tensor_ty(&a.ty));
        let mut bounds: Vec<usize> = a.ty.shape[..ra - 2].to_vec();
        bounds.push(m);
        bounds.push(n);
        let nb = ra - 2;
        let mut body = |e: &mut Emitter, ivs: &[String], x: &str| -> String {
            let (batch, c, k) = (&ivs[..nb], ivs[nb].clone(), ivs[nb + 1].clone());
            // Element (row r, right-hand side c) of this batch entry of x.
            let x_at = |r: &str| {
                let mut idx = batch.to_vec();
                if vector {
                    idx.push(r.to_string());
                } else if left_side {
                    idx.extend([r.to_string(), c.clone()]);
                } else {
                    idx.extend([c.clone(), r.to_string()]);
                }
                idx.join(", ")
            };
            let m_at = |i: &str, j: &str| {
                let mut idx = batch.to_vec();
                if t {
                    idx.extend([j.to_string(), i.to_string()]);
                } else {
                    idx.extend([i.to_string(), j.to_string()]);
                }
                idx.join(", ")
            };
            let i = if lower_m {
                k.clone()
            } else {
                let last = index_const(e, n - 1);
                e.op(&format!("arith.subi {last}, {k} : index"))
            };
            let (lo, hi) = if lower_m {
                (index_const(e, 0), i.clone())
            } else {
                let one = index_const(e, 1);
                (
                    e.op(&format!("arith.addi {i}, {one} : index")),
                    index_const(e, n),
                )
            };
            let acc0 = e.op(&format!("tensor.extract {x}[{}] : {xt}", x_at(&i)));
            let acc = scf_loop(e, &lo, &hi, &[(acc0, et.to_string())], |e, j, acc| {
                let mij = e.op(&format!(
                    "tensor.extract {}[{}] : {at}",
                    a.name,
                    m_at(&i, j)
                ));
                let xj = e.op(&format!("tensor.extract {x}[{}] : {xt}", x_at(j)));
                let p = e.bin("arith.mulf", &mij, &xj, et);
                vec![e.bin("arith.subf", &acc[0], &p, et)]
            })
            .remove(0);
            let diag = e.op(&format!(
                "tensor.extract {}[{}] : {at}",
                a.name,
                m_at(&i, &i)
            ));
            let xi = e.bin("arith.divf", &acc, &diag, et);
            e.op(&format!("tensor.insert {xi} into {x}[{}] : {xt}", x_at(&i)))
        };
        let mut ivs = Vec::new();
        Ok(nest(
            &mut self.e,
            &bounds,
            &mut ivs,
            b.name.clone(),
            &xt,
            &mut body,
        ))
    }
}

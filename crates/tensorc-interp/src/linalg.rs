//! `triangular_solve` (Nx.LinAlg, spec §4.7) by plain forward and back
//! substitution, one right-hand side at a time.
//!
//! The four option combinations reduce to one problem: solve `M x = c` for
//! every column `c` of b (left side) or every row (right side, since
//! `x A = b` is `Aᵀ xᵀ = bᵀ`), where `M` is a or aᵀ and is lower or upper
//! triangular. Every product, difference and quotient is rounded to the
//! result dtype as it is formed, so f32/f16/bf16 results are those of
//! arithmetic in that type (the order is that of the CPU lowering: the
//! solved components in increasing index order).

use tensorc_ir::{Tensor, TensorType};

use crate::InterpError;
use crate::value::{Lanes, decode_as, encode, round_to};

/// `triangular_solve a, b` with Nx's options; `ty` is the result type
/// (b's shape, the float dtype both operands are converted to).
pub(crate) fn triangular_solve(
    a: &Tensor,
    b: &Tensor,
    left_side: bool,
    lower: bool,
    transpose_a: bool,
    ty: TensorType,
) -> Result<Tensor, InterpError> {
    let d = ty.dtype;
    let bad = |what: &str| InterpError::Internal(format!("triangular_solve: {what}"));
    let (Lanes::Float(av), Lanes::Float(bv)) = (decode_as(a, d), decode_as(b, d)) else {
        return Err(bad("result dtype is not a float"));
    };
    let ra = a.shape().len();
    if ra < 2 {
        return Err(bad("a has rank below 2"));
    }
    let n = a.shape()[ra - 1];
    let batches: usize = a.shape()[..ra - 2].iter().product();
    let vector = b.shape().len() == ra - 1;
    // Right-hand sides per batch entry and where element (row r, rhs c) of
    // one batch entry of b lives.
    let m = if vector {
        1
    } else if left_side {
        b.shape()[ra - 1]
    } else {
        b.shape()[ra - 2]
    };
    let at = |r: usize, c: usize| {
        if vector {
            r
        } else if left_side {
            r * m + c
        } else {
            c * n + r
        }
    };
    // M = aᵀ when exactly one of "transpose a" and "right side" holds; M is
    // lower triangular when a's triangle stays lower after that transpose.
    let t = transpose_a != !left_side;
    let lower_m = lower != t;
    let mut x = bv.clone();
    if x.len() != batches * n * m || av.len() != batches * n * n {
        return Err(bad("operand sizes disagree with the result type"));
    }
    for bi in 0..batches {
        let (ab, xb) = (&av[bi * n * n..(bi + 1) * n * n], bi * n * m);
        let mat = |i: usize, j: usize| if t { ab[j * n + i] } else { ab[i * n + j] };
        for c in 0..m {
            for k in 0..n {
                let i = if lower_m { k } else { n - 1 - k };
                let mut acc = x[xb + at(i, c)];
                let solved: Vec<usize> = if lower_m {
                    (0..i).collect()
                } else {
                    (i + 1..n).collect()
                };
                for j in solved {
                    let p = round_to(d, mat(i, j) * x[xb + at(j, c)]);
                    acc = round_to(d, acc - p);
                }
                x[xb + at(i, c)] = round_to(d, acc / mat(i, i));
            }
        }
    }
    encode(ty, &Lanes::Float(x))
}

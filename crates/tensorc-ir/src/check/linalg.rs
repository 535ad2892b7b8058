//! Linear algebra (spec §4.7, tier 2): `triangular_solve a, b, left_side:,
//! lower:, transform_a:` as `Nx.LinAlg.triangular_solve`.
//!
//! Nx's rules: `a` is `[..., n, n]` (leading batch axes allowed), `b` has the
//! same batch axes followed by `[n]`, `[n, m]` (left side: solve `a x = b`)
//! or `[m, n]` (right side: solve `x a = b`); a vector `b` is accepted on
//! either side. Options default to `left_side: true`, `lower: true`,
//! `transform_a: :none` (`:transpose` solves with `a`'s transpose). The
//! result has `b`'s shape and the float type of the merged operand types
//! (integers → `f32`), as Nx's `to_floating(merge(a, b))`. Only the named
//! triangle of `a` (diagonal included) is ever read.

use super::{CResult, FnCx};
use crate::ast::Stmt;
use crate::graph::{Op, ValueId};
use crate::types::{TensorType, Type};

type Checked = CResult<(Op, Vec<ValueId>, Type)>;

impl FnCx<'_> {
    /// `triangular_solve a, b, left_side: true, lower: true, transform_a: :none`.
    pub(crate) fn triangular_solve(&mut self, s: &Stmt) -> Checked {
        let a = self.args(s, &["left_side", "lower", "transform_a"], 2, 2)?;
        let left = self.bool_opt(a.kw("left_side"), true);
        let lower = self.bool_opt(a.kw("lower"), true);
        let transform = self.atom_opt(a.kw("transform_a"), &["none", "transpose"], "none");
        let x = self.operand(a.pos[0]);
        let y = self.operand(a.pos[1]);
        let (left, lower, transform) = (left?, lower?, transform?);
        let (ids, merged) = self.resolve_group(&[x?, y?])?;
        let (ta, tb) = (self.tensor(ids[0]), self.tensor(ids[1]));
        let ra = ta.rank();
        if ra < 2 || ta.shape[ra - 1] != ta.shape[ra - 2] {
            return Err(self.err(
                a.pos[0].span,
                format!(
                    "'triangular_solve' needs a square matrix (or a batch of them) as a, got {ta}"
                ),
            ));
        }
        let n = ta.shape[ra - 1];
        let batch = &ta.shape[..ra - 2];
        let fits = if tb.rank() == ra - 1 {
            // A vector (per batch entry) of length n.
            tb.shape[..ra - 2] == *batch && tb.shape[ra - 2] == n
        } else if tb.rank() == ra {
            let solve_axis = if left { ra - 2 } else { ra - 1 };
            tb.shape[..ra - 2] == *batch && tb.shape[solve_axis] == n
        } else {
            false
        };
        if !fits {
            let want = if left {
                "[n] or [n, m]"
            } else {
                "[n] or [m, n]"
            };
            return Err(self.err(
                a.pos[1].span,
                format!(
                    "'triangular_solve' with a of type {ta} needs b of shape {want} (n = {n}) after a's batch axes, got {tb}"
                ),
            ));
        }
        Ok((
            Op::TriangularSolve {
                left_side: left,
                lower,
                transpose_a: transform == "transpose",
            },
            ids,
            Type::Tensor(TensorType::new(merged.to_float(), tb.shape.clone())),
        ))
    }
}

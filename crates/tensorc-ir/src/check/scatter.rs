//! `window_scatter_max` and `window_scatter_min` (spec §4.7, tier 2; Nx's
//! select-and-scatter): `op x, source, init, {window}, strides:, padding:`.
//!
//! The window options mean exactly what they mean for `window_max`, so they
//! are checked by that op's checker on a statement holding only `x`, the
//! window and those options (one source of truth for padding and window
//! shapes); the pooled shape must equal `source`'s. The result has x's shape
//! and the merge of the source and init types, as in Nx.

use super::{CResult, FnCx};
use crate::ast::{Arg, Stmt};
use crate::graph::{Op, ReduceKind, ValueId};
use crate::types::{TensorType, Type};

type Checked = CResult<(Op, Vec<ValueId>, Type)>;

impl FnCx<'_> {
    pub(crate) fn window_scatter(&mut self, s: &Stmt, max: bool) -> Checked {
        let a = self.args(s, &["strides", "padding"], 4, 4)?;
        let x = self.tensor_operand(a.pos[0]);
        let src = self.operand(a.pos[1]);
        let init = self.operand(a.pos[2]);
        let (x, src, init) = (x?, src?, init?);
        let (ids, dtype) = self.resolve_group(&[src, init])?;
        let (src, init) = (ids[0], ids[1]);
        let ti = self.tensor(init);
        if ti.rank() != 0 {
            return Err(self.err(
                a.pos[2].span,
                format!("the init value must be a scalar, got {ti}"),
            ));
        }
        // The window part, as `window_max x, {window}, strides:, padding:`.
        let mut args = vec![
            Arg::Positional(a.pos[0].clone()),
            Arg::Positional(a.pos[3].clone()),
        ];
        args.extend(
            s.args
                .iter()
                .filter(|arg| matches!(arg, Arg::Keyword(..)))
                .cloned(),
        );
        let window_stmt = Stmt { args, ..s.clone() };
        let (op, _, pooled) = self.window(
            &window_stmt,
            if max {
                ReduceKind::Max
            } else {
                ReduceKind::Min
            },
        )?;
        let Op::Window {
            window,
            strides,
            padding,
            ..
        } = op
        else {
            return Err(self.err(
                s.op.span,
                "internal error: the window checker returned another op",
            ));
        };
        let (tx, ts) = (self.tensor(x), self.tensor(src));
        let pooled_shape = pooled
            .as_tensor()
            .map(|t| t.shape.clone())
            .unwrap_or_default();
        if ts.shape != pooled_shape {
            let want = TensorType::new(ts.dtype, pooled_shape);
            return Err(self.err(
                a.pos[1].span,
                format!("the source must have the shape of the windows of {tx} ({want}), got {ts}"),
            ));
        }
        Ok((
            Op::WindowScatter {
                max,
                window,
                strides,
                padding,
            },
            vec![x, src, init],
            Type::Tensor(tx.with_dtype(dtype)),
        ))
    }
}

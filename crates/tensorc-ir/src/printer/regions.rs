//! Printing the ops that carry `fn` regions (`reduce` with a function,
//! `while`, `cond`) in canonical form.
//!
//! A region prints as `fn(params) { … return r }` with its statements one
//! level deeper than the statement that holds it (the caller indents every
//! continuation line by the statement's own indentation). Two region forms
//! print shorter, exactly as they are written: the `&Nx.add/2` shorthand (a
//! region of one synthetic binary node) and a `cond` branch given as values
//! (a region without parameters and without named statements).

use super::{operand, print_region};
use crate::check::control::SHORTHANDS;
use crate::graph::{Function, Module, Node, Op, RegionId};
use crate::types::TensorType;

/// The text between `name = ` and the type for a region-carrying op.
pub(super) fn statement(m: &Module, f: &Function, n: &Node) -> String {
    let ops: Vec<String> = n.operands.iter().map(|&v| operand(f, v)).collect();
    match &n.op {
        Op::ReduceFn { axes, keep_axes, body } => {
            let rank = n
                .operands
                .first()
                .and_then(|&v| f.node(v).ty.as_tensor())
                .map_or(0, TensorType::rank);
            let all = axes.len() == rank && axes.iter().enumerate().all(|(i, &a)| i == a);
            let axes = if all { "nil".to_string() } else { super::list(axes) };
            format!(
                "reduce {}, axes: {axes}, keep_axes: {keep_axes}, {}",
                ops.join(", "),
                region(m, f, *body)
            )
        }
        Op::While { cond, body } => {
            // One operand of exactly the state type is the state itself (a
            // tensor, or a tuple-typed name); otherwise the operands are the
            // elements of a tuple literal.
            let whole = n.operands.len() == 1 && n.operands.first().is_some_and(|&v| f.node(v).ty == n.ty);
            let init = if whole {
                ops.join(", ")
            } else {
                format!("{{{}}}", ops.join(", "))
            };
            format!("while {init}, {}, {}", region(m, f, *cond), region(m, f, *body))
        }
        Op::Cond { branches } => {
            let clauses: Vec<String> = branches
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    let pred = ops.get(i).cloned().unwrap_or_else(|| "true".to_string());
                    format!("{pred} -> {}", branch(m, f, b))
                })
                .collect();
            format!("cond {}", clauses.join(", "))
        }
        // F2 (issue 3): window_reduce, every option written out.
        Op::WindowReduce { window, strides, padding, dilations, body } => {
            let dims: Vec<String> = window.iter().map(usize::to_string).collect();
            format!(
                "window_reduce {}, {{{}}}, strides: {}, padding: {}, window_dilations: {}, {}",
                ops.join(", "),
                dims.join(", "),
                super::list(strides),
                super::pairs(padding),
                super::list(dilations),
                region(m, f, *body)
            )
        }
        other => format!("<{other:?}>"),
    }
}

/// A region as a `fn`, or as the shorthand it was written as.
fn region(m: &Module, f: &Function, id: RegionId) -> String {
    let r = f.region(id);
    if let Some(name) = shorthand(f, id) {
        return format!("&Nx.{name}/2");
    }
    let params: Vec<&str> = r.params.iter().map(|&p| f.node(p).name.as_str()).collect();
    let mut out = format!("fn({}) {{\n", params.join(", "));
    print_region(m, f, r, 1, &mut out);
    out.push('}');
    out
}

/// A `cond` branch: values when the region only returns (captured names or
/// literals), else a `fn()`.
fn branch(m: &Module, f: &Function, id: RegionId) -> String {
    let r = f.region(id);
    let plain = r.params.is_empty() && r.nodes.iter().all(|&v| f.node(v).is_synthetic());
    if !plain {
        return region(m, f, id);
    }
    let results: Vec<String> = r.results.iter().map(|&v| operand(f, v)).collect();
    if r.returns_tuple {
        format!("{{{}}}", results.join(", "))
    } else {
        results.join(", ")
    }
}

/// The shorthand name when the region is `&Nx.<name>/2`'s region.
fn shorthand(f: &Function, id: RegionId) -> Option<&'static str> {
    let r = f.region(id);
    let [a, b] = r.params[..] else { return None };
    let [p, q, node] = r.nodes[..] else { return None };
    let n = f.node(node);
    let synthetic = [a, b, node].iter().all(|&v| f.node(v).is_synthetic());
    if (p, q) != (a, b) || !synthetic || r.results != [node] || n.operands != [a, b] {
        return None;
    }
    let Op::Binary { op, .. } = n.op else { return None };
    SHORTHANDS.iter().find(|(_, o)| *o == op).map(|&(name, _)| name)
}

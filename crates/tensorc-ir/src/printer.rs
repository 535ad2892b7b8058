//! The canonical `.nxir` form of a checked module (`tensorc fmt`, the `nxir`
//! stage of `tensorc emit`).
//!
//! One statement per line, every option written out in a fixed order, the
//! inferred type after every statement, literal operands inline. The output
//! re-parses and re-checks to the same graph, which the tests verify on every
//! test program; that is what makes it a faithful dump of the graph.

use std::fmt::Write;

use crate::check::literal_text;
use crate::check::ops::{binary_name, reduce_name, unary_name};
use crate::graph::{Function, Literal, Module, Node, Op, Region, ValueId};
use crate::types::TensorType;

mod regions;

/// Print a module in canonical form.
pub fn print_module(m: &Module) -> String {
    let mut out = String::new();
    for (i, f) in m.functions.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        print_function(m, f, &mut out);
    }
    out
}

fn print_function(m: &Module, f: &Function, out: &mut String) {
    let params: Vec<String> = f.params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
    let _ = writeln!(out, "def {}({}) -> {} {{", f.name, params.join(", "), f.result);
    print_region(m, f, f.body(), 1, out);
    out.push_str("}\n");
}

fn print_region(m: &Module, f: &Function, r: &Region, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    for &id in &r.nodes {
        let n = f.node(id);
        if n.is_synthetic() || matches!(n.op, Op::Param(_)) {
            continue;
        }
        // Statements holding `fn` regions span several lines: their
        // continuation lines are indented along with the statement.
        let text = statement(m, f, n).replace('\n', &format!("\n{indent}"));
        let _ = writeln!(out, "{indent}{} = {text}  {}", n.name, n.ty);
    }
    let results: Vec<String> = r.results.iter().map(|&v| operand(f, v)).collect();
    if r.returns_tuple {
        let _ = writeln!(out, "{indent}return {{{}}}", results.join(", "));
    } else {
        let _ = writeln!(out, "{indent}return {}", results.join(", "));
    }
}

/// A value as an operand: its name, or the literal of a synthetic constant.
fn operand(f: &Function, id: ValueId) -> String {
    let n = f.node(id);
    match (&n.op, n.is_synthetic()) {
        (Op::Constant(lit), true) => literal_text(*lit),
        _ => n.name.clone(),
    }
}

fn list<T: ToString>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(T::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// The text between `name = ` and the type.
fn statement(m: &Module, f: &Function, n: &Node) -> String {
    let ops: Vec<String> = n.operands.iter().map(|&v| operand(f, v)).collect();
    let operand_type = |i: usize| -> Option<&TensorType> { n.operands.get(i).and_then(|&v| f.node(v).ty.as_tensor()) };
    let out_shape = n.ty.as_tensor().map(|t| t.shape.clone()).unwrap_or_default();
    match &n.op {
        // Params are printed in the header; kept total for robustness.
        Op::Param(i) => format!("param {i}"),
        Op::Constant(lit) => format!("constant {}", literal_text(*lit)),
        Op::Tensor(data) => {
            let mut s = String::from("tensor ");
            nested(data, &out_shape, &mut s);
            s
        }
        Op::Iota(None) => "iota nil".into(),
        Op::Iota(Some(k)) => format!("iota {k}"),
        Op::Eye => "eye".into(),
        Op::Unary(op) => format!("{} {}", unary_name(*op), ops.join(", ")),
        Op::Binary { op, .. } => format!("{} {}", binary_name(*op), ops.join(", ")),
        Op::Select { .. } => format!("select {}", ops.join(", ")),
        Op::Clip { .. } => format!("clip {}", ops.join(", ")),
        Op::AsType => format!("as_type {}", ops.join(", ")),
        Op::Bitcast => format!("bitcast {}", ops.join(", ")),
        Op::Reshape => format!("reshape {}", ops.join(", ")),
        Op::Squeeze { axes } => format!("squeeze {}, {}", ops.join(", "), list(axes)),
        Op::Broadcast { axes } => {
            let dims: Vec<String> = out_shape.iter().map(usize::to_string).collect();
            format!("broadcast {}, {{{}}}, {}", ops.join(", "), dims.join(", "), list(axes))
        }
        Op::Transpose { perm } => format!("transpose {}, {}", ops.join(", "), list(perm)),
        Op::Slice { starts, lengths, strides } => {
            format!("slice {}, {}, {}, {}", ops.join(", "), list(starts), list(lengths), list(strides))
        }
        Op::Pad { config } => {
            let cfg: Vec<String> = config.iter().map(|(l, h, i)| format!("{{{l}, {h}, {i}}}")).collect();
            format!("pad {}, [{}]", ops.join(", "), cfg.join(", "))
        }
        Op::Reverse { axes } => format!("reverse {}, {}", ops.join(", "), list(axes)),
        Op::Concatenate { axis } => format!("concatenate [{}], axis: {axis}", ops.join(", ")),
        Op::Stack { axis } => format!("stack [{}], axis: {axis}", ops.join(", ")),
        Op::Dot { contract_a, batch_a, contract_b, batch_b } => format!(
            "dot {}, {}, {}, {}, {}, {}",
            ops.first().map_or("", String::as_str),
            list(contract_a),
            list(batch_a),
            ops.get(1).map_or("", String::as_str),
            list(contract_b),
            list(batch_b)
        ),
        Op::Reduce { kind, axes, keep_axes } => {
            let rank = operand_type(0).map_or(0, TensorType::rank);
            let all = axes.len() == rank && axes.iter().enumerate().all(|(i, &a)| i == a);
            let axes = if all { "nil".to_string() } else { list(axes) };
            format!("{} {}, axes: {axes}, keep_axes: {keep_axes}", reduce_name(*kind), ops.join(", "))
        }
        Op::ArgReduce { max, axis, tie_break_high, keep_axis } => format!(
            "{} {}, axis: {}, tie_break: {}, keep_axis: {keep_axis}",
            if *max { "argmax" } else { "argmin" },
            ops.join(", "),
            axis.map_or("nil".to_string(), |a| a.to_string()),
            if *tie_break_high { ":high" } else { ":low" },
        ),
        Op::Call { function } => {
            let name = m.functions.get(*function).map_or("?", |g| g.name.as_str());
            let mut parts = vec![name.to_string()];
            parts.extend(ops);
            format!("call {}", parts.join(", "))
        }
        Op::Elem { index } => format!("elem {}, {index}", ops.join(", ")),
        // F1 (issue 3): ops with fn regions.
        Op::ReduceFn { .. } | Op::While { .. } | Op::Cond { .. } | Op::WindowReduce { .. } => {
            regions::statement(m, f, n)
        }
        Op::WindowScatter { max, window, strides, padding } => {
            let dims: Vec<String> = window.iter().map(usize::to_string).collect();
            let pads: Vec<String> = padding.iter().map(|(l, h)| format!("{{{l}, {h}}}")).collect();
            format!(
                "{} {}, {{{}}}, strides: {}, padding: [{}]",
                if *max { "window_scatter_max" } else { "window_scatter_min" },
                ops.join(", "),
                dims.join(", "),
                list(strides),
                pads.join(", ")
            )
        }
        Op::Indexed { add, axes } => {
            format!("{} {}, axes: {}", if *add { "indexed_add" } else { "indexed_put" }, ops.join(", "), list(axes))
        }
        // F3 (issue 3): scans, sorting, indexing.
        Op::Cumulative { kind, axis, reverse } => {
            format!("{} {}, axis: {axis}, reverse: {reverse}", crate::check::scan::cumulative_name(*kind), ops.join(", "))
        }
        Op::Sort { axis, descending } | Op::Argsort { axis, descending } => format!(
            "{} {}, axis: {axis}, direction: {}",
            if matches!(n.op, Op::Sort { .. }) { "sort" } else { "argsort" },
            ops.join(", "),
            if *descending { ":desc" } else { ":asc" }
        ),
        Op::TopK { k } => format!("top_k {}, k: {k}", ops.join(", ")),
        // F4 (issue 3): linear algebra.
        Op::TriangularSolve { left_side, lower, transpose_a } => format!(
            "triangular_solve {}, left_side: {left_side}, lower: {lower}, transform_a: {}",
            ops.join(", "),
            if *transpose_a { ":transpose" } else { ":none" }
        ),
        Op::Take { axis } => format!("take {}, axis: {axis}", ops.join(", ")),
        Op::TakeAlongAxis { axis } => format!("take_along_axis {}, axis: {axis}", ops.join(", ")),
        Op::Gather { axes } => format!("gather {}, axes: {}", ops.join(", "), list(axes)),
        Op::DynamicSlice { starts, lengths, strides } => format!(
            "slice {}, {}, {}, {}",
            ops.first().map_or("", String::as_str),
            crate::check::index::starts_text(starts, ops.get(1..).unwrap_or_default()),
            list(lengths),
            list(strides)
        ),
        Op::PutSlice { starts } => format!(
            "put_slice {}, {}, {}",
            ops.first().map_or("", String::as_str),
            crate::check::index::starts_text(starts, ops.get(2..).unwrap_or_default()),
            ops.get(1).map_or("", String::as_str)
        ),
        // F2 (issue 3): convolution and windows, every option written out.
        Op::Conv(c) => format!(
            "conv {}, strides: {}, padding: {}, input_dilation: {}, kernel_dilation: {}, feature_group_size: {}, batch_group_size: {}, input_permutation: {}, kernel_permutation: {}, output_permutation: {}",
            ops.join(", "),
            list(&c.strides),
            pairs(&c.padding),
            list(&c.input_dilation),
            list(&c.kernel_dilation),
            c.feature_group_size,
            c.batch_group_size,
            list(&c.input_permutation),
            list(&c.kernel_permutation),
            list(&c.output_permutation)
        ),
        Op::Window { kind, window, strides, padding, dilations } => {
            let dims: Vec<String> = window.iter().map(usize::to_string).collect();
            format!(
                "{} {}, {{{}}}, strides: {}, padding: {}, window_dilations: {}",
                crate::check::conv::window_name(*kind),
                ops.join(", "),
                dims.join(", "),
                list(strides),
                pairs(padding),
                list(dilations)
            )
        }
    }
}

/// Explicit `[{lo, hi}, …]` padding.
pub(super) fn pairs(p: &[(i64, i64)]) -> String {
    let items: Vec<String> = p.iter().map(|(l, h)| format!("{{{l}, {h}}}")).collect();
    format!("[{}]", items.join(", "))
}

/// Tensor data as nested lists following `shape` (row-major).
fn nested(data: &[Literal], shape: &[usize], out: &mut String) {
    match shape.split_first() {
        None => out.push_str(&data.first().map_or(String::new(), |l| literal_text(*l))),
        Some((&n, rest)) => {
            let inner: usize = rest.iter().product();
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                let lo = (i * inner).min(data.len());
                let hi = ((i + 1) * inner).min(data.len());
                nested(&data[lo..hi], rest, out);
            }
            out.push(']');
        }
    }
}

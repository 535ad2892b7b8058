//! Puts the host-side computation that `convert-linalg-to-parallel-loops`
//! leaves outside any parallel loop into a one-iteration `scf.parallel`, so it
//! becomes a (single-invocation) kernel too.
//!
//! A linalg op with no parallel dimension — a reduction to a scalar, a dot of
//! two vectors, anything producing a rank-0 tensor — lowers to plain
//! `scf.for`s and `memref.load`/`store`s in the function body, which the GPU
//! mapping ignores and the host schedule cannot run. Wrapping each maximal
//! run of such statements keeps them in program order and makes them
//! device code. A run whose values are used after it is left alone (the
//! schedule then reports the op as unsupported): moving it into a loop body
//! would break dominance.
//!
//! This works on the printed module (one statement per line, nested regions
//! indented), which MLIR's printer guarantees for the ops that appear here;
//! the result is re-parsed and verified, so a mistake is an MLIR error, not
//! silently wrong code.

/// Ops that stay on the host: buffers and views (the schedule handles them),
/// parallel loops (they become kernels), constants (sunk into kernels).
const HOST_OPS: &[&str] = &[
    "arith.constant",
    "memref.alloc",
    "memref.alloca",
    "memref.get_global",
    "memref.collapse_shape",
    "memref.expand_shape",
    "memref.cast",
    "memref.copy",
    "memref.dealloc",
    "memref.subview",
    "scf.parallel",
    "return",
    "func.return",
];

/// Whether a statement stays on the host. A copy between strided views
/// (into or out of a slice) cannot be a buffer copy, so it is computed.
fn is_host(first_line: &str) -> bool {
    let op = op_of(first_line);
    if op == "memref.copy" {
        return !first_line.contains("strided<");
    }
    HOST_OPS.contains(&op)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The op name of a statement's first line: `%a = memref.load ...` → `memref.load`.
fn op_of(line: &str) -> &str {
    let t = line.trim_start();
    let t = if t.starts_with('%') {
        t.split_once(" = ").map(|(_, r)| r).unwrap_or(t)
    } else {
        t
    };
    t.split([' ', '(', '<']).next().unwrap_or("")
}

/// SSA names defined by a statement's first line (`%a`, `%b:2` → `%b`).
fn defined(line: &str) -> Vec<String> {
    let t = line.trim_start();
    if !t.starts_with('%') {
        return Vec::new();
    }
    let Some((lhs, _)) = t.split_once(" = ") else {
        return Vec::new();
    };
    lhs.split(',')
        .map(|s| s.trim().split(':').next().unwrap_or("").to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn uses(text: &str, name: &str) -> bool {
    let mut rest = text;
    while let Some(i) = rest.find(name) {
        let after = rest[i + name.len()..].chars().next();
        if !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            return true;
        }
        rest = &rest[i + name.len()..];
    }
    false
}

/// Returns the rewritten module text and how many runs were wrapped.
pub(crate) fn wrap_host_compute(module: &str) -> (String, usize) {
    let lines: Vec<&str> = module.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut wrapped = 0;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        out.push(line.to_owned());
        i += 1;
        if !(line.trim_start().starts_with("func.func") && line.trim_end().ends_with('{')) {
            continue;
        }
        // The body: statements one level deeper than the `func.func` line.
        let level = indent(line) + 2;
        let mut stmts: Vec<Vec<&str>> = Vec::new();
        while i < lines.len()
            && !(indent(lines[i]) < level && lines[i].trim_start().starts_with('}'))
        {
            let first = lines[i];
            let mut stmt = vec![first];
            i += 1;
            if first.trim_end().ends_with('{') {
                // The closing brace at this level; `} else {` and `} do {`
                // continue the same statement.
                while i < lines.len()
                    && !(indent(lines[i]) == level
                        && lines[i].trim_start().starts_with('}')
                        && !lines[i].trim_end().ends_with('{'))
                {
                    stmt.push(lines[i]);
                    i += 1;
                }
                if i < lines.len() {
                    stmt.push(lines[i]);
                    i += 1;
                }
            }
            stmts.push(stmt);
        }
        // Scalars loaded on the host and used by later kernels: the load is
        // repeated inside each user instead (see `rematerializable`).
        let mut remat: Vec<(String, String)> = Vec::new();
        let loads_for = |stmt: &[&str], remat: &[(String, String)], pad: &str| -> Vec<String> {
            let text = stmt.join("\n");
            remat
                .iter()
                .filter(|(name, _)| uses(&text, name))
                .map(|(_, load)| format!("{pad}  {load}"))
                .collect()
        };
        let mut k = 0;
        while k < stmts.len() {
            if is_host(stmts[k][0]) {
                let pad = " ".repeat(level);
                let extra = loads_for(&stmts[k], &remat, &pad);
                if op_of(stmts[k][0]) == "scf.parallel" && stmts[k].len() > 2 {
                    // Parallel loops nested in a sequential (reduction) loop
                    // inside this one: the GPU mapping needs perfect nests.
                    let n = stmts[k].len();
                    out.push(innermost_first(stmts[k][0]));
                    out.extend(extra);
                    out.extend(parallel_to_for(&stmts[k][1..n - 1]));
                    out.push(stmts[k][n - 1].to_owned());
                } else if op_of(stmts[k][0]) == "scf.parallel" {
                    out.push(innermost_first(stmts[k][0]));
                    out.extend(extra);
                    out.extend(stmts[k][1..].iter().map(|s| s.to_string()));
                } else {
                    out.extend(stmts[k].iter().map(|s| s.to_string()));
                }
                k += 1;
                continue;
            }
            let start = k;
            while k < stmts.len() && !is_host(stmts[k][0]) {
                k += 1;
            }
            let mut run: Vec<Vec<&str>> = stmts[start..k].to_vec();
            let later: String = stmts[k..]
                .iter()
                .flatten()
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            let escaping: Vec<String> = run
                .iter()
                .flat_map(|s| defined(s[0]))
                .filter(|name| uses(&later, name))
                .collect();
            let pad = " ".repeat(level);
            if !escaping.is_empty() {
                let all_text = stmts
                    .iter()
                    .flatten()
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n");
                if escaping
                    .iter()
                    .all(|n| rematerializable(&run, &stmts[k..], &all_text, n))
                {
                    for name in &escaping {
                        if let Some(p) = run.iter().position(|st| defined(st[0]).contains(name)) {
                            remat.push((name.clone(), run[p][0].trim().to_owned()));
                            run.remove(p);
                        }
                    }
                } else {
                    out.extend(run.iter().flatten().map(|s| s.to_string()));
                    continue;
                }
            }
            if run.is_empty() {
                continue;
            }
            let extra = loads_for(
                &run.iter().flatten().copied().collect::<Vec<_>>(),
                &remat,
                &pad,
            );
            let (c0, c1, iv) = (
                format!("%tensorc_w{wrapped}_c0"),
                format!("%tensorc_w{wrapped}_c1"),
                format!("%tensorc_w{wrapped}_i"),
            );
            out.push(format!("{pad}{c0} = arith.constant 0 : index"));
            out.push(format!("{pad}{c1} = arith.constant 1 : index"));
            out.push(format!(
                "{pad}scf.parallel ({iv}) = ({c0}) to ({c1}) step ({c1}) {{"
            ));
            out.extend(extra);
            let body: Vec<&str> = run.iter().flatten().copied().collect();
            out.extend(parallel_to_for(&body).into_iter().map(|s| format!("  {s}")));
            out.push(format!("{pad}  scf.reduce"));
            out.push(format!("{pad}}}"));
            wrapped += 1;
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    (text, wrapped)
}

/// A value `name` defined in `run` and used after it can be loaded again
/// inside each user instead, when it is a single-line `memref.load` whose
/// buffer nothing in the function writes (so the value cannot change), and
/// every later user is a region statement (a kernel-to-be) that can hold
/// the repeated load.
fn rematerializable(run: &[Vec<&str>], later: &[Vec<&str>], all: &str, name: &str) -> bool {
    let Some(def) = run
        .iter()
        .find(|st| defined(st[0]).iter().any(|d| d == name))
    else {
        return false;
    };
    let first = def[0].trim();
    if def.len() != 1 || op_of(first) != "memref.load" {
        return false;
    }
    let Some(buffer) = first
        .split_once("memref.load ")
        .and_then(|(_, r)| r.split('[').next())
        .map(str::trim)
    else {
        return false;
    };
    let written = all.lines().any(|l| {
        let t = l.trim_start();
        (op_of(t) == "memref.store" && t.contains(&format!(", {buffer}[")))
            || (op_of(t) == "memref.copy" && t.contains(&format!(", {buffer} :")))
    });
    // The loaded operands (indices) must be visible in every user too:
    // only constant-index or rank-0 loads qualify.
    let indices = first
        .split('[')
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or("");
    let constant_indices = indices.split(',').all(|i| {
        let i = i.trim();
        i.is_empty()
            || all
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{i} = arith.constant")))
    });
    let users_ok = later
        .iter()
        .filter(|st| uses(&st.join("\n"), name))
        .all(|st| st.len() > 1 && (op_of(st[0]) == "scf.parallel" || !is_host(st[0])));
    !written && constant_indices && users_ok
}

/// Inside a wrapped run, a parallel loop can only appear nested in a
/// sequential one (a reduction dimension ordered before a parallel one);
/// the GPU mapping handles perfectly nested parallel loops only, so these
/// become `scf.for` nests (they run inside the single invocation anyway).
/// Loops with reductions (`scf.reduce` with operands) are left as they are.
fn parallel_to_for(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len());
    // Open rewritten loops: (indent of the header, number of dimensions).
    let mut open: Vec<(usize, usize)> = Vec::new();
    for &line in lines {
        let t = line.trim_start();
        let ind = indent(line);
        if let Some(&(h, dims)) = open.last() {
            if ind == h + 2 && t.starts_with("scf.reduce") && !t.starts_with("scf.reduce(") {
                continue;
            }
            if ind == h && t.starts_with('}') {
                open.pop();
                for _ in 0..dims {
                    out.push(format!("{}}}", " ".repeat(h)));
                }
                continue;
            }
        }
        if op_of(t) == "memref.copy"
            && let Some(lines) = copy_to_loops(line, out.len())
        {
            out.extend(lines);
            continue;
        }
        if let Some(fors) = parse_parallel(t) {
            let pad = " ".repeat(ind);
            open.push((ind, fors.len()));
            for (iv, lb, ub, step) in fors {
                out.push(format!("{pad}scf.for {iv} = {lb} to {ub} step {step} {{"));
            }
            continue;
        }
        out.push(line.to_owned());
    }
    out
}

/// `memref.copy %a, %b : memref<4x3xf32, ...> to memref<...>` as a loop nest
/// of loads and stores (device code has no copy op). `n` makes names unique.
fn copy_to_loops(line: &str, n: usize) -> Option<Vec<String>> {
    let t = line.trim_start();
    let rest = t.strip_prefix("memref.copy ")?;
    let (args, types) = rest.split_once(" : ")?;
    let (src, dst) = args.split_once(", ")?;
    let (src_ty, dst_ty) = types.split_once(" to ")?;
    let dst_ty = dst_ty.split(" loc(").next()?.trim();
    let shape_part = src_ty.strip_prefix("memref<")?;
    let dims: Vec<&str> = shape_part.split('x').collect();
    // All but the last piece are dimensions (static ones only).
    let dims: Vec<usize> = dims[..dims.len() - 1]
        .iter()
        .map(|d| d.parse::<usize>().ok())
        .collect::<Option<_>>()?;
    let pad = " ".repeat(indent(line));
    let mut out = Vec::new();
    let c = |k: &str| format!("%tensorc_cp{n}_{k}");
    out.push(format!("{pad}{} = arith.constant 0 : index", c("z")));
    out.push(format!("{pad}{} = arith.constant 1 : index", c("o")));
    let mut ivs = Vec::new();
    for (k, d) in dims.iter().enumerate() {
        out.push(format!(
            "{pad}{} = arith.constant {d} : index",
            c(&format!("n{k}"))
        ));
    }
    for k in 0..dims.len() {
        let iv = c(&format!("i{k}"));
        out.push(format!(
            "{pad}scf.for {iv} = {} to {} step {} {{",
            c("z"),
            c(&format!("n{k}")),
            c("o")
        ));
        ivs.push(iv);
    }
    let idx = ivs.join(", ");
    let v = c("v");
    out.push(format!(
        "{pad}{v} = memref.load {}[{idx}] : {}",
        src.trim(),
        src_ty.trim()
    ));
    out.push(format!(
        "{pad}memref.store {v}, {}[{idx}] : {dst_ty}",
        dst.trim()
    ));
    for _ in 0..dims.len() {
        out.push(format!("{pad}}}"));
    }
    Some(out)
}

/// A parallel loop header with its dimensions in reverse order, so the
/// row-major innermost dimension comes first: the tiling pass tiles the
/// first dimension, and the outermost-first mapping puts it on thread x,
/// so neighbouring invocations touch neighbouring elements. The body names
/// its induction variables, so the order does not change what it computes.
fn innermost_first(line: &str) -> String {
    let t = line.trim_start();
    match parse_parallel(t) {
        Some(dims) if dims.len() > 1 => {
            let rev: Vec<_> = dims.into_iter().rev().collect();
            let list =
                |f: &dyn Fn(&LoopDim) -> String| rev.iter().map(f).collect::<Vec<_>>().join(", ");
            let tail = &t[t.rfind(')').map_or(t.len(), |i| i + 1)..];
            format!(
                "{}scf.parallel ({}) = ({}) to ({}) step ({}){tail}",
                " ".repeat(indent(line)),
                list(&|d| d.0.clone()),
                list(&|d| d.1.clone()),
                list(&|d| d.2.clone()),
                list(&|d| d.3.clone()),
            )
        }
        _ => line.to_owned(),
    }
}

/// One dimension of a parallel loop: induction variable, lower bound, upper bound, step.
type LoopDim = (String, String, String, String);

/// `scf.parallel (%i, %j) = (%a, %b) to (%c, %d) step (%e, %f) {` → the per-dimension parts.
fn parse_parallel(t: &str) -> Option<Vec<LoopDim>> {
    let rest = t.strip_prefix("scf.parallel (")?;
    if !t.trim_end().ends_with('{') || t.contains(" init") {
        return None;
    }
    let (ivs, rest) = rest.split_once(") = (")?;
    let (lbs, rest) = rest.split_once(") to (")?;
    let (ubs, rest) = rest.split_once(") step (")?;
    let (steps, _) = rest.split_once(')')?;
    let list = |s: &str| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .collect::<Vec<_>>()
    };
    let (ivs, lbs, ubs, steps) = (list(ivs), list(lbs), list(ubs), list(steps));
    if lbs.len() != ivs.len() || ubs.len() != ivs.len() || steps.len() != ivs.len() {
        return None;
    }
    Some(
        (0..ivs.len())
            .map(|k| {
                (
                    ivs[k].clone(),
                    lbs[k].clone(),
                    ubs[k].clone(),
                    steps[k].clone(),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_a_scalar_reduction_and_leaves_buffers_alone() {
        let m = "module {\n  func.func @f(%arg0: memref<4xf32>, %arg1: memref<f32>) {\n    %c0 = arith.constant 0 : index\n    %cst = arith.constant 0.0 : f32\n    memref.store %cst, %arg1[] : memref<f32>\n    scf.for %i = %c0 to %c0 step %c0 {\n      %0 = memref.load %arg0[%i] : memref<4xf32>\n    }\n    return\n  }\n}\n";
        let (t, n) = wrap_host_compute(m);
        assert_eq!(n, 1);
        let par = t.find("scf.parallel").unwrap();
        assert!(t.find("memref.store").unwrap() > par);
        assert!(t.find("scf.for").unwrap() > par);
        assert!(t.find("%cst = arith.constant").unwrap() < par);
        assert!(t.find("    return").unwrap() > t.find("scf.reduce").unwrap());
    }

    #[test]
    fn a_scalar_load_used_by_a_kernel_moves_into_it() {
        let m = "module {\n  func.func @f(%arg0: memref<f32>, %arg1: memref<4xf32>) {\n    %0 = memref.load %arg0[] : memref<f32>\n    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {\n      memref.store %0, %arg1[%i] : memref<4xf32>\n      scf.reduce\n    }\n    return\n  }\n}\n";
        let (t, n) = wrap_host_compute(m);
        assert_eq!(n, 0);
        let par = t.find("scf.parallel").unwrap();
        assert!(t.find("%0 = memref.load %arg0[]").unwrap() > par, "{t}");
        assert_eq!(t.matches("memref.load").count(), 1, "{t}");
    }

    #[test]
    fn leaves_a_load_whose_buffer_is_written() {
        let m = "module {\n  func.func @f(%arg0: memref<f32>, %arg1: memref<4xf32>) {\n    %0 = memref.load %arg0[] : memref<f32>\n    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {\n      memref.store %0, %arg1[%i] : memref<4xf32>\n      memref.store %0, %arg0[] : memref<f32>\n      scf.reduce\n    }\n    return\n  }\n}\n";
        let (t, n) = wrap_host_compute(m);
        assert_eq!(n, 0);
        assert_eq!(t, m);
    }

    #[test]
    fn a_parallel_loop_inside_a_sequential_one_becomes_fors() {
        let body = [
            "    scf.for %k = %c0 to %c3 step %c1 {",
            "      scf.parallel (%i, %j) = (%c0, %c0) to (%c4, %c2) step (%c1, %c1) {",
            "        memref.store %x, %m[%i, %j] : memref<4x2xf32>",
            "        scf.reduce  loc(#loc9)",
            "      } loc(#loc9)",
            "    }",
        ];
        let got = parallel_to_for(&body);
        assert_eq!(
            got,
            [
                "    scf.for %k = %c0 to %c3 step %c1 {",
                "      scf.for %i = %c0 to %c4 step %c1 {",
                "      scf.for %j = %c0 to %c2 step %c1 {",
                "        memref.store %x, %m[%i, %j] : memref<4x2xf32>",
                "      }",
                "      }",
                "    }",
            ]
        );
    }

    #[test]
    fn parallel_headers_put_the_innermost_dimension_first() {
        assert_eq!(
            innermost_first(
                "    scf.parallel (%a, %b) = (%c0, %c1) to (%c4, %c8) step (%c1, %c2) {"
            ),
            "    scf.parallel (%b, %a) = (%c1, %c0) to (%c8, %c4) step (%c2, %c1) {"
        );
    }
}

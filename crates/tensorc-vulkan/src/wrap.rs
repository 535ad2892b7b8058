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
//! A scalar the host would compute and hand to later kernels (a loaded
//! value, arithmetic on it, a dynamic slice's clamped start and its
//! `memref.subview`) is instead "floated": its one-line definitions are
//! repeated at the start of each kernel that uses it. That is exact because
//! consecutive schedule steps are separated by full barriers, and a load
//! floats only when nothing writes the loaded memory (or any view of it)
//! from where the repeated load would run up to the last kernel using it,
//! that kernel included.
//!
//! `cond` and `while` (`scf.if` yielding buffers, `scf.while` carrying no
//! values) stay on the host: their regions are rewritten like a function
//! body, and the two statements computing each condition (`memref.load` of
//! the predicate buffer and `arith.cmpi ne` against zero) stay on the host
//! too, where the schedule turns them into `If`/`While` steps.
//!
//! This works on the printed module (one statement per line, nested regions
//! indented), which MLIR's printer guarantees for the ops that appear here;
//! the result is re-parsed and verified, so a mistake is an MLIR error, not
//! silently wrong code.

mod split_reduction;

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
    "scf.yield",
    "scf.condition",
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

/// Characters that continue an SSA name (MLIR's suffix-id: letters,
/// digits and `$._-`, as in `%c-1_i8`).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.' | '-')
}

fn uses(text: &str, name: &str) -> bool {
    let mut rest = text;
    while let Some(i) = rest.find(name) {
        let after = rest[i + name.len()..].chars().next();
        if !after.is_some_and(name_char) {
            return true;
        }
        rest = &rest[i + name.len()..];
    }
    false
}

/// Returns the rewritten module text and how many rewrites it made (runs
/// wrapped, floated definitions, split launches, host control statements);
/// with none, the caller keeps its module (the text differs at most in the
/// order of parallel loop headers).
///
/// `limits` decide which launches are too big: more than
/// `max_groups[d]` workgroups in the second or third dimension, or more
/// than `max_groups[0]` tiles of `max_invocations` in the first (the
/// in-process compile grows its tiles up to that; artifacts use the
/// spec minimums).
pub(crate) fn wrap_host_compute(module: &str, limits: &crate::Limits) -> (String, usize) {
    let (module, predicates) = host_predicates(module);
    let lines: Vec<&str> = module.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut wrapped = 0;
    let mut rewrites = 0;
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
        let start = i;
        while i < lines.len()
            && !(indent(lines[i]) < level && lines[i].trim_start().starts_with('}'))
        {
            i += 1;
        }
        let body = &lines[start..i];
        let func = Function {
            text: body.join("\n"),
            args: func_args(line),
            max_rows: [
                u64::from(limits.max_groups[0]) * u64::from(limits.max_invocations.max(1)),
                u64::from(limits.max_groups[1]),
                u64::from(limits.max_groups[2]),
            ],
        };
        let stmts = statements(body, level);
        process_block(
            &func,
            &stmts,
            level,
            &[],
            &mut out,
            &mut wrapped,
            &mut rewrites,
        );
    }
    let mut text = out.join("\n");
    text.push('\n');
    (text, wrapped + rewrites + predicates)
}

/// Gives every host control condition the form the schedule reads — a
/// scalar buffer loaded right before the control op and compared `!= 0`
/// (`memref.load %p[]`, `arith.cmpi ne, %v, %zero`) — where it has another:
/// - a condition computed in the same region by some other one-line op (a
///   float compare, an `i1` from arithmetic): a kernel stores it, widened
///   to `i8`, into a new one-byte buffer (allocated at the start of the
///   region), which the host then loads;
/// - a condition of that form computed in an enclosing region (several
///   `cond` clauses testing one predicate): the load and compare are
///   repeated locally, when nothing in between writes the buffer.
///
/// Returns the new text and how many conditions it rewrote.
fn host_predicates(module: &str) -> (String, usize) {
    let mut lines: Vec<String> = module.lines().map(str::to_owned).collect();
    let mut count = 0;
    let mut k = 0;
    while k < lines.len() {
        let t = lines[k].trim_start();
        let cond = if let Some(r) = t.strip_prefix("scf.condition(") {
            r.split(')').next().map(str::to_owned)
        } else if op_of(t) == "scf.if" && is_control(&[t]) {
            if_condition(t)
        } else {
            None
        };
        let Some(cond) = cond.filter(|_| host_level(&lines, k)) else {
            k += 1;
            continue;
        };
        let ind = indent(&lines[k]);
        // The definition, searching back through this region and the
        // enclosing ones (lines of lower indent that open them).
        let mut floor = ind;
        let mut def = None;
        for j in (0..k).rev() {
            let l = &lines[j];
            let li = indent(l);
            if li < floor && l.trim_end().ends_with('{') {
                floor = li;
                if l.trim_start().starts_with("func.func") {
                    break;
                }
            }
            if li == floor && defined(l).contains(&cond) {
                def = Some(j);
                break;
            }
        }
        let Some(d) = def else {
            k += 1;
            continue;
        };
        let pad = " ".repeat(ind);
        let name = |what: &str| format!("%tensorc_pb{k}_{what}");
        let def_line = lines[d].trim_start().to_owned();
        let same_region = indent(&lines[d]) == ind;
        let chain = pinned_chain(&lines, d, &def_line);
        let rename = |lines: &mut Vec<String>, k: usize, new: &str| {
            lines[k] = replace_name(&lines[k], &cond, new);
        };
        match (same_region, chain) {
            (true, Some(_)) => {}
            (false, Some((load, buffer, zero, ty))) => {
                // Repeat the load and compare here, if the buffer is not
                // written between the original load and this point.
                let lines_between: Vec<&str> =
                    lines[load + 1..k].iter().map(String::as_str).collect();
                let func = Function {
                    text: lines.join("\n"),
                    args: Vec::new(),
                    max_rows: [u64::MAX; 3],
                };
                if !writes(&lines_between, &alias_set(&func, &buffer)) {
                    rename(&mut lines, k, &name("c"));
                    let new = [
                        format!("{pad}{} = memref.load {buffer}[] : memref<{ty}>", name("l")),
                        format!(
                            "{pad}{} = arith.cmpi ne, {}, {zero} : {ty}",
                            name("c"),
                            name("l")
                        ),
                    ];
                    lines.splice(k..k, new);
                    k += 2;
                    count += 1;
                }
            }
            (true, None) if floatable(op_of(&def_line)) && def_line_type_is_i1(&def_line) => {
                // Stored by a kernel into a new byte, read on the host.
                let start = (0..d)
                    .rev()
                    .find(|&j| indent(&lines[j]) < ind && lines[j].trim_end().ends_with('{'))
                    .unwrap_or(0);
                let buf = name("buf");
                rename(&mut lines, k, &name("c"));
                let host = [
                    format!("{pad}{} = arith.constant 0 : i8", name("z")),
                    format!("{pad}{} = memref.load {buf}[] : memref<i8>", name("l")),
                    format!(
                        "{pad}{} = arith.cmpi ne, {}, {} : i8",
                        name("c"),
                        name("l"),
                        name("z")
                    ),
                ];
                lines.splice(k..k, host);
                let store = [
                    format!("{pad}{} = arith.extui {cond} : i1 to i8", name("e")),
                    format!("{pad}memref.store {}, {buf}[] : memref<i8>", name("e")),
                ];
                lines.splice(d + 1..d + 1, store);
                lines.insert(
                    start + 1,
                    format!("{pad}{buf} = memref.alloc() : memref<i8>"),
                );
                k += 3 + 2 + 1;
                count += 1;
            }
            _ => {}
        }
        k += 1;
    }
    let mut text = lines.join("\n");
    text.push('\n');
    (text, count)
}

/// Whether line `k` is host code: every region around it belongs to the
/// function or to a host-side `cond`/`while` (not to a kernel-to-be loop,
/// whose own `scf.if`s are device code).
fn host_level(lines: &[String], k: usize) -> bool {
    let mut floor = indent(&lines[k]);
    for j in (0..k).rev() {
        let l = &lines[j];
        if indent(l) >= floor || !l.trim_end().ends_with('{') {
            continue;
        }
        floor = indent(l);
        let t = l.trim_start();
        if t.starts_with("func.func") {
            return true;
        }
        let host = t.starts_with("} else {")
            || t.starts_with("} do {")
            || t.starts_with("scf.while : () -> () {")
            || (op_of(t) == "scf.if" && is_control(&[t]));
        if !host {
            return false;
        }
    }
    false
}

/// Whether a one-line definition produces an `i1` (compares always do;
/// others say so in their trailing type).
fn def_line_type_is_i1(line: &str) -> bool {
    let op = op_of(line);
    if op == "arith.cmpi" || op == "arith.cmpf" {
        return true;
    }
    line.split(" loc(")
        .next()
        .is_some_and(|l| l.trim_end().ends_with(": i1") || l.trim_end().ends_with("memref<i1>"))
}

/// For `%c = arith.cmpi ne, %v, %z : T` at line `d` whose `%v` is
/// `memref.load %b[] : memref<T>` in the same region: (the load's line,
/// `%b`, `%z`, `T`).
fn pinned_chain(
    lines: &[String],
    d: usize,
    def_line: &str,
) -> Option<(usize, String, String, String)> {
    let rest = def_line.split_once("arith.cmpi ne, ")?.1;
    let (v, rest) = rest.split_once(", ")?;
    let (z, ty) = rest.split_once(" : ")?;
    let ty = ty.split(" loc(").next()?.trim().to_owned();
    let ind = indent(&lines[d]);
    let load = (0..d)
        .rev()
        .find(|&j| indent(&lines[j]) == ind && defined(&lines[j]).iter().any(|x| x == v.trim()))?;
    let l = lines[load].trim_start();
    if op_of(l) != "memref.load" || !l.contains("[] :") {
        return None;
    }
    let buffer = l
        .split_once("memref.load ")?
        .1
        .split("[] :")
        .next()?
        .trim()
        .to_owned();
    Some((load, buffer, z.trim().to_owned(), ty))
}

/// What the analysis needs to know about the whole function.
struct Function {
    /// Every line of the body.
    text: String,
    /// The argument names (all buffers in the frontend's ABI).
    args: Vec<String>,
    /// Per launch dimension, the most rows one launch may have before
    /// `split_big_launch` gives invocations several rows.
    max_rows: [u64; 3],
}

/// `func.func @f(%arg0: memref<..> loc(..), %arg1: ...)` → `%arg0`, `%arg1`.
fn func_args(line: &str) -> Vec<String> {
    line.split(['(', ' '])
        .filter(|t| t.starts_with("%arg") && t.ends_with(':'))
        .map(|t| t.trim_end_matches(':').to_owned())
        .collect()
}

/// Splits a region's lines into statements at `level`: a statement is its
/// first line plus, when that opens a region, every line up to the brace
/// that closes it (`} else {` and `} do {` continue the same statement).
fn statements<'a>(lines: &[&'a str], level: usize) -> Vec<Vec<&'a str>> {
    let mut stmts: Vec<Vec<&str>> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i];
        let mut stmt = vec![first];
        i += 1;
        if first.trim_end().ends_with('{') {
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
    stmts
}

/// A scalar (or view) computed on the host and used by kernels, which is
/// instead computed again inside each kernel that uses it: its name and
/// its single-line definition.
#[derive(Clone, Debug)]
struct Float {
    name: String,
    def: String,
}

/// Ops whose single-line statements may be repeated inside kernels: they
/// only compute from their operands (a load also reads memory, which
/// `stable` checks).
fn floatable(op: &str) -> bool {
    (op.starts_with("arith.") && op != "arith.constant")
        || op == "memref.load"
        || op == "memref.subview"
}

/// Ops that define buffers (or views of them), which kernels may capture.
const BUFFER_OPS: &[&str] = &[
    "memref.alloc",
    "memref.alloca",
    "memref.get_global",
    "memref.subview",
    "memref.collapse_shape",
    "memref.expand_shape",
    "memref.cast",
];

/// The `%names` a text mentions.
fn names_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let s = i;
            i += 1;
            while i < b.len() && name_char(b[i] as char) {
                i += 1;
            }
            if i > s + 1 {
                out.push(text[s..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The line that defines `name` anywhere in the function, if any.
fn def_line<'a>(func: &'a Function, name: &str) -> Option<&'a str> {
    func.text
        .lines()
        .find(|l| defined(l).iter().any(|d| d == name))
}

/// Names that alias `name`'s memory: it and everything connected to it by
/// view ops anywhere in the function (by name, so conservatively).
fn alias_set(func: &Function, name: &str) -> Vec<String> {
    let mut set = vec![name.to_owned()];
    let views: Vec<(String, String)> = func
        .text
        .lines()
        .filter(|l| {
            matches!(
                op_of(l),
                "memref.subview"
                    | "memref.collapse_shape"
                    | "memref.expand_shape"
                    | "memref.cast"
                    | "memref.reinterpret_cast"
                    | "memref.view"
            )
        })
        .filter_map(|l| {
            let d = defined(l).into_iter().next()?;
            let src = l.split_once(" = ")?.1.split_whitespace().nth(1)?;
            let src = src.split(['[', ',', ' ']).next()?.to_owned();
            Some((d, src))
        })
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for (d, s) in &views {
            let (hd, hs) = (set.contains(d), set.contains(s));
            if hd != hs {
                set.push(if hd { s.clone() } else { d.clone() });
                changed = true;
            }
        }
    }
    set
}

/// Whether a statement may write the memory of any of `names`.
fn writes(stmt: &[&str], names: &[String]) -> bool {
    stmt.iter().any(|l| {
        let t = l.trim_start();
        let op = op_of(t);
        let target = match op {
            "memref.store" => t.split(", ").nth(1).and_then(|r| r.split('[').next()),
            "memref.copy" => t
                .strip_prefix("memref.copy ")
                .and_then(|r| r.split(" : ").next())
                .and_then(|r| r.split(", ").nth(1)),
            o if o.starts_with("memref.atomic") || o.starts_with("memref.generic_atomic") => {
                return true;
            }
            _ => return false,
        };
        target.is_some_and(|n| names.iter().any(|x| x == n.trim()))
    })
}

/// The condition of a host control statement: `scf.if %c ...` → `%c`;
/// for a region ending in `scf.condition(%c)`, that.
fn if_condition(first: &str) -> Option<String> {
    let t = first.trim_start();
    let t = t.split_once(" = ").map_or(t, |(_, r)| r);
    let rest = t.strip_prefix("scf.if ")?;
    Some(rest.split([' ', ',']).next()?.to_owned())
}

/// Whether a statement is `cond` or `while` that the schedule runs on the
/// host: its regions are processed like the function body. A `scf.if`
/// qualifies when it yields only buffers, a `scf.while` when it carries no
/// values (the frontend keeps loop state in buffers).
fn is_control(stmt: &[&str]) -> bool {
    let t = stmt[0].trim_start();
    let op = op_of(t);
    if op == "scf.while" {
        return t.starts_with("scf.while : () -> () {");
    }
    if op == "scf.if" {
        return match t.split_once(" -> ") {
            None => true,
            Some((_, types)) => types
                .trim_start_matches('(')
                .split(", ")
                .all(|ty| ty.trim_start().starts_with("memref<")),
        };
    }
    false
}

/// The statements (indices) that compute a control condition `cond` and
/// stay on the host for the schedule to read: `%v = memref.load %b[]` and
/// `%c = arith.cmpi ne, %v, %zero`.
fn predicate_chain(stmts: &[Vec<&str>], cond: &str) -> Option<[usize; 2]> {
    let find = |name: &str| {
        stmts
            .iter()
            .position(|s| s.len() == 1 && defined(s[0]).iter().any(|d| d == name))
    };
    let c = find(cond)?;
    let cmp = stmts[c][0].trim_start();
    let rest = cmp.split_once("arith.cmpi ne, ")?.1;
    let v = rest.split(',').next()?.trim();
    let l = find(v)?;
    let load = stmts[l][0];
    (op_of(load) == "memref.load" && load.contains("[] :")).then_some([l, c])
}

/// Rewrites the statements of one region (the function body, or a region of
/// a host-side `cond`/`while`), appending to `out`. `inherited` are the
/// floats of enclosing regions, available to this region's kernels.
fn process_block(
    func: &Function,
    stmts: &[Vec<&str>],
    level: usize,
    inherited: &[Float],
    out: &mut Vec<String>,
    wrapped: &mut usize,
    rewrites: &mut usize,
) {
    let n = stmts.len();
    // Control statements and the statements computing their conditions.
    let mut control = vec![false; n];
    let mut pinned = vec![false; n];
    for (k, st) in stmts.iter().enumerate() {
        let t = st[0].trim_start();
        let cond = if t.starts_with("scf.condition(") {
            t.strip_prefix("scf.condition(")
                .and_then(|r| r.split(')').next())
                .map(str::to_owned)
        } else if is_control(st) && op_of(t) == "scf.if" {
            if_condition(t)
        } else {
            None
        };
        if let Some(chain) = cond.and_then(|c| predicate_chain(&stmts[..k], &c)) {
            for c in chain {
                pinned[c] = true;
            }
            if op_of(t) == "scf.if" {
                control[k] = true;
            }
        }
        if op_of(t) == "scf.while" && is_control(st) {
            // Its condition is checked inside its first region.
            let region = while_regions(st, level).0;
            let inner = statements(&region, level + 2);
            control[k] = inner.last().is_some_and(|last| {
                let t = last[0].trim_start();
                t.strip_prefix("scf.condition(")
                    .and_then(|r| r.split(')').next())
                    .and_then(|c| predicate_chain(&inner, c))
                    .is_some()
            });
        }
    }
    let host = |k: usize| control[k] || pinned[k] || is_host(stmts[k][0]);
    // Runs: maximal sequences of statements that become one kernel.
    let mut run_start = vec![0; n];
    for k in 0..n {
        run_start[k] = if k > 0 && !host(k) && !host(k - 1) {
            run_start[k - 1]
        } else {
            k
        };
    }
    // Candidates for floating, pruned to a fixpoint.
    let mut float: Vec<bool> = (0..n)
        .map(|k| {
            stmts[k].len() == 1
                && !pinned[k]
                && floatable(op_of(stmts[k][0]))
                && !defined(stmts[k][0]).is_empty()
        })
        .collect();
    let defs: Vec<Vec<String>> = stmts.iter().map(|s| defined(s[0])).collect();
    let is_kernel =
        |k: usize| !pinned[k] && (op_of(stmts[k][0]) == "scf.parallel" || !is_host(stmts[k][0]));
    let mut changed = true;
    while changed {
        changed = false;
        for k in 0..n {
            if !float[k] {
                continue;
            }
            let ok = float_ok(
                func, stmts, k, &defs, &float, &control, &run_start, inherited, &is_kernel,
            );
            if !ok {
                float[k] = false;
                changed = true;
            }
        }
    }
    let mut floats: Vec<Float> = inherited.to_vec();
    for k in (0..n).filter(|&k| float[k]) {
        for name in &defs[k] {
            floats.push(Float {
                name: name.clone(),
                def: stmts[k][0].trim().to_owned(),
            });
        }
    }
    let pad = " ".repeat(level);
    let mut k = 0;
    while k < n {
        if float[k] {
            k += 1;
            continue;
        }
        if control[k] {
            *rewrites += 1;
            emit_control(func, &stmts[k], level, &floats, out, wrapped, rewrites);
            k += 1;
            continue;
        }
        if host(k) {
            let extra = floats_for(&stmts[k], &floats, &pad);
            *rewrites += extra.len();
            if op_of(stmts[k][0]) == "scf.parallel" {
                // A long reduction along rows: two parallel stages.
                let split = extra
                    .is_empty()
                    .then(|| split_reduction::rows(func, &stmts[k], out.len()))
                    .flatten();
                if let Some(split) = split {
                    *rewrites += 1;
                    out.extend(split);
                    k += 1;
                    continue;
                }
                let mut kernel = vec![innermost_first(stmts[k][0])];
                kernel.extend(extra);
                let m = stmts[k].len();
                if m > 2 {
                    // Parallel loops nested in a sequential (reduction) loop
                    // inside this one: the GPU mapping needs perfect nests.
                    let body = parallel_to_for(&stmts[k][1..m - 1]);
                    if body.iter().zip(&stmts[k][1..m - 1]).any(|(a, b)| a != b)
                        || body.len() != m - 2
                    {
                        // A nested parallel loop became a `for`: the
                        // caller must take the new text.
                        *rewrites += 1;
                    }
                    kernel.extend(body);
                    kernel.push(stmts[k][m - 1].to_owned());
                } else {
                    kernel.extend(stmts[k][1..].iter().map(|s| s.to_string()));
                }
                let tag = out.len();
                let kernel = guard_zero_trip(kernel, tag);
                match split_big_launch(func, &kernel, tag) {
                    Some(split) => {
                        *rewrites += 1;
                        out.extend(split);
                    }
                    None => out.extend(kernel),
                }
            } else {
                // A host statement (the load of a predicate) that uses a
                // floated value gets its definitions right before it.
                let host_pad = " ".repeat(level.saturating_sub(2));
                let extra = floats_for(&stmts[k], &floats, &host_pad);
                out.extend(host_copies(extra, &stmts[k], out.len()));
            }
            k += 1;
            continue;
        }
        let start = k;
        while k < n && !host(k) {
            k += 1;
        }
        let run: Vec<Vec<&str>> = (start..k)
            .filter(|&j| !float[j])
            .map(|j| stmts[j].clone())
            .collect();
        if run.is_empty() {
            continue;
        }
        let later: String = stmts[k..]
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        let escaping = run
            .iter()
            .flat_map(|s| defined(s[0]))
            .any(|name| uses(&later, &name));
        if escaping {
            // Used after the run by something that cannot repeat it: left
            // on the host, where the schedule reports the op (with the
            // floats it uses defined before it, so the text stays valid).
            let flat: Vec<&str> = run.iter().flatten().copied().collect();
            let host_pad = " ".repeat(level.saturating_sub(2));
            let extra = floats_for(&flat, &floats, &host_pad);
            *rewrites += extra.len();
            out.extend(host_copies(extra, &flat, out.len()));
            continue;
        }
        // A long reduction in the run becomes two parallel stages
        // (`split_reduction`); the statements around it stay one kernel each.
        let mut rest: &[Vec<&str>] = &run;
        while let Some(split) = split_reduction::find(func, rest, &pad, *wrapped) {
            let pair: Vec<&str> = rest[split.start..split.start + 2]
                .iter()
                .flatten()
                .copied()
                .collect();
            if !floats_for(&pair, &floats, &pad).is_empty() {
                break;
            }
            if split.start > 0 {
                let flat: Vec<&str> = rest[..split.start].iter().flatten().copied().collect();
                wrap_single(&flat, &floats, &pad, out, wrapped, rewrites);
            }
            out.extend(split.lines);
            *wrapped += 1;
            rest = &rest[split.start + 2..];
        }
        if !rest.is_empty() {
            let flat: Vec<&str> = rest.iter().flatten().copied().collect();
            wrap_single(&flat, &floats, &pad, out, wrapped, rewrites);
        }
    }
}

/// Wraps `flat` (statements of one run) into a one-iteration `scf.parallel`,
/// with the floated definitions it uses repeated inside.
fn wrap_single(
    flat: &[&str],
    floats: &[Float],
    pad: &str,
    out: &mut Vec<String>,
    wrapped: &mut usize,
    rewrites: &mut usize,
) {
    let extra = floats_for(flat, floats, pad);
    *rewrites += extra.len();
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
    let body = guard_zero_trip(parallel_to_for(flat), out.len());
    out.extend(body.into_iter().map(|s| format!("  {s}")));
    out.push(format!("{pad}  scf.reduce"));
    out.push(format!("{pad}}}"));
    *wrapped += 1;
}

/// Whether statement `k` can be floated into the kernels that use it:
/// its operands are available inside kernels (constants, buffers, other
/// floats), every user is a kernel, a float or a host control statement
/// whose own uses are in kernels, and — for a load — nothing writes the
/// loaded memory from where the repeated load would run to the last user.
#[allow(clippy::too_many_arguments)]
fn float_ok(
    func: &Function,
    stmts: &[Vec<&str>],
    k: usize,
    defs: &[Vec<String>],
    float: &[bool],
    control: &[bool],
    run_start: &[usize],
    inherited: &[Float],
    is_kernel: &dyn Fn(usize) -> bool,
) -> bool {
    let line = stmts[k][0];
    let rhs = line.split_once(" = ").map_or(line, |(_, r)| r);
    // Operands (the part before the type).
    let operands = rhs.split(" : ").next().unwrap_or(rhs);
    for name in names_in(operands) {
        let here = (0..stmts.len()).find(|&j| defs[j].contains(&name));
        let ok = match here {
            Some(j) if j < k && float[j] => true,
            Some(j) if j < k => {
                let op = op_of(stmts[j][0]);
                op == "arith.constant" || BUFFER_OPS.contains(&op) || control[j]
            }
            Some(_) => false,
            None => {
                inherited.iter().any(|f| f.name == name)
                    || func.args.contains(&name)
                    || def_line(func, &name).is_some_and(|l| {
                        op_of(l) == "arith.constant" || BUFFER_OPS.contains(&op_of(l))
                    })
            }
        };
        if !ok {
            return false;
        }
    }
    // Users: the statements after it that mention what it defines.
    let users: Vec<usize> = (k + 1..stmts.len())
        .filter(|&j| defs[k].iter().any(|d| uses(&stmts[j].join("\n"), d)))
        .collect();
    for &j in &users {
        let ok = if float[j] {
            true
        } else if control[j] {
            // Every line of the control statement that uses it must be
            // kernel code (not a host op of a nested region).
            stmts[j][1..].iter().all(|l| {
                !defs[k].iter().any(|d| uses(l, d))
                    || !is_host(l) && !l.trim_start().starts_with("scf.condition")
            }) && !defs[k].iter().any(|d| uses(stmts[j][0], d))
        } else {
            is_kernel(j)
        };
        if !ok {
            return false;
        }
    }
    if op_of(line) == "memref.load" {
        let Some(buffer) = rhs
            .strip_prefix("memref.load ")
            .and_then(|r| r.split('[').next())
            .map(str::trim)
        else {
            return false;
        };
        // The kernels that end up using it: users that are not floats, and
        // the users of floats that use it (transitively).
        let mut finals = Vec::new();
        let mut todo = users.clone();
        while let Some(j) = todo.pop() {
            if float[j] {
                todo.extend(
                    (j + 1..stmts.len())
                        .filter(|&u| defs[j].iter().any(|d| uses(&stmts[u].join("\n"), d))),
                );
            } else {
                finals.push(j);
            }
        }
        let Some(&last) = finals.iter().max() else {
            return true;
        };
        let first_start = finals.iter().map(|&j| run_start[j]).min().unwrap_or(k + 1);
        let lo = first_start.min(k + 1);
        let aliases = alias_set(func, buffer);
        if (lo..=last).any(|j| writes(&stmts[j], &aliases)) {
            return false;
        }
    }
    true
}

/// `lines` preceded by `defs` (float definitions repeated on the host), each
/// defined name given a suffix unique to this place (`tag`): a kernel nested
/// further down the same region may repeat the same definition under its
/// own name, and MLIR rejects a name defined again inside its scope.
fn host_copies(defs: Vec<String>, lines: &[&str], tag: usize) -> Vec<String> {
    let names: Vec<String> = defs.iter().flat_map(|d| defined(d)).collect();
    let rename = |line: &str| {
        names
            .iter()
            .fold(line.to_owned(), |l, n| {
                // `%tensorc_h<tag>_<name>`: a suffix would make `%0` into
                // `%0_h6`, which is no SSA name (numeric names are digits only).
                replace_name(&l, n, &format!("%tensorc_h{tag}_{}", n.trim_start_matches('%')))
            })
    };
    defs.iter()
        .map(|d| rename(d))
        .chain(lines.iter().map(|l| rename(l)))
        .collect()
}

/// The float definitions a kernel's lines use (transitively, in order),
/// indented into its body.
fn floats_for(lines: &[&str], floats: &[Float], pad: &str) -> Vec<String> {
    let text = lines.join("\n");
    let mut need = vec![false; floats.len()];
    for (i, f) in floats.iter().enumerate() {
        need[i] = uses(&text, &f.name);
    }
    // Operands of needed floats are needed too (defined earlier).
    for i in (0..floats.len()).rev() {
        if need[i] {
            let ops: Vec<String> = names_in(&floats[i].def)
                .into_iter()
                .filter(|n| *n != floats[i].name)
                .collect();
            for (j, f) in floats[..i].iter().enumerate() {
                if ops.contains(&f.name) {
                    need[j] = true;
                }
            }
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    floats
        .iter()
        .zip(&need)
        .filter(|(_, n)| **n)
        .filter(|(f, _)| {
            // A multi-result op is one float per result: emit it once.
            let new = !seen.contains(&f.def.as_str());
            seen.push(&f.def);
            new
        })
        .map(|(f, _)| format!("{pad}  {}", f.def))
        .collect()
}

/// `%name = arith.constant N : index` anywhere in the function → N.
fn index_constant(func: &Function, name: &str) -> Option<u64> {
    let l = def_line(func, name)?;
    let rest = l.split_once("arith.constant ")?.1;
    let (v, ty) = rest.split_once(" : ")?;
    if !ty.trim_start().starts_with("index") {
        return None;
    }
    v.trim().parse().ok()
}

/// A kernel (`scf.parallel` lines: header, body, `scf.reduce`, closing
/// brace) with a dimension needing more workgroups than the device allows
/// (`Function::max_rows`: one workgroup per row in the second and third
/// dimensions, tiles of up to `max_invocations` rows in the first) —
/// rewritten so each invocation handles several rows: the dimension's
/// parallel extent becomes `P = ceil(N / R)` and the body runs for
/// `i = o + j * P`, `j < R`, when `i < N` (neighbouring invocations still
/// touch neighbouring elements). `None` when nothing needs splitting or the
/// loop is not of the simple form (bounds 0 and N constant, step 1, no
/// reduction), which the schedule then reports.
fn split_big_launch(func: &Function, kernel: &[String], tag: usize) -> Option<Vec<String>> {
    let header = kernel.first()?;
    let dims = parse_parallel(header.trim_start())?;
    let close = kernel.last()?;
    let reduce = kernel.get(kernel.len().checked_sub(2)?)?;
    let rt = reduce.trim_start();
    if !rt.starts_with("scf.reduce") || rt.starts_with("scf.reduce(") {
        return None;
    }
    let mut big = Vec::new();
    for (d, (iv, lb, ub, step)) in dims.iter().enumerate().take(3) {
        let limit = func.max_rows[d].max(1);
        let Some(n) = index_constant(func, ub) else {
            continue;
        };
        if n <= limit {
            continue;
        }
        if index_constant(func, lb) != Some(0) || index_constant(func, step) != Some(1) {
            return None;
        }
        let rows = n.div_ceil(limit);
        big.push((d, iv.clone(), n, rows, n.div_ceil(rows)));
    }
    if big.is_empty() {
        return None;
    }
    let pad = " ".repeat(indent(header));
    let name = |d: usize, what: &str| format!("%tensorc_big{tag}_{d}_{what}");
    let mut new_dims = dims.clone();
    let mut out = Vec::new();
    for &(d, _, _, _, p) in &big {
        new_dims[d].0 = name(d, "o");
        new_dims[d].2 = name(d, "p");
        out.push(format!(
            "{pad}{} = arith.constant {p} : index",
            name(d, "p")
        ));
    }
    let list =
        |f: &dyn Fn(&LoopDim) -> String| new_dims.iter().map(f).collect::<Vec<_>>().join(", ");
    let tail = &header[header.rfind(')').map_or(header.len(), |i| i + 1)..];
    out.push(format!(
        "{pad}scf.parallel ({}) = ({}) to ({}) step ({}){tail}",
        list(&|d| d.0.clone()),
        list(&|d| d.1.clone()),
        list(&|d| d.2.clone()),
        list(&|d| d.3.clone()),
    ));
    let inner = format!("{pad}  ");
    for &(d, ref iv, n, rows, p) in &big {
        let c = |what: &str| name(d, what);
        out.push(format!("{inner}{} = arith.constant 0 : index", c("z")));
        out.push(format!("{inner}{} = arith.constant 1 : index", c("one")));
        out.push(format!("{inner}{} = arith.constant {rows} : index", c("r")));
        out.push(format!("{inner}{} = arith.constant {p} : index", c("pp")));
        out.push(format!("{inner}{} = arith.constant {n} : index", c("n")));
        out.push(format!(
            "{inner}scf.for {} = {} to {} step {} {{",
            c("j"),
            c("z"),
            c("r"),
            c("one")
        ));
        out.push(format!(
            "{inner}{} = arith.muli {}, {} : index",
            c("jp"),
            c("j"),
            c("pp")
        ));
        out.push(format!(
            "{inner}{iv} = arith.addi {}, {} : index",
            c("o"),
            c("jp")
        ));
        out.push(format!(
            "{inner}{} = arith.cmpi ult, {iv}, {} : index",
            c("in"),
            c("n")
        ));
        out.push(format!("{inner}scf.if {} {{", c("in")));
    }
    out.extend(kernel[1..kernel.len() - 2].iter().cloned());
    for _ in &big {
        out.push(format!("{inner}}}"));
        out.push(format!("{inner}}}"));
    }
    out.push(reduce.clone());
    out.push(close.clone());
    Some(out)
}

/// `convert-scf-to-spirv` returns a loop's carried values through a
/// function variable that only the loop body stores: when the loop runs
/// zero times its results are that variable's undefined contents, not the
/// initial values (seen as wrong `triangular_solve` results on lavapipe,
/// whose first row runs an empty inner loop). Each kernel `scf.for` with
/// `iter_args` therefore gets its results chosen explicitly:
/// `select(lb < ub, result, init)` (folded away when the trip count is
/// known to be positive). `tag` makes the new names unique.
fn guard_zero_trip(lines: Vec<String>, tag: usize) -> Vec<String> {
    // (line index of the header, its parsed parts)
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    // Renames of `%r#k` uses to apply to later lines: (from, to).
    let mut renames: Vec<(String, String)> = Vec::new();
    // Pending loops: (indent, closing-line lines to emit after it).
    let mut pending: Vec<(usize, Vec<String>)> = Vec::new();
    for (n, line) in lines.into_iter().enumerate() {
        let mut line = line;
        for (from, to) in &renames {
            if line.contains(from.as_str()) {
                line = replace_name(&line, from, to);
            }
        }
        let ind = indent(&line);
        let closes = pending
            .last()
            .is_some_and(|(i, _)| *i == ind && line.trim_start().starts_with('}'));
        if closes {
            let (_, after) = pending.pop().unwrap_or_default();
            out.push(line);
            out.extend(after);
            continue;
        }
        if let Some(g) = parse_carried_for(&line) {
            let pad = " ".repeat(ind);
            let raw = format!("%tensorc_zt{tag}_{n}_raw");
            let cond = format!("%tensorc_zt{tag}_{n}_c");
            let mut after = vec![format!(
                "{pad}{cond} = arith.cmpi slt, {}, {} : index",
                g.lb, g.ub
            )];
            let count = g.inits.len();
            for (k, (init, ty)) in g.inits.iter().zip(&g.types).enumerate() {
                let value = if count == 1 {
                    raw.clone()
                } else {
                    format!("{raw}#{k}")
                };
                let name = if count == 1 {
                    g.result.clone()
                } else {
                    let to = format!("%tensorc_zt{tag}_{n}_{k}");
                    renames.push((format!("{}#{k}", g.result), to.clone()));
                    to
                };
                after.push(format!(
                    "{pad}{name} = arith.select {cond}, {value}, {init} : {ty}"
                ));
            }
            let head = if count == 1 {
                raw
            } else {
                format!("{raw}:{count}")
            };
            out.push(format!("{pad}{head} = {}", g.rest));
            pending.push((ind, after));
            continue;
        }
        out.push(line);
    }
    out
}

/// `text` with every whole-name occurrence of `from` replaced by `to`.
fn replace_name(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        let after = rest[i + from.len()..].chars().next();
        out.push_str(&rest[..i]);
        if after.is_some_and(name_char) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

/// A `%r = scf.for %i = %lb to %ub step %s iter_args(%a = %x, ...) -> (T, ...) {` line.
struct CarriedFor {
    /// `%r` (without `:N`).
    result: String,
    lb: String,
    ub: String,
    inits: Vec<String>,
    types: Vec<String>,
    /// Everything after `%r = ` (the op itself).
    rest: String,
}

fn parse_carried_for(line: &str) -> Option<CarriedFor> {
    let t = line.trim_start();
    let (lhs, rest) = t.split_once(" = ")?;
    if !rest.starts_with("scf.for ") || !t.trim_end().ends_with('{') {
        return None;
    }
    let result = lhs.split(':').next()?.trim().to_owned();
    let after_iv = rest.strip_prefix("scf.for ")?.split_once(" = ")?.1;
    let (lb, after_lb) = after_iv.split_once(" to ")?;
    let (ub, after_ub) = after_lb.split_once(" step ")?;
    let args = after_ub.split_once("iter_args(")?.1;
    let (args, types) = args.split_once(") -> (")?;
    let types = types.split_once(')')?.0;
    let inits: Vec<String> = args
        .split(", ")
        .map(|a| a.split_once(" = ").map(|(_, v)| v.trim().to_owned()))
        .collect::<Option<_>>()?;
    let types: Vec<String> = types.split(", ").map(|t| t.trim().to_owned()).collect();
    if inits.is_empty()
        || inits.len() != types.len()
        || types
            .iter()
            .any(|t| t.contains("memref") || t.contains("tensor"))
    {
        return None;
    }
    Some(CarriedFor {
        result,
        lb: lb.trim().to_owned(),
        ub: ub.trim().to_owned(),
        inits,
        types,
        rest: rest.to_owned(),
    })
}

/// The two regions of a `scf.while` statement (before, after), as lines.
fn while_regions<'a>(stmt: &[&'a str], level: usize) -> (Vec<&'a str>, Vec<&'a str>) {
    let split = stmt
        .iter()
        .position(|l| indent(l) == level && l.trim_start().starts_with("} do {"))
        .unwrap_or(stmt.len() - 1);
    (
        stmt[1..split].to_vec(),
        stmt[(split + 1).min(stmt.len() - 1)..stmt.len() - 1].to_vec(),
    )
}

/// A host-side `scf.if`/`scf.while`: the header, each region processed
/// like a function body, the separators and the closing line as they are.
fn emit_control(
    func: &Function,
    stmt: &[&str],
    level: usize,
    floats: &[Float],
    out: &mut Vec<String>,
    wrapped: &mut usize,
    rewrites: &mut usize,
) {
    out.push(stmt[0].to_owned());
    let mut region: Vec<&str> = Vec::new();
    for &l in &stmt[1..stmt.len() - 1] {
        if indent(l) == level && l.trim_start().starts_with('}') {
            process_block(
                func,
                &statements(&region, level + 2),
                level + 2,
                floats,
                out,
                wrapped,
                rewrites,
            );
            region.clear();
            out.push(l.to_owned());
        } else {
            region.push(l);
        }
    }
    process_block(
        func,
        &statements(&region, level + 2),
        level + 2,
        floats,
        out,
        wrapped,
        rewrites,
    );
    out.push(stmt[stmt.len() - 1].to_owned());
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
        let (t, n) = wrap_host_compute(m, &crate::Limits::default());
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
        let (t, n) = wrap_host_compute(m, &crate::Limits::default());
        assert_eq!(n, 1, "one rewrite: the caller must take the new text");
        let par = t.find("scf.parallel").unwrap();
        assert!(t.find("%0 = memref.load %arg0[]").unwrap() > par, "{t}");
        assert_eq!(t.matches("memref.load").count(), 1, "{t}");
    }

    #[test]
    fn leaves_a_load_whose_buffer_is_written() {
        let m = "module {\n  func.func @f(%arg0: memref<f32>, %arg1: memref<4xf32>) {\n    %0 = memref.load %arg0[] : memref<f32>\n    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {\n      memref.store %0, %arg1[%i] : memref<4xf32>\n      memref.store %0, %arg0[] : memref<f32>\n      scf.reduce\n    }\n    return\n  }\n}\n";
        let (t, n) = wrap_host_compute(m, &crate::Limits::default());
        assert_eq!(n, 0);
        assert_eq!(t, m);
    }

    fn func(body: &[&str]) -> String {
        format!(
            "module {{\n  func.func @f(%arg0: memref<8xf32>, %arg1: memref<i32>, %arg2: memref<3xf32>) {{\n{}\n    return\n  }}\n}}\n",
            body.join("\n")
        )
    }

    /// The text of the kernel (the `scf.parallel` statement) starting at
    /// the `n`-th `scf.parallel` line.
    fn kernel(t: &str, n: usize) -> String {
        let start = t
            .match_indices("    scf.parallel")
            .nth(n)
            .expect("kernel")
            .0;
        let end = t[start..].find("\n    }").expect("end") + start;
        t[start..end].to_owned()
    }

    #[test]
    fn a_dynamic_slice_chain_floats_into_its_kernel() {
        let m = func(&[
            "    %c5_i32 = arith.constant 5 : i32",
            "    %c-1_i32 = arith.constant -1 : i32",
            "    %0 = memref.load %arg1[] : memref<i32>",
            "    %1 = arith.maxsi %0, %c-1_i32 : i32",
            "    %2 = arith.minsi %1, %c5_i32 : i32",
            "    %3 = arith.index_cast %2 : i32 to index",
            "    %subview = memref.subview %arg0[%3] [3] [1] : memref<8xf32> to memref<3xf32, strided<[1], offset: ?>>",
            "    memref.copy %subview, %arg2 : memref<3xf32, strided<[1], offset: ?>> to memref<3xf32>",
        ]);
        let (t, n) = wrap_host_compute(&m, &crate::Limits::default());
        assert!(n > 0);
        assert_eq!(t.matches("scf.parallel (").count(), 1, "{t}");
        let k = kernel(&t, 0);
        for def in [
            "%0 = memref.load",
            "%1 = arith.maxsi",
            "%3 = arith.index_cast",
            "%subview = memref.subview",
        ] {
            assert_eq!(t.matches(def).count(), 1, "{def} once:\n{t}");
            assert!(k.contains(def), "{def} in the kernel:\n{t}");
        }
    }

    #[test]
    fn a_scalar_written_by_an_earlier_kernel_floats_but_not_past_a_write() {
        // %alloc is written by the first kernel, then loaded and used by the
        // second: the load moves into the second kernel.
        let body = [
            "    %alloc = memref.alloc() : memref<i32>",
            "    scf.parallel (%i) = (%c0) to (%c1) step (%c1) {",
            "      memref.store %c5_i32, %alloc[] : memref<i32>",
            "      scf.reduce",
            "    }",
            "    %0 = memref.load %alloc[] : memref<i32>",
            "    scf.parallel (%i) = (%c0) to (%c1) step (%c1) {",
            "      memref.store %0, %arg1[] : memref<i32>",
            "      scf.reduce",
            "    }",
        ];
        let (t, _) = wrap_host_compute(&func(&body), &crate::Limits::default());
        assert!(kernel(&t, 1).contains("%0 = memref.load %alloc[]"), "{t}");
        assert_eq!(t.matches("%0 = memref.load").count(), 1, "{t}");
        // A kernel between the load and its user writes the buffer through a
        // view: the load must stay where it is.
        let mut written = body.to_vec();
        written.splice(
            6..6,
            [
                "    %v = memref.expand_shape %alloc [] output_shape [1] : memref<i32> into memref<1xi32>",
                "    scf.parallel (%i) = (%c0) to (%c1) step (%c1) {",
                "      memref.store %c5_i32, %v[%i] : memref<1xi32>",
                "      scf.reduce",
                "    }",
            ],
        );
        let m = func(&written);
        let (t, _) = wrap_host_compute(&m, &crate::Limits::default());
        assert!(!kernel(&t, 2).contains("%0 = memref.load"), "{t}");
        // Nor when the user itself writes it (other invocations could see
        // the new value).
        let mut own = body.to_vec();
        own.insert(8, "      memref.store %0, %alloc[] : memref<i32>");
        let (t, _) = wrap_host_compute(&func(&own), &crate::Limits::default());
        assert!(!kernel(&t, 1).contains("%0 = memref.load"), "{t}");
    }

    #[test]
    fn while_regions_are_rewritten_and_the_condition_stays_on_the_host() {
        let m = func(&[
            "    %c0_i8 = arith.constant 0 : i8",
            "    %alloc = memref.alloc() : memref<i32>",
            "    scf.while : () -> () {",
            "      %alloc_1 = memref.alloc() : memref<i8>",
            "      %2 = memref.load %alloc[] : memref<i32>",
            "      %3 = arith.trunci %2 : i32 to i8",
            "      memref.store %3, %alloc_1[] : memref<i8>",
            "      %7 = memref.load %alloc_1[] : memref<i8>",
            "      %8 = arith.cmpi ne, %7, %c0_i8 : i8",
            "      scf.condition(%8)",
            "    } do {",
            "      %2 = memref.load %alloc[] : memref<i32>",
            "      %3 = arith.addi %2, %2 : i32",
            "      memref.store %3, %alloc[] : memref<i32>",
            "      scf.yield",
            "    }",
        ]);
        let (t, n) = wrap_host_compute(&m, &crate::Limits::default());
        assert!(n > 0);
        assert_eq!(
            t.matches("scf.parallel (").count(),
            2,
            "one kernel per region:\n{t}"
        );
        let lines: Vec<&str> = t.lines().collect();
        let at = |s: &str| lines.iter().position(|l| l.contains(s)).expect(s);
        // The predicate is read after the condition's kernel, on the host
        // (at the region's level), right before scf.condition.
        assert!(
            at("%7 = memref.load") > at("memref.store %3, %alloc_1[]"),
            "{t}"
        );
        assert_eq!(
            lines[at("%7 = memref.load")],
            "      %7 = memref.load %alloc_1[] : memref<i8>"
        );
        assert_eq!(at("%8 = arith.cmpi") + 1, at("scf.condition(%8)"));
        assert!(at("} do {") < at("%3 = arith.addi"));
        // Inside the body's kernel: one level deeper than the region.
        assert!(
            lines[at("%3 = arith.addi")].starts_with("        %3"),
            "{t}"
        );
        assert!(
            at("%3 = arith.addi")
                > lines
                    .iter()
                    .rposition(|l| l.contains("scf.parallel"))
                    .unwrap_or(0)
        );
    }

    #[test]
    fn carried_loop_results_are_selected_when_the_loop_may_not_run() {
        let lines: Vec<String> = [
            "      %1 = scf.for %i = %c0 to %n step %c1 iter_args(%a = %0) -> (f32) {",
            "        scf.yield %a : f32",
            "      } loc(#loc6)",
            "      %2 = arith.divf %1, %1 : f32",
            "      %3:2 = scf.for %i = %c0 to %n step %c1 iter_args(%a = %0, %b = %c1_i8) -> (f32, i8) {",
            "        scf.yield %a, %b : f32, i8",
            "      }",
            "      memref.store %3#1, %m[] : memref<i8>",
            "      memref.store %3#0, %f[] : memref<f32>",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got = guard_zero_trip(lines, 7);
        assert_eq!(
            got,
            [
                "      %tensorc_zt7_0_raw = scf.for %i = %c0 to %n step %c1 iter_args(%a = %0) -> (f32) {",
                "        scf.yield %a : f32",
                "      } loc(#loc6)",
                "      %tensorc_zt7_0_c = arith.cmpi slt, %c0, %n : index",
                "      %1 = arith.select %tensorc_zt7_0_c, %tensorc_zt7_0_raw, %0 : f32",
                "      %2 = arith.divf %1, %1 : f32",
                "      %tensorc_zt7_4_raw:2 = scf.for %i = %c0 to %n step %c1 iter_args(%a = %0, %b = %c1_i8) -> (f32, i8) {",
                "        scf.yield %a, %b : f32, i8",
                "      }",
                "      %tensorc_zt7_4_c = arith.cmpi slt, %c0, %n : index",
                "      %tensorc_zt7_4_0 = arith.select %tensorc_zt7_4_c, %tensorc_zt7_4_raw#0, %0 : f32",
                "      %tensorc_zt7_4_1 = arith.select %tensorc_zt7_4_c, %tensorc_zt7_4_raw#1, %c1_i8 : i8",
                "      memref.store %tensorc_zt7_4_1, %m[] : memref<i8>",
                "      memref.store %tensorc_zt7_4_0, %f[] : memref<f32>",
            ]
        );
    }

    #[test]
    fn a_float_condition_is_stored_by_a_kernel_and_read_on_the_host() {
        let m = func(&[
            "    %cst = arith.constant 0.000000e+00 : f32",
            "    %0 = memref.load %arg1[] : memref<i32>",
            "    %1 = arith.sitofp %0 : i32 to f32",
            "    %2 = arith.cmpf une, %1, %cst : f32",
            "    scf.if %2 {",
            "      memref.copy %arg0, %arg0 : memref<8xf32> to memref<8xf32>",
            "    }",
        ]);
        let (t, n) = wrap_host_compute(&m, &crate::Limits::default());
        assert!(n > 0);
        let lines: Vec<&str> = t.lines().collect();
        let at = |s: &str| lines.iter().position(|l| l.contains(s)).expect(s);
        let buf = at("memref.alloc() : memref<i8>");
        let kernel = at("scf.parallel");
        assert!(buf < kernel, "{t}");
        assert!(
            at("arith.cmpf une") > kernel && at("arith.extui %2 : i1 to i8") > kernel,
            "{t}"
        );
        let host_load = at("= memref.load %tensorc_pb");
        assert!(host_load > at("memref.store %tensorc_pb"), "{t}");
        assert!(lines[host_load].starts_with("    %"), "on the host: {t}");
        assert!(lines[at("scf.if")].contains("scf.if %tensorc_pb"), "{t}");
        assert_eq!(at("arith.cmpi ne, %tensorc_pb") + 1, at("scf.if"));
    }

    #[test]
    fn a_condition_from_an_enclosing_region_is_read_again() {
        let m = func(&[
            "    %c0_i8 = arith.constant 0 : i8",
            "    %alloc = memref.alloc() : memref<i8>",
            "    %6 = memref.load %alloc[] : memref<i8>",
            "    %7 = arith.cmpi ne, %6, %c0_i8 : i8",
            "    scf.if %7 {",
            "      memref.copy %arg0, %arg0 : memref<8xf32> to memref<8xf32>",
            "    } else {",
            "      scf.if %7 {",
            "        memref.copy %arg2, %arg2 : memref<3xf32> to memref<3xf32>",
            "      }",
            "    }",
        ]);
        let (t, _) = wrap_host_compute(&m, &crate::Limits::default());
        let lines: Vec<&str> = t.lines().collect();
        let inner = lines
            .iter()
            .rposition(|l| l.trim_start().starts_with("scf.if"))
            .unwrap();
        assert!(lines[inner].contains("scf.if %tensorc_pb"), "{t}");
        assert!(
            lines[inner - 1].contains("arith.cmpi ne, %tensorc_pb"),
            "{t}"
        );
        assert!(
            lines[inner - 2].contains("memref.load %alloc[] : memref<i8>"),
            "{t}"
        );
        // Not when the else branch writes the buffer first.
        let m = m.replace(
            "    } else {\n",
            "    } else {\n      memref.store %c0_i8, %alloc[] : memref<i8>\n",
        );
        let (t, _) = wrap_host_compute(&m, &crate::Limits::default());
        assert!(!t.contains("%tensorc_pb"), "{t}");
    }

    #[test]
    fn an_if_inside_a_kernel_is_left_to_the_kernel() {
        let m = func(&[
            "    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {",
            "      %0 = memref.load %arg0[%i] : memref<8xf32>",
            "      %1 = arith.cmpf ogt, %0, %0 : f32",
            "      scf.if %1 {",
            "        memref.store %0, %arg0[%i] : memref<8xf32>",
            "      }",
            "      scf.reduce",
            "    }",
        ]);
        let (t, _) = wrap_host_compute(&m, &crate::Limits::default());
        assert!(!t.contains("%tensorc_pb"), "{t}");
    }

    #[test]
    fn a_kernel_whose_nested_parallel_loop_becomes_a_for_counts_as_a_rewrite() {
        let m = func(&[
            "    scf.parallel (%i) = (%c0) to (%c1) step (%c1) {",
            "      scf.for %k = %c0 to %c1 step %c1 {",
            "        scf.parallel (%j) = (%c0) to (%c4) step (%c1) {",
            "          memref.store %x, %arg0[%j] : memref<8xf32>",
            "          scf.reduce",
            "        }",
            "      }",
            "      scf.reduce",
            "    }",
        ]);
        let (t, n) = wrap_host_compute(&m, &crate::Limits::default());
        assert!(n > 0, "{t}");
        assert_eq!(t.matches("scf.parallel").count(), 1, "{t}");
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

//! The shrinker: reduces a failing program to a small one that still fails.
//!
//! It works on the line structure every `.nxir` program printed by the
//! canonical printer (and by the generator) has — one `def` header, one
//! statement per line with an optional trailing type after two spaces, one
//! `return`, a closing brace — and tries, greedily and repeatedly, edits that
//! make the program smaller: drop a `def`, return fewer values, turn a
//! statement into a parameter (cutting everything that only fed it), drop
//! dead statements and unused parameters, drop inferable type annotations,
//! and shrink parameter dimensions. An edit is kept when the predicate still
//! says "fails"; candidates that no longer type-check simply fail to fail.

use tensorc_ir::SourceFile;

/// Upper bound on predicate evaluations (each may compile the program).
const MAX_EVALS: usize = 400;

#[derive(Clone, Debug, PartialEq)]
struct Prog {
    defs: Vec<Def>,
}

#[derive(Clone, Debug, PartialEq)]
struct Def {
    name: String,
    params: Vec<(String, String)>,
    ret_ty: Option<String>,
    stmts: Vec<Stmt>,
    ret: Vec<String>,
    ret_tuple: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct Stmt {
    name: String,
    rhs: String,
    ty: Option<String>,
}

/// Ops whose type annotation carries information the checker cannot infer.
const NEEDS_TYPE: &[&str] = &[
    "as_type", "bitcast", "reshape", "iota", "eye", "constant", "tensor", "argmax", "argmin",
];

/// Reduces `src` while `still_fails` holds. Returns `src` itself when it
/// does not fail to begin with or is not in the line form described above.
pub fn shrink(src: &str, still_fails: impl Fn(&str) -> bool) -> String {
    let evals = std::cell::Cell::new(0usize);
    let check = |text: &str| {
        evals.set(evals.get() + 1);
        still_fails(text)
    };
    if !check(src) {
        return src.to_string();
    }
    // Start from the canonical form when it still fails: it has the line
    // structure the edits below rely on, whatever the input's layout.
    let mut best_text = src.to_string();
    let file = SourceFile::new("shrink.nxir", src);
    if let Ok(m) = tensorc_ir::check::compile(&file) {
        let canonical = tensorc_ir::printer::print_module(&m);
        // Nested fn bodies print on several lines, which the edits below do
        // not parse: keep the input's layout then.
        if canonical != src && parse(&canonical).is_some() && check(&canonical) {
            best_text = canonical;
        }
    }
    let Some(mut best) = parse(&best_text) else {
        return best_text;
    };
    'outer: loop {
        for cand in candidates(&best) {
            if evals.get() >= MAX_EVALS {
                break 'outer;
            }
            let text = render(&cand);
            if cand != best && text != best_text && check(&text) {
                best = cand;
                best_text = text;
                continue 'outer;
            }
        }
        break;
    }
    best_text
}

/// Every edit of `p` worth trying, most reducing first.
fn candidates(p: &Prog) -> Vec<Prog> {
    let mut out = Vec::new();
    // Drop a def nobody calls.
    if p.defs.len() > 1 {
        for d in 0..p.defs.len() {
            if callers(p, &p.defs[d].name).is_empty() {
                let mut q = p.clone();
                q.defs.remove(d);
                out.push(q);
            }
        }
    }
    // Return fewer values.
    for d in 0..p.defs.len() {
        let def = &p.defs[d];
        if def.ret.len() > 1 {
            for k in 0..def.ret.len() {
                let mut q = p.clone();
                q.defs[d].ret = vec![def.ret[k].clone()];
                q.defs[d].ret_tuple = false;
                q.defs[d].ret_ty = None;
                out.push(dce(q));
                let mut q = p.clone();
                q.defs[d].ret.remove(k);
                q.defs[d].ret_ty = None;
                out.push(dce(q));
            }
        }
    }
    // Remove dead code all at once.
    out.push(dce(p.clone()));
    // Cut a statement: it becomes a parameter, and what only fed it goes.
    for d in 0..p.defs.len() {
        for i in (0..p.defs[d].stmts.len()).rev() {
            if let Some(q) = cut(p, d, i) {
                out.push(dce(q));
            }
        }
    }
    // Bypass a statement: its uses read one of its operands instead.
    for d in 0..p.defs.len() {
        for i in (0..p.defs[d].stmts.len()).rev() {
            let def = &p.defs[d];
            let s = &def.stmts[i];
            let mut seen = Vec::new();
            for t in tokens(&s.rhs) {
                let known = def.params.iter().any(|p| p.0 == t)
                    || def.stmts[..i].iter().any(|x| x.name == t);
                if known && !seen.contains(&t) {
                    seen.push(t);
                    out.push(dce(bypass(p, d, i, t)));
                }
            }
        }
    }
    // Drop inferable annotations (so that shapes can shrink below).
    let mut q = p.clone();
    for def in &mut q.defs {
        def.ret_ty = None;
        for s in &mut def.stmts {
            if !NEEDS_TYPE.contains(&first_word(&s.rhs)) {
                s.ty = None;
            }
        }
    }
    out.push(q);
    // Remove unused parameters.
    for d in 0..p.defs.len() {
        for j in (0..p.defs[d].params.len()).rev() {
            if !used(&p.defs[d], &p.defs[d].params[j].0) {
                out.push(remove_param(p, d, j));
            }
        }
    }
    // Shrink parameter dimensions.
    for d in 0..p.defs.len() {
        for j in 0..p.defs[d].params.len() {
            let ty = &p.defs[d].params[j].1;
            let dims = dims_of(ty);
            for (k, &n) in dims.iter().enumerate() {
                let mut tries = Vec::new();
                if n > 1 {
                    tries.push(1);
                }
                if n > 2 {
                    tries.push(n / 2);
                }
                for t in tries {
                    let mut nd = dims.clone();
                    nd[k] = t;
                    let mut q = p.clone();
                    q.defs[d].params[j].1 = with_dims(ty, &nd);
                    out.push(q);
                }
            }
        }
    }
    out
}

/// Defs (index, statement index) that call `name`.
fn callers(p: &Prog, name: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (d, def) in p.defs.iter().enumerate() {
        for (i, s) in def.stmts.iter().enumerate() {
            let mut t = tokens(&s.rhs);
            if t.next() == Some("call") && t.next() == Some(name) {
                out.push((d, i));
            }
        }
    }
    out
}

/// Replaces statement `i` of def `d` by a parameter of its type.
fn cut(p: &Prog, d: usize, i: usize) -> Option<Prog> {
    let s = &p.defs[d].stmts[i];
    let ty = s.ty.clone().filter(|t| !t.starts_with('{'))?;
    let mut q = p.clone();
    let name = q.defs[d].stmts.remove(i).name;
    add_param(&mut q, d, name, ty, 0);
    Some(q)
}

/// Replaces every use of statement `i`'s value by `operand`.
fn bypass(p: &Prog, d: usize, i: usize, operand: &str) -> Prog {
    let mut q = p.clone();
    let def = &mut q.defs[d];
    let name = def.stmts[i].name.clone();
    for s in &mut def.stmts[i + 1..] {
        s.rhs = rename(&s.rhs, &name, operand);
    }
    for r in &mut def.ret {
        if *r == name {
            *r = operand.to_string();
        }
    }
    def.ret_ty = None;
    q
}

/// `s` with every whole-token occurrence of `from` replaced by `to`.
fn rename(s: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut tok = String::new();
    for c in s.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            tok.push(c);
            continue;
        }
        out.push_str(if tok == from { to } else { &tok });
        tok.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// Adds a parameter to def `d`; every call of it passes a new parameter of
/// the caller (recursively), so the program stays well formed.
fn add_param(p: &mut Prog, d: usize, name: String, ty: String, depth: usize) {
    p.defs[d].params.push((name, ty.clone()));
    if depth > 16 {
        return;
    }
    let callee = p.defs[d].name.clone();
    for (e, i) in callers(p, &callee) {
        let fresh = fresh_name(&p.defs[e]);
        p.defs[e].stmts[i].rhs.push_str(&format!(", {fresh}"));
        add_param(p, e, fresh, ty.clone(), depth + 1);
    }
}

fn fresh_name(def: &Def) -> String {
    (0..)
        .map(|k| format!("q{k}"))
        .find(|n| !def.params.iter().any(|p| &p.0 == n) && !def.stmts.iter().any(|s| &s.name == n))
        .expect("unbounded")
}

/// Removes parameter `j` of def `d` and the matching argument of its calls.
fn remove_param(p: &Prog, d: usize, j: usize) -> Prog {
    let mut q = p.clone();
    q.defs[d].params.remove(j);
    let callee = q.defs[d].name.clone();
    for (e, i) in callers(&q, &callee) {
        let rhs = &q.defs[e].stmts[i].rhs;
        let mut parts: Vec<&str> = rhs.split(", ").collect();
        // parts[0] is "call NAME"; argument j is parts[j + 1].
        if j + 1 < parts.len() {
            parts.remove(j + 1);
        }
        q.defs[e].stmts[i].rhs = parts.join(", ");
    }
    q
}

/// Dead-code elimination: statements nothing uses, until none is left.
fn dce(mut p: Prog) -> Prog {
    for def in &mut p.defs {
        loop {
            let dead = (0..def.stmts.len())
                .rev()
                .find(|&i| !used(def, &def.stmts[i].name));
            match dead {
                Some(i) => {
                    def.stmts.remove(i);
                }
                None => break,
            }
        }
    }
    p
}

fn used(def: &Def, name: &str) -> bool {
    def.ret.iter().any(|r| r == name)
        || def
            .stmts
            .iter()
            .any(|s| s.name != name && tokens(&s.rhs).any(|t| t == name))
}

fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

/// `f32[2][3]` → `[2, 3]`.
fn dims_of(ty: &str) -> Vec<usize> {
    ty.split('[')
        .skip(1)
        .filter_map(|d| d.trim_end_matches(']').parse().ok())
        .collect()
}

fn with_dims(ty: &str, dims: &[usize]) -> String {
    let base = ty.split('[').next().unwrap_or(ty);
    let mut s = base.to_string();
    for d in dims {
        s.push_str(&format!("[{d}]"));
    }
    s
}

fn parse(src: &str) -> Option<Prog> {
    let mut defs = Vec::new();
    let mut cur: Option<Def> = None;
    for raw in src.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("def ") {
            let open = rest.find('(')?;
            let close = rest.rfind(')')?;
            let name = rest[..open].trim().to_string();
            let params = rest[open + 1..close]
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.split_once(':')
                        .map(|(n, t)| (n.trim().to_string(), t.trim().to_string()))
                })
                .collect::<Option<Vec<_>>>()?;
            let tail = rest[close + 1..].trim();
            let tail = tail.strip_suffix('{')?.trim();
            let ret_ty = tail.strip_prefix("->").map(|t| t.trim().to_string());
            cur = Some(Def {
                name,
                params,
                ret_ty,
                stmts: Vec::new(),
                ret: Vec::new(),
                ret_tuple: false,
            });
        } else if let Some(r) = line.strip_prefix("return ") {
            let def = cur.as_mut()?;
            let r = r.trim();
            if let Some(inner) = r.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                def.ret = inner.split(',').map(|x| x.trim().to_string()).collect();
                def.ret_tuple = true;
            } else {
                def.ret = vec![r.to_string()];
            }
        } else if line == "}" {
            defs.push(cur.take()?);
        } else {
            let (name, rhs) = line.split_once(" = ")?;
            let (rhs, ty) = match rhs.rsplit_once("  ") {
                Some((r, t)) if looks_like_type(t.trim()) => {
                    (r.trim().to_string(), Some(t.trim().to_string()))
                }
                _ => (rhs.trim().to_string(), None),
            };
            cur.as_mut()?.stmts.push(Stmt {
                name: name.trim().to_string(),
                rhs,
                ty,
            });
        }
    }
    if cur.is_some() || defs.is_empty() {
        return None;
    }
    Some(Prog { defs })
}

fn looks_like_type(t: &str) -> bool {
    t.starts_with('{') || tensorc_ir::DType::from_name(t.split('[').next().unwrap_or("")).is_some()
}

fn render(p: &Prog) -> String {
    let mut out = String::new();
    for (k, d) in p.defs.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        let params: Vec<String> = d.params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        out.push_str(&format!("def {}({})", d.name, params.join(", ")));
        if let Some(t) = &d.ret_ty {
            out.push_str(&format!(" -> {t}"));
        }
        out.push_str(" {\n");
        for s in &d.stmts {
            match &s.ty {
                Some(t) => out.push_str(&format!("  {} = {}  {t}\n", s.name, s.rhs)),
                None => out.push_str(&format!("  {} = {}\n", s.name, s.rhs)),
            }
        }
        if d.ret_tuple {
            out.push_str(&format!("  return {{{}}}\n", d.ret.join(", ")));
        } else {
            out.push_str(&format!("  return {}\n", d.ret.join(", ")));
        }
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails while the program contains a `divide` (an arbitrary stand-in for a bug).
    fn has_divide(src: &str) -> bool {
        let file = SourceFile::new("t.nxir", src);
        tensorc_ir::check::compile(&file).is_ok() && src.contains("divide")
    }

    #[test]
    fn shrinks_to_the_failing_statement() {
        let src = "\
def helper(a: f32[4]) -> f32[4] {
  b = exp a  f32[4]
  return b
}

def main(x: f32[4][3], y: f32[3]) -> {f32[4][3], f32} {
  s = add x, y  f32[4][3]
  t = multiply s, 2.0  f32[4][3]
  d = divide t, y  f32[4][3]
  e = negate d  f32[4][3]
  r = sum e, axes: nil, keep_axes: false  f32
  return {e, r}
}
";
        let out = shrink(src, has_divide);
        // Everything but the divide is gone: it reads two parameters.
        let file = SourceFile::new("t.nxir", &out);
        let m = tensorc_ir::check::compile(&file).expect("the shrunk program checks");
        assert_eq!(m.functions.len(), 1, "{out}");
        let body_lines: Vec<&str> = out.lines().filter(|l| l.contains(" = ")).collect();
        assert_eq!(body_lines.len(), 1, "{out}");
        assert!(body_lines[0].contains("divide"), "{out}");
        // Dimensions shrank to 1 where possible.
        assert!(!out.contains("[4]") && !out.contains("[3]"), "{out}");
    }

    #[test]
    fn a_passing_program_is_returned_unchanged() {
        let src = "def main(x: f32) -> f32 {\n  y = exp x\n  return y\n}\n";
        assert_eq!(shrink(src, has_divide), src);
    }

    #[test]
    fn cutting_a_statement_of_a_called_def_adds_arguments_at_call_sites() {
        let p = parse(
            "def f(a: s32) {\n  b = negate a  s32\n  c = add b, 1  s32\n  return c\n}\n\ndef main(x: s32) {\n  y = call f, x  s32\n  return y\n}\n",
        )
        .unwrap();
        let q = cut(&p, 0, 0).unwrap();
        let text = render(&q);
        assert!(text.contains("def f(a: s32, b: s32)"), "{text}");
        assert!(text.contains("y = call f, x, q0  s32"), "{text}");
        assert!(text.contains("def main(x: s32, q0: s32)"), "{text}");
        let file = SourceFile::new("t.nxir", &text);
        assert!(tensorc_ir::check::compile(&file).is_ok(), "{text}");
    }
}

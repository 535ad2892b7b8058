//! The parser on hostile input: every prefix of real programs, absurdly deep
//! nesting, random bytes and random token soup. Whatever comes in, `parse`
//! must return (no panic, no hang, no stack overflow), return a program
//! exactly when there are no errors, and give spans the renderer can show.
//! The random inputs come from a fixed-seed generator, so runs are repeatable.

use tensorc_ir::render::render;
use tensorc_ir::{Diagnostics, SourceFile, parser};

/// Parses and renders `src`, checking the invariants; returns the error count.
fn parse_and_render(src: &str) -> usize {
    let file = SourceFile::new("r.nxir", src);
    let (prog, diags) = parser::parse(&file);
    assert_eq!(
        prog.is_some(),
        diags.is_empty(),
        "program returned despite errors, or vice versa: {src:?}"
    );
    for d in &diags {
        assert!(
            d.span.start <= d.span.end && d.span.end <= src.len(),
            "bad span {:?} in {src:?}",
            d.span
        );
        assert!(src.is_char_boundary(d.span.start) && src.is_char_boundary(d.span.end));
    }
    let n = diags.len();
    let text = render(&Diagnostics { file, items: diags });
    let headers = text
        .lines()
        .filter(|l| l.starts_with("r.nxir:") && l.contains(": error: "))
        .count();
    assert_eq!(headers, n, "one header per error:\n{text}");
    n
}

/// Inputs of our own covering every syntax form, to cut into prefixes.
const SAMPLES: &[&str] = &[
    "# y = relu(x @ w + b)
def dense(x: f32[256][1024], w: f32[1024][4096], b: f32[4096]) -> f32[256][4096] {
  h = dot x, [1], [], w, [0], []            f32[256][4096]
  z = add h, b
  y = max z, 0.0
  return y
}
",
    "def loop(x: f32[2]) -> {s32, f32[2]} {
  i0 = constant 0  s32
  s = while {i0, x}, fn(i, acc) { c = less i, 10; return c }, fn(i, acc) {
    i1 = add i, 1
    a1 = multiply acc, -2.5e-3
    return {i1, a1}
  }
  return s
}
def pick(p: u8, q: u8, a: f32, b: f32) -> {f32, f32} {
  r = cond p -> {a, b}, q -> fn() { c = negate a; d = negate b; return {c, d} }, true -> {b, a}
  e = elem r, 0
  return {e, b}
}
",
    "def red(x: s64[4][5]) {
  r = reduce x, 0x1F, axes: [0], keep_axes: false, &Nx.add/2
  m = window_reduce x, -1_000, {2, 2}, strides: [1, 1], padding: :same, fn(a, v) {
    w = max a, v
    return w
  }
  p = pad x, 0, [{1, 2, 0}, {0, -1, 1}]
  t = tensor [[1, 2],
              [3, 4]]  s32[2][2]
  n = add nan, infinity; k = add neg_infinity, 1
  return r
}
",
];

/// `.nxir` files directly in `dir` (none if it does not exist), sorted.
fn nxir_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "nxir")
            && let Ok(s) = std::fs::read_to_string(&path)
        {
            out.push((path, s));
        }
    }
    out.sort();
    out
}

fn repo_dir(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn is_syntax_case(p: &std::path::Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("syntax_"))
}

/// The shared benchmarks, the repository's examples and its syntax-error cases.
fn bench_files() -> Vec<String> {
    let mut files = nxir_files(std::path::Path::new("/work/shared/bench"));
    files.extend(nxir_files(&repo_dir("examples")));
    files.extend(
        nxir_files(&repo_dir("tests/cases/errors"))
            .into_iter()
            .filter(|(p, _)| is_syntax_case(p)),
    );
    files.into_iter().map(|(_, s)| s).collect()
}

#[test]
fn repository_programs_parse() {
    // Valid programs parse cleanly; the syntax-error cases fail in the parser.
    let ops = repo_dir("tests/cases/ops");
    let mut valid = nxir_files(&repo_dir("examples"));
    valid.extend(nxir_files(&ops));
    if let Ok(dirs) = std::fs::read_dir(&ops) {
        for d in dirs.flatten().filter(|d| d.path().is_dir()) {
            valid.extend(nxir_files(&d.path()));
        }
    }
    for (path, src) in &valid {
        assert_eq!(parse_and_render(src), 0, "{path:?} does not parse");
    }
    for (path, src) in nxir_files(&repo_dir("tests/cases/errors")) {
        if is_syntax_case(&path) {
            assert!(parse_and_render(&src) > 0, "{path:?} parses");
        }
    }
}

#[test]
fn every_prefix_parses_without_panic() {
    let mut inputs: Vec<String> = SAMPLES.iter().map(|s| s.to_string()).collect();
    inputs.extend(bench_files());
    for src in &inputs {
        for (i, _) in src.char_indices().chain(std::iter::once((src.len(), ' '))) {
            parse_and_render(&src[..i]);
        }
    }
}

#[test]
fn samples_are_valid() {
    for s in SAMPLES {
        assert_eq!(parse_and_render(s), 0, "{s}");
    }
}

fn nesting_error_count(src: &str) -> usize {
    let file = SourceFile::new("r.nxir", src);
    let (_, diags) = parser::parse(&file);
    assert!(!diags.is_empty());
    diags
        .iter()
        .filter(|d| d.message == "nesting too deep")
        .count()
}

#[test]
fn absurd_nesting_is_an_error_not_a_crash() {
    // Runs on the ordinary test thread (2 MiB stack) on purpose.
    let n = 20_000;
    let body = |line: String| format!("def f(x: f32) {{\n{line}\n  return x\n}}\n");
    assert_eq!(
        nesting_error_count(&body(format!("  y = tensor {}", "[".repeat(n)))),
        1
    );
    assert_eq!(
        nesting_error_count(&body(format!("  y = foo {}", "{a, ".repeat(n)))),
        1
    );
    assert_eq!(
        nesting_error_count(&body(format!(
            "  y = reduce x, 0, {}",
            "fn(a) { b = f ".repeat(n)
        ))),
        1
    );
    assert_eq!(
        nesting_error_count(&body(format!(
            "  y = cond {}",
            "p -> fn() { q = cond ".repeat(n)
        ))),
        1
    );
    assert_eq!(
        nesting_error_count(&format!("def f(x: {}f32) {{ return x }}", "{".repeat(n))),
        1
    );
    // Closed again, so recovery has a lot to skip; still one error.
    let deep = format!("  y = tensor {}1{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(nesting_error_count(&body(deep)), 1);
}

#[test]
fn nesting_just_under_the_limit_parses() {
    let src = format!(
        "def f() {{\n  y = tensor {}1{}  s32[1]\n  return y\n}}",
        "[".repeat(256),
        "]".repeat(256)
    );
    assert_eq!(parse_and_render(&src), 0);
    let mut inner = "return a".to_string();
    for _ in 0..64 {
        inner = format!("b = r x, fn(a) {{ {inner} }}; return b");
    }
    let src = format!("def f(x: f32) {{ {inner} }}");
    assert_eq!(parse_and_render(&src), 0);
    let src = format!(
        "def f(x: {}f32{}) {{ return x }}",
        "{".repeat(256),
        "}".repeat(256)
    );
    assert_eq!(parse_and_render(&src), 0);
    // One more level of each is an error.
    let src = format!(
        "def f(x: f32) {{ {} }}",
        inner.replacen("return a", "b = r x, fn(a) { return a }; return b", 1)
    );
    assert_eq!(nesting_error_count(&src), 1);
    let src = format!(
        "def f() {{\n  y = tensor {}1{}  s32[1]\n  return y\n}}",
        "[".repeat(257),
        "]".repeat(257)
    );
    assert_eq!(nesting_error_count(&src), 1);
    let src = format!(
        "def f(x: {}f32{}) {{ return x }}",
        "{".repeat(257),
        "}".repeat(257)
    );
    assert_eq!(nesting_error_count(&src), 1);
}

/// xorshift64*: small, deterministic, good enough to shake a parser.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..1500 {
        let len = rng.below(120);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        parse_and_render(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn random_token_soup() {
    const VOCAB: &[&str] = &[
        "def",
        "fn",
        "return",
        "nil",
        "true",
        "false",
        "nan",
        "infinity",
        "neg_infinity",
        "f32",
        "s8",
        "u64",
        "bf16",
        "c64",
        "x",
        "y",
        "add",
        "Nx",
        "=",
        ",",
        ":",
        ";",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "->",
        "&",
        "/",
        ".",
        "\n",
        "\n",
        " ",
        " ",
        "#c\n",
        "1",
        "-7",
        "0x1F",
        "1_000",
        "2.5",
        "-1e-3",
        ":same",
        "axes",
        "$",
        "é",
        "1e999",
        "12ab",
        "-",
        "\r\n",
        "\t",
    ];
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let n = rng.below(60);
        let src: String = (0..n).map(|_| VOCAB[rng.below(VOCAB.len())]).collect();
        parse_and_render(&src);
    }
}

#[test]
fn mutated_programs() {
    let mut rng = Rng(7);
    let mut inputs: Vec<String> = SAMPLES.iter().map(|s| s.to_string()).collect();
    inputs.extend(bench_files());
    for src in &inputs {
        for _ in 0..300 {
            let mut b = src.clone().into_bytes();
            for _ in 0..1 + rng.below(4) {
                if b.is_empty() {
                    break;
                }
                let i = rng.below(b.len());
                match rng.below(3) {
                    0 => {
                        b.remove(i);
                    }
                    1 => b.insert(i, b"{}[](),:;=\n-&"[rng.below(13)]),
                    _ => {
                        let j = rng.below(b.len());
                        b.swap(i, j);
                    }
                }
            }
            parse_and_render(&String::from_utf8_lossy(&b));
        }
    }
}

#[test]
fn large_inputs_stay_fast() {
    // ~700 KB of junk: every line has errors. Parsing
    // and rendering must stay linear and report at most MAX_ERRORS.
    let junk = "é $ 1e999 [ x\n".repeat(50_000);
    let t = std::time::Instant::now();
    let n = parse_and_render(&junk);
    assert_eq!(n, parser::MAX_ERRORS);
    // A large valid program: 20 000 statements.
    let mut src = String::from("def f(x: f32[2]) {\n  v0 = abs x\n");
    for i in 1..20_000 {
        src.push_str(&format!("  v{i} = add v{}, 1.5  f32[2]\n", i - 1));
    }
    src.push_str("  return v19999\n}\n");
    assert_eq!(parse_and_render(&src), 0);
    // Generous bound for a debug build on a busy machine; quadratic
    // behaviour would take minutes.
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
}

#[test]
fn error_count_is_capped_with_a_note() {
    let src = "$ ".repeat(150);
    let file = SourceFile::new("r.nxir", src);
    let (_, diags) = parser::parse(&file);
    assert_eq!(diags.len(), parser::MAX_ERRORS);
    let last = diags.last().unwrap();
    assert_eq!(
        last.notes,
        vec!["50 more errors after this one are not shown".to_string()]
    );
}

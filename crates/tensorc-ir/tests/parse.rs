//! Lexer and parser on well-formed input: every token kind and every syntax
//! form of spec §1–§3, the spec's own examples and the benchmark programs.
//! Expected trees are written out by hand from the spec text.

use tensorc_ir::ast::*;
use tensorc_ir::lexer::{TokenKind as T, lex};
use tensorc_ir::render::render;
use tensorc_ir::{DType, Diagnostics, SourceFile, TensorType, Type, parser};

/// Token kinds of `src` without the final `Eof`; fails on any diagnostic.
fn kinds(src: &str) -> Vec<T> {
    let (toks, diags) = lex(src);
    assert!(diags.is_empty(), "unexpected diagnostics: {diags:?}");
    let mut k: Vec<T> = toks.into_iter().map(|t| t.kind).collect();
    assert_eq!(k.pop(), Some(T::Eof));
    k
}

fn parse_ok(src: &str) -> Program {
    let file = SourceFile::new("t.nxir", src);
    let (prog, diags) = parser::parse(&file);
    if !diags.is_empty() {
        panic!(
            "unexpected errors:\n{}",
            render(&Diagnostics { file, items: diags })
        );
    }
    prog.expect("no errors means a program")
}

/// The single def of a program.
fn one_def(src: &str) -> Def {
    let mut p = parse_ok(src);
    assert_eq!(p.defs.len(), 1);
    p.defs.remove(0)
}

/// The statements of a body wrapped in a def that returns `r`.
fn stmts(body: &str) -> Vec<Stmt> {
    one_def(&format!("def f() {{\n{body}\nreturn r\n}}\n"))
        .body
        .stmts
}

fn stmt(line: &str) -> Stmt {
    let mut s = stmts(line);
    assert_eq!(s.len(), 1);
    s.remove(0)
}

/// An expression tree with spans erased, for compact comparisons.
#[derive(Debug, PartialEq)]
enum E {
    N(&'static str),
    I(i128),
    F(f64),
    A(&'static str),
    Nil,
    B(bool),
    L(Vec<E>),
    Tup(Vec<E>),
    /// fn params, statement count, returned expression
    Fn(Vec<&'static str>, usize, Box<E>),
    Ref(&'static str, &'static str, u32),
    Cl(Box<E>, Box<E>),
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn erase(e: &Expr) -> E {
    match &e.kind {
        ExprKind::Name(n) => E::N(leak(n)),
        ExprKind::Int(v) => E::I(*v),
        ExprKind::Float(v) => E::F(*v),
        ExprKind::Atom(a) => E::A(leak(a)),
        ExprKind::Nil => E::Nil,
        ExprKind::Bool(b) => E::B(*b),
        ExprKind::List(xs) => E::L(xs.iter().map(erase).collect()),
        ExprKind::Tuple(xs) => E::Tup(xs.iter().map(erase).collect()),
        ExprKind::Fn(f) => E::Fn(
            f.params.iter().map(|p| leak(&p.name)).collect(),
            f.body.stmts.len(),
            Box::new(erase(&f.body.ret)),
        ),
        ExprKind::FnRef {
            module,
            name,
            arity,
        } => E::Ref(leak(module), leak(name), *arity),
        ExprKind::Clause(p, v) => E::Cl(Box::new(erase(p)), Box::new(erase(v))),
    }
}

/// Args as (keyword or "", erased value).
fn args(s: &Stmt) -> Vec<(&'static str, E)> {
    s.args
        .iter()
        .map(|a| match a {
            Arg::Positional(e) => ("", erase(e)),
            Arg::Keyword(k, e) => (leak(&k.name), erase(e)),
        })
        .collect()
}

fn tt(dtype: DType, shape: &[usize]) -> Type {
    Type::Tensor(TensorType::new(dtype, shape))
}

// ---- lexer -------------------------------------------------------------------

#[test]
fn lex_identifiers_and_reserved_words() {
    assert_eq!(
        kinds("foo _x a1_B Nx def fn return nil true false"),
        vec![
            T::Ident("foo".into()),
            T::Ident("_x".into()),
            T::Ident("a1_B".into()),
            T::Ident("Nx".into()),
            T::Def,
            T::Fn,
            T::Return,
            T::Nil,
            T::True,
            T::False,
        ]
    );
    // Words that merely start like reserved ones are names.
    assert_eq!(
        kinds("define fns f32x nil_ s32_"),
        ["define", "fns", "f32x", "nil_", "s32_"]
            .map(|n| T::Ident(n.into()))
            .to_vec()
    );
}

#[test]
fn lex_dtype_names_are_reserved() {
    let src = "s8 s16 s32 s64 u8 u16 u32 u64 f16 bf16 f32 f64";
    let want: Vec<T> = [
        DType::S8,
        DType::S16,
        DType::S32,
        DType::S64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
    ]
    .map(T::DType)
    .to_vec();
    assert_eq!(kinds(src), want);
    assert_eq!(
        kinds("c64 c128"),
        vec![T::ComplexDType("c64"), T::ComplexDType("c128")]
    );
    assert!(tensorc_ir::lexer::is_reserved("bf16"));
    assert!(tensorc_ir::lexer::is_reserved("neg_infinity"));
    assert!(!tensorc_ir::lexer::is_reserved("add"));
}

#[test]
fn lex_integers() {
    assert_eq!(
        kinds("123 -7 0x1F 0XfF -0x10 1_000 0 007"),
        [123, -7, 31, 255, -16, 1000, 0, 7].map(T::Int).to_vec()
    );
    // The extremes of s64 and u64 fit (i128 underneath), and so do i128's.
    assert_eq!(
        kinds("18446744073709551615 -9223372036854775808 0xFFFF_FFFF_FFFF_FFFF"),
        vec![
            T::Int(u64::MAX as i128),
            T::Int(i64::MIN as i128),
            T::Int(u64::MAX as i128)
        ]
    );
    assert_eq!(
        kinds("170141183460469231731687303715884105727 -170141183460469231731687303715884105728"),
        vec![T::Int(i128::MAX), T::Int(i128::MIN)]
    );
}

#[test]
fn lex_floats() {
    assert_eq!(
        kinds("1.0 -2.5e-3 3e4 1.0e-5 1E+2 1_000.5 0.125 -0.0"),
        [1.0, -2.5e-3, 3e4, 1.0e-5, 100.0, 1000.5, 0.125, -0.0]
            .map(T::Float)
            .to_vec()
    );
    let k = kinds("nan infinity neg_infinity");
    assert!(matches!(k[0], T::Float(v) if v.is_nan()));
    assert_eq!(k[1], T::Float(f64::INFINITY));
    assert_eq!(k[2], T::Float(f64::NEG_INFINITY));
}

#[test]
fn lex_floats_read_back_rusts_shortest_spelling() {
    // `{:?}` of an f64 is the shortest text that reads back to the same
    // value (the canonical printer relies on it); the lexer must agree.
    for v in [
        0.1,
        -2.5e-3,
        1e-5,
        1e20,
        1.5e300,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        5e-324,
        f64::EPSILON,
        f32::MAX as f64,
        123456789.125,
    ] {
        let text = format!("{v:?}");
        assert_eq!(kinds(&text), vec![T::Float(v)], "{text}");
    }
}

#[test]
fn byte_order_mark_and_crlf_are_accepted() {
    assert_eq!(
        kinds("\u{feff}a\r\nb"),
        vec![T::Ident("a".into()), T::Newline, T::Ident("b".into())]
    );
    let d = one_def("\u{feff}def f(x: f32) {\r\n  y = abs x\r\n  return y\r\n}\r\n");
    assert_eq!(d.body.stmts.len(), 1);
}

#[test]
fn lex_atoms_and_colons() {
    assert_eq!(
        kinds(":same :valid :asc :desc :low :high"),
        ["same", "valid", "asc", "desc", "low", "high"]
            .map(|a| T::Atom(a.into()))
            .to_vec()
    );
    // After a name a colon is punctuation, even without a space.
    assert_eq!(
        kinds("x:f32"),
        vec![T::Ident("x".into()), T::Colon, T::DType(DType::F32)]
    );
    assert_eq!(
        kinds("padding: :same"),
        vec![T::Ident("padding".into()), T::Colon, T::Atom("same".into())]
    );
    assert_eq!(
        kinds("padding::same"),
        vec![T::Ident("padding".into()), T::Colon, T::Atom("same".into())]
    );
}

#[test]
fn lex_punctuation() {
    assert_eq!(
        kinds("= , : ; ( ) [ ] { } -> & / ."),
        vec![
            T::Eq,
            T::Comma,
            T::Colon,
            T::Semi,
            T::LParen,
            T::RParen,
            T::LBracket,
            T::RBracket,
            T::LBrace,
            T::RBrace,
            T::Arrow,
            T::Amp,
            T::Slash,
            T::Dot,
        ]
    );
    // `&Nx.add/2` needs no spaces.
    assert_eq!(
        kinds("&Nx.add/2"),
        vec![
            T::Amp,
            T::Ident("Nx".into()),
            T::Dot,
            T::Ident("add".into()),
            T::Slash,
            T::Int(2)
        ]
    );
    // `-` before a digit is a sign, `->` an arrow even before a digit.
    assert_eq!(
        kinds("p->-1"),
        vec![T::Ident("p".into()), T::Arrow, T::Int(-1)]
    );
}

#[test]
fn lex_newlines_and_comments() {
    // Leading blank lines and comments vanish; runs collapse into one Newline.
    assert_eq!(
        kinds("\n# head\n\na # c\n\n  # more\r\nb\n"),
        vec![
            T::Ident("a".into()),
            T::Newline,
            T::Ident("b".into()),
            T::Newline
        ]
    );
    // A line ending in `,` or `->` continues.
    assert_eq!(
        kinds("a,\n  b ->\n\n c"),
        vec![
            T::Ident("a".into()),
            T::Comma,
            T::Ident("b".into()),
            T::Arrow,
            T::Ident("c".into())
        ]
    );
    // A comment after the comma does not end the continuation.
    assert_eq!(
        kinds("a, # why\nb"),
        vec![T::Ident("a".into()), T::Comma, T::Ident("b".into())]
    );
    assert_eq!(kinds("# only a comment"), vec![]);
    assert_eq!(kinds(""), vec![]);
}

#[test]
fn lex_spans_are_byte_ranges() {
    let (toks, _) = lex("ab = -12 :x");
    let spans: Vec<(usize, usize)> = toks.iter().map(|t| (t.span.start, t.span.end)).collect();
    assert_eq!(spans, vec![(0, 2), (3, 4), (5, 8), (9, 11), (11, 11)]);
}

// ---- parser: programs ------------------------------------------------------------

const SPEC_DENSE: &str = "# y = relu(x @ w + b)
def dense(x: f32[256][1024], w: f32[1024][4096], b: f32[4096]) -> f32[256][4096] {
  h = dot x, [1], [], w, [0], []            f32[256][4096]
  z = add h, b
  y = max z, 0.0
  return y
}
";

#[test]
fn spec_dense_example() {
    let d = one_def(SPEC_DENSE);
    assert_eq!(d.name.name, "dense");
    let params: Vec<(&str, Type)> = d
        .params
        .iter()
        .map(|p| (p.name.name.as_str(), p.ty.ty.clone()))
        .collect();
    assert_eq!(
        params,
        vec![
            ("x", tt(DType::F32, &[256, 1024])),
            ("w", tt(DType::F32, &[1024, 4096])),
            ("b", tt(DType::F32, &[4096])),
        ]
    );
    assert_eq!(
        d.ret.as_ref().map(|t| t.ty.clone()),
        Some(tt(DType::F32, &[256, 4096]))
    );
    let s = &d.body.stmts;
    assert_eq!(s.len(), 3);
    assert_eq!(
        (s[0].name.name.as_str(), s[0].op.name.as_str()),
        ("h", "dot")
    );
    assert_eq!(
        args(&s[0]),
        vec![
            ("", E::N("x")),
            ("", E::L(vec![E::I(1)])),
            ("", E::L(vec![])),
            ("", E::N("w")),
            ("", E::L(vec![E::I(0)])),
            ("", E::L(vec![])),
        ]
    );
    assert_eq!(
        s[0].ty.as_ref().map(|t| t.ty.clone()),
        Some(tt(DType::F32, &[256, 4096]))
    );
    assert_eq!(args(&s[1]), vec![("", E::N("h")), ("", E::N("b"))]);
    assert_eq!(s[1].ty, None);
    assert_eq!(args(&s[2]), vec![("", E::N("z")), ("", E::F(0.0))]);
    assert_eq!(erase(&d.body.ret), E::N("y"));
}

#[test]
fn spans_point_at_the_source() {
    let src = "def f(x: f32) {\n  y = negate x  f32\n  return y\n}\n";
    let d = one_def(src);
    let text = |s: tensorc_ir::Span| &src[s.start..s.end];
    assert_eq!(text(d.name.span), "f");
    assert_eq!(text(d.params[0].ty.span), "f32");
    let s = &d.body.stmts[0];
    assert_eq!(text(s.span), "y = negate x  f32");
    assert_eq!(text(s.op.span), "negate");
    assert_eq!(text(s.ty.as_ref().unwrap().span), "f32");
    assert_eq!(text(d.body.ret_span), "return y");
    assert_eq!(text(d.body.ret.span), "y");
    assert_eq!(text(d.body.span), "{\n  y = negate x  f32\n  return y\n}");
    assert_eq!(text(d.span), src.trim_end());
}

#[test]
fn benchmark_programs_parse() {
    let dir = std::path::Path::new("/work/shared/bench");
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("no {dir:?}; skipped");
        return;
    };
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "nxir") {
            let src = std::fs::read_to_string(&path).unwrap();
            let p = parse_ok(&src);
            assert_eq!(p.defs.len(), 1, "{path:?}");
            assert_eq!(p.defs[0].name.name, "main");
            n += 1;
        }
    }
    assert!(n >= 10, "found only {n} benchmark files");
}

#[test]
fn conv_benchmark_keywords() {
    let s = stmt(
        "r = conv x, k, strides: [1, 1], padding: :same, input_permutation: [0, 3, 1, 2], kernel_permutation: [3, 2, 0, 1], output_permutation: [0, 3, 1, 2]",
    );
    let l = |v: &[i128]| E::L(v.iter().map(|&i| E::I(i)).collect());
    assert_eq!(
        args(&s),
        vec![
            ("", E::N("x")),
            ("", E::N("k")),
            ("strides", l(&[1, 1])),
            ("padding", E::A("same")),
            ("input_permutation", l(&[0, 3, 1, 2])),
            ("kernel_permutation", l(&[3, 2, 0, 1])),
            ("output_permutation", l(&[0, 3, 1, 2])),
        ]
    );
}

#[test]
fn several_defs_and_calls() {
    let p = parse_ok(
        "def sq(x: f32[2]) -> f32[2] {\n  y = multiply x, x\n  return y\n}\n\n# second\ndef main(a: f32[2]) {\n  r = call sq, a\n  return r\n}\n",
    );
    assert_eq!(p.defs.len(), 2);
    assert_eq!(p.defs[1].name.name, "main");
    assert_eq!(p.defs[1].ret, None);
    assert_eq!(
        args(&p.defs[1].body.stmts[0]),
        vec![("", E::N("sq")), ("", E::N("a"))]
    );
}

#[test]
fn empty_file_is_an_empty_program() {
    assert_eq!(parse_ok("").defs.len(), 0);
    assert_eq!(parse_ok("# nothing here\n\n").defs.len(), 0);
}

#[test]
fn def_without_params_and_one_line_bodies() {
    let d = one_def("def k() -> s32 { c = constant 3  s32; return c }");
    assert!(d.params.is_empty());
    assert_eq!(d.body.stmts.len(), 1);
    let d = one_def("def id(x: u8) { return x }");
    assert!(d.body.stmts.is_empty());
    assert_eq!(erase(&d.body.ret), E::N("x"));
}

#[test]
fn header_and_operands_may_span_lines() {
    let d = one_def(
        "def f(\n  x: f32[2],\n  y: f32[2]\n) ->\n  f32[2]\n{\n  z = add x,\n        y\n  t = tensor [[1, 2],\n             [3, 4]]  s32[2][2]\n  return z\n}",
    );
    assert_eq!(d.params.len(), 2);
    assert_eq!(d.ret.map(|t| t.ty), Some(tt(DType::F32, &[2])));
    assert_eq!(
        args(&d.body.stmts[0]),
        vec![("", E::N("x")), ("", E::N("y"))]
    );
    assert_eq!(
        args(&d.body.stmts[1]),
        vec![(
            "",
            E::L(vec![
                E::L(vec![E::I(1), E::I(2)]),
                E::L(vec![E::I(3), E::I(4)])
            ])
        )]
    );
}

#[test]
fn semicolons_separate_statements() {
    let s = stmts("a = iota nil  s32[3]; b = negate a;; c = abs b");
    let names: Vec<&str> = s.iter().map(|s| s.name.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b", "c"]);
}

// ---- parser: statements and types ---------------------------------------------------

#[test]
fn trailing_types() {
    assert_eq!(
        stmt("e = eye  f32[3][3]").ty.map(|t| t.ty),
        Some(tt(DType::F32, &[3, 3]))
    );
    assert_eq!(
        stmt("c = constant 2.5  f64").ty.map(|t| t.ty),
        Some(tt(DType::F64, &[]))
    );
    assert_eq!(
        stmt("i = iota 1  bf16[0][7]").ty.map(|t| t.ty),
        Some(tt(DType::BF16, &[0, 7]))
    );
    let s = stmt("s = while {i0, x}, c, b  {s32, {f32[2], u8[1][1]}}");
    assert_eq!(
        s.ty.map(|t| t.ty),
        Some(Type::Tuple(vec![
            tt(DType::S32, &[]),
            Type::Tuple(vec![tt(DType::F32, &[2]), tt(DType::U8, &[1, 1])]),
        ]))
    );
    // A zero-operand op directly followed by a tuple type.
    let s = stmt("t = foo {f32, s64}");
    assert!(s.args.is_empty());
    assert_eq!(
        s.ty.map(|t| t.ty),
        Some(Type::Tuple(vec![tt(DType::F32, &[]), tt(DType::S64, &[])]))
    );
    // ... but a tuple of names is an operand.
    let s = stmt("t = foo {a, b}");
    assert_eq!(args(&s), vec![("", E::Tup(vec![E::N("a"), E::N("b")]))]);
    assert_eq!(s.ty, None);
}

#[test]
fn tuple_return_type() {
    let d = one_def("def f(x: f32) -> {f32, f32} {\n  return {x, x}\n}");
    assert_eq!(
        d.ret.map(|t| t.ty),
        Some(Type::Tuple(vec![tt(DType::F32, &[]), tt(DType::F32, &[])]))
    );
    assert_eq!(erase(&d.body.ret), E::Tup(vec![E::N("x"), E::N("x")]));
}

#[test]
fn operand_kinds() {
    let s = stmt(
        "r = op a, -3, 0x10, 2.5, -1.0e-3, nan, infinity, neg_infinity, nil, true, false, :asc, [], {}",
    );
    let a = args(&s);
    assert_eq!(a[0], ("", E::N("a")));
    assert_eq!(a[1], ("", E::I(-3)));
    assert_eq!(a[2], ("", E::I(16)));
    assert_eq!(a[3], ("", E::F(2.5)));
    assert_eq!(a[4], ("", E::F(-1.0e-3)));
    assert!(matches!(a[5].1, E::F(v) if v.is_nan()));
    assert_eq!(a[6], ("", E::F(f64::INFINITY)));
    assert_eq!(a[7], ("", E::F(f64::NEG_INFINITY)));
    assert_eq!(a[8], ("", E::Nil));
    assert_eq!(a[9], ("", E::B(true)));
    assert_eq!(a[10], ("", E::B(false)));
    assert_eq!(a[11], ("", E::A("asc")));
    assert_eq!(a[12], ("", E::L(vec![])));
    assert_eq!(a[13], ("", E::Tup(vec![])));
}

#[test]
fn keyword_options() {
    let s = stmt("s = sum x, axes: nil, keep_axes: true");
    assert_eq!(
        args(&s),
        vec![("", E::N("x")), ("axes", E::Nil), ("keep_axes", E::B(true))]
    );
    let s = stmt("a = argmax x, axis: 1, tie_break: :high");
    assert_eq!(
        args(&s),
        vec![
            ("", E::N("x")),
            ("axis", E::I(1)),
            ("tie_break", E::A("high"))
        ]
    );
}

#[test]
fn pad_config_and_broadcast_tuples() {
    let s = stmt("p = pad x, 0.0, [{1, 2, 0}, {0, -1, 1}]");
    assert_eq!(
        args(&s)[2].1,
        E::L(vec![
            E::Tup(vec![E::I(1), E::I(2), E::I(0)]),
            E::Tup(vec![E::I(0), E::I(-1), E::I(1)]),
        ])
    );
    let s = stmt("b = broadcast x, {2, 3, 4}, [1, 2]");
    assert_eq!(args(&s)[1].1, E::Tup(vec![E::I(2), E::I(3), E::I(4)]));
    let s = stmt("m = window_max x, {2, 2}, strides: [2, 2], padding: [{0, 1}, {1, 0}]");
    assert_eq!(args(&s)[1].1, E::Tup(vec![E::I(2), E::I(2)]));
}

#[test]
fn tuple_operands_ignore_newlines() {
    let s = stmt("t = foo {a,\n b\n }, [\n 1\n ]");
    assert_eq!(
        args(&s),
        vec![
            ("", E::Tup(vec![E::N("a"), E::N("b")])),
            ("", E::L(vec![E::I(1)]))
        ]
    );
}

// ---- parser: functions, captures, control flow --------------------------------------

#[test]
fn spec_while_example() {
    let s = stmt(
        "s = while {i0, x}, fn(i, acc) { c = less i, 10; return c }, fn(i, acc) {\n    i1 = add i, 1\n    a1 = multiply acc, 2.0\n    return {i1, a1}\n  }",
    );
    assert_eq!(s.op.name, "while");
    assert_eq!(
        args(&s),
        vec![
            ("", E::Tup(vec![E::N("i0"), E::N("x")])),
            ("", E::Fn(vec!["i", "acc"], 1, Box::new(E::N("c")))),
            (
                "",
                E::Fn(
                    vec!["i", "acc"],
                    2,
                    Box::new(E::Tup(vec![E::N("i1"), E::N("a1")]))
                )
            ),
        ]
    );
}

#[test]
fn spec_cond_example() {
    let s = stmt(
        "r = cond p -> {a, b}, q -> fn() { c = negate a; d = negate b; return {c, d} }, true -> {e, f}",
    );
    let cl = |p: E, v: E| ("", E::Cl(Box::new(p), Box::new(v)));
    assert_eq!(
        args(&s),
        vec![
            cl(E::N("p"), E::Tup(vec![E::N("a"), E::N("b")])),
            cl(
                E::N("q"),
                E::Fn(vec![], 2, Box::new(E::Tup(vec![E::N("c"), E::N("d")])))
            ),
            cl(E::B(true), E::Tup(vec![E::N("e"), E::N("f")])),
        ]
    );
    // A clause may continue on the next line after the arrow, and name a value.
    let s = stmt("r = cond p ->\n  x, true -> y");
    assert_eq!(
        args(&s),
        vec![cl(E::N("p"), E::N("x")), cl(E::B(true), E::N("y"))]
    );
}

#[test]
fn reduce_with_fn_and_captures() {
    let s = stmt(
        "r = reduce x, 0, axes: [0], keep_axes: false, fn(acc, v) { s = add acc, v; return s }",
    );
    assert_eq!(
        args(&s),
        vec![
            ("", E::N("x")),
            ("", E::I(0)),
            ("axes", E::L(vec![E::I(0)])),
            ("keep_axes", E::B(false)),
            ("", E::Fn(vec!["acc", "v"], 1, Box::new(E::N("s")))),
        ]
    );
    for (src, name) in [
        ("&Nx.add/2", "add"),
        ("&Nx.multiply/2", "multiply"),
        ("&Nx.max/2", "max"),
        ("&Nx.min/2", "min"),
        ("&Nx.logical_and/2", "logical_and"),
        ("&Nx.logical_or/2", "logical_or"),
    ] {
        let s = stmt(&format!("r = reduce x, 0, axes: nil, {src}"));
        assert_eq!(args(&s)[3], ("", E::Ref("Nx", name, 2)), "{src}");
    }
    // Longer module paths are kept joined with dots.
    let s = stmt("r = window_reduce x, 0, {2}, &Nx.Defn.Kernel.add/2");
    assert_eq!(args(&s)[3], ("", E::Ref("Nx.Defn.Kernel", "add", 2)));
}

#[test]
fn nested_fns_keep_their_own_blocks() {
    let s = stmt(
        "w = while {i}, fn(i) {\n  c = less i, 3\n  return c\n}, fn(i) {\n  j = while {i}, fn(k) { d = less k, 2; return d }, fn(k) {\n    k1 = add k, 1\n    return {k1}\n  }\n  e = elem j, 0\n  return {e}\n}",
    );
    let a = args(&s);
    let E::Fn(_, n, _) = &a[2].1 else {
        panic!("{:?}", a[2])
    };
    assert_eq!(*n, 2); // `j = while ...` and `e = elem ...`
}

#[test]
fn moderately_deep_nesting_is_fine() {
    // 100 levels of lists: well under the limit.
    let src = format!("r = tensor {}1{}  s32[1]", "[".repeat(100), "]".repeat(100));
    let s = stmt(&src);
    let mut e = &args(&s)[0].1;
    let mut depth = 0;
    while let E::L(v) = e {
        depth += 1;
        e = &v[0];
    }
    assert_eq!(depth, 100);
    assert_eq!(*e, E::I(1));
}

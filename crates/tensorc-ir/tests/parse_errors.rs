//! Every user-facing message of the lexer and parser, rendered exactly as the
//! user sees it (spec §5): `FILE:LINE:COL: error: message`, the source line
//! and a caret under the offending token. Line, column and caret positions
//! below were counted by hand from the inputs.

use tensorc_ir::render::{render, render_one};
use tensorc_ir::{Diagnostic, Diagnostics, SourceFile, Span, parser};

fn errs(src: &str) -> String {
    let file = SourceFile::new("e.nxir", src);
    let (prog, items) = parser::parse(&file);
    assert!(prog.is_none(), "a program with errors must not be returned");
    render(&Diagnostics { file, items })
}

/// The rendered text of a one-error input whose error is on line `line`
/// (shown as `text`) at column `col`, `width` carets wide.
fn one(line: usize, col: usize, msg: &str, text: &str, width: usize) -> String {
    format!(
        "e.nxir:{line}:{col}: error: {msg}\n  |\n{line} | {text}\n  | {}{}\n",
        " ".repeat(col - 1),
        "^".repeat(width)
    )
}

/// Wraps one body line in a def, so the line is line 2.
fn in_body(line: &str) -> String {
    format!("def f(x: f32) {{\n{line}\n  return x\n}}\n")
}

#[track_caller]
fn check(src: &str, want: &str) {
    let got = errs(src);
    assert_eq!(got, want, "\n--- got ---\n{got}--- want ---\n{want}");
}

#[track_caller]
fn check_body(line: &str, col: usize, msg: &str, width: usize) {
    check(&in_body(line), &one(2, col, msg, line, width));
}

// ---- lexer ----------------------------------------------------------------------

#[test]
fn unexpected_character() {
    check_body("  y = add x, $", 14, "unexpected character '$'", 1);
}

#[test]
fn unexpected_non_ascii_characters() {
    let src = "def f(x: f32) {\n  é = add x, 1\n  return é\n}\n";
    let want = one(2, 3, "unexpected character 'é'", "  é = add x, 1", 1)
        + &one(3, 10, "unexpected character 'é'", "  return é", 1);
    check(src, &want);
}

#[test]
fn runs_of_unexpected_characters_are_one_error() {
    check_body(
        "  y = add x, $@%?",
        14,
        "4 unexpected characters, starting with '$'",
        4,
    );
}

#[test]
fn invisible_characters_are_named_by_code_point() {
    check_body("  y = add x,\u{a0}1", 13, "unexpected character U+00A0", 1);
}

#[test]
fn bidi_and_zero_width_characters_are_named_by_code_point() {
    // Shown as U+FFFD in the snippet so the caret has something to mark and
    // the override cannot reorder the terminal line.
    check(
        &in_body("  y = add x,\u{202e}1"),
        &one(
            2,
            13,
            "unexpected character U+202E",
            "  y = add x,\u{fffd}1",
            1,
        ),
    );
    check(
        &in_body("  y = add x,\u{1}1"),
        &one(2, 13, "unexpected character U+0001", "  y = add x,?1", 1),
    );
}

#[test]
fn crlf_line_endings_render_cleanly() {
    check(
        "def f(x: f32) {\r\n  y = add x 1.0\r\n  return y\r\n}\r\n",
        &one(
            2,
            13,
            "expected ',' or end of line after the operand, found '1.0'",
            "  y = add x 1.0",
            3,
        ),
    );
}

#[test]
fn invalid_number_literals() {
    check_body(
        "  y = add x, 12abc",
        14,
        "invalid number literal '12abc'",
        5,
    );
    check_body("  y = add x, 1__0", 14, "invalid number literal '1__0'", 4);
    check_body("  y = add x, 1_", 14, "invalid number literal '1_'", 2);
    check_body("  y = add x, 0x", 14, "invalid number literal '0x'", 2);
    check_body("  y = add x, 0xG1", 14, "invalid number literal '0xG1'", 4);
    check_body("  y = add x, 1e", 14, "invalid number literal '1e'", 2);
    check_body(
        "  y = add x, 1.0.0",
        14,
        "invalid number literal '1.0.0'",
        5,
    );
}

#[test]
fn integer_literal_out_of_range() {
    let lit = "170141183460469231731687303715884105728"; // 2^127
    check_body(
        &format!("  y = add x, {lit}"),
        14,
        &format!("integer literal '{lit}' is out of range"),
        lit.len(),
    );
    let lit = "-0x1_0000_0000_0000_0000_0000_0000_0000_0001"; // -(2^128 + 1)
    check_body(
        &format!("  y = add x, {lit}"),
        14,
        &format!("integer literal '{lit}' is out of range"),
        lit.len(),
    );
}

#[test]
fn float_literal_out_of_range() {
    check_body(
        "  y = add x, 1e999",
        14,
        "float literal '1e999' is out of range",
        5,
    );
}

// ---- top level and def headers ------------------------------------------------------

#[test]
fn expected_def() {
    check(
        "x = 1\n",
        "e.nxir:1:1: error: expected 'def', found 'x'\n  |\n1 | x = 1\n  | ^\n  |\n  = note: a file is a sequence of `def name(params) -> type { ... }`\n",
    );
}

#[test]
fn def_header_errors() {
    check(
        "def (x: f32) { return x }",
        &one(
            1,
            5,
            "expected a function name, found '('",
            "def (x: f32) { return x }",
            1,
        ),
    );
    check(
        "def f x: f32) { return x }",
        &one(
            1,
            7,
            "expected '(' after the function name, found 'x'",
            "def f x: f32) { return x }",
            1,
        ),
    );
    check(
        "def f(1: f32) { return 1 }",
        &one(
            1,
            7,
            "expected a parameter name, found '1'",
            "def f(1: f32) { return 1 }",
            1,
        ),
    );
    check(
        "def f(nil: f32) { return 1 }",
        &one(
            1,
            7,
            "expected a parameter name, found 'nil'",
            "def f(nil: f32) { return 1 }",
            3,
        ),
    );
    check(
        "def f(x f32) { return x }",
        &one(
            1,
            9,
            "expected ':' and a type after the parameter name, found 'f32'",
            "def f(x f32) { return x }",
            3,
        ),
    );
    check(
        "def f(x: f32 y: f32) { return x }",
        &one(
            1,
            14,
            "expected ',' or ')' in the parameter list, found 'y'",
            "def f(x: f32 y: f32) { return x }",
            1,
        ),
    );
    check(
        "def f(x: f32) -> f32 return x }",
        &one(
            1,
            22,
            "expected '{' to start the body, found 'return'",
            "def f(x: f32) -> f32 return x }",
            6,
        ),
    );
    check(
        "def f(x: f32) f32 { return x }",
        &one(
            1,
            15,
            "expected '->' or '{', found 'f32'",
            "def f(x: f32) f32 { return x }",
            3,
        ),
    );
}

#[test]
fn errors_in_header_and_body_are_both_reported() {
    // After a broken header the body (its `{` ends the line) is still parsed.
    let header = "def f(x: f31) -> {f32, f32} {";
    let note = "  |\n  = note: the dtypes are s8 s16 s32 s64 u8 u16 u32 u64 f16 bf16 f32 f64\n";
    check(
        &format!("{header}\n  y = reshape x  f32[-2]\n  return y\n}}\n"),
        &(one(
            1,
            10,
            "expected a type (such as f32[2][3]), found 'f31'",
            header,
            3,
        ) + note
            + &one(
                2,
                22,
                "dimension must be a non-negative integer, found -2",
                "  y = reshape x  f32[-2]",
                2,
            )),
    );
}

// ---- bodies -----------------------------------------------------------------------------

#[test]
fn unclosed_body_at_end_of_file() {
    check(
        "def f(x: f32) {\n  return x\n\n# trailing comment\n",
        "e.nxir:2:11: error: expected '}' to close the body of the function, found end of file\n  |\n1 | def f(x: f32) {\n  |               - the body starts here\n2 |   return x\n  |           ^\n",
    );
}

#[test]
fn unclosed_body_before_next_def() {
    // The next def is still parsed: its own error is reported too.
    check(
        "def f(x: f32) {\n  return x\ndef g(y: f32) {\n  z = abs\n}\n",
        "e.nxir:3:1: error: expected '}' to close the body of the function, found 'def'\n  |\n1 | def f(x: f32) {\n  |               - the body starts here\n2 |   return x\n3 | def g(y: f32) {\n  | ^^^\ne.nxir:5:1: error: missing 'return' at the end of the body of the function\n  |\n5 | }\n  | ^\n",
    );
}

#[test]
fn unclosed_fn_body_before_next_def() {
    // The open `fn` does not make the statement swallow the next def.
    check(
        "def f(x: f32) {\n  r = reduce x, 0, fn(a, b) {\n    c = add a, b\ndef g(y: f32) {\n  z = abs\n}\n",
        "e.nxir:4:1: error: expected '}' to close the body of the fn, found 'def'\n  |\n2 |   r = reduce x, 0, fn(a, b) {\n  |                             - the body starts here\n3 |     c = add a, b\n4 | def g(y: f32) {\n  | ^^^\ne.nxir:6:1: error: missing 'return' at the end of the body of the function\n  |\n6 | }\n  | ^\n",
    );
}

#[test]
fn return_errors() {
    check(
        "def f(x: f32) {\n  return x\n  return x\n}",
        &one(3, 3, "a body has only one 'return'", "  return x", 8),
    );
    check(
        "def f(x: f32) {\n  return x\n  y = abs x\n}",
        &one(
            3,
            3,
            "statement after 'return' (the return ends the body)",
            "  y = abs x",
            9,
        ),
    );
    check(
        "def f(x: f32) {\n  y = abs x\n}",
        &one(
            3,
            1,
            "missing 'return' at the end of the body of the function",
            "}",
            1,
        ),
    );
    check(
        "def f(x: f32) {\n  return x y\n}",
        &one(
            2,
            12,
            "expected end of line after the returned value, found 'y'",
            "  return x y",
            1,
        ),
    );
    check(
        "def f(x: f32) {\n  return\n}",
        &one(
            2,
            9,
            "expected a value after 'return', found end of line",
            "  return",
            1,
        ),
    );
}

#[test]
fn statement_errors() {
    check_body(
        "  1 = add x, x",
        3,
        "expected a statement `name = op operands`, found '1'",
        1,
    );
    check_body("  y add x, x", 5, "expected '=' after 'y', found 'add'", 3);
    check_body(
        "  f32 = add x, x",
        3,
        "'f32' is a reserved word, not a name",
        3,
    );
    check_body(
        "  nan = add x, x",
        3,
        "'nan' is a reserved word, not a name",
        3,
    );
    check(
        &in_body("  y = 1.0"),
        "e.nxir:2:7: error: expected an operation name after '=', found '1.0'\n  |\n2 |   y = 1.0\n  |       ^^^\n  |\n  = note: a statement is `name = op operands`, e.g. `y = add x, 1.0`\n",
    );
    check_body(
        "  y = abs x  f32 z",
        18,
        "expected end of line after the type, found 'z'",
        1,
    );
    check_body(
        "  y = add x 1.0",
        13,
        "expected ',' or end of line after the operand, found '1.0'",
        3,
    );
    check_body(
        "  s = sum x, axes:",
        19,
        "expected a value for option 'axes', found end of line",
        1,
    );
    check_body("  y = add x, )", 14, "expected an operand, found ')'", 1);
    check_body("  y = foo [1 2]", 14, "expected ',' or ']', found '2'", 1);
    check_body("  y = foo {a b}", 14, "expected ',' or '}', found 'b'", 1);
}

#[test]
fn operand_list_continues_after_a_trailing_comma() {
    // The `,` joins the next line, so `return` is read as an operand.
    check(
        "def f(x: f32) {\n  y = add x,\n  return y\n}",
        &one(3, 3, "expected an operand, found 'return'", "  return y", 6),
    );
}

#[test]
fn missing_operand_at_end_of_file() {
    // One error at the end, not a second one for the missing `}` there.
    check(
        "def f(x: f32) {\n  y = add x,\n",
        &one(
            2,
            13,
            "expected an operand, found end of file",
            "  y = add x,",
            1,
        ),
    );
}

#[test]
fn unclosed_bracket_points_at_it() {
    check(
        "def f(x: f32) {\n  a = foo [1, 2\n  b = abs x\n  return b\n}",
        "e.nxir:3:3: error: expected ',' or ']', found 'b'\n  |\n2 |   a = foo [1, 2\n  |           - unclosed bracket\n3 |   b = abs x\n  |   ^\n",
    );
}

#[test]
fn fn_errors() {
    check_body(
        "  r = reduce x, 0, fn { return x }",
        23,
        "expected '(' after 'fn', found '{'",
        1,
    );
    check_body(
        "  r = reduce x, 0, fn(a, b) c",
        29,
        "expected '{' to start the body of the fn, found 'c'",
        1,
    );
    check_body(
        "  r = reduce x, 0, fn(a, 1) { return a }",
        26,
        "expected a parameter name, found '1'",
        1,
    );
    check_body(
        "  r = reduce x, 0, fn(a, b) { c = add a, b }",
        44,
        "missing 'return' at the end of the body of the fn",
        1,
    );
}

#[test]
fn fn_ref_errors() {
    check_body(
        "  r = reduce x, 0, &2",
        21,
        "expected a function name after '&' (as in '&Nx.add/2'), found '2'",
        1,
    );
    check_body(
        "  r = reduce x, 0, &Nx./2",
        24,
        "expected a function name after '.', found '/'",
        1,
    );
    check_body(
        "  r = reduce x, 0, &Nx.add",
        27,
        "expected '/' and an arity (as in '&Nx.add/2'), found end of line",
        1,
    );
    check_body(
        "  r = reduce x, 0, &Nx.add/x",
        28,
        "expected an arity after '/', found 'x'",
        1,
    );
    check_body("  r = reduce x, 0, &Nx.add/-1", 28, "invalid arity -1", 2);
}

#[test]
fn type_errors() {
    let h = |ty: &str| format!("def f(x: {ty}) {{ return x }}");
    check(
        &h("f32[-1]"),
        &one(
            1,
            14,
            "dimension must be a non-negative integer, found -1",
            &h("f32[-1]"),
            2,
        ),
    );
    let big = "99999999999999999999999";
    check(
        &h(&format!("f32[{big}]")),
        &one(
            1,
            14,
            &format!("dimension {big} is too large"),
            &h(&format!("f32[{big}]")),
            big.len(),
        ),
    );
    check(
        &h("f32[a]"),
        &one(
            1,
            14,
            "expected a dimension (a non-negative integer), found 'a'",
            &h("f32[a]"),
            1,
        ),
    );
    check(
        &h("f32[2.0]"),
        &one(
            1,
            14,
            "expected a dimension (a non-negative integer), found '2.0'",
            &h("f32[2.0]"),
            3,
        ),
    );
    check(
        &h("f32[2 3]"),
        &one(
            1,
            16,
            "expected ']' after the dimension, found '3'",
            &h("f32[2 3]"),
            1,
        ),
    );
    check(
        &h("c64"),
        &one(
            1,
            10,
            "unsupported dtype 'c64' (complex types are not yet implemented)",
            &h("c64"),
            3,
        ),
    );
    check(
        &h("[2]"),
        &one(
            1,
            10,
            "expected a type (such as f32[2][3]), found '['",
            &h("[2]"),
            1,
        ),
    );
    check(
        &h("i32"),
        "e.nxir:1:10: error: expected a type (such as f32[2][3]), found 'i32'\n  |\n1 | def f(x: i32) { return x }\n  |          ^^^\n  |\n  = note: the dtypes are s8 s16 s32 s64 u8 u16 u32 u64 f16 bf16 f32 f64\n",
    );
    let src = "def f(x: f32) -> {f32 f32} { return x }";
    check(
        src,
        &one(
            1,
            23,
            "expected ',' or '}' in the tuple type, found 'f32'",
            src,
            3,
        ),
    );
}

#[test]
fn nesting_too_deep() {
    // The 257th `[` (column 14 + 256) is one too deep.
    let line = format!("  y = tensor {}", "[".repeat(300));
    let col = 14 + 256;
    let want = format!(
        "e.nxir:2:{col}: error: nesting too deep\n  |\n2 | {line}\n  | {}^\n  |\n  = note: at most 256 levels of lists, tuples and tuple types, or 64 of fns\n",
        " ".repeat(col - 1)
    );
    check(&in_body(&line), &want);
}

// ---- recovery: several errors in one run ----------------------------------------------

#[test]
fn several_errors_in_one_run() {
    let src = "def f(x: f32) {
  a = add x
  b = add x 1.0
  c = = x
  return a
}
def g(x f32) { return x }
def h(y: f32) {
  r = abs y
  return r y
}
";
    let got = errs(src);
    let headers: Vec<&str> = got.lines().filter(|l| l.starts_with("e.nxir:")).collect();
    assert_eq!(
        headers,
        vec![
            "e.nxir:3:13: error: expected ',' or end of line after the operand, found '1.0'",
            "e.nxir:4:7: error: expected an operation name after '=', found '='",
            "e.nxir:7:9: error: expected ':' and a type after the parameter name, found 'f32'",
            "e.nxir:10:12: error: expected end of line after the returned value, found 'y'",
        ]
    );
}

// ---- rendering ----------------------------------------------------------------------------

#[test]
fn render_labels_notes_and_warnings() {
    let file = SourceFile::new("m.nxir", "def f(x: f32) {\n  y = add x, z\n  return y\n}\n");
    let d = Diagnostic::error(Span::new(29, 30), "unknown name 'z'")
        .with_label(Span::new(6, 7), "parameters are here")
        .with_note("names must be bound before use");
    assert_eq!(
        render_one(&file, &d),
        "m.nxir:2:14: error: unknown name 'z'\n  |\n1 | def f(x: f32) {\n  |       - parameters are here\n2 |   y = add x, z\n  |              ^\n  |\n  = note: names must be bound before use\n"
    );
    let mut w = Diagnostic::error(Span::new(18, 19), "unused value 'y'");
    w.severity = tensorc_ir::Severity::Warning;
    assert_eq!(
        render_one(&file, &w),
        "m.nxir:2:3: warning: unused value 'y'\n  |\n2 |   y = add x, z\n  |   ^\n"
    );
}

#[test]
fn render_clamps_bad_spans() {
    // Past the end, and inside a multi-byte character: clamped, never a panic.
    let file = SourceFile::new("u.nxir", "é\n");
    let past = render_one(&file, &Diagnostic::error(Span::new(50, 60), "past the end"));
    assert!(
        past.starts_with("u.nxir:2:1: error: past the end\n"),
        "{past}"
    );
    let inside = render_one(&file, &Diagnostic::error(Span::new(1, 1), "inside"));
    assert!(
        inside.starts_with("u.nxir:1:1: error: inside\n"),
        "{inside}"
    );
    let backwards = render_one(&file, &Diagnostic::error(Span::new(2, 0), "backwards"));
    assert!(
        backwards.starts_with("u.nxir:1:2: error: backwards\n"),
        "{backwards}"
    );
}

#[test]
fn render_of_many_is_the_concatenation() {
    let file = SourceFile::new("a.nxir", "x\ny\n");
    let a = Diagnostic::error(Span::new(0, 1), "first");
    let b = Diagnostic::error(Span::new(2, 3), "second");
    let all = render(&Diagnostics {
        file: file.clone(),
        items: vec![a.clone(), b.clone()],
    });
    assert_eq!(all, render_one(&file, &a) + &render_one(&file, &b));
    assert_eq!(
        all,
        "a.nxir:1:1: error: first\n  |\n1 | x\n  | ^\na.nxir:2:1: error: second\n  |\n2 | y\n  | ^\n"
    );
}

//! Every diagnostic the checker can give, with its exact text, plus the
//! rendered `file:line:col` form, several errors per run, and quiet poison
//! after a failed statement.

mod check_support;
use check_support::*;
use tensorc_ir::check::compile;
use tensorc_ir::render::render;

/// (parameters, statement `r = …`, expected message) for single-statement programs.
const STATEMENT_ERRORS: &[(&str, &str, &str)] = &[
    // names, ops, operands, options
    ("", "add y, 1", "unknown name 'y'"),
    ("x: f32", "frobnicate x", "unknown operation 'frobnicate'"),
    ("x: f32", "real x", "unsupported operation 'real' (not yet implemented)"),
    ("x: f32", "cumulative_sum x", "'cumulative_sum' needs a tensor of rank 1 or more, got f32"),
    ("x: f32[4], i: f32[2]", "take x, i, axis: 0", "'take' needs integer indices, but 'i' is f32[2]"),
    ("x: f32, y: f32", "add x, y, x", "'add' expects 2 operands, got 3"),
    ("x: f32", "exp", "'exp' expects 1 operand, got 0"),
    ("x: f32[1]", "squeeze x, [0], [0]", "'squeeze' expects 1 to 2 operands, got 3"),
    ("x: f32", "call", "'call' expects at least 1 operand, got 0"),
    ("x: f32, y: f32", "add x, y, axis: 0", "'add' takes no options, got 'axis'"),
    ("x: f32[2]", "sum x, axis: [0]", "unknown option 'axis' for 'sum' (expected axes, keep_axes)"),
    ("x: f32[2]", "sum x, axes: [0], axes: [0]", "option 'axes' is given twice"),
    ("x: f32[2]", "negate [1, 2]", "expected a tensor name, found a list"),
    ("x: f32[2]", "sum x, axes: [:a]", "expected an integer, found :a"),
    ("x: f32[2]", "sum x, axes: 0", "expected a list of integers, found the integer 0"),
    ("x: f32[2]", "sum x, keep_axes: 1", "expected true or false, found the integer 1"),
    ("x: f32[2]", "argmax x, axis: 0, tie_break: :mid", "expected one of :low, :high, found :mid"),
    // axes
    ("x: f32[2][3]", "sum x, axes: [2]", "axis 2 is out of range for a tensor of rank 2"),
    ("x: f32[2][3]", "sum x, axes: [-3]", "axis -3 is out of range for a tensor of rank 2"),
    ("x: f32[2][3]", "reverse x, [1, -1]", "axis -1 is listed twice"),
    // literals
    ("", "constant 300  u8[2]", "literal 300 does not fit u8"),
    ("", "constant 2.5  s32", "literal 2.5 does not fit s32"),
    ("", "constant 1.0e39  f32", "literal 1e39 does not fit f32"),
    ("", "tensor [1, -129]  s8[2]", "literal -129 does not fit s8"),
    ("x: s32", "add x, 18446744073709551615", "literal 18446744073709551615 does not fit any integer type that can be combined with s32"),
    ("x: s32[2]", "pad x, 0.5, [{0, 0, 0}]", "literal 0.5 does not fit s32"),
    // element-wise
    ("a: f32[2][3], b: f32[3][2]", "add a, b", "incompatible shapes for 'add': f32[2][3] and f32[3][2] do not broadcast"),
    ("p: u8[4], a: f32[3]", "select p, a, 0.0", "incompatible shapes for 'select': u8[4] and f32[3] do not broadcast"),
    ("x: f32[2]", "bitwise_not x", "'bitwise_not' expects an integer operand, got f32[2]"),
    ("x: f64", "population_count x", "'population_count' expects an integer operand, got f64"),
    ("x: s32[2], y: f32[2]", "quotient x, y", "'quotient' expects integer operands, got s32[2] and f32[2]"),
    ("x: s32[2]", "right_shift x, 1.0", "'right_shift' expects integer operands, got s32[2] and f32"),
    // annotations and conversions
    ("x: f32[2]", "add x, x  f64[2]", "annotated type f64[2] differs from inferred type f32[2]"),
    ("x: f32[2]", "add x, x  f32[3]", "annotated type f32[3] differs from inferred type f32[2]"),
    ("x: f32[2]", "as_type x", "'as_type' needs a result type annotation (e.g. `r = as_type …  f32[2]`)"),
    ("x: f32[2]", "reshape x", "'reshape' needs a result type annotation (e.g. `r = reshape …  f32[2]`)"),
    ("", "iota nil", "'iota' needs a result type annotation (e.g. `r = iota …  f32[2]`)"),
    ("", "eye", "'eye' needs a result type annotation (e.g. `r = eye …  f32[2]`)"),
    ("", "constant 1", "'constant' needs a result type annotation (e.g. `r = constant …  f32[2]`)"),
    ("", "tensor [1]", "'tensor' needs a result type annotation (e.g. `r = tensor …  f32[2]`)"),
    ("x: f32[2]", "bitcast x", "'bitcast' needs a result type annotation (e.g. `r = bitcast …  f32[2]`)"),
    ("x: f32[2]", "reshape x  {f32[2]}", "'reshape' produces a tensor, not the tuple type {f32[2]}"),
    ("x: f32[2]", "as_type x  s32[3]", "'as_type' converts the dtype only: operand is f32[2], annotation is s32[3]"),
    ("x: f32[2]", "bitcast 1  s32", "'bitcast' expects a tensor name, found the integer 1"),
    ("x: f32[2]", "bitcast x  s32[1][2]", "'bitcast' keeps the shape: operand is f32[2], annotation is s32[1][2]"),
    ("x: f32[2]", "bitcast x  f64[2]", "'bitcast' from f32 to f64 changes the element width (32 vs 64 bits)"),
    ("x: f32[2]", "argmax x, axis: 0  f32", "'argmax' produces integer indices, not f32"),
    ("x: f32[2][3]", "argmax x, axis: 0  s64[2]", "annotated type s64[2] differs from inferred type s64[3]"),
    ("x: f32[2]", "argmin x, keep_axis: true", "'keep_axis: true' needs an axis (with `axis: nil` the result is a scalar)"),
    // creation
    ("x: f32", "constant x  f32", "'constant' expects a number, found 'x'"),
    ("", "tensor [[1, 2], [3]]  s32[2][2]", "tensor data does not match s32[2][2]: expected 2 elements at depth 1, found 1"),
    ("", "tensor [1, 2, 3]  s32[2]", "tensor data does not match s32[2]: expected 2 elements at depth 0, found 3"),
    ("", "tensor [[1], 2]  s32[2][1]", "tensor data does not match s32[2][1]: expected a list of 1 at depth 1, found the integer 2"),
    ("", "tensor [[1], [:a]]  s32[2][1]", "expected a number in the tensor data, found :a"),
    ("", "iota 2  s32[2][3]", "axis 2 is out of range for a tensor of rank 2"),
    ("", "eye  f32[3]", "'eye' needs a type of rank 2 or more, got f32[3]"),
    // shape ops
    ("x: f32[2][3]", "reshape x  s32[6]", "'reshape' keeps the dtype: operand is f32[2][3], annotation is s32[6]"),
    ("x: f32[2][3]", "reshape x  f32[4]", "cannot reshape f32[2][3] (6 elements) to f32[4] (4 elements)"),
    ("x: f32[1][3]", "squeeze x, [1]", "cannot squeeze axis 1 of f32[1][3]: its size is 3, not 1"),
    ("x: f32[3]", "broadcast x, {2, -3}, [1]", "dimension -3 is negative"),
    ("x: f32[2][3]", "broadcast x, {3}", "cannot broadcast f32[2][3] to the lower-rank shape f32[3]"),
    ("x: f32[3]", "broadcast x, {2, 3}, [0, 1]", "'broadcast' needs one axis per input axis: f32[3] has rank 1, got 2"),
    ("x: f32[3][1]", "broadcast x, {3, 3}, [1, 0]", "broadcast axes must be increasing"),
    ("x: f32[3]", "broadcast x, {2, 4}, [1]", "cannot broadcast f32[3] to f32[2][4]: input axis 0 has size 3 but output axis 1 has size 4"),
    ("x: f32[2][3]", "transpose x, [1]", "'transpose' needs a permutation of all 2 axes of f32[2][3], got 1"),
    ("x: f32[3]", "slice x, [0], [5]", "slice length 5 is larger than axis 0 of f32[3] (size 3)"),
    ("x: f32[3]", "slice x, [0], [-1]", "slice length -1 is negative"),
    ("x: f32[3]", "slice x, [0], [2], [0]", "slice stride 0 must be at least 1"),
    ("x: f32[3]", "slice x, [0], [2], [1], strides: [1]", "strides are given twice"),
    ("x: f32[3], i: s32[1]", "slice x, [i], [2]", "a start index must be a scalar, but 'i' is s32[1]"),
    ("x: f32[3][2]", "slice x, [0], [2, 2]", "'slice' needs 2 start indices for f32[3][2], got 1"),
    ("x: f32[3][2]", "slice x, [0, 0], [2]", "'slice' needs 2 lengths for f32[3][2], got 1"),
    ("x: f32[3][2]", "slice x, [0, 0], [2, 2], [1]", "'slice' needs 2 strides for f32[3][2], got 1"),
    ("x: f32[2], v: f32[2]", "pad x, v, [{0, 0, 0}]", "the pad value must be a scalar, got f32[2]"),
    ("x: f32[2], v: f64", "pad x, v, [{0, 0, 0}]", "pad value of type f64 would change the result type of f32[2]; convert it with as_type"),
    ("x: f32[2]", "pad x, 0.0, {0, 0, 0}", "expected a list of {low, high, interior} tuples, found a tuple"),
    ("x: f32[2]", "pad x, 0.0, [{0, 0, 0}, {0, 0, 0}]", "'pad' needs one {low, high, interior} per axis of f32[2], got 2"),
    ("x: f32[2]", "pad x, 0.0, [{0, 0}]", "expected {low, high, interior}"),
    ("x: f32[2]", "pad x, 0.0, [{0, 0, -1}]", "interior padding -1 is negative"),
    ("x: f32[2]", "pad x, 0.0, [{-3, 0, 0}]", "padding makes axis 0 of f32[2] negative (-1)"),
    ("x: f32[2]", "pad x, 0.0, [{0, 9223372036854775808, 0}]", "padding is too large"),
    ("x: f32[2]", "concatenate x, axis: 0", "'concatenate' expects a list of tensors, found 'x'"),
    ("x: f32[2]", "concatenate [], axis: 0", "'concatenate' needs at least one tensor"),
    ("x: f32", "concatenate [x, x]", "'concatenate' needs tensors of rank 1 or more; use 'stack' for scalars"),
    ("a: f32[2][3], b: f32[2][4]", "concatenate [a, b], axis: 0", "cannot concatenate f32[2][3] and f32[2][4] along axis 0: the other axes must match"),
    ("a: f32[2][3], b: f32[3]", "concatenate [a, b], axis: 1", "cannot concatenate f32[2][3] and f32[3] along axis 1: the other axes must match"),
    ("a: f32[2], b: f32[3]", "stack [a, b]", "cannot stack f32[2] and f32[3]: shapes must be equal"),
    ("a: f32[2]", "stack [a], axis: 2", "axis 2 is out of range for a tensor of rank 2"),
    // dot
    ("a: f32[2][3], b: f32[3][4]", "dot a, [1], [], b, [0, 1], []", "'dot' pairs contract axes by position, but 'a' lists 1 and 'b' lists 2"),
    ("a: f32[2][3], b: f32[2][3]", "dot a, [1], [0], b, [1], []", "'dot' needs the same number of batch axes on both sides, got 1 and 0"),
    ("a: f32[2][3], b: f32[3][2]", "dot a, [0], [1], b, [0], [1]", "batch axes must be the leading axes 0..n-1, in order"),
    ("a: f32[2][2], b: f32[2][2]", "dot a, [0], [0], b, [1], [0]", "axis 0 cannot be both a contract and a batch axis"),
    ("a: f32[2][3], b: f32[4][5]", "dot a, [1], [], b, [0], []", "contract axis pair 0: axis 1 of 'a' (f32[2][3]) has size 3 but axis 0 of 'b' (f32[4][5]) has size 4"),
    ("a: f32[2][3], b: f32[4][3]", "dot a, [1], [0], b, [1], [0]", "batch axis 0 has size 2 in 'a' (f32[2][3]) but 4 in 'b' (f32[4][3])"),
    // sizes
    ("x: f32[65536][65536]", "dot x, [], [], x, [], []", "type f32[65536][65536][65536][65536] is too large"),
    ("x: f32[3]", "broadcast x, {4294967296, 4294967296, 3}", "type f32[4294967296][4294967296][3] is too large"),
    // tuples
    ("x: f32", "elem x, 0", "'elem' expects a tuple, but 'x' has type f32"),
    ("x: f32", "elem 1, 0", "'elem' expects the name of a tuple value"),
];

#[test]
fn statement_errors() {
    let mut wrong = Vec::new();
    for (params, stmt, expected) in STATEMENT_ERRORS {
        let src = format!("def f({params}) {{\n  r = {stmt}\n  return r\n}}\n");
        let got: Vec<String> = match compile(&file(&src)) {
            Ok(_) => vec!["<checked fine>".into()],
            Err(d) => d.items.into_iter().map(|d| d.message).collect(),
        };
        if got != [expected.to_string()] {
            wrong.push(format!("`{stmt}`:\n   expected {expected:?}\n   got      {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn function_level_errors() {
    assert_eq!(
        err("def f(x: f32) {\n  x = negate x\n  return x\n}\n"),
        "'x' is already defined (every statement binds a fresh name)"
    );
    assert_eq!(
        err("def f(x: f32) {\n  a = negate x\n  a = exp x\n  return a\n}\n"),
        "'a' is already defined (every statement binds a fresh name)"
    );
    assert_eq!(
        err("def f(x: f32[2]) -> f32[3] {\n  return x\n}\n"),
        "function 'f' is declared to return f32[3] but returns f32[2]"
    );
    assert_eq!(err("def f(x: f32[2]) {\n  return {}\n}\n"), "a function must return at least one value");
    assert_eq!(err("def f(x: f32[2]) {\n  return [x]\n}\n"), "expected a name or a number to return");
    assert_eq!(err("def f(x: f32[2]) {\n  return y\n}\n"), "unknown name 'y'");
    assert_eq!(err("def f(x: {f32, f32}) {\n  return 1\n}\n"), "parameter 'x' must have a tensor type, not a tuple");
    assert_eq!(
        err("def f(x: f32[4294967296][4294967296][4294967296]) {\n  return 1\n}\n"),
        "type f32[4294967296][4294967296][4294967296] is too large"
    );
    assert_eq!(err("def f() {\n  return 1\n}\ndef f() {\n  return 2\n}\n"), "function 'f' is defined twice");
}

#[test]
fn call_errors() {
    let g = "def g(x: f32[3]) -> f32[3] {\n  return x\n}\n";
    assert_eq!(err(&format!("{g}def f(x: f32[3]) {{\n  r = call h, x\n  return r\n}}\n")), "unknown function 'h'");
    assert_eq!(
        err(&format!("{g}def f(x: f32[3]) {{\n  r = call g, x, x\n  return r\n}}\n")),
        "function 'g' expects 1 argument, got 2"
    );
    assert_eq!(
        err(&format!("{g}def f(x: f64[3]) {{\n  r = call g, x\n  return r\n}}\n")),
        "argument 1 of 'g' expects f32[3], got f64[3]"
    );
    assert_eq!(
        err(&format!("{g}def f(x: f64[3]) {{\n  r = call 1, x\n  return r\n}}\n")),
        "expected the name of a function to call"
    );
    assert_eq!(
        err("def f(x: f32) {\n  r = call f, x\n  return r\n}\n"),
        "function 'f' calls itself (recursion is not allowed)"
    );
    assert_eq!(
        err("def f(x: f32) {\n  r = call g, x\n  return r\n}\ndef g(x: f32) {\n  r = call f, x\n  return r\n}\n"),
        "call of 'f' from 'g' is recursive (recursion is not allowed)"
    );
    assert_eq!(
        err("def p(x: f32) {\n  return {x, x}\n}\ndef f(x: f32) {\n  t = call p, x\n  r = elem t, 2\n  return r\n}\n"),
        "index 2 is out of range for a tuple of 2 elements"
    );
    assert_eq!(
        err("def p(x: f32) {\n  return {x, x}\n}\ndef f(x: f32) {\n  t = call p, x\n  r = exp t\n  return r\n}\n"),
        "'t' is a tuple {f32, f32}; use `elem` to take one element"
    );
    // A callee with errors does not make its callers report more.
    assert_eq!(
        errs("def g(x: f32) {\n  y = bogus x\n  return y\n}\ndef f(x: f32) {\n  r = call g, x\n  return r\n}\n"),
        vec!["unknown operation 'bogus'"]
    );
}

#[test]
fn several_errors_are_reported_and_poison_is_quiet() {
    let src = "def f(x: f32[2]) {\n  a = bogus x\n  b = add a, 1.0\n  c = add x, zz\n  d = sum x, axes: [5]\n  return b\n}\n";
    assert_eq!(
        errs(src),
        vec!["unknown operation 'bogus'", "unknown name 'zz'", "axis 5 is out of range for a tensor of rank 1"]
    );
    // Errors in two functions are both reported.
    let src = "def f(x: f32) {\n  a = bogus x\n  return a\n}\ndef g(x: f32) {\n  a = add x, q\n  return a\n}\n";
    assert_eq!(errs(src), vec!["unknown operation 'bogus'", "unknown name 'q'"]);
}

#[test]
fn typo_hints() {
    let notes = |src: &str| -> Vec<String> {
        compile(&file(src)).expect_err("must fail").items.into_iter().flat_map(|d| d.notes).collect()
    };
    assert_eq!(notes("def f(x: f32) {\n  y = sqrtt x\n  return y\n}\n"), vec!["did you mean 'sqrt'?"]);
    assert_eq!(notes("def f(x: f32) {\n  y = ad x, x\n  return y\n}\n"), vec!["did you mean 'add'?"]);
    assert_eq!(notes("def f(xs: f32) {\n  y = exp xz\n  return y\n}\n"), vec!["did you mean 'xs'?"]);
    assert!(notes("def f(x: f32) {\n  y = frobnicate x\n  return y\n}\n").is_empty());
}

#[test]
fn rendered_errors_point_at_the_source() {
    let cases: &[(&str, &str)] = &[
        ("def f(x: f32) {\n  y = frob x\n  return y\n}\n", "t.nxir:2:7: error: unknown operation 'frob'"),
        ("def f(x: f32) {\n  y = add x, zz\n  return y\n}\n", "t.nxir:2:14: error: unknown name 'zz'"),
        ("def f(x: f32[2]) {\n  y = sum x, axes: [3]\n  return y\n}\n", "t.nxir:2:21: error: axis 3 is out of range for a tensor of rank 1"),
        (
            "def f(x: f32[2]) {\n  y = add x, x  f64[2]\n  return y\n}\n",
            "t.nxir:2:17: error: annotated type f64[2] differs from inferred type f32[2]",
        ),
        (
            "def f(a: f32[2][3], b: f32[3][2]) {\n  y = add a, b\n  return y\n}\n",
            "t.nxir:2:7: error: incompatible shapes for 'add': f32[2][3] and f32[3][2] do not broadcast",
        ),
        ("def f() {\n  y = constant 300  u8\n  return y\n}\n", "t.nxir:2:16: error: literal 300 does not fit u8"),
        ("def f(x: f32) {\n  y = real x\n  return y\n}\n", "t.nxir:2:7: error: unsupported operation 'real' (not yet implemented)"),
    ];
    for (src, first_line) in cases {
        let d = compile(&file(src)).expect_err("must fail");
        let text = render(&d);
        assert_eq!(text.lines().next(), Some(*first_line), "rendered:\n{text}");
        assert!(text.contains('^'), "caret missing:\n{text}");
    }
}

//! Helpers shared by the checker and printer tests: compile a snippet, look
//! up a value's type, collect error messages, and assert that the canonical
//! printout re-checks to the same graph.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use tensorc_ir::check::compile;
use tensorc_ir::graph::Module;
use tensorc_ir::printer::print_module;
use tensorc_ir::span::{SourceFile, Span};

pub fn file(src: &str) -> SourceFile {
    SourceFile::new("t.nxir", src)
}

/// Check `src`, assert the printer round-trip, return the module.
pub fn ok(src: &str) -> Module {
    let m = match compile(&file(src)) {
        Ok(m) => m,
        Err(d) => panic!("expected {src:?} to check, got {:#?}", d.items.iter().map(|d| &d.message).collect::<Vec<_>>()),
    };
    assert_roundtrip(&m);
    m
}

/// Error messages of a program that must fail.
pub fn errs(src: &str) -> Vec<String> {
    match compile(&file(src)) {
        Ok(m) => panic!("expected {src:?} to fail, but it checked:\n{}", print_module(&m)),
        Err(d) => d.items.into_iter().map(|d| d.message).collect(),
    }
}

/// The single error message of a program that must fail with exactly one.
pub fn err(src: &str) -> String {
    let e = errs(src);
    assert_eq!(e.len(), 1, "expected one error for {src:?}, got {e:#?}");
    e.into_iter().next().unwrap()
}

/// Type of the value named `name` (first found, in function order), as `f32[2][3]`.
pub fn ty(src: &str, name: &str) -> String {
    let m = ok(src);
    let n = m
        .functions
        .iter()
        .flat_map(|f| f.nodes.iter())
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no value {name}"));
    n.ty.to_string()
}

/// Type of `r` in `def f(<params>) { r = <stmt>; return r }`.
pub fn infer(params: &str, stmt: &str) -> String {
    ty(&format!("def f({params}) {{\n  r = {stmt}\n  return r\n}}\n"), "r")
}

/// The one error of `def f(<params>) { r = <stmt>; return r }`.
pub fn infer_err(params: &str, stmt: &str) -> String {
    err(&format!("def f({params}) {{\n  r = {stmt}\n  return r\n}}\n"))
}

pub fn strip_spans(m: &Module) -> Module {
    let mut m = m.clone();
    for f in &mut m.functions {
        f.span = Span::default();
        for n in &mut f.nodes {
            n.span = Span::default();
        }
    }
    m
}

/// The canonical text re-checks to the same graph (spans aside) and is a fixpoint.
pub fn assert_roundtrip(m: &Module) {
    let text = print_module(m);
    let again = match compile(&file(&text)) {
        Ok(again) => again,
        Err(d) => panic!(
            "canonical form does not re-check:\n{text}\n{:#?}",
            d.items.iter().map(|d| &d.message).collect::<Vec<_>>()
        ),
    };
    // Debug text, not ==, so that NaN literals compare equal to themselves.
    assert_eq!(format!("{:?}", strip_spans(m)), format!("{:?}", strip_spans(&again)), "round trip changed the graph:\n{text}");
    assert_eq!(print_module(&again), text);
}

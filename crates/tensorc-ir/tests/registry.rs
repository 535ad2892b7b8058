//! The op registry `dialects/nxir/ops.tsv` and the checker must agree.
//!
//! The registry is the one list of operations that docs and planning read; this
//! test keeps it honest by asking the checker about every name, in both
//! directions, instead of trusting either side.

use tensorc_ir::SourceFile;
use tensorc_ir::check::{compile, known_op_names};
use tensorc_ir::render::render;

struct Entry {
    op: String,
    status: String,
}

fn registry() -> Vec<Entry> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dialects/nxir/ops.tsv");
    let text = std::fs::read_to_string(path).expect("dialects/nxir/ops.tsv exists");
    let mut rows = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    assert_eq!(rows.next(), Some("op\tfamily\tspec\tstatus"), "header row");
    rows.map(|l| {
        let cols: Vec<&str> = l.split('\t').collect();
        assert_eq!(cols.len(), 4, "four tab-separated columns in {l:?}");
        assert!(matches!(cols[3], "implemented" | "unsupported"), "status of {l:?}");
        Entry { op: cols[0].to_owned(), status: cols[3].to_owned() }
    })
    .collect()
}

/// What the checker says about `y = OP x` (operands deliberately wrong: only
/// the classification of the name matters).
fn diagnose(op: &str) -> String {
    let src = format!("def f(x: f32[2]) {{\n  y = {op} x\n  return y\n}}\n");
    match compile(&SourceFile::new("probe.nxir", src)) {
        Ok(_) => String::new(),
        Err(d) => render(&d),
    }
}

#[test]
fn registry_lists_each_op_once() {
    let entries = registry();
    let mut names: Vec<&str> = entries.iter().map(|e| e.op.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate op in the registry");
    assert!(before > 100, "the registry covers the whole of spec section 4");
}

#[test]
fn implemented_ops_are_accepted_by_name() {
    for e in registry().iter().filter(|e| e.status == "implemented") {
        let d = diagnose(&e.op);
        assert!(
            !d.contains("unknown operation") && !d.contains("unsupported operation"),
            "registry says '{}' is implemented, checker says:\n{d}",
            e.op
        );
    }
}

#[test]
fn unsupported_ops_give_the_clean_diagnostic() {
    for e in registry().iter().filter(|e| e.status == "unsupported") {
        let d = diagnose(&e.op);
        let want = format!("probe.nxir:2:7: error: unsupported operation '{}' (not yet implemented)", e.op);
        assert!(d.contains(&want), "expected {want:?} for '{}', got:\n{d}", e.op);
    }
}

#[test]
fn every_op_the_checker_knows_is_registered() {
    let entries = registry();
    for name in known_op_names() {
        assert!(entries.iter().any(|e| e.op == name), "'{name}' is known to the checker but missing from ops.tsv");
    }
    for e in &entries {
        assert!(known_op_names().contains(&e.op.as_str()), "'{}' is registered but unknown to the checker", e.op);
    }
}

#[test]
fn a_name_outside_the_registry_is_unknown() {
    assert!(diagnose("frobnicate").contains("probe.nxir:2:7: error: unknown operation 'frobnicate'"));
}

//! Passes written in Rust (melior external passes), usable by name in
//! tensorc's pipeline strings.
//!
//! MLIR's C API cannot register a pass under a name the pipeline parser
//! knows, so `tensorc-outline-parallel` in a pipeline string would not parse.
//! tensorc keeps its pipelines as strings anyway (one text for `mlir-opt`
//! and for the in-process run); this module is the bridge: a pass crate
//! registers a constructor under a name, and `Mlir::run_pipeline` splits a
//! pipeline at the top-level elements with such names, running the text
//! before, the Rust pass, then the text after on the same module.

use melior::pass::Pass;
use std::sync::Mutex;

/// A constructor of a fresh pass object (a `PassManager` takes ownership).
pub type PassConstructor = fn() -> Pass;

static REGISTRY: Mutex<Vec<(String, PassConstructor)>> = Mutex::new(Vec::new());

/// Makes `name` usable as a top-level element of pipelines given to
/// `Mlir::run_pipeline`. Registering a name again replaces its constructor.
pub fn register_external_pass(name: &str, create: PassConstructor) {
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.retain(|(n, _)| n != name);
    r.push((name.to_owned(), create));
}

/// The constructor registered under `name`.
pub(crate) fn lookup(name: &str) -> Option<PassConstructor> {
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
}

/// One piece of a pipeline run in parts.
#[derive(Debug)]
pub(crate) enum Part {
    /// Pipeline elements, comma-separated, to nest in `builtin.module(...)`.
    Text(String),
    /// A registered Rust pass.
    External(PassConstructor),
}

/// Splits the elements of a module-level pipeline (without the
/// `builtin.module(` wrapper) into text runs and registered Rust passes.
/// Commas inside `{...}` options or `(...)` nested pipelines do not split.
pub(crate) fn split(elements: &str) -> Vec<Part> {
    // Top-level elements first.
    let mut items: Vec<&str> = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, b) in elements.bytes().enumerate() {
        match b {
            b'{' | b'(' => depth += 1,
            b'}' | b')' => depth -= 1,
            b',' if depth == 0 => {
                items.push(&elements[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&elements[start..]);
    // Then runs of text between registered passes.
    let mut parts = Vec::new();
    let mut text: Vec<&str> = Vec::new();
    for item in items.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
        match lookup(item) {
            Some(c) => {
                if !text.is_empty() {
                    parts.push(Part::Text(text.join(",")));
                    text.clear();
                }
                parts.push(Part::External(c));
            }
            None => text.push(item),
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text.join(",")));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dummy() -> Pass {
        melior::pass::transform::create_canonicalizer()
    }

    #[test]
    fn splits_at_registered_names_only_at_top_level() {
        register_external_pass("tensorc-test-split", dummy);
        let parts = split("a{x=1,y=2},func.func(b,c), tensorc-test-split ,d,e");
        let shape: Vec<String> = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::External(_) => "<ext>".into(),
            })
            .collect();
        assert_eq!(shape, ["a{x=1,y=2},func.func(b,c)", "<ext>", "d,e"]);
        // Unregistered names stay text; a pipeline without any is one part.
        let parts = split("a,tensorc-not-registered");
        assert!(matches!(&parts[..], [Part::Text(t)] if t == "a,tensorc-not-registered"));
    }
}

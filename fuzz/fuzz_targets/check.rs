//! Fuzz target `check`: parse + type-check UTF-8 text.
//!
//! Properties: no panic; a rejected program carries at least one error that
//! renders with its location; an accepted one survives the printer round
//! trip (canonical text → parse → check gives the same graph, and printing
//! that graph gives the same text), checked by the same helper the checker's
//! own tests use.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorc_ir::{SourceFile, check, render};

#[path = "../../crates/tensorc-ir/tests/check_support/mod.rs"]
mod check_support;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match check::compile(&SourceFile::new("fuzz.nxir", text)) {
        Ok(module) => check_support::assert_roundtrip(&module),
        Err(diags) => {
            assert!(diags.has_errors(), "rejected without an error: {:?}", diags.items);
            let shown = render::render(&diags);
            assert!(shown.starts_with("fuzz.nxir:"), "a diagnostic without a location:\n{shown}");
        }
    }
});

//! Fuzz target `parse`: the lexer and parser on arbitrary bytes.
//!
//! Bytes that are not UTF-8 are decoded lossily (U+FFFD), as a file would be
//! after the CLI's own UTF-8 check, so every input reaches the lexer. The
//! property: no panic, and the parser answers with a program or an error
//! diagnostic, which renders with its `file:line:col:` location.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorc_ir::{Diagnostics, Severity, SourceFile, parser, render};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = SourceFile::new("fuzz.nxir", text.as_ref());
    let (program, items) = parser::parse(&file);
    let has_error = items.iter().any(|d| d.severity == Severity::Error);
    assert!(program.is_some() || has_error, "the parser returned neither a program nor an error");
    if !items.is_empty() {
        let shown = render::render(&Diagnostics { file, items });
        assert!(shown.starts_with("fuzz.nxir:"), "a diagnostic without a location:\n{shown}");
    }
});

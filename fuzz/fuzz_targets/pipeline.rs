//! Fuzz target `pipeline`: every program that type-checks is lowered to MLIR
//! text, parsed and verified by MLIR, and run through tensorc's optimization
//! pipeline (the `opt` stage of `tensorc emit`).
//!
//! Property (ARCHITECTURE.md's invariant): a checked program never makes the
//! later stages fail except with an "unsupported" answer: no panic, no abort
//! inside MLIR, no internal (tensorc-bug) error and no late program error.
//! Texts that do not check are skipped quickly; the `check` target covers them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tensorc::{Error, Stage};
use tensorc_ir::{SourceFile, check};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if check::compile(&SourceFile::new("fuzz.nxir", text)).is_err() {
        return;
    }
    match tensorc::emit("fuzz.nxir", text, Stage::Opt) {
        Ok(_) | Err(Error::Unsupported(_)) => {}
        Err(e) => panic!("a checked program failed after the checker:\n{}", e.render()),
    }
});

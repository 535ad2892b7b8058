//! Fuzz target `pipeline`: every program that type-checks is lowered to MLIR
//! text, parsed and verified by MLIR, and run through tensorc's optimization
//! pipeline and the CPU lowering to the LLVM dialect (the `llvm-dialect`
//! stage of `tensorc emit`; each stage's output is verified). Going past
//! `opt` matters: aborts inside MLIR's lowering passes are crashes too.
//!
//! Property (ARCHITECTURE.md's invariant): a checked program never makes the
//! later stages fail except with an "unsupported" answer: no panic, no abort
//! inside MLIR, no internal (tensorc-bug) error and no late program error.
//! Texts that do not check are skipped quickly; the `check` target covers them.
//!
//! Unlike the other targets this one has its own `main`: Debian's MLIR
//! archives, which it links, include `mlir-opt`'s `main` (in
//! `libMLIRMlirOptMain.a`), and the linker took that one instead of
//! libFuzzer's, so the binary ran as `mlir-opt`. A `main` defined here wins
//! over both archives and enters libFuzzer through `LLVMFuzzerRunDriver`.

use std::ffi::{CString, c_char, c_int};

use libfuzzer_sys::fuzz_target;
use tensorc::{Error, Stage};
use tensorc_ir::{SourceFile, check};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if check::compile(&SourceFile::new("fuzz.nxir", text)).is_err() {
        return;
    }
    match tensorc::emit("fuzz.nxir", text, Stage::LlvmDialect) {
        Ok(_) | Err(Error::Unsupported(_)) => {}
        Err(e) => panic!("a checked program failed after the checker:\n{}", e.render()),
    }
});

unsafe extern "C" {
    /// libFuzzer's entry point for programs with their own `main`.
    fn LLVMFuzzerRunDriver(
        argc: *mut c_int,
        argv: *mut *mut *mut c_char,
        callback: unsafe extern "C" fn(*const u8, usize) -> c_int,
    ) -> c_int;
    /// Defined by `libfuzzer-sys`; calls the `fuzz_target!` body above.
    fn LLVMFuzzerTestOneInput(data: *const u8, size: usize) -> c_int;
}

fn main() {
    // Arguments come from the OS as C strings, so they contain no NUL byte.
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).expect("no NUL in an argument"))
        .collect();
    let mut ptrs: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    ptrs.push(std::ptr::null_mut());
    let mut argc = args.len() as c_int;
    let mut argv = ptrs.as_mut_ptr();
    // SAFETY: argc/argv describe NUL-terminated strings that outlive the
    // call (libFuzzer may permute the pointer array, not the strings), and
    // the callback has the signature libFuzzer expects.
    let code = unsafe { LLVMFuzzerRunDriver(&mut argc, &mut argv, LLVMFuzzerTestOneInput) };
    std::process::exit(code);
}

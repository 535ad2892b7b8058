//! `tensorc-noalias-args`: the buffers a public function is called with
//! are `noalias` pointers in LLVM.
//!
//! Why: without it LLVM must assume a result buffer may overlap an input,
//! so it vectorizes a loop that reads one and writes the other only behind
//! a run-time overlap check, and gives up when it deems the check too
//! dear: `reverse x, [0, 1]` of a 2000×1000 matrix stayed a scalar copy
//! (0.28 ms on one thread, XLA 0.15) while `reverse x, [1]`, the same inner
//! loop, was vectorized behind a check. The C ABI already requires that
//! an output overlap neither an input nor another output (`docs/c-abi.md`)
//! and the Rust API's borrows ensure it; inputs are only read. LLVM's
//! `noalias` only constrains memory written during the call, so this is
//! what the contract says. MLIR's `func-to-llvm` drops a memref
//! argument's `llvm.noalias` unless memrefs are bare pointers, hence a
//! pass on the LLVM dialect.
//!
//! What it marks: in every `llvm.func` with `llvm.emit_c_interface` (the
//! entry points; not their `_mlir_ciface_` wrappers, whose arguments point
//! to descriptors), the aligned pointer of each memref descriptor — the
//! second of each pair of consecutive pointer arguments (a descriptor is
//! allocated pointer, aligned pointer, offset, sizes, strides; every
//! argument of an entry point is a buffer). Loads and stores go through
//! the aligned pointer; the allocated one is never dereferenced. It runs
//! right after `convert-to-llvm`.

use crate::external_pass::{PassId, module_pass};
use crate::raw::*;
use melior::dialect::DialectHandle;
use melior::pass::Pass;
use mlir_sys::*;

/// The pass's name in tensorc's pipeline strings.
pub const NAME: &str = crate::pipeline::NOALIAS_ARGS;

static PASS_ID: PassId = PassId::new();

/// Creates the pass (anchored on `builtin.module`).
pub fn create() -> Pass {
    module_pass(
        &PASS_ID,
        NAME,
        "Mark the aligned buffer pointers of entry points noalias",
        &[DialectHandle::llvm()],
        |module| {
            // SAFETY: `module_pass` passes the live module the pass runs on.
            unsafe { noalias_args(module) };
            true
        },
    )
}

/// The positions of the aligned pointers among arguments that are
/// pointers (`true`) or not: the second of each pair of consecutive
/// pointers, pairs taken from the left.
pub fn aligned_pointers(pointers: &[bool]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < pointers.len() {
        if pointers[i] && pointers.get(i + 1) == Some(&true) {
            found.push(i + 1);
            i += 2;
        } else {
            i += 1;
        }
    }
    found
}

/// Marks the entry points of `module` (module docs); returns how many
/// arguments it marked.
///
/// # Safety
/// `module` must be a live operation.
pub unsafe fn noalias_args(module: MlirOperation) -> usize {
    unsafe {
        let mut count = 0;
        for f in ops_named(module, "llvm.func") {
            let name = string_attr(f, "sym_name").unwrap_or_default();
            if !has_attr(f, "llvm.emit_c_interface") || name.starts_with("_mlir_ciface_") {
                continue;
            }
            let region = mlirOperationGetRegion(f, 0);
            let block = mlirRegionGetFirstBlock(region);
            if block.ptr.is_null() {
                continue;
            }
            let n = mlirBlockGetNumArguments(block);
            let pointers: Vec<bool> =
                (0..n).map(|i| mlirTypeIsALLVMPointerType(mlirValueGetType(mlirBlockGetArgument(block, i)))).collect();
            let marked = aligned_pointers(&pointers);
            if marked.is_empty() {
                continue;
            }
            let old = mlirOperationGetAttributeByName(f, string_ref("arg_attrs"));
            let mut dicts = Vec::new();
            for i in 0..n {
                let existing = if old.ptr.is_null() || mlirArrayAttrGetNumElements(old) != n {
                    "{}".to_string()
                } else {
                    print_attr(mlirArrayAttrGetElement(old, i))
                };
                let inner = existing.trim().trim_start_matches('{').trim_end_matches('}').trim().to_string();
                dicts.push(if marked.contains(&(i as usize)) && !inner.contains("llvm.noalias") {
                    count += 1;
                    if inner.is_empty() { "{llvm.noalias}".to_string() } else { format!("{{llvm.noalias, {inner}}}") }
                } else {
                    existing
                });
            }
            let ctx = mlirOperationGetContext(f);
            let attrs = attr(ctx, &format!("[{}]", dicts.join(", ")));
            if !attrs.ptr.is_null() {
                mlirOperationSetAttributeByName(f, string_ref("arg_attrs"), attrs);
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::aligned_pointers;

    #[test]
    fn the_second_pointer_of_each_descriptor() {
        // memref<2x3xf32>, memref<f32>, memref<4xi8>: ptr ptr i64 i64×4,
        // ptr ptr i64, ptr ptr i64 i64 i64.
        let p = [true, true, false, false, false, false, false, true, true, false, true, true, false, false, false];
        assert_eq!(aligned_pointers(&p), [1, 8, 11]);
        assert_eq!(aligned_pointers(&[true, false, true]), Vec::<usize>::new());
        assert_eq!(aligned_pointers(&[]), Vec::<usize>::new());
    }
}

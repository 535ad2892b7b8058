//! MLIR (LLVM dialect) to LLVM IR text, for `emit --stage llvm-ir`.
//!
//! mlir-sys gives the translation entry point; printing and disposing the
//! resulting `llvm::Module` needs four functions of LLVM's own C API, declared
//! here because LLVM is linked statically into every MLIR binary anyway (no
//! extra crate such as inkwell is needed just to print).

use melior::ir::Module;
use std::ffi::{CStr, c_char, c_void};

unsafe extern "C" {
    fn LLVMContextCreate() -> *mut c_void;
    fn LLVMContextDispose(context: *mut c_void);
    fn LLVMPrintModuleToString(module: *mut c_void) -> *mut c_char;
    fn LLVMDisposeMessage(message: *mut c_char);
    fn LLVMDisposeModule(module: *mut c_void);
}

/// Translates and prints; `None` when translation failed (MLIR reports why
/// through the context's diagnostic handler).
pub(crate) fn translate(module: &Module<'_>) -> Option<String> {
    // SAFETY: every object created here is disposed here, module before context.
    unsafe {
        let context = LLVMContextCreate();
        let llvm_module = mlir_sys::mlirTranslateModuleToLLVMIR(
            module.as_operation().to_raw(),
            context as mlir_sys::LLVMContextRef,
        );
        let text = if llvm_module.is_null() {
            None
        } else {
            let s = LLVMPrintModuleToString(llvm_module as *mut c_void);
            let out = CStr::from_ptr(s).to_string_lossy().into_owned();
            LLVMDisposeMessage(s);
            LLVMDisposeModule(llvm_module as *mut c_void);
            Some(out)
        };
        LLVMContextDispose(context);
        text
    }
}

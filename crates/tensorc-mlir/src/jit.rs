//! The JIT engine: MLIR's `ExecutionEngine` through the raw C API.
//!
//! melior's wrapper returns an engine even when creation failed (a null
//! handle that later crashes in `lookup`) and has no packed lookup, so this
//! small owner calls mlir-sys directly and turns both failures into `None`.

use melior::StringRef;
use melior::ir::Module;
use std::ffi::c_void;

/// MLIR's packed calling convention: one array of pointers, entry i pointing
/// at argument i (for a `llvm.emit_c_interface` function, argument i is itself
/// a pointer to a memref descriptor).
pub type PackedFn = unsafe extern "C" fn(*mut *mut c_void);

/// A compiled module. Function pointers obtained from it are valid while it lives.
pub struct JitEngine {
    raw: mlir_sys::MlirExecutionEngine,
}

// SAFETY: after creation the engine owns its own LLVM context and code; it keeps
// no reference to the MLIR context, and looking symbols up is internally
// synchronized by ORC. Calling the generated code is the caller's business.
unsafe impl Send for JitEngine {}
unsafe impl Sync for JitEngine {}

impl JitEngine {
    /// Compiles `module` (LLVM dialect only) for the host CPU. `None` when MLIR
    /// could not translate or compile it (details arrive as diagnostics).
    pub(crate) fn create(module: &Module<'_>, opt_level: u32) -> Option<JitEngine> {
        crate::llvm_ir::set_llvm_options();
        // SAFETY: the module is valid for the call; no shared libraries are passed,
        // so the C-string paths the C API would read are never touched.
        let raw = unsafe {
            mlir_sys::mlirExecutionEngineCreate(
                module.to_raw(),
                opt_level.min(3) as i32,
                0,
                std::ptr::null(),
                false,
                false,
            )
        };
        (!raw.ptr.is_null()).then_some(JitEngine { raw })
    }

    /// The packed entry point of a public `func.func @name` that has
    /// `llvm.emit_c_interface` (that is, the wrapper of `_mlir_ciface_<name>`).
    pub fn lookup_c_interface(&self, name: &str) -> Option<PackedFn> {
        let symbol = format!("_mlir_ciface_{name}");
        // SAFETY: valid engine; the string is passed with its length.
        let p = unsafe {
            mlir_sys::mlirExecutionEngineLookupPacked(self.raw, StringRef::new(&symbol).to_raw())
        };
        // SAFETY: a non-null packed symbol is a function with exactly this signature.
        (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, PackedFn>(p) })
    }

    /// Makes `address` visible to generated code under `name` (runtime helpers
    /// the process does not export). Must happen before the first lookup.
    ///
    /// # Safety
    /// `address` must be a function with the signature the generated code
    /// expects for `name`, valid for the engine's lifetime.
    pub unsafe fn register_symbol(&self, name: &str, address: *mut c_void) {
        // SAFETY: valid engine; the string is passed with its length.
        unsafe {
            mlir_sys::mlirExecutionEngineRegisterSymbol(
                self.raw,
                StringRef::new(name).to_raw(),
                address,
            )
        }
    }

    /// A raw symbol address (null when absent).
    pub fn lookup(&self, symbol: &str) -> *mut c_void {
        // SAFETY: valid engine; the string is passed with its length.
        unsafe { mlir_sys::mlirExecutionEngineLookup(self.raw, StringRef::new(symbol).to_raw()) }
    }
}

impl Drop for JitEngine {
    fn drop(&mut self) {
        // SAFETY: created by mlirExecutionEngineCreate and destroyed once.
        unsafe { mlir_sys::mlirExecutionEngineDestroy(self.raw) }
    }
}

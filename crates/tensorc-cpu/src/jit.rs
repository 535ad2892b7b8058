//! In-process compilation and calls: lowered MLIR text in, callable functions out.
//!
//! One `CpuModule` holds one JIT engine for the whole `.nxir` file (or the
//! shared library the compile cache loaded instead, `cache.rs`), plus the
//! signature of every function taken from the typed graph, so that a call can
//! check its arguments before generated code ever sees a pointer.

use crate::abi::{check_inputs, check_outputs, descriptor};
use crate::{CpuError, Pipelines, Upto, lower};
use std::ffi::c_void;
use tensorc_ir::{Module, Tensor, TensorType};
use tensorc_mlir::{JitEngine, Mlir, PackedFn};

/// LLVM optimization level for JIT code.
const OPT_LEVEL: u32 = 3;

/// A compiled `.nxir` module ready to call.
pub struct CpuModule {
    functions: Vec<CpuFunction>,
    // Last: the function pointers above are only valid while the code lives.
    _code: Code,
}

/// What owns the machine code: a JIT engine, or nothing for a shared library
/// loaded from the compile cache, which stays loaded until the process exits
/// (`cache.rs` says why).
pub(crate) enum Code {
    Jit(#[allow(dead_code, reason = "held only to keep the code alive")] JitEngine),
    Library,
}

/// How a function is entered.
#[derive(Clone, Copy)]
pub(crate) enum Entry {
    /// The JIT's packed `_mlir_<name>`: pointers to memref descriptor pointers.
    Packed(PackedFn),
    /// A cached library's `void f(void **data)`: one data pointer per input,
    /// then per result, forwarded to the artifact's `tensorc_<name>` (c-abi.md).
    /// The library carries its own thread pool; `set_threads` is its
    /// `tensorc_set_num_threads`, given the process's setting before each call.
    Pointers {
        call: unsafe extern "C" fn(*mut *mut c_void),
        set_threads: Option<unsafe extern "C" fn(std::ffi::c_int)>,
    },
}

/// One compiled `def`.
pub struct CpuFunction {
    name: String,
    params: Vec<(String, TensorType)>,
    results: Vec<TensorType>,
    entry: Entry,
}

impl CpuModule {
    /// Compiles the frontend's MLIR for `module` (the typed graph it was lowered
    /// from gives each function's signature) through `pipelines` to native code.
    pub fn compile(
        module: &Module,
        mlir_text: &str,
        pipelines: &Pipelines,
    ) -> Result<CpuModule, CpuError> {
        // The MLIR context is only needed until the engine exists: the engine
        // owns its own LLVM context and code, so the context is dropped here.
        let mlir = Mlir::new();
        // The JIT compiles for the host CPU with all its features.
        let pipelines = pipelines.for_target(&tensorc_mlir::CodegenTarget::default());
        let lowered = lower(&mlir, mlir_text, &pipelines, Upto::LlvmDialect)?;
        let missing = crate::runtime::unresolved(&lowered.external_functions());
        if !missing.is_empty() {
            return Err(CpuError::MissingSymbols(missing));
        }
        let engine = mlir.jit(&lowered, OPT_LEVEL, "jit")?;
        for (name, address) in crate::runtime::symbols() {
            // SAFETY: each runtime function has the C signature MLIR's lowering
            // calls it with, and is a static function that outlives the engine.
            unsafe { engine.register_symbol(name, address) };
        }
        let mut functions = Vec::with_capacity(module.functions.len());
        for f in &module.functions {
            let entry = engine
                .lookup_c_interface(&f.name)
                .ok_or_else(|| CpuError::MissingEntry(f.name.clone()))?;
            functions.push(CpuFunction {
                name: f.name.clone(),
                params: f.params.clone(),
                results: f.flat_results(),
                entry: Entry::Packed(entry),
            });
        }
        Ok(CpuModule {
            functions,
            _code: Code::Jit(engine),
        })
    }

    /// A module over code that is already loaded: `entries` has one entry per
    /// function of `module`, in order, valid while `code` lives.
    pub(crate) fn from_code(module: &Module, entries: Vec<Entry>, code: Code) -> CpuModule {
        let functions = module
            .functions
            .iter()
            .zip(entries)
            .map(|(f, entry)| CpuFunction {
                name: f.name.clone(),
                params: f.params.clone(),
                results: f.flat_results(),
                entry,
            })
            .collect();
        CpuModule {
            functions,
            _code: code,
        }
    }

    pub fn functions(&self) -> &[CpuFunction] {
        &self.functions
    }

    pub fn function(&self, name: &str) -> Option<&CpuFunction> {
        self.functions.iter().find(|f| f.name == name)
    }
}

impl CpuFunction {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn params(&self) -> &[(String, TensorType)] {
        &self.params
    }

    pub fn results(&self) -> &[TensorType] {
        &self.results
    }

    /// Runs the function on `inputs`, writing results into `outputs` in place.
    /// Both are checked against the signature first.
    pub fn call(&self, inputs: &[&Tensor], outputs: &mut [Tensor]) -> Result<(), CpuError> {
        check_inputs(&self.params, inputs).map_err(CpuError::Args)?;
        check_outputs(&self.results, outputs).map_err(CpuError::Args)?;
        let entry = match self.entry {
            Entry::Packed(f) => f,
            Entry::Pointers { call, set_threads } => {
                if let Some(set) = set_threads {
                    // SAFETY: the C runtime's setter: a plain atomic store.
                    unsafe { set(crate::threads::requested()) };
                }
                // Same soundness argument as below: the buffers have exactly
                // the types the library was compiled for, and inputs are only read.
                let mut data: Vec<*mut c_void> = inputs
                    .iter()
                    .map(|t| t.as_ptr() as *mut c_void)
                    .chain(outputs.iter_mut().map(|t| t.as_mut_ptr() as *mut c_void))
                    .collect();
                // SAFETY: `call` comes from the library this function's module
                // owns and forwards each pointer to the matching parameter of
                // `tensorc_<name>`, which reads or writes exactly the checked type.
                unsafe { call(data.as_mut_ptr()) };
                return Ok(());
            }
        };
        // Generated code only reads input buffers (the frontend marks them
        // read-only for bufferization), so handing out a mutable pointer to
        // shared data is sound.
        let mut descriptors: Vec<Vec<i64>> = inputs
            .iter()
            .map(|t| descriptor(t.as_ptr() as *mut u8, t.ty()))
            .chain(outputs.iter_mut().map(|t| {
                let ty = t.ty().clone();
                descriptor(t.as_mut_ptr(), &ty)
            }))
            .collect();
        let mut pointers: Vec<*mut i64> = descriptors.iter_mut().map(|d| d.as_mut_ptr()).collect();
        let mut packed: Vec<*mut c_void> = pointers
            .iter_mut()
            .map(|p| p as *mut *mut i64 as *mut c_void)
            .collect();
        // SAFETY: the entry point comes from the engine this function's module
        // owns; each packed slot points at a descriptor pointer, each descriptor
        // describes a live buffer of exactly the type the kernel was compiled
        // for (checked above), and everything outlives the call.
        unsafe { entry(packed.as_mut_ptr()) };
        Ok(())
    }
}

//! MLIR (LLVM dialect) to LLVM IR text, and on to host assembly or an object
//! file, for `emit --stage llvm-ir` / `asm` and ahead-of-time artifacts.
//!
//! mlir-sys gives the translation entry point; everything after it uses a few
//! functions of LLVM's own C API, declared here because LLVM is linked
//! statically into every MLIR binary anyway (no extra crate such as inkwell is
//! needed for this much).

use melior::ir::Module;
use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::Once;

type Ref = *mut c_void;

unsafe extern "C" {
    fn LLVMContextCreate() -> Ref;
    fn LLVMContextDispose(context: Ref);
    fn LLVMPrintModuleToString(module: Ref) -> *mut c_char;
    fn LLVMDisposeMessage(message: *mut c_char);
    fn LLVMDisposeModule(module: Ref);
    fn LLVMSetTarget(module: Ref, triple: *const c_char);
    fn LLVMSetDataLayout(module: Ref, layout: *const c_char);

    fn LLVMGetDefaultTargetTriple() -> *mut c_char;
    fn LLVMGetHostCPUName() -> *mut c_char;
    fn LLVMGetHostCPUFeatures() -> *mut c_char;
    fn LLVMGetTargetFromTriple(
        triple: *const c_char,
        target: *mut Ref,
        error: *mut *mut c_char,
    ) -> i32;
    fn LLVMCreateTargetMachine(
        target: Ref,
        triple: *const c_char,
        cpu: *const c_char,
        features: *const c_char,
        level: u32,
        reloc: u32,
        code_model: u32,
    ) -> Ref;
    fn LLVMDisposeTargetMachine(machine: Ref);
    fn LLVMCreateTargetDataLayout(machine: Ref) -> Ref;
    fn LLVMCopyStringRepOfTargetData(data: Ref) -> *mut c_char;
    fn LLVMDisposeTargetData(data: Ref);
    fn LLVMTargetMachineEmitToMemoryBuffer(
        machine: Ref,
        module: Ref,
        file_type: u32,
        error: *mut *mut c_char,
        out: *mut Ref,
    ) -> i32;
    fn LLVMGetBufferStart(buffer: Ref) -> *const c_char;
    fn LLVMGetBufferSize(buffer: Ref) -> usize;
    fn LLVMDisposeMemoryBuffer(buffer: Ref);

    fn LLVMCreatePassBuilderOptions() -> Ref;
    fn LLVMDisposePassBuilderOptions(options: Ref);
    fn LLVMRunPasses(module: Ref, passes: *const c_char, machine: Ref, options: Ref) -> Ref;
    fn LLVMGetErrorMessage(error: Ref) -> *mut c_char;
    fn LLVMDisposeErrorMessage(message: *mut c_char);
}

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    fn LLVMInitializeX86TargetInfo();
    fn LLVMInitializeX86Target();
    fn LLVMInitializeX86TargetMC();
    fn LLVMInitializeX86AsmPrinter();
}

#[cfg(target_arch = "aarch64")]
unsafe extern "C" {
    fn LLVMInitializeAArch64TargetInfo();
    fn LLVMInitializeAArch64Target();
    fn LLVMInitializeAArch64TargetMC();
    fn LLVMInitializeAArch64AsmPrinter();
}

/// Registers the host's LLVM back end (what `LLVMInitializeNativeTarget`, a
/// header-only inline function, would do).
fn initialize_native_target() -> Result<(), String> {
    static ONCE: Once = Once::new();
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        // SAFETY: LLVM's registration functions, called once.
        ONCE.call_once(|| unsafe {
            #[cfg(target_arch = "x86_64")]
            {
                LLVMInitializeX86TargetInfo();
                LLVMInitializeX86Target();
                LLVMInitializeX86TargetMC();
                LLVMInitializeX86AsmPrinter();
            }
            #[cfg(target_arch = "aarch64")]
            {
                LLVMInitializeAArch64TargetInfo();
                LLVMInitializeAArch64Target();
                LLVMInitializeAArch64TargetMC();
                LLVMInitializeAArch64AsmPrinter();
            }
        });
        Ok(())
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = &ONCE;
        Err("native code generation supports x86_64 and aarch64 hosts only".into())
    }
}

/// Takes an LLVM-allocated message, copies it and frees it.
unsafe fn take_message(p: *mut c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string from LLVM, freed with the matching function.
    unsafe {
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        LLVMDisposeMessage(p);
        s
    }
}

/// Runs `f` on the LLVM translation of `module` (in a fresh LLVM context);
/// `None` when translation failed (MLIR reports why through the context's
/// diagnostic handler).
fn with_llvm_module<T>(module: &Module<'_>, f: impl FnOnce(Ref) -> T) -> Option<T> {
    // SAFETY: every object created here is disposed here, module before context.
    unsafe {
        let context = LLVMContextCreate();
        let llvm_module = mlir_sys::mlirTranslateModuleToLLVMIR(
            module.as_operation().to_raw(),
            context as mlir_sys::LLVMContextRef,
        );
        let out = if llvm_module.is_null() {
            None
        } else {
            let out = f(llvm_module as Ref);
            LLVMDisposeModule(llvm_module as Ref);
            Some(out)
        };
        LLVMContextDispose(context);
        out
    }
}

/// Translates and prints.
pub(crate) fn translate(module: &Module<'_>) -> Option<String> {
    // SAFETY: the module is live for the call; the string is freed by take_message.
    with_llvm_module(module, |m| unsafe {
        take_message(LLVMPrintModuleToString(m))
    })
}

/// What `codegen` produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodegenOutput {
    Assembly,
    Object,
}

/// Translates, optimizes (`default<O3>`) and compiles for the host CPU
/// (its triple, CPU name and features), position-independent.
/// `Err(None)` when the translation failed (see the MLIR diagnostics),
/// `Err(Some(message))` when LLVM failed.
pub(crate) fn codegen(
    module: &Module<'_>,
    output: CodegenOutput,
) -> Result<Vec<u8>, Option<String>> {
    initialize_native_target().map_err(Some)?;
    with_llvm_module(module, |m| unsafe { codegen_llvm(m, output) })
        .ok_or(None)?
        .map_err(Some)
}

/// # Safety
/// `m` must be a live LLVM module.
unsafe fn codegen_llvm(m: Ref, output: CodegenOutput) -> Result<Vec<u8>, String> {
    // SAFETY: plain LLVM C API use; every allocation is released on every path.
    unsafe {
        let triple = LLVMGetDefaultTargetTriple();
        let mut target: Ref = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        if LLVMGetTargetFromTriple(triple, &mut target, &mut err) != 0 {
            let msg = take_message(err);
            LLVMDisposeMessage(triple);
            return Err(format!("no LLVM target for the host: {msg}"));
        }
        let cpu = LLVMGetHostCPUName();
        let features = LLVMGetHostCPUFeatures();
        // Aggressive = -O3 codegen, PIC, default code model.
        let tm = LLVMCreateTargetMachine(target, triple, cpu, features, 3, 2, 0);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(features);
        if tm.is_null() {
            LLVMDisposeMessage(triple);
            return Err("could not create an LLVM target machine for the host".into());
        }
        // The translated module has no triple or data layout (cpu-pipeline.md
        // gotcha 4); without them LLVM makes worse code (e.g. byte-wise memcpy).
        LLVMSetTarget(m, triple);
        LLVMDisposeMessage(triple);
        let layout = LLVMCreateTargetDataLayout(tm);
        let layout_text = LLVMCopyStringRepOfTargetData(layout);
        LLVMSetDataLayout(m, layout_text);
        LLVMDisposeMessage(layout_text);
        LLVMDisposeTargetData(layout);

        let options = LLVMCreatePassBuilderOptions();
        let passes = CString::new("default<O3>").expect("no NUL");
        let error = LLVMRunPasses(m, passes.as_ptr(), tm, options);
        LLVMDisposePassBuilderOptions(options);
        if !error.is_null() {
            let p = LLVMGetErrorMessage(error);
            let msg = CStr::from_ptr(p).to_string_lossy().into_owned();
            LLVMDisposeErrorMessage(p);
            LLVMDisposeTargetMachine(tm);
            return Err(format!("LLVM optimization failed: {msg}"));
        }

        let file_type = match output {
            CodegenOutput::Assembly => 0,
            CodegenOutput::Object => 1,
        };
        let mut buffer: Ref = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        let failed =
            LLVMTargetMachineEmitToMemoryBuffer(tm, m, file_type, &mut err, &mut buffer) != 0;
        LLVMDisposeTargetMachine(tm);
        if failed {
            return Err(format!(
                "LLVM code generation failed: {}",
                take_message(err)
            ));
        }
        let bytes = std::slice::from_raw_parts(
            LLVMGetBufferStart(buffer) as *const u8,
            LLVMGetBufferSize(buffer),
        )
        .to_vec();
        LLVMDisposeMemoryBuffer(buffer);
        Ok(bytes)
    }
}

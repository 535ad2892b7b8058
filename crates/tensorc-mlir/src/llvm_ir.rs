//! MLIR (LLVM dialect) to LLVM IR text, and on to assembly or an object file
//! for the host or a chosen triple and CPU, for `emit --stage llvm-ir` / `asm`
//! and ahead-of-time artifacts (`tensorc-cpu`'s `aot.rs` calls `codegen_for`).
//!
//! mlir-sys gives the translation entry point; everything after it uses a few
//! functions of LLVM's own C API, declared here (and only here) because LLVM
//! is linked statically into every MLIR binary anyway (no extra crate such as
//! inkwell is needed for this much).

use crate::MlirModule;
use melior::ir::Module;
use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::Once;

type Ref = *mut c_void;

unsafe extern "C" {
    fn LLVMInstallFatalErrorHandler(handler: extern "C" fn(*const c_char));
    fn _exit(code: i32) -> !;
    fn LLVMContextCreate() -> Ref;
    fn LLVMContextDispose(context: Ref);
    fn LLVMPrintModuleToString(module: Ref) -> *mut c_char;
    fn LLVMDisposeMessage(message: *mut c_char);
    fn LLVMDisposeModule(module: Ref);
    fn LLVMSetTarget(module: Ref, triple: *const c_char);
    fn LLVMSetDataLayout(module: Ref, layout: *const c_char);

    fn LLVMGetDefaultTargetTriple() -> *mut c_char;
    fn LLVMNormalizeTargetTriple(triple: *const c_char) -> *mut c_char;
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
    fn LLVMCreateMemoryBufferWithMemoryRangeCopy(
        data: *const c_char,
        length: usize,
        name: *const c_char,
    ) -> Ref;
    fn LLVMParseIRInContext(
        context: Ref,
        buffer: Ref,
        module: *mut Ref,
        message: *mut *mut c_char,
    ) -> i32;
    fn LLVMDisposeErrorMessage(message: *mut c_char);
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe extern "C" {
    fn LLVMInitializeX86TargetInfo();
    fn LLVMInitializeX86Target();
    fn LLVMInitializeX86TargetMC();
    fn LLVMInitializeX86AsmPrinter();
    fn LLVMInitializeAArch64TargetInfo();
    fn LLVMInitializeAArch64Target();
    fn LLVMInitializeAArch64TargetMC();
    fn LLVMInitializeAArch64AsmPrinter();
    fn LLVMParseCommandLineOptions(argc: i32, argv: *const *const c_char, overview: *const c_char);
}

/// LLVM's command-line options tensorc sets for all its code generation (the
/// JIT's and the ahead-of-time artifacts'): they are process-wide, so they
/// are set once, before the first compilation.
///
/// `-x86-cmov-converter=false`: x86's cmov converter turns conditional
/// moves it guesses to be on a loop's critical path into branches. In
/// tensorc's code those selects are data-dependent (the index reduction of
/// `argmax` keeping the lower of two indices, per row), so the branches
/// mispredict: argmax of 100000×10 f32 spent 0.67 ms in its index pass
/// with the branch, 0.2 ms without it.
///
/// `-max-interleave-group-factor=16`: the loop vectorizer reads strided
/// accesses of a loop as interleaved groups (wide loads, then shuffles) only
/// up to 8 members by default. Reductions over many rows of up to
/// `reduction_schedule::SCALAR_ROW_MAX` elements are left to it: their
/// loop over rows has one access per element of a row, and with groups of
/// 9–16 members it vectorizes rows of 9–13 elements too (argmax of
/// 100000×10 f32 1.25 → 0.26 ms, `reduce_max` 0.69 → 0.13 ms), which it
/// otherwise left scalar.
///
/// `-dag-maps-huge-region=256`: the instruction scheduler's dependence
/// graph links every memory access of a region to the earlier ones it may
/// alias until the region holds this many (default 1000), then chains
/// them. Long straight-line blocks of stores (LLVM fully unrolls a
/// padded copy's halo fills over a batch of 8: one block of ~2000
/// instructions) made that quadratic: a 2×2 convolution of
/// 8×16×16×128 took 1.2 s to compile, 0.3 s with 256. The benchmark's
/// kernels ran as fast (docs/benchmarks.md, session 35).
pub fn set_llvm_options() {
    static ONCE: Once = Once::new();
    // SAFETY: NUL-terminated strings that outlive the call; LLVM's parser
    // reports errors to a null stream here (the C API) and does not exit.
    ONCE.call_once(|| unsafe {
        let args = [
            c"tensorc".as_ptr(),
            c"-x86-cmov-converter=false".as_ptr(),
            c"-max-interleave-group-factor=16".as_ptr(),
            c"-dag-maps-huge-region=256".as_ptr(),
        ];
        LLVMParseCommandLineOptions(args.len() as i32, args.as_ptr(), c"".as_ptr());
    });
}

/// Registers the x86 and AArch64 back ends: the host's (what
/// `LLVMInitializeNativeTarget`, a header-only inline function, would do) and
/// the cross-compilation targets tensorc supports.
fn initialize_targets() -> Result<(), String> {
    static ONCE: Once = Once::new();
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        // SAFETY: LLVM's registration functions, called once.
        set_llvm_options();
        ONCE.call_once(|| unsafe {
            LLVMInitializeX86TargetInfo();
            LLVMInitializeX86Target();
            LLVMInitializeX86TargetMC();
            LLVMInitializeX86AsmPrinter();
            LLVMInitializeAArch64TargetInfo();
            LLVMInitializeAArch64Target();
            LLVMInitializeAArch64TargetMC();
            LLVMInitializeAArch64AsmPrinter();
        });
        Ok(())
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = &ONCE;
        Err("native code generation supports x86_64 and aarch64 hosts only".into())
    }
}

/// The host's target triple as LLVM names it.
pub fn host_triple() -> String {
    // SAFETY: an LLVM-allocated string, freed by take_message.
    unsafe { take_message(LLVMGetDefaultTargetTriple()) }
}

/// LLVM's normal form of a triple (`aarch64-linux-gnu` →
/// `aarch64-unknown-linux-gnu`); `None` when it contains a NUL byte.
pub fn normalize_triple(triple: &str) -> Option<String> {
    let c = CString::new(triple).ok()?;
    // SAFETY: a C string in, an LLVM-allocated string out (freed by take_message).
    Some(unsafe { take_message(LLVMNormalizeTargetTriple(c.as_ptr())) })
}

/// The host CPU's LLVM name and feature string (what `native` compiles for).
pub fn host_cpu() -> (String, String) {
    // SAFETY: LLVM-allocated strings, freed by take_message.
    unsafe {
        (
            take_message(LLVMGetHostCPUName()),
            take_message(LLVMGetHostCPUFeatures()),
        )
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
    target: &CodegenTarget<'_>,
) -> Result<Vec<u8>, Option<String>> {
    codegen_module(module, output, target).map_err(|e| match e {
        CodegenError::Translation => None,
        CodegenError::UnsupportedTriple(m) => Some(format!("no LLVM target for {}: {m}", target.resolved_triple())),
        CodegenError::Llvm(m) => Some(m),
    })
}

/// What `codegen_for` compiles for.
#[derive(Clone, Debug, Default)]
pub struct CodegenTarget<'a> {
    /// An LLVM target triple; `None` is the host's.
    pub triple: Option<&'a str>,
    /// An LLVM CPU name (with its default features); `None` or `native` is
    /// the host CPU with every feature it has.
    pub cpu: Option<&'a str>,
}

impl CodegenTarget<'_> {
    /// The triple to compile for: the given one or the host's.
    fn resolved_triple(&self) -> String {
        self.triple.map_or_else(host_triple, str::to_owned)
    }

    /// The LLVM CPU name and feature string to compile for: the host CPU
    /// with every feature it has for `native` (or no CPU), else the name
    /// with its default features.
    fn cpu_and_features(&self) -> (String, String) {
        match self.cpu {
            None | Some("native") => host_cpu(),
            Some(c) => (c.to_owned(), String::new()),
        }
    }
}

/// Why `codegen_for` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodegenError {
    /// MLIR could not translate the module to LLVM IR (the context's
    /// diagnostics say why).
    Translation,
    /// LLVM has no back end for the triple (LLVM's message).
    UnsupportedTriple(String),
    /// LLVM failed to set up, optimize or generate code.
    Llvm(String),
}

/// Translates the module (LLVM dialect), optimizes it at `default<O3>` and
/// compiles it for `target`, position-independent, as assembly or an
/// ELF/Mach-O object: the one path to machine code of `emit --stage asm`
/// and of ahead-of-time artifacts.
pub fn codegen_for(
    module: &MlirModule<'_>,
    output: CodegenOutput,
    target: &CodegenTarget<'_>,
) -> Result<Vec<u8>, CodegenError> {
    codegen_module(&module.module, output, target)
}

fn codegen_module(
    module: &Module<'_>,
    output: CodegenOutput,
    target: &CodegenTarget<'_>,
) -> Result<Vec<u8>, CodegenError> {
    initialize_targets().map_err(CodegenError::Llvm)?;
    let triple = CString::new(target.resolved_triple())
        .map_err(|_| CodegenError::UnsupportedTriple("the triple contains a NUL byte".into()))?;
    let (cpu, features) = target.cpu_and_features();
    let cpu = CString::new(cpu).map_err(|_| CodegenError::Llvm("invalid CPU name".into()))?;
    let features = CString::new(features).unwrap_or_default();
    with_llvm_module(module, |m| unsafe { codegen_llvm(m, output, &triple, &cpu, &features) })
        .ok_or(CodegenError::Translation)?
}

/// # Safety
/// `m` must be a live LLVM module.
unsafe fn codegen_llvm(
    m: Ref,
    output: CodegenOutput,
    triple: &CStr,
    cpu: &CStr,
    features: &CStr,
) -> Result<Vec<u8>, CodegenError> {
    // SAFETY: plain LLVM C API use; every allocation is released on every path.
    unsafe {
        let mut target: Ref = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        if LLVMGetTargetFromTriple(triple.as_ptr(), &mut target, &mut err) != 0 {
            return Err(CodegenError::UnsupportedTriple(take_message(err)));
        }
        // Aggressive = -O3 codegen, PIC (shared libraries need it), default code model.
        let tm = LLVMCreateTargetMachine(
            target,
            triple.as_ptr(),
            cpu.as_ptr(),
            features.as_ptr(),
            3,
            2,
            0,
        );
        if tm.is_null() {
            return Err(CodegenError::Llvm(format!(
                "could not create an LLVM target machine for {} / {}",
                triple.to_string_lossy(),
                cpu.to_string_lossy()
            )));
        }
        // The translated module has no triple or data layout (cpu-pipeline.md
        // gotcha 4); without them LLVM makes worse code (e.g. byte-wise memcpy).
        LLVMSetTarget(m, triple.as_ptr());
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
            return Err(CodegenError::Llvm(format!("LLVM optimization failed: {msg}")));
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
            return Err(CodegenError::Llvm(format!(
                "LLVM code generation failed: {}",
                take_message(err)
            )));
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

/// Whether code generated for `target` may use AVX-512F: LLVM itself is
/// asked, by compiling a vector `ldexp` for the target's triple and CPU (the
/// host's features for `native`) and looking for `vscalefps` in the
/// assembly, so every CPU name LLVM knows is answered as LLVM would
/// compile for it (no table of CPU names to keep current). The answer is
/// remembered per triple and CPU for the process. `false` when anything
/// fails: the caller then keeps the portable code.
pub fn target_has_avx512(target: &CodegenTarget<'_>) -> bool {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    static KNOWN: Mutex<BTreeMap<(String, String), bool>> = Mutex::new(BTreeMap::new());
    let key = (target.resolved_triple(), target.cpu.unwrap_or("native").to_owned());
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    *known.entry(key).or_insert_with(|| probe_avx512(target))
}

/// The probe of `target_has_avx512`.
fn probe_avx512(target: &CodegenTarget<'_>) -> bool {
    const PROBE: &str = "define <16 x float> @probe(<16 x float> %p, <16 x i32> %n) {\n\
        \x20 %r = call <16 x float> @llvm.ldexp.v16f32.v16i32(<16 x float> %p, <16 x i32> %n)\n\
        \x20 ret <16 x float> %r\n\
        }\n\
        declare <16 x float> @llvm.ldexp.v16f32.v16i32(<16 x float>, <16 x i32>)\n";
    if initialize_targets().is_err() {
        return false;
    }
    let (cpu, features) = target.cpu_and_features();
    let (Ok(triple), Ok(cpu), Ok(features)) =
        (CString::new(target.resolved_triple()), CString::new(cpu), CString::new(features))
    else {
        return false;
    };
    // SAFETY: the buffer is consumed by the parser; the module and context are
    // disposed here on every path.
    unsafe {
        let context = LLVMContextCreate();
        let name = c"probe";
        let buffer =
            LLVMCreateMemoryBufferWithMemoryRangeCopy(PROBE.as_ptr() as *const c_char, PROBE.len(), name.as_ptr());
        let mut module: Ref = std::ptr::null_mut();
        let mut message: *mut c_char = std::ptr::null_mut();
        let asm = if LLVMParseIRInContext(context, buffer, &mut module, &mut message) != 0 {
            let _ = take_message(message);
            None
        } else {
            let out = codegen_llvm(module, CodegenOutput::Assembly, &triple, &cpu, &features).ok();
            LLVMDisposeModule(module);
            out
        };
        LLVMContextDispose(context);
        asm.is_some_and(|a| String::from_utf8_lossy(&a).contains("vscalefps"))
    }
}

/// Makes a fatal LLVM error (say instruction selection failing on some
/// vector type) end the process with exit code 1 and an `internal error`
/// line on stderr, instead of LLVM's own report and `abort()` (SIGABRT, exit
/// 134, a crash to every caller). LLVM cannot continue after such an error,
/// so the process still ends: this is for command-line tools, which own
/// their process; a library leaves the choice to its host program.
pub fn exit_on_llvm_fatal_error() {
    extern "C" fn handler(reason: *const c_char) {
        let reason = if reason.is_null() {
            String::new()
        } else {
            // SAFETY: LLVM passes a NUL-terminated message.
            unsafe { CStr::from_ptr(reason) }.to_string_lossy().into_owned()
        };
        eprintln!("error: internal error in LLVM (this is a tensorc bug): {reason}");
        // `_exit`, not `exit`: LLVM is in the middle of an operation, so
        // atexit handlers and static destructors could hang or crash.
        // SAFETY: ends the process; stderr is unbuffered.
        unsafe { _exit(1) }
    }
    static INSTALL: Once = Once::new();
    // SAFETY: installs a handler with the signature LLVM's C API expects.
    INSTALL.call_once(|| unsafe { LLVMInstallFatalErrorHandler(handler) });
}

//! Ahead-of-time artifacts: the CPU pipeline's output written as an object
//! file, a shared library, a static archive and a C header, for a chosen CPU
//! and target triple, so a model ships as a small native library that needs
//! no LLVM, MLIR or tensorc at run time (issue 4, docs/c-abi.md).
//!
//! The generated code keeps MLIR's calling convention (`_mlir_ciface_<name>`
//! taking memref descriptors). C users never see descriptors: a generated C
//! wrapper `tensorc_<name>(const T *in..., T *out...)` builds them, and the
//! small C runtime (`runtime/*.c`, `RUNTIME_C`) is compiled in next
//! to it. For the host triple, kernel, wrappers and runtime are merged into
//! one relocatable object (`ld -r`) whose only global definitions are the
//! `tensorc_*` entry points (`objcopy -G`), so a `def main` never clashes with
//! the C program's `main`.

use crate::{Pipelines, Upto, lower};
use std::ffi::{CStr, CString, c_char, c_void};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use tensorc_ir::{DType, Module, TensorType};
use tensorc_mlir::{Mlir, MlirError};

/// The C runtime compiled into every artifact, as (file name, text): every
/// `runtime/*.c` file, listed by `build.rs` (the same files the JIT links).
pub const RUNTIME_C: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/runtime_sources.rs"));

/// The runtime's symbols that stay global in a host artifact, both weak:
/// the exported `tensorc_release_workspace` (docs/c-abi.md), and the
/// workspace cache's state, hidden (never exported from a `.so`) but global
/// so that several statically linked artifacts share one cache
/// (`runtime/tensorc_workspace.c`).
const RUNTIME_GLOBALS: [&str; 2] = ["tensorc_release_workspace", "__tensorc_workspace_v1"];

/// The portable default CPU of artifacts (x86-64 hosts).
pub const DEFAULT_X86_CPU: &str = "x86-64-v2";

/// What `build` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// A relocatable ELF object with the `tensorc_*` entry points and the runtime.
    Object,
    /// A shared library (`.so`).
    Shared,
    /// A static archive (`.a`).
    Static,
    /// The C header declaring the entry points.
    Header,
}

impl ArtifactKind {
    /// The file extension used when `-o` is a base path.
    pub fn extension(self) -> &'static str {
        match self {
            ArtifactKind::Object => "o",
            ArtifactKind::Shared => "so",
            ArtifactKind::Static => "a",
            ArtifactKind::Header => "h",
        }
    }
}

/// Code generation choices.
#[derive(Clone, Debug, Default)]
pub struct AotOptions {
    /// LLVM target triple; `None` is the host's.
    pub triple: Option<String>,
    /// `native` (the host CPU and its features), or an LLVM CPU name such as
    /// `x86-64-v3`; `None` is the portable default (`x86-64-v2` on x86-64,
    /// `generic` elsewhere).
    pub cpu: Option<String>,
}

/// Failures of artifact building.
#[derive(Debug, thiserror::Error)]
pub enum AotError {
    /// MLIR rejected something tensorc produced (a tensorc bug).
    #[error(transparent)]
    Mlir(#[from] MlirError),
    /// The options cannot work (unknown triple, a kind not available for a triple, ...).
    #[error("{0}")]
    Options(String),
    /// LLVM failed to generate code.
    #[error("code generation failed: {0}")]
    Codegen(String),
    /// An external tool (cc, ld, objcopy, ar) is missing or failed.
    #[error("{0}")]
    Tool(String),
    /// Writing a file failed.
    #[error("cannot write {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

// ---------------------------------------------------------------------------
// Code generation for a chosen triple and CPU.

type Ref = *mut c_void;

unsafe extern "C" {
    fn LLVMContextCreate() -> Ref;
    fn LLVMContextDispose(context: Ref);
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
    fn LLVMDisposeErrorMessage(message: *mut c_char);

    fn LLVMInitializeX86TargetInfo();
    fn LLVMInitializeX86Target();
    fn LLVMInitializeX86TargetMC();
    fn LLVMInitializeX86AsmPrinter();
    fn LLVMInitializeAArch64TargetInfo();
    fn LLVMInitializeAArch64Target();
    fn LLVMInitializeAArch64TargetMC();
    fn LLVMInitializeAArch64AsmPrinter();
}

/// Registers the x86 and AArch64 back ends (the cross-compilation targets
/// tensorc supports); idempotent.
fn initialize_targets() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: LLVM's registration functions, called once.
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
}

/// Copies and frees an LLVM message.
unsafe fn take(p: *mut c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated LLVM string, freed with the matching function.
    unsafe {
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        LLVMDisposeMessage(p);
        s
    }
}

/// The host's target triple as LLVM names it.
pub fn host_triple() -> String {
    // SAFETY: returns an LLVM-allocated string that `take` frees.
    unsafe { take(LLVMGetDefaultTargetTriple()) }
}

/// Whether `triple` names the host's architecture and OS (then the system
/// C compiler and binutils can build the wrappers and link).
fn is_host(triple: &str) -> bool {
    let arch = |t: &str| t.split('-').next().unwrap_or("").to_owned();
    let host = host_triple();
    arch(triple) == arch(&host) && triple.contains("linux") == host.contains("linux")
}

/// The triple to use, normalized, and whether it is the host's.
fn resolve_triple(opts: &AotOptions) -> Result<(String, bool), AotError> {
    match &opts.triple {
        None => Ok((host_triple(), true)),
        Some(t) => {
            let c = CString::new(t.as_str())
                .map_err(|_| AotError::Options(format!("invalid target triple '{t}'")))?;
            // SAFETY: plain C string in, LLVM string out.
            let normalized = unsafe { take(LLVMNormalizeTargetTriple(c.as_ptr())) };
            let host = is_host(&normalized);
            Ok((normalized, host))
        }
    }
}

/// Compiles the lowered module (LLVM dialect) to an object file for `triple`
/// and `cpu` (`native` = host CPU and features), at O3, position-independent.
fn codegen(
    mlir: &Mlir,
    m: &tensorc_mlir::MlirModule<'_>,
    triple: &str,
    cpu: &str,
) -> Result<Vec<u8>, AotError> {
    initialize_targets();
    let c_triple = CString::new(triple).map_err(|_| AotError::Options("invalid triple".into()))?;
    // SAFETY: LLVM C API; every object created is disposed on every path.
    unsafe {
        let mut target: Ref = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        if LLVMGetTargetFromTriple(c_triple.as_ptr(), &mut target, &mut err) != 0 {
            let msg = take(err);
            return Err(AotError::Options(format!(
                "unsupported target triple '{triple}': {msg} (tensorc generates code for x86_64 and aarch64)"
            )));
        }
        let (cpu_name, features) = if cpu == "native" {
            (take(LLVMGetHostCPUName()), take(LLVMGetHostCPUFeatures()))
        } else {
            (cpu.to_owned(), String::new())
        };
        let c_cpu = CString::new(cpu_name).map_err(|_| AotError::Options("invalid CPU".into()))?;
        let c_features = CString::new(features).unwrap_or_default();
        // O3 codegen, PIC (shared libraries need it), default code model.
        let tm = LLVMCreateTargetMachine(
            target,
            c_triple.as_ptr(),
            c_cpu.as_ptr(),
            c_features.as_ptr(),
            3,
            2,
            0,
        );
        if tm.is_null() {
            return Err(AotError::Codegen(format!(
                "LLVM could not create a target machine for {triple} / {cpu}"
            )));
        }
        let context = LLVMContextCreate();
        let llvm_module = mlir_sys::mlirTranslateModuleToLLVMIR(
            mlir_sys::mlirModuleGetOperation(m.to_raw()),
            context as mlir_sys::LLVMContextRef,
        ) as Ref;
        let result = if llvm_module.is_null() {
            let _ = mlir; // the diagnostics went to the context's handler
            Err(AotError::Codegen(
                "translating the LLVM dialect to LLVM IR failed".into(),
            ))
        } else {
            let r = emit_object(llvm_module, tm, &c_triple);
            LLVMDisposeModule(llvm_module);
            r
        };
        LLVMContextDispose(context);
        LLVMDisposeTargetMachine(tm);
        result
    }
}

/// # Safety
/// `m` and `tm` must be live LLVM objects.
unsafe fn emit_object(m: Ref, tm: Ref, triple: &CStr) -> Result<Vec<u8>, AotError> {
    // SAFETY: see the caller.
    unsafe {
        // Without triple and data layout LLVM optimizes worse (cpu-pipeline.md gotcha 4).
        LLVMSetTarget(m, triple.as_ptr());
        let layout = LLVMCreateTargetDataLayout(tm);
        let text = LLVMCopyStringRepOfTargetData(layout);
        LLVMSetDataLayout(m, text);
        LLVMDisposeMessage(text);
        LLVMDisposeTargetData(layout);
        let options = LLVMCreatePassBuilderOptions();
        let passes = c"default<O3>";
        let error = LLVMRunPasses(m, passes.as_ptr(), tm, options);
        LLVMDisposePassBuilderOptions(options);
        if !error.is_null() {
            let p = LLVMGetErrorMessage(error);
            let msg = CStr::from_ptr(p).to_string_lossy().into_owned();
            LLVMDisposeErrorMessage(p);
            return Err(AotError::Codegen(format!(
                "LLVM optimization failed: {msg}"
            )));
        }
        let mut buffer: Ref = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        if LLVMTargetMachineEmitToMemoryBuffer(tm, m, 1, &mut err, &mut buffer) != 0 {
            return Err(AotError::Codegen(take(err)));
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

// ---------------------------------------------------------------------------
// The C side: header and wrappers.

/// The C element type of a dtype. f16/bf16 have no portable C type: their raw
/// 16-bit patterns are passed as `uint16_t`.
pub fn c_type(d: DType) -> &'static str {
    match d {
        DType::S8 => "int8_t",
        DType::S16 => "int16_t",
        DType::S32 => "int32_t",
        DType::S64 => "int64_t",
        DType::U8 => "uint8_t",
        DType::U16 | DType::F16 | DType::BF16 => "uint16_t",
        DType::U32 => "uint32_t",
        DType::U64 => "uint64_t",
        DType::F32 => "float",
        DType::F64 => "double",
    }
}

const C_KEYWORDS: &[&str] = &[
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "bool",
    "true",
    "false",
    "class",
    "new",
    "delete",
    "this",
    "template",
    "typename",
    "namespace",
    "operator",
    "private",
    "public",
];

/// The C parameter names of a function: the `.nxir` names where they are
/// usable C identifiers (not keywords, not clashing with `outN`), else `argN`;
/// results are `out0`, `out1`, ...
fn c_param_names(params: &[(String, TensorType)]) -> Vec<String> {
    params
        .iter()
        .enumerate()
        .map(|(i, (n, _))| {
            let ident = n
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let clash = C_KEYWORDS.contains(&n.as_str())
                || n.starts_with("out")
                || n.starts_with("arg")
                || n.starts_with("__");
            if ident && !clash {
                n.clone()
            } else {
                format!("arg{i}")
            }
        })
        .collect()
}

fn shape_text(t: &TensorType) -> String {
    format!("{t} ({} elements, row-major)", t.num_elements())
}

/// The prototype `int tensorc_<f>(const T *x, ..., T *out0, ...)`.
fn prototype(f: &tensorc_ir::Function) -> String {
    let names = c_param_names(&f.params);
    let mut args: Vec<String> = f
        .params
        .iter()
        .zip(&names)
        .map(|((_, t), n)| format!("const {} *{n}", c_type(t.dtype)))
        .collect();
    for (i, t) in f.flat_results().iter().enumerate() {
        args.push(format!("{} *out{i}", c_type(t.dtype)));
    }
    if args.is_empty() {
        args.push("void".into());
    }
    format!("int tensorc_{}({})", f.name, args.join(", "))
}

/// The C header of a module: include guard, `extern "C"`, one documented
/// declaration per function. `guard` is derived from the artifact's name.
pub fn header(module: &Module, source_name: &str, guard: &str) -> String {
    let guard: String = guard
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut h = String::new();
    let _ = writeln!(
        h,
        "/* Generated by tensorc from {source_name}. Do not edit."
    );
    let _ = writeln!(
        h,
        " * Calling convention: docs/c-abi.md. Every buffer is a dense row-major"
    );
    let _ = writeln!(
        h,
        " * array of the documented dtype and shape; results are written into"
    );
    let _ = writeln!(h, " * caller-provided buffers. Functions return 0. */");
    let _ = writeln!(h, "#ifndef TENSORC_{guard}_H\n#define TENSORC_{guard}_H\n");
    let _ = writeln!(h, "#include <stdint.h>\n");
    let _ = writeln!(h, "#ifdef __cplusplus\nextern \"C\" {{\n#endif\n");
    for f in &module.functions {
        let names = c_param_names(&f.params);
        let _ = writeln!(
            h,
            "/* {}({}) -> {}",
            f.name,
            f.params
                .iter()
                .map(|(n, t)| format!("{n}: {t}"))
                .collect::<Vec<_>>()
                .join(", "),
            f.result
        );
        for ((orig, t), n) in f.params.iter().zip(&names) {
            let note = if orig != n {
                format!(" (.nxir parameter `{orig}`)")
            } else {
                String::new()
            };
            let _ = writeln!(h, " *   {n}: input {}{note}", shape_text(t));
        }
        for (i, t) in f.flat_results().iter().enumerate() {
            let _ = writeln!(
                h,
                " *   out{i}: result {} written by the call",
                shape_text(t)
            );
        }
        if f.params
            .iter()
            .any(|(_, t)| matches!(t.dtype, DType::F16 | DType::BF16))
            || f.flat_results()
                .iter()
                .any(|t| matches!(t.dtype, DType::F16 | DType::BF16))
        {
            let _ = writeln!(
                h,
                " *   f16/bf16 elements are passed as their raw 16-bit patterns."
            );
        }
        let _ = writeln!(h, " */\n{};\n", prototype(f));
    }
    let _ = writeln!(
        h,
        "/* Frees the temporary buffers tensorc artifacts keep for reuse by later\n \
         * calls (docs/c-abi.md, \"Memory the call allocates\"). Optional: call it\n \
         * when no call will follow for a while. Safe at any time, from any thread. */\n\
         void tensorc_release_workspace(void);\n"
    );
    let _ = writeln!(
        h,
        "#ifdef __cplusplus\n}}\n#endif\n\n#endif /* TENSORC_{guard}_H */"
    );
    h
}

/// The C wrappers: descriptor types per rank, the `_mlir_ciface_*`
/// declarations and one `tensorc_<f>` per function. No #include, so it
/// compiles for any target.
pub fn wrappers_c(module: &Module) -> String {
    let mut ranks: Vec<usize> = module
        .functions
        .iter()
        .flat_map(|f| {
            let mut r: Vec<usize> = f.params.iter().map(|(_, t)| t.rank()).collect();
            r.extend(f.flat_results().iter().map(|t| t.rank()));
            r
        })
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut c = String::from(
        "/* Generated by tensorc: C entry points over MLIR's memref descriptors. */\n\
         typedef __INT64_TYPE__ tensorc_i64;\n\
         typedef __INT8_TYPE__ int8_t;\ntypedef __INT16_TYPE__ int16_t;\n\
         typedef __INT32_TYPE__ int32_t;\ntypedef __INT64_TYPE__ int64_t;\n\
         typedef __UINT8_TYPE__ uint8_t;\ntypedef __UINT16_TYPE__ uint16_t;\n\
         typedef __UINT32_TYPE__ uint32_t;\ntypedef __UINT64_TYPE__ uint64_t;\n",
    );
    for r in &ranks {
        if *r == 0 {
            let _ = writeln!(
                c,
                "typedef struct {{ void *allocated, *aligned; tensorc_i64 offset; }} tensorc_memref0;"
            );
        } else {
            let _ = writeln!(
                c,
                "typedef struct {{ void *allocated, *aligned; tensorc_i64 offset, sizes[{r}], strides[{r}]; }} tensorc_memref{r};"
            );
        }
    }
    for f in &module.functions {
        let names = c_param_names(&f.params);
        let results = f.flat_results();
        let all: Vec<&TensorType> = f
            .params
            .iter()
            .map(|(_, t)| t)
            .chain(results.iter())
            .collect();
        let decl: Vec<String> = all
            .iter()
            .map(|t| format!("tensorc_memref{} *", t.rank()))
            .collect();
        let _ = writeln!(
            c,
            "\nextern void _mlir_ciface_{}({});",
            f.name,
            if decl.is_empty() {
                "void".to_string()
            } else {
                decl.join(", ")
            }
        );
        let _ = writeln!(c, "{} {{", prototype(f));
        let ptrs: Vec<String> = names
            .iter()
            .cloned()
            .chain((0..results.len()).map(|i| format!("out{i}")))
            .collect();
        for (i, (t, p)) in all.iter().zip(&ptrs).enumerate() {
            let mut init = format!("(void *){p}, (void *){p}, 0");
            if t.rank() > 0 {
                let sizes: Vec<String> = t.shape.iter().map(|s| s.to_string()).collect();
                let strides: Vec<String> = t.strides().iter().map(|s| s.to_string()).collect();
                let _ = write!(
                    init,
                    ", {{{}}}, {{{}}}",
                    sizes.join(", "),
                    strides.join(", ")
                );
            }
            let _ = writeln!(c, "  tensorc_memref{} d{i} = {{{init}}};", t.rank());
        }
        let args: Vec<String> = (0..all.len()).map(|i| format!("&d{i}")).collect();
        let _ = writeln!(
            c,
            "  _mlir_ciface_{}({});\n  return 0;\n}}",
            f.name,
            args.join(", ")
        );
    }
    c
}

// ---------------------------------------------------------------------------
// Building the files.

/// The C compiler: `$CC`, else `cc`.
fn c_compiler() -> String {
    std::env::var("CC")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cc".into())
}

fn run(tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), AotError> {
    let out = Command::new(tool).args(args).output().map_err(|e| {
        AotError::Tool(format!(
            "cannot run `{tool}` (needed to build this artifact): {e}"
        ))
    })?;
    if !out.status.success() {
        return Err(AotError::Tool(format!(
            "`{tool}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        )));
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), AotError> {
    std::fs::write(path, bytes).map_err(|e| AotError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, AotError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tensorc-aot-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| AotError::Io {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the requested artifacts. `outputs` pairs each kind with its path.
/// `mlir_text` is the frontend's output for `module`.
pub fn build(
    module: &Module,
    source_name: &str,
    mlir_text: &str,
    pipelines: &Pipelines,
    opts: &AotOptions,
    outputs: &[(ArtifactKind, PathBuf)],
) -> Result<(), AotError> {
    let (triple, host) = resolve_triple(opts)?;
    let cpu = opts.cpu.clone().unwrap_or_else(|| {
        if triple.starts_with("x86_64") {
            DEFAULT_X86_CPU.into()
        } else {
            "generic".into()
        }
    });
    if cpu == "native" && !host {
        return Err(AotError::Options(format!(
            "--cpu native describes this machine, not target '{triple}'; name a CPU for that target"
        )));
    }
    if !host && let Some((k, _)) = outputs.iter().find(|(k, _)| *k != ArtifactKind::Object) {
        return Err(AotError::Options(format!(
            "for the non-host target '{triple}' only `--emit obj` is supported (the kernel \
                 object with the `_mlir_ciface_*` entry points); `--emit {}` needs a cross C \
                 toolchain, which tensorc does not drive yet",
            match k {
                ArtifactKind::Shared => "shared",
                ArtifactKind::Static => "static",
                _ => "header",
            }
        )));
    }
    if module
        .functions
        .iter()
        .any(|f| f.name == "release_workspace")
    {
        return Err(AotError::Options(
            "`def release_workspace` cannot be compiled to an artifact: its entry point would \
             be `tensorc_release_workspace`, the runtime function every artifact exports \
             (docs/c-abi.md); rename the def"
                .into(),
        ));
    }
    // Header only: no code generation needed.
    let needs_code = outputs.iter().any(|(k, _)| *k != ArtifactKind::Header);
    let kernel = if needs_code {
        let mlir = Mlir::new();
        let lowered = lower(&mlir, mlir_text, pipelines, Upto::LlvmDialect)?;
        Some(codegen(&mlir, &lowered, &triple, &cpu)?)
    } else {
        None
    };
    let scratch = Scratch::new()?;
    let combined = match (&kernel, host) {
        (Some(k), true) => Some(link_host(module, k, &scratch.0)?),
        _ => None,
    };
    for (kind, path) in outputs {
        match kind {
            ArtifactKind::Header => {
                let guard = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                write(path, header(module, source_name, &guard).as_bytes())?;
            }
            ArtifactKind::Object => match &combined {
                Some(o) => copy(o, path)?,
                None => write(path, kernel.as_deref().unwrap_or_default())?,
            },
            ArtifactKind::Static => {
                let o = combined
                    .as_ref()
                    .expect("host build has the combined object");
                let _ = std::fs::remove_file(path); // ar appends to an existing archive
                // The member is named after the archive (`mlp.a` holds `mlp.o`).
                let stem = path.file_stem().unwrap_or("tensorc".as_ref());
                let member = scratch.0.join(stem).with_extension("o");
                copy(o, &member)?;
                run(
                    "ar",
                    &["rcs".as_ref(), path.as_os_str(), member.as_os_str()],
                )?;
            }
            ArtifactKind::Shared => {
                let o = combined
                    .as_ref()
                    .expect("host build has the combined object");
                run(
                    &c_compiler(),
                    &[
                        "-shared".as_ref(),
                        "-o".as_ref(),
                        path.as_os_str(),
                        o.as_os_str(),
                        "-lm".as_ref(),
                    ],
                )?;
            }
        }
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), AotError> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| AotError::Io {
            path: to.to_owned(),
            message: e.to_string(),
        })
}

/// Compiles wrappers and runtime with the system C compiler and merges them
/// with the kernel into one relocatable object whose only global definitions
/// are the `tensorc_*` entry points.
fn link_host(module: &Module, kernel: &[u8], dir: &Path) -> Result<PathBuf, AotError> {
    let kernel_o = dir.join("kernel.o");
    write(&kernel_o, kernel)?;
    // The wrappers and each runtime file are separate translation units, so
    // runtime files never see each other's (or the wrappers') static names.
    let wrappers = wrappers_c(module);
    let sources =
        std::iter::once(("wrappers.c", wrappers.as_str())).chain(RUNTIME_C.iter().copied());
    let combined = dir.join("combined.o");
    let mut ld_args: Vec<std::ffi::OsString> = vec![
        "-r".into(),
        "-o".into(),
        combined.clone().into(),
        kernel_o.into(),
    ];
    for (name, text) in sources {
        let c = dir.join(name);
        write(&c, text.as_bytes())?;
        let o = c.with_extension("o");
        run(
            &c_compiler(),
            &[
                "-c".as_ref(),
                "-O2".as_ref(),
                "-fPIC".as_ref(),
                "-o".as_ref(),
                o.as_os_str(),
                c.as_os_str(),
            ],
        )?;
        ld_args.push(o.into());
    }
    let refs: Vec<&std::ffi::OsStr> = ld_args.iter().map(|a| a.as_os_str()).collect();
    run("ld", &refs)?;
    let mut args: Vec<std::ffi::OsString> = module
        .functions
        .iter()
        .map(|f| format!("--keep-global-symbol=tensorc_{}", f.name))
        .chain(
            RUNTIME_GLOBALS
                .iter()
                .map(|s| format!("--keep-global-symbol={s}")),
        )
        .map(Into::into)
        .collect();
    args.push(combined.clone().into_os_string());
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    run("objcopy", &refs)?;
    Ok(combined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32t(shape: &[usize]) -> TensorType {
        TensorType::new(DType::F32, shape.to_vec())
    }

    #[test]
    fn parameter_names_avoid_c_keywords_and_outputs() {
        let p = vec![
            ("x".to_string(), f32t(&[2])),
            ("int".to_string(), f32t(&[2])),
            ("out0".to_string(), f32t(&[2])),
        ];
        assert_eq!(c_param_names(&p), vec!["x", "arg1", "arg2"]);
    }

    #[test]
    fn c_types() {
        assert_eq!(c_type(DType::F32), "float");
        assert_eq!(c_type(DType::U8), "uint8_t");
        assert_eq!(c_type(DType::BF16), "uint16_t");
        assert_eq!(c_type(DType::S64), "int64_t");
    }
}

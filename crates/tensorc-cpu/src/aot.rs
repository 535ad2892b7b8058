//! Ahead-of-time artifacts: the CPU pipeline's output written as an object
//! file, a shared library, a static archive and a C header, for a chosen CPU
//! and target triple, so a model ships as a small native library that needs
//! no LLVM, MLIR or tensorc at run time (issue 4, docs/c-abi.md).
//!
//! The generated code keeps MLIR's calling convention (`_mlir_ciface_<name>`
//! taking memref descriptors). C users never see descriptors: a generated C
//! wrapper `tensorc_<name>(const T *in..., T *out...)` builds them, and the
//! small C runtime (`runtime/*.c`, compiled with tensorc: `RUNTIME_OBJECTS`)
//! is linked in next to it. For the host triple, kernel, wrappers and runtime are merged into
//! one relocatable object (`ld -r`) whose only global definitions are the
//! `tensorc_*` entry points (`objcopy -G`), so a `def main` never clashes with
//! the C program's `main`.

use crate::{Pipelines, Upto, lower};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use tensorc_ir::{DType, Module, TensorType};
use tensorc_mlir::{CodegenError, CodegenOutput, CodegenTarget, Mlir, MlirError, codegen_for};

/// The C runtime compiled into every artifact, as (file name, text): every
/// `runtime/*.c` file, listed by `build.rs` (the same files the JIT links).
pub const RUNTIME_C: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/runtime_sources.rs"));

/// The same runtime files compiled when tensorc was built (`build.rs`:
/// `-O2 -fPIC`, one object per file), as (object name, bytes), for the host
/// triple tensorc runs on: host artifacts link these instead of compiling
/// the runtime on every build.
const RUNTIME_OBJECTS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/runtime_objects.rs"));

/// The runtime's symbols that stay global in a host artifact, all weak:
/// the exported `tensorc_release_workspace` (docs/c-abi.md), and the
/// workspace cache's state, hidden (never exported from a `.so`) but global
/// so that several statically linked artifacts share one cache
/// (`runtime/tensorc_workspace.c`).
const RUNTIME_GLOBALS: [&str; 6] = [
    "tensorc_release_workspace",
    "__tensorc_workspace_v1",
    // The thread pool (`runtime/tensorc_pool.c`): the exported thread-count
    // functions and the pool's shared state, all weak.
    "tensorc_set_num_threads",
    "tensorc_get_num_threads",
    "__tensorc_pool_v2",
    "__tensorc_pool_depth_v1",
];

/// The portable default CPU of artifacts (x86-64 hosts).
pub const DEFAULT_X86_CPU: &str = "x86-64-v2";

/// The CPU names LLVM 22 knows per architecture, one a line, as listed by
/// `llc -mtriple=<arch> -mcpu=help` (a unit test keeps them equal). LLVM's C
/// API cannot validate a CPU name, and an unknown one only makes LLVM warn
/// and fall back to a generic CPU, so tensorc checks against these lists.
const X86_64_CPUS: &str = include_str!("cpus/x86_64.txt");
const AARCH64_CPUS: &str = include_str!("cpus/aarch64.txt");

/// Checks a `--cpu` value for `triple` (`None`: the host): `native` or a CPU
/// name LLVM knows for that architecture. The error lists the valid forms
/// without naming a default: `compile` and `emit` default differently.
/// Triples of other architectures are not checked here (code generation
/// rejects them with its own message).
pub fn check_cpu(triple: Option<&str>, cpu: &str) -> Result<(), String> {
    let arch = triple
        .map(|t| t.split('-').next().unwrap_or(""))
        .unwrap_or(std::env::consts::ARCH);
    let (arch, names, forms) = match arch {
        "x86_64" | "amd64" => (
            "x86_64",
            X86_64_CPUS,
            "native, x86-64-v2, x86-64-v3, x86-64-v4",
        ),
        "aarch64" | "arm64" => ("aarch64", AARCH64_CPUS, "native, generic"),
        _ => return Ok(()),
    };
    if cpu == "native" || names.lines().any(|n| n == cpu) {
        return Ok(());
    }
    let list: Vec<&str> = names.lines().collect();
    Err(format!(
        "unknown CPU '{cpu}' for {arch}: --cpu takes {forms}, or one of LLVM's {arch} CPU \
         names: {}",
        list.join(", ")
    ))
}

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

/// The target `opts` name, resolved: the normalized triple, the CPU (the
/// default filled in) and whether it is the host's triple.
pub struct ResolvedTarget {
    pub triple: String,
    pub cpu: String,
    pub host: bool,
}

/// Resolves and checks the triple and CPU of `opts`. The facade resolves
/// them once, before lowering (the frontend sizes some lowerings for the
/// CPU's registers), and hands the result to `build`.
pub fn resolve_target(opts: &AotOptions) -> Result<ResolvedTarget, AotError> {
    let (triple, host) = resolve_triple(opts)?;
    if let Some(cpu) = &opts.cpu {
        check_cpu(Some(&triple), cpu).map_err(AotError::Options)?;
    }
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
    Ok(ResolvedTarget { triple, cpu, host })
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

// LLVM itself is driven by `tensorc_mlir` (`llvm_ir.rs`), the one crate that
// declares LLVM's C API.

/// The host's target triple as LLVM names it.
pub fn host_triple() -> String {
    tensorc_mlir::host_triple()
}

/// The host CPU's LLVM name and feature string (what `--cpu native` compiles for).
pub fn host_cpu() -> (String, String) {
    tensorc_mlir::host_cpu()
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
            let normalized = tensorc_mlir::normalize_triple(t)
                .ok_or_else(|| AotError::Options(format!("invalid target triple '{t}'")))?;
            let host = is_host(&normalized);
            Ok((normalized, host))
        }
    }
}

/// Compiles the lowered module (LLVM dialect) to an object file for `triple`
/// and `cpu` (`native` = host CPU and features), at O3, position-independent.
fn codegen(
    m: &tensorc_mlir::MlirModule<'_>,
    triple: &str,
    cpu: &str,
) -> Result<Vec<u8>, AotError> {
    let target = CodegenTarget {
        triple: Some(triple),
        cpu: Some(cpu),
    };
    codegen_for(m, CodegenOutput::Object, &target).map_err(|e| match e {
        CodegenError::UnsupportedTriple(msg) => AotError::Options(format!(
            "unsupported target triple '{triple}': {msg} (tensorc generates code for x86_64 and aarch64)"
        )),
        // The MLIR diagnostics went to the context's handler.
        CodegenError::Translation => {
            AotError::Codegen("translating the LLVM dialect to LLVM IR failed".into())
        }
        CodegenError::Llvm(msg) => AotError::Codegen(msg),
    })
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
        "/* Threads for the parallel loops of every tensorc artifact in the process\n \
         * (docs/c-abi.md, \"Threads\"), the calling thread included; n < 1 restores\n \
         * the default: TENSORC_NUM_THREADS, else every online CPU. Takes effect at\n \
         * the next call; results do not depend on it. */\n\
         void tensorc_set_num_threads(int n);\n\
         int tensorc_get_num_threads(void);\n"
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
pub(crate) fn c_compiler() -> String {
    std::env::var("CC")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cc".into())
}

pub(crate) fn run(tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), AotError> {
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

/// Builds the requested artifacts for `target` (from `resolve_target`).
/// `outputs` pairs each kind with its path. `mlir_text` is the frontend's
/// output for `module`, lowered for the same target.
pub fn build(
    module: &Module,
    source_name: &str,
    mlir_text: &str,
    pipelines: &Pipelines,
    target: &ResolvedTarget,
    outputs: &[(ArtifactKind, PathBuf)],
) -> Result<(), AotError> {
    let ResolvedTarget { triple, cpu, host } = target;
    let host = *host;
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
    if let Some(f) = module
        .functions
        .iter()
        .find(|f| f.name == "set_num_threads" || f.name == "get_num_threads")
    {
        return Err(AotError::Options(format!(
            "`def {0}` cannot be compiled to an artifact: its entry point would be \
             `tensorc_{0}`, the thread-count function every artifact exports (docs/c-abi.md); \
             rename the def",
            f.name
        )));
    }
    // Header only: no code generation needed.
    let needs_code = outputs.iter().any(|(k, _)| *k != ArtifactKind::Header);
    let kernel = if needs_code {
        let mlir = Mlir::new();
        let target = CodegenTarget {
            triple: Some(&triple),
            cpu: Some(&cpu),
        };
        let lowered = lower(&mlir, mlir_text, &pipelines.for_target(&target), Upto::LlvmDialect)?;
        Some(codegen(&lowered, &triple, &cpu)?)
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
    // Only the wrappers are compiled here; the runtime's objects were
    // compiled with tensorc (`RUNTIME_OBJECTS`).
    let wrappers_c_file = dir.join("wrappers.c");
    write(&wrappers_c_file, wrappers_c(module).as_bytes())?;
    let wrappers_o = wrappers_c_file.with_extension("o");
    run(
        &c_compiler(),
        &[
            "-c".as_ref(),
            "-O2".as_ref(),
            "-fPIC".as_ref(),
            "-o".as_ref(),
            wrappers_o.as_os_str(),
            wrappers_c_file.as_os_str(),
        ],
    )?;
    let combined = dir.join("combined.o");
    let mut ld_args: Vec<std::ffi::OsString> = vec![
        "-r".into(),
        "-o".into(),
        combined.clone().into(),
        kernel_o.into(),
        wrappers_o.into(),
    ];
    for (name, bytes) in RUNTIME_OBJECTS {
        let o = dir.join(name);
        write(&o, bytes)?;
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

    /// The CPU lists are LLVM 22's own (`llc` comes with the LLVM that
    /// `cargo xtask setup` installs).
    #[test]
    fn cpu_lists_match_llc() {
        for (arch, list) in [("x86_64", X86_64_CPUS), ("aarch64", AARCH64_CPUS)] {
            let out = Command::new("/usr/lib/llvm-22/bin/llc")
                .args([&format!("-mtriple={arch}-unknown-linux-gnu"), "-mcpu=help"])
                .output()
                .expect("llc of LLVM 22 (installed by cargo xtask setup)");
            // The list goes to stdout or stderr depending on the LLVM build.
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let cpus: Vec<&str> = text
                .split("Available CPUs for this target:")
                .nth(1)
                .and_then(|t| t.split("Available features").next())
                .expect("llc lists CPUs")
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            assert_eq!(list.lines().collect::<Vec<_>>(), cpus, "{arch}");
        }
    }

    #[test]
    fn cpu_names_are_checked_per_architecture() {
        assert_eq!(check_cpu(Some("x86_64-unknown-linux-gnu"), "x86-64-v3"), Ok(()));
        assert_eq!(check_cpu(Some("x86_64-unknown-linux-gnu"), "skylake"), Ok(()));
        assert_eq!(check_cpu(Some("aarch64-unknown-linux-gnu"), "neoverse-n1"), Ok(()));
        assert_eq!(check_cpu(None, "native"), Ok(()));
        let e = check_cpu(Some("x86_64-unknown-linux-gnu"), "neoverse-n1").unwrap_err();
        assert!(e.starts_with("unknown CPU 'neoverse-n1' for x86_64: --cpu takes native, x86-64-v2, x86-64-v3, x86-64-v4, or one of LLVM's x86_64 CPU names: alderlake, "), "{e}");
        let e = check_cpu(Some("aarch64-linux-gnu"), "skylake").unwrap_err();
        assert!(e.contains("native, generic"), "{e}");
        assert!(e.contains("neoverse-n1"), "{e}");
        // Other architectures are rejected by code generation, not here.
        assert_eq!(check_cpu(Some("riscv64-unknown-linux-gnu"), "whatever"), Ok(()));
    }

    #[test]
    fn c_types() {
        assert_eq!(c_type(DType::F32), "float");
        assert_eq!(c_type(DType::U8), "uint8_t");
        assert_eq!(c_type(DType::BF16), "uint16_t");
        assert_eq!(c_type(DType::S64), "int64_t");
    }
}

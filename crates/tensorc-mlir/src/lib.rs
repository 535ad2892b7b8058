//! The one crate that talks to MLIR (melior / mlir-sys).
//!
//! Everything else in tensorc handles MLIR as text: the frontend emits it, the
//! pass pipelines are strings, snapshots compare printed modules. This crate
//! owns the one place where that text meets a live MLIR `Context`: parsing,
//! verifying, running pass pipelines, printing, translating to LLVM IR and
//! creating the JIT engine — with MLIR's diagnostics captured as values
//! (never printed to stderr, never aborting) so callers can report them.

mod diagnostics;
mod external_passes;
mod jit;
mod llvm_ir;
mod read_only;

pub use diagnostics::{FileLoc, MlirDiagnostic, Severity};
pub use external_passes::{PassConstructor, register_external_pass};
pub use jit::{JitEngine, PackedFn};
pub use llvm_ir::{
    CodegenError, CodegenOutput, CodegenTarget, codegen_for, exit_on_llvm_fatal_error, host_cpu, host_triple,
    normalize_triple, target_has_avx512,
};

use melior::dialect::DialectRegistry;
use melior::ir::Module;
use melior::ir::operation::{OperationLike, OperationPrintingFlags};
use melior::pass::PassManager;
use melior::{Context, utility};
use std::fmt;
use std::sync::{Arc, Mutex};

/// What failed, so callers can word the error (all are tensorc bugs when the
/// input type-checked, but the stage tells where to look).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The MLIR parser rejected the text (MLIR's parser also runs the verifier,
    /// so an invalid but well-formed module is reported here too).
    Parse,
    /// The MLIR verifier rejected a module.
    Verify,
    /// The pass pipeline string did not parse.
    PipelineSyntax,
    /// A pass failed.
    Pass,
    /// Translation to LLVM IR failed.
    Translate,
    /// LLVM could not optimize or generate native code.
    Codegen,
    /// The JIT could not be created or a symbol was missing.
    Jit,
}

/// An MLIR failure: the stage it happened in, a summary and MLIR's own
/// diagnostics. The messages state what failed, not whose fault it is: the
/// facade reports these as internal errors (tensorc bugs) with the stage.
#[derive(Clone, Debug, thiserror::Error)]
pub struct MlirError {
    pub kind: ErrorKind,
    /// The tensorc stage whose output or pipeline failed (`lower`, `opt`, `cpu-lowering`, ...).
    pub stage: String,
    pub message: String,
    pub diagnostics: Vec<MlirDiagnostic>,
}

impl fmt::Display for MlirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        for d in &self.diagnostics {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

/// Printing options for `Mlir::print`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrintOptions {
    /// Print `loc(...)` debug locations. Off by default: snapshots must not
    /// depend on where a file lives, and locations add noise to diffs.
    pub locations: bool,
}

/// An MLIR context with every dialect, pass and LLVM translation registered and
/// a diagnostic handler that records instead of printing.
pub struct Mlir {
    // Declared first so the handler's sink outlives nothing it should not:
    // the context owns the handler closure and frees it on destruction.
    context: Context,
    sink: Arc<Mutex<Vec<MlirDiagnostic>>>,
}

/// A parsed MLIR module living in an `Mlir` context.
pub struct MlirModule<'c> {
    module: Module<'c>,
}

impl Default for Mlir {
    fn default() -> Self {
        Mlir::new()
    }
}

impl Mlir {
    pub fn new() -> Mlir {
        let registry = DialectRegistry::new();
        utility::register_all_dialects(&registry);
        // No MLIR thread pool: the machines are small, several contexts may be
        // alive at once (parallel tests), and single-threaded passes keep
        // diagnostics in a deterministic order.
        let context = Context::new_with_registry(&registry, false);
        context.load_all_available_dialects();
        utility::register_all_llvm_translations(&context);
        utility::register_all_passes();
        let sink: Arc<Mutex<Vec<MlirDiagnostic>>> = Arc::default();
        let s = sink.clone();
        context.attach_diagnostic_handler(move |d| {
            if let Ok(mut v) = s.lock() {
                v.push(MlirDiagnostic::from_melior(&d));
            }
            true // handled: do not fall through to the default stderr printer
        });
        Mlir { context, sink }
    }

    /// The underlying melior context (for code in this crate's dependants that
    /// needs to build IR directly; prefer the text-level functions).
    pub fn context(&self) -> &Context {
        &self.context
    }

    fn take_diagnostics(&self) -> Vec<MlirDiagnostic> {
        self.sink
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    fn error(&self, kind: ErrorKind, stage: &str, message: String) -> MlirError {
        MlirError {
            kind,
            stage: stage.to_owned(),
            message,
            diagnostics: self.take_diagnostics(),
        }
    }

    /// Parses MLIR text produced by tensorc stage `stage`, then verifies it.
    /// Both failures are tensorc bugs: the text came from our own lowering.
    pub fn parse(&self, text: &str, stage: &str) -> Result<MlirModule<'_>, MlirError> {
        self.take_diagnostics();
        let Some(module) = Module::parse(&self.context, text) else {
            return Err(self.error(
                ErrorKind::Parse,
                stage,
                format!(
                    "the MLIR parser or verifier rejected the output of `{stage}` for a program that \
                     type-checked"
                ),
            ));
        };
        let m = MlirModule { module };
        self.verify(&m, stage)?;
        Ok(m)
    }

    /// Runs the MLIR verifier on a module produced by stage `stage`.
    pub fn verify(&self, m: &MlirModule<'_>, stage: &str) -> Result<(), MlirError> {
        if m.module.as_operation().verify() {
            self.take_diagnostics();
            Ok(())
        } else {
            Err(self.error(
                ErrorKind::Verify,
                stage,
                format!(
                    "the MLIR verifier rejected the output of `{stage}` for a program that type-checked"
                ),
            ))
        }
    }

    /// Runs a textual pass pipeline on the module. `pipeline` is either a full
    /// `builtin.module(...)` pipeline or a comma-separated list of passes
    /// anchored on the module. The verifier runs after every pass.
    ///
    /// A top-level element naming a pass registered with
    /// `register_external_pass` (a Rust pass) splits the pipeline: the text
    /// before it runs, then that pass, then the rest, all on this module.
    pub fn run_pipeline(
        &self,
        m: &mut MlirModule<'_>,
        pipeline: &str,
        stage: &str,
    ) -> Result<(), MlirError> {
        let pipeline = pipeline.trim();
        let elements = pipeline
            .strip_prefix("builtin.module(")
            .and_then(|p| p.strip_suffix(')'))
            .unwrap_or(pipeline);
        let parts = external_passes::split(elements);
        if !parts
            .iter()
            .any(|p| matches!(p, external_passes::Part::External(_)))
        {
            return self.run_text_pipeline(m, pipeline, stage);
        }
        for part in parts {
            match part {
                external_passes::Part::Text(t) => self.run_text_pipeline(m, &t, stage)?,
                external_passes::Part::External(create) => {
                    self.take_diagnostics();
                    let pm = PassManager::new(&self.context);
                    pm.enable_verifier(true);
                    pm.add_pass(create());
                    if pm.run(&mut m.module).is_err() {
                        return Err(self.error(
                            ErrorKind::Pass,
                            stage,
                            format!("a tensorc pass in the `{stage}` pipeline failed"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `run_pipeline` for text only (every pass registered with MLIR).
    fn run_text_pipeline(
        &self,
        m: &mut MlirModule<'_>,
        pipeline: &str,
        stage: &str,
    ) -> Result<(), MlirError> {
        self.take_diagnostics();
        let pipeline = pipeline.trim();
        let full = if pipeline.starts_with("builtin.module(") {
            pipeline.to_owned()
        } else {
            format!("builtin.module({pipeline})")
        };
        let pm = PassManager::new(&self.context);
        pm.enable_verifier(true);
        if let Err(e) = utility::parse_pass_pipeline(pm.as_operation_pass_manager(), &full) {
            let detail = match e {
                melior::Error::ParsePassPipeline(s) => s,
                other => other.to_string(),
            };
            return Err(self.error(
                ErrorKind::PipelineSyntax,
                stage,
                format!("the `{stage}` pass pipeline does not parse: {detail}"),
            ));
        }
        match pm.run(&mut m.module) {
            Ok(()) => {
                self.take_diagnostics();
                Ok(())
            }
            Err(_) => Err(self.error(
                ErrorKind::Pass,
                stage,
                format!("a pass in the `{stage}` pipeline failed"),
            )),
        }
    }

    /// Adds `bufferization.writable = false` to every tensor argument of every
    /// function, so bufferization never writes into the caller's inputs (see
    /// `read_only.rs`). Returns the number of arguments newly marked.
    pub fn mark_tensor_arguments_read_only(
        &self,
        m: &mut MlirModule<'_>,
        stage: &str,
    ) -> Result<usize, MlirError> {
        self.take_diagnostics();
        read_only::mark_tensor_arguments_read_only(&self.context, m).map_err(|e| {
            self.error(
                ErrorKind::Verify,
                stage,
                format!("could not mark the inputs of `{stage}` read-only: {e}"),
            )
        })
    }

    /// Prints a module in MLIR's custom form.
    pub fn print(&self, m: &MlirModule<'_>, options: PrintOptions) -> String {
        let flags = OperationPrintingFlags::new().enable_debug_info(options.locations, false);
        match m.module.as_operation().to_string_with_flags(flags) {
            Ok(s) => s,
            // Only fails on non-UTF-8 output, which MLIR never prints for our IR;
            // fall back to the default printer rather than losing the text.
            Err(_) => m.module.as_operation().to_string(),
        }
    }

    /// Translates a module in the LLVM dialect to LLVM IR text.
    pub fn translate_to_llvm_ir(
        &self,
        m: &MlirModule<'_>,
        stage: &str,
    ) -> Result<String, MlirError> {
        self.take_diagnostics();
        llvm_ir::translate(&m.module).ok_or_else(|| {
            self.error(
                ErrorKind::Translate,
                stage,
                format!("translating the `{stage}` output to LLVM IR failed"),
            )
        })
    }

    /// Compiles a module in the LLVM dialect for the host CPU (LLVM `-O3`,
    /// position-independent): assembly text or an ELF object file.
    pub fn codegen(
        &self,
        m: &MlirModule<'_>,
        output: CodegenOutput,
        stage: &str,
    ) -> Result<Vec<u8>, MlirError> {
        self.codegen_for(m, output, stage, &CodegenTarget::default())
    }

    /// `codegen` for `target` instead of the host CPU.
    pub fn codegen_for(
        &self,
        m: &MlirModule<'_>,
        output: CodegenOutput,
        stage: &str,
        target: &CodegenTarget<'_>,
    ) -> Result<Vec<u8>, MlirError> {
        self.take_diagnostics();
        llvm_ir::codegen(&m.module, output, target).map_err(|e| match e {
            None => self.error(
                ErrorKind::Translate,
                stage,
                format!("translating the `{stage}` output to LLVM IR failed"),
            ),
            Some(msg) => self.error(ErrorKind::Codegen, stage, msg),
        })
    }

    /// Creates a JIT engine (host CPU, LLVM `opt_level` 0..=3) for a module in
    /// the LLVM dialect.
    pub fn jit(
        &self,
        m: &MlirModule<'_>,
        opt_level: u32,
        stage: &str,
    ) -> Result<JitEngine, MlirError> {
        self.take_diagnostics();
        JitEngine::create(&m.module, opt_level).ok_or_else(|| {
            self.error(
                ErrorKind::Jit,
                stage,
                format!("creating the JIT engine for the `{stage}` output failed"),
            )
        })
    }
}

impl MlirModule<'_> {
    /// Names of the functions the module declares but does not define
    /// (`llvm.func` or `func.func` without a body): what generated code
    /// expects the runtime environment to provide (libc, libm, helpers).
    pub fn external_functions(&self) -> Vec<String> {
        use melior::ir::attribute::StringAttribute;
        use melior::ir::{BlockLike, RegionLike};
        let mut out = Vec::new();
        let mut op = self.module.body().first_operation();
        while let Some(o) = op {
            op = o.next_in_block();
            let name = o.name();
            let kind = name.as_string_ref().as_str().unwrap_or("");
            if kind != "llvm.func" && kind != "func.func" {
                continue;
            }
            let has_body = o.region(0).ok().and_then(|r| r.first_block()).is_some();
            if has_body {
                continue;
            }
            if let Some(sym) = o
                .attribute("sym_name")
                .ok()
                .and_then(|a| StringAttribute::try_from(a).ok())
            {
                out.push(sym.value().to_owned());
            }
        }
        out
    }

    /// The raw module handle, for callers that need mlir-sys directly.
    pub fn to_raw(&self) -> mlir_sys::MlirModule {
        self.module.to_raw()
    }
}

#[cfg(test)]
mod tests;

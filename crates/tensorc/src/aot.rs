//! Ahead-of-time artifacts through the facade: the same parse, check and
//! lowering as `compile_str`, then `tensorc-cpu`'s artifact builder, so the
//! CLI's `compile` and the tests share one path (issue 4, docs/aot.md).

use crate::{Error, SourceFile};
use std::path::PathBuf;
pub use tensorc_cpu::aot::{AotOptions, ArtifactKind, check_cpu};

/// Compiles `source` and writes each requested artifact to its path.
pub fn compile_artifacts(
    file_name: &str,
    source: &str,
    opts: &AotOptions,
    outputs: &[(ArtifactKind, PathBuf)],
) -> Result<(), Error> {
    let file = SourceFile::new(file_name, source);
    let module = tensorc_ir::check::compile(&file).map_err(Error::Program)?;
    // A header alone needs no MLIR; lowering anyway reports programs the CPU
    // target cannot compile before the user builds against the header.
    let target = tensorc_cpu::aot::resolve_target(opts).map_err(aot_error)?;
    let cpu = tensorc_mlir::CodegenTarget { triple: Some(&target.triple), cpu: Some(&target.cpu) };
    let text = crate::lower_to_mlir(&module, &file, Some(&cpu))?;
    tensorc_cpu::aot::build(&module, file_name, &text, &crate::pipelines(), &target, outputs).map_err(aot_error)
}

/// The facade's error for an artifact builder's.
fn aot_error(e: tensorc_cpu::aot::AotError) -> Error {
    match e {
        tensorc_cpu::aot::AotError::Mlir(m) => m.into(),
        tensorc_cpu::aot::AotError::Io { path, message } => Error::Io { path, message },
        tensorc_cpu::aot::AotError::Codegen(m) => Error::internal("codegen", m),
        other => Error::Unsupported(other.to_string()),
    }
}

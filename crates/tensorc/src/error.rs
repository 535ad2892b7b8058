//! The one error type of the library, and its user-facing text.
//!
//! Variants follow who is at fault: the program (diagnostics with spans), the
//! caller's inputs, the file system, or tensorc itself (`Internal`, always
//! naming the stage, per spec §5). `render` gives the text the CLI prints.

use std::path::PathBuf;
use tensorc_ir::Diagnostics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program does not parse or type-check.
    #[error("{}", tensorc_ir::render::render(.0))]
    Program(Diagnostics),
    /// The caller's tensors do not fit the function (wrong dtype, shape or count).
    #[error("{0}")]
    Input(String),
    /// A tensorc bug, or a limitation reported as one, in the named stage.
    #[error("internal error in stage `{stage}` (this is a tensorc bug): {message}")]
    Internal { stage: String, message: String },
    /// Reading or writing a file failed.
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// `entry` could not pick a function.
    #[error("{}", no_such_function(requested.as_deref(), available))]
    NoSuchFunction {
        requested: Option<String>,
        available: Vec<String>,
    },
    /// The program uses something the chosen target does not implement yet.
    #[error("{0}")]
    Unsupported(String),
}

fn no_such_function(requested: Option<&str>, available: &[String]) -> String {
    let list = if available.is_empty() {
        "(none)".to_string()
    } else {
        available.join(", ")
    };
    match requested {
        Some(name) => format!("no function named '{name}'; the program defines: {list}"),
        None => format!(
            "the program defines several functions and none is named 'main'; choose one of: {list}"
        ),
    }
}

impl Error {
    /// The text to show a person: program errors as `FILE:LINE:COL: error: …`
    /// with the source line and a caret, everything else as `error: …`.
    /// Always ends with a newline.
    pub fn render(&self) -> String {
        match self {
            Error::Program(d) => tensorc_ir::render::render(d),
            other => format!("error: {other}\n"),
        }
    }

    pub(crate) fn internal(stage: &str, message: impl Into<String>) -> Error {
        Error::Internal {
            stage: stage.to_owned(),
            message: message.into(),
        }
    }
}

impl From<tensorc_mlir::MlirError> for Error {
    fn from(e: tensorc_mlir::MlirError) -> Error {
        Error::Internal {
            stage: e.stage.clone(),
            message: e.to_string(),
        }
    }
}

impl From<tensorc_cpu::CpuError> for Error {
    fn from(e: tensorc_cpu::CpuError) -> Error {
        match e {
            tensorc_cpu::CpuError::Mlir(m) => m.into(),
            tensorc_cpu::CpuError::Args(msg) => Error::Input(msg),
            other => Error::internal("jit", other.to_string()),
        }
    }
}

impl From<tensorc_interp::InterpError> for Error {
    fn from(e: tensorc_interp::InterpError) -> Error {
        use tensorc_interp::InterpError as E;
        match e {
            E::UnknownFunction(name) => Error::NoSuchFunction {
                requested: Some(name),
                available: Vec::new(),
            },
            e @ (E::InputCount { .. } | E::InputType { .. }) => Error::Input(e.to_string()),
            E::Unsupported(what) => {
                Error::Unsupported(format!("unsupported operation in the interpreter: {what}"))
            }
            // Internal errors, and any kind added later, are the interpreter's bugs.
            other => Error::internal("interp", other.to_string()),
        }
    }
}

/// Vulkan back-end errors: unsupported ops and missing device features are
/// the program's or the machine's limits (`Unsupported`), a missing driver
/// says so in its first words, anything else is a tensorc bug. An op without
/// a Vulkan lowering is reported at the statement it came from, naming the
/// `.nxir` operation.
pub(crate) fn from_vulkan(e: tensorc_vulkan::VulkanError, file: &tensorc_ir::SourceFile) -> Error {
    use tensorc_vulkan::VulkanError as V;
    match e {
        V::Mlir { stage, message } => Error::Internal { stage, message },
        V::Args(msg) => Error::Input(msg),
        V::UnsupportedOp { mlir_op, what, at } => {
            // The frontend's locations point at the statement `name = op ...`.
            let stmt = at.as_ref().and_then(|l| {
                let line = file.text.lines().nth(l.line.checked_sub(1)?)?;
                let (_, rhs) = line.split_once('=')?;
                let op = rhs.split_whitespace().next()?;
                Some((l, op.trim_end_matches(',').to_owned()))
            });
            Error::Unsupported(match stmt {
                Some((l, op)) => format!(
                    "{}:{}:{}: the Vulkan target does not support `{op}` (it lowers to `{mlir_op}`, which has no Vulkan kernel)",
                    file.name, l.line, l.col
                ),
                None => format!("the Vulkan target does not support {what} (`{mlir_op}`)"),
            })
        }
        V::LoopLimit {
            function,
            device,
            bound,
            limit,
            at: Some(l),
        } => {
            // Named like an unsupported op: the statement and its operation
            // (the operation only when the source is at hand: not for a
            // `.tvk` artifact, whose kernels keep the `.nxir` position).
            let op = (l.file == file.name)
                .then_some(file.text.as_str())
                .and_then(|text| text.lines().nth(l.line.saturating_sub(1)))
                .and_then(|line| line.split_once('='))
                .and_then(|(_, rhs)| rhs.split_whitespace().next())
                .map(|op| format!("`{}` ", op.trim_end_matches(',')))
                .unwrap_or_default();
            let bound = bound.map_or("an unknown number of".to_owned(), |n| format!("up to {n}"));
            Error::Unsupported(format!(
                "{}:{}:{}: {op}runs {bound} loop iterations in one kernel invocation, more than the {limit} that {device} runs without silently stopping early; '{function}' cannot run on this Vulkan device (use another device or --target cpu)",
                l.file, l.line, l.col
            ))
        }
        e @ (V::NoDriver(_)
        | V::Unsupported(_)
        | V::DeviceFeature(_)
        | V::TooManyWorkgroups(_)
        | V::LoopLimit { .. }) => Error::Unsupported(e.to_string()),
        other => Error::internal("vulkan", other.to_string()),
    }
}

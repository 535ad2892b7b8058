//! `tensorc-build` compiles `.nxir` models from a Cargo build script, in the
//! spirit of the `cc` crate: it drives the `tensorc` binary (so this crate
//! stays free of LLVM and MLIR and is a light build-dependency), tells Cargo
//! to link the resulting static archives, and writes a Rust file of safe,
//! shape-checked functions to `include!` (docs/aot.md, "Shipping a model
//! from Rust").
//!
//! ```no_run
//! // build.rs
//! tensorc_build::Build::new()
//!     .file("model.nxir")
//!     .cpu("x86-64-v3")
//!     .compile("model");
//! ```
//!
//! ```text
//! // src/main.rs
//! mod model {
//!     include!(concat!(env!("OUT_DIR"), "/model.rs"));
//! }
//! ```
//!
//! The compiler is `$TENSORC` if set, else `tensorc` on `PATH`. Signatures
//! are read with `tensorc-ir` (the LLVM-free parser and checker).

mod rust_gen;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the `tensorc` binary.
pub const TENSORC_ENV: &str = "TENSORC";

/// A build of one or more `.nxir` files into one Rust module (see the crate docs).
#[derive(Clone, Debug, Default)]
pub struct Build {
    files: Vec<PathBuf>,
    cpu: Option<String>,
    tensorc: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    ndarray: bool,
    quiet: bool,
}

/// Why a build failed. `Display` gives the whole story, including tensorc's
/// diagnostics, so a build script can show it as is.
#[derive(Debug)]
pub enum Error {
    /// The `tensorc` binary was not found.
    CompilerNotFound { env_value: Option<OsString> },
    /// No `.file(...)` was given.
    NoFiles,
    /// `compile`'s name is not usable as a library name.
    InvalidName(String),
    /// Neither `.out_dir(...)` nor `$OUT_DIR` (set by Cargo for build scripts).
    NoOutDir,
    /// Reading a model or writing an output failed.
    Io { path: PathBuf, message: String },
    /// `tensorc compile` could not be started.
    Spawn { tensorc: PathBuf, message: String },
    /// `tensorc compile` failed; `stderr` holds its diagnostics.
    Compile {
        file: PathBuf,
        command: String,
        status: String,
        stderr: String,
    },
    /// tensorc compiled the file but this crate's checker rejects it (a
    /// tensorc binary of another version than this crate).
    Check { file: PathBuf, diagnostics: String },
    /// Two `def`s would generate the same Rust function name.
    NameClash(Vec<String>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CompilerNotFound { env_value } => {
                write!(f, "cannot find the tensorc compiler: ")?;
                match env_value {
                    Some(v) => write!(
                        f,
                        "${TENSORC_ENV} is set to '{}', which is not an executable file",
                        Path::new(v).display()
                    )?,
                    None => write!(f, "${TENSORC_ENV} is not set and there is no `tensorc` on PATH")?,
                }
                write!(
                    f,
                    "; set {TENSORC_ENV} to the path of the tensorc binary or put it on PATH \
                     (build it with `cargo build -p tensorc-cli` in the tensorc repository)"
                )
            }
            Error::NoFiles => write!(f, "no .nxir file to compile: call .file(...) first"),
            Error::InvalidName(n) => write!(
                f,
                "invalid name '{n}' for compile(): use letters, digits, '_' and '-' only"
            ),
            Error::NoOutDir => write!(
                f,
                "OUT_DIR is not set (it is set by Cargo for build scripts); call .out_dir(...)"
            ),
            Error::Io { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Spawn { tensorc, message } => {
                write!(f, "cannot run {}: {message}", tensorc.display())
            }
            Error::Compile {
                file,
                command,
                status,
                stderr,
            } => write!(
                f,
                "tensorc failed to compile {} ({status}):\n{}\ncommand: {command}",
                file.display(),
                stderr.trim_end()
            ),
            Error::Check { file, diagnostics } => write!(
                f,
                "tensorc compiled {} but tensorc-build's checker rejects it (are the tensorc \
                 binary and the tensorc-build crate the same version?):\n{}",
                file.display(),
                diagnostics.trim_end()
            ),
            Error::NameClash(names) => write!(
                f,
                "these generated Rust functions would be defined twice: {} (rename a def, or \
                 compile the files separately)",
                names.join(", ")
            ),
        }
    }
}

impl std::error::Error for Error {}

impl Build {
    /// A build with no files, the default CPU and `$OUT_DIR` as output.
    pub fn new() -> Build {
        Build::default()
    }

    /// Adds a `.nxir` file (relative paths are relative to the build script's
    /// working directory, the package root).
    pub fn file(&mut self, path: impl AsRef<Path>) -> &mut Build {
        self.files.push(path.as_ref().to_owned());
        self
    }

    /// Adds several `.nxir` files.
    pub fn files<P: AsRef<Path>>(&mut self, paths: impl IntoIterator<Item = P>) -> &mut Build {
        for p in paths {
            self.file(p);
        }
        self
    }

    /// The CPU to optimize for (`tensorc compile --cpu`): `native`,
    /// `x86-64-v2` (the default on x86-64), `x86-64-v3`, `x86-64-v4` or an
    /// LLVM CPU name.
    pub fn cpu(&mut self, cpu: &str) -> &mut Build {
        self.cpu = Some(cpu.to_owned());
        self
    }

    /// The `tensorc` binary to use, overriding `$TENSORC` and `PATH`.
    pub fn tensorc(&mut self, path: impl AsRef<Path>) -> &mut Build {
        self.tensorc = Some(path.as_ref().to_owned());
        self
    }

    /// Where archives and the generated Rust go (default: `$OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl AsRef<Path>) -> &mut Build {
        self.out_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Also generate `<def>_nd` functions taking `ndarray` views and returning
    /// arrays (the crate including the file must depend on `ndarray` 0.16).
    pub fn ndarray(&mut self, on: bool) -> &mut Build {
        self.ndarray = on;
        self
    }

    /// Do not print `cargo:` instructions (for use outside build scripts).
    pub fn cargo_metadata(&mut self, on: bool) -> &mut Build {
        self.quiet = !on;
        self
    }

    /// Like [`Build::try_compile`], but panics with the error's full text (as
    /// build scripts conventionally do: Cargo shows the message and fails the build).
    pub fn compile(&self, name: &str) {
        if let Err(e) = self.try_compile(name) {
            panic!("\n\ntensorc-build: {e}\n\n");
        }
    }

    /// Compiles every file into a static archive in the output directory,
    /// prints the `cargo:` lines that link them (and libm) and rerun the build
    /// script when a model, `$TENSORC` or the binary changes, and writes
    /// `OUT/<name>.rs`. Returns the path of that file.
    pub fn try_compile(&self, name: &str) -> Result<PathBuf, Error> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::InvalidName(name.to_owned()));
        }
        if self.files.is_empty() {
            return Err(Error::NoFiles);
        }
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let tensorc = match &self.tensorc {
            Some(t) => t.clone(),
            None => find_tensorc(
                std::env::var_os(TENSORC_ENV),
                std::env::var_os("PATH"),
            )?,
        };
        self.emit(&format!("rerun-if-env-changed={TENSORC_ENV}"));
        self.emit(&format!("rerun-if-changed={}", tensorc.display()));
        // Cross builds: Cargo's TARGET differs from HOST. tensorc says clearly
        // which artifacts it can make for a foreign triple.
        let triple = match (std::env::var("TARGET"), std::env::var("HOST")) {
            (Ok(t), Ok(h)) if t != h => Some(t),
            _ => None,
        };

        let mut modules = Vec::new();
        let mut libs = Vec::new();
        for (i, file) in self.files.iter().enumerate() {
            self.emit(&format!("rerun-if-changed={}", file.display()));
            let lib = if self.files.len() == 1 {
                name.to_owned()
            } else {
                format!("{name}_{i}")
            };
            let archive = out_dir.join(format!("lib{lib}.a"));
            let mut cmd = Command::new(&tensorc);
            cmd.arg("compile")
                .arg(file)
                .args(["--target", "cpu", "--emit", "static", "-o"])
                .arg(&archive);
            if let Some(cpu) = &self.cpu {
                cmd.args(["--cpu", cpu]);
            }
            if let Some(t) = &triple {
                cmd.args(["--target-triple", t]);
            }
            run_tensorc(&mut cmd, &tensorc, file)?;
            let text = std::fs::read_to_string(file).map_err(|e| Error::Io {
                path: file.clone(),
                message: e.to_string(),
            })?;
            let source = tensorc_ir::SourceFile::new(file.display().to_string(), text);
            let module = tensorc_ir::check::compile(&source).map_err(|d| Error::Check {
                file: file.clone(),
                diagnostics: tensorc_ir::render::render(&d),
            })?;
            modules.push((file.display().to_string(), module));
            libs.push(lib);
        }

        let units: Vec<rust_gen::Unit<'_>> = modules
            .iter()
            .map(|(n, m)| rust_gen::Unit {
                source_name: n,
                functions: &m.functions,
            })
            .collect();
        let clashes = rust_gen::name_clashes(&units, self.ndarray);
        if !clashes.is_empty() {
            return Err(Error::NameClash(clashes));
        }
        let rs = out_dir.join(format!("{name}.rs"));
        std::fs::write(&rs, rust_gen::generate(&units, self.ndarray)).map_err(|e| Error::Io {
            path: rs.clone(),
            message: e.to_string(),
        })?;

        self.emit(&format!("rustc-link-search=native={}", out_dir.display()));
        for lib in &libs {
            self.emit(&format!("rustc-link-lib=static={lib}"));
        }
        // The generated code calls libm (expf, tanhf, ...); Windows has none.
        if std::env::var("CARGO_CFG_TARGET_OS").map_or(true, |os| os != "windows") {
            self.emit("rustc-link-lib=m");
        }
        Ok(rs)
    }

    fn emit(&self, line: &str) {
        if !self.quiet {
            println!("cargo:{line}");
        }
    }
}

/// Runs one `tensorc compile`, turning a failure into an error carrying its
/// diagnostics.
fn run_tensorc(cmd: &mut Command, tensorc: &Path, file: &Path) -> Result<(), Error> {
    let out = cmd.output().map_err(|e| Error::Spawn {
        tensorc: tensorc.to_owned(),
        message: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let command = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Err(Error::Compile {
        file: file.to_owned(),
        command,
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `env_value` (the value of `$TENSORC`) when set, else the first `tensorc`
/// on `path`. A set but wrong `$TENSORC` is an error rather than silently
/// falling back to `PATH`.
fn find_tensorc(env_value: Option<OsString>, path: Option<OsString>) -> Result<PathBuf, Error> {
    if let Some(v) = env_value.filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::CompilerNotFound {
                env_value: Some(v),
            })
        };
    }
    let exe = format!("tensorc{}", std::env::consts::EXE_SUFFIX);
    path.iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&exe))
        .find(|p| p.is_file())
        .ok_or(Error::CompilerNotFound { env_value: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test, removed when the test passes (a
    /// failed test's files stay to be looked at): each run of the suite used
    /// to leave two directories behind in the temporary directory.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<Path> for Scratch {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "tensorc-build-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    #[test]
    fn missing_compiler_names_the_variable_and_path() {
        let e = find_tensorc(None, Some(OsString::from("/nonexistent-dir"))).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("$TENSORC is not set"), "{msg}");
        assert!(msg.contains("no `tensorc` on PATH"), "{msg}");
        let e = find_tensorc(Some("/no/such/tensorc".into()), None).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("$TENSORC is set to '/no/such/tensorc'"), "{msg}");
    }

    #[test]
    fn compiler_is_found_through_the_variable_or_path() {
        let dir = scratch("find");
        let bin = dir.join("tensorc");
        std::fs::write(&bin, "").unwrap();
        assert_eq!(find_tensorc(Some(bin.clone().into()), None).unwrap(), bin);
        let path = std::env::join_paths(["/nonexistent-dir".as_ref(), dir.as_ref()]).unwrap();
        assert_eq!(find_tensorc(None, Some(path)).unwrap(), bin);
    }

    #[test]
    fn usage_errors_are_reported_before_anything_runs() {
        let e = Build::new().out_dir("/tmp").try_compile("m").unwrap_err();
        assert_eq!(e.to_string(), "no .nxir file to compile: call .file(...) first");
        let e = Build::new().file("a.nxir").try_compile("my model").unwrap_err();
        assert!(e.to_string().starts_with("invalid name 'my model'"), "{e}");
    }

    /// A failing tensorc's diagnostics are the error text (a stand-in script
    /// plays the compiler, so this test needs no LLVM).
    #[cfg(unix)]
    #[test]
    fn compiler_diagnostics_are_the_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("fail");
        let bin = dir.join("fake-tensorc");
        std::fs::write(
            &bin,
            "#!/bin/sh\necho 'bad.nxir:1:5: error: unknown operation `frob`' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = Build::new()
            .file(dir.join("bad.nxir"))
            .tensorc(&bin)
            .out_dir(&*dir)
            .cargo_metadata(false)
            .try_compile("bad")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("tensorc failed to compile"), "{msg}");
        assert!(msg.contains("bad.nxir:1:5: error: unknown operation `frob`"), "{msg}");
        assert!(msg.contains("--emit static"), "{msg}");
    }
}

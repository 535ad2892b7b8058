//! The command-line grammar of `tensorc` (spec §6), as clap derive types, plus
//! the small pure decisions about arguments (which function is the entry
//! point, which `--input` goes with which parameter) that are worth unit tests
//! of their own without linking the compiler.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// tensorc: an ahead-of-time tensor compiler for .nxir programs (Elixir Nx expression graphs).
///
/// Exit codes: 0 success, 1 an error in the program or its inputs (diagnostics on
/// stderr), 2 a usage error (bad options, or which function to run is unclear).
#[derive(Parser, Debug)]
#[command(name = "tensorc", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and type-check a program; print diagnostics, nothing on success.
    Check {
        /// The .nxir file.
        file: PathBuf,
    },
    /// Print the canonical form of a program (every statement's type annotated).
    Fmt {
        /// The .nxir file.
        file: PathBuf,
        /// Print nothing; exit with 1 and a message if the file is not already canonical.
        #[arg(long)]
        check: bool,
    },
    /// Print the intermediate representation after a compilation stage.
    Emit {
        /// The .nxir file.
        file: PathBuf,
        /// The stage whose output to print.
        #[arg(long, value_enum)]
        stage: StageArg,
        /// The target whose pipeline to follow.
        #[arg(long, value_enum, default_value_t = CompileTarget::Cpu)]
        target: CompileTarget,
        /// The CPU whose code to show (CPU target): native (the default), x86-64-v2,
        /// x86-64-v3, x86-64-v4 or an LLVM CPU name, as `compile --cpu` takes.
        #[arg(long, value_name = "CPU")]
        cpu: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
    },
    /// Build ahead-of-time artifacts (object file, libraries, C header); see docs/aot.md.
    Compile {
        /// The .nxir file.
        file: PathBuf,
        /// The target to compile for.
        #[arg(long, value_enum, default_value_t = CompileTarget::Cpu)]
        target: CompileTarget,
        /// The kind of artifact (repeatable; the CPU target needs at least one,
        /// `--target vulkan` takes none and writes one .tvk file).
        #[arg(long, value_enum)]
        emit: Vec<ArtifactKind>,
        /// Where to write the artifact. With several --emit (or none given) it is a
        /// base path: OUT.o, OUT.so, OUT.a, OUT.h (default base: the file's stem).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
        /// CPU to optimize for: native, x86-64-v2 (default on x86-64), x86-64-v3, x86-64-v4 or an LLVM CPU name.
        #[arg(long, value_name = "CPU")]
        cpu: Option<String>,
        /// LLVM target triple for cross-compilation (default: the host's).
        #[arg(long, value_name = "TRIPLE")]
        target_triple: Option<String>,
    },
    /// Compile and run one function once; print its results in Nx style.
    Run {
        #[command(flatten)]
        common: RunArgs,
        /// Give parameter NAME the contents of a .npy file (repeatable); others get random data.
        #[arg(long = "input", value_name = "NAME=PATH.npy", value_parser = parse_input)]
        inputs: Vec<(String, PathBuf)>,
        /// Also write the results as DIR/out0.npy, DIR/out1.npy, … (DIR is created if missing).
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// CPU threads for parallel loops, the calling thread included (default: all cores).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        threads: Option<u32>,
        /// Print at most this many elements per result before eliding with `...` (0: all).
        #[arg(long, value_name = "N", default_value_t = crate::nxfmt::DEFAULT_LIMIT)]
        limit: usize,
    },
    /// Compile once, run repeatedly on fixed random inputs, report timings.
    Bench {
        #[command(flatten)]
        common: RunArgs,
        /// Timed runs.
        #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        iters: u32,
        /// Untimed runs before the timed ones (at least one always happens: it allocates the results).
        #[arg(long, value_name = "N", default_value_t = 3)]
        warmup: u32,
        /// CPU threads for parallel loops, the calling thread included (default: all cores).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        threads: Option<u32>,
        /// Print exactly one JSON object: {"compile_ms", "median_ns", "min_ns", "iters", "cached"}.
        #[arg(long)]
        json: bool,
    },
}

/// Options shared by `run` and `bench`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The .nxir file, or a .tvk artifact from `compile --target vulkan`.
    pub file: PathBuf,
    /// The function to run; optional when the file has one function or one named `main`.
    #[arg(long, value_name = "NAME")]
    pub entry: Option<String>,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = RunTarget::Cpu)]
    pub target: RunTarget,
    /// Seed of the pseudo-random data for parameters not given with --input.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Compile in process without the compile cache (neither read nor written; see docs/cli.md).
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// The canonical .nxir form.
    Nxir,
    /// The frontend's linalg/tensor MLIR.
    Linalg,
    /// After tensorc's optimization passes.
    Opt,
    /// After lowering to the LLVM dialect.
    LlvmDialect,
    /// LLVM IR.
    LlvmIr,
    /// Target assembly (the native code the JIT and the AOT artifacts run).
    Asm,
    /// The SPIR-V dialect of the Vulkan kernels (`--target vulkan`).
    Spirv,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompileTarget {
    Cpu,
    /// SPIR-V kernels plus the host schedule in one .tvk artifact.
    Vulkan,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunTarget {
    /// JIT-compiled native code.
    Cpu,
    /// SPIR-V kernels run through Vulkan (needs a Vulkan driver).
    Vulkan,
    /// The reference interpreter.
    Interp,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArtifactKind {
    Obj,
    Shared,
    Static,
    Header,
}

/// `NAME=PATH` → (NAME, PATH); NAME must be an identifier-like non-empty string.
fn parse_input(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH.npy, got '{s}'"))?;
    if name.is_empty() {
        return Err(format!("missing parameter name before '=' in '{s}'"));
    }
    if path.is_empty() {
        return Err(format!("missing file path after '=' in '{s}'"));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

/// Picks the function to run (spec §6): the one given with `--entry`, or else
/// the only function, or else the one named `main`. Errors are usage errors.
pub fn choose_entry(file: &str, functions: &[&str], entry: Option<&str>) -> Result<String, String> {
    let list = || functions.join(", ");
    match entry {
        Some(name) if functions.contains(&name) => Ok(name.to_string()),
        Some(name) => Err(format!(
            "{file} has no function '{name}' (functions: {})",
            list()
        )),
        None => match functions {
            [] => Err(format!("{file} defines no function")),
            [only] => Ok(only.to_string()),
            _ if functions.contains(&"main") => Ok("main".to_string()),
            _ => Err(format!(
                "{file} has several functions ({}); choose one with --entry NAME",
                list()
            )),
        },
    }
}

/// Matches `--input` files to parameter positions. Every name must be a
/// parameter and may be given once; parameters without a file are `None`.
pub fn assign_inputs(
    params: &[&str],
    inputs: &[(String, PathBuf)],
) -> Result<Vec<Option<PathBuf>>, String> {
    let mut out = vec![None; params.len()];
    for (name, path) in inputs {
        let i = params.iter().position(|p| p == name).ok_or_else(|| {
            format!(
                "--input {name}: the function has no parameter '{name}' (parameters: {})",
                params.join(", ")
            )
        })?;
        if out[i].is_some() {
            return Err(format!("--input {name} is given more than once"));
        }
        out[i] = Some(path.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_spec_examples() {
        let cli = Cli::try_parse_from([
            "tensorc",
            "run",
            "m.nxir",
            "--entry",
            "f",
            "--target",
            "interp",
            "--input",
            "x=a.npy",
            "--input",
            "w=dir/b=c.npy",
            "--output-dir",
            "out",
            "--seed",
            "7",
        ])
        .unwrap();
        let Command::Run {
            common,
            inputs,
            output_dir,
            ..
        } = cli.command
        else {
            panic!("not run")
        };
        assert_eq!(common.entry.as_deref(), Some("f"));
        assert_eq!(common.target, RunTarget::Interp);
        assert_eq!(common.seed, 7);
        assert_eq!(
            inputs,
            vec![
                ("x".into(), "a.npy".into()),
                ("w".into(), "dir/b=c.npy".into())
            ]
        );
        assert_eq!(output_dir, Some("out".into()));

        let cli = Cli::try_parse_from([
            "tensorc",
            "emit",
            "m.nxir",
            "--stage",
            "llvm-dialect",
            "-o",
            "o.mlir",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Emit {
                stage: StageArg::LlvmDialect,
                target: CompileTarget::Cpu,
                ..
            }
        ));

        let cli = Cli::try_parse_from(["tensorc", "bench", "m.nxir", "--json"]).unwrap();
        let Command::Bench {
            iters,
            warmup,
            threads,
            json,
            ..
        } = cli.command
        else {
            panic!("not bench")
        };
        assert_eq!((iters, warmup, threads, json), (10, 3, None, true));
    }

    #[test]
    fn usage_errors_are_exit_code_2() {
        for args in [
            vec!["tensorc"],
            vec!["tensorc", "frobnicate"],
            vec!["tensorc", "check"],
            vec!["tensorc", "emit", "m.nxir"],
            vec!["tensorc", "emit", "m.nxir", "--stage", "bogus"],
            vec!["tensorc", "run", "m.nxir", "--input", "x"],
            vec!["tensorc", "run", "m.nxir", "--input", "=a.npy"],
            vec!["tensorc", "run", "m.nxir", "--target", "gpu"],
            vec!["tensorc", "bench", "m.nxir", "--iters", "0"],
            vec!["tensorc", "bench", "m.nxir", "--threads", "0"],
            vec!["tensorc", "run", "m.nxir", "--threads", "0"],
            vec!["tensorc", "run", "m.nxir", "--threads", "two"],
            vec!["tensorc", "run", "m.nxir", "--seed", "-1"],
        ] {
            let err = Cli::try_parse_from(&args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn entry_selection() {
        assert_eq!(choose_entry("f.nxir", &["a"], None), Ok("a".into()));
        assert_eq!(
            choose_entry("f.nxir", &["a", "main"], None),
            Ok("main".into())
        );
        assert_eq!(
            choose_entry("f.nxir", &["a", "b"], Some("b")),
            Ok("b".into())
        );
        let e = choose_entry("f.nxir", &["a", "b"], None).unwrap_err();
        assert!(e.contains("a, b") && e.contains("--entry"), "{e}");
        let e = choose_entry("f.nxir", &["a", "b"], Some("c")).unwrap_err();
        assert!(e.contains("no function 'c'"), "{e}");
    }

    #[test]
    fn input_assignment() {
        let inputs = vec![("y".to_string(), PathBuf::from("y.npy"))];
        assert_eq!(
            assign_inputs(&["x", "y"], &inputs),
            Ok(vec![None, Some("y.npy".into())])
        );
        let bad = vec![("z".to_string(), PathBuf::from("z.npy"))];
        assert!(
            assign_inputs(&["x", "y"], &bad)
                .unwrap_err()
                .contains("no parameter 'z'")
        );
        let twice = vec![
            ("x".to_string(), PathBuf::from("1.npy")),
            ("x".to_string(), PathBuf::from("2.npy")),
        ];
        assert!(
            assign_inputs(&["x"], &twice)
                .unwrap_err()
                .contains("more than once")
        );
    }
}

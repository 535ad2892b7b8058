//! The `tensorc` binary (spec §6): the only part of tensorc that knows about
//! terminals, exit codes and files given on the command line. Everything it
//! does is a call into the `tensorc` library facade; this file only turns
//! arguments into those calls and results into text, `.npy` files and exit codes.

mod args;
mod nxfmt;

use args::{Cli, Command, CompileTarget, RunArgs, RunTarget, StageArg};
use clap::Parser;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tensorc::{Cache, CacheStatus, CompileOptions, Program, Stage, Target, Tensor};

/// How a command failed: the text for stderr and the exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// An error in the program or its inputs (exit code 1).
    fn error(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: format!("error: {message}"),
        }
    }

    /// The command line does not say unambiguously what to do (exit code 2).
    fn usage(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 2,
            message: format!("error: {message}"),
        }
    }
}

impl From<tensorc::Error> for Failure {
    fn from(e: tensorc::Error) -> Failure {
        // The facade renders diagnostics as `FILE:LINE:COL: error: …` with the source line.
        Failure {
            code: 1,
            message: e.render(),
        }
    }
}

type CmdResult = Result<(), Failure>;

fn main() -> ExitCode {
    // Last resort only: a panic is a tensorc bug, but the user still gets a
    // message and exit code 1 rather than a backtrace dump.
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error: {info}\nnote: this is a bug in tensorc; please report it with the input that caused it"
        );
    }));
    // LLVM's fatal errors (an instruction it cannot select, say) otherwise
    // abort the process (SIGABRT): make them exit 1 with a message.
    tensorc::exit_on_llvm_fatal_error();

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version (exit 0) and usage errors (exit 2) itself.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match std::panic::catch_unwind(move || dispatch(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(f)) => {
            let msg = f.message.trim_end();
            let _ = writeln!(std::io::stderr(), "{msg}");
            ExitCode::from(f.code)
        }
        Err(_) => ExitCode::from(1),
    }
}

fn dispatch(cli: Cli) -> CmdResult {
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Fmt { file, check } => fmt(&file, check),
        Command::Emit {
            file,
            stage,
            target,
            cpu,
            output,
        } => emit(&file, stage, target, cpu.as_deref(), output.as_deref()),
        Command::Compile {
            file,
            target,
            emit,
            output,
            cpu,
            target_triple,
        } => compile(&file, target, &emit, output.as_deref(), cpu, target_triple),
        Command::Run {
            common,
            inputs,
            output_dir,
            limit,
            threads,
        } => run(
            &common,
            &inputs,
            output_dir.as_deref(),
            (limit > 0).then_some(limit),
            threads,
        ),
        Command::Bench {
            common,
            iters,
            warmup,
            threads,
            json,
        } => bench(&common, iters, warmup, threads, json),
    }
}

/// Reads a source file as UTF-8 text; the name used in diagnostics is the path as given.
fn read_source(path: &Path) -> Result<(String, String), Failure> {
    let name = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| Failure::error(format!("cannot read {name}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        // Located like every other diagnostic: the line and column (in
        // characters) where the valid text stops.
        let at = e.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&e.as_bytes()[..at]).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let col = valid.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        let byte = e.as_bytes()[at];
        Failure {
            code: 1,
            message: format!(
                "{name}:{line}:{col}: error: the file is not valid UTF-8 (byte 0x{byte:02X} at offset {at})"
            ),
        }
    })?;
    Ok((name, text))
}

/// Writes to stdout; a closed pipe (`tensorc fmt f | head`) is not an error.
fn print_stdout(text: &str) -> CmdResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::error(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

fn with_newline(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn check(file: &Path) -> CmdResult {
    let (name, text) = read_source(file)?;
    // The interpreter target stops after type checking: no MLIR is built.
    let opts = CompileOptions {
        target: Target::Interp,
        ..CompileOptions::default()
    };
    tensorc::compile_str(&name, &text, &opts)?;
    Ok(())
}

fn fmt(file: &Path, check_only: bool) -> CmdResult {
    let (name, text) = read_source(file)?;
    let canonical = tensorc::emit(&name, &text, Stage::Nxir)?;
    if !check_only {
        return print_stdout(&with_newline(canonical));
    }
    if canonical == text {
        return Ok(());
    }
    let line = first_difference(&text, &canonical);
    Err(Failure::error(format!(
        "{name} is not in canonical form (first difference on line {line}); `tensorc fmt {name}` prints it"
    )))
}

/// 1-based number of the first line where the two texts differ.
fn first_difference(a: &str, b: &str) -> usize {
    // When every line agrees (only a final newline differs) this is the line after the last.
    let same = a.lines().zip(b.lines()).take_while(|(x, y)| x == y).count();
    same + 1
}

fn emit(
    file: &Path,
    stage: StageArg,
    target: CompileTarget,
    cpu: Option<&str>,
    output: Option<&Path>,
) -> CmdResult {
    // The SPIR-V stage is the Vulkan target's; every other stage is shared
    // (nxir, linalg) or the CPU's.
    if target == CompileTarget::Vulkan
        && !matches!(stage, StageArg::Spirv | StageArg::Nxir | StageArg::Linalg)
    {
        return Err(Failure::error(
            "`tensorc emit --target vulkan` prints the stages nxir, linalg and spirv",
        ));
    }
    if let Some(c) = cpu {
        if target == CompileTarget::Vulkan || stage == StageArg::Spirv {
            return Err(Failure::usage(
                "--cpu is for the CPU target; the Vulkan kernels (`--target vulkan`, `--stage spirv`) do not depend on it",
            ));
        }
        tensorc::check_cpu(None, c).map_err(Failure::usage)?;
    }
    let stage = match stage {
        StageArg::Nxir => Stage::Nxir,
        StageArg::Linalg => Stage::Linalg,
        StageArg::Opt => Stage::Opt,
        StageArg::LlvmDialect => Stage::LlvmDialect,
        StageArg::LlvmIr => Stage::LlvmIr,
        StageArg::Asm => Stage::Asm,
        StageArg::Spirv => Stage::Spirv,
    };
    let (name, text) = read_source(file)?;
    let target = if target == CompileTarget::Vulkan { Target::Vulkan } else { Target::Cpu };
    let ir = with_newline(tensorc::emit_for(&name, &text, stage, target, cpu)?);
    match output {
        Some(path) => std::fs::write(path, ir)
            .map_err(|e| Failure::error(format!("cannot write {}: {e}", path.display()))),
        None => print_stdout(&ir),
    }
}

/// `tensorc compile`: ahead-of-time artifacts. One `--emit` writes exactly
/// `-o OUT`; several (or no `-o`) treat OUT (default: the file's stem) as a
/// base path and add `.o`, `.so`, `.a` or `.h`.
fn compile(
    file: &Path,
    target: CompileTarget,
    emit: &[args::ArtifactKind],
    output: Option<&Path>,
    cpu: Option<String>,
    triple: Option<String>,
) -> CmdResult {
    use tensorc::ArtifactKind as K;
    if target == CompileTarget::Vulkan {
        return compile_vulkan(file, emit, output, cpu.is_some() || triple.is_some());
    }
    if emit.is_empty() {
        return Err(Failure::usage(
            "`tensorc compile --target cpu` needs at least one --emit <obj|shared|static|header>",
        ));
    }
    // LLVM itself would only warn about an unknown CPU and use a generic one.
    if let Some(c) = &cpu {
        tensorc::check_cpu(triple.as_deref(), c).map_err(Failure::usage)?;
    }
    let (name, text) = read_source(file)?;
    let mut kinds: Vec<K> = Vec::new();
    for k in emit {
        let k = match k {
            args::ArtifactKind::Obj => K::Object,
            args::ArtifactKind::Shared => K::Shared,
            args::ArtifactKind::Static => K::Static,
            args::ArtifactKind::Header => K::Header,
        };
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let outputs: Vec<(K, PathBuf)> = match output {
        Some(out) if kinds.len() == 1 => vec![(kinds[0], out.to_owned())],
        _ => {
            let base = match output {
                Some(out) => out.to_owned(),
                None => PathBuf::from(file.file_stem().unwrap_or_default()),
            };
            kinds
                .iter()
                .map(|&k| {
                    let mut p = base.clone().into_os_string();
                    p.push(".");
                    p.push(k.extension());
                    (k, PathBuf::from(p))
                })
                .collect()
        }
    };
    let opts = tensorc::AotOptions { triple, cpu };
    tensorc::compile_artifacts(&name, &text, &opts, &outputs)?;
    Ok(())
}

/// `tensorc compile --target vulkan`: one `.tvk` artifact at `-o OUT`
/// (default: the file's stem with `.tvk`); see docs/vulkan.md.
fn compile_vulkan(
    file: &Path,
    emit: &[args::ArtifactKind],
    output: Option<&Path>,
    cpu_options: bool,
) -> CmdResult {
    if !emit.is_empty() || cpu_options {
        return Err(Failure::usage(
            "--emit, --cpu and --target-triple are for the CPU target; `--target vulkan` writes one .tvk artifact (-o OUT)",
        ));
    }
    let (name, text) = read_source(file)?;
    let out = match output {
        Some(out) => out.to_owned(),
        None => PathBuf::from(file.file_stem().unwrap_or_default()).with_extension("tvk"),
    };
    tensorc::compile_vulkan_artifact(&name, &text, &out)?;
    Ok(())
}

/// A `.tvk` artifact given to `run`/`bench` (recognised by its magic bytes,
/// whatever the file is called) is loaded instead of compiled; `None` for
/// anything else, including an unreadable file (`read_source` reports that).
fn load_artifact(common: &RunArgs) -> Result<Option<(String, Program)>, Failure> {
    let Ok(bytes) = std::fs::read(&common.file) else {
        return Ok(None);
    };
    if !tensorc::is_vulkan_artifact(&bytes) {
        return Ok(None);
    }
    let name = common.file.display().to_string();
    if common.target == RunTarget::Interp {
        return Err(Failure::error(format!(
            "{name} is a compiled Vulkan artifact: it runs on the Vulkan target only"
        )));
    }
    Ok(Some((
        name.clone(),
        tensorc::load_vulkan_artifact_bytes(&name, &bytes)?,
    )))
}

/// The target of `run`/`bench` as the facade knows it.
fn facade_target(t: RunTarget, _what: &str) -> Result<Target, Failure> {
    match t {
        RunTarget::Cpu => Ok(Target::Cpu),
        RunTarget::Interp => Ok(Target::Interp),
        RunTarget::Vulkan => Ok(Target::Vulkan),
    }
}

/// Compiles the file and resolves the entry function's name (usage error when unclear).
fn compile_program(
    common: &RunArgs,
    what: &str,
    threads: Option<u32>,
) -> Result<(String, Program, Duration), Failure> {
    let target = facade_target(common.target, what)?;
    let start = Instant::now();
    if let Some((name, program)) = load_artifact(common)? {
        let entry = args::choose_entry(&name, &program.functions(), common.entry.as_deref())
            .map_err(Failure::usage)?;
        return Ok((entry, program, start.elapsed()));
    }
    let (name, text) = read_source(&common.file)?;
    let opts = CompileOptions {
        target,
        threads: threads.map(|n| n as usize),
        cache: if common.no_cache {
            Cache::Off
        } else {
            Cache::UserDir
        },
    };
    let program = tensorc::compile_str(&name, &text, &opts)?;
    let compile_time = start.elapsed();
    let entry = args::choose_entry(&name, &program.functions(), common.entry.as_deref())
        .map_err(Failure::usage)?;
    report_cache(&name, program.cache_status());
    Ok((entry, program, compile_time))
}

/// One line on stderr saying whether the compile cache spared the compilation
/// (docs/cli.md); stdout stays the program's results.
fn report_cache(name: &str, status: &CacheStatus) {
    let line = match status {
        CacheStatus::Off => return,
        CacheStatus::Hit { .. } => format!("using cached code for {name} (compile skipped)"),
        CacheStatus::Stored { entry, discarded } => {
            let why = discarded
                .as_deref()
                .map(|w| format!("discarded a damaged cache entry ({w}); "))
                .unwrap_or_default();
            format!("{why}compiled {name} (cached at {})", entry.display())
        }
        CacheStatus::Unavailable { reason } => {
            // Tool failures quote whole compiler outputs: the first line says enough.
            let first = reason.lines().next().unwrap_or_default();
            format!("compiled {name} without the cache ({first})")
        }
    };
    let _ = writeln!(std::io::stderr(), "tensorc: {line}");
}

/// The argument tensors: `.npy` files where given, seeded random data elsewhere.
fn build_inputs(
    params: &[(String, tensorc::TensorType)],
    given: &[(String, PathBuf)],
    seed: u64,
) -> Result<Vec<Tensor>, Failure> {
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    let files = args::assign_inputs(&names, given).map_err(Failure::error)?;
    let mut inputs = Vec::with_capacity(params.len());
    for (index, ((pname, ty), file)) in params.iter().zip(files).enumerate() {
        let tensor = match file {
            Some(path) => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| Failure::error(format!("cannot read {}: {e}", path.display())))?;
                tensorc_ir::npy::read_npy(&bytes).map_err(|e| {
                    Failure::error(format!("input '{pname}' from {}: {e}", path.display()))
                })?
            }
            None => {
                let too_large = || {
                    Failure::error(format!(
                        "random input '{pname}' of type {ty} does not fit in memory"
                    ))
                };
                // The global allocator aborts the process when an allocation
                // fails; probing with a fallible reservation first turns a
                // parameter larger than memory into an error message.
                let bytes = ty
                    .checked_num_elements()
                    .and_then(|n| n.checked_mul(ty.dtype.size_bytes()));
                if !bytes.is_some_and(|b| Vec::<u8>::new().try_reserve_exact(b).is_ok()) {
                    return Err(too_large());
                }
                tensorc_ir::random::try_random_tensor(ty, seed, index as u64)
                    .map_err(|_| too_large())?
            }
        };
        inputs.push(tensor);
    }
    Ok(inputs)
}

fn run(
    common: &RunArgs,
    given: &[(String, PathBuf)],
    output_dir: Option<&Path>,
    limit: Option<usize>,
    threads: Option<u32>,
) -> CmdResult {
    let (entry, program, _) = compile_program(common, "run", threads)?;
    let function = program.entry(Some(&entry))?;
    let inputs = build_inputs(function.params(), given, common.seed)?;
    let results = function.call(&inputs)?;

    let mut text = String::new();
    for r in &results {
        text.push_str(&nxfmt::format_tensor(r, limit));
        text.push('\n');
    }
    print_stdout(&text)?;

    if let Some(dir) = output_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::error(format!("cannot create directory {}: {e}", dir.display()))
        })?;
        for (i, r) in results.iter().enumerate() {
            let path = dir.join(format!("out{i}.npy"));
            std::fs::write(&path, tensorc_ir::npy::write_npy(r))
                .map_err(|e| Failure::error(format!("cannot write {}: {e}", path.display())))?;
        }
    }
    Ok(())
}

fn bench(common: &RunArgs, iters: u32, warmup: u32, threads: Option<u32>, json: bool) -> CmdResult {
    let (entry, program, compile_time) = compile_program(common, "bench", threads)?;
    let function = program.entry(Some(&entry))?;
    let inputs = build_inputs(function.params(), &[], common.seed)?;
    let input_refs: Vec<&Tensor> = inputs.iter().collect();
    // Results are written into buffers allocated once, so the timings measure
    // the computation and not the allocator. The first (untimed) run allocates
    // them, through the library, which refuses sizes that cannot fit in memory;
    // it counts as a warm-up run.
    let mut outputs = function.call(&inputs)?;
    for _ in 1..warmup {
        function.call_into(&input_refs, &mut outputs)?;
    }
    let mut times = Vec::with_capacity(iters as usize);
    for _ in 0..iters {
        let start = Instant::now();
        function.call_into(&input_refs, &mut outputs)?;
        times.push(start.elapsed().as_nanos());
    }
    let stats = Stats::of(&mut times);

    let text = if json {
        let obj = serde_json::json!({
            // Microsecond resolution is plenty for a compile time.
            "compile_ms": (compile_time.as_secs_f64() * 1e6).round() / 1e3,
            "median_ns": stats.median_ns,
            "min_ns": stats.min_ns,
            "iters": iters,
            "cached": matches!(program.cache_status(), CacheStatus::Hit { .. }),
        });
        format!("{obj}\n")
    } else {
        let target = match (program.target(), threads) {
            (Target::Cpu, Some(n)) => format!("cpu, {n} threads"),
            (t, _) => t.name().to_string(),
        };
        let warmup = warmup.max(1);
        format!(
            "{} @{entry} on {target}\n  compile  {:>12}\n  median   {:>12}\n  min      {:>12}\n  iters    {iters:>12} (after {warmup} warm-up runs)\n",
            common.file.display(),
            human_duration(compile_time.as_nanos()),
            human_duration(stats.median_ns.into()),
            human_duration(stats.min_ns.into()),
        )
    };
    print_stdout(&text)
}

/// A duration in the largest unit that keeps it at least 1 (`850 ns`, `2.500 ms`).
fn human_duration(ns: u128) -> String {
    let ns_f = ns as f64;
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.3} µs", ns_f / 1e3),
        1_000_000..1_000_000_000 => format!("{:.3} ms", ns_f / 1e6),
        _ => format!("{:.3} s", ns_f / 1e9),
    }
}

/// Summary of a list of run times in nanoseconds.
#[derive(Debug, PartialEq)]
struct Stats {
    median_ns: u64,
    min_ns: u64,
}

impl Stats {
    /// Median (mean of the two middle values for an even count) and minimum.
    /// `times` must not be empty (clap enforces `--iters >= 1`).
    fn of(times: &mut [u128]) -> Stats {
        times.sort_unstable();
        let n = times.len();
        let median = if n == 0 {
            0
        } else if n % 2 == 1 {
            times[n / 2]
        } else {
            (times[n / 2 - 1] + times[n / 2]) / 2
        };
        let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        Stats {
            median_ns: clamp(median),
            min_ns: clamp(times.first().copied().unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_median_and_min() {
        assert_eq!(
            Stats::of(&mut [5, 1, 3]),
            Stats {
                median_ns: 3,
                min_ns: 1
            }
        );
        assert_eq!(
            Stats::of(&mut [4, 1, 3, 10]),
            Stats {
                median_ns: 3,
                min_ns: 1
            }
        );
        assert_eq!(
            Stats::of(&mut [7]),
            Stats {
                median_ns: 7,
                min_ns: 7
            }
        );
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(human_duration(850), "850 ns");
        assert_eq!(human_duration(1_500), "1.500 µs");
        assert_eq!(human_duration(2_500_000), "2.500 ms");
        assert_eq!(human_duration(3_000_000_000), "3.000 s");
    }

    #[test]
    fn first_difference_lines() {
        assert_eq!(first_difference("a\nb\nc\n", "a\nx\nc\n"), 2);
        assert_eq!(first_difference("a\n", "a\nb\n"), 2);
        assert_eq!(first_difference("a", "a\n"), 2);
    }
}

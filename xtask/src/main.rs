//! Project automation, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! Written in Rust so it works wherever cargo does, and kept to std + anyhow
//! so that it builds in seconds on a machine where LLVM/MLIR are not yet
//! installed — installing them is its first job (`setup`).
//!
//! - `setup`: install the Debian packages tensorc needs and cargo-fuzz (no-op when present);
//! - `test`:  setup, then every test of the workspace; under `CI` a new, changed or
//!   unreferenced snapshot fails;
//! - `demo`:  setup, build the CLI in release, run `examples/mlp.nxir` on the CPU and the
//!   interpreter, compare the results and time both;
//! - `bench`: build the CLI in release, time every (or the named) `../shared/bench/*.nxir` with
//!   tensorc and NumPy in the same run, write `target/bench.json` and the table in
//!   `docs/benchmarks.md` (see `bench.rs`);
//! - `sizes`: compile every `../shared/bench/*.nxir` (and `examples/mlp.nxir`) to a `.so` and
//!   a `.a` and write their sizes into the table in `docs/aot.md` (see `sizes.rs`);
//! - `fuzz`:  the cargo-fuzz targets of `fuzz/` for a bounded time each, then many
//!   generated programs (see `fuzz.rs`, docs/testing.md).

mod bench;
mod screen;
mod sizes;
mod fuzz;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Debian packages needed to build and test tensorc (LLVM/MLIR 22, Vulkan, link libraries).
const PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libmlir-22-dev",
    "mlir-22-tools",
    "clang-22",
    "libpolly-22-dev",
    "libclang-rt-22-dev",
    "mesa-vulkan-drivers",
    "libvulkan-dev",
    "spirv-tools",
    "vulkan-validationlayers",
    "zlib1g-dev",
    "libzstd-dev",
    "libxml2-dev",
    "libedit-dev",
    "libffi-dev",
    // The memory-safety tests run generated code under memcheck (tests/integration/memsafe.rs).
    "valgrind",
];

const USAGE: &str = "usage: cargo xtask <setup | test | demo | bench [NAME...] | bench --screen [NAME...] | sizes | fuzz [OPTIONS]>

  setup  install missing Debian packages (LLVM/MLIR 22, Vulkan, valgrind, libraries) and
         cargo-fuzz
  test   setup, then cargo test --workspace --all-features; when CI is set, new, changed
         or unreferenced insta snapshots fail (INSTA_UPDATE=no)
  demo   setup, build tensorc in release, run examples/mlp.nxir on cpu and interp, compare, time
  bench  build tensorc in release, time each ../shared/bench/*.nxir with `tensorc bench --json`
         and with NumPy (virtualenv in target/), write target/bench.json and the table in
         docs/benchmarks.md (with NAMEs: only the workloads whose file name contains one of them)
  bench --screen
         the same kinds of workload in other shapes and layouts (xtask/src/numpy_screen.py),
         tensorc and NumPy on one thread and every core; target/screen.json and, unfiltered,
         the screening table in docs/benchmarks.md
  sizes  build tensorc, compile each ../shared/bench/*.nxir and examples/mlp.nxir with
         --emit shared --emit static, write their sizes into the table in docs/aot.md
  fuzz   each cargo-fuzz target for a bounded time, then many generated programs
         (`cargo xtask fuzz --help`)";

/// What the command line asked for.
#[derive(Debug, PartialEq)]
enum Task<'a> {
    Help,
    Setup,
    Test,
    Demo,
    Bench(&'a [String]),
    Screen(&'a [String]),
    Sizes,
    Fuzz(&'a [String]),
}

/// Reads the command line (without the program name). `-h`/`--help` after any
/// command asks for the usage (fuzz prints its own); an option a command does not
/// take is an error rather than a workload filter that matches nothing.
fn parse(args: &[String]) -> std::result::Result<Task<'_>, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err("no command given".into());
    };
    let is_help = |a: &String| a == "-h" || a == "--help";
    if cmd != "fuzz" && rest.iter().any(is_help) {
        return Ok(Task::Help);
    }
    let none = |task: Task<'static>| match rest.first() {
        Some(a) => Err(format!("unexpected argument '{a}' to `{cmd}`")),
        None => Ok(task),
    };
    let filters = |names: &'_ [String]| match names.iter().find(|a| a.starts_with('-')) {
        Some(a) => Err(format!("unexpected argument '{a}' to `{cmd}`")),
        None => Ok(()),
    };
    match cmd.as_str() {
        "-h" | "--help" | "help" => Ok(Task::Help),
        "setup" => none(Task::Setup),
        "test" => none(Task::Test),
        "demo" => none(Task::Demo),
        "sizes" => none(Task::Sizes),
        "bench" if rest.first().is_some_and(|a| a == "--screen") => {
            filters(&rest[1..]).map(|()| Task::Screen(&rest[1..]))
        }
        "bench" => filters(rest).map(|()| Task::Bench(rest)),
        "fuzz" => Ok(Task::Fuzz(rest)),
        other => Err(format!("unknown xtask command '{other}'")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse(&args) {
        Ok(Task::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Task::Setup) => setup(),
        Ok(Task::Test) => test(),
        Ok(Task::Demo) => demo(),
        Ok(Task::Bench(filters)) => bench::bench(filters),
        Ok(Task::Screen(filters)) => screen::screen(filters),
        Ok(Task::Sizes) => sizes::sizes(),
        Ok(Task::Fuzz(rest)) => fuzz::fuzz(rest),
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives in `<root>/xtask`.
/// `cargo run` (the alias) says at run time which checkout it was started
/// from; that wins over the directory this binary was compiled in, which is
/// another checkout's when several share one target directory and cargo
/// found the binary fresh.
fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// The cargo that invoked us (so the same toolchain builds everything).
fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Prints a command the way a shell user would type it, then runs it;
/// a non-zero exit becomes an error naming the command.
fn run(cmd: &mut Command) -> Result<()> {
    let shown = show(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

fn show(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    parts.push(cmd.get_program().to_string_lossy().into_owned());
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("install ok installed")
        })
        .unwrap_or(false)
}

/// `cargo xtask setup`: the Debian packages, then cargo-fuzz (only `fuzz`
/// needs it, so `test` and `demo` install just the packages).
fn setup() -> Result<()> {
    install_packages()?;
    fuzz::ensure_cargo_fuzz()
}

fn install_packages() -> Result<()> {
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        println!(
            "xtask setup: dpkg-query not found (not a Debian system); install LLVM/MLIR 22 yourself"
        );
        return Ok(());
    }
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        println!("xtask setup: all {} packages are installed", PACKAGES.len());
        return Ok(());
    }
    println!("xtask setup: installing {}", missing.join(" "));
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    // Through sudo the environment is not passed on, so the variable goes on
    // sudo's command line; noninteractive because CI has no stdin.
    let apt = |args: &[&str]| {
        let mut c = if is_root {
            let mut c = Command::new("apt-get");
            c.env("DEBIAN_FRONTEND", "noninteractive");
            c
        } else {
            let mut c = Command::new("sudo");
            c.args(["DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            c
        };
        c.args(args);
        c
    };
    run(&mut apt(&["update"]))?;
    let mut install = apt(&["install", "-y", "--no-install-recommends"]);
    install.args(&missing);
    run(&mut install)?;
    let still: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(" "));
    }
    Ok(())
}

fn test() -> Result<()> {
    install_packages()?;
    let ci = std::env::var_os("CI").is_some();
    // insta appends every snapshot file an assertion uses to this file, which
    // is how unreferenced (stale) snapshots are found afterwards.
    let references = target_dir().join("insta-snapshot-references.txt");
    std::fs::create_dir_all(target_dir())?;
    let _ = std::fs::remove_file(&references);
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--all-features"]);
    cmd.env("INSTA_SNAPSHOT_REFERENCES_FILE", &references);
    if ci {
        // Under CI a new or changed snapshot is a failure, never a silent update.
        cmd.env("INSTA_UPDATE", "no");
    }
    let outcome = run_counting_tests(&mut cmd);
    check_unreferenced_snapshots(&root(), &references, ci)?;
    outcome
}

/// Runs `cargo test`, passing its output through, and closes with one line
/// that totals every test binary's `test result:` line. cargo's own last line
/// belongs to whichever doc-test ran last (often "0 passed"), which says
/// nothing about the run as a whole.
fn run_counting_tests(cmd: &mut Command) -> Result<()> {
    use std::io::{BufRead, BufReader};
    let shown = show(cmd);
    println!("$ {shown}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let mut totals = [0u64; 3]; // passed, failed, ignored
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("reading cargo test output")?;
            println!("{line}");
            if let Some(counts) = test_result_counts(&line) {
                totals.iter_mut().zip(counts).for_each(|(t, c)| *t += c);
            }
        }
    }
    let status = child.wait().with_context(|| format!("waiting for `{shown}`"))?;
    println!("\ntests: {} passed, {} failed, {} skipped", totals[0], totals[1], totals[2]);
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// `(passed, failed, ignored)` of a libtest summary line such as
/// `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; …`.
fn test_result_counts(line: &str) -> Option<[u64; 3]> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let mut counts = [None; 3];
    for part in rest.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(label), Some(n)) = (words.next(), words.next()) else { continue };
        let slot = match label {
            "passed" => 0,
            "failed" => 1,
            "ignored" => 2,
            _ => continue,
        };
        counts[slot] = n.parse().ok();
    }
    Some([counts[0]?, counts[1]?, counts[2]?])
}

/// Every `.snap` file in the repository must be used by some test; a stale one
/// fails under CI and is reported otherwise.
fn check_unreferenced_snapshots(repo: &Path, references: &Path, ci: bool) -> Result<()> {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let used: std::collections::BTreeSet<PathBuf> = std::fs::read_to_string(references)
        .unwrap_or_default()
        .lines()
        .map(|l| canonical(Path::new(l)))
        .collect();
    let mut snaps = Vec::new();
    find_snapshots(repo, &mut snaps)?;
    let unused: Vec<String> = snaps
        .iter()
        .filter(|p| !used.contains(&canonical(p)))
        .map(|p| p.strip_prefix(repo).unwrap_or(p).display().to_string())
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    let list = unused.join("\n  ");
    if ci {
        bail!("snapshots that no test uses (delete them or restore their tests):\n  {list}");
    }
    println!("warning: snapshots that no test uses:\n  {list}");
    Ok(())
}

/// All `*.snap` files under `dir`, skipping build output and hidden directories.
fn find_snapshots(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                find_snapshots(&path, out)?;
            }
        } else if name.ends_with(".snap") {
            out.push(path);
        }
    }
    Ok(())
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `<root>/target`).
fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    if target.is_relative() {
        root().join(target)
    } else {
        target
    }
}

/// Builds the CLI with optimizations and returns the binary's path.
fn build_release_cli() -> Result<PathBuf> {
    run(cargo().args(["build", "--release", "-p", "tensorc-cli"]))?;
    let bin = target_dir()
        .join("release")
        .join(format!("tensorc{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        bail!("built the CLI but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// Runs the CLI, returning its stdout; a failure shows its stderr.
fn tensorc(bin: &Path, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(root());
    println!("$ {}", show(&cmd));
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "tensorc {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).context("tensorc printed invalid UTF-8")
}

fn demo() -> Result<()> {
    install_packages()?;
    let bin = build_release_cli()?;
    let example = "examples/mlp.nxir";
    let mut printed = Vec::new();
    for target in ["cpu", "interp"] {
        let start = Instant::now();
        let out = tensorc(
            &bin,
            &[
                "run", example, "--target", target, "--seed", "1", "--limit", "0",
            ],
        )?;
        let wall = start.elapsed();
        println!(
            "--- {target} ({:.1} ms wall clock, compile + run) ---\n{out}",
            wall.as_secs_f64() * 1e3
        );
        printed.push(parse_printed_tensors(&out)?);
    }
    let (cpu, interp) = (&printed[0], &printed[1]);
    if cpu.len() != interp.len() || cpu.iter().zip(interp).any(|(a, b)| a.len() != b.len()) {
        bail!("cpu and interp results differ in number or size");
    }
    let max_diff = cpu
        .iter()
        .flatten()
        .zip(interp.iter().flatten())
        .map(|(a, b)| {
            if a == b || (a.is_nan() && b.is_nan()) {
                0.0
            } else {
                (a - b).abs()
            }
        })
        .fold(0.0f64, f64::max);
    println!("max |cpu - interp| over all results: {max_diff:.3e}");

    let mut rows = Vec::new();
    for target in ["cpu", "interp"] {
        let json = tensorc(
            &bin,
            &[
                "bench", example, "--target", target, "--iters", "20", "--json",
            ],
        )?;
        let [c, med, min] = ["compile_ms", "median_ns", "min_ns"]
            .map(|k| json_number(&json, k).unwrap_or(f64::NAN));
        rows.push(format!(
            "  {target:<8} {c:>12.3} {:>12.2} {:>12.2}",
            med / 1e3,
            min / 1e3
        ));
    }
    println!("\ntimings (tensorc bench: 20 timed runs after 3 warm-up runs):");
    println!(
        "  {:<8} {:>12} {:>12} {:>12}",
        "target", "compile ms", "median µs", "min µs"
    );
    for row in rows {
        println!("{row}");
    }
    if max_diff > 1e-4 {
        bail!("cpu and interpreter disagree by {max_diff:e} (> 1e-4)");
    }
    Ok(())
}

/// The element values of each `#Nx.Tensor<…>` block printed by `tensorc run`.
/// The printer uses shortest round-trip digits, so parsing gives the exact values.
fn parse_printed_tensors(text: &str) -> Result<Vec<Vec<f64>>> {
    let mut tensors = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#Nx.Tensor<" {
            continue;
        }
        lines
            .next()
            .context("missing type line after #Nx.Tensor<")?;
        let mut values = Vec::new();
        for body in lines.by_ref() {
            if body.trim() == ">" {
                break;
            }
            for tok in body.split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace()) {
                let v = match tok {
                    "" => continue,
                    "NaN" => f64::NAN,
                    "Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    t => t
                        .parse()
                        .with_context(|| format!("unexpected token '{t}' in tensorc output"))?,
                };
                values.push(v);
            }
        }
        tensors.push(values);
    }
    Ok(tensors)
}

/// The number after `"key":` in a flat JSON object (what `tensorc bench --json` prints).
fn json_number(json: &str, key: &str) -> Option<f64> {
    let after = &json[json.find(&format!("\"{key}\""))? + key.len() + 2..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let end = after
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(after.len());
    after[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_result_lines_are_totalled() {
        assert_eq!(
            super::test_result_counts("test result: ok. 74 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"),
            Some([74, 0, 1])
        );
        assert_eq!(
            super::test_result_counts("test result: FAILED. 556 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out"),
            Some([556, 3, 0])
        );
        assert_eq!(super::test_result_counts("running 5 tests"), None);
    }

    use super::*;

    #[test]
    fn reads_bench_json() {
        let j = r#"{"compile_ms":12.5,"iters":10,"median_ns":1500,"min_ns":1200}"#;
        assert_eq!(json_number(j, "compile_ms"), Some(12.5));
        assert_eq!(json_number(j, "median_ns"), Some(1500.0));
        assert_eq!(json_number(j, "min_ns"), Some(1200.0));
        assert_eq!(json_number(j, "missing"), None);
        assert_eq!(json_number(r#"{"a": 1e-3}"#, "a"), Some(0.001));
    }

    #[test]
    fn finds_unreferenced_snapshots() {
        let repo = std::env::temp_dir().join(format!("xtask-snap-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&repo);
        for f in [
            "a/x.snap",
            "b/y.snap",
            "target/z.snap",
            ".git/w.snap",
            "a/x.snap.new",
        ] {
            let p = repo.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let refs = repo.join("refs.txt");
        std::fs::write(&refs, format!("{}\n", repo.join("a/x.snap").display())).unwrap();
        let err = check_unreferenced_snapshots(&repo, &refs, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("b/y.snap"), "{err}");
        assert!(
            !err.contains("x.snap") && !err.contains("z.snap") && !err.contains("w.snap"),
            "{err}"
        );
        // Outside CI it is only a warning.
        assert!(check_unreferenced_snapshots(&repo, &refs, false).is_ok());
        std::fs::write(
            &refs,
            format!(
                "{}\n{}\n",
                repo.join("a/x.snap").display(),
                repo.join("b/y.snap").display()
            ),
        )
        .unwrap();
        assert!(check_unreferenced_snapshots(&repo, &refs, true).is_ok());
        std::fs::remove_dir_all(&repo).unwrap();
    }

    #[test]
    fn reads_printed_tensors() {
        let text = "#Nx.Tensor<\n  f32[2][2]\n  [\n    [1.0, -2.5],\n    [NaN, 1.0e-5]\n  ]\n>\n#Nx.Tensor<\n  s32\n  7\n>\n";
        let t = parse_printed_tensors(text).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0][..2], [1.0, -2.5]);
        assert!(t[0][2].is_nan());
        assert_eq!(t[0][3], 1.0e-5);
        assert_eq!(t[1], vec![7.0]);
    }

    use super::{Task, parse};

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn commands_and_their_arguments() {
        let a = args("bench w1 w5");
        assert_eq!(parse(&a), Ok(Task::Bench(&a[1..])));
        let a = args("bench --screen matmul");
        assert_eq!(parse(&a), Ok(Task::Screen(&a[2..])));
        let a = args("fuzz --help");
        assert_eq!(parse(&a), Ok(Task::Fuzz(&a[1..])));
        assert_eq!(parse(&args("test")), Ok(Task::Test));
        for help in ["--help", "help", "bench --help", "bench --screen -h", "test --help", "sizes -h"] {
            assert_eq!(parse(&args(help)), Ok(Task::Help), "{help}");
        }
    }

    #[test]
    fn bad_command_lines_are_errors() {
        let e = |s: &str| parse(&args(s)).unwrap_err();
        assert_eq!(e(""), "no command given");
        assert_eq!(e("build"), "unknown xtask command 'build'");
        assert_eq!(e("bench --fast"), "unexpected argument '--fast' to `bench`");
        assert_eq!(e("bench --screen w1 --json"), "unexpected argument '--json' to `bench`");
        assert_eq!(e("test extra"), "unexpected argument 'extra' to `test`");
    }
}

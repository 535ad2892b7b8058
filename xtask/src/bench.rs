//! `cargo xtask bench`: every workload of `../shared/bench` with tensorc (CPU)
//! and, in the same run, with NumPy, so the ratio compares two measurements
//! taken minutes apart on the same machine rather than numbers from a note.
//!
//! NumPy comes from PyPI into a virtualenv under the target directory (the
//! system Python has none). Its process gets `OPENBLAS_CORETYPE` and
//! `OPENBLAS_L2_SIZE` removed (an inherited core-type override would pick a
//! slower kernel) and runs twice: with `OPENBLAS_NUM_THREADS=1` for the main
//! table, which compares one thread with one thread (tensorc runs with
//! `--threads 1`), and with every core for the second table, which compares
//! tensorc on every core (its default) with NumPy on every core, and gives
//! tensorc's speed-up from one thread to all. The machine reference is
//! measured both ways too: the triad on one core and on every core, the FMA
//! peak on one core (times the cores for the second table).
//! Each workload is timed in `ROUNDS` rounds of tensorc and NumPy one after
//! the other (see there), each side keeping its fastest round.
//! Results go to stdout, to `target/bench.json` and, as Markdown tables,
//! between the marker comments of `docs/benchmarks.md`.

use crate::{build_release_cli, json_number, root, target_dir, tensorc};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Warm-up and timed runs per workload, for both tensorc and NumPy. Not
/// fewer: with 1 + 5 runs a sub-millisecond workload (W1, W10) is over
/// before this VM's idle second vCPU wakes up, and its two-thread time came
/// out as the one-thread time in about half the runs (bimodal: 0.28 or
/// 0.55 ms for W10, run for run); 3 + 20 runs give the pool's worker time to
/// be running.
const WARMUP: usize = 3;
const ITERS: usize = 20;

/// Rounds per workload, each timing tensorc and NumPy right after one
/// another (one thread, then every core); each configuration keeps its
/// fastest round. This VM's speed drifts by 10-20 % within minutes (other
/// guests on the host: the one-core triad measured 35-43 GB/s in one
/// hour), so timing all of tensorc and then all of NumPy let the drift
/// between the two phases decide ratios; interleaved, both sides of a
/// ratio share the same minutes.
const ROUNDS: usize = 3;

/// The NumPy versions of the workloads.
const NUMPY_SCRIPT: &str = include_str!("numpy_bench.py");

/// The machine's reference kernels (STREAM-style triad, FMA peak), built
/// with the system C compiler at bench time.
const MACHINE_REF_C: &str = include_str!("machine_ref.c");

/// What one core of this machine reaches, measured in the same run: the
/// bandwidth reference of the memory-bound workloads and the peak of the
/// compute-bound ones (issue 6's "% of bandwidth / % of peak").
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Machine {
    /// Triad bandwidth on one core.
    triad_gbs: Option<f64>,
    /// Triad bandwidth on `threads` threads.
    triad_all_gbs: Option<f64>,
    /// The thread count of `triad_all_gbs`.
    threads: usize,
    /// FMA peak of one core.
    fma_gflops: Option<f64>,
}

impl Machine {
    /// The reference for `threads` threads: the triad measured on them, the
    /// one-core FMA peak times their number (each core has its own FMA
    /// units; memory bandwidth is shared, so it is measured).
    fn all_threads(self) -> Machine {
        Machine {
            triad_gbs: self.triad_all_gbs,
            triad_all_gbs: self.triad_all_gbs,
            threads: self.threads,
            fma_gflops: self.fma_gflops.map(|f| f * self.threads as f64),
        }
    }
}

/// The machine's core count (the thread count of "all threads").
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Builds `machine_ref.c` with `cc -O3 -march=native` under the target
/// directory and runs it once (it takes the best of several runs itself),
/// with the triad also on `cores()` threads.
fn measure_machine() -> Result<Machine> {
    let dir = target_dir().join("bench-machine");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let src = dir.join("machine_ref.c");
    let exe = dir.join("machine_ref");
    std::fs::write(&src, MACHINE_REF_C)
        .with_context(|| format!("cannot write {}", src.display()))?;
    crate::run(
        Command::new("cc")
            .args(["-O3", "-march=native", "-ffp-contract=fast", "-pthread", "-o"])
            .arg(&exe)
            .arg(&src),
    )?;
    let out = Command::new(&exe)
        .arg(cores().to_string())
        .output()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", exe.display(), out.status);
    }
    Ok(parse_machine(&String::from_utf8_lossy(&out.stdout)))
}

/// Reads the `triad_gbs <x>`, `triad_threads <n>`, `triad_all_gbs <y>` and
/// `fma_gflops <z>` lines; a zero (the kernel's self-check failed) or a
/// missing line is no number.
fn parse_machine(text: &str) -> Machine {
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(key)?.trim().parse::<f64>().ok())
            .find(|v| *v > 0.0)
    };
    Machine {
        triad_gbs: get("triad_gbs "),
        triad_all_gbs: get("triad_all_gbs "),
        threads: get("triad_threads ").map_or(1, |t| t as usize),
        fma_gflops: get("fma_gflops "),
    }
}

/// A workload's throughput as a percentage of the machine's reference for
/// its unit (triad bandwidth for GB/s, FMA peak for GFLOPS).
fn percent_of_machine(m: Metric, ns: f64, machine: Machine) -> Option<f64> {
    let (tp, _) = throughput(m, ns);
    let reference = match m {
        Metric::Flops(_) => machine.fma_gflops?,
        Metric::Bytes(_) => machine.triad_gbs?,
    };
    Some(100.0 * tp / reference)
}

/// Where `docs/benchmarks.md` gets the table.
const BEGIN: &str = "<!-- xtask bench: begin -->";
const END: &str = "<!-- xtask bench: end -->";

/// How a workload's throughput is counted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Metric {
    /// Floating-point operations per run (a multiply-add counts 2).
    Flops(f64),
    /// Minimum bytes moved to and from memory per run.
    Bytes(f64),
}

/// The metric of workload `name` (file stem), from the shapes in its header
/// comment: 2·M·N·K for matmuls, 2·outputs·(kh·kw·cin) for the convolution,
/// inputs plus outputs × 4 bytes for the memory-bound ones.
fn metric(name: &str) -> Option<Metric> {
    let mm = |b: f64, m: f64, n: f64, k: f64| Metric::Flops(2.0 * b * m * n * k);
    let f32s = |n: f64| Metric::Bytes(4.0 * n);
    Some(match name.get(..3)? {
        "w01" => mm(1.0, 256.0, 256.0, 256.0),
        "w02" => mm(1.0, 1024.0, 1024.0, 1024.0),
        "w03" => mm(1.0, 2048.0, 2048.0, 2048.0),
        "w04" => f32s(4.0 * 16_777_216.0),
        "w05" => f32s(2.0 * 4096.0 * 1024.0),
        "w06" => mm(1.0, 256.0, 4096.0, 1024.0),
        "w07" => f32s(67_108_864.0),
        "w08" => f32s(2.0 * 8192.0 * 1024.0),
        "w09" => Metric::Flops(2.0 * 56.0 * 56.0 * 64.0 * (3.0 * 3.0 * 64.0)),
        "w10" => mm(64.0, 128.0, 128.0, 64.0),
        _ => return None,
    })
}

/// Throughput in GFLOPS or GB/s (both 1e9 per second) and its unit.
fn throughput(m: Metric, ns: f64) -> (f64, &'static str) {
    match m {
        Metric::Flops(f) => (f / ns, "GFLOPS"),
        Metric::Bytes(b) => (b / ns, "GB/s"),
    }
}

/// One workload's measurements (times in ns; `None` when that side failed).
#[derive(Debug, Default)]
struct Row {
    name: String,
    compile_ms: Option<f64>,
    tensorc_ns: Option<f64>,
    /// tensorc with every core (`tensorc_ns` is one thread, like NumPy).
    tensorc_all_ns: Option<f64>,
    numpy_ns: Option<f64>,
    /// NumPy with every core (`OPENBLAS_NUM_THREADS` = the core count).
    numpy_all_ns: Option<f64>,
    error: Option<String>,
}

/// The virtualenv's Python with NumPy installed (created on first use).
pub(crate) fn numpy_python() -> Result<PathBuf> {
    let venv = target_dir().join("bench-venv");
    let py = venv.join("bin").join("python");
    if !py.exists() {
        crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
            .context("creating the NumPy virtualenv")?;
    }
    let has_numpy = Command::new(&py)
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_numpy {
        crate::run(Command::new(&py).args(["-m", "pip", "install", "--quiet", "numpy"]))
            .context("installing NumPy with pip")?;
    }
    Ok(py)
}

/// The NumPy side: the virtualenv's Python and the script written next to
/// it, set up once per `bench` (each workload's rounds call it often).
struct Numpy {
    py: PathBuf,
    script: PathBuf,
}

impl Numpy {
    fn new() -> Result<Numpy> {
        let py = numpy_python()?;
        let script = target_dir().join("bench-venv").join("numpy_bench.py");
        std::fs::write(&script, NUMPY_SCRIPT)
            .with_context(|| format!("cannot write {}", script.display()))?;
        Ok(Numpy { py, script })
    }

    /// Runs the script on `names` with OpenBLAS (and OpenMP) on `threads`
    /// threads; returns (name, min ns) pairs.
    fn run(&self, names: &[String], threads: usize) -> Result<Vec<(String, f64)>> {
        let mut cmd = numpy_command(&self.py, &self.script, threads);
        cmd.arg(WARMUP.to_string()).arg(ITERS.to_string()).args(names);
        println!("$ {}", crate::show(&cmd));
        let out = cmd.output().context("cannot start the NumPy benchmark")?;
        if !out.status.success() {
            bail!(
                "the NumPy benchmark failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(parse_numpy(&String::from_utf8_lossy(&out.stdout)))
    }

    /// The time of the one workload `name` on `threads` threads (`None`,
    /// with a warning, when the script fails).
    fn time(&self, name: &str, threads: usize) -> Option<f64> {
        match self.run(&[name.to_owned()], threads) {
            Ok(times) => times.into_iter().find(|(n, _)| n == name).map(|(_, ns)| ns),
            Err(e) => {
                eprintln!("warning: no NumPy number on {threads} thread(s): {e:#}");
                None
            }
        }
    }
}

/// `py script` with OpenBLAS (and OpenMP) on `threads` threads and
/// `OPENBLAS_CORETYPE`/`OPENBLAS_L2_SIZE` unset (issue 6: NumPy picks its
/// own kernels), for this process only; the caller adds the arguments.
pub(crate) fn numpy_command(py: &Path, script: &Path, threads: usize) -> Command {
    let mut cmd = Command::new(py);
    cmd.arg(script)
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .env("OMP_NUM_THREADS", threads.to_string());
    cmd
}

/// The smaller of two optional times.
fn fastest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Reads the script's lines `{"name": "...", "median_ns": .., "min_ns": ..}`.
fn parse_numpy(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = &line[line.find("\"name\"")? + 6..];
            let rest = &rest[rest.find('"')? + 1..];
            let name = &rest[..rest.find('"')?];
            Some((name.to_owned(), json_number(line, "min_ns")?))
        })
        .collect()
}

/// The directory of the benchmark workloads (`../shared/bench`) and its
/// `.nxir` files, sorted by name.
pub(crate) fn workloads() -> Result<(PathBuf, Vec<PathBuf>)> {
    let shared = root().join("..").join("shared").join("bench");
    let shared = shared.canonicalize().unwrap_or(shared);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&shared)
        .with_context(|| format!("cannot list {}", shared.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "nxir"))
        .collect();
    files.sort();
    Ok((shared, files))
}

/// `filters`: run only workloads whose file name contains one of them.
pub fn bench(filters: &[String]) -> Result<()> {
    let (shared, files) = workloads()?;
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    if files.is_empty() {
        bail!("no workload in {} matches {filters:?}", shared.display());
    }
    let bin = build_release_cli()?;
    let machine = measure_machine().unwrap_or_else(|e| {
        eprintln!("warning: no machine reference numbers: {e:#}");
        Machine::default()
    });
    println!("machine: {machine:?}");
    let numpy = Numpy::new()
        .map_err(|e| eprintln!("warning: no NumPy numbers: {e:#}"))
        .ok();
    let numpy_time = |name: &str, threads| numpy.as_ref().and_then(|n| n.time(name, threads));
    let mut rows = Vec::new();
    for file in &files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = file.to_string_lossy();
        let (w, i) = (WARMUP.to_string(), ITERS.to_string());
        // `--no-cache`: the compile column is a real compile, never a cache hit.
        let args = ["bench", &*path, "--json", "--no-cache", "--warmup", &w, "--iters", &i, "--threads", "1"];
        let mut row = Row {
            name: name.clone(),
            ..Row::default()
        };
        for _ in 0..ROUNDS {
            match tensorc(&bin, &args) {
                Ok(json) => {
                    row.compile_ms = fastest(row.compile_ms, json_number(&json, "compile_ms"));
                    row.tensorc_ns = fastest(row.tensorc_ns, json_number(&json, "min_ns"));
                }
                Err(e) => {
                    row.error = Some(format!("{e:#}").lines().nth(1).unwrap_or("").to_owned());
                    break;
                }
            }
            row.numpy_ns = fastest(row.numpy_ns, numpy_time(&name, 1));
            // The same workload on every core (the CLI's default thread count).
            if let Ok(json) = tensorc(&bin, &args[..args.len() - 2]) {
                row.tensorc_all_ns = fastest(row.tensorc_all_ns, json_number(&json, "min_ns"));
            }
            row.numpy_all_ns = fastest(row.numpy_all_ns, numpy_time(&name, cores()));
        }
        println!("{}", format_row(&row));
        rows.push(row);
    }
    let table = markdown_table(&rows, machine);
    let table = format!("{table}\n{}", threads_table(&rows, machine));
    println!("\n{table}");
    let json_path = target_dir().join("bench.json");
    std::fs::write(&json_path, json(&rows))
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    println!("wrote {}", json_path.display());
    let doc = root().join("docs").join("benchmarks.md");
    write_table_into(&doc, &table)?;
    println!("updated {}", doc.display());
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        bail!("{failed} of {} workloads failed", rows.len());
    }
    Ok(())
}

fn format_row(r: &Row) -> String {
    match (&r.error, r.compile_ms, r.tensorc_ns) {
        (Some(e), ..) => format!("{:<24} FAILED: {e}", r.name),
        (None, Some(c), Some(t)) => format!(
            "{:<24} compile {c:>8.1} ms  min {:>10.3} ms",
            r.name,
            t / 1e6
        ),
        _ => format!("{:<24} (no numbers in tensorc's output)", r.name),
    }
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// The Markdown table: time, throughput and compile time of tensorc, NumPy's
/// time and throughput, tensorc's speed relative to NumPy (> 1: faster) and
/// tensorc's throughput as a percentage of the machine reference, which
/// heads the table.
fn markdown_table(rows: &[Row], machine: Machine) -> String {
    let mut s = format!(
        "Machine reference (same run, one core): STREAM-style triad {} GB/s, f32 FMA peak {} GFLOPS.\n\n",
        cell(machine.triad_gbs, 1),
        cell(machine.fma_gflops, 1)
    );
    s.push_str(
        "| workload | tensorc ms | tensorc | NumPy ms | NumPy | unit | tensorc / NumPy speed | compile ms | % of triad / peak |\n\
         |---|---:|---:|---:|---:|---|---:|---:|---:|\n",
    );
    for r in rows {
        let m = metric(&r.name);
        let tp = |ns: Option<f64>| Some(throughput(m?, ns?).0);
        let unit = m.map_or("", |m| throughput(m, 1.0).1);
        let ratio = match (r.tensorc_ns, r.numpy_ns) {
            (Some(t), Some(n)) => Some(n / t),
            _ => None,
        };
        let percent = m
            .zip(r.tensorc_ns)
            .and_then(|(m, t)| percent_of_machine(m, t, machine));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {unit} | {} | {} | {} |",
            r.name,
            cell(r.tensorc_ns.map(|t| t / 1e6), 3),
            cell(tp(r.tensorc_ns), 2),
            cell(r.numpy_ns.map(|t| t / 1e6), 3),
            cell(tp(r.numpy_ns), 2),
            cell(ratio, 2),
            cell(r.compile_ms, 0),
            cell(percent, 0),
        );
    }
    s
}

/// The all-threads table (issue 6 points 5 and 6): tensorc and NumPy on
/// every core of this machine, tensorc's speed relative to NumPy's there,
/// tensorc's speed-up from one thread, and its throughput as a percentage
/// of the all-core reference, which heads the table.
fn threads_table(rows: &[Row], machine: Machine) -> String {
    let n = if machine.threads > 1 { machine.threads } else { cores() };
    let all = Machine {
        threads: n,
        ..machine
    }
    .all_threads();
    let mut s = format!(
        "All threads ({n}, same run): STREAM-style triad on {n} threads {} GB/s, f32 FMA peak {n} × one core = {} GFLOPS.\n\n",
        cell(all.triad_gbs, 1),
        cell(all.fma_gflops, 1)
    );
    let _ = write!(
        s,
        "| workload | tensorc 1 thread ms | tensorc {n} threads ms | speed-up | tensorc | NumPy {n} threads ms | NumPy | unit | tensorc / NumPy speed | % of triad / peak |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---:|---:|\n"
    );
    for r in rows {
        let m = metric(&r.name);
        let tp = |ns: Option<f64>| Some(throughput(m?, ns?).0);
        let unit = m.map_or("", |m| throughput(m, 1.0).1);
        let speedup = r.tensorc_ns.zip(r.tensorc_all_ns).map(|(one, all)| one / all);
        let ratio = r.numpy_all_ns.zip(r.tensorc_all_ns).map(|(np, t)| np / t);
        let percent = m
            .zip(r.tensorc_all_ns)
            .and_then(|(m, t)| percent_of_machine(m, t, all));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {unit} | {} | {} |",
            r.name,
            cell(r.tensorc_ns.map(|t| t / 1e6), 3),
            cell(r.tensorc_all_ns.map(|t| t / 1e6), 3),
            cell(speedup, 2),
            cell(tp(r.tensorc_all_ns), 2),
            cell(r.numpy_all_ns.map(|t| t / 1e6), 3),
            cell(tp(r.numpy_all_ns), 2),
            cell(ratio, 2),
            cell(percent, 0),
        );
    }
    s
}

/// The rows as a JSON array (hand-written: xtask keeps to std + anyhow).
/// `*_all_threads_*` are the runs on every core.
fn json(rows: &[Row]) -> String {
    let num = |v: Option<f64>| v.map_or_else(|| "null".to_owned(), |v| format!("{v}"));
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "  {{\"name\": \"{}\", \"compile_ms\": {}, \"tensorc_min_ns\": {}, \"tensorc_all_threads_min_ns\": {}, \"numpy_min_ns\": {}, \"numpy_all_threads_min_ns\": {}, \"failed\": {}}}",
                r.name,
                num(r.compile_ms),
                num(r.tensorc_ns),
                num(r.tensorc_all_ns),
                num(r.numpy_ns),
                num(r.numpy_all_ns),
                r.error.is_some()
            )
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

/// Replaces the text between the markers in `doc` with `table` (appending
/// the markers and table when the file has none).
fn write_table_into(doc: &Path, table: &str) -> Result<()> {
    write_between(doc, BEGIN, END, table)
}

/// Replaces the text between `begin` and `end` in `doc` with `table`
/// (appending both markers and the table when the file has none); also used
/// by `cargo xtask sizes`.
pub(crate) fn write_between(doc: &Path, begin: &str, end: &str, table: &str) -> Result<()> {
    let old = std::fs::read_to_string(doc).unwrap_or_default();
    let block = format!("{begin}\n{table}{end}");
    let new = match (old.find(begin), old.find(end)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &old[..b], &old[e + end.len()..]),
        _ => format!("{old}\n{block}\n"),
    };
    std::fs::write(doc, new).with_context(|| format!("cannot write {}", doc.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_keep_the_fastest_time_of_either_side() {
        assert_eq!(fastest(None, None), None);
        assert_eq!(fastest(Some(3.0), None), Some(3.0));
        assert_eq!(fastest(None, Some(2.0)), Some(2.0));
        assert_eq!(fastest(Some(3.0), Some(2.0)), Some(2.0));
    }

    #[test]
    fn metrics_follow_the_workload_headers() {
        // W2 header: GFLOPS = 2*M*N*K / time, 1024³.
        assert_eq!(
            metric("w02_matmul_1024"),
            Some(Metric::Flops(2_147_483_648.0))
        );
        // W4 header: 3 inputs + 1 output of 16M f32 = 256 MiB.
        assert_eq!(
            metric("w04_fused_elementwise"),
            Some(Metric::Bytes(268_435_456.0))
        );
        // W7: one 64M f32 input.
        assert_eq!(metric("w07_sum"), Some(Metric::Bytes(268_435_456.0)));
        assert_eq!(metric("x"), None);
        // 2^31 flops in 2^31 ns... = 1 GFLOPS.
        assert_eq!(throughput(Metric::Flops(2.0e9), 2.0e9), (1.0, "GFLOPS"));
    }

    #[test]
    fn machine_reference_lines_and_percentages() {
        let m = parse_machine("triad_gbs 25.5\nfma_gflops 0.000\n");
        assert_eq!(m.triad_gbs, Some(25.5));
        assert_eq!(m.fma_gflops, None, "a failed self-check prints 0");
        assert_eq!((m.triad_all_gbs, m.threads), (None, 1));
        let two = parse_machine(
            "triad_gbs 25.5\ntriad_threads 2\ntriad_all_gbs 40.0\nfma_gflops 100.0\n",
        );
        assert_eq!((two.triad_all_gbs, two.threads), (Some(40.0), 2));
        // All threads: the triad measured on them, the peak times two.
        let all = two.all_threads();
        assert_eq!((all.triad_gbs, all.fma_gflops), (Some(40.0), Some(200.0)));
        // W7 reads 256 MiB; in 20 ms that is 13.42 GB/s, 52.6 % of 25.5.
        let w7 = metric("w07_sum").unwrap();
        let p = percent_of_machine(w7, 20.0e6, m).unwrap();
        assert!((p - 100.0 * 268_435_456.0 / 20.0e6 / 25.5).abs() < 1e-9, "{p}");
        assert_eq!(percent_of_machine(metric("w02").unwrap(), 1.0, m), None);
    }

    #[test]
    fn reads_numpy_lines_and_writes_the_table_between_markers() {
        let out = "{\"name\": \"w01_matmul_256\", \"median_ns\": 200, \"min_ns\": 150}\n\
                   {\"name\": \"w99\", \"error\": \"no NumPy version\"}\n";
        assert_eq!(parse_numpy(out), vec![("w01_matmul_256".to_owned(), 150.0)]);

        let rows = [Row {
            name: "w01_matmul_256".into(),
            compile_ms: Some(10.0),
            tensorc_ns: Some(300.0),
            tensorc_all_ns: Some(120.0),
            numpy_ns: Some(150.0),
            numpy_all_ns: Some(60.0),
            error: None,
        }];
        // One thread 300 ns, all threads 120 ns: a 2.50x speed-up; NumPy on
        // all threads 60 ns: tensorc at 0.50 of its speed. 2·256³ flops in
        // 120 ns is 279620 GFLOPS, 69905 % of 2 × 200 GFLOPS.
        let two = Machine {
            triad_gbs: Some(20.0),
            triad_all_gbs: Some(30.0),
            threads: 2,
            fma_gflops: Some(200.0),
        };
        let th = threads_table(&rows, two);
        assert!(
            th.contains("| w01_matmul_256 | 0.000 | 0.000 | 2.50 | 279620.27 | 0.000 | 559240.53 | GFLOPS | 0.50 | 69905 |"),
            "{th}"
        );
        assert!(th.contains("triad on 2 threads 30.0 GB/s, f32 FMA peak 2 × one core = 400.0 GFLOPS"), "{th}");
        assert!(th.contains("| tensorc 2 threads ms |"), "{th}");
        let t = markdown_table(&rows, Machine::default());
        // NumPy twice as fast: ratio 0.50.
        assert!(t.contains("| 0.50 |"), "{t}");
        // No machine numbers: no percentage.
        assert!(t.contains("| – |\n"), "{t}");
        // 2·256³ flops in 300 ns is 111848 GFLOPS; at a 200 GFLOPS peak
        // that is 55924 %.
        let machine = Machine {
            triad_gbs: Some(20.0),
            fma_gflops: Some(200.0),
            ..Machine::default()
        };
        let t = markdown_table(&rows, machine);
        assert!(t.contains("| 55924 |\n"), "{t}");
        assert!(t.contains("triad 20.0 GB/s, f32 FMA peak 200.0 GFLOPS"), "{t}");
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let doc = dir.join("b.md");
        std::fs::write(&doc, format!("intro\n{BEGIN}\nold\n{END}\nafter\n")).unwrap();
        write_table_into(&doc, "T\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&doc).unwrap(),
            format!("intro\n{BEGIN}\nT\n{END}\nafter\n")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! `cargo xtask fuzz`: runs the cargo-fuzz targets of `fuzz/` for a bounded
//! time each, then the generated differential test (interp vs CPU) for many
//! more seeds than `cargo xtask test` runs. See docs/testing.md.
//!
//! Lives apart from `main.rs` because it has its own argument grammar and
//! corpus handling; it shares `run`, `cargo` and `root` with the other commands.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, root, run};

pub const USAGE: &str = "usage: cargo xtask fuzz [--time SECS] [--target NAME]... [--cases N] [--seed N]

  Runs each cargo-fuzz target of fuzz/ for SECS seconds (libFuzzer, AddressSanitizer; the
  pipeline target links MLIR and is built without a sanitizer), starting from seed corpora
  copied from tests/cases/**/*.nxir and examples/*.nxir into fuzz/corpus/NAME (kept between
  runs, not committed). Then runs the generated differential test (interp vs CPU) for N
  seeds from --seed. A crash is saved under fuzz/artifacts/NAME/ and fails the command
  after all targets ran.

  --time SECS     seconds per fuzz target (default 60)
  --target NAME   only these: parse, check, pipeline, npy, generated (repeatable; default all)
  --cases N       generated programs to run (default 1000; 0 skips them)
  --seed N        first generated seed (default 100: the test suite already runs 0..100)

  Needs cargo-fuzz (`cargo xtask setup` installs it). The stable toolchain builds the
  targets with RUSTC_BOOTSTRAP=1, since libFuzzer instrumentation needs -Z flags.";

/// The libFuzzer targets, in the order they run.
pub const TARGETS: [&str; 4] = ["parse", "check", "npy", "pipeline"];
/// The step after them: the generated differential test.
const GENERATED: &str = "generated";

#[derive(Debug, PartialEq)]
pub struct Options {
    pub time: u64,
    pub targets: Vec<String>,
    pub cases: u64,
    pub seed: u64,
}

/// Parses the arguments after `fuzz`; `Ok(None)` for `--help`.
pub fn parse_args(args: &[String]) -> Result<Option<Options>> {
    let mut o = Options { time: 60, targets: Vec::new(), cases: 1000, seed: 100 };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<String> {
            it.next().cloned().with_context(|| format!("{name} needs a value"))
        };
        let number = |name: &str, v: String| -> Result<u64> {
            v.parse().with_context(|| format!("{name} expects a whole number, got '{v}'"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--time" => o.time = number("--time", value("--time")?)?,
            "--cases" => o.cases = number("--cases", value("--cases")?)?,
            "--seed" => o.seed = number("--seed", value("--seed")?)?,
            "--target" => {
                let t = value("--target")?;
                if !TARGETS.contains(&t.as_str()) && t != GENERATED {
                    bail!("unknown fuzz target '{t}' (known: {}, {GENERATED})", TARGETS.join(", "));
                }
                o.targets.push(t);
            }
            other => bail!("unexpected argument '{other}'"),
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().chain([&GENERATED]).map(|s| s.to_string()).collect();
    }
    Ok(Some(o))
}

pub fn fuzz(args: &[String]) -> Result<()> {
    let Some(o) = parse_args(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let mut failed = Vec::new();
    let fuzz_targets: Vec<&str> =
        TARGETS.iter().copied().filter(|t| o.targets.iter().any(|s| s == t)).collect();
    if !fuzz_targets.is_empty() {
        ensure_cargo_fuzz()?;
    }
    for target in fuzz_targets {
        let corpus = seed_corpus(target)?;
        let mut cmd = cargo_fuzz();
        cmd.args(["run", target]).arg(&corpus);
        if target == "pipeline" {
            // MLIR and LLVM are C++ without ASan instrumentation and a
            // sanitizer build of the whole facade takes long on 2 cores.
            // Its own target directory, so the two flag sets do not rebuild
            // each other's dependencies on every run.
            cmd.args(["--features", "pipeline", "--sanitizer", "none", "--target-dir"]);
            cmd.arg(root().join("fuzz").join("target").join("nosan"));
        }
        cmd.arg("--");
        cmd.args(libfuzzer_flags(target, o.time));
        if target != "npy" {
            cmd.arg(format!("-dict={}", nxir_dictionary()?.display()));
        }
        if let Err(e) = run(&mut cmd) {
            eprintln!("fuzz target {target} failed: {e:#} (inputs under fuzz/artifacts/{target}/)");
            failed.push(target.to_string());
        }
    }
    if o.targets.iter().any(|t| t == GENERATED) && o.cases > 0 {
        let mut cmd = cargo();
        cmd.args(["test", "-p", "tensorc-tests", "--test", "integration", "--", "generated_"])
            .env("TENSORC_GEN_CASES", o.cases.to_string())
            .env("TENSORC_GEN_SEED", o.seed.to_string());
        if let Err(e) = run(&mut cmd) {
            eprintln!("generated programs failed: {e:#} (shrunk programs under tests/cases/regressions/)");
            failed.push(GENERATED.to_string());
        }
    }
    if !failed.is_empty() {
        bail!("failures in: {}", failed.join(", "));
    }
    Ok(())
}

/// libFuzzer's options for one bounded run of `target`.
fn libfuzzer_flags(target: &str, secs: u64) -> Vec<String> {
    // A single input of the front-end targets takes microseconds; the
    // pipeline builds an MLIR context and runs passes (tens of ms), so it
    // gets more time per input and more memory.
    let (timeout, rss) = if target == "pipeline" { (60, 8192) } else { (10, 2048) };
    vec![
        format!("-max_total_time={secs}"),
        format!("-timeout={timeout}"),
        format!("-rss_limit_mb={rss}"),
        "-print_final_stats=1".into(),
    ]
}

fn cargo_fuzz() -> Command {
    let mut cmd = cargo();
    cmd.arg("fuzz");
    // cargo-fuzz passes -Z flags (sanitizers, coverage); the stable
    // toolchain accepts them for this build only with RUSTC_BOOTSTRAP.
    cmd.env("RUSTC_BOOTSTRAP", "1");
    cmd
}

pub fn cargo_fuzz_installed() -> bool {
    cargo().args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success())
}

/// Installs cargo-fuzz from crates.io when `cargo fuzz` is missing.
pub fn ensure_cargo_fuzz() -> Result<()> {
    if cargo_fuzz_installed() {
        return Ok(());
    }
    println!("xtask: installing cargo-fuzz (needed by `cargo xtask fuzz`)");
    run(cargo().args(["install", "--locked", "cargo-fuzz"]))
}

/// `fuzz/corpus/<target>`, with the seed inputs added (existing files, such as
/// inputs libFuzzer found in earlier runs, are kept).
fn seed_corpus(target: &str) -> Result<PathBuf> {
    let dir = root().join("fuzz").join("corpus").join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if target == "npy" {
        for (name, bytes) in npy_seeds() {
            std::fs::write(dir.join(name), bytes)?;
        }
        return Ok(dir);
    }
    let mut sources = Vec::new();
    nxir_files(&root().join("tests").join("cases"), &mut sources)?;
    nxir_files(&root().join("examples"), &mut sources)?;
    for src in sources {
        // Flattened into one directory: `tests/cases/ops/add.nxir` → `tests_cases_ops_add.nxir`.
        let rel = src.strip_prefix(root()).unwrap_or(&src);
        let name = rel.to_string_lossy().replace(['/', '\\'], "_");
        std::fs::copy(&src, dir.join(name)).with_context(|| format!("cannot copy {}", src.display()))?;
    }
    Ok(dir)
}

/// Writes `fuzz/corpus/nxir.dict`, a libFuzzer dictionary of the words
/// `.nxir` is made of: every op name of `dialects/nxir/ops.tsv`, dtypes,
/// keywords, and the option names and atoms (`axes:`, `:same`) the case files
/// use. Mutations that insert whole words reach the checker's and the
/// lowering's interesting paths far more often than byte flips do.
fn nxir_dictionary() -> Result<PathBuf> {
    let path = root().join("fuzz").join("corpus").join("nxir.dict");
    std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
    // Every word is printable ASCII without quotes or backslashes.
    let text: String = nxir_words()?.iter().map(|w| format!("\"{w}\"\n")).collect();
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn nxir_words() -> Result<std::collections::BTreeSet<String>> {
    let mut words = std::collections::BTreeSet::new();
    let registry = root().join("dialects").join("nxir").join("ops.tsv");
    let ops = std::fs::read_to_string(&registry).with_context(|| format!("cannot read {}", registry.display()))?;
    for line in ops.lines().filter(|l| !l.starts_with('#')).skip(1) {
        if let Some(op) = line.split('\t').next().filter(|op| !op.is_empty()) {
            words.insert(op.to_string());
        }
    }
    let fixed = "def fn return nil true false nan infinity neg_infinity s8 s16 s32 s64 u8 u16 u32 u64 \
                 f16 bf16 f32 f64 c64 c128 -> { } [ ] ( ) = , :";
    words.extend(fixed.split_whitespace().map(String::from));
    let mut cases = Vec::new();
    nxir_files(&root().join("tests").join("cases").join("ops"), &mut cases)?;
    for case in cases {
        let text = std::fs::read_to_string(&case)?;
        // Signatures (`def f(x: f32, y: s32)`) name parameters, not options.
        for line in text.lines().filter(|l| !l.starts_with("def ") && !l.trim_start().starts_with('#')) {
            // `, name:` is an option; ` :name` an atom.
            for part in line.split(", ").skip(1) {
                if let Some((name, _)) = part.split_once(": ")
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    words.insert(format!("{name}:"));
                }
            }
            for part in line.split(" :").skip(1) {
                let atom: String = part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !atom.is_empty() {
                    words.insert(format!(":{atom}"));
                }
            }
        }
    }
    Ok(words)
}

/// Every `*.nxir` below `dir`.
fn nxir_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            nxir_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "nxir") {
            out.push(path);
        }
    }
    Ok(())
}

/// A few valid `.npy` files (no NumPy needed): little- and big-endian, a
/// scalar, C and Fortran order, and an empty array.
fn npy_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("f4_2x3.npy", npy("<f4", false, "(2, 3)", 24)),
        ("u1_scalar.npy", npy("|u1", false, "()", 1)),
        ("i8_fortran.npy", npy(">i8", true, "(2, 2)", 32)),
        ("f8_empty.npy", npy("<f8", false, "(0, 5)", 0)),
        ("b1_3.npy", npy("|b1", false, "(3,)", 3)),
    ]
}

/// A version 1.0 `.npy` file with `data_len` bytes counting up from 1.
fn npy(descr: &str, fortran: bool, shape: &str, data_len: usize) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    // Data starts on a 64-byte boundary; the header ends with a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend((0..data_len).map(|i| (i % 255) as u8 + 1));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_run_every_target() {
        let o = parse_args(&[]).unwrap().unwrap();
        assert_eq!(o.time, 60);
        assert_eq!(o.cases, 1000);
        assert_eq!(o.targets, ["parse", "check", "npy", "pipeline", "generated"]);
    }

    #[test]
    fn options_are_read() {
        let o = parse_args(&args("--time 5 --target check --target generated --cases 7 --seed 9"))
            .unwrap()
            .unwrap();
        assert_eq!(o, Options { time: 5, targets: vec!["check".into(), "generated".into()], cases: 7, seed: 9 });
        assert_eq!(parse_args(&args("--help")).unwrap(), None);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let e = |s| parse_args(&args(s)).unwrap_err().to_string();
        assert_eq!(e("--target lexer"), "unknown fuzz target 'lexer' (known: parse, check, npy, pipeline, generated)");
        assert_eq!(e("--time"), "--time needs a value");
        assert_eq!(e("--cases many"), "--cases expects a whole number, got 'many'");
        assert_eq!(e("--fast"), "unexpected argument '--fast'");
    }

    #[test]
    fn dictionary_has_ops_options_and_atoms() {
        let words = nxir_words().unwrap();
        for w in ["dot", "window_reduce", "bf16", "def", "axes:", "padding:", ":same", ":desc"] {
            assert!(words.contains(w), "{w} missing from {words:?}");
        }
        // Quoted as they are, every word is a valid libFuzzer dictionary entry.
        assert!(words.iter().all(|w| !w.is_empty() && !w.contains(['"', '\\']) && w.is_ascii()), "{words:?}");
        // Parameter names (`x: f32[2]`) are not options.
        assert!(!words.contains("x:"), "{words:?}");
    }

    #[test]
    fn npy_seeds_have_aligned_headers() {
        for (name, bytes) in npy_seeds() {
            let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + hlen) % 64, 0, "{name}");
            assert_eq!(bytes[10 + hlen - 1], b'\n', "{name}");
        }
    }
}

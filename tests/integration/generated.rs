//! The generated differential test: random well-typed programs from
//! `tensorc-progen`, run on the reference interpreter and on the CPU JIT with
//! the same random inputs, must agree — dtype and shape exactly, integers
//! exactly, floats within `tensorc_progen::tolerance` (NaN equals NaN).
//!
//! The generator keeps its programs inside the region where two correct
//! implementations agree to that tolerance (see `tensorc-progen`'s `model`),
//! so any disagreement, compile failure, run failure or panic is a bug. A
//! failing program is shrunk to a minimal one that fails the same way, which
//! is written to `tests/cases/regressions/gen_<seed>.nxir`, and the test fails
//! with its text.
//!
//! `TENSORC_GEN_CASES` (default 100) sets how many seeds run and
//! `TENSORC_GEN_SEED` (default 0) the first one, so `cargo xtask fuzz` can run
//! thousands; `TENSORC_GEN_ALL=1` also generates the ops `GenConfig` leaves
//! out by default because of open bugs (`tensorc_progen::KNOWN_BUGS`), and
//! `TENSORC_GEN_STATEMENTS` (default 10) sets the most statements per def.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use tensorc::{CompileOptions, Target, Tensor, TensorType};
use tensorc_progen::{GenConfig, generate, shrink, tolerance};

use crate::harness::{EDGE_VARIANTS, compare, edge_tensor};

/// How a program failed; the shrinker keeps the kind, so a minimal program
/// shows the same bug rather than some other one met on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The generated program does not type-check (a generator or checker bug).
    Check,
    /// The CPU target cannot compile a program that checked.
    CpuCompile,
    /// The interpreter returned an error.
    Interp,
    /// The compiled code returned an error.
    Cpu,
    /// Results differ.
    Mismatch,
    /// Something panicked.
    Panic,
}

struct Failure {
    kind: Kind,
    message: String,
}

/// Input seeds every program runs with.
const INPUT_SEEDS: [u64; 2] = [0, 1];

/// Whether every value of the program is an integer: then every op is exact
/// on any input, and the harness's edge values (MIN, MAX, shift widths, ...)
/// are fair inputs too. Programs with floats only get the small random
/// inputs the generator's error model assumes.
fn all_integer(m: &tensorc_ir::Module) -> bool {
    m.functions.iter().all(|f| {
        f.params.iter().all(|(_, t)| t.dtype.is_int())
            && f.nodes.iter().all(|n| n.ty.flatten().iter().all(|t| t.dtype.is_int()))
    })
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run_case(src: &str) -> Option<Failure> {
    match catch_unwind(AssertUnwindSafe(|| differential(src))) {
        Ok(r) => r,
        Err(p) => {
            let message = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".into());
            Some(Failure { kind: Kind::Panic, message })
        }
    }
}

fn fail(kind: Kind, message: String) -> Option<Failure> {
    Some(Failure { kind, message })
}

/// Runs every function of `src` on both targets; the first disagreement.
fn differential(src: &str) -> Option<Failure> {
    let opts = |target| CompileOptions { target, ..Default::default() };
    let interp = match tensorc::compile_str("gen.nxir", src, &opts(Target::Interp)) {
        Ok(p) => p,
        Err(e) => return fail(Kind::Check, e.render()),
    };
    let cpu = match tensorc::compile_str("gen.nxir", src, &opts(Target::Cpu)) {
        Ok(p) => p,
        Err(e) => return fail(Kind::CpuCompile, e.render()),
    };
    let edges = all_integer(interp.module());
    for name in interp.functions() {
        let (fi, fc) = match (interp.entry(Some(name)), cpu.entry(Some(name))) {
            (Ok(fi), Ok(fc)) => (fi, fc),
            (Err(e), _) | (_, Err(e)) => return fail(Kind::CpuCompile, e.render()),
        };
        let params: Vec<TensorType> = fi.params().iter().map(|(_, t)| t.clone()).collect();
        let mut sets: Vec<(String, Vec<Tensor>)> = INPUT_SEEDS
            .iter()
            .map(|&seed| {
                let inputs = params
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| tensorc_ir::random::random_tensor(ty, seed, i as u64))
                    .collect();
                (format!("input seed {seed}"), inputs)
            })
            .collect();
        if edges {
            for variant in 0..EDGE_VARIANTS {
                let inputs = params.iter().enumerate().map(|(i, ty)| edge_tensor(ty, i, variant, false)).collect();
                sets.push((format!("edge inputs {variant}"), inputs));
            }
        }
        for (seed, inputs) in &sets {
            let want = match fi.call(inputs) {
                Ok(r) => r,
                Err(e) => return fail(Kind::Interp, format!("{name} [{seed}]: {}", e.render())),
            };
            let got = match fc.call(inputs) {
                Ok(r) => r,
                Err(e) => return fail(Kind::Cpu, format!("{name} [{seed}]: {}", e.render())),
            };
            if got.len() != want.len() {
                return fail(Kind::Mismatch, format!("{name}: {} results from cpu, {} from interp", got.len(), want.len()));
            }
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                if let Err(msg) = compare(g, w, tolerance(w.dtype())) {
                    let shown: Vec<String> = inputs.iter().map(|t| format!("{t:?}")).collect();
                    return fail(
                        Kind::Mismatch,
                        format!("{name} [{seed}] result {k}: {msg}\n  inputs: {}", shown.join(", ")),
                    );
                }
            }
        }
    }
    None
}

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases").join("regressions")
}

/// Runs `cases` seeds from `first`; one report per failing seed, after
/// shrinking it and writing the regression file `gen_<prefix><seed>.nxir`.
fn run_seeds(cfg: &GenConfig, first: u64, cases: u64, prefix: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for seed in first..first + cases {
        let src = generate(seed, cfg);
        let Some(f) = run_case(&src) else { continue };
        // A program that does not check cannot be shrunk meaningfully (every
        // broken candidate would "fail" the same way): report it whole.
        let minimal = if f.kind == Kind::Check {
            src.clone()
        } else {
            shrink(&src, |s| run_case(s).is_some_and(|g| g.kind == f.kind))
        };
        let detail = run_case(&minimal).map_or_else(|| f.message.clone(), |g| g.message);
        let mut text = format!("# Found by the generated differential test (seed {seed}): {:?}.\n", f.kind);
        for line in detail.lines().take(12) {
            text.push_str(&format!("#   {line}\n"));
        }
        text.push_str(&minimal);
        let dir = regressions_dir();
        let path = dir.join(format!("gen_{prefix}{seed}.nxir"));
        let written = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, &text));
        let note = match written {
            Ok(()) => format!("written to {}", path.display()),
            Err(e) => format!("could not write {}: {e}", path.display()),
        };
        failures.push(format!("seed {seed} ({:?}; {note}):\n{text}", f.kind));
    }
    failures
}

#[test]
fn generated_programs_agree_between_interp_and_cpu() {
    let cases = env_u64("TENSORC_GEN_CASES", 100);
    let first = env_u64("TENSORC_GEN_SEED", 0);
    let mut cfg = if std::env::var("TENSORC_GEN_ALL").is_ok_and(|v| v == "1") {
        GenConfig::everything()
    } else {
        GenConfig::default()
    };
    cfg.max_statements = env_u64("TENSORC_GEN_STATEMENTS", cfg.max_statements as u64) as usize;
    let failures = run_seeds(&cfg, first, cases, "");
    assert!(
        failures.is_empty(),
        "{} of {cases} generated programs disagree between the interpreter and the CPU:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Integer-only programs, which also run on the harness's edge inputs (MIN,
/// MAX, shift widths, ...): integer semantics at the edges (wrapping,
/// division by zero, out-of-range shifts) are exact on both targets.
#[test]
fn generated_integer_programs_agree_on_edge_inputs() {
    let cases = env_u64("TENSORC_GEN_CASES", 100);
    let first = env_u64("TENSORC_GEN_SEED", 0);
    let base = if std::env::var("TENSORC_GEN_ALL").is_ok_and(|v| v == "1") {
        GenConfig::everything()
    } else {
        GenConfig::default()
    };
    let cfg = GenConfig {
        dtypes: tensorc::DType::ALL.into_iter().filter(|d| d.is_int()).collect(),
        floats: false,
        max_statements: env_u64("TENSORC_GEN_STATEMENTS", base.max_statements as u64) as usize,
        ..base
    };
    let failures = run_seeds(&cfg, first, cases, "int");
    assert!(
        failures.is_empty(),
        "{} of {cases} generated integer programs disagree between the interpreter and the CPU:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The shrinker and the comparison agree on a planted disagreement: a
/// predicate that "fails" whenever `divide` is present keeps exactly the
/// divide, and the result still compiles for both targets and agrees.
#[test]
fn shrinking_a_generated_program_keeps_the_failing_op() {
    let cfg = GenConfig::default();
    let src = (0..200).map(|s| generate(s, &cfg)).find(|p| p.contains(" = divide ")).expect("some program divides");
    let minimal = shrink(&src, |s| s.contains(" = divide ") && tensorc::emit("m.nxir", s, tensorc::Stage::Nxir).is_ok());
    let stmts: Vec<&str> = minimal.lines().filter(|l| l.contains(" = ")).collect();
    assert!(stmts.len() <= 3 && stmts.iter().any(|l| l.contains(" = divide ")), "{minimal}");
    assert!(run_case(&minimal).is_none(), "the minimal divide program itself disagrees:\n{minimal}");
}

/// Replays every minimal program the generated test has written to
/// `tests/cases/regressions/gen_*.nxir`, so each bug they reproduced stays
/// fixed.
#[test]
fn generated_regressions_agree_between_interp_and_cpu() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(regressions_dir())
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("gen_")));
    paths.sort();
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let src = std::fs::read_to_string(p).ok()?;
            run_case(&src).map(|f| format!("{} ({:?}): {}", p.display(), f.kind, f.message))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

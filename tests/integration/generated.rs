//! The generated differential test: random well-typed programs from
//! `tensorc-progen`, run on the reference interpreter and on compiled code
//! with the same inputs, must agree — dtype and shape exactly, integers
//! exactly, floats within `tensorc_progen::tolerance` (NaN equals NaN
//! position by position, `harness::compare`).
//!
//! The generator keeps its programs inside the region where two correct
//! implementations agree to that tolerance (see `tensorc-progen`'s `model`),
//! so any disagreement, compile failure, run failure or panic is a bug. A
//! failing program is shrunk to a minimal one that fails the same way, which
//! is written to `tests/cases/regressions/gen_<kind><seed>.nxir` (never over
//! a different program already there), and the test fails with its text.
//!
//! Four runs: every op and dtype on the CPU with small random inputs; the
//! same on Vulkan where a driver exists (a program or function Vulkan rejects
//! with its "unsupported" diagnostic is skipped for Vulkan only, and the
//! count is printed); integer-only programs, which also get the harness's
//! integer edge inputs (MIN, MAX, shift widths); and programs generated for
//! arbitrary inputs (`GenConfig::special_inputs`), fed the harness's edge
//! values — NaN, ±inf, -0.0, subnormals, huge and tiny magnitudes.
//!
//! `TENSORC_GEN_CASES` (default 100) sets how many seeds each run uses (the
//! Vulkan and special-input runs use half as many) and `TENSORC_GEN_SEED`
//! (default 0) the first one, so `cargo xtask fuzz` can run thousands;
//! `TENSORC_GEN_ALL=1` also generates the ops `GenConfig` leaves out by
//! default because of open bugs (`tensorc_progen::KNOWN_BUGS`), and
//! `TENSORC_GEN_STATEMENTS` (default 10) sets the most statements per def;
//! `TENSORC_GEN_EXCLUDE=op,op:variant,…` leaves ops out (to look past a
//! known bug while hunting for others), and `TENSORC_GEN_SAVE_DIR` writes
//! the shrunk programs somewhere other than `tests/cases/regressions`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use tensorc::{CompileOptions, Error, Target, TensorType};
use tensorc_progen::{GenConfig, generate, shrink, tolerance};

use crate::harness::{EDGE_VARIANTS, compare, edge_tensor, seeded_inputs};

/// Where the compiled side runs, and which inputs the programs get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    target: Target,
    /// Programs made for arbitrary inputs: also run on the harness's float
    /// and integer edge values.
    special: bool,
}

const CPU: Plan = Plan { target: Target::Cpu, special: false };

/// How a program failed; the shrinker keeps the kind, so a minimal program
/// shows the same bug rather than some other one met on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The generated program does not type-check (a generator or checker bug).
    Check,
    /// The target cannot compile a program that checked.
    Compile,
    /// The interpreter returned an error.
    Interp,
    /// The compiled code returned an error.
    Run,
    /// Results differ.
    Mismatch,
    /// Something panicked.
    Panic,
    /// The target rejects the program with its "unsupported" diagnostic
    /// (Vulkan): not a failure, only counted.
    Unsupported,
}

struct Failure {
    kind: Kind,
    message: String,
}

/// Input seeds every program runs with.
const INPUT_SEEDS: [u64; 2] = [0, 1];

/// Whether an error is the target's "unsupported" diagnostic (Vulkan's messages name the target).
fn unsupported(e: &Error) -> bool {
    matches!(e, Error::Unsupported(m) if m.contains("Vulkan"))
}

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

fn run_case(src: &str, plan: Plan) -> Option<Failure> {
    match catch_unwind(AssertUnwindSafe(|| differential(src, plan))) {
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

/// Runs every function of `src` on the interpreter and the plan's target;
/// the first disagreement.
fn differential(src: &str, plan: Plan) -> Option<Failure> {
    let opts = |target| CompileOptions { target, ..Default::default() };
    let interp = match tensorc::compile_str("gen.nxir", src, &opts(Target::Interp)) {
        Ok(p) => p,
        Err(e) => return fail(Kind::Check, e.render()),
    };
    let compiled = match tensorc::compile_str("gen.nxir", src, &opts(plan.target)) {
        Ok(p) => p,
        Err(e) if unsupported(&e) => return fail(Kind::Unsupported, e.render()),
        Err(e) => return fail(Kind::Compile, e.render()),
    };
    // Integer programs are exact on any input; special-input programs were
    // generated for any input.
    let edges = plan.special || all_integer(interp.module());
    let mut skipped = None;
    for name in interp.functions() {
        let (fi, fc) = match (interp.entry(Some(name)), compiled.entry(Some(name))) {
            (Ok(fi), Ok(fc)) => (fi, fc),
            (Err(e), _) | (_, Err(e)) => return fail(Kind::Compile, e.render()),
        };
        let params: Vec<TensorType> = fi.params().iter().map(|(_, t)| t.clone()).collect();
        let mut sets = seeded_inputs(&params, &INPUT_SEEDS);
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
                Err(e) if unsupported(&e) => {
                    skipped = Some(e.render());
                    break;
                }
                Err(e) => return fail(Kind::Run, format!("{name} [{seed}]: {}", e.render())),
            };
            if got.len() != want.len() {
                return fail(Kind::Mismatch, format!("{name}: {} results from {:?}, {} from interp", got.len(), plan.target, want.len()));
            }
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                if let Err(msg) = compare(g, w, tolerance(w.dtype())) {
                    let shown: Vec<String> = inputs.iter().map(|t| format!("{t:?}")).collect();
                    return fail(
                        Kind::Mismatch,
                        format!("{name} [{seed}] result {k} ({:?}): {msg}\n  inputs: {}", plan.target, shown.join(", ")),
                    );
                }
            }
        }
    }
    skipped.map(|m| Failure { kind: Kind::Unsupported, message: m })
}

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases").join("regressions")
}

/// A 32-bit FNV-1a hash, to name a regression file apart from a different
/// program found under the same seed by an earlier generator.
fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

/// Writes a regression program as `gen_<prefix><seed>.nxir`, or beside it
/// with a hash suffix when that name holds a different program.
fn save_regression(prefix: &str, seed: u64, text: &str) -> String {
    let dir = std::env::var_os("TENSORC_GEN_SAVE_DIR").map_or_else(regressions_dir, PathBuf::from);
    let mut path = dir.join(format!("gen_{prefix}{seed}.nxir"));
    if std::fs::read_to_string(&path).is_ok_and(|old| old != text) {
        path = dir.join(format!("gen_{prefix}{seed}_{:08x}.nxir", fnv(text)));
    }
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, text)) {
        Ok(()) => format!("written to {}", path.display()),
        Err(e) => format!("could not write {}: {e}", path.display()),
    }
}

/// What a run of seeds found: one report per failing seed, and the seeds
/// the target rejected as unsupported.
struct Found {
    failures: Vec<String>,
    unsupported: Vec<u64>,
}

/// Runs `cases` seeds from `first`; one report per failing seed, after
/// shrinking it and writing the regression file `gen_<prefix><seed>.nxir`.
fn run_seeds(cfg: &GenConfig, first: u64, cases: u64, prefix: &str, plan: Plan) -> Found {
    let mut found = Found { failures: Vec::new(), unsupported: Vec::new() };
    for seed in first..first + cases {
        let src = generate(seed, cfg);
        let Some(f) = run_case(&src, plan) else { continue };
        if f.kind == Kind::Unsupported {
            found.unsupported.push(seed);
            continue;
        }
        // A program that does not check cannot be shrunk meaningfully (every
        // broken candidate would "fail" the same way): report it whole.
        let minimal = if f.kind == Kind::Check {
            src.clone()
        } else {
            shrink(&src, |s| run_case(s, plan).is_some_and(|g| g.kind == f.kind))
        };
        let detail = run_case(&minimal, plan).map_or_else(|| f.message.clone(), |g| g.message);
        let mut text = format!(
            "# Found by the generated differential test (seed {seed}, {:?}{}): {:?}.\n",
            plan.target,
            if plan.special { ", special inputs" } else { "" },
            f.kind
        );
        for line in detail.lines().take(12) {
            text.push_str(&format!("#   {line}\n"));
        }
        if detail != f.message {
            text.push_str("# The unshrunk program failed with:\n");
            for line in f.message.lines().take(6) {
                text.push_str(&format!("#   {line}\n"));
            }
        }
        text.push_str(&minimal);
        let note = save_regression(prefix, seed, &text);
        found.failures.push(format!("seed {seed} ({:?}; {note}):\n{text}", f.kind));
    }
    found
}

/// The generator configuration of every run: the default, or everything
/// with `TENSORC_GEN_ALL=1`, with `TENSORC_GEN_STATEMENTS` applied.
fn base_config() -> GenConfig {
    let mut cfg = if std::env::var("TENSORC_GEN_ALL").is_ok_and(|v| v == "1") {
        GenConfig::everything()
    } else {
        GenConfig::default()
    };
    cfg.max_statements = env_u64("TENSORC_GEN_STATEMENTS", cfg.max_statements as u64) as usize;
    if let Ok(ops) = std::env::var("TENSORC_GEN_EXCLUDE") {
        cfg.excluded_ops.extend(ops.split(',').filter(|o| !o.is_empty()).map(str::to_string));
    }
    cfg
}

fn assert_agree(found: Found, cases: u64, what: &str) {
    if !found.unsupported.is_empty() {
        eprintln!(
            "generated ({what}): {} of {cases} programs have a function the target rejects as unsupported (seeds {:?})",
            found.unsupported.len(),
            found.unsupported
        );
    }
    assert!(
        found.failures.is_empty(),
        "{} of {cases} generated programs disagree ({what}):\n\n{}",
        found.failures.len(),
        found.failures.join("\n")
    );
}

#[test]
fn generated_programs_agree_between_interp_and_cpu() {
    let cases = env_u64("TENSORC_GEN_CASES", 100);
    let first = env_u64("TENSORC_GEN_SEED", 0);
    let found = run_seeds(&base_config(), first, cases, "", CPU);
    assert_agree(found, cases, "interpreter vs CPU");
}

/// Integer-only programs, which also run on the harness's edge inputs (MIN,
/// MAX, shift widths, ...): integer semantics at the edges (wrapping,
/// division by zero, out-of-range shifts) are exact on both targets.
#[test]
fn generated_integer_programs_agree_on_edge_inputs() {
    let cases = env_u64("TENSORC_GEN_CASES", 100);
    let first = env_u64("TENSORC_GEN_SEED", 0);
    let cfg = GenConfig {
        dtypes: tensorc::DType::ALL.into_iter().filter(|d| d.is_int()).collect(),
        floats: false,
        ..base_config()
    };
    let found = run_seeds(&cfg, first, cases, "int", CPU);
    assert_agree(found, cases, "integer programs, interpreter vs CPU");
}

/// Programs generated for arbitrary inputs, fed NaN, ±inf, -0.0,
/// subnormals and extreme values (`harness::edge_tensor`) besides random
/// ones: NaN propagation, saturating conversions, ordering of NaN and
/// signed zeros, and flushing of subnormals must match the interpreter.
#[test]
fn generated_programs_agree_on_special_float_inputs() {
    let cases = env_u64("TENSORC_GEN_CASES", 100).div_ceil(2);
    let first = env_u64("TENSORC_GEN_SEED", 0);
    let cfg = GenConfig { special_inputs: true, ..base_config() };
    let found = run_seeds(&cfg, first, cases, "special", Plan { target: Target::Cpu, special: true });
    assert_agree(found, cases, "special float inputs, interpreter vs CPU");
}

/// Programs like the CPU run's on Vulkan (lavapipe unless a driver is chosen), on
/// random inputs: devices may flush subnormals and GLSL's math functions
/// have no defined result on NaN or huge arguments, so edge values are left
/// to the CPU run. Programs and functions Vulkan rejects as unsupported are
/// counted, not failed.
#[test]
fn generated_programs_agree_between_interp_and_vulkan() {
    if !crate::vulkan::have_driver() {
        return;
    }
    let cases = env_u64("TENSORC_GEN_CASES", 100).div_ceil(2);
    let first = env_u64("TENSORC_GEN_SEED", 0);
    let cfg = base_config();
    let found = run_seeds(&cfg, first, cases, "vulkan", Plan { target: Target::Vulkan, special: false });
    let validation = tensorc::vulkan_validation_messages();
    assert!(validation.is_empty(), "the Vulkan validation layer reported:\n{}", validation.join("\n"));
    assert_agree(found, cases, "interpreter vs Vulkan");
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
    assert!(run_case(&minimal, CPU).is_none(), "the minimal divide program itself disagrees:\n{minimal}");
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
            let name = p.file_name()?.to_string_lossy().into_owned();
            let plan = match name {
                n if n.starts_with("gen_vulkan") => {
                    if !crate::vulkan::have_driver() {
                        return None;
                    }
                    Plan { target: Target::Vulkan, special: false }
                }
                n if n.starts_with("gen_special") => Plan { target: Target::Cpu, special: true },
                _ => CPU,
            };
            run_case(&src, plan)
                .filter(|f| f.kind != Kind::Unsupported)
                .map(|f| format!("{} ({:?}): {}", p.display(), f.kind, f.message))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

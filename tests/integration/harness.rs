//! The one `check` helper behind every data-driven case, in the style of
//! Cranelift's filetests: a case is a `.nxir` file under `tests/cases/`, its
//! header comments say how to run it, and `build.rs` turns each file into
//! tests that call the functions here. Adding a case is adding a file.
//!
//! For an op case (`tests/cases/ops/*.nxir`) three things are checked:
//! the canonical `.nxir` and the linalg MLIR are snapshotted (insta), and
//! every `def` is run through the reference interpreter and the CPU JIT on
//! the same inputs (several random seeds plus an edge-value set) with the
//! results compared exactly for integers and within a tolerance for floats;
//! the CPU also runs through `call_into` on output buffers filled with junk.
//!
//! Header settings (comment lines anywhere before the first `def`):
//! - `# seeds: 0, 1` — the random seeds (default 0, 1, 2);
//! - `# tolerance: 1e-5` — relative and absolute float tolerance (default 1e-6);
//! - `# inputs: edge | mild | random` — which extra input set to use besides the
//!   random seeds: `edge` (default) has NaN, ±inf, -0.0, extremes and huge and
//!   tiny magnitudes; `mild` drops the magnitudes whose rounding depends on the
//!   order of a reduction; `random` uses no extra set.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tensorc::{CompileOptions, DType, Scalar, Stage, Target, Tensor, TensorType};
use tensorc_passes::pipeline::VectorIsa;
// Float edge values whose sums and products do not depend on the order of
// accumulation (the `# inputs: mild` set), shared with the frontend's
// differential test.
use tensorc_ir::random::MILD_FLOAT_EDGES;

/// Random seeds every case runs with (in addition to the edge set).
pub const SEEDS: [u64; 3] = [0, 1, 2];

/// Root of the case files, `tests/cases`.
pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}

/// Compiles the case `rel` (relative to `tests/cases`) to assembly with the
/// `tensorc` binary, in a subprocess, and asserts it succeeds with no
/// internal error: for programs that once made LLVM abort the process, which
/// an in-process compile would take the test binary down with.
pub fn compiles_to_asm_in_a_subprocess(rel: &str) {
    let o = std::process::Command::new(crate::cli::tensorc_bin())
        .args(["emit", "--stage", "asm"])
        .arg(cases_dir().join(rel))
        .output()
        .expect("run tensorc");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{rel}: {stderr}");
    assert!(!stderr.contains("internal error"), "{rel}: {stderr}");
}

/// Reads a case by its path relative to `tests/cases`; the relative path is
/// also the file name used in diagnostics, so snapshots hold no absolute paths.
pub fn read_case(rel: &str) -> String {
    let path = cases_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Which extra input set a case uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeSet {
    Edge,
    Mild,
    None,
}

/// Per-case settings read from the header comments.
#[derive(Clone, Debug)]
pub struct Settings {
    pub tolerance: f64,
    pub inputs: EdgeSet,
    /// Random seeds to run (`# seeds: 0, 1`); default `SEEDS`.
    pub seeds: Vec<u64>,
}

impl Settings {
    pub fn parse(source: &str) -> Settings {
        let mut s = Settings {
            tolerance: 1e-6,
            inputs: EdgeSet::Edge,
            seeds: SEEDS.to_vec(),
        };
        for line in source.lines() {
            let line = line.trim();
            if line.starts_with("def ") {
                break;
            }
            let Some(comment) = line.strip_prefix('#') else {
                continue;
            };
            let Some((key, value)) = comment.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "tolerance" => {
                    s.tolerance = value
                        .parse()
                        .unwrap_or_else(|_| panic!("bad tolerance header {value:?}"))
                }
                "inputs" => {
                    s.inputs = match value {
                        "edge" => EdgeSet::Edge,
                        "mild" => EdgeSet::Mild,
                        "random" => EdgeSet::None,
                        other => panic!("bad inputs header {other:?}"),
                    }
                }
                "seeds" => {
                    s.seeds = value
                        .split(',')
                        .map(|v| {
                            v.trim()
                                .parse()
                                .unwrap_or_else(|_| panic!("bad seeds header {value:?}"))
                        })
                        .collect()
                }
                _ => {}
            }
        }
        s
    }
}

/// A snapshot name from a case path: `ops/add.nxir` → `add`.
fn stem(rel: &str) -> String {
    Path::new(rel)
        .file_stem()
        .expect("case file has a name")
        .to_string_lossy()
        .into_owned()
}

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/snapshots"));
    s
}

/// Emits one stage of a case; a failure is rendered so the panic says why.
pub fn emit_ok(rel: &str, source: &str, stage: Stage) -> String {
    match tensorc::emit(rel, source, stage) {
        Ok(text) => text,
        Err(e) => panic!("{rel}: emit {stage:?} failed:\n{}", e.render()),
    }
}

/// (a) Snapshot of the canonical `.nxir`; also checks that printing is a fixed point.
pub fn check_nxir(rel: &str) {
    let source = read_case(rel);
    let canonical = emit_ok(rel, &source, Stage::Nxir);
    let again = emit_ok(rel, &canonical, Stage::Nxir);
    assert_eq!(
        canonical, again,
        "{rel}: the canonical form is not a fixed point of the printer"
    );
    snapshot_settings().bind(|| insta::assert_snapshot!(format!("nxir__{}", stem(rel)), canonical));
}

/// (b) Snapshot of the linalg MLIR the frontend produces, for an AVX-512
/// CPU whatever the host (`x86-64-v4`: the frontend sizes the argmax lane
/// scan for the target's registers, and a snapshot must not depend on the
/// machine; `lane_scan.rs` checks the AVX2 shape).
pub fn check_linalg(rel: &str) {
    let source = read_case(rel);
    let mlir = tensorc::emit_for(rel, &source, Stage::Linalg, tensorc::Target::Cpu, Some("x86-64-v4"))
        .unwrap_or_else(|e| panic!("{rel}: emit linalg failed:\n{}", e.render()));
    assert!(
        !mlir.contains(env!("CARGO_MANIFEST_DIR")),
        "{rel}: the MLIR holds an absolute path; snapshots must not"
    );
    snapshot_settings().bind(|| insta::assert_snapshot!(format!("linalg__{}", stem(rel)), mlir));
}

/// (c) Differential run: interpreter vs CPU on random and edge inputs.
pub fn check_run(rel: &str) {
    let source = read_case(rel);
    let settings = Settings::parse(&source);
    let failures = differential(rel, &source, &settings);
    assert!(
        failures.is_empty(),
        "{rel}: interpreter and CPU disagree:\n{}",
        failures.join("\n")
    );
}

/// An error case must fail to compile; its rendered diagnostics are snapshotted.
/// A `# error-line: N` header (one per expected error) says on which lines
/// diagnostics must point, known independently of the checker.
pub fn check_error(rel: &str) {
    let source = read_case(rel);
    let rendered = match tensorc::emit(rel, &source, Stage::Nxir) {
        Ok(text) => panic!("{rel}: expected a diagnostic, but it compiled to:\n{text}"),
        Err(e) => e.render(),
    };
    assert!(
        rendered.contains("error"),
        "{rel}: rendered diagnostics say no error:\n{rendered}"
    );
    for line in source.lines() {
        if let Some(n) = line.trim().strip_prefix("# error-line:") {
            let want = format!("{rel}:{}:", n.trim());
            assert!(
                rendered.contains(&want),
                "{rel}: expected a diagnostic at {want}, got:\n{rendered}"
            );
        }
        if let Some(text) = line.trim().strip_prefix("# error-contains:") {
            let want = text.trim();
            assert!(
                rendered.contains(want),
                "{rel}: expected the diagnostics to mention {want:?}, got:\n{rendered}"
            );
        }
    }
    assert!(
        !rendered.contains(env!("CARGO_MANIFEST_DIR")),
        "{rel}: absolute path in diagnostics"
    );
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(format!("errors__{}", stem(rel)), rendered));
}

/// Compiles `source` (named `rel` in diagnostics) for `target` with the
/// default options; a compile error panics with its rendered diagnostic.
pub fn compile_for(rel: &str, source: &str, target: Target) -> tensorc::Program {
    tensorc::compile_str(
        rel,
        source,
        &CompileOptions {
            target,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{rel}: compile for {target:?} failed:\n{}", e.render()))
}

/// Compiles `source` for both targets and compares every function on every input set.
/// Returns one message per disagreement (empty when all agree).
pub fn differential(rel: &str, source: &str, settings: &Settings) -> Vec<String> {
    let compile = |target: Target| compile_for(rel, source, target);
    let interp = compile(Target::Interp);
    let cpu = compile(Target::Cpu);
    let mut failures = Vec::new();
    for name in interp.functions() {
        let fi = interp
            .entry(Some(name))
            .unwrap_or_else(|e| panic!("{rel}: {}", e.render()));
        let fc = cpu
            .entry(Some(name))
            .unwrap_or_else(|e| panic!("{rel}: {}", e.render()));
        let param_types: Vec<TensorType> = fi.params().iter().map(|(_, t)| t.clone()).collect();
        let mut sets = seeded_inputs(&param_types, &settings.seeds);
        if settings.inputs != EdgeSet::None {
            let mild = settings.inputs == EdgeSet::Mild;
            for variant in 0..EDGE_VARIANTS {
                let inputs = param_types
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| edge_tensor(ty, i, variant, mild))
                    .collect();
                let kind = if mild {
                    "mild edge values"
                } else {
                    "edge values"
                };
                sets.push((format!("{kind} #{variant}"), inputs));
            }
        }
        if param_types.is_empty() {
            sets.truncate(1);
        }
        for (label, inputs) in &sets {
            let want = match fi.call(inputs) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!(
                        "{name} [{label}]: interpreter failed: {}",
                        e.render()
                    ));
                    continue;
                }
            };
            let got = match fc.call(inputs) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{name} [{label}]: cpu failed: {}", e.render()));
                    continue;
                }
            };
            let declared = fi.results();
            let want_types: Vec<TensorType> = want.iter().map(|t| t.ty().clone()).collect();
            if want_types != declared {
                failures.push(format!(
                    "{name} [{label}]: interpreter results {want_types:?}, declared {declared:?}"
                ));
            }
            if want.len() != got.len() {
                failures.push(format!(
                    "{name} [{label}]: {} results from cpu, {} from interp",
                    got.len(),
                    want.len()
                ));
                continue;
            }
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                if let Err(msg) = compare(g, w, settings.tolerance) {
                    failures.push(format!(
                        "{name} [{label}] result {k}: {msg}\n  inputs: {}",
                        show_inputs(inputs)
                    ));
                }
            }
            // Generated code writes into caller buffers: it must not depend on
            // their previous contents (e.g. accumulate into an unzeroed output).
            let mut dirty: Vec<Tensor> = want
                .iter()
                .map(|w| {
                    let mut t = Tensor::zeros(w.ty().clone()).expect("same size as a result");
                    t.bytes_mut().fill(0xA5);
                    t
                })
                .collect();
            let refs: Vec<&Tensor> = inputs.iter().collect();
            match fc.call_into(&refs, &mut dirty) {
                Err(e) => failures.push(format!(
                    "{name} [{label}]: cpu call_into failed: {}",
                    e.render()
                )),
                Ok(()) => {
                    for (k, (g, w)) in dirty.iter().zip(&want).enumerate() {
                        if let Err(msg) = compare(g, w, settings.tolerance) {
                            failures.push(format!(
                                "{name} [{label}] result {k} via call_into on dirty buffers: {msg}"
                            ));
                        }
                    }
                }
            }
        }
    }
    failures
}

/// One named input set per seed: parameter `i` is `random_tensor(ty, seed, i)`.
pub fn seeded_inputs(types: &[TensorType], seeds: &[u64]) -> Vec<(String, Vec<Tensor>)> {
    seeds
        .iter()
        .map(|&seed| {
            let inputs = types
                .iter()
                .enumerate()
                .map(|(i, ty)| tensorc_ir::random::random_tensor(ty, seed, i as u64))
                .collect();
            (format!("seed {seed}"), inputs)
        })
        .collect()
}

fn show_inputs(inputs: &[Tensor]) -> String {
    inputs
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether two float values agree: NaN equals NaN, infinities equal themselves,
/// otherwise |a-b| <= tol * (1 + max(|a|, |b|)) (relative plus absolute).
pub fn floats_agree(a: f64, b: f64, tol: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// Compares `got` against `want`: identical dtype and shape, integers exactly,
/// floats with `floats_agree`. The message lists the first few differences.
pub fn compare(got: &Tensor, want: &Tensor, tol: f64) -> Result<(), String> {
    if got.ty() != want.ty() {
        return Err(format!("type {} (cpu) vs {} (interp)", got.ty(), want.ty()));
    }
    let mut diffs = Vec::new();
    let mut count = 0;
    for i in 0..got.len() {
        let (g, w) = (got.get(i), want.get(i));
        let same = match (g, w) {
            (Scalar::F(a), Scalar::F(b)) => floats_agree(a, b, tol),
            _ => g == w,
        };
        if !same {
            count += 1;
            if diffs.len() < 8 {
                diffs.push(format!("[{i}] {g:?} vs {w:?}"));
            }
        }
    }
    if count == 0 {
        return Ok(());
    }
    let mut msg = format!(
        "{count} of {} elements of {} differ (cpu vs interp): ",
        got.len(),
        got.ty()
    );
    let _ = write!(msg, "{}", diffs.join(", "));
    Err(msg)
}

/// Edge values for floats: NaN, infinities, signed zeros, halves (rounding),
/// values outside every integer range, huge, tiny and subnormal magnitudes.
const FLOAT_EDGES: [f64; 29] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    1.5,
    -2.5,
    2.5,
    3.0,
    -7.0,
    100.0,
    1e30,
    -1e-30,
    1e-40,
    3e9,
    -3e9,
    1e20,
    255.5,
    -128.7,
    65535.9,
    0.7,
    -0.3,
    2.0,
    -1e19,
    4.0,
];

/// Integer edge values for a dtype: MIN/MAX and neighbours, small values, and
/// the shift boundaries `bits - 1` and `bits`.
fn int_edges(dtype: DType) -> Vec<Scalar> {
    let (lo, hi) = dtype.int_range().expect("integer dtype");
    let bits = dtype.bits() as i128;
    let vals: Vec<i128> = if dtype.is_signed_int() {
        vec![
            lo,
            hi,
            0,
            1,
            -1,
            2,
            -2,
            3,
            7,
            -8,
            lo + 1,
            hi - 1,
            bits - 1,
            bits,
            5,
            -3,
            100,
        ]
    } else {
        vec![
            0,
            hi,
            1,
            2,
            3,
            7,
            hi - 1,
            hi / 2,
            hi / 2 + 1,
            bits - 1,
            bits,
            5,
            100,
            200,
            4,
            6,
            8,
        ]
    };
    vals.into_iter()
        .map(|v| {
            if dtype.is_signed_int() {
                Scalar::I(v as i64)
            } else {
                Scalar::U(v as u64)
            }
        })
        .collect()
}

/// How many arrangements of the edge values each case runs with; each pairs
/// the parameters' edge values differently.
pub const EDGE_VARIANTS: usize = 4;

/// The edge input for parameter `param` of type `ty` in arrangement `variant`:
/// element i takes edge value number `(i * (2p + 1) + 3p + v * (5p + 1)) mod n`.
/// The value counts are prime, so every parameter walks through all values and
/// each variant pairs parameter 0's values with a different set of parameter 1's.
pub fn edge_tensor(ty: &TensorType, param: usize, variant: usize, mild: bool) -> Tensor {
    let values: Vec<Scalar> = if ty.dtype.is_float() {
        let src: &[f64] = if mild {
            &MILD_FLOAT_EDGES
        } else {
            &FLOAT_EDGES
        };
        src.iter().map(|&v| Scalar::F(v)).collect()
    } else {
        int_edges(ty.dtype)
    };
    let n = values.len();
    let count = ty.num_elements();
    let data: Vec<Scalar> = (0..count)
        .map(|i| values[(i * (2 * param + 1) + 3 * param + variant * (5 * param + 1)) % n])
        .collect();
    Tensor::from_scalars(ty.clone(), &data).expect("edge tensor has the right size")
}

/// Parses `input` in `mlir` and runs `pipeline` on it (in the pass tests, a
/// Rust pass the caller registered with `tensorc_mlir::register_external_pass`):
/// the module after, for further pipelines, and its IR printed before and
/// after. A parse or pass failure panics with MLIR's message.
pub fn before_and_after<'m>(
    mlir: &'m tensorc_mlir::Mlir,
    input: &str,
    pipeline: &str,
) -> (tensorc_mlir::MlirModule<'m>, String, String) {
    use tensorc_mlir::PrintOptions;
    let mut m = mlir.parse(input, "test").unwrap_or_else(|e| panic!("{e}"));
    let before = mlir.print(&m, PrintOptions::default());
    mlir.run_pipeline(&mut m, pipeline, "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let after = mlir.print(&m, PrintOptions::default());
    (m, before, after)
}

/// The CPU pipeline run on the `Opt`-stage MLIR `opt` up to and including
/// the first occurrence of `step` in the pipeline string, printed (the IR a
/// pass or schedule left). Registers tensorc's passes first.
pub fn cpu_ir_upto(name: &str, source: &str, opt: &str, step: &str) -> String {
    cpu_ir_upto_for(VectorIsa::Avx512, name, source, opt, step)
}

/// `cpu_ir_upto` with the lowering of `isa`'s register tiles.
pub fn cpu_ir_upto_for(isa: VectorIsa, name: &str, source: &str, opt: &str, step: &str) -> String {
    use tensorc_mlir::Mlir;
    // Registers tensorc's passes (the facade does it once, on first use).
    let _ = tensorc::emit(name, source, tensorc::Stage::LlvmDialect);
    let pipeline = tensorc_passes::pipeline::cpu_lowering_pipeline_for(isa);
    let upto = &pipeline[..pipeline.find(step).expect("the step is in the pipeline") + step.len()];
    let mlir = Mlir::new();
    let mut m = mlir.parse(opt, name).unwrap_or_else(|e| panic!("{e}"));
    mlir.run_pipeline(&mut m, upto, name)
        .unwrap_or_else(|e| panic!("{e}"));
    mlir.print(&m, tensorc_mlir::PrintOptions::default())
}

/// The CPU pipeline's IR of `source` up to `before` and up to `after`
/// (`cpu_ir_upto`): a Rust pass's input and output when `before` is the
/// step right before it and `after` the pass.
pub fn cpu_ir_between(name: &str, source: &str, before: &str, after: &str) -> (String, String) {
    cpu_ir_between_for(VectorIsa::Avx512, name, source, before, after)
}

/// `cpu_ir_between` with the lowering of `isa`'s register tiles.
pub fn cpu_ir_between_for(isa: VectorIsa, name: &str, source: &str, before: &str, after: &str) -> (String, String) {
    let opt = tensorc::emit(name, source, tensorc::Stage::Opt).unwrap_or_else(|e| panic!("{}", e.render()));
    (cpu_ir_upto_for(isa, name, source, &opt, before), cpu_ir_upto_for(isa, name, source, &opt, after))
}

/// An MLP layer, `relu(x · w + b)` for `x: T[m][k]`, `w: T[k][n]`.
pub fn bias_relu(ty: &str, m: usize, k: usize, n: usize) -> String {
    let zero = if ty.starts_with('f') { "0.0" } else { "0" };
    format!(
        "def main(x: {ty}[{m}][{k}], w: {ty}[{k}][{n}], b: {ty}[{n}]) -> {ty}[{m}][{n}] {{\n  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, {zero}\n  return y\n}}\n"
    )
}

/// Runs `differential` on each `(name, source, tolerance)` program with
/// `inputs` and one seed; one message per disagreement, named.
pub fn differential_all(
    programs: &[(&str, String, f64)],
    inputs: EdgeSet,
    seed: u64,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, source, tolerance) in programs {
        let settings = Settings {
            tolerance: *tolerance,
            inputs,
            seeds: vec![seed],
        };
        for f in differential(&format!("{name}.nxir"), source, &settings) {
            failures.push(format!("{name}: {f}"));
        }
    }
    failures
}

/// Runs `differential_all` on one program per length in `lengths` (named
/// `{prefix}_{n}`, its source `source(n)`, exact comparison) on random
/// inputs and on edge inputs; one message per disagreement.
pub fn every_length_agrees(prefix: &str, lengths: std::ops::RangeInclusive<usize>, source: impl Fn(usize) -> String) -> Vec<String> {
    let programs: Vec<(String, String)> = lengths.map(|n| (format!("{prefix}_{n}"), source(n))).collect();
    let programs: Vec<(&str, String, f64)> = programs.iter().map(|(n, s)| (n.as_str(), s.clone(), 0.0)).collect();
    let mut failures = differential_all(&programs, EdgeSet::None, 4);
    failures.extend(differential_all(&programs, EdgeSet::Edge, 6));
    failures
}

/// The text of function `@name` in a printed module (`func.func` or
/// `llvm.func`), up to the next function.
pub fn function_text<'a>(module: &'a str, name: &str) -> &'a str {
    let start = module
        .find(&format!("func @{name}("))
        .unwrap_or_else(|| panic!("no @{name} in\n{module}"));
    let rest = &module[start..];
    let end = rest[1..].find("func @").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// The values every float input sweep starts with: NaN, both infinities,
/// both zeros, ±1.
pub const FLOAT_SPECIALS: [f64; 7] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
    -0.0,
    1.0,
    -1.0,
];

/// `m·2^e` and its negation for every `e` of `exponents` and mantissas
/// `m` from 1 to 1.999 (√2 among them), each rounded by `round` to the
/// sweep's type: inputs across all magnitudes of a float type.
pub fn mantissa_sweep(exponents: impl IntoIterator<Item = i32>, round: fn(f64) -> f64) -> Vec<f64> {
    let mut v = Vec::new();
    for e in exponents {
        for m in [1.0, 1.1, 1.25, std::f64::consts::SQRT_2, 1.5, 1.75, 1.999] {
            let x = round(m * 2f64.powi(e));
            v.push(x);
            v.push(-x);
        }
    }
    v
}

/// The comparison itself decides what "agree" means, so it is tested too.
#[cfg(test)]
mod self_tests {
    use super::*;

    fn t(dtype: DType, vals: &[Scalar]) -> Tensor {
        Tensor::from_scalars(TensorType::new(dtype, vec![vals.len()]), vals).unwrap()
    }

    #[test]
    fn float_agreement() {
        assert!(floats_agree(f64::NAN, f64::NAN, 0.0));
        assert!(!floats_agree(f64::NAN, 1.0, 1.0));
        assert!(floats_agree(f64::INFINITY, f64::INFINITY, 0.0));
        assert!(!floats_agree(f64::INFINITY, f64::NEG_INFINITY, 1.0));
        assert!(!floats_agree(f64::INFINITY, 1e300, 1.0));
        assert!(floats_agree(1.0, 1.0 + 1e-7, 1e-6));
        assert!(!floats_agree(1.0, 1.0 + 1e-5, 1e-6));
        assert!(floats_agree(1e6, 1e6 + 0.5, 1e-6));
        assert!(floats_agree(0.0, -0.0, 0.0));
    }

    #[test]
    fn compare_checks_type_and_every_element() {
        let a = t(DType::S32, &[Scalar::I(1), Scalar::I(2)]);
        assert!(compare(&a, &a, 0.0).is_ok());
        let b = t(DType::S32, &[Scalar::I(1), Scalar::I(3)]);
        let msg = compare(&a, &b, 1.0).unwrap_err();
        assert!(msg.contains("1 of 2"), "{msg}");
        let c = t(DType::S64, &[Scalar::I(1), Scalar::I(2)]);
        assert!(
            compare(&a, &c, 0.0).is_err(),
            "dtype differences are never tolerated"
        );
        let f = t(DType::F32, &[Scalar::F(f64::NAN)]);
        assert!(compare(&f, &f, 0.0).is_ok());
    }

    #[test]
    fn edge_inputs_cover_the_special_values() {
        let x = edge_tensor(&TensorType::new(DType::F32, vec![29]), 0, 0, false);
        let v: Vec<f64> = x.to_scalars().iter().map(|s| s.as_f64()).collect();
        assert!(v.iter().any(|x| x.is_nan()));
        assert!(v.contains(&f64::INFINITY) && v.contains(&f64::NEG_INFINITY));
        assert!(v.iter().any(|x| *x == 0.0 && x.is_sign_negative()));
        let s = edge_tensor(&TensorType::new(DType::S8, vec![17]), 1, 0, false).to_scalars();
        assert!(s.contains(&Scalar::I(-128)) && s.contains(&Scalar::I(127)));
        let u = edge_tensor(&TensorType::new(DType::U64, vec![17]), 2, 3, false).to_scalars();
        assert!(u.contains(&Scalar::U(u64::MAX)) && u.contains(&Scalar::U(0)));
        // Different parameters see different pairings.
        let a = edge_tensor(&TensorType::new(DType::S32, vec![8]), 0, 0, false);
        let b = edge_tensor(&TensorType::new(DType::S32, vec![8]), 1, 0, false);
        assert_ne!(
            b,
            edge_tensor(&TensorType::new(DType::S32, vec![8]), 1, 1, false)
        );
        assert_ne!(a, b);
    }

    #[test]
    fn header_settings() {
        let s = Settings::parse(
            "# tolerance: 1e-3\n# inputs: mild\n# seeds: 4, 5\ndef f() {}\n# tolerance: 9\n",
        );
        assert_eq!(s.tolerance, 1e-3);
        assert_eq!(s.inputs, EdgeSet::Mild);
        assert_eq!(s.seeds, vec![4, 5]);
        let d = Settings::parse("def f() {}");
        assert_eq!(
            (d.tolerance, d.inputs, d.seeds),
            (1e-6, EdgeSet::Edge, SEEDS.to_vec())
        );
    }
}

/// The LLVM dialect of `source` (named `name`) as `emit` prints it, but
/// lowered by the AVX-512 pipeline whatever the host: the tests that count
/// the packed schedule's register tiles, forks and prefetches are written
/// for its tiles (`VectorIsa::Avx512`), and `emit` follows the host's ISA
/// (`tests/integration/vector_isa.rs` checks the other's tiles). Panics on
/// any error.
pub fn avx512_llvm_dialect(name: &str, source: &str) -> String {
    use tensorc_mlir::{Mlir, PrintOptions};
    let (_, text) = checked_and_lowered(name, source);
    let mlir = Mlir::new();
    let m = tensorc_cpu::lower(&mlir, &text, &isa_pipelines(VectorIsa::Avx512), tensorc_cpu::Upto::LlvmDialect)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    mlir.print(&m, PrintOptions::default())
}

/// `source` (named `name`) checked and lowered by the frontend: the typed
/// module and its linalg MLIR, for tests that run the CPU pipelines of
/// their choice (`isa_pipelines`) instead of the host's. Registers
/// tensorc's passes first (the facade does it on first use). Panics on any
/// error.
pub fn checked_and_lowered(name: &str, source: &str) -> (tensorc_ir::Module, String) {
    checked_and_lowered_for(name, source, VectorIsa::Avx512)
}

/// `checked_and_lowered` with the frontend's choices for `isa`'s registers.
pub fn checked_and_lowered_for(name: &str, source: &str, isa: VectorIsa) -> (tensorc_ir::Module, String) {
    use tensorc_frontend::VectorRegisters;
    let _ = tensorc::emit(name, source, Stage::Linalg);
    let file = tensorc::SourceFile::new(name, source);
    let module = tensorc_ir::check::compile(&file).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let regs = match isa {
        VectorIsa::Avx512 => VectorRegisters::AVX512,
        VectorIsa::Avx2 => VectorRegisters::AVX2,
    };
    let text = tensorc_frontend::lower_for(&module, &file, regs).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    (module, text)
}

/// The CPU pipelines with `isa`'s register tiles whatever the host's ISA
/// (no per-target steps: `for_target` is not applied to them).
pub fn isa_pipelines(isa: VectorIsa) -> tensorc_cpu::Pipelines {
    tensorc_cpu::Pipelines {
        opt: tensorc_passes::opt_pipeline().into(),
        lowering: tensorc_passes::pipeline::cpu_lowering_pipeline_for(isa),
        avx512: String::new(),
        narrow: String::new(),
    }
}

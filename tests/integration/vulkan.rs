//! The Vulkan target against the interpreter, on every op case.
//!
//! Each `tests/cases/ops/*.nxir` case is compiled for Vulkan. A case the
//! target rejects must be rejected with an "unsupported" error that names
//! the op (never an internal error or a crash); a case it accepts must agree
//! with the interpreter on the same random and edge inputs as the CPU
//! differential test (`harness::differential`), and the cases listed in
//! `SUPPORTED` must be accepted. The Khronos validation layer is on for the
//! whole run and must report nothing.
//!
//! lavapipe is selected deterministically (`VK_DRIVER_FILES`) unless the
//! caller chose a driver. Without any Vulkan driver the test prints that it
//! is skipped — except under `CI`, which always has lavapipe, where it fails.

use crate::harness::{EDGE_VARIANTS, EdgeSet, Settings, cases_dir, compare, edge_tensor, read_case};
use std::sync::Once;
use tensorc::{CompileOptions, Error, Target, Tensor, TensorType};

const LAVAPIPE: &str = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json";

/// Cases that must run on Vulkan and agree with the interpreter (the list
/// `docs/vulkan.md` documents as supported).
const SUPPORTED: &[&str] = &[
    "abs", "add", "all", "any", "argmax", "argmin", "argsort", "as_type_float_to_int",
    "as_type_int_to_int", "as_type_to_float", "bitcast", "bitwise_and", "bitwise_not",
    "bitwise_or", "bitwise_xor", "broadcast", "call", "ceil", "chain_layernorm",
    "chain_softmax", "clip", "concatenate", "constant", "conv", "conv_edge", "conv_groups",
    "conv_permutations", "conv_ranks", "conv_strides", "conv_types", "count_leading_zeros",
    "cumulative_max", "cumulative_min", "cumulative_product", "cumulative_sum", "divide", "dot",
    "equal", "eye", "f3_empty_and_scalar", "f3_larger_shapes", "floor", "gather", "greater",
    "greater_equal", "indexed_add", "indexed_put", "iota", "is_infinity", "is_nan",
    "left_shift", "less", "less_equal", "logical_and", "logical_not", "logical_or",
    "logical_xor", "max", "min", "multiply", "negate", "not_equal", "odd_sizes", "product",
    "put_slice", "quotient", "reduce_max", "reduce_min", "reshape", "reverse", "right_shift",
    "round", "rsqrt", "select", "sign", "slice", "sort", "sqrt", "squeeze", "stack", "subtract",
    "sum", "take", "take_along_axis", "tensor", "top_k", "transpose", "weak_literals",
    "window_dilations", "window_max", "window_min", "window_product", "window_sum", "zero_size",
];

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: runs once, before any Vulkan call of this process reads the
        // environment; no other test of this binary writes these variables.
        unsafe {
            if std::env::var_os("VK_DRIVER_FILES").is_none() && std::env::var_os("VK_ICD_FILENAMES").is_none() {
                std::env::set_var("VK_DRIVER_FILES", LAVAPIPE);
            }
            if std::env::var_os(tensorc_vulkan_env::VALIDATION).is_none() {
                std::env::set_var(tensorc_vulkan_env::VALIDATION, "1");
            }
        }
    });
}

/// The environment variable names of `tensorc-vulkan` (not a dependency of
/// this crate; the names are part of its documented interface).
mod tensorc_vulkan_env {
    pub const VALIDATION: &str = "TENSORC_VULKAN_VALIDATION";
}

fn compile(rel: &str, source: &str, target: Target) -> Result<tensorc::Program, Error> {
    tensorc::compile_str(
        rel,
        source,
        &CompileOptions {
            target,
            ..Default::default()
        },
    )
}

/// `true` when a Vulkan device is usable; `false` (skip) otherwise, except under CI.
fn have_driver() -> bool {
    setup();
    match compile("probe.nxir", "def f(x: f32[2]) -> f32[2] {\n  y = add x, x\n  return y\n}\n", Target::Vulkan) {
        Ok(_) => true,
        Err(e) => {
            let msg = e.render();
            assert!(
                !msg.contains("no Vulkan driver found") || std::env::var_os("CI").is_none(),
                "CI must have a Vulkan driver (lavapipe): {msg}"
            );
            assert!(msg.contains("no Vulkan driver found"), "the probe program failed on Vulkan: {msg}");
            eprintln!("\n*** SKIPPED: the Vulkan tests need a Vulkan driver: {msg}");
            false
        }
    }
}

/// Runs one case on Vulkan: `Ok(None)` when the target rejects it, `Ok(Some(failures))` otherwise.
fn run_case(rel: &str) -> Result<Option<Vec<String>>, String> {
    let source = read_case(rel);
    let settings = Settings::parse(&source);
    // A case the checker rejects (another engineer's work in progress) is
    // not the Vulkan target's to judge.
    if let Err(Error::Program(_)) = compile(rel, &source, Target::Interp) {
        eprintln!("vulkan: {rel} does not type-check; not run");
        return Ok(None);
    }
    let vk = match compile(rel, &source, Target::Vulkan) {
        Ok(p) => p,
        Err(Error::Unsupported(msg)) if msg.contains("Vulkan") || msg.contains("vulkan") => {
            return Ok(None);
        }
        Err(e) => return Err(format!("{rel}: compiling for Vulkan failed with a non-diagnostic error:\n{}", e.render())),
    };
    let interp = compile(rel, &source, Target::Interp).map_err(|e| e.render())?;
    let mut failures = Vec::new();
    for name in interp.functions() {
        let fi = interp.entry(Some(name)).map_err(|e| e.render())?;
        let fv = vk.entry(Some(name)).map_err(|e| e.render())?;
        let types: Vec<TensorType> = fi.params().iter().map(|(_, t)| t.clone()).collect();
        let mut sets: Vec<(String, Vec<Tensor>)> = settings
            .seeds
            .iter()
            .map(|&seed| {
                let inputs = types
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| tensorc_ir::random::random_tensor(ty, seed, i as u64))
                    .collect();
                (format!("seed {seed}"), inputs)
            })
            .collect();
        if settings.inputs != EdgeSet::None {
            let mild = settings.inputs == EdgeSet::Mild;
            for variant in 0..EDGE_VARIANTS {
                let inputs = types.iter().enumerate().map(|(i, ty)| edge_tensor(ty, i, variant, mild)).collect();
                sets.push((format!("edge #{variant}"), inputs));
            }
        }
        if types.is_empty() {
            sets.truncate(1);
        }
        for (label, inputs) in &sets {
            let Ok(want) = fi.call(inputs) else { continue };
            match fv.call(inputs) {
                Err(e) => failures.push(format!("{name} [{label}]: vulkan failed: {}", e.render())),
                Ok(got) => {
                    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                        if let Err(m) = compare(g, w, settings.tolerance) {
                            failures.push(format!("{name} [{label}] result {k}: {m}"));
                        }
                    }
                }
            }
        }
    }
    Ok(Some(failures))
}

#[test]
fn vulkan_agrees_with_the_interpreter_on_every_supported_case() {
    if !have_driver() {
        return;
    }
    let mut stems: Vec<String> = std::fs::read_dir(cases_dir().join("ops"))
        .expect("cases dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    stems.sort();
    let (mut passed, mut rejected, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for stem in &stems {
        let rel = format!("ops/{stem}.nxir");
        match run_case(&rel) {
            Err(e) => errors.push(e),
            Ok(None) => rejected.push(stem.clone()),
            Ok(Some(f)) if f.is_empty() => passed.push(stem.clone()),
            Ok(Some(f)) => errors.push(format!("{rel}: Vulkan and the interpreter disagree:\n  {}", f.join("\n  "))),
        }
    }
    eprintln!(
        "vulkan: {} cases agree with the interpreter, {} rejected as unsupported, {} wrong\n  agree: {}\n  rejected: {}",
        passed.len(),
        rejected.len(),
        errors.len(),
        passed.join(" "),
        rejected.join(" ")
    );
    for s in SUPPORTED {
        if !passed.iter().any(|p| p == s) && !errors.iter().any(|e| e.contains(&format!("ops/{s}.nxir"))) {
            errors.push(format!("ops/{s}.nxir is documented as supported on Vulkan but was rejected"));
        }
    }
    let validation = tensorc_vulkan_validation();
    assert!(validation.is_empty(), "the Vulkan validation layer reported:\n{}", validation.join("\n"));
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

/// The validation layer's messages: the library prints none, so they are
/// read through the facade's re-export when present; the layer also makes a
/// failing call return an error, which `run_case` reports.
fn tensorc_vulkan_validation() -> Vec<String> {
    tensorc::vulkan_validation_messages()
}

#[test]
fn an_unsupported_op_names_the_op_and_the_target() {
    if !have_driver() {
        return;
    }
    // `sort` has no data-parallel kernel on Vulkan.
    let src = "def f(x: f32[8]) -> f32[8] {\n  y = sort x\n  return y\n}\n";
    match compile("u.nxir", src, Target::Vulkan) {
        Ok(_) => {}
        Err(e) => {
            let msg = e.render();
            assert!(msg.contains("Vulkan") && msg.contains("`sort`"), "{msg}");
            assert!(msg.contains("u.nxir:2:"), "{msg}");
        }
    }
}

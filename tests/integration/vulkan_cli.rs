//! `.tvk` artifacts and `--target vulkan` through the `tensorc` binary and
//! the library: `compile --target vulkan` then `run`/`bench` of the artifact
//! against the interpreter on the same seeded inputs, `run --target vulkan`
//! on source, damaged artifacts, a machine without a Vulkan driver, and
//! programs the target cannot compile.
//!
//! Every subprocess gets lavapipe (`VK_DRIVER_FILES`) unless the caller chose
//! a driver, as `vulkan.rs` does in process. Tests that need a device skip
//! (loudly) without one, except under `CI`, where `have_driver` fails;
//! the format checks and the no-driver case need no device.

use crate::cli::{scratch, show, suite_cache_dir, tensorc_bin, write};
use crate::harness::compare;
use crate::vulkan::have_driver;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tensorc::{DType, Scalar, Tensor, TensorType};
use tensorc_ir::npy::{read_npy, write_npy};

const LAVAPIPE: &str = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json";

/// Runs the binary in `cwd`; `env` overrides the driver choice.
fn tensorc_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(tensorc_bin());
    cmd.env("TENSORC_CACHE_DIR", suite_cache_dir())
        .args(args)
        .current_dir(cwd);
    if std::env::var_os("VK_DRIVER_FILES").is_none()
        && std::env::var_os("VK_ICD_FILENAMES").is_none()
    {
        cmd.env("VK_DRIVER_FILES", LAVAPIPE);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run tensorc")
}

pub(crate) fn tensorc(args: &[&str], cwd: &Path) -> Output {
    tensorc_env(args, cwd, &[])
}

fn ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
}

/// The command failed with exit 1 and a stderr containing every `needle`.
pub(crate) fn fails_with(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", show(o));
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{}", show(o));
    }
    assert!(!err.contains("internal error"), "{}", show(o));
}

/// The `.npy` results the CLI wrote into `dir` (`out0.npy`, `out1.npy`, …).
fn read_outputs(dir: &Path) -> Vec<Tensor> {
    (0..)
        .map(|i| dir.join(format!("out{i}.npy")))
        .take_while(|p| p.exists())
        .map(|p| read_npy(&std::fs::read(&p).expect("read npy")).expect("parse npy"))
        .collect()
}

fn f32s(v: &[f64]) -> Tensor {
    let values: Vec<Scalar> = v.iter().map(|&x| Scalar::F(x)).collect();
    Tensor::from_scalars(TensorType::new(DType::F32, vec![v.len()]), &values).expect("tensor")
}

/// The command failed with the usage exit code 2 and a stderr containing `needle`.
fn usage_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", show(o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(needle),
        "{}",
        show(o)
    );
}

/// Writes `source` to `NAME.nxir` and runs `compile --target vulkan -o NAME.tvk`.
fn try_compile_tvk(dir: &Path, name: &str, source: &str) -> Output {
    write(dir, &format!("{name}.nxir"), source);
    tensorc(
        &[
            "compile",
            &format!("{name}.nxir"),
            "--target",
            "vulkan",
            "-o",
            &format!("{name}.tvk"),
        ],
        dir,
    )
}

/// Compiles `source` to `NAME.tvk` through the CLI.
pub(crate) fn compile_tvk(dir: &Path, name: &str, source: &str) -> PathBuf {
    ok(&try_compile_tvk(dir, name, source));
    dir.join(format!("{name}.tvk"))
}

/// `run FILE [--target TARGET] --seed SEED --output-dir OUT` in `dir`, which
/// must succeed.
fn run_into(dir: &Path, file: &str, target: Option<&str>, seed: &str, out: &str) {
    let mut args = vec!["run", file];
    if let Some(t) = target {
        args.extend_from_slice(&["--target", t]);
    }
    args.extend_from_slice(&["--seed", seed, "--output-dir", out]);
    ok(&tensorc(&args, dir));
}

/// Element-wise, a matmul, reductions, a multi-kernel chain and several results.
const PROGRAMS: &[(&str, &str)] = &[
    (
        "elementwise",
        "def main(a: f32[5][7], b: f32[7]) -> f32[5][7] {\n  c = multiply a, b\n  d = add c, a\n  e = tanh d\n  return e\n}\n",
    ),
    (
        "matmul",
        "def main(a: f32[9][16], b: f32[16][5]) -> f32[9][5] {\n  c = dot a, [1], [], b, [0], []\n  return c\n}\n",
    ),
    (
        "reduction",
        "def main(x: s32[6][10]) -> {s32[10], s32} {\n  r = sum x, axes: [0]\n  t = reduce_max x\n  return {r, t}\n}\n",
    ),
    (
        "softmax",
        "def main(x: f32[3][5]) -> f32[3][5] {\n  m = reduce_max x, axes: [1], keep_axes: true\n  d = subtract x, m\n  e = exp d\n  s = sum e, axes: [1], keep_axes: true\n  y = divide e, s\n  return y\n}\n",
    ),
    (
        "results",
        "def helper(x: f32[4]) -> f32[4] {\n  y = negate x\n  return y\n}\n\ndef main(x: f32[4], n: u8[3]) -> {f32[4], u8[3], f32} {\n  a = call helper, x\n  b = add n, n\n  c = sum x\n  return {a, b, c}\n}\n",
    ),
    // Control flow decided on the host (format version 2): a loop whose
    // trip count depends on the data, a cond inside it, a dynamic slice.
    (
        "control",
        "def main(x: s32[4], s: s32) -> {s32, s32[4], s32[2]} {\n  r = while {0, x}, fn(i, v) {\n    m = reduce_max v\n    c = less m, 100\n    return c\n  }, fn(i, v) {\n    j = add i, 1\n    t = sum v\n    p = greater t, 0\n    w = cond p -> fn() {\n      a = add v, 7\n      return a\n    }, true -> fn() {\n      b = abs v\n      return b\n    }\n    return {j, w}\n  }\n  n = elem r, 0\n  y = elem r, 1\n  z = slice y, [s], [2]\n  return {n, y, z}\n}\n",
    ),
];

/// `compile --target vulkan` then `run OUT.tvk` gives the interpreter's
/// results on the same seeded inputs as `run FILE.nxir` (so the artifact's
/// stored signature produces the source's random inputs).
#[test]
fn compiled_artifacts_agree_with_the_interpreter() {
    if !have_driver() {
        return;
    }
    let dir = scratch("tvk-agree");
    for (name, source) in PROGRAMS {
        let tvk = compile_tvk(&dir, name, source);
        let bytes = std::fs::read(&tvk).expect("read tvk");
        assert!(tensorc::is_vulkan_artifact(&bytes), "{name}: no magic");
        for seed in ["0", "11"] {
            let got_dir = format!("{name}-vk-{seed}");
            let want_dir = format!("{name}-interp-{seed}");
            let tvk_name = format!("{name}.tvk");
            let nxir = format!("{name}.nxir");
            run_into(&dir, &tvk_name, None, seed, &got_dir);
            run_into(&dir, &nxir, Some("interp"), seed, &want_dir);
            let got = read_outputs(&dir.join(&got_dir));
            let want = read_outputs(&dir.join(&want_dir));
            assert!(!want.is_empty(), "{name}: the interpreter wrote nothing");
            assert_eq!(got.len(), want.len(), "{name}: result count");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                if let Err(e) = compare(g, w, 1e-5) {
                    panic!("{name} seed {seed} result {i}: {e}");
                }
            }
        }
    }
}

/// Launches beyond what every device allows (more than 65535 workgroups in
/// the second or third dimension, more than 65535 × 128 invocations in the
/// first) run with several rows per invocation: compiled into an artifact
/// (spec-minimum limits), run, and compared with the interpreter.
#[test]
fn big_launches_are_split_in_artifacts() {
    if !have_driver() {
        return;
    }
    let dir = scratch("tvk-big");
    let source = "def rows(x: f32[70000][2], y: f32[2]) -> f32[70000][2] {\n  z = multiply x, y\n  return z\n}\n\ndef cube(x: s32[3][70001][2]) -> s32[3][70001][2] {\n  z = add x, 1\n  return z\n}\n\ndef flat(x: f32[8388737]) -> f32[8388737] {\n  z = negate x\n  return z\n}\n";
    compile_tvk(&dir, "big", source);
    for entry in ["rows", "cube", "flat"] {
        for (file, target, out) in [("big.tvk", None, "vk"), ("big.nxir", Some("interp"), "in")] {
            let mut args = vec!["run", file];
            if let Some(t) = target {
                args.extend_from_slice(&["--target", t]);
            }
            let out = format!("{entry}-{out}");
            args.extend_from_slice(&["--entry", entry, "--seed", "5", "--output-dir", &out]);
            ok(&tensorc(&args, &dir));
        }
        let got = read_outputs(&dir.join(format!("{entry}-vk")));
        let want = read_outputs(&dir.join(format!("{entry}-in")));
        assert_eq!(got.len(), 1, "{entry}");
        assert_eq!(got, want, "{entry}");
    }
}

/// `--input` and `--entry` work on an artifact as on source, and `bench`
/// runs it.
#[test]
fn artifact_inputs_entry_and_bench() {
    if !have_driver() {
        return;
    }
    let dir = scratch("tvk-inputs");
    let (_, source) = PROGRAMS[4];
    compile_tvk(&dir, "r", source);
    let x = f32s(&[1.5, -2.0, 0.25, 8.0]);
    std::fs::write(dir.join("x.npy"), write_npy(&x)).expect("write npy");
    ok(&tensorc(
        &[
            "run",
            "r.tvk",
            "--entry",
            "helper",
            "--input",
            "x=x.npy",
            "--output-dir",
            "h",
        ],
        &dir,
    ));
    let got = read_outputs(&dir.join("h"));
    assert_eq!(got.len(), 1);
    // negate, known without running anything
    assert_eq!(got[0], f32s(&[-1.5, 2.0, -0.25, -8.0]));

    let o = tensorc(&["bench", "r.tvk", "--iters", "2", "--json"], &dir);
    ok(&o);
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", show(&o)));
    assert_eq!(v["iters"], 2, "{}", show(&o));

    // A function that does not exist: the usual usage error.
    let o = tensorc(&["run", "r.tvk", "--entry", "nope"], &dir);
    usage_error(&o, "helper");
}

/// The library loads an artifact with no source and no MLIR compile, and
/// its results equal the interpreter's on the source program; the
/// validation layer (on for this process) reports nothing.
#[test]
fn the_library_loads_an_artifact() {
    if !have_driver() {
        return;
    }
    let dir = scratch("tvk-lib");
    let (_, source) = PROGRAMS[3];
    let tvk = compile_tvk(&dir, "s", source);
    let program = tensorc::load_vulkan_artifact(&tvk).unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(program.target(), tensorc::Target::Vulkan);
    assert_eq!(program.functions(), ["main"]);
    let f = program.entry(None).expect("entry");
    let ty = f.params()[0].1.clone();
    let x = tensorc_ir::random::try_random_tensor(&ty, 5, 0).expect("random input");
    let got = f
        .call(std::slice::from_ref(&x))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let module = tensorc_ir::check::compile(&tensorc::SourceFile::new("s.nxir", source))
        .expect("source checks");
    let want = tensorc_interp::run(&module, "main", &[x]).expect("interp");
    compare(&got[0], &want[0], 1e-5).unwrap_or_else(|e| panic!("{e}"));
    let messages = tensorc::vulkan_validation_messages();
    assert!(messages.is_empty(), "{}", messages.join("\n"));
}

/// `run --target vulkan` on a `.nxir` file through the CLI.
#[test]
fn run_target_vulkan_on_source() {
    if !have_driver() {
        return;
    }
    let dir = scratch("vk-run");
    let (_, source) = PROGRAMS[1];
    write(&dir, "m.nxir", source);
    run_into(&dir, "m.nxir", Some("vulkan"), "3", "vk");
    run_into(&dir, "m.nxir", Some("interp"), "3", "in");
    let (got, want) = (read_outputs(&dir.join("vk")), read_outputs(&dir.join("in")));
    assert_eq!(got.len(), 1);
    compare(&got[0], &want[0], 1e-5).unwrap_or_else(|e| panic!("{e}"));
}

/// Damaged artifacts are refused with a message and exit 1, before any
/// device is touched (so this needs no driver).
#[test]
fn damaged_artifacts_are_refused() {
    let dir = scratch("tvk-damaged");
    let tvk = compile_tvk(&dir, "e", PROGRAMS[0].1);
    let good = std::fs::read(&tvk).expect("read");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "truncated .tvk file",
        ),
        ("header", good[..10].to_vec(), "truncated .tvk file"),
        (
            "flipped",
            {
                let mut b = good.clone();
                let i = b.len() - 40;
                b[i] ^= 0x10;
                b
            },
            "checksum does not match",
        ),
        (
            "newer",
            {
                let mut b = good.clone();
                b[8..12].copy_from_slice(&4u32.to_le_bytes());
                b
            },
            "unsupported .tvk format version 4",
        ),
        (
            "older",
            {
                let mut b = good.clone();
                b[8..12].copy_from_slice(&2u32.to_le_bytes());
                b
            },
            "unsupported .tvk format version 2 (this tensorc reads version 3)",
        ),
    ];
    for (name, bytes, msg) in &cases {
        let file = format!("{name}.tvk");
        std::fs::write(dir.join(&file), bytes).expect("write");
        fails_with(&tensorc(&["run", &file], &dir), &[&file, msg]);
        match tensorc::load_vulkan_artifact(&dir.join(&file)) {
            Ok(_) => panic!("{name}: the library loaded a damaged artifact"),
            Err(e) => assert!(e.render().contains(msg), "{name}: {}", e.render()),
        }
    }
    // Wrong magic: the file is not an artifact, so it is read as source,
    // which it is not.
    let mut b = good.clone();
    b[1] = b'X';
    std::fs::write(dir.join("magic.tvk"), &b).expect("write");
    fails_with(&tensorc(&["run", "magic.tvk"], &dir), &["magic.tvk"]);
    let e = tensorc::load_vulkan_artifact(&dir.join("magic.tvk")).expect_err("wrong magic");
    assert!(e.render().contains("magic bytes"), "{}", e.render());
    // An artifact given to the interpreter.
    fails_with(
        &tensorc(&["run", "e.tvk", "--target", "interp"], &dir),
        &["runs on the Vulkan target only"],
    );
    // The artifact is found by its bytes, not its name.
    std::fs::copy(&tvk, dir.join("renamed.nxir")).expect("copy");
    let o = tensorc_env(
        &["run", "renamed.nxir"],
        &dir,
        &[("VK_DRIVER_FILES", "/nonexistent/icd.json")],
    );
    fails_with(&o, &["no Vulkan driver found"]);
}

/// Without a Vulkan driver, `run` of an artifact and `run --target vulkan`
/// of source say so and exit 1; compiling an artifact needs no driver.
#[test]
fn no_driver_is_a_clear_error() {
    let dir = scratch("vk-nodriver");
    let none = [
        ("VK_DRIVER_FILES", "/nonexistent/icd.json"),
        ("VK_ICD_FILENAMES", "/nonexistent/icd.json"),
    ];
    write(&dir, "m.nxir", PROGRAMS[0].1);
    let o = tensorc_env(
        &["compile", "m.nxir", "--target", "vulkan", "-o", "m.tvk"],
        &dir,
        &none,
    );
    ok(&o);
    for args in [
        &["run", "m.tvk"][..],
        &["bench", "m.tvk"],
        &["run", "m.nxir", "--target", "vulkan"],
    ] {
        fails_with(
            &tensorc_env(args, &dir, &none),
            &["error: no Vulkan driver found"],
        );
    }
}

/// `compile --target vulkan` takes no `--emit`; the CPU target needs one.
#[test]
fn compile_vulkan_arguments() {
    let dir = scratch("tvk-args");
    write(&dir, "m.nxir", PROGRAMS[0].1);
    let o = tensorc(
        &["compile", "m.nxir", "--target", "vulkan", "--emit", "obj"],
        &dir,
    );
    usage_error(&o, "one .tvk artifact");
    usage_error(&tensorc(&["compile", "m.nxir"], &dir), "--emit");
    // Without -o the artifact is the file's stem with .tvk.
    ok(&tensorc(&["compile", "m.nxir", "--target", "vulkan"], &dir));
    let bytes = std::fs::read(dir.join("m.tvk")).expect("m.tvk written");
    assert!(tensorc::is_vulkan_artifact(&bytes));
}

/// `emit --target vulkan --stage spirv` prints the kernels' `spirv.module`s
/// with no device; the CPU-only stages are refused for this target.
#[test]
fn emit_spirv_through_the_cli() {
    let dir = scratch("vk-emit");
    write(&dir, "m.nxir", PROGRAMS[1].1);
    let o = tensorc(
        &["emit", "m.nxir", "--target", "vulkan", "--stage", "spirv"],
        &dir,
    );
    ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("spirv.module"), "{}", show(&o));
    assert!(
        text.contains("spirv.entry_point_abi") || text.contains("spirv.EntryPoint"),
        "{}",
        show(&o)
    );
    fails_with(
        &tensorc(
            &["emit", "m.nxir", "--target", "vulkan", "--stage", "opt"],
            &dir,
        ),
        &["prints the stages nxir, linalg and spirv"],
    );
}

//! The JIT compile cache (issue 4, point 6), through the library
//! (`CompileOptions::cache`) and the `tensorc` binary: a second compilation is
//! a hit that compiles nothing, results agree with the interpreter either
//! way, a changed program or option misses, damaged entries are rebuilt and
//! never run, `--no-cache` leaves the directory alone, and an unusable
//! directory or a missing C compiler only costs the cache.
//!
//! Every test uses its own cache directory (a `Cache::Dir` or
//! `TENSORC_CACHE_DIR`), never the user's.

use crate::cli::{scratch, show, tensorc_bin, write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tensorc::{
    Cache, CacheStatus, CompileOptions, DType, Program, Scalar, Target, Tensor, TensorType,
};

/// Two functions, a tuple result and three dtypes. Integer arithmetic and a
/// single float add are exact, so the CPU must match the interpreter bit for bit.
const PROGRAM: &str = "\
def scale(x: s32[3][4], k: s32) -> s32[3][4] {
  y = multiply x, k
  return y
}

def main(a: s32[3][4], b: s32[4][2], c: f32[5]) -> {s32[3][2], f32[5], s64[3]} {
  d = dot a, [1], [], b, [0], []
  e = add c, 1.5
  s0 = sum a, axes: [1]
  s = as_type s0 s64[3]
  return {d, e, s}
}
";

fn cached(dir: &Path) -> CompileOptions {
    CompileOptions {
        target: Target::Cpu,
        cache: Cache::Dir(dir.to_owned()),
        ..CompileOptions::default()
    }
}

fn compile(source: &str, opts: &CompileOptions) -> Program {
    tensorc::compile_str("cached.nxir", source, opts).expect("compiles")
}

/// Runs every function of `p` on seeded inputs and requires the interpreter's
/// results, byte for byte.
fn assert_agrees_with_interpreter(p: &Program) {
    for f in &p.module().functions {
        let func = p.entry(Some(&f.name)).unwrap();
        let types: Vec<_> = func.params().iter().map(|(_, t)| t.clone()).collect();
        for (label, inputs) in crate::harness::seeded_inputs(&types, &[1, 2]) {
            let got = func.call(&inputs).unwrap();
            let want = tensorc_interp::run(p.module(), &f.name, &inputs).unwrap();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.ty(), w.ty(), "{} ({label})", f.name);
                assert_eq!(g.bytes(), w.bytes(), "{} ({label})", f.name);
            }
        }
    }
}

fn stored_entry(p: &Program) -> PathBuf {
    match p.cache_status() {
        CacheStatus::Stored { entry, .. } => entry.clone(),
        other => panic!("expected a freshly stored entry, got {other:?}"),
    }
}

/// Why the cache could not be used for `p`, which must have compiled without it.
fn unavailable_reason(p: &Program) -> &str {
    match p.cache_status() {
        CacheStatus::Unavailable { reason } => reason,
        other => panic!("expected the cache to be unavailable, got {other:?}"),
    }
}

/// The names in the `jit-v1` folder of the cache directory `cache`.
fn entry_names(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache.join("jit-v1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn second_compile_is_a_hit_and_both_agree_with_the_interpreter() {
    let dir = scratch("cache-hit");
    let first = compile(PROGRAM, &cached(&dir));
    let entry = stored_entry(&first);
    assert!(entry.starts_with(&dir), "{}", entry.display());
    assert!(entry.join("code.so").is_file() && entry.join("manifest").is_file());
    assert_agrees_with_interpreter(&first);
    let miss_time = first.compile_time();
    drop(first);

    let second = compile(PROGRAM, &cached(&dir));
    assert_eq!(
        second.cache_status(),
        &CacheStatus::Hit {
            entry: entry.clone()
        }
    );
    // A hit runs no MLIR or LLVM: parsing, checking and loading only.
    assert!(
        second.compile_time() < miss_time,
        "hit {:?} vs miss {miss_time:?}",
        second.compile_time()
    );
    assert_agrees_with_interpreter(&second);

    // call_into on cached code writes into the caller's buffers.
    let f = second.entry(Some("scale")).unwrap();
    let s32 = |shape: Vec<usize>, v: Vec<i64>| {
        let values: Vec<Scalar> = v.into_iter().map(Scalar::I).collect();
        Tensor::from_scalars(TensorType::new(DType::S32, shape), &values).unwrap()
    };
    let x = s32(vec![3, 4], (0..12).collect());
    let k = s32(vec![], vec![-3]);
    let mut out = f.call(&[x.clone(), k.clone()]).unwrap();
    out[0].bytes_mut().fill(0);
    f.call_into(&[&x, &k], &mut out).unwrap();
    let want = tensorc_interp::run(second.module(), "scale", &[x, k]).unwrap();
    assert_eq!(out[0].bytes(), want[0].bytes());
}

#[test]
fn the_library_default_is_no_cache() {
    let p = compile(PROGRAM, &CompileOptions::default());
    assert_eq!(p.cache_status(), &CacheStatus::Off);
}

#[test]
fn changed_source_misses() {
    let dir = scratch("cache-miss");
    let a = stored_entry(&compile(PROGRAM, &cached(&dir)));
    // Another constant: another program.
    let changed = PROGRAM.replace("1.5", "2.5");
    let b = stored_entry(&compile(&changed, &cached(&dir)));
    assert_ne!(a, b);
    // Another file name: the name is in the code's source locations.
    let p = tensorc::compile_str("renamed.nxir", PROGRAM, &cached(&dir)).unwrap();
    let c = stored_entry(&p);
    assert!(c != a && c != b);
    // Each is a hit now, and the changed program computes its own result.
    let p = compile(&changed, &cached(&dir));
    assert_eq!(p.cache_status(), &CacheStatus::Hit { entry: b });
    assert_agrees_with_interpreter(&p);
    let p = compile(PROGRAM, &cached(&dir));
    assert_eq!(p.cache_status(), &CacheStatus::Hit { entry: a });
}

/// Ways an entry can be damaged; each must be detected, discarded and rebuilt.
fn damage(entry: &Path, how: &str) {
    let lib = entry.join("code.so");
    let manifest = entry.join("manifest");
    match how {
        "truncated library" => {
            let bytes = std::fs::read(&lib).unwrap();
            std::fs::write(&lib, &bytes[..bytes.len() / 2]).unwrap();
        }
        "flipped byte" => {
            let mut bytes = std::fs::read(&lib).unwrap();
            let at = bytes.len() / 3;
            bytes[at] ^= 0x40;
            std::fs::write(&lib, bytes).unwrap();
        }
        "appended bytes" => {
            let mut bytes = std::fs::read(&lib).unwrap();
            bytes.extend_from_slice(b"junk");
            std::fs::write(&lib, bytes).unwrap();
        }
        "empty library" => std::fs::write(&lib, b"").unwrap(),
        "missing library" => std::fs::remove_file(&lib).unwrap(),
        "garbage manifest" => std::fs::write(&manifest, b"\x7fELF\0\0garbage\n").unwrap(),
        "missing manifest" => std::fs::remove_file(&manifest).unwrap(),
        "manifest with another key" => {
            let text = std::fs::read_to_string(&manifest).unwrap();
            let key = entry.file_name().unwrap().to_str().unwrap();
            std::fs::write(&manifest, text.replace(key, &"0".repeat(64))).unwrap();
        }
        "entry is a file" => {
            std::fs::remove_dir_all(entry).unwrap();
            std::fs::write(entry, b"not a directory").unwrap();
        }
        _ => unreachable!("{how}"),
    }
}

#[test]
fn damaged_entries_are_detected_rebuilt_and_never_run() {
    let dir = scratch("cache-damage");
    let entry = stored_entry(&compile(PROGRAM, &cached(&dir)));
    for how in [
        "truncated library",
        "flipped byte",
        "appended bytes",
        "empty library",
        "missing library",
        "garbage manifest",
        "missing manifest",
        "manifest with another key",
        "entry is a file",
    ] {
        // No program holds the library while it is damaged (dropped above
        // and at the end of each round).
        damage(&entry, how);
        let p = compile(PROGRAM, &cached(&dir));
        match p.cache_status() {
            CacheStatus::Stored {
                entry: e,
                discarded: Some(why),
            } => {
                assert_eq!(e, &entry, "{how}");
                assert!(!why.is_empty(), "{how}");
            }
            other => panic!("{how}: expected a rebuilt entry, got {other:?}"),
        }
        assert_agrees_with_interpreter(&p);
        drop(p);
        let again = compile(PROGRAM, &cached(&dir));
        assert_eq!(
            again.cache_status(),
            &CacheStatus::Hit {
                entry: entry.clone()
            },
            "{how}: the rebuilt entry is used"
        );
    }
    // Nothing is left behind but the one entry.
    let names = entry_names(&dir);
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn the_reason_for_discarding_names_the_damage() {
    let dir = scratch("cache-reason");
    let entry = stored_entry(&compile(PROGRAM, &cached(&dir)));
    for (how, says) in [
        ("truncated library", "bytes, the manifest says"),
        ("flipped byte", "SHA-256 differs"),
        ("garbage manifest", "not a tensorc cache manifest"),
        ("manifest with another key", "another key"),
    ] {
        damage(&entry, how);
        let p = compile(PROGRAM, &cached(&dir));
        let CacheStatus::Stored {
            discarded: Some(why),
            ..
        } = p.cache_status()
        else {
            panic!("{how}: {:?}", p.cache_status());
        };
        assert!(why.contains(says), "{how}: {why}");
    }
}

#[test]
fn an_unusable_cache_directory_still_compiles() {
    let dir = scratch("cache-unusable");
    let file = write(&dir, "plain-file", "not a directory");
    let p = compile(PROGRAM, &cached(&file.join("cache")));
    let reason = unavailable_reason(&p);
    assert!(
        reason.contains("cannot create the cache directory"),
        "{reason}"
    );
    assert_agrees_with_interpreter(&p);
}

// ---------------------------------------------------------------------------
// The `tensorc` binary.

/// `tensorc ARGS` in `cwd` with the cache environment chosen by the test:
/// each (name, Some(value)) is set, each (name, None) removed.
fn tensorc_env(args: &[&str], cwd: &Path, env: &[(&str, Option<&Path>)]) -> Output {
    let mut cmd = Command::new(tensorc_bin());
    cmd.args(args).current_dir(cwd);
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd.output().expect("run tensorc")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The interpreter's output for the run, which every CPU run must print.
fn interp_stdout(dir: &Path, file: &str) -> String {
    ok(&tensorc_env(
        &["run", file, "--target", "interp", "--seed", "3"],
        dir,
        &[],
    ))
}

fn run_cached(dir: &Path, file: &str, cache: &Path) -> Output {
    tensorc_env(
        &["run", file, "--seed", "3"],
        dir,
        &[("TENSORC_CACHE_DIR", Some(cache))],
    )
}

/// `run_cached` of `m.nxir` with `$CC` set to `cc`.
fn run_cached_with_cc(dir: &Path, cache: &Path, cc: &Path) -> Output {
    tensorc_env(
        &["run", "m.nxir", "--seed", "3"],
        dir,
        &[("TENSORC_CACHE_DIR", Some(cache)), ("CC", Some(cc))],
    )
}

/// A scratch directory named `name` holding `PROGRAM` as `m.nxir`, and the
/// interpreter's output for it.
fn cli_scratch(name: &str) -> (PathBuf, String) {
    let dir = scratch(name);
    write(&dir, "m.nxir", PROGRAM);
    let want = interp_stdout(&dir, "m.nxir");
    (dir, want)
}

/// Another cached run of `m.nxir` finds its entry and prints `want`.
fn assert_cli_hit(dir: &Path, cache: &Path, want: &str) {
    let o = run_cached(dir, "m.nxir", cache);
    assert_eq!(ok(&o), want);
    assert!(stderr(&o).contains("compile skipped"), "{}", show(&o));
}

/// The one entry in the cache directory `cache`.
fn only_entry(cache: &Path) -> PathBuf {
    std::fs::read_dir(cache.join("jit-v1"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// Nothing (not even a half-built entry) is in the cache directory `cache`.
fn assert_no_entries(cache: &Path) {
    let left: Vec<_> = std::fs::read_dir(cache.join("jit-v1")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn cli_second_run_says_compile_skipped() {
    let (dir, want) = cli_scratch("cache-cli");
    let cache = dir.join("cache");

    let first = run_cached(&dir, "m.nxir", &cache);
    assert_eq!(ok(&first), want);
    let err = stderr(&first);
    assert!(
        err.starts_with("tensorc: compiled m.nxir (cached at ") && err.contains("jit-v1"),
        "{}",
        show(&first)
    );

    let second = run_cached(&dir, "m.nxir", &cache);
    assert_eq!(ok(&second), want);
    assert_eq!(
        stderr(&second),
        "tensorc: using cached code for m.nxir (compile skipped)\n"
    );
}

#[test]
fn cli_changed_options_miss() {
    let (dir, want) = cli_scratch("cache-cli-options");
    let cache = dir.join("cache");
    // `$CC` builds part of the cached code, so it is part of the key; `cc`
    // and the same compiler named by its full path are two options.
    let cc = Path::new("cc");
    let with_cc = |cc: &Path| run_cached_with_cc(&dir, &cache, cc);
    let o = with_cc(cc);
    assert_eq!(ok(&o), want);
    assert!(stderr(&o).contains("(cached at "), "{}", show(&o));
    let full = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v cc"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let o = with_cc(Path::new(full.trim()));
    assert_eq!(ok(&o), want);
    assert!(stderr(&o).contains("(cached at "), "{}", show(&o));
    let o = with_cc(cc);
    assert!(stderr(&o).contains("compile skipped"), "{}", show(&o));
    // Another seed is another input, not another program: still a hit.
    let o = tensorc_env(
        &["run", "m.nxir", "--seed", "4"],
        &dir,
        &[("TENSORC_CACHE_DIR", Some(&cache)), ("CC", Some(cc))],
    );
    assert!(stderr(&o).contains("compile skipped"), "{}", show(&o));
    assert_ne!(ok(&o), want);
}

#[test]
fn cli_bench_json_reports_cached() {
    let dir = scratch("cache-bench");
    write(&dir, "m.nxir", PROGRAM);
    let cache = dir.join("cache");
    let bench = || {
        let o = tensorc_env(
            &["bench", "m.nxir", "--json", "--iters", "1", "--warmup", "1"],
            &dir,
            &[("TENSORC_CACHE_DIR", Some(&cache))],
        );
        serde_json::from_str::<serde_json::Value>(&ok(&o)).expect("one JSON object")
    };
    let first = bench();
    let second = bench();
    assert_eq!(first["cached"], false, "{first}");
    assert_eq!(second["cached"], true, "{second}");
    let ms = |v: &serde_json::Value| v["compile_ms"].as_f64().unwrap();
    assert!(ms(&second) < ms(&first), "{first} then {second}");
}

/// Every file under `dir` with its bytes, sorted: a snapshot of the directory.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn cli_no_cache_neither_reads_nor_writes() {
    let (dir, want) = cli_scratch("cache-none");

    // An absent directory stays absent.
    let absent = dir.join("absent");
    let o = tensorc_env(
        &["run", "m.nxir", "--seed", "3", "--no-cache"],
        &dir,
        &[("TENSORC_CACHE_DIR", Some(&absent))],
    );
    assert_eq!(ok(&o), want);
    assert!(stderr(&o).is_empty(), "{}", show(&o));
    assert!(!absent.exists());

    // A damaged entry is neither used, repaired nor removed.
    let cache = dir.join("cache");
    ok(&run_cached(&dir, "m.nxir", &cache));
    let entry = only_entry(&cache);
    damage(&entry, "flipped byte");
    let before = tree(&cache);
    for args in [
        &["run", "m.nxir", "--seed", "3", "--no-cache"][..],
        &["bench", "m.nxir", "--iters", "1", "--no-cache", "--json"][..],
    ] {
        let o = tensorc_env(args, &dir, &[("TENSORC_CACHE_DIR", Some(&cache))]);
        let out = ok(&o);
        if args[0] == "run" {
            assert_eq!(out, want);
        } else {
            assert!(out.contains("\"cached\":false"), "{out}");
        }
        assert!(stderr(&o).is_empty(), "{}", show(&o));
        assert_eq!(tree(&cache), before, "{args:?} touched the cache");
    }
}

#[test]
fn cli_damaged_entry_is_rebuilt() {
    let (dir, want) = cli_scratch("cache-cli-damage");
    let cache = dir.join("cache");
    ok(&run_cached(&dir, "m.nxir", &cache));
    let entry = only_entry(&cache);
    for how in ["truncated library", "flipped byte", "garbage manifest"] {
        damage(&entry, how);
        let o = run_cached(&dir, "m.nxir", &cache);
        assert_eq!(ok(&o), want, "{how}");
        let err = stderr(&o);
        assert!(
            err.starts_with("tensorc: discarded a damaged cache entry (")
                && err.contains("compiled m.nxir (cached at "),
            "{how}: {}",
            show(&o)
        );
        assert_cli_hit(&dir, &cache, &want);
    }
}

#[test]
fn cli_without_a_usable_cache_still_runs() {
    let (dir, want) = cli_scratch("cache-cli-unusable");
    // The cache directory would be inside a regular file.
    let file = write(&dir, "plain-file", "x");
    let o = run_cached(&dir, "m.nxir", &file.join("cache"));
    assert_eq!(ok(&o), want);
    assert!(
        stderr(&o).starts_with(
            "tensorc: compiled m.nxir without the cache (cannot create the cache directory"
        ),
        "{}",
        show(&o)
    );
    // No C compiler: the artifact cannot be built, the JIT runs instead.
    let cache = dir.join("cache");
    let missing = dir.join("no-such-cc");
    let o = run_cached_with_cc(&dir, &cache, &missing);
    assert_eq!(ok(&o), want);
    let err = stderr(&o);
    assert!(
        err.starts_with("tensorc: compiled m.nxir without the cache (building the cached library failed: cannot run"),
        "{}",
        show(&o)
    );
    // Nothing half-built is left in the cache.
    assert_no_entries(&cache);
}

#[test]
fn cli_cache_directory_follows_xdg_then_home() {
    let dir = scratch("cache-cli-dirs");
    write(&dir, "m.nxir", PROGRAM);
    let xdg = dir.join("xdg");
    let o = tensorc_env(
        &["run", "m.nxir"],
        &dir,
        &[("TENSORC_CACHE_DIR", None), ("XDG_CACHE_HOME", Some(&xdg))],
    );
    ok(&o);
    assert!(
        stderr(&o).contains(&format!("{}", xdg.join("tensorc").join("jit-v1").display())),
        "{}",
        show(&o)
    );
    let home = dir.join("home");
    let o = tensorc_env(
        &["run", "m.nxir"],
        &dir,
        &[
            ("TENSORC_CACHE_DIR", None),
            ("XDG_CACHE_HOME", None),
            ("HOME", Some(&home)),
        ],
    );
    ok(&o);
    let expected = home.join(".cache").join("tensorc").join("jit-v1");
    assert!(
        stderr(&o).contains(&format!("{}", expected.display())),
        "{}",
        show(&o)
    );
    assert!(expected.is_dir());
}

#[test]
fn cli_concurrent_runs_share_one_entry() {
    let (dir, want) = cli_scratch("cache-cli-race");
    let cache = dir.join("cache");
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(tensorc_bin())
                .args(["run", "m.nxir", "--seed", "3"])
                .current_dir(&dir)
                .env("TENSORC_CACHE_DIR", &cache)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn tensorc")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(ok(&o), want);
        let err = stderr(&o);
        // Each run either built the entry or found it complete; none fell back.
        assert!(
            err.contains("(cached at ") || err.contains("compile skipped"),
            "{}",
            show(&o)
        );
    }
    let entries = entry_names(&cache);
    assert_eq!(entries.len(), 1, "one entry, no staging left: {entries:?}");
    assert_cli_hit(&dir, &cache, &want);
}

#[test]
fn cli_without_any_cache_directory_variable_still_runs() {
    let (dir, want) = cli_scratch("cache-cli-noenv");
    let o = tensorc_env(
        &["run", "m.nxir", "--seed", "3"],
        &dir,
        &[
            ("TENSORC_CACHE_DIR", None),
            ("XDG_CACHE_HOME", None),
            ("HOME", None),
        ],
    );
    assert_eq!(ok(&o), want);
    assert_eq!(
        stderr(&o),
        "tensorc: compiled m.nxir without the cache (no cache directory: none of \
         TENSORC_CACHE_DIR, XDG_CACHE_HOME and HOME is set)\n"
    );
}

#[test]
fn cli_failed_link_of_the_cached_library_still_runs() {
    let (dir, want) = cli_scratch("cache-cli-link");
    // A C compiler that compiles but cannot link shared libraries.
    let cc = write(
        &dir,
        "cc-without-shared",
        "#!/bin/sh\ncase \"$*\" in *-shared*) echo 'no shared libraries here' >&2; exit 1;; esac\nexec cc \"$@\"\n",
    );
    let chmod = Command::new("chmod").arg("+x").arg(&cc).status().unwrap();
    assert!(chmod.success());
    let cache = dir.join("cache");
    let o = run_cached_with_cc(&dir, &cache, &cc);
    assert_eq!(ok(&o), want);
    let err = stderr(&o);
    assert!(
        err.starts_with(
            "tensorc: compiled m.nxir without the cache (linking the cached library failed: "
        ) && err.contains("failed (exit status: 1)"),
        "{}",
        show(&o)
    );
    assert_no_entries(&cache);
}

/// An entry whose manifest matches its library, but whose library cannot be
/// loaded (here: not ELF at all, as a file system mounted `noexec` would make
/// a real one), is kept, and the program is compiled in process.
#[test]
fn a_sound_entry_that_cannot_be_loaded_is_kept() {
    let dir = scratch("cache-unloadable");
    let entry = stored_entry(&compile(PROGRAM, &cached(&dir)));
    let lib = entry.join("code.so");
    let manifest = entry.join("manifest");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let fake = b"this is not an ELF shared library\n";
    std::fs::write(&lib, fake).unwrap();
    let sum = Command::new("sha256sum").arg(&lib).output().unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap();
    let sum = sum.split_whitespace().next().unwrap().to_owned();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("size ") {
                format!("size {}\n", fake.len())
            } else if l.starts_with("sha256 ") {
                format!("sha256 {sum}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&manifest, &text).unwrap();

    let p = compile(PROGRAM, &cached(&dir));
    let reason = unavailable_reason(&p);
    assert!(reason.starts_with("cannot load its library"), "{reason}");
    assert_agrees_with_interpreter(&p);
    // Kept as it was.
    assert_eq!(std::fs::read(&lib).unwrap(), fake);
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);
}

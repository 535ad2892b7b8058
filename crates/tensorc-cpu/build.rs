//! Builds tensorc's C runtime, the one implementation of what generated code
//! calls (`memrefCopy`, the workspace allocator, ...), for both back ends.
//!
//! Every `runtime/*.c` file is compiled into this crate (the JIT registers
//! the functions with each engine, `runtime.rs`), and the same files are
//! listed, with their text, in `$OUT_DIR/runtime_sources.rs`, which `aot.rs`
//! includes to compile them into every artifact. Adding a runtime file is
//! thus a matter of dropping it into `runtime/`: nothing else lists them.
//!
//! The same files are also compiled once more, as artifacts want them
//! (`-O2 -fPIC`, no debug information, without the JIT's test counters),
//! one object each, listed with their bytes in
//! `$OUT_DIR/runtime_objects.rs`: a host artifact links those instead of
//! compiling the runtime again on every `tensorc compile` (three C
//! compilations, about a third of an artifact's build time).

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("runtime");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("crates/tensorc-cpu/runtime exists")
        .map(|e| e.expect("readable runtime dir").path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    // Sorted so that artifacts are built the same way on every machine.
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let sources: Vec<(String, PathBuf)> = files
        .iter()
        .map(|f| (f.file_name().expect("a file").to_string_lossy().into_owned(), f.clone()))
        .collect();
    write_list(&out.join("runtime_sources.rs"), "include_str", &sources);
    // Both builds at -O2 with the same warnings: the runtime is on every
    // call's path (copies, allocations), so the JIT gets optimized code even
    // in debug builds, and artifacts the code they always had.
    let optimized = || {
        let mut b = cc::Build::new();
        b.opt_level(2).warnings(true).flag_if_supported("-Wextra");
        b
    };
    let artifact_dir = out.join("artifact-runtime");
    let objects: Vec<(String, PathBuf)> = files
        .iter()
        .map(|f| {
            let compiled = optimized()
                .file(f)
                .pic(true)
                .debug(false)
                .cargo_metadata(false)
                .out_dir(&artifact_dir)
                .compile_intermediates();
            let [object] = compiled.as_slice() else {
                panic!("one object for {}, got {compiled:?}", f.display());
            };
            let name = f.with_extension("o");
            let name = name.file_name().expect("a file").to_string_lossy().into_owned();
            (name, object.clone())
        })
        .collect();
    write_list(&out.join("runtime_objects.rs"), "include_bytes", &objects);
    optimized()
        .files(&files)
        // Per-thread counters of the workspace allocator, read by tests
        // (`runtime::workspace_stats`); artifacts are built without them.
        .define("TENSORC_RT_STATS", None)
        .compile("tensorc_rt");
}

/// Writes `path` as a Rust slice expression of `(name, include!(file))`
/// pairs, `include` being `include_str` or `include_bytes`.
fn write_list(path: &std::path::Path, include: &str, entries: &[(String, PathBuf)]) {
    let mut list = String::from("&[\n");
    for (name, file) in entries {
        writeln!(list, "    ({name:?}, {include}!({:?})),", file.display().to_string())
            .expect("write to String");
    }
    list.push(']');
    std::fs::write(path, list).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

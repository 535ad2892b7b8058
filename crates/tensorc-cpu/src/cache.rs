//! The compile cache of the JIT path (issue 4, point 6): running the same
//! program twice compiles it once.
//!
//! MLIR's `ExecutionEngine` cannot save its code, but the artifact builder
//! (`aot::build`) already turns the same pipeline's output into a native
//! object whose `tensorc_<name>` entry points need only libc and libm. On a
//! miss the cache builds that object for this machine (`--cpu native`), links
//! it with one small generated entry per function (`void f(void **data)`, so
//! Rust can call a function of any arity through one pointer type) into a
//! shared library, and publishes it; on a hit it loads the library with
//! `dlopen` and MLIR and LLVM never run.
//!
//! An entry is the directory `DIR/jit-v1/<key>/` holding `code.so` and a
//! `manifest` (the key, the library's byte length and SHA-256, the function
//! names). The key is a SHA-256 of everything the code depends on: the
//! frontend's MLIR text (the program, including its file name), both pass
//! pipelines, the C runtime, the tensorc version and the identity of the
//! running executable (path, size, modification time: a rebuilt compiler never
//! reuses old code), the host triple, CPU name and features, `$CC`, and any
//! option the caller passes as `extra`. Entries are built in a private
//! temporary directory and published with one `rename`, so concurrent runs
//! never see half an entry; a loser of that race uses its own copy. Every load
//! checks the manifest and the library's length and hash before `dlopen`: a
//! truncated, altered or foreign entry is discarded and rebuilt, never run.
//! Whenever the cache cannot help (no directory, an unwritable one, no C
//! compiler or linker), code is compiled in process as before.

use crate::aot::{self, AotOptions, ArtifactKind};
use crate::jit::{Code, Entry};
use crate::{CpuError, CpuModule, Pipelines};
use sha2::{Digest, Sha256};
use std::ffi::c_void;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tensorc_ir::Module;

/// The environment variable that names the cache directory.
pub const CACHE_DIR_ENV: &str = "TENSORC_CACHE_DIR";

/// The folder under the cache directory; a new layout gets a new name, so
/// tensorc versions with different layouts never read each other's entries.
const LAYOUT: &str = "jit-v1";
/// First line of every manifest.
const FORMAT: &str = "tensorc-jit-cache 1";
const LIBRARY: &str = "code.so";
const MANIFEST: &str = "manifest";
/// A manifest is a few lines per function; anything much larger is garbage.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Temporary and discarded entries older than this belong to runs that died.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Whether and where compiled code is cached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cache {
    /// Compile in process every time; no file is read or written.
    #[default]
    Off,
    /// The user's cache directory (`user_cache_dir`).
    UserDir,
    /// This directory.
    Dir(PathBuf),
}

/// What the cache did for one compilation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// The cache was not asked for.
    Off,
    /// The code was loaded from this entry: nothing was compiled.
    Hit { entry: PathBuf },
    /// The code was compiled and stored in this entry. `discarded` says why
    /// an entry that was there before was thrown away (it failed verification).
    Stored {
        entry: PathBuf,
        discarded: Option<String>,
    },
    /// The cache could not be used for this reason; the code was compiled in process.
    Unavailable { reason: String },
}

/// The cache directory: `$TENSORC_CACHE_DIR` if set, else
/// `$XDG_CACHE_HOME/tensorc` (when absolute, as the XDG spec requires), else
/// `$HOME/.cache/tensorc`; `None` when none of them is set.
pub fn user_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var(CACHE_DIR_ENV) {
        return Some(dir);
    }
    if let Some(xdg) = var("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Some(xdg.join("tensorc"));
    }
    var("HOME").map(|home| home.join(".cache").join("tensorc"))
}

/// Compiles `mlir_text` (the frontend's output for `module`) like
/// `CpuModule::compile`, through the cache when `cache` asks for it. `extra`
/// is folded into the key: options of the caller that change the code.
/// Errors are those of in-process compilation; a cache that cannot be used
/// is reported in the status, not as an error.
pub fn compile(
    module: &Module,
    mlir_text: &str,
    pipelines: &Pipelines,
    cache: &Cache,
    extra: &str,
) -> Result<(CpuModule, CacheStatus), CpuError> {
    let dir = match cache {
        Cache::Off => {
            return Ok((
                CpuModule::compile(module, mlir_text, pipelines)?,
                CacheStatus::Off,
            ));
        }
        Cache::UserDir => user_cache_dir(),
        Cache::Dir(dir) => Some(dir.clone()),
    };
    let outcome = match dir {
        None => Err(format!(
            "no cache directory: none of {CACHE_DIR_ENV}, XDG_CACHE_HOME and HOME is set"
        )),
        Some(dir) => {
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            through_cache(&dir, module, mlir_text, pipelines, extra)
        }
    };
    match outcome {
        Ok(done) => Ok(done),
        Err(reason) => Ok((
            CpuModule::compile(module, mlir_text, pipelines)?,
            CacheStatus::Unavailable { reason },
        )),
    }
}

/// Loads the entry for this key or builds and publishes it. `Err` is the
/// reason the cache cannot help (the caller compiles in process).
fn through_cache(
    dir: &Path,
    module: &Module,
    mlir_text: &str,
    pipelines: &Pipelines,
    extra: &str,
) -> Result<(CpuModule, CacheStatus), String> {
    let key = key(mlir_text, pipelines, extra)?;
    let root = dir.join(LAYOUT);
    let entry = root.join(&key);
    let mut discarded = None;
    if entry.symlink_metadata().is_ok() {
        match load(&entry, &key, module) {
            Ok(m) => return Ok((m, CacheStatus::Hit { entry })),
            Err(LoadError::Damaged(why)) => {
                discard(&root, &entry);
                discarded = Some(why);
            }
            // A sound entry this process cannot load (say, a file system
            // mounted `noexec`) stays; rebuilding it would not help.
            Err(LoadError::Environment(why)) => return Err(why),
        }
    }
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("cannot create the cache directory {}: {e}", root.display()))?;
    sweep(&root);
    let staging = Staging::new(&root, &key)?;
    build(&staging.0, &key, module, mlir_text, pipelines)?;
    // Fails when another run published the same key first: its entry is as
    // good as ours, and this run uses its own copy.
    let published = std::fs::rename(&staging.0, &entry).is_ok();
    let from = if published { &entry } else { &staging.0 };
    let m = load(from, &key, module).map_err(|e| {
        let (LoadError::Damaged(why) | LoadError::Environment(why)) = e;
        format!("the library just built does not load: {why}")
    })?;
    Ok((m, CacheStatus::Stored { entry, discarded }))
}

/// The entry's key: SHA-256 (hex) of every input the generated code depends on.
fn key(mlir_text: &str, pipelines: &Pipelines, extra: &str) -> Result<String, String> {
    let mut h = Sha256::new();
    // Length-prefixed fields, so no two different inputs hash the same text.
    let mut field = |name: &str, value: &[u8]| {
        h.update(name.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    field("format", FORMAT.as_bytes());
    field("version", env!("CARGO_PKG_VERSION").as_bytes());
    field("compiler", compiler_identity()?.as_bytes());
    field("triple", aot::host_triple().as_bytes());
    let (cpu, features) = aot::host_cpu();
    field("cpu", cpu.as_bytes());
    field("features", features.as_bytes());
    field("cc", aot::c_compiler().as_bytes());
    for (name, text) in aot::RUNTIME_C {
        field(name, text.as_bytes());
    }
    field("opt", pipelines.opt.as_bytes());
    field("lowering", pipelines.lowering.as_bytes());
    field("avx512", pipelines.avx512.as_bytes());
    field("narrow", pipelines.narrow.as_bytes());
    field("extra", extra.as_bytes());
    field("mlir", mlir_text.as_bytes());
    Ok(hex(&h.finalize()))
}

/// The running executable's path, size and modification time: tensorc (or
/// the program tensorc is linked into) rebuilt means new keys. The file is
/// read through `/proc/self/exe` where it exists, which still reaches the
/// running binary after a rebuild replaced the file at its path.
fn compiler_identity() -> Result<String, String> {
    let unknown = |e: std::io::Error| format!("cannot identify the running compiler: {e}");
    let exe = std::env::current_exe().map_err(unknown)?;
    let meta = std::fs::metadata("/proc/self/exe")
        .or_else(|_| std::fs::metadata(&exe))
        .map_err(unknown)?;
    let modified = meta
        .modified()
        .map_err(unknown)?
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("{}\n{}\n{modified}", exe.display(), meta.len()))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The exported name of function `index`'s entry in a cached library. No
/// `.nxir` name can produce it: the artifact's own globals all start with
/// `tensorc_`.
fn entry_symbol(index: usize) -> String {
    format!("tensorccache_entry_{index}")
}

/// One `void tensorccache_entry_<i>(void **data)` per function, forwarding
/// the data pointers (inputs, then results) to `tensorc_<name>`, whose
/// prototype comes from the artifact header.
fn entry_points_c(module: &Module) -> String {
    let mut c = aot::header(module, "the JIT compile cache", "tensorc_cache");
    for (i, f) in module.functions.iter().enumerate() {
        let count = f.params.len() + f.flat_results().len();
        let args: Vec<String> = (0..count).map(|j| format!("data[{j}]")).collect();
        let _ = writeln!(
            c,
            "\nvoid {}(void **data) {{\n  (void)data;\n  tensorc_{}({});\n}}",
            entry_symbol(i),
            f.name,
            args.join(", ")
        );
    }
    c
}

/// Builds the library and its manifest into `dir`.
fn build(
    dir: &Path,
    key: &str,
    module: &Module,
    mlir_text: &str,
    pipelines: &Pipelines,
) -> Result<(), String> {
    let object = dir.join("code.o");
    let opts = AotOptions {
        triple: None,
        cpu: Some("native".into()),
    };
    let target = aot::resolve_target(&opts).map_err(|e| format!("building the cached library failed: {e}"))?;
    aot::build(
        module,
        "the JIT compile cache",
        mlir_text,
        pipelines,
        &target,
        &[(ArtifactKind::Object, object.clone())],
    )
    .map_err(|e| format!("building the cached library failed: {e}"))?;
    let entry_c = dir.join("entry.c");
    write(&entry_c, entry_points_c(module).as_bytes())?;
    let library = dir.join(LIBRARY);
    aot::run(
        &aot::c_compiler(),
        &[
            "-shared".as_ref(),
            "-O2".as_ref(),
            "-fPIC".as_ref(),
            "-o".as_ref(),
            library.as_os_str(),
            object.as_os_str(),
            entry_c.as_os_str(),
            "-lm".as_ref(),
        ],
    )
    .map_err(|e| format!("linking the cached library failed: {e}"))?;
    let _ = std::fs::remove_file(&object);
    let _ = std::fs::remove_file(&entry_c);
    let bytes =
        std::fs::read(&library).map_err(|e| format!("cannot read {}: {e}", library.display()))?;
    let manifest = Manifest {
        key: key.to_owned(),
        size: bytes.len() as u64,
        sha256: hex(&Sha256::digest(&bytes)),
        functions: module.functions.iter().map(|f| f.name.clone()).collect(),
    };
    write(&dir.join(MANIFEST), manifest.render().as_bytes())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Why an entry was not used.
enum LoadError {
    /// The entry is not what its key says (damaged, foreign, incomplete):
    /// discard it and build it again.
    Damaged(String),
    /// The entry checked out, but this process could not load it.
    Environment(String),
}

/// Verifies the entry in `dir` against `key` and `module`, then loads it.
fn load(dir: &Path, key: &str, module: &Module) -> Result<CpuModule, LoadError> {
    let bytes = verify(dir, key, module).map_err(LoadError::Damaged)?;
    open(dir.parent().unwrap_or(dir), &bytes, module)
}

/// The entry's library, if the entry is exactly what `key` and `module`
/// call for; else what is wrong with it.
fn verify(dir: &Path, key: &str, module: &Module) -> Result<Vec<u8>, String> {
    let manifest_path = dir.join(MANIFEST);
    let mut text = String::new();
    std::fs::File::open(&manifest_path)
        .and_then(|f| f.take(MAX_MANIFEST_BYTES).read_to_string(&mut text))
        .map_err(|e| format!("cannot read its manifest: {e}"))?;
    let manifest = Manifest::parse(&text).ok_or("its manifest is not a tensorc cache manifest")?;
    if manifest.key != key {
        return Err("its manifest names another key".into());
    }
    if !manifest
        .functions
        .iter()
        .eq(module.functions.iter().map(|f| &f.name))
    {
        return Err("its manifest lists other functions than the program's".into());
    }
    let library = dir.join(LIBRARY);
    let mut bytes = Vec::new();
    std::fs::File::open(&library)
        // One byte more than expected is enough to see that it is too long.
        .and_then(|f| {
            f.take(manifest.size.saturating_add(1))
                .read_to_end(&mut bytes)
        })
        .map_err(|e| format!("cannot read its library: {e}"))?;
    if bytes.len() as u64 != manifest.size {
        return Err(format!(
            "its library has {}{} bytes, the manifest says {}",
            bytes.len(),
            if bytes.len() as u64 > manifest.size {
                " or more"
            } else {
                ""
            },
            manifest.size
        ));
    }
    if hex(&Sha256::digest(&bytes)) != manifest.sha256 {
        return Err("its library's SHA-256 differs from the manifest's".into());
    }
    Ok(bytes)
}

/// Loads the verified library `bytes` and finds every function's entry.
fn open(root: &Path, bytes: &[u8], module: &Module) -> Result<CpuModule, LoadError> {
    // The checked bytes are loaded from a private copy under a name never
    // used before: the loaded code is exactly what was verified, later
    // changes to the entry cannot reach the mapping, and `dlopen` cannot
    // hand back an older library that was loaded from the same path (it
    // matches already loaded objects by name, and a library is not
    // necessarily unloaded when dropped).
    let copy = private_copy(root, bytes).map_err(LoadError::Environment)?;
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
    // SAFETY: the library was built by tensorc for this key; loading it runs
    // only the C runtime's ELF constructors and resolves every symbol now
    // (RTLD_NOW), so a missing one is an error here, not at a call.
    let lib = unsafe { libloading::os::unix::Library::open(Some(&copy), flags) };
    // The mapping keeps the code; the name is not needed any more.
    let _ = std::fs::remove_file(&copy);
    let lib = lib.map_err(|e| LoadError::Environment(format!("cannot load its library: {e}")))?;
    // The library has its own copy of the thread pool: each call first hands
    // it the process's setting (threads.rs), so `set_num_threads` reaches
    // cached code as it reaches the JIT's.
    // SAFETY: `tensorc_set_num_threads` is the C runtime's, of this type.
    let set_threads =
        unsafe { lib.get::<unsafe extern "C" fn(std::ffi::c_int)>(b"tensorc_set_num_threads") }
            .ok()
            .map(|s| *s);
    let mut entries = Vec::with_capacity(module.functions.len());
    for i in 0..module.functions.len() {
        let name = entry_symbol(i);
        // SAFETY: `entry_points_c` defines this symbol with exactly this type.
        let f = unsafe { lib.get::<unsafe extern "C" fn(*mut *mut c_void)>(name.as_bytes()) }
            .map_err(|e| LoadError::Damaged(format!("its library lacks {name}: {e}")))?;
        entries.push(Entry::Pointers {
            call: *f,
            set_threads,
        });
    }
    // Never unloaded: the runtime inside may have started pool threads that
    // sleep in its code, and unloading would pull it from under them. The
    // cost is the library's pages (tens of KiB) for the rest of the process.
    let _ = lib.into_raw();
    Ok(CpuModule::from_code(module, entries, Code::Library))
}

/// Writes `bytes` to a new file with a unique name: in `root` (the cache's
/// own folder, on the same file system) or else in the temporary directory.
fn private_copy(root: &Path, bytes: &[u8]) -> Result<PathBuf, String> {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".load-{}-{}-{}.so",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let mut last = String::new();
    for dir in [root.to_owned(), std::env::temp_dir()] {
        let path = dir.join(&name);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(bytes));
        match written {
            Ok(()) => return Ok(path),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                last = format!("cannot write a copy of the library to load: {e}");
            }
        }
    }
    Err(last)
}

/// An entry's manifest: what the library must be for this key.
#[derive(Debug, PartialEq, Eq)]
struct Manifest {
    key: String,
    size: u64,
    sha256: String,
    functions: Vec<String>,
}

impl Manifest {
    fn render(&self) -> String {
        let mut s = format!(
            "{FORMAT}\nkey {}\nsize {}\nsha256 {}\nfunctions {}\n",
            self.key,
            self.size,
            self.sha256,
            self.functions.len()
        );
        for f in &self.functions {
            let _ = writeln!(s, "function {f}");
        }
        s
    }

    /// The manifest in `text`, or `None` unless it is exactly what `render`
    /// writes (any other text is a damaged or foreign file).
    fn parse(text: &str) -> Option<Manifest> {
        let body = text.strip_suffix('\n')?;
        let mut lines = body.split('\n');
        if lines.next()? != FORMAT {
            return None;
        }
        let mut field = |name: &str| {
            lines
                .next()?
                .strip_prefix(name)?
                .strip_prefix(' ')
                .map(str::to_owned)
        };
        let is_hash =
            |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let key = field("key").filter(|k| is_hash(k))?;
        let size = field("size")?.parse().ok()?;
        let sha256 = field("sha256").filter(|h| is_hash(h))?;
        let count: usize = field("functions")?.parse().ok()?;
        let functions = (0..count)
            .map(|_| field("function").filter(|f| !f.is_empty() && !f.contains(' ')))
            .collect::<Option<Vec<_>>>()?;
        if lines.next().is_some() {
            return None;
        }
        Some(Manifest {
            key,
            size,
            sha256,
            functions,
        })
    }
}

/// A private directory under the cache root in which an entry is built;
/// removed on drop unless it was published (renamed away).
struct Staging(PathBuf);

impl Staging {
    fn new(root: &Path, key: &str) -> Result<Staging, String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = root.join(format!(
            ".tmp-{}-{}-{}",
            &key[..16],
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Staging(dir))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes a damaged entry: first renamed out of the way (so no other run
/// can load it half-deleted), then deleted. Best effort: a failure leaves
/// it for the next run to find damaged again.
fn discard(root: &Path, entry: &Path) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let trash = root.join(format!(
        ".trash-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let target = if std::fs::rename(entry, &trash).is_ok() {
        trash
    } else {
        entry.to_owned()
    };
    if std::fs::remove_dir_all(&target).is_err() {
        let _ = std::fs::remove_file(&target);
    }
}

/// Deletes temporary and discarded entries (and copies being loaded) left
/// behind by runs that died.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if ![".tmp-", ".trash-", ".load-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if stale && std::fs::remove_dir_all(e.path()).is_err() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            key: "ab".repeat(32),
            size: 1234,
            sha256: "0f".repeat(32),
            functions: vec!["main".into(), "f2".into()],
        }
    }

    #[test]
    fn manifests_round_trip() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.render()), Some(m));
    }

    #[test]
    fn damaged_manifests_are_rejected() {
        let good = sample().render();
        let mut bad = vec![
            String::new(),
            good.trim_end().to_owned(),           // no final newline
            format!("{good}extra\n"),             // trailing line
            good.replace("size 1234", "size -1"), // not a number
            good.replace("functions 2", "functions 3"),
            good.replace(FORMAT, "tensorc-jit-cache 0"),
            good.replace(&"0f".repeat(32), &"0F".repeat(32)),
            good[..good.len() / 2].to_owned(), // truncated
        ];
        bad.push(String::from_utf8_lossy(&[0xff, 0xfe, 0x00]).into_owned());
        for text in bad {
            assert_eq!(Manifest::parse(&text), None, "{text:?}");
        }
    }
}

//! Run-time functions that generated code calls, provided by tensorc itself.
//!
//! They are written once, in C (`runtime/*.c`, compiled into this crate by
//! `build.rs` and into every AOT artifact by `aot.rs`), so the JIT and the
//! artifacts run the same code. This module declares them and registers them
//! with every JIT engine. For example, MLIR's lowering of `memref.copy`
//! between non-contiguous memrefs (slices, pads, concatenations, ...) emits a
//! call to `memrefCopy`, which upstream lives in `libmlir_c_runner_utils.so`;
//! tensorc provides it rather than loading that library at run time (one more
//! file to find and ship).

use std::ffi::c_void;

/// An unranked memref as MLIR passes it: the rank and a pointer to a ranked
/// descriptor `{allocated, aligned, offset, sizes[rank], strides[rank]}`.
#[repr(C)]
pub struct UnrankedMemRef {
    pub rank: i64,
    pub descriptor: *const i64,
}

// The C runtime's functions (hidden visibility: linked into this crate, never
// exported from it).
unsafe extern "C" {
    /// Copies every element of `src` to the same index of `dst` (same shape,
    /// arbitrary strides), `elem_size` bytes each (`runtime/tensorc_rt.c`).
    #[link_name = "memrefCopy"]
    pub fn memref_copy(elem_size: i64, src: *const UnrankedMemRef, dst: *const UnrankedMemRef);

    // The workspace (`runtime/tensorc_workspace.c`): what generated code
    // calls instead of malloc/free for its temporaries (the pipelines lower
    // `memref.alloc` with `finalize-memref-to-llvm{use-generic-functions}`).
    fn _mlir_memref_to_llvm_alloc(size: usize) -> *mut c_void;
    fn _mlir_memref_to_llvm_aligned_alloc(alignment: usize, size: usize) -> *mut c_void;
    fn _mlir_memref_to_llvm_free(ptr: *mut c_void);
    fn tensorc_release_workspace();
    // f32 -> bf16 for CPUs without a bf16 conversion instruction
    // (`runtime/tensorc_rt.c`; its bf16 result is the low 16 bits).
    pub(crate) fn __truncsfbf2(x: f32) -> f32;
    fn tensorc_workspace_stats(out: *mut WorkspaceStats, cached_bytes: *mut u64);
}

/// What the workspace allocator did on the calling thread since it started,
/// and how many bytes it holds for reuse (all threads).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceStats {
    /// Temporary buffers obtained from `malloc` (cache misses and blocks too
    /// large or too aligned to cache) by this thread.
    pub system_allocs: u64,
    /// The bytes requested from `malloc` for them.
    pub system_bytes: u64,
    /// Temporary buffers handed back from the cache on this thread.
    pub cache_hits: u64,
    /// Bytes of freed temporaries kept for reuse, over all threads.
    pub cached_bytes: u64,
}

/// The calling thread's workspace counters (see `WorkspaceStats`). Calls of
/// generated code run on the calling thread, so a test can measure its own
/// calls while other threads run theirs.
pub fn workspace_stats() -> WorkspaceStats {
    let mut s = WorkspaceStats::default();
    let mut cached = 0u64;
    // SAFETY: the C function writes the first three fields (its struct has
    // the same layout) and the cached byte count; both pointers are valid.
    unsafe { tensorc_workspace_stats(&mut s, &mut cached) };
    s.cached_bytes = cached;
    s
}

/// Returns every cached temporary buffer to the system allocator (the JIT's
/// equivalent of an artifact's `tensorc_release_workspace`). Buffers of calls
/// running concurrently are not affected.
pub fn release_workspace() {
    // SAFETY: takes no arguments; safe at any time (the cache is locked).
    unsafe { tensorc_release_workspace() }
}

/// The symbols to register with a JIT engine, by the names generated code
/// uses. A new runtime function gets a declaration above and a line here.
pub(crate) fn symbols() -> Vec<(&'static str, *mut c_void)> {
    vec![
        ("memrefCopy", memref_copy as *mut c_void),
        ("__truncsfbf2", __truncsfbf2 as *mut c_void),
        (
            "_mlir_memref_to_llvm_alloc",
            _mlir_memref_to_llvm_alloc as *mut c_void,
        ),
        (
            "_mlir_memref_to_llvm_aligned_alloc",
            _mlir_memref_to_llvm_aligned_alloc as *mut c_void,
        ),
        (
            "_mlir_memref_to_llvm_free",
            _mlir_memref_to_llvm_free as *mut c_void,
        ),
        (
            "tensorc_parallel_for",
            crate::threads::tensorc_parallel_for as *mut c_void,
        ),
    ]
}

/// The external functions of generated code that neither tensorc's runtime
/// nor the process (libc, libm, ...) provides. Checking this before creating
/// the JIT turns a would-be LLVM "symbols not found" failure into a clear error.
pub fn unresolved(external: &[String]) -> Vec<String> {
    let ours = symbols();
    external
        .iter()
        .filter(|n| !ours.iter().any(|(o, _)| o == n) && !process_has(n))
        .cloned()
        .collect()
}

#[cfg(unix)]
fn process_has(name: &str) -> bool {
    unsafe extern "C" {
        fn dlsym(handle: *mut c_void, symbol: *const std::ffi::c_char) -> *mut c_void;
    }
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: RTLD_DEFAULT (null) searches the global symbol scope, as the JIT does.
    !unsafe { dlsym(std::ptr::null_mut(), c.as_ptr()) }.is_null()
}

#[cfg(not(unix))]
fn process_has(_name: &str) -> bool {
    // No portable check: let the JIT report it.
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn unranked(desc: &[i64]) -> UnrankedMemRef {
        UnrankedMemRef {
            rank: ((desc.len() - 3) / 2) as i64,
            descriptor: desc.as_ptr(),
        }
    }

    #[test]
    fn copies_a_strided_window() {
        // src: the 2x2 window at (1,1) of a 3x4 row-major i32 matrix 0..12;
        // dst: column-major 2x2 (strides [1, 2]).
        let src_buf: Vec<i32> = (0..12).collect();
        let mut dst_buf = [0i32; 4];
        let p = src_buf.as_ptr() as i64;
        let q = dst_buf.as_mut_ptr() as i64;
        let sd = [p, p, 5, 2, 2, 4, 1];
        let dd = [q, q, 0, 2, 2, 1, 2];
        unsafe { memref_copy(4, &unranked(&sd), &unranked(&dd)) };
        // window rows [5, 6] and [9, 10], stored column-major: 5, 9, 6, 10
        assert_eq!(dst_buf, [5, 9, 6, 10]);
    }

    #[test]
    fn resolves_libc_libm_and_the_runtime() {
        let names: Vec<String> = ["malloc", "free", "erff", "memrefCopy", "tensorc_no_such_fn"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(unresolved(&names), vec!["tensorc_no_such_fn".to_string()]);
    }

    /// Held by the tests that look at what the (process-wide) workspace
    /// cache holds, so that one's `release_workspace` never empties the cache
    /// under another's feet.
    pub(crate) static WORKSPACE_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Direct calls of the workspace allocator, as generated code makes them.
    #[test]
    fn workspace_reuses_freed_blocks_by_size_class() {
        let _serial = WORKSPACE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: each block is used within the size it was allocated with
        // and freed once, as generated code does.
        unsafe {
            // Sizes no other test of this binary uses, so no concurrent test
            // takes these blocks from the cache between the calls below.
            let a = _mlir_memref_to_llvm_alloc(3_000_000) as *mut u8;
            assert_eq!(a as usize % 64, 0, "blocks are 64-byte aligned");
            a.write_bytes(0xab, 3_000_000);
            _mlir_memref_to_llvm_free(a as *mut c_void);
            // Same class (sizes within 25%): the same block comes back.
            let before = workspace_stats();
            let b = _mlir_memref_to_llvm_aligned_alloc(64, 2_900_000) as *mut u8;
            let after = workspace_stats();
            assert_eq!(b, a);
            assert_eq!(after.system_allocs, before.system_allocs);
            assert_eq!(after.cache_hits, before.cache_hits + 1);
            // A live block is never handed out twice.
            let c = _mlir_memref_to_llvm_alloc(2_950_000) as *mut u8;
            assert_ne!(c, b);
            c.write_bytes(1, 2_950_000);
            _mlir_memref_to_llvm_free(b as *mut c_void);
            _mlir_memref_to_llvm_free(c as *mut c_void);
            // Over-aligned requests are honoured (and not cached).
            let d = _mlir_memref_to_llvm_aligned_alloc(4096, 10_000) as *mut u8;
            assert_eq!(d as usize % 4096, 0);
            d.write_bytes(2, 10_000);
            _mlir_memref_to_llvm_free(d as *mut c_void);
            // Zero bytes is a valid, freeable block; null frees are no-ops.
            let z = _mlir_memref_to_llvm_alloc(0);
            assert!(!z.is_null());
            _mlir_memref_to_llvm_free(z);
            _mlir_memref_to_llvm_free(std::ptr::null_mut());
            // More than half the cache bound (512 MiB) is never kept. The
            // pages are never touched, so this costs address space only.
            let huge = _mlir_memref_to_llvm_alloc(300 << 20);
            assert!(!huge.is_null());
            let cached = workspace_stats().cached_bytes;
            _mlir_memref_to_llvm_free(huge);
            assert!(workspace_stats().cached_bytes < cached + (300 << 20));
            // An impossible size fails cleanly instead of wrapping around.
            assert!(_mlir_memref_to_llvm_alloc(usize::MAX - 8).is_null());
            assert!(_mlir_memref_to_llvm_aligned_alloc(usize::MAX / 2 + 1, 8).is_null());
            assert!(_mlir_memref_to_llvm_aligned_alloc(96, 8).is_null());
            // Released, the cache is empty: the next block is a fresh malloc.
            release_workspace();
            let before = workspace_stats();
            let e = _mlir_memref_to_llvm_alloc(3_000_000);
            assert_eq!(workspace_stats().system_allocs, before.system_allocs + 1);
            _mlir_memref_to_llvm_free(e);
        }
    }

    #[test]
    fn strided_rows_of_every_element_width() {
        // Every other element of every other row of a 4x6 matrix of bytes
        // 0..24, for elements of 1, 2, 4, 8, 16 and 3 bytes (the typed
        // copies and the generic one): source strides [12, 2] elements.
        for width in [1usize, 2, 4, 8, 16, 3] {
            let src: Vec<u8> = (0..24 * width).map(|b| b as u8).collect();
            let mut dst = vec![0u8; 6 * width];
            let (p, q) = (src.as_ptr() as i64, dst.as_mut_ptr() as i64);
            let sd = [p, p, 0, 2, 3, 12, 2];
            let dd = [q, q, 0, 2, 3, 3, 1];
            unsafe { memref_copy(width as i64, &unranked(&sd), &unranked(&dd)) };
            let want: Vec<u8> = [0usize, 2, 4, 12, 14, 16]
                .iter()
                .flat_map(|&e| (e * width..(e + 1) * width).map(|b| b as u8))
                .collect();
            assert_eq!(dst, want, "{width}-byte elements");
        }
    }

    #[test]
    fn rank_zero_and_empty() {
        let src = [7u16];
        let mut dst = [0u16];
        let (p, q) = (src.as_ptr() as i64, dst.as_mut_ptr() as i64);
        unsafe { memref_copy(2, &unranked(&[p, p, 0]), &unranked(&[q, q, 0])) };
        assert_eq!(dst, [7]);
        // A zero-size copy touches nothing (null pointers would fault).
        let z = [0i64, 0, 0, 0, 3, 3, 1];
        unsafe { memref_copy(8, &unranked(&z), &unranked(&z)) };
    }
}

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
}

/// The symbols to register with a JIT engine, by the names generated code
/// uses. A new runtime function gets a declaration above and a line here.
pub(crate) fn symbols() -> Vec<(&'static str, *mut c_void)> {
    vec![("memrefCopy", memref_copy as *mut c_void)]
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
mod tests {
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

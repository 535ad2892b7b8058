//! Run-time functions that generated code calls, provided by tensorc itself.
//!
//! MLIR's lowering of `memref.copy` between non-contiguous memrefs (slices,
//! pads, concatenations, ...) emits a call to `memrefCopy`, which upstream
//! lives in `libmlir_c_runner_utils.so`. Rather than loading that library at
//! run time (one more file to find and ship), tensorc implements the function
//! here and registers it with every JIT engine.

use std::ffi::c_void;

/// An unranked memref as MLIR passes it: the rank and a pointer to a ranked
/// descriptor `{allocated, aligned, offset, sizes[rank], strides[rank]}`.
#[repr(C)]
pub struct UnrankedMemRef {
    pub rank: i64,
    pub descriptor: *const i64,
}

/// The symbols to register with a JIT engine, by the names generated code uses.
pub(crate) fn symbols() -> [(&'static str, *mut c_void); 1] {
    [("memrefCopy", memref_copy as *mut c_void)]
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

/// Copies every element of `src` to the same index of `dst` (same shape,
/// arbitrary strides), `elem_size` bytes each.
///
/// # Safety
/// Both arguments must point at valid unranked memrefs of equal rank and
/// sizes whose buffers are valid for every index they describe; this is what
/// MLIR-generated code passes.
pub unsafe extern "C" fn memref_copy(
    elem_size: i64,
    src: *const UnrankedMemRef,
    dst: *const UnrankedMemRef,
) {
    // SAFETY: the caller (generated code) passes valid descriptors.
    unsafe {
        let (src, dst) = (&*src, &*dst);
        let rank = src.rank.max(0) as usize;
        let sd = std::slice::from_raw_parts(src.descriptor, 3 + 2 * rank);
        let dd = std::slice::from_raw_parts(dst.descriptor, 3 + 2 * rank);
        let sizes = &sd[3..3 + rank];
        if sizes.iter().any(|&s| s <= 0) {
            return;
        }
        let elem = elem_size as isize;
        let src_base = (sd[1] as *const u8).offset(sd[2] as isize * elem);
        let dst_base = (dd[1] as *mut u8).offset(dd[2] as isize * elem);
        if rank == 0 {
            std::ptr::copy(src_base, dst_base, elem as usize);
            return;
        }
        let (ss, ds) = (&sd[3 + rank..], &dd[3 + rank..]);
        let last = rank - 1;
        // The innermost dimension is one contiguous block when both strides are 1.
        let inner_contiguous = ss[last] == 1 && ds[last] == 1;
        let mut index = vec![0i64; rank];
        loop {
            let mut so = 0isize;
            let mut do_ = 0isize;
            for d in 0..last {
                so += (index[d] * ss[d]) as isize;
                do_ += (index[d] * ds[d]) as isize;
            }
            if inner_contiguous {
                std::ptr::copy(
                    src_base.offset(so * elem),
                    dst_base.offset(do_ * elem),
                    (sizes[last] as isize * elem) as usize,
                );
            } else {
                for i in 0..sizes[last] as isize {
                    let s = src_base.offset((so + i * ss[last] as isize) * elem);
                    let d = dst_base.offset((do_ + i * ds[last] as isize) * elem);
                    std::ptr::copy(s, d, elem as usize);
                }
            }
            // Odometer over the outer dimensions.
            let mut d = last;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                index[d] += 1;
                if index[d] < sizes[d] {
                    break;
                }
                index[d] = 0;
            }
        }
    }
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

//! The thread count of generated code's parallel loops, and the pool that
//! runs them (`runtime/tensorc_pool.c`).
//!
//! Parallel loops are outlined by `tensorc-outline-parallel` into calls of
//! the C function `tensorc_parallel_for`; the same C pool runs them in the
//! JIT (registered with every engine, `runtime::symbols`) and in artifacts
//! (where `tensorc_set_num_threads` is part of the C ABI). The setting is
//! process-wide, like the pool: it applies to every compiled program from the
//! next call on.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The last `set_num_threads` value (0: the default), for pools other than
/// this crate's: a library loaded from the compile cache carries its own copy
/// of the C runtime, and gets this value when it is loaded (`cache.rs`).
static REQUESTED: AtomicUsize = AtomicUsize::new(0);

/// An outlined loop body: runs iterations `[begin, end)` with its context.
pub type Body = unsafe extern "C" fn(ctx: *mut c_void, begin: i64, end: i64);

unsafe extern "C" {
    /// Runs `body(ctx, b, e)` over pieces covering `[0, n)` on the pool.
    pub(crate) fn tensorc_parallel_for(body: Body, ctx: *mut c_void, n: i64);
    fn tensorc_set_num_threads(n: c_int);
    fn tensorc_get_num_threads() -> c_int;
}

/// Sets how many threads parallel loops use, the calling thread included;
/// 0 restores the default (`TENSORC_NUM_THREADS`, else every online CPU).
/// Values above 256 are capped.
pub fn set_num_threads(n: usize) {
    REQUESTED.store(n, Ordering::Relaxed);
    // SAFETY: a plain store into the pool's settings; safe at any time.
    unsafe { tensorc_set_num_threads(n.min(c_int::MAX as usize) as c_int) }
}

/// The thread setting to hand to another copy of the pool (0: the default):
/// see `REQUESTED`.
pub fn requested() -> c_int {
    REQUESTED.load(Ordering::Relaxed).min(c_int::MAX as usize) as c_int
}

/// How many threads parallel loops use now.
pub fn num_threads() -> usize {
    // SAFETY: reads the setting (or the environment and sysconf).
    unsafe { tensorc_get_num_threads() }.max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The thread setting is process-wide: tests that change it take turns.
    static SETTING: Mutex<()> = Mutex::new(());

    struct Visits {
        count: Vec<AtomicU32>,
        nested: bool,
    }

    unsafe extern "C" fn visit(ctx: *mut c_void, begin: i64, end: i64) {
        // SAFETY: `ctx` is the `Visits` the test passes, alive for the call.
        let v = unsafe { &*(ctx as *const Visits) };
        for i in begin..end {
            v.count[i as usize].fetch_add(1, Ordering::Relaxed);
            if v.nested {
                // A call from inside a job runs serially on this thread.
                let inner = Visits {
                    count: (0..3).map(|_| AtomicU32::new(0)).collect(),
                    nested: false,
                };
                unsafe { tensorc_parallel_for(visit, &inner as *const Visits as *mut c_void, 3) };
                assert!(inner.count.iter().all(|c| c.load(Ordering::Relaxed) == 1));
            }
        }
    }

    fn run(n: usize, nested: bool) -> Vec<u32> {
        let v = Visits {
            count: (0..n).map(|_| AtomicU32::new(0)).collect(),
            nested,
        };
        unsafe { tensorc_parallel_for(visit, &v as *const Visits as *mut c_void, n as i64) };
        v.count.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    #[test]
    fn every_iteration_runs_exactly_once_for_any_thread_count() {
        let _g = SETTING.lock().unwrap_or_else(|e| e.into_inner());
        for threads in [1, 2, 3, 8] {
            set_num_threads(threads);
            assert_eq!(num_threads(), threads);
            for n in [0usize, 1, 2, 7, 64, 1000, 100_003] {
                assert!(
                    run(n, false).iter().all(|&c| c == 1),
                    "threads {threads}, n {n}"
                );
            }
            assert!(
                run(50, true).iter().all(|&c| c == 1),
                "nested, threads {threads}"
            );
        }
        set_num_threads(0);
        assert!(num_threads() >= 1);
    }

    #[test]
    fn concurrent_top_level_calls_take_turns() {
        let _g = SETTING.lock().unwrap_or_else(|e| e.into_inner());
        set_num_threads(3);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..20).all(|_| run(5000, false).iter().all(|&c| c == 1)))
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap());
        }
        set_num_threads(0);
    }
}

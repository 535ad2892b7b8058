/* tensorc thread pool: what runs the parallel loops of generated code.
 *
 * The pass tensorc-outline-parallel (passes/tensorc-passes/src/
 * outline_parallel.rs) turns every outermost parallel loop into a call
 * tensorc_parallel_for(body, ctx, n): run body(ctx, begin, end) over [0, n)
 * in pieces, on several threads, and return when all are done. Owning this
 * function (rather than OpenMP's libomp or MLIR's async runtime) keeps
 * artifacts dependent on libc and libpthread only.
 *
 * Design:
 * - Persistent workers, started on the first parallel call: the thread count
 *   minus one, since the calling thread works too. A worker sleeps on a
 *   condition variable between jobs.
 * - A job is cut into chunks of max(1, n / (4 * threads)) iterations that
 *   every participating thread claims with one atomic add, so uneven chunks
 *   balance out.
 * - A call made from inside a job (a parallel loop nested in an outlined
 *   body, or a model called from a body) runs serially on its thread.
 * - Top-level calls from several host threads take turns (one job at a
 *   time); each call's own iterations still spread over the pool.
 * - With one thread, or a loop of one iteration, the body runs inline.
 * - Waiting spins briefly before it sleeps: a worker that finished a job
 *   watches for the next one for about 200 microseconds, and the caller,
 *   once no chunk is left to claim, watches the workers still inside its job
 *   for as long, before either falls back to its condition variable. Waking
 *   a sleeping thread costs tens of microseconds on this kind of machine
 *   (futex wake-up plus, in a VM, waking an idle virtual CPU), as much as a
 *   whole 256x256 matmul split in two: without the spin W1 ran slower on two
 *   threads than on one (docs/benchmarks.md), since a call's parallel loops
 *   (a fill, then the matmul) each woke the worker again. Spinning is
 *   bounded in time, and off when the thread count exceeds the online CPUs
 *   (spinners would then take the CPU from the threads they wait for).
 *
 * Thread count: tensorc_set_num_threads(n) (n < 1: back to the default), else
 * the TENSORC_NUM_THREADS environment variable, else the number of online
 * CPUs; the default is read once, at the first call that needs it (sysconf
 * reads a file under /sys each time). Lowering the count leaves extra workers
 * asleep; raising it starts more.
 *
 * Several statically linked artifacts share one pool: the state is the weak,
 * hidden __tensorc_pool_v2 (and the per-thread depth __tensorc_pool_depth_v1),
 * which the linker merges; aot.rs keeps those names and the weak, exported
 * tensorc_set_num_threads/tensorc_get_num_threads global. The suffix must
 * change whenever struct tensorc_pool or struct tensorc_job changes.
 *
 * Unlike the other runtime files this one includes system headers: threads
 * need pthreads. Functions are hidden except the C ABI's two. */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define TENSORC_HIDDEN __attribute__((visibility("hidden")))
#define TENSORC_MAX_THREADS 256
/* How long a waiting thread spins before it sleeps (see Design): SPIN_TICKS
 * time-stamp-counter ticks on x86 (about 200 us at 2.6 GHz; read with an
 * instruction, not clock_gettime, so artifacts need no new libc symbol),
 * SPIN_ROUNDS rounds of 64 pauses elsewhere. */
#define SPIN_TICKS 520000ULL
#define SPIN_ROUNDS 4096L

typedef void (*tensorc_body)(void *ctx, int64_t begin, int64_t end);

struct tensorc_job {
  tensorc_body body;
  void *ctx;
  int64_t n;
  int64_t chunk;
  int threads;          /* participants, the caller included */
  int64_t next;         /* next unclaimed iteration (atomic) */
  int active;           /* workers inside this job (under the pool's lock) */
};

struct tensorc_pool {
  pthread_mutex_t call_lock; /* one top-level job at a time */
  pthread_mutex_t lock;      /* guards job, generation, started, job->active */
  pthread_cond_t wake;       /* a new job (workers wait on it) */
  pthread_cond_t finished;   /* a worker left a job (its caller waits on it) */
  struct tensorc_job *job;   /* the running job, or null */
  unsigned long generation;  /* bumped for each job */
  int started;               /* workers created */
  int requested;             /* tensorc_set_num_threads; 0 = default (atomic) */
};
/* Fields read outside the lock (generation, job->active, job->next) are
 * written with atomics; the rest only under the lock. */

__attribute__((weak)) TENSORC_HIDDEN struct tensorc_pool __tensorc_pool_v2 = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
    PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};
/* How many jobs the current thread is inside (>0: run nested calls serially). */
__attribute__((weak)) TENSORC_HIDDEN __thread int __tensorc_pool_depth_v1 = 0;

#define POOL (&__tensorc_pool_v2)

static int online_cpus(void) {
  static int cached; /* 0: not read yet (atomic) */
  int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (c == 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    c = cpus < 1 ? 1 : cpus > TENSORC_MAX_THREADS ? TENSORC_MAX_THREADS : (int)cpus;
    __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
  }
  return c;
}

static int default_threads(void) {
  static int cached; /* 0: not read yet (atomic) */
  int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (c == 0) {
    c = online_cpus();
    const char *env = getenv("TENSORC_NUM_THREADS");
    if (env && *env) {
      long v = strtol(env, 0, 10);
      if (v > 0)
        c = v > TENSORC_MAX_THREADS ? TENSORC_MAX_THREADS : (int)v;
    }
    __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
  }
  return c;
}

#if defined(__x86_64__) || defined(__i386__)
#define SPIN_X86 1
#else
#define SPIN_X86 0
#endif

static inline void cpu_relax(void) {
#if SPIN_X86
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

/* A spin's start, and whether one that started at `start` has run out
 * after `round` rounds. */
static inline uint64_t spin_start(void) {
#if SPIN_X86
  return __builtin_ia32_rdtsc();
#else
  return 0;
#endif
}
static inline int spin_over(uint64_t start, long round) {
#if SPIN_X86
  (void)round;
  return __builtin_ia32_rdtsc() - start > SPIN_TICKS;
#else
  (void)start;
  return round > SPIN_ROUNDS;
#endif
}

/* Spins while *p == v (a bounded time); returns whether it changed.
 * `threads` is the job's thread count: no spinning past the online CPUs. */
static int spin_while_ulong(const unsigned long *p, unsigned long v, int threads) {
  if (threads > online_cpus())
    return 0;
  uint64_t start = spin_start();
  for (long round = 0;; round++) {
    for (int i = 0; i < 64; i++) {
      if (__atomic_load_n(p, __ATOMIC_ACQUIRE) != v)
        return 1;
      cpu_relax();
    }
    if (spin_over(start, round))
      return 0;
  }
}

/* Spins while *p > 0, like spin_while_ulong. */
static int spin_while_positive(const int *p, int threads) {
  if (threads > online_cpus())
    return 0;
  uint64_t start = spin_start();
  for (long round = 0;; round++) {
    for (int i = 0; i < 64; i++) {
      if (__atomic_load_n(p, __ATOMIC_ACQUIRE) <= 0)
        return 1;
      cpu_relax();
    }
    if (spin_over(start, round))
      return 0;
  }
}

/* The C ABI: set the number of threads parallel loops use (n < 1: the
 * default). Takes effect at the next parallel loop. */
__attribute__((weak)) void tensorc_set_num_threads(int n) {
  if (n > TENSORC_MAX_THREADS)
    n = TENSORC_MAX_THREADS;
  __atomic_store_n(&POOL->requested, n < 1 ? 0 : n, __ATOMIC_RELAXED);
}

/* The C ABI: the number of threads parallel loops use. */
__attribute__((weak)) int tensorc_get_num_threads(void) {
  int r = __atomic_load_n(&POOL->requested, __ATOMIC_RELAXED);
  return r > 0 ? r : default_threads();
}

/* Claims and runs chunks of `job` until none is left. */
static void work(struct tensorc_job *job) {
  __tensorc_pool_depth_v1++;
  for (;;) {
    int64_t b = __atomic_fetch_add(&job->next, job->chunk, __ATOMIC_RELAXED);
    if (b >= job->n)
      break;
    int64_t e = b + job->chunk < job->n ? b + job->chunk : job->n;
    job->body(job->ctx, b, e);
  }
  __tensorc_pool_depth_v1--;
}

static void *worker(void *arg) {
  int index = (int)(intptr_t)arg; /* 1-based: the caller is participant 0 */
  unsigned long seen = 0;
  int last_threads = 0; /* of the last job: whether to spin */
  pthread_mutex_lock(&POOL->lock);
  seen = POOL->generation;
  for (;;) {
    if (POOL->generation == seen && last_threads > 0) {
      /* Watch for the next job before sleeping (see Design). */
      pthread_mutex_unlock(&POOL->lock);
      spin_while_ulong(&POOL->generation, seen, last_threads);
      pthread_mutex_lock(&POOL->lock);
    }
    while (POOL->generation == seen)
      pthread_cond_wait(&POOL->wake, &POOL->lock);
    seen = POOL->generation;
    struct tensorc_job *job = POOL->job;
    if (!job || index >= job->threads)
      continue;
    last_threads = job->threads;
    /* Registered under the lock, so the caller cannot retire the job
     * (its stack frame) while this worker still reads it. */
    __atomic_add_fetch(&job->active, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&POOL->lock);
    work(job);
    pthread_mutex_lock(&POOL->lock);
    /* The last access to the job: the caller may retire it right after. */
    __atomic_sub_fetch(&job->active, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&POOL->finished);
  }
  return 0;
}

/* Starts workers up to `threads - 1` (called with POOL->lock held); returns
 * how many threads can take part. */
static int ensure_workers(int threads) {
  while (POOL->started < threads - 1) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, worker, (void *)(intptr_t)(POOL->started + 1));
    pthread_attr_destroy(&attr);
    if (rc != 0)
      break;
    POOL->started++;
  }
  return POOL->started + 1 < threads ? POOL->started + 1 : threads;
}

/* Runs body(ctx, b, e) over disjoint pieces [b, e) covering [0, n), on the
 * pool's threads, and returns when every piece is done. */
TENSORC_HIDDEN void tensorc_parallel_for(tensorc_body body, void *ctx, int64_t n) {
  if (n <= 0)
    return;
  int threads = tensorc_get_num_threads();
  if (threads <= 1 || n == 1 || __tensorc_pool_depth_v1 > 0) {
    __tensorc_pool_depth_v1++;
    body(ctx, 0, n);
    __tensorc_pool_depth_v1--;
    return;
  }
  pthread_mutex_lock(&POOL->call_lock);
  struct tensorc_job job;
  job.body = body;
  job.ctx = ctx;
  job.n = n;
  job.next = 0;
  job.active = 0;
  pthread_mutex_lock(&POOL->lock);
  job.threads = ensure_workers(threads);
  int64_t chunk = n / (4 * (int64_t)job.threads);
  job.chunk = chunk < 1 ? 1 : chunk;
  POOL->job = &job;
  __atomic_add_fetch(&POOL->generation, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&POOL->wake);
  pthread_mutex_unlock(&POOL->lock);

  work(&job);
  /* Withdraw the job (no worker joins it any more), then wait until every
   * worker inside has left it: each finished its chunks, so all n
   * iterations are done, and the frame can go. Spin first, then sleep
   * (see Design). */
  pthread_mutex_lock(&POOL->lock);
  POOL->job = 0;
  if (job.active > 0) {
    pthread_mutex_unlock(&POOL->lock);
    spin_while_positive(&job.active, job.threads);
    pthread_mutex_lock(&POOL->lock);
  }
  while (job.active > 0)
    pthread_cond_wait(&POOL->finished, &POOL->lock);
  pthread_mutex_unlock(&POOL->lock);
  pthread_mutex_unlock(&POOL->call_lock);
}

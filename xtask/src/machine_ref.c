/* The machine's reference numbers for `cargo xtask bench`, measured in the
 * same run as the workloads:
 *  - a STREAM-style triad a[i] = b[i] + s * c[i] over three f64 arrays far
 *    larger than the last-level cache; bandwidth counts 24 bytes per
 *    element (two reads, one write; STREAM's convention, no write-allocate
 *    traffic), the same "minimum traffic" rule the workloads' GB/s use;
 *    on one core, and on THREADS threads (the first argument, default 1:
 *    each thread owns a contiguous slice of the arrays, which it also
 *    initialized, and the threads start each timed run together); each
 *    run times the loop twice, with ordinary stores and with streaming
 *    (non-temporal) stores, which write the lines without reading them
 *    first, and the faster is the reference (x86 with SSE2; elsewhere
 *    ordinary stores only): tensorc writes large results that way
 *    (`tensorc-stream-stores`), 1.2-1.25x the bandwidth of ordinary
 *    stores here;
 *  - the f32 FMA peak of one core: independent multiply-add chains on
 *    native-width vectors (GCC/Clang vector extensions; -march=native picks
 *    the width), enough of them to cover the FMA latency on every unit.
 * Prints "triad_gbs <x>", "triad_threads <n>", "triad_all_gbs <y>" and
 * "fma_gflops <z>", each the best of several runs (0 when a self-check
 * failed). Built by xtask with `cc -O3 -march=native -pthread`; libc and
 * pthreads only. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define TRIAD_N (1L << 24) /* 128 MiB per array */
#define TRIAD_RUNS 10

/* One triad array, in transparent huge pages where the kernel gives them on
 * request (its THP mode "madvise"): tensorc's tensors from 4 MiB on and
 * NumPy's arrays from 4 MiB on are, so the reference streams the same way. */
static double *triad_array(void) {
    size_t bytes = TRIAD_N * sizeof(double);
    double *p = aligned_alloc(2L << 20, bytes);
#ifdef __linux__
    if (p) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

/* a[i] = b[i] + s * c[i] for i in [lo, hi), with streaming stores when
 * `stream` (and the target has them; the remainder and an unaligned head
 * with ordinary ones), which are then fenced. */
static void triad_range(double *a, const double *b, const double *c, long lo, long hi, int stream) {
    const double s = 3.0;
    long i = lo;
#ifdef __SSE2__
    if (stream) {
        for (; i < hi && ((unsigned long)(a + i) & 15); i++) a[i] = b[i] + s * c[i];
        __m128d sv = _mm_set1_pd(s);
        for (; i + 2 <= hi; i += 2)
            _mm_stream_pd(a + i, _mm_add_pd(_mm_loadu_pd(b + i), _mm_mul_pd(sv, _mm_loadu_pd(c + i))));
        for (; i < hi; i++) a[i] = b[i] + s * c[i];
        _mm_sfence();
        return;
    }
#endif
    for (; i < hi; i++) a[i] = b[i] + s * c[i];
}

static double triad(void) {
    double *a = triad_array();
    double *b = triad_array();
    double *c = triad_array();
    if (!a || !b || !c) return 0.0;
    for (long i = 0; i < TRIAD_N; i++) { a[i] = 0.0; b[i] = 1.0; c[i] = 2.0; }
    double best = 1e30;
    for (int r = 0; r < 2 * TRIAD_RUNS; r++) {
        double t0 = now();
        triad_range(a, b, c, 0, TRIAD_N, r % 2);
        double t = now() - t0;
        if (t < best) best = t;
        /* keep the stores observable between runs */
        __asm__ volatile("" : : "r"(a) : "memory");
    }
    double check = a[TRIAD_N / 2];
    free(a); free(b); free(c);
    if (check != 7.0) return 0.0;
    return 24.0 * (double)TRIAD_N / best / 1e9;
}

/* The triad on several threads: thread k of n owns elements
 * [k*N/n, (k+1)*N/n) of every array. Each thread times its own part and a
 * run lasts from the earliest start to the latest end: the main thread
 * cannot time it, because with more threads than cores it may be
 * descheduled between the start barrier and its clock read and then time
 * only the tail of the run (this measured 661 GB/s on 2 cores). */
#define MAX_THREADS 256
struct triad_part {
    double *a, *b, *c;
    long lo, hi;
    pthread_barrier_t *start, *stop;
    double t0[2 * TRIAD_RUNS], t1[2 * TRIAD_RUNS];
};

static void *triad_thread(void *arg) {
    struct triad_part *p = arg;
    for (long i = p->lo; i < p->hi; i++) { p->a[i] = 0.0; p->b[i] = 1.0; p->c[i] = 2.0; }
    for (int r = 0; r < 2 * TRIAD_RUNS; r++) {
        pthread_barrier_wait(p->start);
        p->t0[r] = now();
        triad_range(p->a, p->b, p->c, p->lo, p->hi, r % 2);
        __asm__ volatile("" : : "r"(p->a) : "memory");
        p->t1[r] = now();
        pthread_barrier_wait(p->stop);
    }
    return 0;
}

static double triad_threads(int n) {
    double *a = triad_array();
    double *b = triad_array();
    double *c = triad_array();
    if (!a || !b || !c) return 0.0;
    pthread_barrier_t start, stop;
    /* The main thread only releases the runs: it joins both barriers. */
    pthread_barrier_init(&start, 0, (unsigned)n + 1);
    pthread_barrier_init(&stop, 0, (unsigned)n + 1);
    struct triad_part parts[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started = 0;
    for (int k = 0; k < n; k++) {
        parts[k] = (struct triad_part){a, b, c, TRIAD_N * k / n, TRIAD_N * (k + 1) / n, &start, &stop};
        if (pthread_create(&tids[k], 0, triad_thread, &parts[k]) != 0) break;
        started++;
    }
    double best = 1e30;
    if (started == n) {
        for (int r = 0; r < 2 * TRIAD_RUNS; r++) {
            pthread_barrier_wait(&start);
            pthread_barrier_wait(&stop);
        }
    }
    for (int k = 0; k < started; k++) pthread_join(tids[k], 0);
    if (started == n) {
        for (int r = 0; r < 2 * TRIAD_RUNS; r++) {
            double first = parts[0].t0[r], last = parts[0].t1[r];
            for (int k = 1; k < n; k++) {
                if (parts[k].t0[r] < first) first = parts[k].t0[r];
                if (parts[k].t1[r] > last) last = parts[k].t1[r];
            }
            if (last - first < best) best = last - first;
        }
    }
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&stop);
    int ok = started == n && a[0] == 7.0 && a[TRIAD_N - 1] == 7.0 && a[TRIAD_N / 2] == 7.0;
    free(a); free(b); free(c);
    return ok ? 24.0 * (double)TRIAD_N / best / 1e9 : 0.0;
}

/* Native vector width in bytes (64 with AVX-512, 32 with AVX2), and the
 * chains: enough to cover the FMA latency on both units, few enough that
 * they and the two operands stay in registers (32 with AVX-512, 16
 * without: 16 chains spilled on an AVX2 core and measured 52 GFLOPS where
 * 10-14 measured 92-93). */
#if defined(__AVX512F__)
#define VBYTES 64
#define CHAINS 16
#elif defined(__AVX__)
#define VBYTES 32
#define CHAINS 12
#else
#define VBYTES 16
#define CHAINS 12
#endif
typedef float vf __attribute__((vector_size(VBYTES)));
#define LANES (VBYTES / 4)
#define FMA_ITERS 20000000L
#define FMA_RUNS 5

static double fma_peak(void) {
    double best = 1e30;
    float sink = 0.0f;
    for (int r = 0; r < FMA_RUNS; r++) {
        vf acc[CHAINS];
        vf x, y;
        for (int l = 0; l < LANES; l++) { x[l] = 0.999999f; y[l] = 1e-7f; }
        for (int k = 0; k < CHAINS; k++)
            for (int l = 0; l < LANES; l++) acc[k][l] = (float)(k + l);
        /* hide x and y from the optimizer so nothing is folded */
        __asm__ volatile("" : "+x"(x), "+x"(y));
        double t0 = now();
        for (long i = 0; i < FMA_ITERS; i++) {
            for (int k = 0; k < CHAINS; k++) acc[k] = acc[k] * x + y;
        }
        double t = now() - t0;
        if (t < best) best = t;
        for (int k = 0; k < CHAINS; k++)
            for (int l = 0; l < LANES; l++) sink += acc[k][l];
    }
    if (sink != sink) return 0.0; /* NaN: something went wrong */
    return 2.0 * LANES * CHAINS * (double)FMA_ITERS / best / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    printf("triad_gbs %.3f\n", triad());
    printf("triad_threads %d\n", threads);
    printf("triad_all_gbs %.3f\n", triad_threads(threads));
    printf("fma_gflops %.3f\n", fma_peak());
    return 0;
}

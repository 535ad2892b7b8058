/* tensorc workspace: where generated code gets its temporary buffers.
 *
 * Bufferization turns every intermediate tensor that cannot live in a result
 * buffer into a memref.alloc/memref.dealloc pair inside the call. The CPU
 * pipelines lower them with finalize-memref-to-llvm{use-generic-functions},
 * so generated code calls the three _mlir_memref_to_llvm_* functions below
 * instead of malloc/free. They are a caching allocator: a freed block is kept
 * in a list for its size class and handed back by the next allocation of that
 * class, so from the second call of a function on, its temporaries come from
 * the cache and the call performs no malloc (issue 4 point 2, issue 6 point
 * 3; freshly malloc'ed large blocks are also what made glibc return memory to
 * the OS and fault it back in on every call, cpu-pipeline.md gotcha 9).
 *
 * Why not a caller-provided workspace argument: MLIR 22 has no pass that
 * hoists the allocations of a function into one buffer of statically known
 * size, and a size computed by tensorc would have to follow every buffer the
 * pipeline creates after tensorc last sees the IR. A cache needs no change to
 * the calling convention and covers every allocation, whoever creates it.
 *
 * Bounds: at most TENSORC_WORKSPACE_CACHE_BYTES bytes are kept; when a free
 * would exceed that, the least recently freed blocks are returned to libc
 * first, and a block larger than half the bound is never kept. Size classes
 * are four per power of two (a block is at most 25% larger than asked for).
 * tensorc_release_workspace() returns every kept block to libc.
 *
 * Threads: one cache per process (per shared library for .so artifacts),
 * guarded by a spinlock held only for a few pointer updates (never across
 * malloc or free), so calls from any threads, and worker threads of one call,
 * may allocate and free concurrently, and a block may be freed by another
 * thread than the one that allocated it.
 *
 * Several tensorc artifacts statically linked into one program share one
 * cache: its state is the weak, hidden __tensorc_workspace_v1, which the
 * linker merges (aot.rs keeps the name global; each artifact keeps its own
 * copy of the functions). The version suffix must change whenever struct
 * tensorc_workspace, struct block, HEADER or size_class change, so that
 * artifacts that would read each other's blocks differently never share it
 * (a different cache bound is harmless).
 *
 * No #include (see tensorc_rt.c); libc's malloc and free only. */

typedef __SIZE_TYPE__ tensorc_size;

void *malloc(tensorc_size size);
void free(void *ptr);

#define TENSORC_HIDDEN __attribute__((visibility("hidden")))

#ifndef TENSORC_WORKSPACE_CACHE_BYTES
#define TENSORC_WORKSPACE_CACHE_BYTES ((tensorc_size)512 << 20)
#endif

/* Every block is preceded by this header, in the HEADER bytes below the
 * pointer generated code gets; that pointer is HEADER-aligned, which covers
 * any vector type and the 64-byte alignment bufferization asks for. */
#define HEADER 64

struct block {
  void *raw;          /* what malloc returned */
  tensorc_size size;  /* usable bytes: the class size; 0 for uncached blocks */
  long cls;           /* size class, or -1: never cached (over-aligned, huge) */
  struct block *next; /* class list (most recently freed first) */
  struct block *prev;
  struct block *older; /* every cached block, by time of free */
  struct block *newer;
};

_Static_assert(sizeof(struct block) <= HEADER, "block header fits");

/* Class 0 is every size up to 64 bytes; then four classes per power of two
 * up to 2^63. */
#define CLASSES (1 + 4 * 58)

struct tensorc_workspace {
  unsigned char lock;
  tensorc_size cached_bytes;
  struct block *oldest, *newest;
  struct block *heads[CLASSES];
};

__attribute__((weak)) TENSORC_HIDDEN struct tensorc_workspace
    __tensorc_workspace_v1;
#define WS (&__tensorc_workspace_v1)

#ifdef TENSORC_RT_STATS
/* Per-thread counters, compiled into the JIT's copy only (build.rs): tests
 * count what their own thread's calls did while other tests run. */
struct tensorc_workspace_stats {
  unsigned long long system_allocs; /* blocks obtained from malloc */
  unsigned long long system_bytes;  /* bytes asked of malloc for them */
  unsigned long long cache_hits;    /* allocations served from the cache */
};
static _Thread_local struct tensorc_workspace_stats stats;
#define COUNT(field, n) (stats.field += (n))

TENSORC_HIDDEN void
tensorc_workspace_stats(struct tensorc_workspace_stats *out,
                        unsigned long long *cached_bytes) {
  *out = stats;
  *cached_bytes = __atomic_load_n(&WS->cached_bytes, __ATOMIC_RELAXED);
}
#else
#define COUNT(field, n) ((void)0)
#endif

static void lock(void) {
  while (__atomic_test_and_set(&WS->lock, __ATOMIC_ACQUIRE))
    while (__atomic_load_n(&WS->lock, __ATOMIC_RELAXED))
      ;
}

static void unlock(void) { __atomic_clear(&WS->lock, __ATOMIC_RELEASE); }

/* The class of an n-byte request and its block size. */
static long size_class(tensorc_size n, tensorc_size *class_size) {
  int e;
  tensorc_size step, k;
  if (n <= 64) {
    *class_size = 64;
    return 0;
  }
  e = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^e < n <= 2^(e+1) */
  step = (tensorc_size)1 << (e - 2);
  k = (n + step - 1) / step; /* 5..8 */
  *class_size = k * step;
  return (long)(e - 6) * 4 + (long)(k - 4);
}

static void *user(struct block *b) { return (char *)b + HEADER; }

static struct block *header(void *p) {
  return (struct block *)((char *)p - HEADER);
}

/* Unlinks b from its class list and from the age list. Lock held. */
static void unlink_block(struct block *b) {
  if (b->prev)
    b->prev->next = b->next;
  else
    WS->heads[b->cls] = b->next;
  if (b->next)
    b->next->prev = b->prev;
  if (b->older)
    b->older->newer = b->newer;
  else
    WS->oldest = b->newer;
  if (b->newer)
    b->newer->older = b->older;
  else
    WS->newest = b->older;
  WS->cached_bytes -= b->size;
}

/* A fresh block of `size` usable bytes whose user pointer is `align`-aligned
 * (a power of two, at least HEADER). */
static void *fresh(tensorc_size size, tensorc_size align, long cls) {
  char *raw;
  struct block *b;
  tensorc_size at;
  if (size > ((tensorc_size)-1 >> 2) || align > ((tensorc_size)-1 >> 2) ||
      (align & (align - 1)))
    return 0; /* the arithmetic below would overflow, or no such alignment */
  raw = malloc(size + HEADER + align - 1);
  if (!raw)
    return 0;
  COUNT(system_allocs, 1);
  COUNT(system_bytes, size + HEADER + align - 1);
  at = ((tensorc_size)raw + HEADER + align - 1) & ~(align - 1);
  b = header((void *)at);
  b->raw = raw;
  b->size = cls < 0 ? 0 : size;
  b->cls = cls;
  return (void *)at;
}

static void *workspace_alloc(tensorc_size n, tensorc_size align) {
  tensorc_size size;
  long cls;
  struct block *b;
  if (align > HEADER)
    return fresh(n, align, -1); /* rare: not worth a class of its own */
  if (n > TENSORC_WORKSPACE_CACHE_BYTES / 2)
    return fresh(n, HEADER, -1); /* keeping it would evict nearly all */
  cls = size_class(n, &size);
  lock();
  b = WS->heads[cls];
  if (b)
    unlink_block(b);
  unlock();
  if (b) {
    COUNT(cache_hits, 1);
    return user(b);
  }
  return fresh(size, HEADER, cls);
}

TENSORC_HIDDEN void *_mlir_memref_to_llvm_alloc(tensorc_size size) {
  return workspace_alloc(size, HEADER);
}

TENSORC_HIDDEN void *_mlir_memref_to_llvm_aligned_alloc(tensorc_size alignment,
                                                        tensorc_size size) {
  return workspace_alloc(size, alignment);
}

TENSORC_HIDDEN void _mlir_memref_to_llvm_free(void *p) {
  struct block *b, *evicted = 0, *e;
  if (!p)
    return;
  b = header(p);
  if (b->cls < 0) {
    free(b->raw);
    return;
  }
  lock();
  /* Make room by evicting the blocks freed longest ago; they are chained
   * through `next` and returned to libc after the lock is dropped. */
  while (WS->oldest &&
         WS->cached_bytes + b->size > TENSORC_WORKSPACE_CACHE_BYTES) {
    e = WS->oldest;
    unlink_block(e);
    e->next = evicted;
    evicted = e;
  }
  b->prev = 0;
  b->next = WS->heads[b->cls];
  if (b->next)
    b->next->prev = b;
  WS->heads[b->cls] = b;
  b->newer = 0;
  b->older = WS->newest;
  if (WS->newest)
    WS->newest->newer = b;
  else
    WS->oldest = b;
  WS->newest = b;
  WS->cached_bytes += b->size;
  unlock();
  while (evicted) {
    e = evicted;
    evicted = e->next;
    free(e->raw);
  }
}

/* Returns every cached block to libc. Blocks in use by a running call are
 * not affected (they return to the cache when that call frees them). The
 * one exported function of the runtime (docs/c-abi.md); weak, so that
 * several statically linked artifacts define it once. */
__attribute__((weak, visibility("default"))) void
tensorc_release_workspace(void) {
  struct block *all, *b;
  long c;
  lock();
  all = WS->oldest;
  WS->oldest = WS->newest = 0;
  WS->cached_bytes = 0;
  for (c = 0; c < CLASSES; c++)
    WS->heads[c] = 0;
  unlock();
  while (all) {
    b = all;
    all = b->newer;
    free(b->raw);
  }
}

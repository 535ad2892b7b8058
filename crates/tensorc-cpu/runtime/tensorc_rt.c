/* tensorc runtime: the functions generated code calls that neither libc nor
 * libm provide. The one implementation for both back ends: linked into the
 * tensorc-cpu crate for the JIT (build.rs, registered by runtime.rs) and
 * compiled into every ahead-of-time artifact (object, shared library, static
 * archive) so that shipping a model never means shipping LLVM, MLIR or
 * tensorc. No #include: the same text builds for any target with any C
 * compiler, hosted or not. */

typedef __INT64_TYPE__ tensorc_i64;
typedef __SIZE_TYPE__ tensorc_size;

/* An unranked memref as MLIR passes it: the rank and a pointer to a ranked
 * descriptor {allocated, aligned, offset, sizes[rank], strides[rank]}. */
struct tensorc_unranked {
  tensorc_i64 rank;
  tensorc_i64 *descriptor;
};

#define TENSORC_MAX_RANK 64

/* MLIR lowers memref.copy between non-contiguous memrefs (slices, pads,
 * concatenations) to a call of memrefCopy: copy every index of src to the
 * same index of dst, contiguous rows with one memmove. Hidden so that neither
 * an artifact nor a program linking tensorc exports or interposes the name. */
__attribute__((visibility("hidden"))) void
memrefCopy(tensorc_i64 elem_size, struct tensorc_unranked *src,
           struct tensorc_unranked *dst) {
  tensorc_i64 rank = src->rank < 0 ? 0 : src->rank;
  tensorc_i64 *sd = src->descriptor, *dd = dst->descriptor;
  tensorc_i64 *sizes = sd + 3, *ss = sd + 3 + rank, *ds = dd + 3 + rank;
  char *sb = (char *)sd[1] + sd[2] * elem_size;
  char *db = (char *)dd[1] + dd[2] * elem_size;
  tensorc_i64 index[TENSORC_MAX_RANK];
  tensorc_i64 d, i, last, so, dof, len;
  int inner_contiguous;
  if (rank > TENSORC_MAX_RANK)
    __builtin_trap(); /* the checker never produces such ranks */
  for (d = 0; d < rank; d++) {
    if (sizes[d] <= 0)
      return;
    index[d] = 0;
  }
  if (rank == 0) {
    __builtin_memmove(db, sb, (tensorc_size)elem_size);
    return;
  }
  last = rank - 1;
  inner_contiguous = ss[last] == 1 && ds[last] == 1;
  /* Trailing dimensions contiguous on both sides (each stride the next
   * dimension's extent times its stride) are one row: a pad's interior
   * (56x56x64 into 58x58x64, W9) is 56 memmoves of 14 KiB instead of 3136
   * of 256 bytes. `len` counts the elements of one row. */
  len = sizes[last];
  if (inner_contiguous) {
    while (last > 0 && ss[last - 1] == len && ds[last - 1] == len) {
      last--;
      len *= sizes[last];
    }
  }
  for (;;) {
    so = 0;
    dof = 0;
    for (d = 0; d < last; d++) {
      so += index[d] * ss[d];
      dof += index[d] * ds[d];
    }
    if (inner_contiguous) {
      __builtin_memmove(db + dof * elem_size, sb + so * elem_size,
                        (tensorc_size)(len * elem_size));
    } else {
      /* Strided rows (a strided slice's source, an interior pad's
       * destination): element by element, one load and store of the
       * element's width each (a call of memmove per element made a
       * stride-2 slice of 2048x2048 f32 take 0.9 ms, now 0.3; XLA 0.13).
       * The elements move one at a time in the same order as before. */
      char *dp = db + dof * elem_size;
      const char *sp = sb + so * elem_size;
      tensorc_i64 n = sizes[last], dstep = ds[last] * elem_size, sstep = ss[last] * elem_size;
/* One strided row of elements of a constant width `w` (one load and store). */
#define TENSORC_STRIDED_ROW(w)                                                 \
  for (i = 0; i < n; i++)                                                      \
    __builtin_memcpy(dp + i * dstep, sp + i * sstep, w);                       \
  break;
      switch (elem_size) {
      case 1: TENSORC_STRIDED_ROW(1)
      case 2: TENSORC_STRIDED_ROW(2)
      case 4: TENSORC_STRIDED_ROW(4)
      case 8: TENSORC_STRIDED_ROW(8)
      case 16: TENSORC_STRIDED_ROW(16)
      default:
        for (i = 0; i < n; i++)
          __builtin_memmove(dp + i * dstep, sp + i * sstep, (tensorc_size)elem_size);
      }
#undef TENSORC_STRIDED_ROW
    }
    /* odometer over the outer dimensions */
    d = last;
    for (;;) {
      if (d == 0)
        return;
      d--;
      if (++index[d] < sizes[d])
        break;
      index[d] = 0;
    }
  }
}

/* f32 -> bf16, rounding to nearest even (quieting NaNs), as the interpreter
 * converts. LLVM calls this for every f32 -> bf16 truncation when the target
 * CPU has no bf16 conversion instruction (anything below AVX-512 BF16, e.g.
 * the artifacts' portable x86-64-v2 default), and neither Debian 12's libgcc
 * nor the JIT process provides it. The bf16 result travels in the low 16
 * bits of the first floating-point return register (xmm0 on x86-64, v0 on
 * AArch64), which is where a float's low 16 bits go: returning a float with
 * those bits keeps this file free of compiler-specific bf16 types. */
__attribute__((visibility("hidden"))) float __truncsfbf2(float x) {
  union {
    float f;
    unsigned int u;
  } in, out;
  unsigned int bits;
  in.f = x;
  if ((in.u & 0x7fffffffu) > 0x7f800000u) {
    bits = (in.u >> 16) | 0x40u; /* NaN: keep sign and payload, set quiet bit */
  } else {
    bits = (in.u + 0x7fffu + ((in.u >> 16) & 1u)) >> 16;
  }
  out.u = bits;
  return out.f;
}

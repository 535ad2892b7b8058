# The screening side of `cargo xtask bench --screen`: workloads of the shared
# bench's kinds in other shapes and layouts (odd sizes, sizes no tile divides,
# transposed operands, batches, other axes and layouts) and a few other ops,
# each written twice: as a .nxir program, which this script writes and times
# with `tensorc bench --json` (the binary is argv[1]), and with NumPy, timed
# in this process. xtask runs it in its virtualenv with
# OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset and OPENBLAS_NUM_THREADS set to the
# thread count it passes (argv[3]), so both sides use the same threads.
# Prints one JSON object per case: name, family, tensorc and NumPy minimum
# times (ns), or an error.
#
# Usage: numpy_screen.py TENSORC DIR THREADS WARMUP ITERS [FILTER...]
import json
import os
import subprocess
import sys
import time

import numpy as np

rng = np.random.default_rng(0)


def r(*shape):
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def dot_src(at, bt, ot, ca, cb, ba="", bb=""):
    return (f"def main(a: {at}, b: {bt}) -> {ot} {{\n"
            f"  c = dot a, [{ca}], [{ba}], b, [{cb}], [{bb}]\n  return c\n}}\n")


def mm(m, k, n, dtype="f32"):
    src = dot_src(f"{dtype}[{m}][{k}]", f"{dtype}[{k}][{n}]", f"{dtype}[{m}][{n}]", 1, 0)
    np_t = np.float32 if dtype == "f32" else np.float64

    def make():
        a, b = r(m, k).astype(np_t), r(k, n).astype(np_t)
        return lambda: a @ b
    return src, make


def mm_at(m, k, n):  # a stored K×M, contracted over axis 0
    src = dot_src(f"f32[{k}][{m}]", f"f32[{k}][{n}]", f"f32[{m}][{n}]", 0, 0)

    def make():
        a, b = r(k, m), r(k, n)
        return lambda: a.T @ b
    return src, make


def mm_bt(m, k, n):  # b stored N×K, contracted over axis 1
    src = dot_src(f"f32[{m}][{k}]", f"f32[{n}][{k}]", f"f32[{m}][{n}]", 1, 1)

    def make():
        a, b = r(m, k), r(n, k)
        return lambda: a @ b.T
    return src, make


def bmm(bs, m, k, n):
    src = dot_src(f"f32[{bs}][{m}][{k}]", f"f32[{bs}][{k}][{n}]", f"f32[{bs}][{m}][{n}]", 2, 1, 0, 0)

    def make():
        a, b = r(bs, m, k), r(bs, k, n)
        return lambda: a @ b
    return src, make


def mlp(m, k, n):
    src = (f"def main(x: f32[{m}][{k}], w: f32[{k}][{n}], b: f32[{n}]) -> f32[{m}][{n}] {{\n"
           "  h = dot x, [1], [], w, [0], []\n  z = add h, b\n  y = max z, 0.0\n  return y\n}\n")

    def make():
        x, w, b = r(m, k), r(k, n), r(n)
        return lambda: np.maximum(x @ w + b, np.float32(0))
    return src, make


def softmax(rows, cols, axis=1):
    src = (f"def main(x: f32[{rows}][{cols}]) -> f32[{rows}][{cols}] {{\n"
           f"  m = reduce_max x, axes: [{axis}], keep_axes: true\n  d = subtract x, m\n  e = exp d\n"
           f"  s = sum e, axes: [{axis}], keep_axes: true\n  y = divide e, s\n  return y\n}}\n")

    def make():
        x = r(rows, cols)

        def f():
            e = np.exp(x - x.max(axis=axis, keepdims=True))
            return e / e.sum(axis=axis, keepdims=True)
        return f
    return src, make


def layernorm(rows, cols):
    src = (f"def main(x: f32[{rows}][{cols}]) -> f32[{rows}][{cols}] {{\n"
           f"  s = sum x, axes: [1], keep_axes: true\n  mu = divide s, {cols}.0\n  d = subtract x, mu\n"
           f"  sq = multiply d, d\n  vs = sum sq, axes: [1], keep_axes: true\n  var = divide vs, {cols}.0\n"
           "  ve = add var, 1.0e-5\n  r = rsqrt ve\n  y = multiply d, r\n  return y\n}\n")

    def make():
        x = r(rows, cols)

        def f():
            mu = x.sum(axis=1, keepdims=True) / np.float32(cols)
            d = x - mu
            v = (d * d).sum(axis=1, keepdims=True) / np.float32(cols)
            return d / np.sqrt(v + np.float32(1e-5))
        return f
    return src, make


def sum_axis(rows, cols, axis):
    out = f"f32[{cols}]" if axis == 0 else f"f32[{rows}]"
    src = (f"def main(x: f32[{rows}][{cols}]) -> {out} {{\n"
           f"  s = sum x, axes: [{axis}], keep_axes: false\n  return s\n}}\n")

    def make():
        x = r(rows, cols)
        return lambda: x.sum(axis=axis)
    return src, make


def elementwise(n):
    src = (f"def main(a: f32[{n}], b: f32[{n}]) -> f32[{n}] {{\n"
           "  e = exp a\n  m = multiply e, b\n  s = sigmoid m\n  y = add s, a\n  return y\n}\n")

    def make():
        a, b = r(n), r(n)
        return lambda: 1 / (1 + np.exp(-(np.exp(a) * b))) + a
    return src, make


def tanh_chain(rows, cols):  # W4's chain on a 2-D shape no tile divides
    src = (f"def main(a: f32[{rows}][{cols}], b: f32[{rows}][{cols}], c: f32[{rows}][{cols}]) -> f32[{rows}][{cols}] {{\n"
           "  m = multiply a, b\n  s = add m, c\n  t = tanh s\n  h = multiply t, 0.5\n  y = add h, a\n  return y\n}\n")

    def make():
        a, b, c = r(rows, cols), r(rows, cols), r(rows, cols)
        return lambda: np.tanh(a * b + c) * np.float32(0.5) + a
    return src, make


def conv_nhwc(n, h, w, c, o, k, stride):
    pad = ":same" if stride == 1 else ":valid"
    ho = h if stride == 1 else (h - k) // stride + 1
    wo = w if stride == 1 else (w - k) // stride + 1
    src = (f"def main(x: f32[{n}][{h}][{w}][{c}], k: f32[{k}][{k}][{c}][{o}]) -> f32[{n}][{ho}][{wo}][{o}] {{\n"
           f"  y = conv x, k, strides: [{stride}, {stride}], padding: {pad}, input_permutation: [0, 3, 1, 2], "
           "kernel_permutation: [3, 2, 0, 1], output_permutation: [0, 3, 1, 2]\n  return y\n}\n")

    def make():
        x, kk = r(n, h, w, c), r(k, k, c, o)

        def f():
            p = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0))) if stride == 1 else x
            out = np.zeros((n, ho, wo, o), np.float32)
            for i in range(k):
                for j in range(k):
                    out += p[:, i:i + stride * ho:stride, j:j + stride * wo:stride, :] @ kk[i, j]
            return out
        return f
    return src, make


def conv_nchw(n, c, h, w, o, k):
    src = (f"def main(x: f32[{n}][{c}][{h}][{w}], k: f32[{o}][{c}][{k}][{k}]) -> f32[{n}][{o}][{h}][{w}] {{\n"
           "  y = conv x, k, strides: [1, 1], padding: :same\n  return y\n}\n")

    def make():
        x, kk = r(n, c, h, w), r(o, c, k, k)

        def f():
            p = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
            out = np.zeros((n, o, h, w), np.float32)
            for i in range(k):
                for j in range(k):
                    out += np.einsum("nchw,oc->nohw", p[:, :, i:i + h, j:j + w], kk[:, :, i, j], optimize=True)
            return out
        return f
    return src, make


def conv_ncdhw(n, c, d, h, w, o, k):  # 3-D, valid, Nx's default layout
    do, ho, wo = d - k + 1, h - k + 1, w - k + 1
    src = (f"def main(x: f32[{n}][{c}][{d}][{h}][{w}], k: f32[{o}][{c}][{k}][{k}][{k}]) -> f32[{n}][{o}][{do}][{ho}][{wo}] {{\n"
           "  y = conv x, k\n  return y\n}\n")

    def make():
        x, kk = r(n, c, d, h, w), r(o, c, k, k, k)

        def f():
            out = np.zeros((n, o, do, ho, wo), np.float32)
            for i in range(k):
                for j in range(k):
                    for m in range(k):
                        out += np.einsum("ncdhw,oc->nodhw", x[:, :, i:i + do, j:j + ho, m:m + wo], kk[:, :, i, j, m],
                                         optimize=True)
            return out
        return f
    return src, make


def transpose(rows, cols):
    src = (f"def main(x: f32[{rows}][{cols}]) -> f32[{cols}][{rows}] {{\n"
           "  y = transpose x, [1, 0]\n  return y\n}\n")

    def make():
        x = r(rows, cols)
        return lambda: np.ascontiguousarray(x.T)
    return src, make


def argmax(rows, cols):
    src = (f"def main(x: f32[{rows}][{cols}]) -> s32[{rows}] {{\n"
           "  y = argmax x, axis: 1, tie_break: :low, keep_axis: false\n  return y\n}\n")

    def make():
        x = r(rows, cols)
        return lambda: x.argmax(axis=1)
    return src, make


def take_rows(v, d, n):
    src = (f"def main(x: f32[{v}][{d}], i: s32[{n}]) -> f32[{n}][{d}] {{\n"
           "  y = take x, i, axis: 0\n  return y\n}\n")

    def make():
        x, i = r(v, d), np.random.default_rng(1).integers(0, v, n).astype(np.int32)
        return lambda: np.take(x, i, axis=0)
    return src, make


# name: (family, builder). Families group the table's rows.
CASES = {
    "mm_1000": ("matmul", mm(1000, 1000, 1000)),
    "mm_1023x1025x1027": ("matmul", mm(1023, 1025, 1027)),
    "mm_513x257x129": ("matmul", mm(513, 257, 129)),
    "mm_1500": ("matmul", mm(1500, 1500, 1500)),
    "mm_1200": ("matmul", mm(1200, 1200, 1200)),
    "mm_1536": ("matmul", mm(1536, 1536, 1536)),
    "mm_2000": ("matmul", mm(2000, 2000, 2000)),
    "mm_2000x300x2000": ("matmul", mm(2000, 300, 2000)),
    "mm_4096x128x4096": ("matmul", mm(4096, 128, 4096)),
    "mm_100x2048x2048": ("matmul", mm(100, 2048, 2048)),
    "mm_8192x512x64": ("matmul", mm(8192, 512, 64)),
    "mm_1x4096x4096": ("matmul", mm(1, 4096, 4096)),
    "mm_4096x4096x1": ("matmul", mm(4096, 4096, 1)),
    "mm_aT_1024": ("matmul", mm_at(1024, 1024, 1024)),
    "mm_bT_1024": ("matmul", mm_bt(1024, 1024, 1024)),
    "mm_bT_1000x777x1100": ("matmul", mm_bt(1000, 777, 1100)),
    "mm_1023": ("matmul", mm(1023, 1023, 1023)),
    "mm_bT_511x1025x1023": ("matmul", mm_bt(511, 1025, 1023)),
    "mm_3000x1000x3000": ("matmul", mm(3000, 1000, 3000)),
    "mm_f64_1024": ("matmul", mm(1024, 1024, 1024, "f64")),
    "mm_f64_1000x700x1000": ("matmul", mm(1000, 700, 1000, "f64")),
    "mm_f64_1500": ("matmul", mm(1500, 1500, 1500, "f64")),
    "mlp_250x600x1100": ("mlp", mlp(250, 600, 1100)),
    "mlp_100x1024x4096": ("mlp", mlp(100, 1024, 4096)),
    "mlp_1000": ("mlp", mlp(1000, 1000, 1000)),
    "mlp_1023": ("mlp", mlp(1023, 1023, 1023)),
    "bmm_4x1024": ("batched matmul", bmm(4, 1024, 1024, 1024)),
    "bmm_2x1000": ("batched matmul", bmm(2, 1000, 1000, 1000)),
    "bmm_2x1500": ("batched matmul", bmm(2, 1500, 1500, 1500)),
    "bmm_8x512": ("batched matmul", bmm(8, 512, 512, 512)),
    "bmm_32x100x70x90": ("batched matmul", bmm(32, 100, 70, 90)),
    "bmm_12x197x64x197": ("batched matmul", bmm(12, 197, 64, 197)),
    "bmm_32x128x128x1024": ("batched matmul", bmm(32, 128, 128, 1024)),
    "conv_nhwc_2x57x57x63_o65": ("conv", conv_nhwc(2, 57, 57, 63, 65, 3, 1)),
    "conv_nhwc_2x57x57x63_o18": ("conv", conv_nhwc(2, 57, 57, 63, 18, 3, 1)),
    "conv_nhwc_1x28x28x100_o100": ("conv", conv_nhwc(1, 28, 28, 100, 100, 3, 1)),
    "conv_nhwc_s2_1x112x112x32_o64": ("conv", conv_nhwc(1, 112, 112, 32, 64, 3, 2)),
    "conv_nchw_1x64x56x56_o64": ("conv", conv_nchw(1, 64, 56, 56, 64, 3)),
    "conv_nchw_8x3x64x64_o32": ("conv", conv_nchw(8, 3, 64, 64, 32, 3)),
    "conv_nhwc_1x56x56x64_o5": ("conv", conv_nhwc(1, 56, 56, 64, 5, 3, 1)),
    "conv_nhwc_1x112x112x32_o3": ("conv", conv_nhwc(1, 112, 112, 32, 3, 3, 1)),
    "conv3d_ncdhw_1x16x32x32x32_o32": ("conv", conv_ncdhw(1, 16, 32, 32, 32, 32, 3)),
    "softmax_1000x1000": ("softmax", softmax(1000, 1000)),
    "softmax_30000x77": ("softmax", softmax(30000, 77)),
    "softmax_axis0_4096x1024": ("softmax", softmax(4096, 1024, 0)),
    "layernorm_3000x777": ("layernorm", layernorm(3000, 777)),
    "sum_axis0_4096x4096": ("sum", sum_axis(4096, 4096, 0)),
    "sum_axis1_3001x1999": ("sum", sum_axis(3001, 1999, 1)),
    "sum_axis1_100000x37": ("sum", sum_axis(100000, 37, 1)),
    "elementwise_10000019": ("element-wise", elementwise(10000019)),
    "tanh_chain_3001x1999": ("element-wise", tanh_chain(3001, 1999)),
    "transpose_3001x1999": ("other ops", transpose(3001, 1999)),
    "argmax_4096x1024": ("other ops", argmax(4096, 1024)),
    "argmax_1000x1000": ("other ops", argmax(1000, 1000)),
    "argmax_100000x10": ("other ops", argmax(100000, 10)),
    "take_8192_of_50000x512": ("other ops", take_rows(50000, 512, 8192)),
}


ROUNDS = 3


def time_numpy(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    best = None
    for _ in range(iters):
        t = time.perf_counter_ns()
        fn()
        d = time.perf_counter_ns() - t
        best = d if best is None else min(best, d)
    return best


def main():
    tensorc, out_dir, threads = sys.argv[1], sys.argv[2], sys.argv[3]
    warmup, iters = int(sys.argv[4]), int(sys.argv[5])
    filters = sys.argv[6:]
    os.makedirs(out_dir, exist_ok=True)
    # Two seconds of matmuls first, on every thread the run uses: right
    # after xtask's release build, the first case of a run measured up to
    # 20 % slow on both sides (1000³: 9.7 ms where later runs took 8.0).
    a, b = r(1024, 1024), r(1024, 1024)
    start = time.perf_counter()
    while time.perf_counter() - start < 2.0:
        a @ b
    for name, (family, (src, make)) in CASES.items():
        if filters and not any(f in name for f in filters):
            continue
        path = os.path.join(out_dir, name + ".nxir")
        with open(path, "w") as f:
            f.write(src)
        row = {"name": name, "family": family, "threads": int(threads)}
        fn = None
        # Three rounds of both sides back to back, the fastest of each kept:
        # this VM's speed drifts within minutes, and now and then the second
        # core is taken for a while (a two-thread time equal to the
        # one-thread one).
        for _ in range(ROUNDS):
            done = subprocess.run(
                [tensorc, "bench", path, "--json", "--no-cache", "--warmup", str(warmup),
                 "--iters", str(iters), "--threads", threads],
                capture_output=True, text=True)
            if done.returncode != 0:
                row["error"] = (done.stderr.strip().splitlines() or ["failed"])[0]
                break
            result = json.loads(done.stdout.strip().splitlines()[-1])
            row["tensorc_min_ns"] = min(result["min_ns"], row.get("tensorc_min_ns", result["min_ns"]))
            fn = fn or make()
            t = time_numpy(fn, warmup, iters)
            row["numpy_min_ns"] = min(t, row.get("numpy_min_ns", t))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

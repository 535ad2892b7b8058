# The NumPy side of `cargo xtask bench`: the same ten workloads as
# ../shared/bench/*.nxir, written with NumPy, timed the same way (warm-up runs,
# then timed runs; median and minimum), one JSON object per line on stdout.
# xtask runs it in its own virtualenv with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE
# unset, twice: with OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) 1, then the
# core count, for this process only. Only the BLAS calls (the matmuls, the
# convolution's shifted matmuls) use more threads; NumPy's element-wise and
# reduction loops stay on one.
import json
import sys
import time

import numpy as np

rng = np.random.default_rng(0)


def f32(*shape):
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def softmax(x):
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=1, keepdims=True)


def layernorm(x):
    mu = x.sum(axis=1, keepdims=True) / np.float32(1024.0)
    d = x - mu
    var = (d * d).sum(axis=1, keepdims=True) / np.float32(1024.0)
    return d / np.sqrt(var + np.float32(1e-5))


def conv_same_nhwc(x, k):
    # 3x3 "same" convolution as nine shifted matmuls over the padded input.
    n, h, w, c = x.shape
    kh, kw, _, o = k.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h, w, o), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            out += p[:, i:i + h, j:j + w, :] @ k[i, j]
    return out


def workload(name):
    """Returns a zero-argument function computing workload `name`."""
    if name.startswith("w01"):
        a, b = f32(256, 256), f32(256, 256)
        return lambda: a @ b
    if name.startswith("w02"):
        a, b = f32(1024, 1024), f32(1024, 1024)
        return lambda: a @ b
    if name.startswith("w03"):
        a, b = f32(2048, 2048), f32(2048, 2048)
        return lambda: a @ b
    if name.startswith("w04"):
        a, b, c = f32(1 << 24), f32(1 << 24), f32(1 << 24)
        return lambda: np.tanh(a * b + c) * np.float32(0.5) + a
    if name.startswith("w05"):
        x = f32(4096, 1024)
        return lambda: softmax(x)
    if name.startswith("w06"):
        x, w, b = f32(256, 1024), f32(1024, 4096), f32(4096)
        return lambda: np.maximum(x @ w + b, np.float32(0.0))
    if name.startswith("w07"):
        x = f32(1 << 26)
        return lambda: x.sum()
    if name.startswith("w08"):
        x = f32(8192, 1024)
        return lambda: layernorm(x)
    if name.startswith("w09"):
        x, k = f32(1, 56, 56, 64), f32(3, 3, 64, 64)
        return lambda: conv_same_nhwc(x, k)
    if name.startswith("w10"):
        a, b = f32(64, 128, 64), f32(64, 64, 128)
        return lambda: a @ b
    return None


def main():
    warmup, iters = int(sys.argv[1]), int(sys.argv[2])
    for name in sys.argv[3:]:
        fn = workload(name)
        if fn is None:
            print(json.dumps({"name": name, "error": "no NumPy version"}), flush=True)
            continue
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(iters):
            t = time.perf_counter_ns()
            fn()
            times.append(time.perf_counter_ns() - t)
        times.sort()
        print(json.dumps({"name": name, "median_ns": times[len(times) // 2],
                          "min_ns": times[0]}), flush=True)


if __name__ == "__main__":
    main()

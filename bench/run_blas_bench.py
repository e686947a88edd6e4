#!/usr/bin/env python3
"""Which BLAS the CPU kernels should call (ops/blas.h): single-threaded
fp32 GEMM of Debian's OpenBLAS (libopenblas0-pthread, through ctypes) against
the PyPI wheel's MKL (torch.mm with one thread), on a square GEMM and the
117M config's training shapes (tokens x d_model x FFN, ... x vocabulary), in
one process. Prints GFLOP/s per shape and the OpenBLAS / MKL ratio.

Usage: .venv/bin/python bench/run_blas_bench.py [--repeats 5]
"""
import argparse
import ctypes
import json
import sys
import time

import torch

SHAPES = [(1024, 1024, 1024), (512, 768, 2048), (512, 2048, 768), (512, 768, 2304), (512, 768, 8192)]


def best_seconds(fn, repeats):
    fn()
    best = 1e30
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(1)
    blas = ctypes.CDLL("libopenblas.so.0")
    blas.openblas_set_num_threads(1)
    f = ctypes.c_float
    rows = []
    print(f"{'m x k x n':>18} {'OpenBLAS GF/s':>14} {'MKL GF/s':>9} {'ratio':>6}")
    for m, k, n in SHAPES:
        x, w, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)

        def openblas():  # row-major C = A B: CblasRowMajor=101, CblasNoTrans=111
            blas.cblas_sgemm(101, 111, 111, m, n, k, f(1.0), ctypes.c_void_p(x.data_ptr()), k,
                             ctypes.c_void_p(w.data_ptr()), n, f(0.0), ctypes.c_void_p(out.data_ptr()), n)

        def mkl():
            torch.mm(x, w, out=out)
        flops = 2.0 * m * k * n
        ob, mk = flops / best_seconds(openblas, a.repeats) / 1e9, flops / best_seconds(mkl, a.repeats) / 1e9
        openblas()
        if not torch.allclose(out, x @ w, rtol=1e-4, atol=1e-3):
            raise SystemExit("OpenBLAS and MKL disagree")
        rows.append({"shape": [m, k, n], "openblas_gflops": ob, "mkl_gflops": mk, "ratio": ob / mk})
        print(f"{f'{m} x {k} x {n}':>18} {ob:14.1f} {mk:9.1f} {ob / mk:5.2f}x")
    print(json.dumps({"torch": torch.__version__, "results": rows}))


if __name__ == "__main__":
    sys.exit(main())

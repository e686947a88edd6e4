#!/usr/bin/env python3
"""T5 throughput on the CPU: our code path (bench_eval / bench_train over a
T5 config.json: the op table's T5 ops) next to transformers' own
T5ForConditionalGeneration, eager and torch.compile, in the same run, on a
t5-v1.1-base-shaped config (bench/configs/t5-v1_1-base.json: d_model 768,
12+12 layers, 12 heads x 64, gated-GELU FFN 2048, vocabulary 32128).

Where the environment pins OpenBLAS's kernels (OPENBLAS_CORETYPE, set to
Haswell on these machines), ours also runs with the pin removed, so that
OpenBLAS picks the kernels of this CPU (Cooperlake's AVX-512 sgemm here:
about twice the pinned one); the peers' BLAS (the wheel's MKL) ignores it.

Usage: bench/run_t5_bench.py [--build build] [--iters 3] [--threads N] [--no-compile] [--modes eval,train]
"""
import argparse
import os
import sys

from throughput_common import HERE, ROOT, VENV_PYTHON, print_table, run_json

CONFIG = os.path.join(HERE, "configs", "t5-v1_1-base.json")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--python", default=VENV_PYTHON)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--modes", default="eval,train")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--enc", type=int, default=256)
    p.add_argument("--dec", type=int, default=128)
    a = p.parse_args()
    shape = ["--batch", str(a.batch), "--enc", str(a.enc), "--dec", str(a.dec), "--iters", str(a.iters)]
    rows = []
    for mode in a.modes.split(","):
        train = mode == "train"
        ours_cmd = [os.path.join(a.build, "bench", "bench_train" if train else "bench_eval"), "--config", CONFIG,
                    "--threads", str(a.threads), *shape]
        ours = [run_json(ours_cmd)]
        if os.environ.get("OPENBLAS_CORETYPE"):
            unpinned = run_json(ours_cmd, env={k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"})
            unpinned["impl"] += " OPENBLAS_CORETYPE unset"
            ours.append(unpinned)
        peer_runs = []
        for compiled in ([False, True] if not a.no_compile else [False]):
            # Eager at its better thread count (one ATen thread or all); the
            # compiled peer at all threads only (it compiles for ~8 minutes
            # per run on 2 cores).
            counts = [a.threads] if compiled else sorted({1, a.threads})
            runs = [run_json([a.python, os.path.join(HERE, "python", "hf_t5_forward.py"), "--config", CONFIG,
                              "--threads", str(t), *shape] + (["--train"] if train else []) +
                             (["--compile"] if compiled else [])) for t in counts]
            best = max(runs, key=lambda r: r["tokens_per_s"])
            best["impl"] += f" {best['threads']}T"
            peer_runs.append(best)
        rows.append((mode, ours, peer_runs))
    print_table(rows)


if __name__ == "__main__":
    sys.exit(main())

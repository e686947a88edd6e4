#!/usr/bin/env python3
"""Eval forward throughput: openba-eval's code path (bench_eval, C++) next to
the PyTorch-eager peer (python/eager_openba_forward.py, the released
modeling code's operations) on the same config, batch 8, encoder 256 /
decoder 128 tokens. Each reports achieved FLOP/s (reference section 6
count) as a fraction of a 4096^3 fp32 GEMM measured in its own process.

Usage: bench/run_eval_bench.py [--build build] [--iters 5] [--threads N]
"""
import argparse
import os
import sys

from throughput_common import CONFIGS, ROOT, VENV_PYTHON, peers, print_table, run_json


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--python", default=VENV_PYTHON, help="python with torch, for the peers (default: the project's .venv)")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile peer (it compiles for minutes)")
    p.add_argument("--configs", default="tiny,117M", help="comma-separated: tiny, 117M")
    a = p.parse_args()
    rows = []
    for name, path in [c for c in CONFIGS if c[0] in a.configs.split(",")]:
        ours = run_json([os.path.join(a.build, "bench", "bench_eval"), "--config", path, "--iters", str(a.iters),
                         "--threads", str(a.threads)])
        rows.append((name, [ours], peers(a.python, path, a.iters, False, a.threads, not a.no_compile)))
    print_table(rows)


if __name__ == "__main__":
    sys.exit(main())

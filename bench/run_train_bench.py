#!/usr/bin/env python3
"""Training throughput (forward + backward + AdamW step): openba-pretrain's
code path (bench_train, C++), with and without activation checkpointing,
next to the PyTorch-eager peer running the released modeling code's
operations with torch.optim.AdamW, on the same config, batch 8, encoder 256
/ decoder 128 tokens. Training FLOPs are 3x the reference section 6
forward count; each process measures its own 4096^3 fp32 GEMM rate.

Usage: bench/run_train_bench.py [--build build] [--iters 3] [--threads N]
"""
import argparse
import os
import sys

from throughput_common import CONFIGS, ROOT, VENV_PYTHON, peers, print_table, run_json


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--python", default=VENV_PYTHON, help="python with torch, for the peers (default: the project's .venv)")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile peer (it compiles for minutes)")
    p.add_argument("--configs", default="tiny,117M", help="comma-separated: tiny, 117M")
    a = p.parse_args()
    rows = []
    for name, path in [c for c in CONFIGS if c[0] in a.configs.split(",")]:
        base = [os.path.join(a.build, "bench", "bench_train"), "--config", path, "--iters", str(a.iters),
                "--threads", str(a.threads)]
        ours = run_json(base)
        recompute = run_json(base + ["--activation-checkpointing"])
        rows.append((name, [ours, recompute], peers(a.python, path, a.iters, True, a.threads, not a.no_compile)))
    print_table(rows)


if __name__ == "__main__":
    sys.exit(main())

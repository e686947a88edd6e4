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

from throughput_common import CONFIGS, ROOT, eager_peer, print_table, run_json


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--python", default="/usr/bin/python3", help="python with torch, for the eager peer")
    a = p.parse_args()
    rows = []
    for name, path in CONFIGS:
        base = [os.path.join(a.build, "bench", "bench_train"), "--config", path, "--iters", str(a.iters),
                "--threads", str(a.threads)]
        ours = run_json(base)
        recompute = run_json(base + ["--activation-checkpointing"])
        recompute["impl"] += " + checkpointing"
        rows.append((name, [ours, recompute], eager_peer(a.python, path, a.iters, train=True)))
    print_table(rows)


if __name__ == "__main__":
    sys.exit(main())

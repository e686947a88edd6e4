#!/usr/bin/env python3
"""Two builds of the project on the same machine in one run: the training
step (bench_train) and the forward (bench_eval) of each, interleaved round
by round so that drifting machine load hits both alike, with the ratio
after / before. For refactors that must not cost speed, and for measuring
one change (e.g. the CPU training cross-attention that computed q and kv
twice before 59676ca).

  bench/run_build_comparison.py --before OLD_BIN_DIR [--after build] [--rounds 3] [--configs 117M]

A BIN_DIR holds bench_train and bench_eval (a build tree's bench/ folder,
or a copy of those two binaries from an older commit).
"""
import argparse
import os
import statistics
import sys

from throughput_common import CONFIGS, ROOT, run_json


def bench_dir(path):
    sub = os.path.join(path, "bench")
    return sub if os.path.isfile(os.path.join(sub, "bench_train")) else path


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--before", required=True, help="folder with the older build's bench_train and bench_eval")
    p.add_argument("--after", default=os.path.join(ROOT, "build"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--configs", default="117M", help="comma-separated: tiny, 117M")
    a = p.parse_args()
    builds = {"before": bench_dir(a.before), "after": bench_dir(a.after)}
    for name, path in [c for c in CONFIGS if c[0] in a.configs.split(",")]:
        for tool in ("bench_train", "bench_eval"):
            rates = {k: [] for k in builds}
            for r in range(a.rounds):
                for k, d in builds.items():
                    out = run_json([os.path.join(d, tool), "--config", path, "--iters", str(a.iters),
                                    "--threads", str(a.threads)])
                    rates[k].append(out["tokens_per_s"])
                    print(f"  {name} {tool} round {r + 1} {k}: {out['tokens_per_s']:.1f} tokens/s", file=sys.stderr)
            best = {k: max(v) for k, v in rates.items()}
            median = {k: statistics.median(v) for k, v in rates.items()}
            print(f"{name:5s} {tool:12s} before {best['before']:8.1f}  after {best['after']:8.1f} tokens/s (best of "
                  f"{a.rounds});  after/before {best['after'] / best['before']:.3f} (medians "
                  f"{median['after'] / median['before']:.3f})")


if __name__ == "__main__":
    sys.exit(main())

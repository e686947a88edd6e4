#!/usr/bin/env python3
"""Distributed openba-pretrain on this machine (Gloo over loopback):

 1. optimizer-state and gradient bytes per rank for 1, 2, 4 ranks with ZeRO
    off / 1 / 2 (read from each run's train.log, after one step);
 2. at 2 ranks: seconds per step in communication vs compute, and the share of
    the gradient all-reduce hidden behind backward (overlap on), next to the
    same run with every collective started after backward (overlap off).

Models: the tiny demo model for (1); the 117M bench config, initialized with
the demo tokenizer, for (2). Data: the demo shards (built like the tests do).

Usage: bench/run_dist_bench.py [--build build] [--steps 6]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))

CONFIG = """
model:
  checkpoint: {base}
data:
  train:
    - shards: {train}
  seed: 3
ul2:
  encoder_tokens: 256
  decoder_tokens: 128
trainer:
  steps: {steps}
  micro_batch: 4
  global_batch: {batch}
  lr: 1.0e-4
  threads: 1
logging:
  every: 1
  tensorboard: false
"""


def pretrain(build, config, out, nproc, *sets):
    cmd = [os.path.join(build, "tools", "openba-pretrain"), "--config", config, "--out", out, "--quiet"]
    if nproc:
        cmd += ["--nproc", str(nproc)]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def state_line(out):
    with open(os.path.join(out, "train.log")) as f:
        for line in f:
            if line.startswith("optimizer:"):
                m = re.search(r"optimizer state (.+?), gradients (.+)$", line.strip())
                return m.group(1), m.group(2)
    return "?", "?"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--steps", type=int, default=6)
    a = p.parse_args()
    os.environ.setdefault("OPENBA_BUILD_DIR", a.build)
    from cli_support import demo_training_assets, json_lines
    assets = demo_training_assets()
    work = tempfile.mkdtemp(prefix="openba-dist-bench-")

    def config(base, steps, batch):
        path = os.path.join(work, f"train-{os.path.basename(base)}-{steps}-{batch}.yaml")
        with open(path, "w") as f:
            f.write(CONFIG.format(base=base, train=assets["train"], steps=steps, batch=batch))
        return path

    print("1. Per-rank memory after one step, tiny model (bytes per rank)")
    print(f"{'ranks':>5} {'ZeRO':>5} {'optimizer state':>16} {'gradients':>12}")
    tiny = config(assets["base"], 1, 16)
    for ranks in (1, 2, 4):
        for zero in (0, 1, 2):
            out = os.path.join(work, f"mem-{ranks}-{zero}")
            pretrain(a.build, tiny, out, ranks, f"distributed.zero={zero}", "distributed.bucket_mb=1")
            state, grads = state_line(out)
            print(f"{ranks:>5} {zero:>5} {state:>16} {grads:>12}")

    print("\n2. Two ranks, 117M config, batch 8 (micro 4 per rank), enc 256 / dec 128, Gloo on loopback")
    big = os.path.join(work, "117m")
    subprocess.run([os.path.join(a.build, "tools", "openba-init"), "--config",
                    os.path.join(HERE, "configs", "eval-117m.yaml"), "--tokenizer", assets["tokenizer"], "--out", big,
                    "--quiet"], check=True)
    cfg = config(big, a.steps, 8)
    print(f"{'overlap':>8} {'step s':>8} {'comm s':>8} {'exposed s':>10} {'compute s':>10} {'hidden':>7} {'tokens/s':>9}")
    for overlap in ("true", "false"):
        out = os.path.join(work, f"overlap-{overlap}")
        pretrain(a.build, cfg, out, 2, f"distributed.overlap={overlap}")
        with open(os.path.join(out, "metrics.jsonl")) as f:
            rows = [d for d in json_lines(f.read()) if "comm_s" in d][1:]  # the first step warms up
        mean = lambda k: sum(d[k] for d in rows) / len(rows)
        step, comm, exposed = mean("step_s"), mean("comm_s"), mean("comm_exposed_s")
        hidden = 1 - exposed / comm if comm > 0 else 0
        print(f"{overlap:>8} {step:8.3f} {comm:8.3f} {exposed:10.3f} {step - exposed:10.3f} {hidden:7.1%} "
              f"{mean('tokens_per_s'):9.0f}")
    print(f"\n(work files in {work})")


if __name__ == "__main__":
    sys.exit(main())

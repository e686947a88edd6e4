#!/usr/bin/env python3
"""Eval forward throughput: openba-eval's code path (bench_eval, C++) next to
the PyTorch-eager peer (python/eager_openba_forward.py, the released
modeling code's operations) on the same config, batch 8, encoder 256 /
decoder 128 tokens. Each reports achieved FLOP/s (reference section 6
count) as a fraction of a 4096^3 fp32 GEMM measured in its own process.

Usage: bench/run_eval_bench.py [--build build] [--iters 5] [--threads 0]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIGS = [("tiny", os.path.join(ROOT, "configs", "models", "tiny.yaml")),
           ("117M", os.path.join(HERE, "configs", "eval-117m.yaml"))]


def flat_yaml(path):
    out = {}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            out[key] = value
    return out


def run_json(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--python", default="/usr/bin/python3", help="python with torch, for the eager peer")
    a = p.parse_args()
    rows = []
    for name, path in CONFIGS:
        cfg = flat_yaml(path)
        ours = run_json([os.path.join(a.build, "bench", "bench_eval"), "--config", path, "--iters", str(a.iters),
                         "--threads", str(a.threads)])
        # The eager peer is given one ATen thread: with more, libgomp's spinning
        # threads slow its BLAS calls down (measured ~1.5x slower here).
        peer = run_json([a.python, os.path.join(HERE, "python", "eager_openba_forward.py"),
                         "--d", cfg["d_model"], "--heads", cfg["num_heads"], "--kv", cfg["kv_channels"],
                         "--ffn", cfg["ffn_hidden"], "--enc-layers", cfg["encoder_layers"],
                         "--dec-layers", cfg["decoder_layers"], "--vocab", cfg["vocab_size"],
                         "--iters", str(a.iters), "--threads", "1"])
        rows.append((name, ours, peer))
    print(f"{'config':6} {'impl':36} {'GEMM GF/s':>9} {'tokens/s':>9} {'model GF/s':>10} {'of GEMM':>8}")
    for name, ours, peer in rows:
        for r in (ours, peer):
            print(f"{name:6} {r['impl']:36} {r['gemm_gflops']:9.1f} {r['tokens_per_s']:9.0f} "
                  f"{r['model_gflops']:10.1f} {r['fraction_of_gemm']:8.1%}")
        print(f"{name:6} {'ratio (ours / eager)':36} {'':9} {ours['tokens_per_s'] / peer['tokens_per_s']:9.2f}x "
              f"{'':10} {ours['fraction_of_gemm'] / peer['fraction_of_gemm']:7.2f}x")
    print(json.dumps({"results": [{"config": n, "ours": o, "eager": e} for n, o, e in rows]}))


if __name__ == "__main__":
    sys.exit(main())

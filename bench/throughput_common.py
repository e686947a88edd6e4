"""Shared by run_eval_bench.py and run_train_bench.py: runs our C++ bench
binary and the PyTorch-eager peer on the same configs and prints one table
with the ratios taken in this run."""
import json
import os
import subprocess

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


def eager_peer(python, config_path, iters, train):
    """The eager peer gets one ATen thread: with more, libgomp's spinning
    threads slow its BLAS calls down (measured ~1.5x slower here)."""
    cfg = flat_yaml(config_path)
    cmd = [python, os.path.join(HERE, "python", "eager_openba_forward.py"),
           "--d", cfg["d_model"], "--heads", cfg["num_heads"], "--kv", cfg["kv_channels"],
           "--ffn", cfg["ffn_hidden"], "--enc-layers", cfg["encoder_layers"],
           "--dec-layers", cfg["decoder_layers"], "--vocab", cfg["vocab_size"],
           "--iters", str(iters), "--threads", "1"]
    return run_json(cmd + (["--train"] if train else []))


def print_table(rows):
    """rows: (config name, [our results...], eager result); ratios are each of
    ours against the eager peer of the same config."""
    print(f"{'config':6} {'impl':44} {'GEMM GF/s':>9} {'tokens/s':>9} {'model GF/s':>10} {'of GEMM':>8} {'peak RSS':>9}")
    for name, ours, peer in rows:
        for r in ours + [peer]:
            rss = r.get("peak_rss_bytes")
            print(f"{name:6} {r['impl']:44} {r['gemm_gflops']:9.1f} {r['tokens_per_s']:9.0f} "
                  f"{r['model_gflops']:10.1f} {r['fraction_of_gemm']:8.1%} "
                  f"{(f'{rss / 2**30:.2f} GiB' if rss else ''):>9}")
        for r in ours:
            print(f"{name:6} {'ratio (' + r['impl'] + ' / eager)':44} {'':9} "
                  f"{r['tokens_per_s'] / peer['tokens_per_s']:8.2f}x {'':10} "
                  f"{r['fraction_of_gemm'] / peer['fraction_of_gemm']:7.2f}x")
    print(json.dumps({"results": [{"config": n, "ours": o, "eager": e} for n, o, e in rows]}))

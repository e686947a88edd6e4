"""Shared by run_eval_bench.py and run_train_bench.py: runs our C++ bench
binary and the peers a user would pick instead (current PyTorch eager and
torch.compile, from the project's .venv) on the same configs and prints one
table with the ratios taken in this run."""
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
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


def run_json(cmd, env=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def eager_peer(python, config_path, iters, train, compile=False, threads=1):
    cfg = flat_yaml(config_path)
    cmd = [python, os.path.join(HERE, "python", "eager_openba_forward.py"),
           "--d", cfg["d_model"], "--heads", cfg["num_heads"], "--kv", cfg["kv_channels"],
           "--ffn", cfg["ffn_hidden"], "--enc-layers", cfg["encoder_layers"],
           "--dec-layers", cfg["decoder_layers"], "--vocab", cfg["vocab_size"],
           "--iters", str(iters), "--threads", str(threads)]
    return run_json(cmd + (["--train"] if train else []) + (["--compile"] if compile else []))


def peers(python, config_path, iters, train, threads, compile=True):
    """Eager and torch.compile, each at its better thread count: one ATen
    thread or all of them (with more than one, libgomp's spinning threads
    slowed 1.13's BLAS calls ~1.5x here; the wheel's MKL may differ)."""
    out = []
    for compiled in ([False, True] if compile else [False]):
        runs = [eager_peer(python, config_path, iters, train, compiled, t) for t in sorted({1, threads})]
        best = max(runs, key=lambda r: r["tokens_per_s"])
        best["impl"] += f" {best['threads']}T"
        out.append(best)
    return out


def print_table(rows):
    """rows: (config name, [our results...], [peer results...]); each of ours
    is divided by every peer of the same config and by the best of them."""
    print(f"{'config':6} {'impl':52} {'GEMM GF/s':>9} {'tokens/s':>9} {'model GF/s':>10} {'of GEMM':>8} {'peak RSS':>9}")
    for name, ours, peer_runs in rows:
        for r in ours + peer_runs:
            rss = r.get("peak_rss_bytes")
            print(f"{name:6} {r['impl']:52} {r['gemm_gflops']:9.1f} {r['tokens_per_s']:9.0f} "
                  f"{r['model_gflops']:10.1f} {r['fraction_of_gemm']:8.1%} "
                  f"{(f'{rss / 2**30:.2f} GiB' if rss else ''):>9}")
        best = max(peer_runs, key=lambda r: r["tokens_per_s"])
        for r in ours:
            for label, p in [(p["impl"], p) for p in peer_runs] + [("the best peer", best)]:
                print(f"{name:6} {('ratio: ' + r['impl'] + ' / ' + label)[:52]:52} {'':9} "
                      f"{r['tokens_per_s'] / p['tokens_per_s']:8.2f}x {'':10} "
                      f"{r['fraction_of_gemm'] / p['fraction_of_gemm']:7.2f}x")
    summary = []
    for n, o, e in rows:
        best = max(e, key=lambda r: r["tokens_per_s"])
        summary.append({"config": n, "ours": o, "peers": e,
                        "ratio_to_best_peer": [r["tokens_per_s"] / best["tokens_per_s"] for r in o]})
    print(json.dumps({"results": summary}))

#!/usr/bin/env python3
"""openba-compress on a >= 2 GB checkpoint, with ratios taken in one run:

  - peak RSS / checkpoint bytes of each stage (out of core: the target is <= 0.35);
  - surgery throughput (bytes written, and input bytes read, per second by the
    streaming surgery) next to a plain copy of the same checkpoint files (cp)
    in the same run;
  - calibration tokens/s of the blockwise scoring pass (angular layer scores
    and activation width scores), next to the model's size.

The checkpoint (bench/configs/open-3g.yaml with the demo tokenizer, ~3 GB in
f32) and the demo shards are created in --dir unless already there.

Usage: bench/run_compress_bench.py [--build build] [--dir /tmp/openba-compress-bench] [--calib-samples 8]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def timed(cmd):
    """Wall seconds and peak RSS (bytes) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss * 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--dir", default="/tmp/openba-compress-bench")
    p.add_argument("--calib-samples", default="8")
    a = p.parse_args()
    tools = os.path.join(a.build, "tools")
    os.makedirs(a.dir, exist_ok=True)
    corpus, tok, shards = (os.path.join(a.dir, x) for x in ("corpus", "tokenizer", "shards"))
    if not os.path.isdir(shards):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "prepare_demo_corpus.py"), corpus], check=True)
        subprocess.run([os.path.join(tools, "openba-tokenize"), "train", "--input", f"{corpus}/train/en.txt",
                        f"{corpus}/train/zh.txt", "--vocab-size", "8000", "--out", tok, "--force"], check=True)
        subprocess.run([os.path.join(tools, "openba-tokenize"), "encode", "--tokenizer", tok, "--out", shards,
                        "--quiet", "--force", "--input", f"{corpus}/heldout/en.txt", f"{corpus}/heldout/zh.txt"],
                       check=True)
    model = os.path.join(a.dir, "model")
    if not os.path.isdir(model):
        subprocess.run([os.path.join(tools, "openba-init"), "--config", os.path.join(HERE, "configs", "open-3g.yaml"),
                        "--tokenizer", tok, "--out", model, "--quiet"], check=True)
    files = [os.path.join(model, f) for f in sorted(os.listdir(model)) if f.endswith(".safetensors")]
    size = sum(os.path.getsize(f) for f in files)
    print(f"checkpoint: {size / 1e9:.2f} GB in {len(files)} file(s)")

    # A plain copy of the same files (warm page cache, like the stages below).
    copy_dir = os.path.join(a.dir, "copy")
    shutil.rmtree(copy_dir, ignore_errors=True)
    os.makedirs(copy_dir)
    timed(["cat", *files])
    cp_s, _ = timed(["cp", *files, copy_dir])
    shutil.rmtree(copy_dir)
    cp_rate = size / cp_s
    print(f"plain copy (cp): {cp_s:.2f} s, {cp_rate / 1e9:.3f} GB/s")

    data = ["--calib", shards, "--calib-samples", a.calib_samples, "--encoder-tokens", "256",
            "--decoder-tokens", "128", "--quiet", "--force", "--shard-size", "2GB"]
    runs = [
        ("layer, explicit lists (pure streaming copy)", ["--stage", "layer", "--drop-encoder-layers", "1,4",
                                                          "--drop-decoder-layers", "3,9,15"]),
        ("layer, angular scores", ["--stage", "layer", "--keep-encoder-layers", "5", "--keep-decoder-layers", "15",
                                   "--score", "angular", *data]),
        ("neuron, magnitude scores", ["--stage", "neuron", "--ffn", "2048", "--heads", "8", "--hidden", "1024",
                                      "--score", "magnitude"]),
        ("neuron, activation scores", ["--stage", "neuron", "--ffn", "2048", "--heads", "8", "--hidden", "1024",
                                       "--score", "activation", *data]),
    ]
    results = {"checkpoint_bytes": size, "copy_gb_per_s": cp_rate / 1e9, "stages": []}
    out = os.path.join(a.dir, "out")
    for label, args in runs:
        wall, rss = timed([os.path.join(tools, "openba-compress"), "--model", model, "--out", out, "--force", "--quiet",
                           *args])
        report = json.load(open(os.path.join(out, "report.json")))
        s = report["surgery"]
        entry = {"stage": label, "wall_s": wall, "peak_rss_bytes": rss, "peak_rss_over_checkpoint": rss / size,
                 "surgery_gb_per_s": s["gb_per_s"], "surgery_over_copy": s["gb_per_s"] * 1e9 / cp_rate,
                 "surgery_input_gb_per_s": s["input_gb_per_s"], "surgery_input_over_copy": s["input_gb_per_s"] * 1e9 / cp_rate}
        line = (f"{label}: wall {wall:.1f} s; peak RSS {rss / 2**20:.0f} MiB = {rss / size:.3f} of the checkpoint; "
                f"surgery writes {s['gb_per_s']:.3f} GB/s = {entry['surgery_over_copy']:.2f} x cp, "
                f"reads the input at {s['input_gb_per_s']:.3f} GB/s = {entry['surgery_input_over_copy']:.2f} x cp")
        if "calibration" in report:
            c = report["calibration"]
            entry["calibration_tokens_per_s"] = c["tokens_per_s"]
            line += f"; calibration {c['tokens']} tokens at {c['tokens_per_s']:.0f} tokens/s"
        print(line, flush=True)
        results["stages"].append(entry)
        shutil.rmtree(out)
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())

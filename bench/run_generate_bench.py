#!/usr/bin/env python3
"""Greedy generation speed on the CPU: openba-generate (incremental
decoding: the encoder once, cross-attention keys and values once, self
caches preallocated) next to transformers' own T5 generate and next to our
own decode without the cache, in the same run, on a t5-v1.1-small-shaped
model (bench/configs/t5-v1_1-small.json: d_model 512, 8+8 layers, 6 heads x
64, gated-GELU 1024, vocabulary 32128) with random weights whose </s> row is
zeroed, so that every input generates exactly --max-new-tokens tokens.

Rates are new tokens per second of the generation loop (model loading
excluded on both sides: ours from openba-generate's own timing line,
transformers' around its generate calls after a warm-up call). Both sides'
tokens are compared too: they should agree.

Where the environment pins OpenBLAS (OPENBLAS_CORETYPE, Haswell on these
machines), ours also runs with the pin removed (see bench/run_t5_bench.py).

Usage: bench/run_generate_bench.py [--build build] [--threads N] [--max-new-tokens 128]
                                   [--batches 1,32] [--batch1-inputs 4] [--no-cache-batches 1]
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile

from throughput_common import HERE, ROOT, VENV_PYTHON

CONFIG = os.path.join(HERE, "configs", "t5-v1_1-small.json")
PEER = os.path.join(HERE, "python", "hf_t5_generate.py")


def ours(build, model, inputs, batch, new_tokens, threads, no_cache=False, env=None):
    cmd = [os.path.join(build, "tools", "openba-generate"), "--model", model, "--input", inputs, "--batch-size",
           str(batch), "--max-new-tokens", str(new_tokens), "--threads", str(threads)]
    if no_cache:
        cmd.append("--no-cache")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    m = re.search(r"(\d+) new tokens in ([0-9.]+) s", proc.stderr)
    outputs = [json.loads(line)["output_ids"] for line in proc.stdout.splitlines() if line.strip()]
    return {"new_tokens": int(m.group(1)), "seconds": float(m.group(2)),
            "tokens_per_s": int(m.group(1)) / float(m.group(2)), "outputs": outputs}


def peer(python, model, inputs, batch, new_tokens, threads, no_cache=False):
    cmd = [python, PEER, "run", model, inputs, "--batch", str(batch), "--max-new-tokens", str(new_tokens),
           "--threads", str(threads)] + (["--no-cache"] if no_cache else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--python", default=VENV_PYTHON)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--batch1-inputs", type=int, default=4, help="inputs generated one at a time at batch 1")
    p.add_argument("--no-cache-batches", default="1", help="batches at which our no-cache decode also runs")
    p.add_argument("--input-length", type=int, default=64)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="generate-bench-")
    model = os.path.join(work, "model")
    subprocess.run([a.python, PEER, "make", model, "--config", CONFIG], check=True)
    rng = random.Random(0)
    results = []
    print(f"{'batch':>5} {'impl':44} {'new tokens':>10} {'seconds':>8} {'tokens/s':>9}  same tokens as transformers")
    for batch in (int(b) for b in a.batches.split(",")):
        n = a.batch1_inputs if batch == 1 else batch
        inputs = os.path.join(work, f"inputs-{batch}.jsonl")
        with open(inputs, "w") as f:
            for _ in range(n):
                f.write(json.dumps({"input_ids": [rng.randrange(2, 32000) for _ in range(a.input_length)] + [1]}) + "\n")
        theirs = peer(a.python, model, inputs, batch, a.max_new_tokens, a.threads)
        runs = [("openba-generate", ours(a.build, model, inputs, batch, a.max_new_tokens, a.threads))]
        if os.environ.get("OPENBLAS_CORETYPE"):
            env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
            runs.append(("openba-generate, OPENBLAS_CORETYPE unset",
                         ours(a.build, model, inputs, batch, a.max_new_tokens, a.threads, env=env)))
        if str(batch) in a.no_cache_batches.split(","):
            runs.append(("openba-generate --no-cache",
                         ours(a.build, model, inputs, batch, a.max_new_tokens, a.threads, no_cache=True)))
        row = {"batch": batch, "inputs": n, "transformers": {k: v for k, v in theirs.items() if k != "outputs"}}
        for name, r in [("transformers generate", theirs)] + runs:
            same = sum(x == y for x, y in zip(r["outputs"], theirs["outputs"]))
            print(f"{batch:5} {name:44} {r['new_tokens']:10} {r['seconds']:8.2f} {r['tokens_per_s']:9.1f}  {same}/{n}")
        cached = runs[0][1]
        for name, r in runs:
            print(f"{batch:5} {('ratio: ' + name + ' / transformers'):44} {'':10} {'':8} "
                  f"{r['tokens_per_s'] / theirs['tokens_per_s']:8.2f}x")
            row[name] = {"tokens_per_s": r["tokens_per_s"], "seconds": r["seconds"],
                         "ratio_to_transformers": r["tokens_per_s"] / theirs["tokens_per_s"],
                         "same_tokens": sum(x == y for x, y in zip(r["outputs"], theirs["outputs"]))}
            if name.endswith("--no-cache"):
                print(f"{batch:5} {'ratio: cache / no cache':44} {'':10} {'':8} "
                      f"{cached['tokens_per_s'] / r['tokens_per_s']:8.2f}x")
                row["cache_over_no_cache"] = cached["tokens_per_s"] / r["tokens_per_s"]
        results.append(row)
    print(json.dumps({"config": os.path.basename(CONFIG), "max_new_tokens": a.max_new_tokens, "threads": a.threads,
                      "results": results}))


if __name__ == "__main__":
    sys.exit(main())

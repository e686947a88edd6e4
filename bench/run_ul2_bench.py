#!/usr/bin/env python3
"""UL2 example generation against the trainer's consumption, in one run:
bench_ul2 produces examples 0..N-1 of the stream (OpenBA's seven denoisers)
on one core, at the reference budgets 570/381 and at 256/128; bench_train
measures what the trainer consumes on all cores for the tiny model (the
fastest consumer we have) and the ~117M config at batch 8, 256/128. The
ratio is generation tokens/s on ONE core over trainer tokens/s on ALL cores.

Data: the demo corpus -> tokenizer (8,000 pieces) -> shards, built in --work
unless present.

Usage: bench/run_ul2_bench.py [--build build] [--work /tmp/openba-ul2-bench]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from throughput_common import CONFIGS, run_json  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--work", default="/tmp/openba-ul2-bench")
    a = p.parse_args()
    tool = os.path.join(a.build, "tools", "openba-tokenize")
    corpus, tokenizer, shards = (os.path.join(a.work, n) for n in ("corpus", "tokenizer", "shards"))
    train = [os.path.join(corpus, "train", f) for f in ("en.txt", "zh.txt")]
    if not os.path.isdir(corpus):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "prepare_demo_corpus.py"), corpus], check=True)
    if not os.path.isdir(tokenizer):
        subprocess.run([tool, "train", "--input", *train, "--vocab-size", "8000", "--out", tokenizer], check=True)
    if not os.path.isdir(shards):
        subprocess.run([tool, "encode", "--tokenizer", tokenizer, "--input", *train, "--out", shards, "--quiet"],
                       check=True)
    gen = {}
    for enc, dec in ((570, 381), (256, 128)):
        gen[(enc, dec)] = run_json([os.path.join(a.build, "bench", "bench_ul2"), "--shards", shards,
                                    "--tokenizer", tokenizer, "--enc", str(enc), "--dec", str(dec)])
    train_rates = {name: run_json([os.path.join(a.build, "bench", "bench_train"), "--config", path,
                                   "--iters", "2"])
                   for name, path in CONFIGS}
    print(f"{'UL2 generation, 1 core':28} {'examples/s':>11} {'tokens/s':>12} {'budget unused':>13}")
    for (enc, dec), g in gen.items():
        print(f"{'budgets ' + str(enc) + '/' + str(dec):28} {g['examples_per_s']:11.0f} {g['tokens_per_s']:12.0f} "
              f"{g['padding_fraction']:13.1%}")
    g = gen[(256, 128)]
    print(f"{'trainer, all cores':28} {'tokens/s':>11} {'generation / consumption':>26}")
    for name, t in train_rates.items():
        print(f"{name:28} {t['tokens_per_s']:11.0f} {g['tokens_per_s'] / t['tokens_per_s']:25.0f}x")
    print(json.dumps({"generation": [dict(v) for v in gen.values()], "trainer": train_rates}))


if __name__ == "__main__":
    sys.exit(main())

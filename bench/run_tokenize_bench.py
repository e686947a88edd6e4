#!/usr/bin/env python3
"""Tokenizer and shard figures, measured in one run:
- encode throughput (MB/s of text, tokens/s) of `openba-tokenize encode` at 1
  thread and at all threads next to Debian's `spm_encode --output_format=id`
  on the same file and model; the ids must be identical (checked);
- shard reading: random document access and random token ranges against a
  sequential pass (bench_shards).
The corpus is the demo corpus (scripts/prepare_demo_corpus.py) repeated
--repeat times, one document per line (spm_encode's unit).

Usage: bench/run_tokenize_bench.py [--build build] [--work /tmp/openba-tokenize-bench] [--repeat 4]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def best_of(n, cmd, **kw):
    best = 1e30
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, **kw)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--work", default="/tmp/openba-tokenize-bench")
    p.add_argument("--repeat", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    tool = os.path.join(a.build, "tools", "openba-tokenize")
    os.makedirs(a.work, exist_ok=True)
    corpus = os.path.join(a.work, "corpus")
    if not os.path.isdir(corpus):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "prepare_demo_corpus.py"), corpus], check=True)
    tokenizer = os.path.join(a.work, "tokenizer")
    train = [os.path.join(corpus, "train", f) for f in ("en.txt", "zh.txt")]
    if not os.path.isdir(tokenizer):
        subprocess.run([tool, "train", "--input", *train, "--vocab-size", "8000", "--out", tokenizer], check=True)
    text = os.path.join(a.work, "bench.txt")
    with open(text, "w", encoding="utf-8") as out:
        for _ in range(a.repeat):
            for path in train:
                with open(path, encoding="utf-8") as f:
                    out.write(f.read())
    size = os.path.getsize(text)
    model = os.path.join(tokenizer, "spiece.model")
    spm_out = os.path.join(a.work, "spm_ids.txt")
    with open(text, "rb") as fin, open(spm_out, "wb") as fout:
        spm = best_of(1, ["spm_encode", "--model", model, "--output_format=id"], stdin=fin, stdout=fout)
    spm = min(spm, best_of(a.runs - 1, ["sh", "-c", f"spm_encode --model {model} --output_format=id < {text} > {spm_out}"]))
    shards = os.path.join(a.work, "shards")
    threads = os.cpu_count() or 1
    ours = {}
    for t in sorted({1, threads}):
        ours[t] = best_of(a.runs, [tool, "--threads", str(t), "encode", "--tokenizer", tokenizer, "--input", text,
                                   "--split", "line", "--out", shards, "--force", "--quiet"], stdout=subprocess.DEVNULL)
    # Identical ids: spm_encode prints one line per input line (empty lines
    # too); our shards skip empty documents.
    with open(spm_out) as f:
        expected = [line for line in f.read().split("\n") if line]
    dumped = subprocess.run([tool, "dump", shards, "--count", "0"], check=True, capture_output=True, text=True).stdout
    got = dumped.split("\n")[:-1]
    identical = got == expected
    manifest = json.load(open(os.path.join(shards, "manifest.json")))
    tokens = manifest["tokens"]
    print(f"input: {size / 1e6:.1f} MB, {manifest['documents']} documents, {tokens} tokens; ids identical to spm_encode: {identical}")
    print(f"{'encoder':28} {'seconds':>8} {'MB/s':>7} {'tokens/s':>10} {'vs spm_encode':>13}")
    print(f"{'spm_encode --output_format=id':28} {spm:8.3f} {size / spm / 1e6:7.2f} {tokens / spm:10.0f} {1.0:12.2f}x")
    for t, s in ours.items():
        print(f"{'openba-tokenize, ' + str(t) + ' thread(s)':28} {s:8.3f} {size / s / 1e6:7.2f} {tokens / s:10.0f} {spm / s:12.2f}x")
    reads = json.loads(subprocess.run([os.path.join(a.build, "bench", "bench_shards"), shards], check=True,
                                      capture_output=True, text=True).stdout)
    print(f"shard reads: sequential {reads['sequential_tokens_per_s'] / 1e6:.1f} M tokens/s, random documents "
          f"{reads['random_document_tokens_per_s'] / 1e6:.1f} M tokens/s ({reads['random_over_sequential']:.2f}x), "
          f"random 512-token ranges {reads['random_range_tokens_per_s'] / 1e6:.1f} M tokens/s")
    print(json.dumps({"bytes": size, "tokens": tokens, "identical": identical, "spm_encode_s": spm,
                      "ours_s": ours, "shard_reads": reads}))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())

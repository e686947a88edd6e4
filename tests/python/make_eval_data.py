#!/usr/bin/env python3
"""Writes a JSONL eval file of random examples with varied lengths (so
batches need padding), some -100 labels, and one example with no counted
target: make_eval_data.py OUT.jsonl VOCAB N SEED."""
import json
import random
import sys

out, vocab, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
with open(out, "w") as f:
    for i in range(n):
        enc = [rng.randrange(3, vocab) for _ in range(rng.randint(1, 40))]
        dec = [rng.randrange(3, vocab) for _ in range(rng.randint(1, 20))] + [1]
        if i % 4 == 1:  # ignored positions inside the target
            for j in range(0, len(dec), 3):
                dec[j] = -100
        if i == 5:
            dec = [-100] * len(dec)
        f.write(json.dumps({"input_ids": enc + [1], "labels": dec}) + "\n")

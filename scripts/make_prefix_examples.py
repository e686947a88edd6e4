#!/usr/bin/env python3
"""Turns documents printed by `openba-tokenize dump` (ids per line) into
openba-eval examples: the document's first tokens as the encoder input, the
tokens that follow as the target, each ending with </s> (id 1). A simple
held-out task until UL2 examples exist (openba-pretrain --preview).

Usage: openba-tokenize dump SHARDS --count 0 | make_prefix_examples.py OUT.jsonl [MAX_INPUT] [MAX_TARGET]
"""
import json
import sys

EOS = 1


def main():
    out = sys.argv[1]
    max_input = int(sys.argv[2]) if len(sys.argv) > 2 else 192
    max_target = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    written = 0
    with open(out, "w") as f:
        for line in sys.stdin:
            ids = [int(t) for t in line.split()]
            if len(ids) < 8:
                continue
            cut = min(len(ids) // 2, max_input)
            target = ids[cut:cut + max_target]
            f.write(json.dumps({"input_ids": ids[:cut] + [EOS], "labels": target + [EOS]}) + "\n")
            written += 1
    print(f"{written} examples written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

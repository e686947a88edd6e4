#!/usr/bin/env python3
"""The peer a T5 user runs instead of openba-generate: transformers' own
T5ForConditionalGeneration.generate.

  hf_t5_generate.py make OUT_DIR --config CONFIG.json [--seed N]
      A random-weight model of the config written with save_pretrained; the
      output row of </s> is zeroed so that every generation runs to
      max_new_tokens (both sides then generate the same number of tokens).
  hf_t5_generate.py run MODEL_DIR INPUTS.jsonl --batch B --max-new-tokens N --threads T [--no-cache]
      Greedy generation of the inputs in batches of B (padded as the
      tokenizer pads: right, attention mask); prints one JSON line with the
      generation loop's time and rate (loading excluded) and every output.
"""
import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
import torch  # noqa: E402
from transformers import T5Config, T5ForConditionalGeneration  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()


def make(args):
    config = T5Config.from_pretrained(args.config)
    torch.manual_seed(args.seed)
    model = T5ForConditionalGeneration(config).eval()
    with torch.no_grad():
        model.get_output_embeddings().weight[config.eos_token_id].zero_()
    model.save_pretrained(args.out)


def run(args):
    torch.set_num_threads(args.threads)
    model = T5ForConditionalGeneration.from_pretrained(args.model, torch_dtype=torch.float32).eval()
    inputs = [json.loads(line)["input_ids"] for line in open(args.inputs) if line.strip()]
    outputs, new_tokens = [], 0
    with torch.inference_mode():
        # One warm-up batch (first-call allocations), not timed.
        model.generate(input_ids=torch.tensor([inputs[0]]), max_new_tokens=4, do_sample=False)
        start = time.perf_counter()
        for b in range(0, len(inputs), args.batch):
            batch = inputs[b:b + args.batch]
            longest = max(len(x) for x in batch)
            ids = torch.tensor([x + [0] * (longest - len(x)) for x in batch])
            mask = torch.tensor([[1] * len(x) + [0] * (longest - len(x)) for x in batch])
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.max_new_tokens,
                                 do_sample=False, num_beams=1, use_cache=not args.no_cache)
            for row in out.tolist():
                row = row[1:]
                if 1 in row:
                    row = row[:row.index(1) + 1]
                outputs.append(row)
                new_tokens += len(row)
        seconds = time.perf_counter() - start
    print(json.dumps({"impl": "transformers generate" + (" no cache" if args.no_cache else ""),
                      "threads": args.threads, "batch": args.batch, "new_tokens": new_tokens,
                      "seconds": seconds, "tokens_per_s": new_tokens / seconds, "outputs": outputs}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--config", required=True)
    m.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("model")
    r.add_argument("inputs")
    r.add_argument("--batch", type=int, default=1)
    r.add_argument("--max-new-tokens", type=int, default=128)
    r.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    r.add_argument("--no-cache", action="store_true")
    args = p.parse_args()
    {"make": make, "run": run}[args.command](args)


if __name__ == "__main__":
    main()

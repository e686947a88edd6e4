#!/usr/bin/env python3
"""transformers' own T5 as the reference for our T5 family.

  t5_reference.py make OUT_DIR VARIANT [--format safetensors|bin] [--shard-size SIZE] [--seed N]
      Builds a random-weight T5ForConditionalGeneration from a small config of
      VARIANT and writes it with save_pretrained (safetensors drops the tied
      names; .bin is torch.save with shared storage; SIZE shards it).
  t5_reference.py tokenizer SPIECE_MODEL OUT_DIR
      Writes a T5 tokenizer directory (T5Tokenizer's save_pretrained: 100
      sentinels counting down from the last id) over a SentencePiece model.
  t5_reference.py encode TOKENIZER_DIR TEXT_FILE
      Prints, per line, the ids transformers' T5Tokenizer gives it (no </s>).
  t5_reference.py drop CHECKPOINT_DIR OUT_DIR --encoder I,J --decoder K
      Removes blocks by hand from the transformers model (the stack's
      relative-bias table moves to the new first block) and saves it.
  t5_reference.py prune CHECKPOINT_DIR REPORT.json OUT_DIR
      Slices the rows/columns of the units openba-compress --stage neuron kept
      (its report's "kept") out of the transformers state dict by hand, loads
      them into a model of the smaller config and saves it.
  t5_reference.py eval CHECKPOINT_DIR DATA.jsonl
      Loads CHECKPOINT_DIR with T5ForConditionalGeneration.from_pretrained and
      prints, per example (one at a time, no padding), the mean NLL of its
      counted labels and their count as openba-eval does, then a summary line.
  t5_reference.py generate CHECKPOINT_DIR INPUTS.jsonl [--max-new-tokens N] [--beams K] [--length-penalty P]
      transformers' generate, one input at a time: greedy, or beam search
      with K beams; prints {"output_ids": [...]} per input (the ids after the
      decoder start, up to and including </s>).

Variants (small, CPU-fast shapes of the real families):
  v1_0   T5 v1.0: relu MLP, tied embedding (decoder output scaled by d_model^-0.5)
  v1_1   T5 v1.1 / Flan-T5: gated-gelu (gelu_new), untied lm_head
  mt5    mT5: gated-gelu, untied, the 250112-row vocabulary
  ul2    UL2: gated-silu, untied, d_kv independent of d_model / heads
  stale  v1_0 with the old decoder.block.0.layer.1.EncDecAttention.relative_attention_bias key
"""
import argparse
import json
import math
import os
import sys

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
from transformers import T5Config, T5ForConditionalGeneration  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()

BASE = dict(d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3, num_heads=4,
            relative_attention_num_buckets=8, relative_attention_max_distance=20, dropout_rate=0.0,
            layer_norm_epsilon=1e-6, vocab_size=512, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
VARIANTS = {
    "v1_0": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    "v1_1": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    "mt5": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, vocab_size=250112, model_type="mt5"),
    "ul2": dict(feed_forward_proj="gated-silu", tie_word_embeddings=False, d_kv=12, num_heads=3),
    "stale": dict(feed_forward_proj="relu", tie_word_embeddings=True),
}


def make(args):
    settings = {**BASE, **VARIANTS[args.variant]}
    if args.vocab_size:
        settings["vocab_size"] = args.vocab_size
    model_type = settings.pop("model_type", "t5")
    if model_type == "mt5":
        from transformers import MT5Config, MT5ForConditionalGeneration
        config, cls = MT5Config(**settings), MT5ForConditionalGeneration
    else:
        config, cls = T5Config(**settings), T5ForConditionalGeneration
    torch.manual_seed(args.seed)
    model = cls(config).eval()
    # Random weights of a trained model's scale: the norms and the bias
    # tables away from their init so that every parameter matters.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.uniform_(0.5, 1.5)
            elif "relative_attention_bias" in name:
                p.normal_(0, 1.0)
        if args.eos_scale != 1.0:  # </s> likelier: generations that end
            model.get_output_embeddings().weight[config.eos_token_id] *= args.eos_scale
    if args.dtype != "fp32":
        model = model.to({"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype])
    kwargs = {"safe_serialization": args.format == "safetensors"}
    if args.shard_size:
        kwargs["max_shard_size"] = args.shard_size
    model.save_pretrained(args.out, **kwargs)
    if args.tokenizer:
        tokenizer_class().from_pretrained(args.tokenizer).save_pretrained(args.out)
    if args.variant == "stale":
        from safetensors.torch import load_file, save_file
        path = os.path.join(args.out, "model.safetensors")
        tensors = load_file(path)
        tensors["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = torch.randn(
            config.relative_attention_num_buckets, config.num_heads)
        save_file(tensors, path, metadata={"format": "pt"})


def tokenizer_class():
    from transformers import T5Tokenizer
    return T5Tokenizer


def tokenizer(args):
    tokenizer_class()(vocab_file=args.spiece, extra_ids=100, legacy=True).save_pretrained(args.out)


def encode(args):
    tok = tokenizer_class().from_pretrained(args.tokenizer, legacy=True)
    with open(args.text, encoding="utf-8") as f:
        for line in f:
            print(json.dumps(tok(line.rstrip("\n"), add_special_tokens=False).input_ids))


def load(path):
    return T5ForConditionalGeneration.from_pretrained(path, torch_dtype=torch.float32).eval()


def indices(text):
    return [int(x) for x in text.split(",") if x != ""]


def drop(args):
    model = load(args.checkpoint)
    for stack, dropped, key in ((model.encoder, indices(args.encoder), "num_layers"),
                                (model.decoder, indices(args.decoder), "num_decoder_layers")):
        table = stack.block[0].layer[0].SelfAttention.relative_attention_bias
        kept = [b for i, b in enumerate(stack.block) if i not in dropped]
        first = kept[0].layer[0].SelfAttention
        first.relative_attention_bias, first.has_relative_attention_bias = table, True
        stack.block = torch.nn.ModuleList(kept)
        setattr(model.config, key, len(kept))
    model.save_pretrained(args.out)
    load(args.out)  # loads strictly as saved


def prune(args):
    model = load(args.checkpoint)
    with open(args.report) as f:
        kept = json.load(f)["kept"]
    c = model.config
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    hidden = torch.tensor(kept["hidden"])
    kv = c.d_kv

    def head_rows(heads):
        return torch.tensor([h * kv + i for h in heads for i in range(kv)], dtype=torch.long)

    out = {}
    for name, t in sd.items():
        parts = name.split(".")
        if name in ("shared.weight", "lm_head.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
            out[name] = t[:, hidden]
            continue
        if name.endswith("layer_norm.weight"):
            out[name] = t[hidden]
            continue
        stack, layer = parts[0], int(parts[2])
        dec = stack == "decoder"
        if "SelfAttention" in name or "EncDecAttention" in name:
            heads = (kept["decoder_cross_heads"][layer] if "EncDecAttention" in name
                     else kept["decoder_heads" if dec else "encoder_heads"][layer])
            rows = head_rows(heads)
            if parts[-2] in ("q", "k", "v"):
                t = t[rows][:, hidden]
            elif parts[-2] == "o":
                t = t[hidden][:, rows]
            else:  # relative_attention_bias [buckets, H]
                t = t[:, torch.tensor(heads)]
        elif "DenseReluDense" in name:
            neurons = torch.tensor(kept["decoder_ffn" if dec else "encoder_ffn"][layer])
            t = t[hidden][:, neurons] if parts[-2] == "wo" else t[neurons][:, hidden]
        out[name] = t.contiguous()
    c.d_model = len(kept["hidden"])
    c.num_heads = len(kept["encoder_heads"][0])
    c.d_ff = len(kept["encoder_ffn"][0])
    small = T5ForConditionalGeneration(c).eval()
    small.load_state_dict(out, strict=True)
    small.save_pretrained(args.out)


def evaluate(args):
    model = load(args.checkpoint)
    total, tokens, n = 0.0, 0, 0
    with open(args.data) as f, torch.no_grad():
        for line in f:
            if not line.strip():
                continue
            ex = json.loads(line)
            ids = torch.tensor([ex["input_ids"]])
            labels = torch.tensor([ex["labels"]])
            logits = model(input_ids=ids, labels=labels).logits.float()
            nll = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1),
                                                    ignore_index=-100, reduction="sum").item()
            count = int((labels != -100).sum())
            print(json.dumps({"loss": nll / count if count else None, "tokens": count}))
            total += nll
            tokens += count
            n += 1
    print(json.dumps({"summary": True, "examples": n, "tokens": tokens,
                      "loss": total / tokens if tokens else None}))


def task(args):
    """Multiple-choice scores as transformers computes them: each choice's
    summed log-likelihood after the context and the item's decoder prefix
    (default: the decoder start), one line per item."""
    model = load(args.checkpoint)
    with open(args.data) as f, torch.no_grad():
        for line in f:
            if not line.strip():
                continue
            item = json.loads(line)
            ids = torch.tensor([item["context_ids"]])
            prefix = item.get("decoder_prefix_ids", [model.config.decoder_start_token_id])
            scores = []
            for choice in item["choice_ids"]:
                # The decoder reads the prefix, then the choice; only the choice is scored.
                decoder_input = torch.tensor([prefix + choice[:-1]])
                logits = model(input_ids=ids, decoder_input_ids=decoder_input).logits.float()[0, len(prefix) - 1:]
                scores.append(torch.log_softmax(logits, -1).gather(1, torch.tensor(choice).view(-1, 1)).sum().item())
            print(json.dumps({"scores": scores}))


def generate(args):
    from transformers import DynamicCache, EncoderDecoderCache
    model = load(args.checkpoint)
    eos = model.config.eos_token_id
    with open(args.data) as f, torch.no_grad():
        for line in f:
            if not line.strip():
                continue
            ids = torch.tensor([json.loads(line)["input_ids"]])
            # Caches that grow per layer: the one generate builds from the config
            # has num_layers (the encoder's) layers, too few for a deeper decoder.
            cache = None if args.no_cache else EncoderDecoderCache(DynamicCache(), DynamicCache())
            out = model.generate(past_key_values=cache, input_ids=ids, max_new_tokens=args.max_new_tokens, num_beams=args.beams,
                                 min_new_tokens=args.min_new_tokens,
                                 do_sample=False, length_penalty=args.length_penalty,
                                 use_cache=not args.no_cache)[0].tolist()[1:]
            if eos in out:
                out = out[:out.index(eos) + 1]
            print(json.dumps({"output_ids": out}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("variant", choices=sorted(VARIANTS))
    m.add_argument("--format", choices=["safetensors", "bin"], default="safetensors")
    m.add_argument("--shard-size")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--vocab-size", type=int, help="embedding rows (default: the variant's)")
    m.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="storage dtype")
    m.add_argument("--tokenizer", help="a tokenizer directory saved into the checkpoint too")
    m.add_argument("--eos-scale", type=float, default=1.0, help="scales the output row of </s>")
    t = sub.add_parser("tokenizer")
    t.add_argument("spiece")
    t.add_argument("out")
    n = sub.add_parser("encode")
    n.add_argument("tokenizer")
    n.add_argument("text")
    d = sub.add_parser("drop")
    d.add_argument("checkpoint")
    d.add_argument("out")
    d.add_argument("--encoder", default="")
    d.add_argument("--decoder", default="")
    r = sub.add_parser("prune")
    r.add_argument("checkpoint")
    r.add_argument("report")
    r.add_argument("out")
    e = sub.add_parser("eval")
    e.add_argument("checkpoint")
    e.add_argument("data")
    k = sub.add_parser("task")
    k.add_argument("checkpoint")
    k.add_argument("data")
    g = sub.add_parser("generate")
    g.add_argument("checkpoint")
    g.add_argument("data")
    g.add_argument("--max-new-tokens", type=int, default=20)
    g.add_argument("--beams", type=int, default=1)
    g.add_argument("--length-penalty", type=float, default=1.0)
    g.add_argument("--min-new-tokens", type=int, default=0)
    g.add_argument("--no-cache", action="store_true")
    args = p.parse_args()
    {"generate": generate, "task": task, "make": make, "tokenizer": tokenizer, "encode": encode, "drop": drop, "prune": prune,
     "eval": evaluate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

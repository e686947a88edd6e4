#!/usr/bin/env python3
"""Generates the committed torch.save fixtures in tests/fixtures/ with the
real torch.save (made with Debian's torch 1.13; the .venv's torch writes its own format):

  tiny-bin/          config.json + pytorch_model.bin (fp16), as the released
                     OpenBA files are: shared_embedding.weight and
                     lm_head.weight are ONE storage under two names. It also
                     holds a transposed (non-contiguous) tensor and two biases
                     that are views at different offsets of one storage.
  tiny-bin-sharded/  the same model in fp32 as two shards + index, with the
                     embedding and lm_head in different shards.

Every element has a value the C++ test recomputes exactly:
  v(name, i) = ((sum of name's bytes + 7 * i) % 251 - 125) / 64
with i the row-major index; exact in fp16, bf16 and fp32.

Run: .venv/bin/python tests/python/make_bin_fixture.py tests/fixtures
"""
import collections
import json
import os
import sys

import torch

CONFIG = {
    "architectures": ["OpenBAForConditionalGeneration"],
    "model_type": "openba",
    "vocab_size": 128,
    "hidden_size": 16,
    "kv_channels": 8,
    "ffn_hidden_size": 24,
    "num_layers": 1,
    "num_decoder_layers": 2,
    "num_heads": 2,
    "add_qkv_bias": True,
    "add_ffn_bias": False,
    "add_lm_head_bias": True,
    "tie_word_embeddings": False,
    "max_seq_length": 64,
    "decoder_max_seq_length": 32,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
    "torch_dtype": "float16",
}


def shapes(cfg):
    d, a, f, v = cfg["hidden_size"], cfg["num_heads"] * cfg["kv_channels"], cfg["ffn_hidden_size"], cfg["vocab_size"]
    out = [("shared_embedding.weight", (v, d))]
    for stack, layers in (("encoder", cfg["num_layers"]), ("decoder", cfg["num_decoder_layers"])):
        for i in range(layers):
            p = f"{stack}.block.{i}."
            out += [(p + "input_layernorm.weight", (d,)), (p + "input_layernorm.bias", (d,)),
                    (p + "self_attn.qkv.weight", (3 * a, d)), (p + "self_attn.qkv.bias", (3 * a,)),
                    (p + "self_attn.o.weight", (d, a)), (p + "self_attn.o.bias", (d,)),
                    (p + "post_attn_layernorm.weight", (d,)), (p + "post_attn_layernorm.bias", (d,))]
            if stack == "decoder":
                out += [(p + "inter_attn.q.weight", (a, d)), (p + "inter_attn.q.bias", (a,)),
                        (p + "inter_attn.kv.weight", (2 * a, d)), (p + "inter_attn.kv.bias", (2 * a,)),
                        (p + "inter_attn.o.weight", (d, a)), (p + "inter_attn.o.bias", (d,)),
                        (p + "post_inter_attn_layernorm.weight", (d,)),
                        (p + "post_inter_attn_layernorm.bias", (d,))]
            out += [(p + "mlp.fc_in.weight", (2 * f, d)), (p + "mlp.fc_out.weight", (d, f))]
        out += [(f"{stack}.final_layernorm.weight", (d,)), (f"{stack}.final_layernorm.bias", (d,))]
    out += [("lm_head.weight", (v, d)), ("lm_head.bias", (v,))]
    return out


def values(name, shape, dtype):
    n = 1
    for s in shape:
        n *= s
    h = sum(name.encode())
    i = torch.arange(n, dtype=torch.int64)
    return (((h + 7 * i) % 251 - 125).to(torch.float32) / 64.0).reshape(shape).to(dtype)


def state_dict(dtype, fancy_views):
    sd = collections.OrderedDict()
    for name, shape in shapes(CONFIG):
        if name == "lm_head.weight":
            sd[name] = sd["shared_embedding.weight"]  # one storage, two names
            continue
        sd[name] = values(name, shape, dtype)
    if fancy_views:
        # A transposed view: torch.save keeps its strides.
        name = "encoder.block.0.self_attn.o.weight"
        w = values(name, (CONFIG["hidden_size"], CONFIG["num_heads"] * CONFIG["kv_channels"]), dtype)
        sd[name] = w.t().contiguous().t()  # same values, column-major storage
        # Two biases as views at different offsets of one storage.
        a, b = "decoder.block.0.self_attn.o.bias", "decoder.block.1.self_attn.o.bias"
        d = CONFIG["hidden_size"]
        flat = torch.empty(3 + 2 * d, dtype=dtype)
        flat[3:3 + d] = values(a, (d,), dtype)
        flat[3 + d:] = values(b, (d,), dtype)
        sd[a] = flat[3:3 + d]
        sd[b] = flat[3 + d:]
    return sd


def main(out_root):
    single = os.path.join(out_root, "tiny-bin")
    os.makedirs(single, exist_ok=True)
    json.dump(CONFIG, open(os.path.join(single, "config.json"), "w"), indent=2)
    sd = state_dict(torch.float16, fancy_views=True)
    assert sd["lm_head.weight"].data_ptr() == sd["shared_embedding.weight"].data_ptr()
    assert not sd["encoder.block.0.self_attn.o.weight"].is_contiguous()
    torch.save(sd, os.path.join(single, "pytorch_model.bin"))

    sharded = os.path.join(out_root, "tiny-bin-sharded")
    os.makedirs(sharded, exist_ok=True)
    cfg = dict(CONFIG, torch_dtype="float32")
    json.dump(cfg, open(os.path.join(sharded, "config.json"), "w"), indent=2)
    sd = state_dict(torch.float32, fancy_views=False)
    names = list(sd)
    first = collections.OrderedDict((k, sd[k]) for k in names[: len(names) // 2])
    second = collections.OrderedDict((k, sd[k].clone()) for k in names[len(names) // 2:])
    files = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    torch.save(first, os.path.join(sharded, files[0]))
    torch.save(second, os.path.join(sharded, files[1]))
    weight_map = {k: files[0] for k in first}
    weight_map.update({k: files[1] for k in second})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
              open(os.path.join(sharded, "pytorch_model.bin.index.json"), "w"), indent=2)


if __name__ == "__main__":
    main(sys.argv[1])

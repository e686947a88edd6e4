#!/usr/bin/env python3
"""An independent OpenBA forward pass in plain PyTorch, used to check the C++
model. It follows the released modeling code's semantics (per-head chunked
qkv, rotate-half RoPE from a [sin, cos] table, masked_fill(-10000) before an
fp32 softmax, SwiGLU with the gate first, lm_head bias) and reads checkpoints
with its own safetensors parser or torch.load for .bin files.

Usage: openba_reference.py CHECKPOINT_DIR DATA.jsonl  -> the same JSON lines
as openba-eval (one per example, then a summary), computed example by
example without padding.
       openba_reference.py CHECKPOINT_DIR INPUTS.jsonl --generate N [--decoder-prefix 0,ID]
  -> greedy generation, input by input, each step the whole forward again:
{"output_ids": [...]} per input (after the prefix, up to and including </s>).
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        buf = bytearray(raw[base + begin:base + end])
        t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def load_state_dict(ckpt):
    files = os.listdir(ckpt)
    if "model.safetensors.index.json" in files:
        index = json.load(open(os.path.join(ckpt, "model.safetensors.index.json")))
        sd = {}
        for shard in sorted(set(index["weight_map"].values())):
            sd.update(read_safetensors(os.path.join(ckpt, shard)))
        return sd
    if "model.safetensors" in files:
        return read_safetensors(os.path.join(ckpt, "model.safetensors"))
    if "pytorch_model.bin.index.json" in files:
        index = json.load(open(os.path.join(ckpt, "pytorch_model.bin.index.json")))
        sd = {}
        for shard in sorted(set(index["weight_map"].values())):
            sd.update(torch.load(os.path.join(ckpt, shard), map_location="cpu"))
        return sd
    return torch.load(os.path.join(ckpt, "pytorch_model.bin"), map_location="cpu")


class Reference:
    def __init__(self, ckpt):
        self.cfg = json.load(open(os.path.join(ckpt, "config.json")))
        self.sd = {k: v.float() for k, v in load_state_dict(ckpt).items()}
        if "lm_head.weight" not in self.sd:
            self.sd["lm_head.weight"] = self.sd["shared_embedding.weight"]
        self.heads = self.cfg["num_heads"]
        self.kv = self.cfg["kv_channels"]
        self.eps = self.cfg.get("layernorm_epsilon", 1e-5)
        self.base = self.cfg.get("rotary_base", 10000.0)
        fc_in = self.sd["encoder.block.0.mlp.fc_in.weight"]
        self.ffn = fc_in.shape[0] // 2
        self.enc_layers = self.cfg["num_layers"]
        self.dec_layers = self.cfg.get("num_decoder_layers", self.enc_layers)

    def w(self, name):
        return self.sd[name]

    def b(self, name):
        return self.sd.get(name)

    def linear(self, x, prefix):
        return F.linear(x, self.w(prefix + ".weight"), self.b(prefix + ".bias"))

    def norm(self, x, prefix):
        return F.layer_norm(x, (x.shape[-1],), self.w(prefix + ".weight"), self.w(prefix + ".bias"), self.eps)

    def rotary(self, length):
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.kv, 2) / self.kv))
        angles = torch.einsum("i,j->ij", torch.arange(length, dtype=torch.float), inv_freq).float()
        sin, cos = torch.sin(angles), torch.cos(angles)
        return torch.cat((sin, sin), -1)[None, :, None, :], torch.cat((cos, cos), -1)[None, :, None, :]

    @staticmethod
    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def attention(self, q, k, v, mask):
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.kv)
        scores = scores.masked_fill(mask, -10000.0)
        probs = F.softmax(scores.float(), dim=-1)
        out = torch.matmul(probs, v)  # [1, H, T, kv]
        return out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)

    def self_attn(self, x, prefix, mask):
        t = x.shape[1]
        mixed = self.linear(x, prefix + ".qkv").view(1, t, self.heads, 3 * self.kv)
        q, k, v = torch.chunk(mixed, 3, dim=-1)
        sin, cos = self.rotary(t)
        q = q * cos + self.rotate_half(q) * sin
        k = k * cos + self.rotate_half(k) * sin
        out = self.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask)
        return self.linear(out, prefix + ".o")

    def cross_attn(self, x, memory, prefix):
        t, s = x.shape[1], memory.shape[1]
        q = self.linear(x, prefix + ".q").view(1, t, self.heads, self.kv)
        mixed = self.linear(memory, prefix + ".kv").view(1, s, self.heads, 2 * self.kv)
        k, v = torch.chunk(mixed, 2, dim=-1)
        mask = torch.zeros(1, 1, 1, s, dtype=torch.bool)
        out = self.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask)
        return self.linear(out, prefix + ".o")

    def mlp(self, x, prefix):
        gate, up = torch.chunk(F.linear(x, self.w(prefix + ".fc_in.weight"), self.b(prefix + ".fc_in.bias")), 2, -1)
        return F.linear(F.silu(gate) * up, self.w(prefix + ".fc_out.weight"), self.b(prefix + ".fc_out.bias"))

    def logits(self, input_ids, labels):
        emb = self.w("shared_embedding.weight")
        x = emb[torch.tensor([input_ids])]
        t = x.shape[1]
        enc_mask = torch.zeros(1, 1, 1, t, dtype=torch.bool)
        for i in range(self.enc_layers):
            p = f"encoder.block.{i}"
            x = x + self.self_attn(self.norm(x, p + ".input_layernorm"), p + ".self_attn", enc_mask)
            x = x + self.mlp(self.norm(x, p + ".post_attn_layernorm"), p + ".mlp")
        memory = self.norm(x, "encoder.final_layernorm")

        dec_in = [self.cfg.get("decoder_start_token_id", 0)] + labels[:-1]
        dec_in = [self.cfg.get("pad_token_id", 0) if tok == -100 else tok for tok in dec_in]
        y = emb[torch.tensor([dec_in])]
        td = y.shape[1]
        causal = torch.ones(td, td, dtype=torch.bool).triu(1)[None, None]
        for i in range(self.dec_layers):
            p = f"decoder.block.{i}"
            y = y + self.self_attn(self.norm(y, p + ".input_layernorm"), p + ".self_attn", causal)
            y = y + self.cross_attn(self.norm(y, p + ".post_attn_layernorm"), memory, p + ".inter_attn")
            y = y + self.mlp(self.norm(y, p + ".post_inter_attn_layernorm"), p + ".mlp")
        y = self.norm(y, "decoder.final_layernorm")
        if self.cfg.get("tie_word_embeddings", False):
            y = y * (self.cfg["hidden_size"] ** -0.5)
        return F.linear(y, self.w("lm_head.weight"), self.b("lm_head.bias")).float()[0]


def generate(model, data, new_tokens, prefix):
    eos = model.cfg.get("eos_token_id", 1)
    with torch.no_grad():
        for line in open(data):
            if not line.strip():
                continue
            ids = json.loads(line)["input_ids"]
            out = []
            for _ in range(new_tokens):
                # labels whose shift is prefix + out (the last label is not read)
                logits = model.logits(ids, prefix[1:] + out + [0])
                out.append(int(logits[-1].argmax()))
                if out[-1] == eos:
                    break
            print(json.dumps({"output_ids": out}))


def main():
    ckpt, data = sys.argv[1], sys.argv[2]
    torch.set_num_threads(os.cpu_count() or 1)
    model = Reference(ckpt)
    if "--generate" in sys.argv:
        prefix = [model.cfg.get("decoder_start_token_id", 0)]
        if "--decoder-prefix" in sys.argv:
            prefix = [int(x) for x in sys.argv[sys.argv.index("--decoder-prefix") + 1].split(",")]
        generate(model, data, int(sys.argv[sys.argv.index("--generate") + 1]), prefix)
        return
    total_nll, total_tokens, examples = 0.0, 0, 0
    with torch.no_grad():
        for line in open(data):
            if not line.strip():
                continue
            ex = json.loads(line)
            logits = model.logits(ex["input_ids"], ex["labels"])
            labels = torch.tensor(ex["labels"])
            nll = F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum").item()
            tokens = int((labels != -100).sum())
            examples += 1
            total_nll += nll
            total_tokens += tokens
            print(json.dumps({"loss": nll / tokens if tokens else None, "tokens": tokens}))
    loss = total_nll / total_tokens
    print(json.dumps({"summary": True, "examples": examples, "tokens": total_tokens,
                      "loss": loss, "perplexity": math.exp(loss)}))


if __name__ == "__main__":
    main()

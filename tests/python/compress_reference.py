"""Independent computations for the openba-compress tests, on the Python
reference model (openba_reference.py), one example at a time:

  compress_reference.py scores CKPT EXAMPLES.jsonl OUT.json
      angular layer scores, activation / magnitude / taylor width scores
  compress_reference.py eval CKPT EXAMPLES.jsonl [--skip-encoder I] [--skip-decoder J]
      per-example losses with blocks bypassed (openba-eval's output format)
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

from openba_reference import Reference


class Probe(Reference):
    """The reference forward, recording what the scores need."""

    def run(self, input_ids, labels, skip_enc=(), skip_dec=(), record=None):
        emb = self.w("shared_embedding.weight")
        x = emb[torch.tensor([input_ids])]
        t = x.shape[1]
        enc_mask = torch.zeros(1, 1, 1, t, dtype=torch.bool)
        hidden = torch.zeros(x.shape[-1], dtype=torch.float64)

        def ln(v, p):
            out = self.norm(v, p)
            if record is not None:
                hidden.add_(out.abs().mean(1)[0].double())
            return out

        def self_attn(v, p, mask, key):
            tt = v.shape[1]
            mixed = self.linear(v, p + ".qkv").view(1, tt, self.heads, 3 * self.kv)
            q, k, vv = torch.chunk(mixed, 3, dim=-1)
            sin, cos = self.rotary(tt)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            ctx = self.attention(q.transpose(1, 2), k.transpose(1, 2), vv.transpose(1, 2), mask)
            if record is not None:
                record.setdefault(key, []).append(ctx.view(1, tt, self.heads, self.kv).norm(dim=-1).mean(1)[0].double())
            return self.linear(ctx, p + ".o")

        def cross_attn(v, memory, p, key):
            tt, s = v.shape[1], memory.shape[1]
            q = self.linear(v, p + ".q").view(1, tt, self.heads, self.kv)
            mixed = self.linear(memory, p + ".kv").view(1, s, self.heads, 2 * self.kv)
            k, vv = torch.chunk(mixed, 2, dim=-1)
            mask = torch.zeros(1, 1, 1, s, dtype=torch.bool)
            ctx = self.attention(q.transpose(1, 2), k.transpose(1, 2), vv.transpose(1, 2), mask)
            if record is not None:
                record.setdefault(key, []).append(ctx.view(1, tt, self.heads, self.kv).norm(dim=-1).mean(1)[0].double())
            return self.linear(ctx, p + ".o")

        def mlp(v, p, key):
            gate, up = torch.chunk(F.linear(v, self.w(p + ".fc_in.weight"), self.b(p + ".fc_in.bias")), 2, -1)
            act = F.silu(gate) * up
            if record is not None:
                record.setdefault(key, []).append(act.abs().mean(1)[0].double())
            return F.linear(act, self.w(p + ".fc_out.weight"), self.b(p + ".fc_out.bias"))

        def angular(key, before, after):
            if record is not None:
                cos = F.cosine_similarity(before.double(), after.double(), dim=-1, eps=1e-8)[0]
                record.setdefault(key, [0.0, 0])
                record[key][0] += float((1 - cos).sum())
                record[key][1] += cos.shape[0]

        for i in range(self.enc_layers):
            if i in skip_enc:
                continue
            p = f"encoder.block.{i}"
            x0 = x
            x = x + self_attn(ln(x, p + ".input_layernorm"), p + ".self_attn", enc_mask, f"enc_heads.{i}")
            x = x + mlp(ln(x, p + ".post_attn_layernorm"), p + ".mlp", f"enc_ffn.{i}")
            angular(f"enc_angular.{i}", x0, x)
        memory = self.norm(x, "encoder.final_layernorm")
        if record is not None:
            record.setdefault("hidden", []).append(hidden.clone())
            hidden.zero_()
        dec_in = [self.cfg.get("decoder_start_token_id", 0)] + labels[:-1]
        dec_in = [self.cfg.get("pad_token_id", 0) if tok == -100 else tok for tok in dec_in]
        y = emb[torch.tensor([dec_in])]
        td = y.shape[1]
        causal = torch.ones(td, td, dtype=torch.bool).triu(1)[None, None]
        for i in range(self.dec_layers):
            if i in skip_dec:
                continue
            p = f"decoder.block.{i}"
            y0 = y
            y = y + self_attn(ln(y, p + ".input_layernorm"), p + ".self_attn", causal, f"dec_heads.{i}")
            y = y + cross_attn(ln(y, p + ".post_attn_layernorm"), memory, p + ".inter_attn", f"dec_cross.{i}")
            y = y + mlp(ln(y, p + ".post_inter_attn_layernorm"), p + ".mlp", f"dec_ffn.{i}")
            angular(f"dec_angular.{i}", y0, y)
        if record is not None:
            record["hidden"][-1] += hidden  # the example's encoder and decoder LayerNorms together
        y = self.norm(y, "decoder.final_layernorm")
        if self.cfg.get("tie_word_embeddings", False):
            y = y * (self.cfg["hidden_size"] ** -0.5)
        return F.linear(y, self.w("lm_head.weight"), self.b("lm_head.bias")).float()[0]


def examples(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def l2_over_examples(vectors):
    return torch.stack(vectors).pow(2).sum(0).sqrt().tolist()


def unit_sums(sd, values, heads, kv, ffn, names):
    """Per-unit sums of values[name] (w^2 or |w g|), written out per tensor by hand."""
    d = sd["shared_embedding.weight"].shape[1]
    s = {"hidden": torch.zeros(d, dtype=torch.float64)}

    def add(key, vec):
        s[key] = s.get(key, 0) + vec

    for name in names:
        v = values[name].double()
        if name in ("shared_embedding.weight", "lm_head.weight"):
            add("hidden", v.sum(0))
            continue
        if name == "lm_head.bias":
            continue
        if "layernorm" in name:
            add("hidden", v)
            continue
        parts = name.split(".")
        stack, layer, rest = parts[0], parts[2], ".".join(parts[3:])
        pre = "enc" if stack == "encoder" else "dec"
        if rest.startswith("self_attn.qkv"):
            rows = v if v.dim() == 1 else v.sum(1)
            add(f"{pre}_heads.{layer}", rows.view(heads, 3 * kv).sum(1))
            if v.dim() == 2:
                add("hidden", v.sum(0))
        elif rest.startswith("inter_attn.q."):
            rows = v if v.dim() == 1 else v.sum(1)
            add(f"dec_cross.{layer}", rows.view(heads, kv).sum(1))
            if v.dim() == 2:
                add("hidden", v.sum(0))
        elif rest.startswith("inter_attn.kv"):
            rows = v if v.dim() == 1 else v.sum(1)
            add(f"dec_cross.{layer}", rows.view(heads, 2 * kv).sum(1))
            if v.dim() == 2:
                add("hidden", v.sum(0))
        elif rest.startswith("self_attn.o") or rest.startswith("inter_attn.o"):
            key = f"{pre}_heads.{layer}" if rest.startswith("self") else f"dec_cross.{layer}"
            if v.dim() == 1:
                add("hidden", v)
            else:
                add("hidden", v.sum(1))
                add(key, v.sum(0).view(heads, kv).sum(1))
        elif rest.startswith("mlp.fc_in"):
            rows = v if v.dim() == 1 else v.sum(1)
            add(f"{pre}_ffn.{layer}", rows[:ffn] + rows[ffn:])
            if v.dim() == 2:
                add("hidden", v.sum(0))
        elif rest.startswith("mlp.fc_out"):
            if v.dim() == 1:
                add("hidden", v)
            else:
                add("hidden", v.sum(1))
                add(f"{pre}_ffn.{layer}", v.sum(0))
    return s


def main_scores(ckpt, data, out):
    model = Probe(ckpt)
    exs = examples(data)
    record = {}
    with torch.no_grad():
        for ex in exs:
            model.run(ex["input_ids"], ex["labels"], record=record)
    result = {"angular": {"encoder": [], "decoder": []}, "activation": {}}
    for i in range(model.enc_layers):
        a = record[f"enc_angular.{i}"]
        result["angular"]["encoder"].append(a[0] / a[1])
    for i in range(model.dec_layers):
        a = record[f"dec_angular.{i}"]
        result["angular"]["decoder"].append(a[0] / a[1])
    act = result["activation"]
    act["hidden"] = l2_over_examples(record["hidden"])
    act["encoder_ffn"] = [l2_over_examples(record[f"enc_ffn.{i}"]) for i in range(model.enc_layers)]
    act["decoder_ffn"] = [l2_over_examples(record[f"dec_ffn.{i}"]) for i in range(model.dec_layers)]
    act["encoder_heads"] = [l2_over_examples(record[f"enc_heads.{i}"]) for i in range(model.enc_layers)]
    act["decoder_heads"] = [l2_over_examples(record[f"dec_heads.{i}"]) for i in range(model.dec_layers)]
    act["decoder_cross_heads"] = [l2_over_examples(record[f"dec_cross.{i}"]) for i in range(model.dec_layers)]

    tied = torch.equal(model.sd["lm_head.weight"], model.sd["shared_embedding.weight"])
    names = [n for n in model.sd if not (tied and n == "lm_head.weight")]

    def as_json(s, method):
        j = {"method": method, "hidden": s["hidden"].sqrt().tolist() if method == "magnitude" else s["hidden"].tolist()}
        f = (lambda t: t.sqrt().tolist()) if method == "magnitude" else (lambda t: t.tolist())
        j["encoder_heads"] = [f(s[f"enc_heads.{i}"]) for i in range(model.enc_layers)]
        j["decoder_heads"] = [f(s[f"dec_heads.{i}"]) for i in range(model.dec_layers)]
        j["decoder_cross_heads"] = [f(s[f"dec_cross.{i}"]) for i in range(model.dec_layers)]
        j["encoder_ffn"] = [f(s[f"enc_ffn.{i}"]) for i in range(model.enc_layers)]
        j["decoder_ffn"] = [f(s[f"dec_ffn.{i}"]) for i in range(model.dec_layers)]
        return j

    squares = {n: model.sd[n].double() ** 2 for n in names}
    result["magnitude"] = as_json(unit_sums(model.sd, squares, model.heads, model.kv, model.ffn, names), "magnitude")

    # Taylor: gradients of the summed NLL over the examples, by autograd on the reference.
    params = {n: model.sd[n].clone().requires_grad_(True) for n in names}
    model.sd = dict(params)
    if tied:
        model.sd["lm_head.weight"] = params["shared_embedding.weight"]
    total = 0
    for ex in exs:
        logits = model.run(ex["input_ids"], ex["labels"])
        total = total + F.cross_entropy(logits, torch.tensor(ex["labels"]), ignore_index=-100, reduction="sum")
    total.backward()
    taylor = {n: (params[n].detach().double() * params[n].grad.double()).abs() for n in names}
    result["taylor"] = as_json(unit_sums(model.sd, taylor, model.heads, model.kv, model.ffn, names), "taylor")
    json.dump(result, open(out, "w"))


def main_eval(ckpt, data, skip_enc, skip_dec):
    model = Probe(ckpt)
    with torch.no_grad():
        for ex in examples(data):
            logits = model.run(ex["input_ids"], ex["labels"], skip_enc, skip_dec)
            labels = torch.tensor(ex["labels"])
            nll = F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum").item()
            tokens = int((labels != -100).sum())
            print(json.dumps({"loss": nll / tokens if tokens else None, "tokens": tokens}))


if __name__ == "__main__":
    torch.set_num_threads(2)
    if sys.argv[1] == "scores":
        main_scores(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        args = sys.argv[4:]
        skip_enc = {int(args[i + 1]) for i in range(len(args)) if args[i] == "--skip-encoder"}
        skip_dec = {int(args[i + 1]) for i in range(len(args)) if args[i] == "--skip-decoder"}
        main_eval(sys.argv[2], sys.argv[3], skip_enc, skip_dec)

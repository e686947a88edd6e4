#!/usr/bin/env python3
"""The PyTorch-eager peer for bench_eval: a batched OpenBA forward + loss
written with the same operations as the released OpenBA modeling code
(per-head chunked qkv, rotary table lookup + rotate_half cat, fp32 q/k,
matmul / sqrt(kv), masked_fill_(-10000), softmax, transpose().contiguous(),
SwiGLU via chunk, lm_head, CrossEntropyLoss), with Megatron-style random
weights. Prints one JSON line like bench_eval.

Usage: eager_openba_forward.py --d 768 --heads 12 --kv 64 --ffn 2048 --enc-layers 4
       --dec-layers 8 --vocab 8192 [--batch 8 --enc 256 --dec 128 --iters 3 --threads N]
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F


def gemm_flops(n=4096, repeats=3):
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = a @ b
    best = 1e30
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def rotary_table(num_pos, dim):
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2) / dim))
    sinusoid = torch.einsum("i , j -> i j", torch.arange(num_pos, dtype=torch.float), inv_freq).float()
    return torch.cat((torch.sin(sinusoid), torch.cos(sinusoid)), dim=1)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(t, sin, cos):
    sin = torch.cat((sin, sin), dim=-1)[:, :, None, :]
    cos = torch.cat((cos, cos), dim=-1)[:, :, None, :]
    return (t * cos) + (rotate_half(t) * sin)


class Eager:
    def __init__(self, a):
        g = torch.Generator().manual_seed(0)
        n = lambda *s: torch.randn(*s, generator=g) * 0.02
        self.a = a
        d, proj, f = a.d, a.heads * a.kv, a.ffn
        self.emb = n(a.vocab, d)
        self.lm_bias = torch.zeros(a.vocab)

        def block(decoder):
            b = {"ln": [(torch.ones(d), torch.zeros(d)) for _ in range(3 if decoder else 2)],
                 "qkv": (n(3 * proj, d), torch.zeros(3 * proj)), "o": (n(d, proj), torch.zeros(d)),
                 "fc_in": n(2 * f, d), "fc_out": n(d, f)}
            if decoder:
                b["q"] = (n(proj, d), torch.zeros(proj))
                b["kv"] = (n(2 * proj, d), torch.zeros(2 * proj))
                b["co"] = (n(d, proj), torch.zeros(d))
            return b
        self.enc = [block(False) for _ in range(a.enc_layers)]
        self.dec = [block(True) for _ in range(a.dec_layers)]
        self.final = [(torch.ones(d), torch.zeros(d)) for _ in range(2)]
        self.rope = rotary_table(max(a.enc, a.dec), a.kv)
        self.scale = torch.sqrt(torch.tensor(a.kv, dtype=torch.float32))

    def parameters(self):
        """Every weight tensor (the tied embedding once)."""
        out = [self.emb, self.lm_bias]
        for blk in self.enc + self.dec:
            for key, v in blk.items():
                if key == "ln":
                    for w, b in v:
                        out += [w, b]
                elif isinstance(v, tuple):
                    out += list(v)
                else:
                    out.append(v)
        for w, b in self.final:
            out += [w, b]
        return out

    def ln(self, x, p):
        return F.layer_norm(x, (x.shape[-1],), p[0], p[1], 1e-5)

    def attention(self, q, k, v, mask):
        q, k = q.to(torch.float32), k.to(torch.float32)
        scores = torch.matmul(q, k.transpose(-1, -2)) / self.scale
        scores = scores.masked_fill_(mask, -10000.0)
        w = F.softmax(scores, dim=-1).type_as(scores).to(v.dtype)
        out = torch.matmul(w, v)
        b, t = out.shape[0], out.shape[2]
        return out.transpose(1, 2).contiguous().view(b, t, -1)

    def self_attn(self, x, blk, mask, pos):
        a = self.a
        b, t = x.shape[:2]
        mixed = F.linear(x, *blk["qkv"]).view(b, t, a.heads, 3 * a.kv)
        q, k, v = torch.chunk(mixed, 3, dim=-1)
        sin, cos = torch.chunk(self.rope[pos], 2, dim=-1)
        q, k = apply_rotary(q, sin, cos), apply_rotary(k, sin, cos)
        out = self.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask)
        return F.linear(out, *blk["o"])

    def cross_attn(self, x, mem, blk, mask):
        a = self.a
        b, t, s = x.shape[0], x.shape[1], mem.shape[1]
        q = F.linear(x, *blk["q"]).view(b, t, a.heads, a.kv).transpose(1, 2)
        k, v = torch.chunk(F.linear(mem, *blk["kv"]).view(b, s, a.heads, 2 * a.kv), 2, dim=-1)
        out = self.attention(q, k.transpose(1, 2), v.transpose(1, 2), mask)
        return F.linear(out, *blk["co"])

    def mlp(self, x, blk):
        g, u = torch.chunk(F.linear(x, blk["fc_in"]), 2, dim=-1)
        return F.linear(F.silu(g) * u, blk["fc_out"])

    def loss(self, ids, mask, labels):
        b, te = ids.shape
        td = labels.shape[1]
        pos_e = torch.arange(te).unsqueeze(0)
        enc_mask = (mask[:, None, None, :] < 0.5)
        x = F.embedding(ids, self.emb)
        for blk in self.enc:
            x = x + self.self_attn(self.ln(x, blk["ln"][0]), blk, enc_mask, pos_e)
            x = x + self.mlp(self.ln(x, blk["ln"][1]), blk)
        mem = self.ln(x, self.final[0])
        dec_in = torch.zeros_like(labels)
        dec_in[:, 1:] = labels[:, :-1]
        seq = torch.arange(td)
        causal = (seq[None, None, :].repeat(b, td, 1) <= seq[None, :, None]).float()
        dec_mask = (causal[:, None, :, :] < 0.5)
        pos_d = torch.arange(td).unsqueeze(0)
        y = F.embedding(dec_in, self.emb)
        for blk in self.dec:
            y = y + self.self_attn(self.ln(y, blk["ln"][0]), blk, dec_mask, pos_d)
            y = y + self.cross_attn(self.ln(y, blk["ln"][1]), mem, blk, enc_mask)
            y = y + self.mlp(self.ln(y, blk["ln"][2]), blk)
        y = self.ln(y, self.final[1])
        logits = F.linear(y, self.emb, self.lm_bias).to(torch.float32)
        return torch.nn.CrossEntropyLoss(ignore_index=-100)(logits.view(-1, logits.size(-1)), labels.view(-1))


def flops(a):
    d, proj, f, v = a.d, a.heads * a.kv, a.ffn, a.vocab
    te, td = a.enc, a.dec
    macs = te * a.enc_layers * (4 * d * proj + 3 * d * f) + a.enc_layers * 2 * te * te * proj
    macs += td * a.dec_layers * (6 * d * proj + 3 * d * f) + te * a.dec_layers * 2 * d * proj
    macs += a.dec_layers * (2 * td * td * proj + 2 * td * te * proj) + td * d * v
    return 2 * macs * a.batch


def main():
    p = argparse.ArgumentParser()
    for name, default in [("d", 768), ("heads", 12), ("kv", 64), ("ffn", 2048), ("enc-layers", 4),
                          ("dec-layers", 8), ("vocab", 8192), ("batch", 8), ("enc", 256), ("dec", 128),
                          ("iters", 3), ("threads", os.cpu_count() or 1)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--train", action="store_true", help="time training steps (backward + AdamW) instead of forward")
    p.add_argument("--compile", action="store_true",
                   help="run the loss through torch.compile (inductor; forward and, with --train, backward)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    gemm = gemm_flops()
    model = Eager(a)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, a.vocab, (a.batch, a.enc), generator=g)
    labels = torch.randint(3, a.vocab, (a.batch, a.dec), generator=g)
    mask = torch.ones(a.batch, a.enc)
    loss_fn = torch.compile(model.loss) if a.compile else model.loss
    compile_started = time.perf_counter()
    if a.train:
        params = model.parameters()
        for t in params:
            t.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)

        def once():
            opt.zero_grad(set_to_none=False)
            loss_fn(ids, mask, labels).backward()
            opt.step()
    else:
        def once():
            with torch.no_grad():
                loss_fn(ids, mask, labels)
    once()  # warm-up (and, compiled, the compilation)
    warmup_s = time.perf_counter() - compile_started
    if a.compile:
        once()
    total, best = 0.0, 1e30
    for _ in range(a.iters):
        t = time.perf_counter()
        once()
        s = time.perf_counter() - t
        total += s
        best = min(best, s)
    mean = total / a.iters
    scale = 3 if a.train else 1
    impl = "PyTorch %s %s (released-code ops)" % (torch.__version__.split("+")[0], "torch.compile" if a.compile else "eager")
    print(json.dumps({"impl": impl, "threads": torch.get_num_threads(), "warmup_s": warmup_s,
                      "train": a.train, "gemm_gflops": gemm / 1e9, "seconds_per_batch": mean,
                      "tokens_per_s": a.batch * (a.enc + a.dec) / mean,
                      "decoder_tokens_per_s": a.batch * a.dec / mean,
                      "model_gflops": scale * flops(a) / mean / 1e9, "fraction_of_gemm": scale * flops(a) / mean / gemm,
                      "best_fraction_of_gemm": scale * flops(a) / best / gemm}))


if __name__ == "__main__":
    main()

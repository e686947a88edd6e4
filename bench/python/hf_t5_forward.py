#!/usr/bin/env python3
"""The peer a T5 user runs instead: transformers' own
T5ForConditionalGeneration (eager, or through torch.compile) on a
config.json, random weights, a fixed batch of random ids. Eval: the loss
forward without gradients; train: forward, backward and an AdamW step.
Prints one JSON line in bench_eval / bench_train's keys (FLOPs counted as
arch/openba/flops.cpp counts them)."""
import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import T5Config, T5ForConditionalGeneration  # noqa: E402


def forward_flops(c, te, td):
    d, a, f, v = c.d_model, c.num_heads * c.d_kv, c.d_ff, c.vocab_size
    le, ld = c.num_layers, c.num_decoder_layers
    mlp = (3 if c.is_gated_act else 2) * d * f
    macs = te * le * (4 * d * a + mlp) + le * 2 * te * te * a
    macs += td * ld * (6 * d * a + mlp) + te * ld * 2 * d * a + ld * (2 * td * td * a + 2 * td * te * a) + td * d * v
    return 2 * macs


def gemm_flops():
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    torch.mm(a, b)
    best = 1e30
    for _ in range(3):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * 4096 ** 3 / best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--enc", type=int, default=256)
    p.add_argument("--dec", type=int, default=128)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train", action="store_true")
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = T5Config.from_json_file(a.config)
    model = T5ForConditionalGeneration(config)
    model.train(a.train)
    ids = torch.randint(3, config.vocab_size, (a.batch, a.enc))
    labels = torch.randint(3, config.vocab_size, (a.batch, a.dec))
    mask = torch.ones_like(ids)
    run = torch.compile(model) if a.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4) if a.train else None

    def step():
        if a.train:
            opt.zero_grad(set_to_none=True)
            run(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                run(input_ids=ids, attention_mask=mask, labels=labels).loss.item()

    gemm = gemm_flops()
    step()  # warm-up (and compilation)
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    mean = sum(times) / len(times)
    flops = forward_flops(config, a.enc, a.dec) * a.batch * (3 if a.train else 1)
    print(json.dumps({
        "impl": ("transformers T5 " + ("torch.compile" if a.compile else "eager")), "threads": a.threads,
        "batch": a.batch, "enc": a.enc, "dec": a.dec, "gemm_gflops": gemm / 1e9, "seconds_per_batch": mean,
        "tokens_per_s": a.batch * (a.enc + a.dec) / mean, "model_gflops": flops / mean / 1e9,
        "fraction_of_gemm": flops / mean / gemm}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Does compression pay? The experiment at a scale the demo cannot afford.

A base (the demo's tiny OpenBA, 5.1M parameters, on the demo's bilingual
corpus) is trained long enough to plateau and cached on disk. Then, for each
seed, the base is width-pruned to the demo's final width (hidden 128 -> 80,
FFN 352 -> 224, heads 4 -> 2) and recovered on the same number of tokens in
four ways, all measured on one fixed held-out set:

  (a) UL2 recovery              activation-scored selection, UL2 cross-entropy only
  (b) distillation recovery     the same selection, recovery distilled from the base
  (c) scratch                   the same shape from random init, best of an lr sweep (1e-3..8e-3)
  (d) random selection          the released (random) selection, UL2 recovery

(a) and (b) are one pipeline (its recovery step distills, with `baseline:
ul2` beside it; `baselines: scratch:` gives (c) and the tokens scratch needs
to match (b)); (d) is a second pipeline. The seed moves the recovery data,
the calibration draws, the random selection and the scratch init; the
held-out examples stay the same. Everything resumes: the base from its last
checkpoint, each pipeline from its state. Prints a table of mean and spread
over seeds and writes WORK/quality.json.

Usage: bench/run_quality_bench.py [--work /tmp/openba-quality] [--seeds 3]
       [--base-steps 3000] [--recovery-steps 150] [--build build]
       (--quick: 300 base / 40 recovery steps, 2 seeds: a smoke run of minutes)
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def sh(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def assets(work, build):
    """The demo's corpus, tokenizer, train/held-out shards and initialized base."""
    tools = os.path.join(build, "tools")
    a = {k: os.path.join(work, "assets", k) for k in ("corpus", "tokenizer", "train", "heldout", "init")}
    if not os.path.isfile(os.path.join(a["tokenizer"], "spiece.model")):
        sh([sys.executable, os.path.join(ROOT, "scripts", "prepare_demo_corpus.py"), a["corpus"]])
        sh([os.path.join(tools, "openba-tokenize"), "train", "--input", os.path.join(a["corpus"], "train", "en.txt"),
            os.path.join(a["corpus"], "train", "zh.txt"), "--vocab-size", "8000", "--out", a["tokenizer"], "--force"])
    for split in ("train", "heldout"):
        if not os.path.isfile(os.path.join(a[split], "manifest.json")):
            sh([os.path.join(tools, "openba-tokenize"), "encode", "--tokenizer", a["tokenizer"], "--out", a[split],
                "--force", "--quiet", "--input", os.path.join(a["corpus"], split, "en.txt"),
                os.path.join(a["corpus"], split, "zh.txt")])
    if not os.path.isfile(os.path.join(a["init"], "config.json")):
        sh([os.path.join(tools, "openba-init"), "--config", os.path.join(ROOT, "configs", "models", "tiny.yaml"),
            "--tokenizer", a["tokenizer"], "--out", a["init"], "--seed", "0", "--force", "--quiet"])
    return a


BASE_CONFIG = """model: {{checkpoint: {init}}}
data: {{train: [{{shards: {train}}}], heldout: {heldout}, seed: 100}}
ul2: {{encoder_tokens: 128, decoder_tokens: 64}}
trainer: {{steps: {steps}, micro_batch: 8, global_batch: 16, lr: 2.0e-3, min_lr: 2.0e-4, warmup_steps: 50,
          weight_decay: 0.1, betas: [0.9, 0.95], grad_clip: 1.0}}
checkpoint: {{every: {every}, keep: 1}}
eval: {{every: {every}, examples_per_denoiser: 8, seed: 0}}
logging: {{every: 20, tensorboard: false}}
"""


def train_base(work, build, a, steps):
    """The cached base: openba-pretrain into WORK/base (resumed when interrupted)."""
    out = os.path.join(work, "base-%d" % steps)
    final = os.path.join(out, "final")
    if not os.path.isdir(final):
        config = os.path.join(work, "base-%d.yaml" % steps)
        with open(config, "w") as f:
            f.write(BASE_CONFIG.format(steps=steps, every=max(1, steps // 10), **a))
        cmd = [os.path.join(build, "tools", "openba-pretrain"), "--config", config, "--out", out, "--quiet"]
        if os.path.isdir(os.path.join(out, "checkpoints")):
            cmd.append("--resume")
        sh(cmd)
    curve = [(m["step"], m["eval_loss"]) for m in map(json.loads, open(os.path.join(out, "metrics.jsonl")))
             if "eval_loss" in m]
    return final, curve


PIPELINE = """name: quality-{variant}-{seed}
model: {base}
data:
  train: {train}
  heldout: {heldout}
  heldout_per_denoiser: 8
  heldout_seed: 0
  encoder_tokens: 128
  decoder_tokens: 64
  seed: {seed}
defaults:
  compress: {{calib-samples: 128, seed: {seed}}}
  pretrain:
    config: {train_config}
    set:
      trainer: {{steps: {recovery}, lr: 1.0e-3, min_lr: 1.0e-4, warmup_steps: 5}}
      checkpoint: {{every: {every}}}
      eval: {{every: {every}}}
      logging: {{tensorboard: false}}
steps:
  - kind: neuron
    name: width
    hidden: 80
    ffn: 224
    heads: 2
    round-to: 16
    score: {score}
  - kind: pretrain
    name: recover
{recover}"""

DISTILLED = """    distill: {{teacher: input, alpha: 0.5, temperature: 1.0}}
    baseline: ul2
baselines:
  scratch: {{lr: [1.0e-3, 2.0e-3, 4.0e-3, 8.0e-3], extend: 4, seed: {seed}, set: {{trainer.warmup_steps: 10}}}}
"""


def run_pipeline(work, build, a, base, seed, variant, recovery):
    out_dir = os.path.join(work, "seed-%d" % seed, variant)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "pipeline.yaml")
    with open(path, "w") as f:
        f.write(PIPELINE.format(variant=variant, seed=seed, base=base, recovery=recovery,
                                every=max(1, recovery // 5), score="activation" if variant == "scored" else "random",
                                train_config=os.path.join(ROOT, "configs", "train", "demo.yaml"),
                                recover=DISTILLED.format(seed=seed) if variant == "scored" else "", **a))
    sh([os.path.join(build, "tools", "openba-compress"), "--pipeline", path, "--out", os.path.join(out_dir, "run"),
        "--quiet"], stdout=subprocess.DEVNULL)
    with open(os.path.join(out_dir, "run", "report.json")) as f:
        return json.load(f)


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/openba-quality")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--base-steps", type=int, default=3000)
    p.add_argument("--recovery-steps", type=int, default=150)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.base_steps, args.recovery_steps, args.seeds = 300, 40, 2
    os.makedirs(args.work, exist_ok=True)
    start = time.time()
    a = assets(args.work, args.build)
    base, base_curve = train_base(args.work, args.build, a, args.base_steps)
    rows = []
    for seed in range(args.seeds):
        scored = run_pipeline(args.work, args.build, a, base, seed, "scored", args.recovery_steps)
        random_sel = run_pipeline(args.work, args.build, a, base, seed, "random", args.recovery_steps)
        steps = {s["name"]: s for s in scored["steps"]}
        scratch = scored["baselines"]["scratch"]
        rows.append({
            "seed": seed,
            "base": steps["width"]["heldout_before"],
            "pruned": steps["width"]["heldout_after"],
            "ul2": steps["recover"]["baseline"]["heldout_after"],
            "distill": steps["recover"]["heldout_after"],
            "scratch": scratch["best"]["heldout_loss"],
            "scratch_lr": scratch["best"]["lr"],
            "random": {s["name"]: s for s in random_sel["steps"]}["recover"]["heldout_after"],
            "recovery_tokens": scratch["recovery_tokens"],
            "tokens_to_match": scratch["tokens_to_match"],
            "tokens_to_match_ratio": scratch["tokens_to_match_ratio"],
            "searched_tokens": scratch["searched_tokens"],
        })
        print(json.dumps(rows[-1]), flush=True)
    keys = [("base", "base (unpruned, %d steps)" % args.base_steps), ("pruned", "width-pruned, no recovery"),
            ("ul2", "(a) UL2 recovery"), ("distill", "(b) distillation recovery"),
            ("scratch", "(c) scratch, best lr"), ("random", "(d) random selection + UL2 recovery")]
    table = {k: summary([r[k] for r in rows]) for k, _ in keys}
    diffs = {
        "scratch - distill": summary([r["scratch"] - r["distill"] for r in rows]),
        "scratch - ul2": summary([r["scratch"] - r["ul2"] for r in rows]),
        "ul2 - distill": summary([r["ul2"] - r["distill"] for r in rows]),
        "random - ul2": summary([r["random"] - r["ul2"] for r in rows]),
    }
    print()
    print("held-out loss over %d seeds (recovery: %d steps = ~%d tokens; base: %d steps; held-out curve of the base: %s)"
          % (len(rows), args.recovery_steps, statistics.fmean(r["recovery_tokens"] for r in rows), args.base_steps,
             ", ".join("%d: %.3f" % c for c in base_curve[-4:])))
    print(f"{'model':40} {'mean':>8} {'std':>7} {'min':>8} {'max':>8}")
    for k, label in keys:
        t = table[k]
        print(f"{label:40} {t['mean']:8.4f} {t['std']:7.4f} {t['min']:8.4f} {t['max']:8.4f}")
    print()
    for k, t in diffs.items():
        print(f"{k:40} {t['mean']:+8.4f} {t['std']:7.4f} {t['min']:+8.4f} {t['max']:+8.4f}")
    ratios = [r["tokens_to_match_ratio"] for r in rows]
    if all(x is not None for x in ratios):
        print("tokens scratch needs to match (b): %s x the recovery tokens (mean %.2fx)"
              % (", ".join("%.2f" % x for x in ratios), statistics.fmean(ratios)))
    else:
        print("tokens scratch needs to match (b): " + ", ".join(
            "%.2fx" % x if x is not None else "not within %.2fx" % (r["searched_tokens"] / r["recovery_tokens"])
            for x, r in zip(ratios, rows)))
    result = {"base_steps": args.base_steps, "recovery_steps": args.recovery_steps, "seeds": rows, "table": table,
              "differences": diffs, "base_curve": base_curve, "seconds": time.time() - start}
    with open(os.path.join(args.work, "quality.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("wrote " + os.path.join(args.work, "quality.json") + " in %.0f s" % (time.time() - start))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes a realistic pipeline run directory for the report tests:
report.json in the "openba-pipeline-report/1" schema, each step's
report.json with its kind-specific fields, and a metrics.jsonl per
pretraining step, with plausible generated values (seeded).

  make_pipeline_run.py DIR [--not-run K] [--name TEXT] [--description TEXT]
                       [--train-steps N] [--seed S]

The run follows the OpenBA-V2 recipe on the tiny demo model: an evaluation
of the input, layer pruning by angular scores, recovery pretraining, width
pruning by activation scores (with a random-selection baseline), recovery,
vocabulary pruning, recovery, layer pruning by explicit lists, recovery and a
final evaluation. --not-run K leaves the last K steps as not run (planned
shape, no losses, no files), as in a run that is still going."""
import argparse
import json
import math
import os
import random

KV_CHANNELS = 32


def parameters(enc, dec, d, heads, ffn, vocab):
    """Parameter count of an OpenBA shape (untied lm_head with bias, qkv/o
    biases, no FFN bias, SwiGLU), as the tiny config has it."""
    a = heads * KV_CHANNELS
    attention = d * 3 * a + 3 * a + a * d + d
    cross = d * a + a + d * 2 * a + 2 * a + a * d + d
    swiglu = d * 2 * ffn + ffn * d
    enc_layer = 2 * 2 * d + attention + swiglu
    dec_layer = 3 * 2 * d + attention + cross + swiglu
    return vocab * d + vocab * d + vocab + enc * enc_layer + dec * dec_layer + 2 * 2 * d


def architecture(s):
    return (f"enc {s['encoder_layers']} / dec {s['decoder_layers']}, d_model {s['d_model']}, "
            f"heads {s['num_heads']}x{KV_CHANNELS}, ffn {s['ffn_hidden']}, vocab {s['vocab_size']}")


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def top_indices(scores, k):
    return sorted(sorted(range(len(scores)), key=lambda i: -scores[i])[:k])


def layer_report(rng, shape_in, shape_out, scored, drop):
    """drop: {"encoder": [...], "decoder": [...]} layer indices."""
    report = {"stage": "layer", "input": dict(shape_in), "output": dict(shape_out)}
    removed = {}
    if scored:
        # Block Influence: first and last layers change the hidden state most.
        scores = {}
        for stack, n in (("encoder", shape_in["encoder_layers"]), ("decoder", shape_in["decoder_layers"])):
            scores[stack] = [round(0.04 + 0.25 * math.exp(-i) + 0.2 * math.exp(i - n + 1) + rng.uniform(0, 0.05), 5)
                             for i in range(n)]
            keep = shape_out[stack + "_layers"]
            drop[stack] = sorted(sorted(range(n), key=lambda i: scores[stack][i])[:n - keep])
        report["scores"] = {"kind": "layer", "method": "angular", **scores}
        for stack in ("encoder", "decoder"):
            removed[stack + "_layers"] = [{"layer": i, "score": scores[stack][i]} for i in drop[stack]]
        removed["reason"] = "lowest angular scores"
    else:
        for stack in ("encoder", "decoder"):
            removed[stack + "_layers"] = [{"layer": i} for i in drop[stack]]
        removed["reason"] = "explicit lists"
    report["removed"] = removed
    return report


def neuron_report(rng, shape_in, shape_out):
    def lognormal(n, mu, sigma):
        return [round(math.exp(rng.gauss(mu, sigma)), 8) for _ in range(n)]

    enc, dec = shape_in["encoder_layers"], shape_in["decoder_layers"]
    heads, ffn, d = shape_in["num_heads"], shape_in["ffn_hidden"], shape_in["d_model"]
    scores = {"kind": "width", "method": "activation", "hidden": lognormal(d, 0.5, 0.8),
              "encoder_heads": [lognormal(heads, -1.0, 0.7) for _ in range(enc)],
              "decoder_heads": [lognormal(heads, -1.2, 0.7) for _ in range(dec)],
              "decoder_cross_heads": [lognormal(heads, -1.5, 0.9) for _ in range(dec)],
              "encoder_ffn": [lognormal(ffn, -2.0, 1.3) for _ in range(enc)],
              "decoder_ffn": [lognormal(ffn, -2.3, 1.4) for _ in range(dec)]}
    # A few dead neurons: zero scores have no place on the log axis.
    for layer in (0, 2):
        scores["decoder_ffn"][layer][layer + 7] = 0.0
    kept = {"hidden": top_indices(scores["hidden"], shape_out["d_model"])}
    for key in ("encoder_heads", "decoder_heads", "decoder_cross_heads"):
        kept[key] = [top_indices(row, shape_out["num_heads"]) for row in scores[key]]
    for key in ("encoder_ffn", "decoder_ffn"):
        kept[key] = [top_indices(row, shape_out["ffn_hidden"]) for row in scores[key]]
    return {"stage": "width", "input": dict(shape_in), "output": dict(shape_out), "scores": scores, "kept": kept,
            "removed_summary": f"hidden {d}->{shape_out['d_model']}, heads {heads}->{shape_out['num_heads']}, "
                               f"ffn {ffn}->{shape_out['ffn_hidden']} (lowest activation scores)"}


def vocab_report(shape_in, shape_out, pieces_before, pieces_after):
    # Zipf-distributed piece frequencies: coverage of the k most frequent.
    weights = [1.0 / (i + 1) ** 1.08 for i in range(pieces_before)]
    total = sum(weights)
    cumulative, running = [], 0.0
    for w in weights:
        running += w
        cumulative.append(running / total)
    points = sorted({0, pieces_after} | {round(pieces_before * j / 199) for j in range(200)})
    curve = [[k, round(cumulative[k - 1], 6) if k else 0.0] for k in points]
    return {"stage": "vocab", "input": dict(shape_in), "output": dict(shape_out),
            "tokenizer": {"pieces_before": pieces_before, "pieces_after": pieces_after,
                          "changed_token_share": 0.0123, "corpus_tokens_dropped_share": round(1 - cumulative[pieces_after - 1], 6),
                          "heldout_tokens_mapped_to_unk_share": 0.0041, "coverage_curve": curve}}


def metrics_lines(rng, steps, start_loss, end_loss, log_every=5, eval_every=50):
    """Training logs decaying from the pruned model's loss to the recovered
    one (training loss a little under held-out), with periodic evaluations."""
    lines, tokens = [], 0
    for step in range(log_every, steps + 1, log_every):
        tokens += 4096 * log_every
        level = end_loss + (start_loss - end_loss) * math.exp(-step / (steps / 4))
        lines.append({"step": step, "tokens": tokens, "loss": round(level - 0.15 + rng.gauss(0, 0.06), 5),
                      "lr": round(3e-4 * min(1.0, step / 30), 8), "grad_norm": round(abs(rng.gauss(1.0, 0.3)), 4)})
        if step % eval_every == 0 or step == steps:
            ev = round(level + rng.gauss(0, 0.01), 5) if step < steps else end_loss
            lines.append({"step": step, "eval_loss": ev,
                          "eval_loss_by_denoiser": {"R": round(ev + 0.2, 5), "S": round(ev - 0.3, 5), "X": round(ev + 0.4, 5)}})
    return lines, tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--not-run", type=int, default=0)
    ap.add_argument("--name", default="openba-v2-tiny")
    ap.add_argument("--description", default="The OpenBA-V2 recipe on the tiny demo model: layer, width and vocabulary "
                                              "pruning, each followed by recovery pretraining.")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    run_dir = os.path.abspath(args.dir)
    os.makedirs(run_dir, exist_ok=True)

    shape = {"encoder_layers": 4, "decoder_layers": 12, "d_model": 128, "num_heads": 4, "ffn_hidden": 352, "vocab_size": 8192}
    input_params = parameters(**{"enc": 4, "dec": 12, "d": 128, "heads": 4, "ffn": 352, "vocab": 8192})
    input_loss = 6.2031
    # (kind, name, shape change, held-out loss after, seconds)
    plan = [
        ("eval", "evaluate the input", {}, input_loss, 41.2),
        ("layer", "drop layers by angular distance", {"encoder_layers": 3, "decoder_layers": 8}, 7.0514, 95.7),
        ("pretrain", "recover", {}, 6.3822, 1534.0),
        ("neuron", "width pruning by activation", {"d_model": 96, "num_heads": 3, "ffn_hidden": 256}, 7.6233, 121.4),
        ("pretrain", "recover", {}, 6.5517, 1402.9),
        ("vocab", "prune the vocabulary", {"vocab_size": 6144}, 6.5871, 63.0),
        ("pretrain", "recover", {}, 6.4905, 899.3),
        ("layer", "drop two decoder layers (explicit)", {"decoder_layers": 6}, 6.9012, 30.2),
        ("pretrain", "recover", {}, 6.6033, 1212.6),
        ("eval", "final evaluation", {}, 6.6033, 38.8),
    ]
    steps, previous, done_count = [], input_loss, len(plan) - args.not_run
    for i, (kind, name, change, after, seconds) in enumerate(plan, start=1):
        step_id = f"{i:02d}-{kind}"
        shape_in = dict(shape)
        shape = {**shape, **change}
        params = parameters(shape["encoder_layers"], shape["decoder_layers"], shape["d_model"], shape["num_heads"],
                            shape["ffn_hidden"], shape["vocab_size"])
        entry = {"index": i, "id": step_id, "name": name, "kind": kind, "status": "done" if i <= done_count else "not run",
                 "seconds": seconds, "input": "input" if i == 1 else steps[-1]["output"], "output": f"{step_id}/model",
                 "architecture": architecture(shape), **shape, "parameters": params,
                 "compression_ratio": input_params / params, "removed_fraction": 1 - params / input_params,
                 "heldout_before": previous, "heldout_after": after,
                 "heldout_after_by_denoiser": {"R": round(after + 0.2, 4), "S": round(after - 0.3, 4), "X": round(after + 0.4, 4)},
                 "summary": name, "report": f"{step_id}/report.json"}
        if entry["status"] != "done":
            entry.update({"seconds": None, "heldout_before": None, "heldout_after": None, "heldout_after_by_denoiser": {},
                          "summary": ""})
            del entry["report"]
            steps.append(entry)
            continue
        step_dir = os.path.join(run_dir, step_id)
        report = {"stage": kind, "input": dict(shape_in), "output": dict(shape)}
        if kind == "layer":
            scored = i < 5
            drop = {"encoder": [], "decoder": [5, 6]}
            report = layer_report(rng, shape_in, shape, scored, drop)
            entry["summary"] = (f"encoder layers {drop['encoder']}; decoder layers {drop['decoder']} "
                                f"({report['removed']['reason']})")
        elif kind == "neuron":
            report = neuron_report(rng, shape_in, shape)
            entry["summary"] = report["removed_summary"]
            entry["baseline"] = {"score": "random", "heldout_after": 8.4127, "report": f"{step_id}-random/report.json",
                                 "dir": f"{step_id}-random/model"}
            write_json(os.path.join(run_dir, f"{step_id}-random", "report.json"),
                       {"stage": "width", "scores": {"kind": "width", "method": "random"}})
        elif kind == "vocab":
            report = vocab_report(shape_in, shape, 8000, 5950)
            entry["summary"] = "2050 pieces (least frequent in the corpus)"
        elif kind == "pretrain":
            lines, tokens = metrics_lines(rng, args.train_steps, previous, after)
            os.makedirs(step_dir, exist_ok=True)
            with open(os.path.join(step_dir, "metrics.jsonl"), "w") as f:
                for line in lines:
                    f.write(json.dumps(line) + "\n")
            entry["train"] = {"steps": args.train_steps, "tokens": tokens, "metrics": f"{step_id}/metrics.jsonl",
                              "launcher": "openba-pretrain --nproc 2"}
            entry["summary"] = f"{args.train_steps} steps, {tokens} tokens"
        write_json(os.path.join(step_dir, "report.json"), report)
        steps.append(entry)
        previous = after

    done = [s for s in steps if s["status"] == "done"]
    first_prune = next(s for s in steps if s["kind"] in ("layer", "neuron", "vocab"))
    base_loss = first_prune["heldout_before"] if first_prune["status"] == "done" else (done[-1]["heldout_after"] if done else None)
    final = done[-1] if done else None
    final_params = final["parameters"] if final else input_params
    report = {
        "format": "openba-pipeline-report/1",
        "pipeline": {"name": args.name, "description": args.description, "file": os.path.join(run_dir, "pipeline.yaml"),
                     "sha256": "5f0c3a9d2be1" + "0" * 52},
        "run_dir": run_dir,
        "input": {"dir": "build/test-data/demo/training/base", "architecture": architecture(
            {"encoder_layers": 4, "decoder_layers": 12, "d_model": 128, "num_heads": 4, "ffn_hidden": 352, "vocab_size": 8192}),
                  "parameters": input_params, "heldout_loss": input_loss if done else None},
        "heldout": {"data": "build/test-data/demo/training/heldout", "examples": 256, "per_denoiser": 32,
                    "encoder_tokens": 98304, "decoder_tokens": 24576},
        "steps": steps,
        "summary": {"base_step": "01-eval" if done else "input", "base_parameters": input_params, "final_parameters": final_params,
                    "compression_ratio": input_params / final_params, "removed_fraction": 1 - final_params / input_params,
                    "base_heldout_loss": base_loss, "final_heldout_loss": final["heldout_after"] if final else None,
                    "wall_time_s": round(sum(s["seconds"] for s in done), 3), "steps_done": len(done),
                    "steps_total": len(steps)},
    }
    write_json(os.path.join(run_dir, "report.json"), report)


if __name__ == "__main__":
    main()

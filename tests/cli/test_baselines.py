"""The pipeline's baselines and its one held-out set, on the tiny model:
every held-out figure for one checkpoint agrees (train.log, metrics.jsonl,
report.json); a distilled recovery step beside the same step without
distillation; the from-scratch baseline (same examples and tokens as the
recovery steps, the same held-out examples, the report's numbers recomputed
here from the files); re-running skips it; every bad baseline option fails
before anything is written."""
import os
import re
import unittest

from cli_support import demo_training_assets, json_lines, read_binary, read_json, run, tool, SOURCE_DIR
from chromium import render
from test_pipeline import COMPRESS, DEMO_TRAIN, PipelineCase
from test_report import chart, parse_page


def value_pipeline(assets, name="value", steps_extra="", scratch="  scratch: {lr: [1.0e-3, 3.0e-3], extend: 2}\n",
                   recover=None):
    recover = recover if recover is not None else """
    distill: {teacher: base, alpha: 0.5, temperature: 2.0}
    baseline: ul2"""
    return f"""name: {name}
model: {assets['base']}
data:
  train: {assets['train']}
  heldout: {assets['heldout']}
  heldout_per_denoiser: 2
  heldout_seed: 4
  encoder_tokens: 96
  decoder_tokens: 48
defaults:
  compress:
    calib-samples: 16
  pretrain:
    config: {DEMO_TRAIN}
    set:
      trainer: {{steps: 4, micro_batch: 4, global_batch: 4, lr: 1.0e-3, warmup_steps: 1}}
      checkpoint: {{every: 2}}
      eval: {{every: 2}}
      logging: {{every: 1, tensorboard: false}}
steps:
  - kind: pretrain
    name: base
  - kind: neuron
    ffn: 256
    heads: 2
    round-to: 16
  - kind: pretrain
    name: recover{recover}
{steps_extra}baselines:
{scratch}"""


def metrics(path):
    with open(path) as f:
        return json_lines(f.read())


def first_reaching(curve, target):
    for i, (t, l) in enumerate(curve):
        if l <= target:
            if i == 0:
                return t
            t0, l0 = curve[i - 1]
            return t0 + (l0 - target) / (l0 - l) * (t - t0)
    return None


class Baselines(PipelineCase):
    def test_distillation_scratch_and_one_heldout_set(self):
        config = self.write(value_pipeline(self.assets))
        out = self.path("run")
        _, stdout, _ = self.pipeline(config, out)
        report = read_json(os.path.join(out, "report.json"))
        steps = {s["id"]: s for s in report["steps"]}
        self.assertEqual(report["heldout"]["seed"], 4)
        self.assertEqual(report["heldout"]["examples"], 14)

        # One held-out set: for each pretrain step, its own evaluations at
        # step 0 and at the end are the report's before/after (the same
        # checkpoints), in metrics.jsonl and in train.log.
        for sid in ("01-base", "03-recover"):
            evals = [m for m in metrics(os.path.join(out, sid, "metrics.jsonl")) if "eval_loss" in m]
            self.assertEqual([m["step"] for m in evals], [0, 2, 4])
            self.assertAlmostEqual(evals[0]["eval_loss"], steps[sid]["heldout_before"], delta=1e-5 * evals[0]["eval_loss"])
            self.assertAlmostEqual(evals[-1]["eval_loss"], steps[sid]["heldout_after"], delta=1e-5 * evals[-1]["eval_loss"])
            log = open(os.path.join(out, sid, "train.log")).read()
            printed = float(re.findall(r"step 4: held-out loss ([\d.]+)", log)[-1])
            self.assertAlmostEqual(printed, steps[sid]["heldout_after"], delta=6e-5)
            recorded = open(os.path.join(out, sid, "config.yaml")).read()
            self.assertRegex(recorded, r"seed: 4")  # eval.seed is the run's heldout_seed
            self.assertIn("examples_per_denoiser: 2", recorded)
        # ... and the compression step measured the same examples.
        width = read_json(os.path.join(out, "02-neuron", "report.json"))
        self.assertEqual(width["options"]["heldout_seed"], 4)
        self.assertAlmostEqual(width["heldout"]["before"]["loss"], steps["01-base"]["heldout_after"], places=9)

        # Distillation from the base step's output, beside the same step without it.
        recover = steps["03-recover"]
        self.assertEqual(recover["train"]["distill"]["teacher"], os.path.join(out, "01-base", "final"))
        self.assertEqual(recover["train"]["distill"]["teacher_ref"], "base")
        distilled = [m for m in metrics(os.path.join(out, "03-recover", "metrics.jsonl")) if "loss" in m]
        self.assertTrue(all("kd_loss" in m and "teacher_ce" in m for m in distilled))
        b = recover["baseline"]
        self.assertEqual(b["kind"], "ul2")
        plain = [m for m in metrics(os.path.join(out, b["metrics"])) if "loss" in m]
        self.assertTrue(all("kd_loss" not in m for m in plain))
        self.assertEqual([m["tokens"] for m in plain], [m["tokens"] for m in distilled])  # the same examples
        self.assertEqual(b["tokens"], recover["train"]["tokens"])
        ul2_config = open(os.path.join(out, "03-recover-ul2", "config.yaml")).read()
        self.assertNotIn("distill", ul2_config)
        main_config = open(os.path.join(out, "03-recover", "config.yaml")).read()
        self.assertIn("distill:", main_config)
        self.assertEqual(ul2_config, re.sub(r"(?m)^distill:\n(?:  .*\n)*", "", main_config))
        ul2_evals = [m for m in metrics(os.path.join(out, b["metrics"])) if "eval_loss" in m]
        self.assertAlmostEqual(b["heldout_after"], ul2_evals[-1]["eval_loss"], delta=1e-5 * b["heldout_after"])
        # The ul2 run is openba-pretrain by hand on its recorded config.
        by_hand = self.path("ul2-by-hand")
        run([tool("openba-pretrain"), "--config", os.path.join(out, "03-recover-ul2", "config.yaml"), "--out", by_hand,
             "--quiet"])
        self.assertEqual(read_binary(os.path.join(by_hand, "final", "model.safetensors")),
                         read_binary(os.path.join(out, "03-recover-ul2", "final", "model.safetensors")))

        # The from-scratch baseline.
        s = report["baselines"]["scratch"]
        self.assertEqual(s["compared_step"], "03-recover")
        self.assertEqual(s["compared_loss"], recover["heldout_after"])
        self.assertEqual(s["recovery_steps"], ["03-recover"])
        self.assertEqual(s["recovery_tokens"], recover["train"]["tokens"])
        self.assertEqual((s["recovery_examples"], s["examples"], s["steps"]), (16, 16, 4))
        init = os.path.join(out, "baseline-scratch", "init")
        self.assertEqual(read_json(os.path.join(init, "config.json")),
                         read_json(os.path.join(out, "03-recover", "final", "config.json")))
        self.assertNotEqual(read_binary(os.path.join(init, "model.safetensors")),
                            read_binary(os.path.join(out, "02-neuron", "model.safetensors")))
        self.assertEqual([r["lr"] for r in s["sweep"]], [1e-3, 3e-3])
        for r in s["sweep"]:
            self.assertEqual(r["status"], "done")
            lines = metrics(os.path.join(out, r["metrics"]))
            train = [m for m in lines if "loss" in m]
            evals = [m for m in lines if "eval_loss" in m]
            self.assertEqual(len(train), 4)
            self.assertEqual(train[-1]["tokens"], r["tokens"])
            # Same examples count and budgets: the same tokens up to the examples' lengths.
            self.assertAlmostEqual(r["tokens"], s["recovery_tokens"], delta=0.03 * s["recovery_tokens"])
            self.assertAlmostEqual(train[0]["lr"], r["lr"])  # warmup 1: the first step runs at lr
            self.assertAlmostEqual(evals[-1]["eval_loss"], r["heldout_loss"], delta=1e-5 * r["heldout_loss"])
            self.assertAlmostEqual(evals[0]["eval_loss"], 9.0, delta=0.3)  # from random init: ~ln(8192)
            cfg = open(os.path.join(out, r["dir"], "..", "config.yaml")).read()
            self.assertIn("seed: 4", cfg)
        best = min(s["sweep"], key=lambda r: r["heldout_loss"])
        self.assertEqual(s["best"]["lr"], best["lr"])
        self.assertAlmostEqual(s["margin"], best["heldout_loss"] - s["compared_loss"], places=12)
        ext = s["extended"]
        self.assertEqual((ext["lr"], ext["steps"]), (best["lr"], 8))
        # The curves and the tokens to match, recomputed from the files.
        ext_curve = [[m["tokens"], m["eval_loss"]] for m in metrics(os.path.join(out, ext["metrics"])) if "eval_loss" in m]
        self.assertEqual(s["extended_curve"], ext_curve)
        self.assertEqual(s["tokens_to_match"], first_reaching(ext_curve, s["compared_loss"]))
        self.assertEqual(s["searched_tokens"], ext_curve[-1][0])
        lineage = [[0, steps["02-neuron"]["heldout_before"]], [0, steps["02-neuron"]["heldout_after"]]]
        lineage += [[m["tokens"], m["eval_loss"]] for m in metrics(os.path.join(out, "03-recover", "metrics.jsonl"))
                    if "eval_loss" in m and m["tokens"] > 0]  # step 0 measures the pruned model again
        self.assertEqual(s["lineage_curve"], lineage)
        self.assertIn("compression", s["verdict"])
        # Two rates: the best is an edge of the sweep, and the verdict says so.
        self.assertTrue(s["best_at_sweep_edge"])
        self.assertIn("the sweep may not bracket scratch's best", s["verdict"])
        self.assertIn("from scratch:", stdout)
        self.assertIn("03-recover: distilled", stdout)

        page = render(os.path.join(out, "report.html"), self.path("report.png"), height=5000)
        self.assertEqual(page["errors"], [])
        for anchor in ('id="chart-scratch"', 'id="chart-distillation"', 'id="verdict"'):
            self.assertIn(anchor, page["dom"])
        # The value-of-compression chart draws the report's curves, point for point.
        root = parse_page(os.path.join(out, "report.html"))
        marks = {}
        for el in chart(root, "chart-scratch").iter():
            if el.get("class") == "marker":
                marks.setdefault(el.get("data-key"), []).append([float(el.get("data-x")), float(el.get("data-y"))])
        for key, curve in (("compressed lineage (prune, recover)", s["lineage_curve"]),
                           (f"from scratch, best lr ({best['lr']:g})", s["scratch_curve"])):
            self.assertEqual(len(marks[key]), len(curve), key)
            for (x1, y1), (x2, y2) in zip(marks[key], curve):
                self.assertAlmostEqual(x1, x2, delta=1e-6 * max(1, abs(x2)))
                self.assertAlmostEqual(y1, y2, delta=1e-9 * abs(y2) + 1e-11)
        bars = {b.get("data-key"): float(b.get("height")) for b in chart(root, "chart-distillation").iter("rect")
                if b.get("class") == "bar"}
        self.assertAlmostEqual(bars["03-recover/UL2 only"] / bars["03-recover/distilled"],
                               b["heldout_after"] / recover["heldout_after"], places=3)

        # Running again skips every step and every baseline run.
        stamp = os.stat(os.path.join(out, ext["dir"], "model.safetensors")).st_mtime_ns
        _, again, _ = self.pipeline(config, out)
        self.assertEqual(again.count("done earlier, skipped"), 3)
        self.assertNotIn("== baseline", again)
        self.assertEqual(os.stat(os.path.join(out, ext["dir"], "model.safetensors")).st_mtime_ns, stamp)
        self.assertEqual(read_json(os.path.join(out, "report.json"))["baselines"], report["baselines"])

        # A wider sweep trains only the new rate (and the longer run again only if the best changed).
        wider = self.write(value_pipeline(self.assets, scratch="  scratch: {lr: [1.0e-3, 3.0e-3, 2.0e-3], extend: 2}\n"))
        _, more, _ = self.pipeline(wider, out)
        self.assertEqual(more.count("done earlier, skipped"), 3)
        self.assertIn("== baseline scratch-lr-0.002:", more)
        self.assertNotIn("== baseline scratch-lr-0.001:", more)
        self.assertNotIn("== baseline scratch-lr-0.003:", more)
        widened = read_json(os.path.join(out, "report.json"))["baselines"]["scratch"]
        self.assertEqual([r["lr"] for r in widened["sweep"]], [1e-3, 3e-3, 2e-3])
        self.assertEqual(widened["sweep"][:2], s["sweep"])
        new_best = min(widened["sweep"], key=lambda r: r["heldout_loss"])["lr"]
        self.assertEqual("== baseline scratch-extended:" in more, new_best != best["lr"])


class BadBaselines(PipelineCase):
    def assertRefused(self, text, *needles):
        config = self.write(text, "bad.yaml")
        out = self.path("never")
        self.assertFails([COMPRESS, "--pipeline", config, "--out", out], *needles)
        self.assertFalse(os.path.exists(out), "nothing may be written before the checks pass")

    def test_bad_options_fail_before_anything_runs(self):
        good = value_pipeline(self.assets)
        lines = good.splitlines()

        def line_of(fragment):
            return next(i + 1 for i, l in enumerate(lines) if fragment in l)

        self.assertRefused(good.replace("teacher: base", "teacher: recover"), "names step 03-recover, this step itself")
        self.assertRefused(value_pipeline(self.assets, recover="\n    distill: {teacher: later}",
                                          steps_extra="  - kind: pretrain\n    name: later\n"),
                           "names step 04-later, which comes after this one")
        twice = value_pipeline(self.assets, recover="\n    distill: {teacher: pretrain}").replace(
            "  - kind: pretrain\n    name: base\n", "  - kind: pretrain\n  - kind: pretrain\n")
        self.assertRefused(twice, "several earlier steps are named so (01-pretrain, 02-pretrain)")
        self.assertRefused(good.replace("teacher: base", f"teacher: {self.path('nowhere')}"),
                           "neither 'input', nor a step before this one, nor a checkpoint directory")
        self.assertRefused(good.replace("alpha: 0.5", "alpha: 2"), f"bad.yaml:{line_of('alpha: 0.5')}",
                           "distill.alpha must be in [0, 1]")
        self.assertRefused(good.replace("temperature: 2.0", "temperature: -1"), "distill.temperature must be positive")
        self.assertRefused(good.replace("temperature: 2.0", "temperature: 2.0, top_k: 100000"),
                           "distill.top_k 100000 is larger than the vocabulary")
        self.assertRefused(good.replace("temperature: 2.0", "temprature: 2.0"), "unknown key")
        self.assertRefused(value_pipeline(self.assets, recover="\n    baseline: ul2"), "needs the step's distill: section")
        self.assertRefused(good.replace("eval: {every: 2}", "eval: {every: 2, seed: 3}"),
                           "'eval.seed' is the run's held-out set")
        self.assertRefused(good.replace("logging: {every: 1", "distill: {alpha: 1}\n      logging: {every: 1"),
                           "distillation is a step's distill: key")
        self.assertRefused(value_pipeline(self.assets, scratch="  scratch: {lr: []}\n"), "needs lr: [...]")
        self.assertRefused(value_pipeline(self.assets, scratch="  scratch: {lr: [1.0e-3], extend: 0}\n"),
                           "extend must be >= 1")
        self.assertRefused(value_pipeline(self.assets, scratch="  scratch: {lr: [1.0e-3], set: {trainer.lr: 1}}\n"),
                           "'trainer.lr' is set by the baseline itself")
        self.assertRefused(value_pipeline(self.assets, scratch="  scratch: {lr: [1.0e-3], lrs: [1]}\n"),
                           "unknown key 'baselines.scratch.lrs'")
        odd = value_pipeline(self.assets, scratch="  scratch: {lr: [1.0e-3], set: {trainer: {global_batch: 6}}}\n")
        scratch_line = next(i + 1 for i, l in enumerate(odd.splitlines()) if l.startswith("  scratch:"))
        self.assertRefused(odd, f"bad.yaml:{scratch_line}", "not a multiple of trainer.micro_batch")
        no_recovery = value_pipeline(self.assets, recover="").replace("  - kind: pretrain\n    name: recover\n", "")
        self.assertRefused(no_recovery, "baselines.scratch", "no pretrain step comes after a pruning step")


if __name__ == "__main__":
    unittest.main()

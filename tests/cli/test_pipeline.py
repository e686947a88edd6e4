"""openba-compress --pipeline: a whole staged run on the tiny demo model.

Checked against the tools run one by one (each step's model is the one
openba-compress --stage / openba-pretrain make by hand from the same input),
against parameter counts recomputed from the safetensors headers, for
resuming (skipped steps untouched; a pretrain step killed with SIGKILL
resumes to bit-identical weights), and for every bad input, which must fail
before anything is written.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

from cli_support import (TORCHRUN, ToolTestCase, demo_training_assets, read_binary, read_json, run, safetensors_header, tool,
                         SOURCE_DIR)

from chromium import png_stats, render

COMPRESS = tool("openba-compress")
DEMO_TRAIN = os.path.join(SOURCE_DIR, "configs", "train", "demo.yaml")


def model_and_data(assets):
    """The model, data: and defaults.compress of the test pipelines."""
    return f"""model: {assets['base']}
data:
  train: {assets['train']}
  heldout: {assets['heldout']}
  heldout_per_denoiser: 2
  encoder_tokens: 96
  decoder_tokens: 48
defaults:
  compress:
    calib-samples: 16"""


def mini_pipeline(assets, name="mini", pretrain_steps=4, extra_steps="", recover_extra=""):
    """A pipeline of every kind of step, small enough for a test: base
    pretraining, layer -> recover -> width (with its random baseline) ->
    recover -> eval -> vocab."""
    return f"""# a test pipeline
name: {name}
description: "every step kind on the tiny model <&>"
{model_and_data(assets)}
  pretrain:
    config: {DEMO_TRAIN}
    set:
      trainer: {{steps: {pretrain_steps}, micro_batch: 4, global_batch: 4, lr: 1.0e-3, warmup_steps: 1}}
      checkpoint: {{every: 2}}
      eval: {{every: 0}}
      logging: {{every: 1, tensorboard: false}}
steps:
  - kind: pretrain
    name: base
  - kind: layer
    keep-encoder-layers: 3
    keep-decoder-layers: 10
  - kind: pretrain
    name: recover-1{recover_extra}
  - kind: neuron
    ffn: 256
    heads: 2
    baseline: random
  - kind: pretrain
    name: recover-2
  - kind: eval
  - kind: vocab
    vocab: 4000
{extra_steps}"""


def parameters_from_headers(model_dir):
    """Parameters of a checkpoint recounted from its safetensors headers (a
    tied lm_head counted once, as the report counts)."""
    total, shapes = 0, {}
    for name in sorted(os.listdir(model_dir)):
        if name.endswith(".safetensors"):
            header = safetensors_header(os.path.join(model_dir, name))
            for key, info in header.items():
                if key != "__metadata__":
                    shapes[key] = info["shape"]
    for key, shape in shapes.items():
        if key == "lm_head.weight":
            continue  # tied to shared_embedding.weight in the tiny model
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


class PipelineCase(ToolTestCase):
    def setUp(self):
        super().setUp()
        self.assets = demo_training_assets()

    def write(self, text, name="pipeline.yaml"):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def pipeline(self, config, out, *extra, expect_ok=True):
        return run([COMPRESS, "--pipeline", config, "--out", out, "--quiet", *extra], expect_ok=expect_ok)


class EndToEnd(PipelineCase):
    def test_every_step_matches_the_tools_run_by_hand(self):
        config = self.write(mini_pipeline(self.assets))
        out = self.path("run")
        _, stdout, _ = self.pipeline(config, out)
        ids = ["01-base", "02-layer", "03-recover-1", "04-neuron", "05-recover-2", "06-eval", "07-vocab"]
        for i in ids:
            self.assertTrue(os.path.isfile(os.path.join(out, i, "report.json")), i)
        self.assertTrue(os.path.isfile(os.path.join(out, "04-neuron-random", "model.safetensors")))
        self.assertIn("report: " + os.path.join(out, "report.html"), stdout)
        report = read_json(os.path.join(out, "report.json"))
        self.assertEqual([s["id"] for s in report["steps"]], ids)
        self.assertTrue(all(s["status"] == "done" for s in report["steps"]))

        # The layer step is openba-compress --stage layer by hand on the base step's output.
        by_hand = self.path("layer-by-hand")
        run([COMPRESS, "--stage", "layer", "--model", os.path.join(out, "01-base", "final"), "--out", by_hand,
             "--keep-encoder-layers", "3", "--keep-decoder-layers", "10", "--calib", self.assets["train"],
             "--calib-samples", "16", "--eval", self.assets["heldout"], "--eval-samples", "2", "--encoder-tokens",
             "96", "--decoder-tokens", "48", "--quiet"])
        self.assertEqual(read_binary(os.path.join(by_hand, "model.safetensors")),
                         read_binary(os.path.join(out, "02-layer", "model.safetensors")))
        # The recovery step is openba-pretrain by hand with the configuration it recorded.
        trained = self.path("recover-by-hand")
        run([tool("openba-pretrain"), "--config", os.path.join(out, "03-recover-1", "config.yaml"), "--out", trained,
             "--quiet"])
        self.assertEqual(read_binary(os.path.join(trained, "final", "model.safetensors")),
                         read_binary(os.path.join(out, "03-recover-1", "final", "model.safetensors")))
        with open(os.path.join(out, "03-recover-1", "config.yaml")) as f:
            recorded = f.read()
        self.assertIn(os.path.join(out, "02-layer"), recorded)  # it trained the layer step's output

        # Shapes and parameter counts against the files.
        steps = {s["id"]: s for s in report["steps"]}
        self.assertEqual((steps["02-layer"]["encoder_layers"], steps["02-layer"]["decoder_layers"]), (3, 10))
        self.assertEqual((steps["04-neuron"]["ffn_hidden"], steps["04-neuron"]["num_heads"]), (256, 2))
        self.assertEqual(steps["07-vocab"]["vocab_size"], (4000 + 103 + 127) // 128 * 128)
        for s in report["steps"]:
            if s["kind"] != "eval":
                self.assertEqual(s["parameters"], parameters_from_headers(s["output"]), s["id"])
        base = parameters_from_headers(self.assets["base"])
        final = parameters_from_headers(os.path.join(out, "07-vocab"))
        self.assertEqual(report["summary"]["base_parameters"], base)
        self.assertEqual(report["summary"]["final_parameters"], final)
        self.assertAlmostEqual(report["summary"]["compression_ratio"], base / final, places=12)
        self.assertEqual(report["summary"]["base_step"], "01-base")

        # Held-out losses: every step on the same examples, so a step's
        # "before" is the previous step's "after" (the same model measured twice).
        seq = report["steps"]
        for prev, cur in zip(seq, seq[1:]):
            self.assertAlmostEqual(cur["heldout_before"], prev["heldout_after"], places=9, msg=cur["id"])
        self.assertAlmostEqual(steps["06-eval"]["heldout_after"], steps["05-recover-2"]["heldout_after"], places=9)
        self.assertAlmostEqual(report["summary"]["base_heldout_loss"], steps["01-base"]["heldout_after"], places=12)
        self.assertAlmostEqual(report["summary"]["final_heldout_loss"], steps["07-vocab"]["heldout_after"], places=12)
        # The random baseline is the same shape, scored the released way.
        baseline = read_json(os.path.join(out, steps["04-neuron"]["baseline"]["report"]))
        self.assertEqual(baseline["options"]["score"], "random")
        self.assertEqual(baseline["output"]["architecture"], read_json(os.path.join(out, "04-neuron", "report.json"))
                         ["output"]["architecture"])
        # The lineage runs through the pretrain steps to the pipeline's input.
        vocab_report = read_json(os.path.join(out, "07-vocab", "report.json"))
        self.assertEqual(vocab_report["compression"]["first_model_parameters"], base)
        self.assertEqual([e["stage"] for e in vocab_report["lineage"]],
                         ["pretrain", "layer", "pretrain", "neuron", "pretrain"])
        # The metrics file the report points at is the step's training log.
        metrics = os.path.join(out, steps["03-recover-1"]["train"]["metrics"])
        with open(metrics) as f:
            self.assertEqual(sum(1 for line in f if '"loss"' in line and '"eval_loss"' not in line), 4)
        # The printed table names every step and the compression.
        for i in ids:
            self.assertIn(i, stdout)
        self.assertIn(f"{base / final:.2f}", stdout)

        # The page of this real run in headless Chromium: no page errors,
        # well-formed, every step and chart there, a non-blank PNG.
        page = render(os.path.join(out, "report.html"), self.path("report.png"), height=4000)
        self.assertEqual(page["errors"], [])
        for i in ids:
            self.assertIn(i, page["dom"])
        self.assertGreaterEqual(page["dom"].count("<svg"), 8)
        stats = png_stats(page["png"])
        self.assertEqual(stats["width"], 1280)
        self.assertGreater(stats["non_white"], 100000)

        # Running the same command again skips everything and changes nothing.
        before = {i: os.stat(os.path.join(out, i, "report.json")).st_mtime_ns for i in ids}
        _, again, _ = self.pipeline(config, out)
        self.assertEqual(again.count("done earlier, skipped"), len(ids))
        self.assertEqual(before, {i: os.stat(os.path.join(out, i, "report.json")).st_mtime_ns for i in ids})

        # --from 5 redoes the last steps; CPU runs are deterministic, so the models are identical.
        old = read_binary(os.path.join(out, "07-vocab", "model.safetensors"))
        _, redo, _ = self.pipeline(config, out, "--from", "recover-2")
        self.assertEqual(redo.count("done earlier, skipped"), 4)
        self.assertEqual(read_binary(os.path.join(out, "07-vocab", "model.safetensors")), old)


class Resume(PipelineCase):
    def test_until_then_the_rest(self):
        config = self.write(mini_pipeline(self.assets))
        out = self.path("run")
        self.pipeline(config, out, "--until", "02-layer")
        self.assertEqual(sorted(n for n in os.listdir(out) if n[0].isdigit()), ["01-base", "02-layer"])
        report = read_json(os.path.join(out, "report.json"))
        self.assertEqual([s["status"] for s in report["steps"]], ["done"] * 2 + ["not run"] * 5)
        # Planned shapes of the steps not run yet.
        self.assertEqual(report["steps"][3]["ffn_hidden"], 256)
        layer = os.stat(os.path.join(out, "02-layer", "model.safetensors"))
        _, stdout, _ = self.pipeline(config, out)
        self.assertEqual(stdout.count("done earlier, skipped"), 2)
        self.assertEqual(os.stat(os.path.join(out, "02-layer", "model.safetensors")).st_ino, layer.st_ino)
        self.assertTrue(os.path.isdir(os.path.join(out, "07-vocab")))

    def test_a_killed_pretrain_step_resumes_bit_identically(self):
        config = self.write(mini_pipeline(self.assets, pretrain_steps=12))
        reference = self.path("reference")
        self.pipeline(config, reference, "--until", "03-recover-1")
        out = self.path("killed")
        self.pipeline(config, out, "--until", "02-layer")
        proc = subprocess.Popen([COMPRESS, "--pipeline", config, "--out", out, "--quiet", "--until", "03-recover-1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        checkpoint = os.path.join(out, "03-recover-1", "checkpoints", "step-00000004")
        while not os.path.exists(checkpoint) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.assertTrue(os.path.exists(checkpoint))
        self.assertFalse(os.path.exists(os.path.join(out, "03-recover-1", "final")))
        _, stdout, _ = run([COMPRESS, "--pipeline", config, "--out", out, "--until", "03-recover-1"])
        self.assertIn("03-recover-1: resuming from its last checkpoint", stdout)
        self.assertEqual(read_binary(os.path.join(out, "03-recover-1", "final", "model.safetensors")),
                         read_binary(os.path.join(reference, "03-recover-1", "final", "model.safetensors")))


class Launchers(PipelineCase):
    def test_a_pretrain_step_through_a_launcher_line(self):
        # openba-pretrain's own launcher (nproc: 2) and a torchrun line.
        logs = self.path("torchrun-logs")
        text = mini_pipeline(self.assets, recover_extra=f"""
    launcher: "{TORCHRUN} --nproc_per_node 2 --no_python --redirects 2 --tee 2 --log_dir {logs}" """)
        text = text.replace("    name: base\n", "    name: base\n    nproc: 2\n")
        text = text.replace("micro_batch: 4, global_batch: 4", "micro_batch: 2, global_batch: 4")  # splits over 2 ranks
        config = self.write(text)
        out = self.path("run")
        _, stdout, _ = self.pipeline(config, out, "--until", "03-recover-1")
        self.assertIn("--nproc 2", stdout)
        self.assertIn(f"{TORCHRUN} --nproc_per_node 2", stdout)
        for step in ("01-base", "03-recover-1"):
            with open(os.path.join(out, step, "train.log")) as f:
                log = f.read()
            self.assertIn("2 rank(s)", log)
        report = read_json(os.path.join(out, "report.json"))
        self.assertIn("torchrun", report["steps"][2]["train"]["launcher"])
        self.assertEqual(report["steps"][2]["status"], "done")

def measure_pipeline(assets, task, measure=None):
    """Layer pruning, an eval step and vocabulary pruning with measure: over them."""
    measure = measure or "speed: {batches: [1, 2], new_tokens: 4, input_length: 8, encoder_batch: 2, repeats: 1}"
    return f"""name: measured
{model_and_data(assets)}
measure:
  {measure}
  tasks: [{task}]
steps:
  - kind: layer
    keep-encoder-layers: 3
    keep-decoder-layers: 10
  - kind: eval
  - kind: vocab
    vocab: 4000
"""


class Measured(PipelineCase):
    """measure: the input model and every step's output: speed figures
    consistent with themselves, task accuracy equal to openba-eval --task run
    by hand on the same model, the vocabulary step's tasks skipped, resuming
    without measuring again, and changed options measured again without
    redoing a step."""

    def write_task(self):
        import json
        import random
        rng = random.Random(3)
        path = self.path("task.jsonl")
        with open(path, "w") as f:
            for _ in range(12):
                choices = [[rng.randrange(5, 8000) for _ in range(rng.randint(1, 4))] for _ in range(4)]
                f.write(json.dumps({"context_ids": [rng.randrange(5, 8000) for _ in range(10)] + [1],
                                    "choice_ids": choices, "answer": rng.randrange(4)}) + "\n")
        return path

    def test_measured_run(self):
        task = self.write_task()
        config = self.write(measure_pipeline(self.assets, task))
        out = self.path("run")
        _, stdout, _ = run([COMPRESS, "--pipeline", config, "--out", out])
        report = read_json(os.path.join(out, "report.json"))
        models = [("input", self.assets["base"], report["input"]["measured"])]
        models += [(s["id"], s["output"], s["measured"]) for s in report["steps"]]
        for name, model_dir, m in models:
            speed = m["speed"]
            self.assertEqual([d["batch"] for d in speed["decode"]], [1, 2], name)
            for d in speed["decode"]:
                self.assertEqual(d["new_tokens"], 4)
                self.assertAlmostEqual(d["tokens_per_s"], d["batch"] * 4 / d["seconds"], places=6)
            self.assertGreater(speed["encoder_tokens_per_s"], 0)
            self.assertEqual(m["options"]["speed"]["batches"], [1, 2])
            (t,) = m["tasks"]
            self.assertEqual(t["file"], task)
            if name.endswith("vocab"):
                self.assertIn("skipped", t)
                self.assertIn("the task's ids are the input model's 8192", t["skipped"])
                continue
            # The same model scored by openba-eval --task, by hand.
            lines = [__import__("json").loads(x) for x in
                     run([tool("openba-eval"), "--model", model_dir, "--task", task, "--quiet"])[1].splitlines()]
            summary = lines[-1]
            for key in ("accuracy", "accuracy_stderr", "accuracy_mean_token", "chance", "items"):
                self.assertAlmostEqual(t[key], summary[key], places=12, msg=f"{name} {key}")
        speedup = report["summary"]["measured_speedup"]
        base, final = report["input"]["measured"]["speed"], report["steps"][-1]["measured"]["speed"]
        for i, d in enumerate(speedup["decode"]):
            self.assertAlmostEqual(d["decode"], final["decode"][i]["tokens_per_s"] / base["decode"][i]["tokens_per_s"])
        self.assertIn("measured (decode tokens/s by batch", stdout)
        with open(os.path.join(out, "report.html")) as f:
            page = f.read()
        self.assertIn('id="measured"', page)
        self.assertIn('id="chart-measured-speedup"', page)
        self.assertIn("task.jsonl accuracy", page)

        # Again: nothing is measured again.
        _, again, _ = run([COMPRESS, "--pipeline", config, "--out", out])
        self.assertNotIn("== measure:", again)
        self.assertEqual(read_json(os.path.join(out, "report.json"))["steps"][0]["measured"], report["steps"][0]["measured"])
        # Other options: every model measured again, no step redone.
        config = self.write(measure_pipeline(self.assets, task, "speed: {batches: [3], new_tokens: 2, input_length: 8, "
                                                              "encoder_batch: 2, repeats: 1}"))
        _, changed, _ = run([COMPRESS, "--pipeline", config, "--out", out])
        self.assertIn("== measure: the input model", changed)
        self.assertIn("== measure: 01-layer (done earlier)", changed)
        self.assertIn("done earlier, skipped", changed)
        again = read_json(os.path.join(out, "report.json"))
        self.assertEqual([d["batch"] for d in again["steps"][1]["measured"]["speed"]["decode"]], [3])

    def test_bad_measure_sections(self):
        task = self.write_task()
        out = self.path("bad-run")
        cases = [("speed: {batches: [0]}", "measure.speed batches: 0 is not a positive batch size"),
                 ("speed: {batches: [1.5]}", "batch sizes must be integers"),
                 ("speed: {new_tokens: 0}", "new_tokens must be at least 1"),
                 ("speed: {tokens: 3}", "tokens"),
                 ("speed: {}\n  devices: cpu", "devices")]
        for measure, needle in cases:
            config = self.write(measure_pipeline(self.assets, task, measure))
            rc, _, err = self.pipeline(config, out, expect_ok=False)
            self.assertEqual(rc, 1, measure)
            self.assertIn(needle, err, measure)
            self.assertIn("pipeline.yaml:", err, measure)
            self.assertFalse(os.path.exists(out), measure)
        config = self.write(measure_pipeline(self.assets, self.path("missing.jsonl")))
        rc, _, err = self.pipeline(config, out, expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("task file " + self.path("missing.jsonl") + " not found", err)


class BadInputs(PipelineCase):
    def assertRefused(self, text, *needles, out=None, extra=()):
        config = self.write(text, "bad.yaml")
        out = out or self.path("never")
        err = self.assertFails([COMPRESS, "--pipeline", config, "--out", out, *extra], *needles)
        if out.endswith("never"):
            self.assertFalse(os.path.exists(out), "nothing may be written before the checks pass")
        return err

    def test_bad_files_fail_with_their_line_before_anything_runs(self):
        good = mini_pipeline(self.assets)
        lines = good.splitlines()

        def line_of(fragment):
            return next(i + 1 for i, l in enumerate(lines) if fragment in l)

        self.assertRefused(good.replace("kind: vocab", "kind: vocabulary"), f"bad.yaml:{line_of('kind: vocab')}",
                           "unknown step kind 'vocabulary'")
        self.assertRefused(good.replace("    ffn: 256", "    fnn: 256"), f"bad.yaml:{line_of('ffn: 256')}",
                           "unknown key 'steps[3].fnn'")
        self.assertRefused(good.replace("    heads: 2", "    heads: 2\n    vocab: 10"), "'vocab' is not an option of neuron steps")
        self.assertRefused(good.replace("keep-decoder-layers: 10", "keep-decoder-layers: 13"),
                           f"bad.yaml:{line_of('kind: layer')}", "step 02-layer", "keep-decoder-layers 13")
        self.assertRefused(good.replace("ffn: 256", "ffn: 400"), "step 04-neuron", "ffn 400 is larger than the 352")
        self.assertRefused(good.replace("vocab: 4000", "vocab: 9000"), "step 07-vocab", "vocab 9000 is larger than the tokenizer's")
        self.assertRefused(good.replace("lr: 1.0e-3", "lr: 1.0e-3, stepz: 3"), f"bad.yaml:{line_of('lr: 1.0e-3')}",
                           "unknown key 'trainer.stepz'")
        self.assertRefused(good.replace("global_batch: 4", "global_batch: 6"), "not a multiple of trainer.micro_batch")
        self.assertRefused(good.replace("    name: recover-2", "    name: recover-2\n    set: {model.checkpoint: x}"),
                           "model.checkpoint is set by the pipeline")
        self.assertRefused(good.replace("    heads: 2", "    heads: 2\n    eval-samples: 3"),
                           "'eval-samples' is set once for the whole run in the data: section")
        self.assertRefused(good.replace("    keep-encoder-layers: 3", "    keep-encoder-layers: 3\n    baseline: random"),
                           "baseline: random is an option of neuron steps")
        self.assertRefused(good + "  - kind: eval\n", "step 08-eval", "comes after the vocabulary step 07-vocab")
        self.assertRefused(good.replace("name: recover-2", "name: recover-1"), "a second step named 'recover-1'")
        self.assertRefused(good.replace(self.assets["heldout"], self.path("missing")), "missing")
        other = self.path("other-tokenizer-shards")
        shutil.copytree(self.assets["heldout"], other)
        manifest = os.path.join(other, "manifest.json")
        # The same shards claiming another tokenizer (first hex digit of the fingerprint changed).
        with open(manifest) as f:
            text = re.sub(r'("fingerprint": ")(.)', lambda m: m.group(1) + ("1" if m.group(2) == "0" else "0"),
                          f.read(), count=1)
        with open(manifest, "w") as f:
            f.write(text)
        self.assertRefused(good.replace(self.assets["heldout"], other), "data.heldout")
        self.assertRefused(good, "--until 9: no such step", extra=("--until", "9"))
        self.assertRefused(good, "--from pretrain: no such step", extra=("--from", "pretrain"))

    def test_run_directories_of_other_runs_are_refused(self):
        config = self.write(mini_pipeline(self.assets))
        out = self.path("run")
        self.pipeline(config, out, "--until", "1")
        # Another pipeline's run.
        self.assertRefused(mini_pipeline(self.assets, name="other"), "holds the run of another pipeline ('mini'",
                           out=out)
        # The same pipeline with other options for a step already done.
        self.assertRefused(mini_pipeline(self.assets, pretrain_steps=5), "step 01-base of this run was made with other options",
                           "trainer.steps=4", "--from 1", out=out)
        # --from a step whose predecessors are not done.
        self.assertRefused(mini_pipeline(self.assets), "--from 04-neuron: step 02-layer before it is not done yet",
                           out=out, extra=("--from", "04-neuron"))
        # A directory that is not a pipeline run.
        stranger = self.path("stranger")
        os.makedirs(os.path.join(stranger, "something"))
        self.assertRefused(mini_pipeline(self.assets), "not empty and not a pipeline run", out=stranger)
        # The input model inside the run directory.
        self.assertRefused(mini_pipeline(self.assets), "must not contain each other",
                           out=os.path.dirname(self.assets["base"]))

    def test_the_published_recipe_file_parses(self):
        # Without the 15B checkpoint the checks stop at the model: every key
        # of the file was read (an unknown key or kind would fail first).
        proc = subprocess.run([COMPRESS, "--pipeline", os.path.join("configs", "pipelines", "openba-v2.yaml"),
                               "--out", self.path("run")], cwd=SOURCE_DIR, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("checkpoints/OpenBA-15B", proc.stderr)
        self.assertNotIn("unknown", proc.stderr)


if __name__ == "__main__":
    unittest.main()

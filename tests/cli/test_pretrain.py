"""openba-pretrain end to end on the tiny model and the demo shards: the
loss falls, a kill -9 at any moment resumes to a bit-identical run, bad
configs fail before training, and the reports are what they claim."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import unittest

from cli_support import (PYTHON_DIR, SOURCE_DIR, ToolTestCase, demo_training_assets, json_lines, read_binary,
                         read_json, run, tool)

BASE_CONFIG = """
model:
  checkpoint: {base}
data:
  train:
    - shards: {train}
  heldout: {heldout}
  seed: 3
ul2:
  encoder_tokens: 96
  decoder_tokens: 48
trainer:
  steps: 12
  micro_batch: 4
  global_batch: 8
  lr: 2.0e-3
  min_lr: 2.0e-4
  warmup_steps: 3
  seed: 0
  threads: 2
checkpoint:
  every: 4
  keep: 3
eval:
  every: 6
  examples_per_denoiser: 2
  batch: 8
logging:
  every: 1
"""


class PretrainCase(ToolTestCase):
    def config(self, extra=""):
        assets = demo_training_assets()
        path = self.path("train.yaml")
        with open(path, "w") as f:
            f.write(BASE_CONFIG.format(**assets) + extra)
        return path

    def pretrain(self, out, *flags, config=None, ok=True, env=None):
        cmd = [tool("openba-pretrain"), "--config", config or self.config(), "--out", out, "--quiet", *flags]
        return run(cmd, expect_ok=ok, env=env)

    def losses(self, out):
        with open(os.path.join(out, "metrics.jsonl")) as f:
            return [(d["step"], d["loss"]) for d in json_lines(f.read()) if "loss" in d]


class Training(PretrainCase):
    def test_loss_falls_and_reports_are_consistent(self):
        out = self.path("run")
        self.pretrain(out, "--set", "trainer.steps=24", "--set", "eval.every=12")
        metrics = json_lines(open(os.path.join(out, "metrics.jsonl")).read())
        steps = [m for m in metrics if "loss" in m]
        self.assertEqual([m["step"] for m in steps], list(range(1, 25)))
        first, last = sum(m["loss"] for m in steps[:4]) / 4, sum(m["loss"] for m in steps[-4:]) / 4
        self.assertLess(last, first - 0.5)  # a from-scratch model learns fast at first
        evals = [m for m in metrics if "eval_loss" in m]
        self.assertEqual([m["step"] for m in evals], [0, 12, 24])  # 0: the starting point
        self.assertLess(evals[1]["eval_loss"], evals[0]["eval_loss"])
        self.assertLess(evals[2]["eval_loss"], evals[1]["eval_loss"])
        self.assertEqual(len(evals[0]["eval_loss_by_denoiser"]), 7)
        for m in steps:
            self.assertGreater(m["tokens_per_s"], 0)
            self.assertTrue(0 <= m["padding"] < 1)
            self.assertIn("mfu", m)
        self.assertEqual(steps[0]["lr"], 2e-3 / 3)  # warmup: lr * (step + 1) / warmup
        # Checkpoints every 4 steps, last 3 kept, plus the final model.
        self.assertEqual(sorted(os.listdir(os.path.join(out, "checkpoints"))),
                         ["step-00000016", "step-00000020", "step-00000024"])
        state = read_json(os.path.join(out, "checkpoints", "step-00000024", "trainer_state.json"))
        self.assertEqual((state["step"], state["examples"], state["optimizer_steps"]), (24, 192, 24))
        report = json.loads(run([tool("openba-inspect"), os.path.join(out, "final"), "--json"])[1])
        self.assertEqual(report["config"]["dtype"], "f32")
        self.assertIn("spiece.model", report["tokenizer_files"])
        self.assertTrue(os.path.exists(os.path.join(out, "config.yaml")))
        # TensorBoard holds the same losses (read by an independent reader).
        tb_dir = os.path.join(out, "tensorboard")
        events = run([sys.executable, os.path.join(PYTHON_DIR, "read_tfevents.py"),
                      os.path.join(tb_dir, os.listdir(tb_dir)[0])])[1]
        tb = {(e["tag"], e["step"]): e["value"] for e in json_lines(events)}
        for m in steps:
            self.assertAlmostEqual(tb[("loss", m["step"])], m["loss"], delta=1e-6 * m["loss"])
        self.assertIn(("eval_loss_by_denoiser/S(0.25)", 12), tb)

    def test_accumulation_gives_the_same_losses(self):
        a, b = self.path("a"), self.path("b")
        self.pretrain(a, "--set", "trainer.steps=4")
        self.pretrain(b, "--set", "trainer.steps=4", "--set", "trainer.micro_batch=8")
        for (s1, l1), (s2, l2) in zip(self.losses(a), self.losses(b)):
            self.assertEqual(s1, s2)
            self.assertAlmostEqual(l1, l2, delta=1e-5 * l1)

    def test_cuda_style_path(self):
        # The path a GPU trains through (ATen ops, SDPA with the padding mask,
        # _fused_adamw_, statistics brought back once per step), forced on CPU:
        # the same losses as the fused CPU kernels to float rounding, and held-out.
        a, b = self.path("fused"), self.path("cuda-style")
        self.pretrain(a, "--set", "trainer.steps=6", "--set", "eval.every=3")
        self.pretrain(b, "--set", "trainer.steps=6", "--set", "eval.every=3", env={"OPENBA_CUDA_STYLE_PATH": "1"})
        fused, aten = self.losses(a), self.losses(b)
        self.assertEqual([s for s, _ in fused], list(range(1, 7)))
        for (s1, l1), (s2, l2) in zip(fused, aten):
            self.assertEqual(s1, s2)
            self.assertAlmostEqual(l1, l2, delta=1e-4 * l1)
        self.assertNotEqual(fused, aten)  # two implementations, not one run twice
        evals = [[m["eval_loss"] for m in json_lines(open(os.path.join(out, "metrics.jsonl")).read())
                  if "eval_loss" in m] for out in (a, b)]
        self.assertEqual(len(evals[0]), 3)
        for x, y in zip(*evals):
            self.assertAlmostEqual(x, y, delta=1e-4 * x)

    def test_activation_checkpointing_gives_identical_losses(self):
        a, b = self.path("a"), self.path("b")
        for out, extra in ((a, []), (b, ["--set", "trainer.activation_checkpointing=true"])):
            self.pretrain(out, "--set", "trainer.steps=3", "--set", "trainer.dropout=0.1", *extra)
        self.assertEqual(len(self.losses(a)), 3)
        self.assertEqual(self.losses(a), self.losses(b))  # bit for bit: same kernels, dropout replayed
        self.assertEqual(read_binary(os.path.join(a, "final", "model.safetensors")),
                         read_binary(os.path.join(b, "final", "model.safetensors")))

    def test_preview(self):
        out = self.path("preview")
        run([tool("openba-pretrain"), "--config", self.config(), "--out", out, "--preview", "40"])
        examples = json_lines(open(os.path.join(out, "preview.jsonl")).read())
        self.assertEqual(len(examples), 40)
        names = {e["denoiser"] for e in examples}
        self.assertTrue({"R(3,0.15)", "S(0.25)", "X(64,0.5)"} & names)
        for e in examples:
            self.assertLessEqual(len(e["input_ids"]), 96)
            self.assertLessEqual(len(e["labels"]), 48)
            self.assertEqual(e["labels"][-1], 1)
            self.assertEqual(e["input_text"][:3], "<" + e["denoiser"][0] + ">")
            self.assertTrue(e["target_text"].startswith("<extra_id_0>"))

    def test_dynamic_mixture_moves_weights(self):
        out = self.path("dul2")
        extra = "  dynamic:\n    initial: [.02, .02, .8, .1, .02, .02, .02]\n    targets: [1, 1, 1, 1, 1, 1, 1]\n    c: 0.0001\n"
        config = self.config()
        with open(config) as f:
            text = f.read().replace("  decoder_tokens: 48\n", "  decoder_tokens: 48\n" + extra)
        with open(config, "w") as f:
            f.write(text)
        self.pretrain(out, "--set", "trainer.steps=6", "--set", "eval.every=3", config=config)
        evals = [m for m in json_lines(open(os.path.join(out, "metrics.jsonl")).read()) if "mixture_weights" in m]
        self.assertEqual(len(evals), 2)
        w = evals[0]["mixture_weights"]
        self.assertAlmostEqual(sum(w.values()), 1.0, places=9)
        self.assertNotAlmostEqual(w["S(0.25)"], 0.8, places=3)
        # The rule by hand from the logged held-out losses: softmax(log w + (l - t)), mixed with uniform.
        import math
        init = [.02, .02, .8, .1, .02, .02, .02]
        losses = list(evals[0]["eval_loss_by_denoiser"].values())
        logits = [math.log(x) + (l - 1) for x, l in zip(init, losses)]
        z = sum(math.exp(v) for v in logits)
        expected = [(1 - 1e-4) * math.exp(v) / z + 1e-4 / 7 for v in logits]
        for got, want in zip(w.values(), expected):
            self.assertAlmostEqual(got, want, places=9)


class Resume(PretrainCase):
    def test_kill_9_then_resume_is_bit_identical(self):
        # Dropout on: the random masks must resume exactly too.
        dropout = ["--set", "trainer.dropout=0.1"]
        reference = self.path("reference")
        self.pretrain(reference, *dropout)
        expected = self.losses(reference)
        self.assertEqual(len(expected), 12)
        rng = random.Random(7)
        for attempt in range(2):
            out = self.path(f"killed{attempt}")
            proc = subprocess.Popen([tool("openba-pretrain"), "--config", self.config(), "--out", out, "--quiet",
                                     *dropout],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Kill at a random moment after the first checkpoint exists.
            deadline = time.time() + 120
            while not os.path.exists(os.path.join(out, "checkpoints", "step-00000004")) and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.pretrain(out, "--resume", *dropout)
            self.assertEqual(self.losses(out), expected)  # exact floats, every step
            self.assertEqual(read_binary(os.path.join(out, "final", "model.safetensors")),
                             read_binary(os.path.join(reference, "final", "model.safetensors")))
            leftovers = [n for n in os.listdir(os.path.join(out, "checkpoints")) if n.startswith(".")]
            self.assertEqual(leftovers, [])

    def test_refuses_to_train_over_an_existing_run(self):
        out = self.path("run")
        self.pretrain(out, "--set", "trainer.steps=4")
        self.assertFails([tool("openba-pretrain"), "--config", self.config(), "--out", out, "--quiet"],
                         "already holds training checkpoints", "--resume")


class NonFinite(PretrainCase):
    def test_a_non_finite_step_is_skipped_and_counted(self):
        out = self.path("skip")
        self.pretrain(out, "--set", "trainer.steps=6", "--set", "debug.nonfinite_at_steps=[3]")
        metrics = json_lines(open(os.path.join(out, "metrics.jsonl")).read())
        skipped = [m for m in metrics if "skipped" in m]
        self.assertEqual([m["step"] for m in skipped], [3])
        self.assertEqual([m for m in metrics if "loss" in m][-1]["nonfinite_total"], 1)
        log = open(os.path.join(out, "train.log")).read()
        self.assertIn("step 3: non-finite loss or gradient, step skipped", log)

    def test_too_many_in_a_row_aborts_with_a_diagnostic(self):
        out = self.path("abort")
        self.assertFails([tool("openba-pretrain"), "--config", self.config(), "--out", out, "--quiet", "--set",
                          "debug.nonfinite_at_steps=[2,3,4]", "--set", "trainer.max_nonfinite_in_a_row=3"],
                         "aborting at step 4", "3 steps in a row", "trainer.max_nonfinite_in_a_row")


class BadConfigs(PretrainCase):
    def fails(self, needles, *sets, config=None):
        cmd = [tool("openba-pretrain"), "--config", config or self.config(), "--out", self.path("o"), "--quiet"]
        for s in sets:
            cmd += ["--set", s]
        self.assertFails(cmd, *needles)
        self.assertFalse(os.path.exists(os.path.join(self.path("o"), "checkpoints")))

    def test_unknown_keys_name_their_line_or_flag(self):
        config = self.config("trainer_typo:\n  steps: 3\n")
        lines = open(config).read().split("\n")
        line = lines.index("trainer_typo:") + 1
        self.fails([f"train.yaml:{line}", "unknown key 'trainer_typo'"], config=config)
        self.fails(["--set trainer.stepz", "unknown key 'trainer.stepz'"], "trainer.stepz=3")
        self.fails(["'trainer.steps' must be an integer"], "trainer.steps=many")

    def test_batches_that_do_not_divide(self):
        self.fails(["global_batch 10 is not a multiple of trainer.micro_batch 4"], "trainer.global_batch=10")

    def test_budgets_too_small_for_a_denoiser(self):
        self.fails(["denoiser R(3,0.15)", "no raw length fits", "decoder 2 tokens"], "ul2.decoder_tokens=2")

    def test_shards_from_another_tokenizer(self):
        assets = demo_training_assets()
        other = self.path("other-tok")
        corpus = os.path.join(os.path.dirname(assets["tokenizer"]), "corpus")
        run([tool("openba-tokenize"), "train", "--input", os.path.join(corpus, "train", "zh.txt"), "--vocab-size",
             "6000", "--out", other])
        shards = self.path("other-shards")
        run([tool("openba-tokenize"), "encode", "--tokenizer", other, "--input",
             os.path.join(corpus, "heldout", "zh.txt"), "--out", shards, "--quiet"])
        self.fails(["token shards were made with tokenizer", "re-encode"], f"data.heldout={shards}")

    def test_a_checkpoint_that_does_not_match_the_model(self):
        out = self.path("run")
        self.pretrain(out, "--set", "trainer.steps=4")
        other = self.path("other-base")
        assets = demo_training_assets()
        tiny = open(os.path.join(SOURCE_DIR, "configs", "models", "tiny.yaml")).read().replace("decoder_layers: 12",
                                                                                               "decoder_layers: 6")
        with open(self.path("tiny6.yaml"), "w") as f:
            f.write(tiny)
        run([tool("openba-init"), "--config", self.path("tiny6.yaml"), "--tokenizer", assets["tokenizer"], "--out",
             other, "--quiet"])
        self.assertFails([tool("openba-pretrain"), "--config", self.config(), "--out", out, "--quiet", "--resume",
                          "--set", f"model.checkpoint={other}"], "differs from the configured model")


if __name__ == "__main__":
    unittest.main(verbosity=2)

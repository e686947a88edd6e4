"""openba-pretrain with a distill: section: the distillation terms against an
independent reference, a teacher equal to the student, alpha 0 exactly as no
distillation, kill -9 and resume bit-identical, two ranks equal to one
process, and every bad teacher refused before any step runs."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import unittest

from cli_support import PYTHON_DIR, SOURCE_DIR, demo_training_assets, json_lines, read_binary, run, tool
from test_pretrain import PretrainCase


def train_lines(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [d for d in json_lines(f.read()) if "loss" in d]


class DistillCase(PretrainCase):
    def teacher(self, name="teacher", seed=5):
        """Another tiny model with the same tokenizer (a different init seed)."""
        assets = demo_training_assets()
        out = self.path(name)
        if not os.path.isdir(out):
            run([tool("openba-init"), "--config", os.path.join(SOURCE_DIR, "configs", "models", "tiny.yaml"),
                 "--tokenizer", assets["tokenizer"], "--out", out, "--seed", str(seed), "--quiet"])
        return out

    def distill_config(self, teacher, alpha=0.5, temperature=2.0, top_k=0):
        return self.config(f"distill:\n  teacher: {teacher}\n  alpha: {alpha}\n  temperature: {temperature}\n"
                           f"  top_k: {top_k}\n")


class Distillation(DistillCase):
    def test_terms_match_the_reference_on_the_first_batch(self):
        teacher = self.teacher()
        assets = demo_training_assets()
        for temperature, top_k in ((2.0, 0), (1.0, 50)):
            out = self.path(f"run-{top_k}")
            config = self.distill_config(teacher, alpha=0.7, temperature=temperature, top_k=top_k)
            self.pretrain(out, "--set", "trainer.steps=1", config=config)
            first = train_lines(out)[0]
            # The 8 examples of step 1 (global batch 8), before any update.
            preview = self.path(f"preview-{top_k}.jsonl")
            run([tool("openba-pretrain"), "--config", config, "--out", self.path(f"p-{top_k}"), "--preview", "8"])
            os.rename(os.path.join(self.path(f"p-{top_k}"), "preview.jsonl"), preview)
            ref = json.loads(run([sys.executable, os.path.join(PYTHON_DIR, "distill_reference.py"), assets["base"],
                                  teacher, preview, "8", str(temperature), str(top_k)])[1])
            n = ref["targets"]
            self.assertAlmostEqual(first["ce_loss"], ref["ce"] / n, delta=2e-5 * ref["ce"] / n)
            self.assertAlmostEqual(first["teacher_ce"], ref["teacher_ce"] / n, delta=2e-5 * ref["teacher_ce"] / n)
            self.assertGreater(ref["kd"], 0.01 * n)  # two different random models disagree
            self.assertAlmostEqual(first["kd_loss"], ref["kd"] / n, delta=1e-4 * ref["kd"] / n)
            self.assertAlmostEqual(first["loss"], 0.3 * first["ce_loss"] + 0.7 * first["kd_loss"], delta=1e-9)
            log = open(os.path.join(out, "train.log")).read()
            self.assertIn("distillation from teacher " + teacher, log)
            self.assertIn("per rank", log)

    def test_teacher_equal_to_student_gives_zero_kd_at_step_1(self):
        assets = demo_training_assets()
        out = self.path("self")
        self.pretrain(out, "--set", "trainer.steps=2", config=self.distill_config(assets["base"]))
        first = train_lines(out)[0]
        self.assertLess(abs(first["kd_loss"]), 1e-5)
        self.assertAlmostEqual(first["teacher_ce"], first["ce_loss"], delta=1e-5 * first["ce_loss"])
        self.assertGreater(train_lines(out)[1]["kd_loss"], 1e-4)  # after an update they differ

    def test_alpha_0_trains_exactly_as_without_distillation(self):
        plain, zero = self.path("plain"), self.path("alpha0")
        self.pretrain(plain, "--set", "trainer.steps=4", "--set", "trainer.dropout=0.1")
        self.pretrain(zero, "--set", "trainer.steps=4", "--set", "trainer.dropout=0.1",
                      config=self.distill_config(self.teacher(), alpha=0.0))
        a, b = train_lines(plain), train_lines(zero)
        self.assertEqual([d["loss"] for d in a], [d["ce_loss"] for d in b])
        self.assertEqual([d["loss"] for d in a], [d["loss"] for d in b])
        self.assertTrue(all(d["kd_loss"] > 0 for d in b))  # measured, weight 0
        self.assertEqual(read_binary(os.path.join(plain, "final", "model.safetensors")),
                         read_binary(os.path.join(zero, "final", "model.safetensors")))

    def test_alpha_1_is_pure_distillation_and_pulls_towards_the_teacher(self):
        out = self.path("alpha1")
        self.pretrain(out, "--set", "trainer.steps=12", config=self.distill_config(self.teacher(), alpha=1.0, temperature=1.0))
        lines = train_lines(out)
        self.assertEqual(lines[0]["loss"], lines[0]["kd_loss"])
        self.assertLess(sum(d["kd_loss"] for d in lines[-3:]) / 3, 0.5 * lines[0]["kd_loss"])

    def test_kill_9_then_resume_is_bit_identical(self):
        config = self.distill_config(self.teacher(), alpha=0.5, top_k=20)
        dropout = ["--set", "trainer.dropout=0.1"]
        reference = self.path("reference")
        self.pretrain(reference, *dropout, config=config)
        expected = train_lines(reference)
        self.assertEqual(len(expected), 12)
        out = self.path("killed")
        proc = subprocess.Popen([tool("openba-pretrain"), "--config", config, "--out", out, "--quiet", *dropout],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(out, "checkpoints", "step-00000004")) and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(random.Random(3).uniform(0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.pretrain(out, "--resume", *dropout, config=config)
        got = train_lines(out)
        for key in ("loss", "ce_loss", "kd_loss", "teacher_ce"):
            self.assertEqual([d[key] for d in got], [d[key] for d in expected], key)
        self.assertEqual(read_binary(os.path.join(out, "final", "model.safetensors")),
                         read_binary(os.path.join(reference, "final", "model.safetensors")))

    def test_two_ranks_match_one_process(self):
        config = self.distill_config(self.teacher(), alpha=0.5)
        shape = ["--set", "trainer.steps=4", "--set", "trainer.global_batch=8", "--set", "trainer.threads=1"]
        single, multi = self.path("single"), self.path("ranks2")
        self.pretrain(single, *shape, "--set", "trainer.micro_batch=4", config=config)
        self.pretrain(multi, *shape, "--set", "trainer.micro_batch=2", "--nproc", "2", config=config)
        a, b = train_lines(single), train_lines(multi)
        self.assertEqual(len(a), 4)
        for key in ("loss", "ce_loss", "kd_loss", "teacher_ce"):
            for x, y in zip(a, b):
                self.assertAlmostEqual(x[key], y[key], delta=2e-5 * abs(x[key]), msg=f"{key} step {x['step']}")
        log = open(os.path.join(multi, "train.log")).read()
        self.assertIn("distillation from teacher", log)


class BadTeachers(DistillCase):
    def refused(self, config, *needles):
        out = self.path("o")
        self.assertFails([tool("openba-pretrain"), "--config", config, "--out", out, "--quiet"], *needles)
        self.assertFalse(os.path.exists(os.path.join(out, "metrics.jsonl")))
        self.assertFalse(os.path.exists(os.path.join(out, "checkpoints")))

    def test_options_out_of_range(self):
        teacher = self.teacher()
        self.refused(self.distill_config(teacher, alpha=1.5), "distill.alpha must be in [0, 1]", "train.yaml:")
        self.refused(self.distill_config(teacher, temperature=0), "distill.temperature must be positive")
        self.refused(self.distill_config(teacher, top_k=-1), "distill.top_k must be >= 0")
        self.refused(self.distill_config(teacher, top_k=9000), "distill.top_k 9000 is larger than the vocabulary (8192 rows)")
        self.refused(self.config("distill:\n  alpha: 0.5\n"), "teacher")
        self.refused(self.config("distill:\n  teacher: x\n  alfa: 0.5\n"), "unknown key 'distill.alfa'")

    def test_teacher_that_is_no_checkpoint_or_another_family(self):
        self.refused(self.distill_config(self.path("missing")), "distill.teacher " + self.path("missing"), "not a directory")
        other = self.path("bert")
        os.makedirs(other)
        with open(os.path.join(other, "config.json"), "w") as f:
            json.dump({"model_type": "bert", "hidden_size": 128}, f)
        self.refused(self.distill_config(other), "distill.teacher " + other, "model_type 'bert'")

    def test_teacher_with_another_tokenizer_or_vocabulary(self):
        assets = demo_training_assets()
        corpus = os.path.join(os.path.dirname(assets["tokenizer"]), "corpus")
        tok = self.path("other-tok")
        run([tool("openba-tokenize"), "train", "--input", os.path.join(corpus, "train", "zh.txt"), "--vocab-size",
             "6000", "--out", tok])
        other = self.path("other-teacher")
        run([tool("openba-init"), "--config", os.path.join(SOURCE_DIR, "configs", "models", "tiny.yaml"),
             "--tokenizer", tok, "--out", other, "--quiet"])
        self.refused(self.distill_config(other), "distill.teacher " + other, "its tokenizer", "is not the student's")
        # The right tokenizer but other vocabulary rows.
        rows = self.path("rows")
        tiny = open(os.path.join(SOURCE_DIR, "configs", "models", "tiny.yaml")).read().replace(
            "vocab_size: 8192", "vocab_size: 8320")
        with open(self.path("tiny-rows.yaml"), "w") as f:
            f.write(tiny)
        run([tool("openba-init"), "--config", self.path("tiny-rows.yaml"), "--out", rows, "--quiet"])
        for name in os.listdir(assets["tokenizer"]):
            with open(os.path.join(assets["tokenizer"], name), "rb") as src, open(os.path.join(rows, name), "wb") as dst:
                dst.write(src.read())
        self.refused(self.distill_config(rows), "8320 vocabulary rows", "8192")

    def test_teacher_inside_the_run_output(self):
        out = self.path("o")
        inside = os.path.join(out, "final")
        os.makedirs(inside)
        self.refused(self.distill_config(inside), "is inside this run's output directory", "cannot be its own teacher")
        self.refused(self.distill_config(out), "is inside this run's output directory")


if __name__ == "__main__":
    unittest.main(verbosity=2)

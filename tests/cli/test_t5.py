"""The T5 family (T5 v1.0, v1.1 / Flan-T5, mT5, UL2) through our tools,
against transformers' own T5ForConditionalGeneration (tests/python/t5_reference.py):
checkpoints that save_pretrained wrote (safetensors with the tied names
dropped, torch.save .bin shards with shared storage) evaluate to the same
per-example losses, and the directories we write load in transformers and
evaluate to ours."""
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from cli_support import (BUILD_DIR, PYTHON_DIR, SOURCE_DIR, ToolTestCase, demo_assets, json_lines, read_binary, read_json, run,
                         safetensors_header, tool)
from test_compress import read_tensors
from test_pretrain import BASE_CONFIG

import torch

REFERENCE = os.path.join(PYTHON_DIR, "t5_reference.py")
T5_TINY = os.path.join(SOURCE_DIR, "configs", "models", "t5-tiny.json")


def t5_training_assets():
    """A T5 tokenizer (T5Tokenizer's files over the demo SentencePiece model:
    8000 pieces, sentinels 8099 down to 8000), the demo corpus encoded with
    it, and a random T5 v1.1 model of 8192 rows carrying the tokenizer; built
    once per build directory."""
    corpus, demo_tokenizer = demo_assets()
    root = os.path.join(BUILD_DIR, "test-data", "t5")
    ready = os.path.join(root, "assets")
    if not os.path.isdir(ready):
        os.makedirs(root, exist_ok=True)
        work = tempfile.mkdtemp(prefix="making-", dir=root)
        tok = os.path.join(work, "tokenizer")
        run([sys.executable, REFERENCE, "tokenizer", os.path.join(demo_tokenizer, "spiece.model"), tok])
        for split in ("train", "heldout"):
            run([tool("openba-tokenize"), "encode", "--tokenizer", tok, "--quiet", "--out", os.path.join(work, split),
                 "--input", os.path.join(corpus, split, "en.txt"), os.path.join(corpus, split, "zh.txt")])
        run([sys.executable, REFERENCE, "make", os.path.join(work, "base"), "v1_1", "--vocab-size", "8192",
             "--tokenizer", tok])
        run([tool("openba-init"), "--config", T5_TINY, "--tokenizer", tok, "--out", os.path.join(work, "tiny"),
             "--quiet"])
        try:
            os.rename(work, ready)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)  # another test process finished first
    return {"corpus": corpus, "tokenizer": os.path.join(ready, "tokenizer"), "train": os.path.join(ready, "train"),
            "heldout": os.path.join(ready, "heldout"), "base": os.path.join(ready, "base"),
            "tiny": os.path.join(ready, "tiny")}


class T5TestCase(ToolTestCase):
    def make(self, variant, *extra, name=None):
        out = self.path(name or variant)
        run([sys.executable, REFERENCE, "make", out, variant, *extra])
        return out

    def ours(self, model, data):
        lines = json_lines(run([tool("openba-eval"), "--model", model, "--data", data, "--quiet",
                                "--batch-size", "4"])[1])
        return lines[:-1], lines[-1]

    def reference(self, model, data):
        lines = json_lines(run([sys.executable, REFERENCE, "eval", model, data])[1])
        return lines[:-1], lines[-1]

    def assertSameLosses(self, model, data, reference_model=None):
        ours, ours_summary = self.ours(model, data)
        theirs, _ = self.reference(reference_model or model, data)
        self.assertEqual(len(ours), len(theirs))
        for i, (a, b) in enumerate(zip(ours, theirs)):
            self.assertEqual(a["tokens"], b["tokens"], f"example {i}")
            if b["loss"] is None:
                self.assertIsNone(a["loss"])
                continue
            self.assertLessEqual(abs(a["loss"] - b["loss"]), 1e-5 * abs(b["loss"]),
                                 f"example {i}: ours {a['loss']} transformers {b['loss']}")
        return ours_summary


class T5Eval(T5TestCase):
    def test_each_variant_matches_transformers(self):
        for variant in ("v1_0", "v1_1", "ul2", "stale"):
            with self.subTest(variant=variant):
                model = self.make(variant)
                summary = self.assertSameLosses(model, self.eval_data(vocab=512, n=12, seed=3))
                # Random weights of this scale sit well above ln(512).
                self.assertGreater(summary["loss"], 1.0)

    def test_torch_bin_shards(self):
        model = self.make("v1_1", "--format", "bin", "--shard-size", "40KB", name="bin")
        self.assertTrue(os.path.exists(os.path.join(model, "pytorch_model.bin.index.json")))
        self.assertSameLosses(model, self.eval_data(vocab=512, n=8, seed=4))

    def test_sharded_safetensors_tied(self):
        model = self.make("v1_0", "--shard-size", "60KB", name="sharded")
        index = read_json(os.path.join(model, "model.safetensors.index.json"))
        self.assertNotIn("lm_head.weight", index["weight_map"])  # save_pretrained dropped the tied names
        self.assertSameLosses(model, self.eval_data(vocab=512, n=8, seed=5))

    def test_half_precision_files(self):
        # Weights stored in bf16 (safetensors) and fp16 (.bin): both sides compute in fp32 from them.
        for dtype, fmt in (("bf16", "safetensors"), ("fp16", "bin")):
            with self.subTest(dtype=dtype):
                model = self.make("v1_1", "--dtype", dtype, "--format", fmt, name=f"v1_1-{dtype}")
                report = json.loads(run([tool("openba-inspect"), model, "--json"])[1])
                self.assertEqual(list(report["dtypes"]), [dtype.replace("fp", "f")])
                self.assertSameLosses(model, self.eval_data(vocab=512, n=6, seed=13))

    def test_mt5_vocabulary(self):
        model = self.make("mt5")
        report = json.loads(run([tool("openba-inspect"), model, "--json"])[1])
        self.assertEqual(report["config"]["vocab_size"], 250112)
        self.assertSameLosses(model, self.eval_data(vocab=250112, n=6, seed=6))


class T5Inspect(T5TestCase):
    def test_parameter_count_matches_the_files(self):
        for variant, tied in (("v1_0", True), ("v1_1", False)):
            with self.subTest(variant=variant):
                model = self.make(variant)
                report = json.loads(run([tool("openba-inspect"), model, "--json"])[1])
                header = safetensors_header(os.path.join(model, "model.safetensors"))
                numel = sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
                self.assertEqual(report["parameters"]["total"], numel)
                self.assertEqual(report["lm_head_tied"], tied)
                self.assertEqual(report["config"]["family"], "t5")


class T5Written(T5TestCase):
    """Directories we write: transformers loads them and computes our losses."""

    def test_init_from_a_t5_config_json(self):
        source = self.make("v1_1")
        out = self.path("init")
        run([tool("openba-init"), "--config", os.path.join(source, "config.json"), "--out", out, "--quiet",
             "--init", "hf", "--seed", "3"])
        config = read_json(os.path.join(out, "config.json"))
        self.assertEqual(config["model_type"], "t5")
        self.assertEqual(config["feed_forward_proj"], "gated-gelu")
        self.assertSameLosses(out, self.eval_data(vocab=512, n=8, seed=7))


class T5Compress(T5TestCase):
    """Every stage on T5 checkpoints, against transformers models cut by hand."""

    def compress(self, model, *args):
        return run([tool("openba-compress"), "--model", model, "--quiet", *args])

    def test_layer_drop_including_block_0(self):
        for variant in ("v1_0", "v1_1"):
            with self.subTest(variant=variant):
                model = self.make(variant)
                data = self.eval_data(vocab=512, n=8, seed=8)
                out = self.path(variant + "-layer")
                self.compress(model, "--stage", "layer", "--out", out, "--drop-encoder-layers", "0",
                              "--drop-decoder-layers", "0,2", "--eval", data)
                config = read_json(os.path.join(out, "config.json"))
                self.assertEqual((config["num_layers"], config["num_decoder_layers"]), (1, 1))
                by_hand = self.path(variant + "-by-hand")
                run([sys.executable, REFERENCE, "drop", model, by_hand, "--encoder", "0", "--decoder", "0,2"])
                # Ours evaluates as transformers' hand-cut model; our files load in transformers and agree.
                self.assertSameLosses(out, data, reference_model=by_hand)
                self.assertSameLosses(out, data)

    def test_width_pruning_heads_ffn_hidden(self):
        for variant, score in (("v1_1", "activation"), ("v1_0", "magnitude"), ("ul2", "taylor")):
            with self.subTest(variant=variant, score=score):
                model = self.make(variant)
                data = self.eval_data(vocab=512, n=8, seed=9)
                out = self.path(variant + "-width")
                heads = 2
                self.compress(model, "--stage", "neuron", "--out", out, "--heads", str(heads), "--ffn", "40",
                              "--hidden", "24", "--score", score, "--calib", data, "--eval", data)
                config = read_json(os.path.join(out, "config.json"))
                self.assertEqual((config["d_model"], config["num_heads"], config["d_ff"]), (24, heads, 40))
                by_hand = self.path(variant + "-pruned-by-hand")
                run([sys.executable, REFERENCE, "prune", model, os.path.join(out, "report.json"), by_hand])
                self.assertSameLosses(out, data, reference_model=by_hand)
                self.assertSameLosses(out, data)


class T5Vocab(T5TestCase):
    def test_vocabulary_pruning_reappends_the_sentinels(self):
        assets = t5_training_assets()
        out = self.path("vocab")
        run([tool("openba-compress"), "--model", assets["base"], "--out", out, "--quiet", "--stage", "vocab",
             "--vocab", "3000", "--corpus", assets["train"], "--eval", assets["heldout"], "--eval-samples", "2",
             "--encoder-tokens", "96", "--decoder-tokens", "48"])
        report = read_json(os.path.join(out, "report.json"))
        self.assertEqual(report["tokenizer"]["pieces_after"], 3000)
        self.assertEqual(report["tokenizer"]["check"]["mismatches"], 0)
        self.assertEqual(read_json(os.path.join(out, "config.json"))["vocab_size"], 3200)  # 3100 ids -> 128 multiple
        id_map = report["id_map"]
        for n in (0, 1, 99):  # <extra_id_N> = vocab - 1 - N, after the kept pieces
            self.assertEqual(id_map[8099 - n], 3099 - n)
        self.assertFalse(os.path.exists(os.path.join(out, "tokenizer.json")))
        # transformers' T5Tokenizer loads the rewritten files: its sentinels are ours, and
        # lines made only of kept pieces encode to the old ids mapped through the id map.
        sample = self.path("sample.txt")
        with open(os.path.join(assets["corpus"], "heldout", "en.txt"), encoding="utf-8") as f, \
                open(sample, "w", encoding="utf-8") as g:
            for i, line in enumerate(f):
                if i >= 300:
                    break
                g.write(line)
        old = json_lines(run([sys.executable, REFERENCE, "encode", assets["base"], sample])[1])
        new = json_lines(run([sys.executable, REFERENCE, "encode", out, sample])[1])
        checked = 0
        for a, b in zip(old, new):
            mapped = [id_map[x] for x in a]
            if all(m >= 0 for m in mapped):
                self.assertEqual(mapped, b)
                checked += 1
        self.assertGreater(checked, 30)
        # Embedding and lm_head rows follow the map; padding rows are zero.
        a, b = read_tensors(assets["base"]), read_tensors(out)
        kept = [i for i in range(len(id_map)) if id_map[i] >= 0]
        for name in ("shared.weight", "lm_head.weight"):
            self.assertEqual(b[name].shape[0], 3200)
            self.assertTrue(torch.equal(b[name][[id_map[i] for i in kept]], a[name][kept]), name)
            self.assertEqual(b[name][3100:].abs().sum().item(), 0)
        # The pruned model in transformers evaluates the mapped examples to our losses.
        data = self.path("mapped.jsonl")
        with open(data, "w") as g:
            for a_ids in old[:40]:
                mapped = [id_map[x] for x in a_ids]
                if len(a_ids) > 3 and all(m >= 0 for m in mapped):
                    g.write(json.dumps({"input_ids": mapped[:-2] + [1], "labels": mapped[-2:] + [1]}) + "\n")
        self.assertSameLosses(out, data)


class T5Pretrain(T5TestCase):
    def config(self, extra=""):
        assets = t5_training_assets()
        path = self.path("train.yaml")
        with open(path, "w") as f:
            f.write(BASE_CONFIG.format(**assets) + extra)
        return path

    def pretrain(self, out, *flags, extra=""):
        return run([tool("openba-pretrain"), "--config", self.config(extra), "--out", out, "--quiet", *flags])

    def test_distilled_data_parallel_matches_one_process(self):
        # The T5 v1.1 student distills from the tiny T5 (same tokenizer and rows) on two ranks.
        distill = f"distill:\n  teacher: {t5_training_assets()['tiny']}\n  alpha: 0.5\n  temperature: 1.0\n"
        shape = ["--set", "trainer.global_batch=8", "--set", "trainer.steps=4", "--set", "trainer.threads=1",
                 "--set", "checkpoint.every=0", "--set", "eval.every=0"]
        single, two = self.path("single"), self.path("two")
        self.pretrain(single, *shape, "--set", "trainer.micro_batch=4", extra=distill)
        self.pretrain(two, *shape, "--set", "trainer.micro_batch=2", "--nproc", "2", extra=distill)
        a, b = self.losses(two), self.losses(single)
        self.assertEqual([s for s, _ in a], [1, 2, 3, 4])
        for (step, x), (_, y) in zip(a, b):
            self.assertAlmostEqual(x, y, delta=2e-5 * abs(y), msg=f"step {step}")
        with open(os.path.join(two, "metrics.jsonl")) as f:
            first = [d for d in json_lines(f.read()) if "loss" in d][0]
        self.assertGreater(first["kd_loss"], 0)
        self.assertEqual(first["ranks"], 2)

    def losses(self, out):
        with open(os.path.join(out, "metrics.jsonl")) as f:
            return [(d["step"], d["loss"]) for d in json_lines(f.read()) if "loss" in d]

    def test_ul2_on_t5_learns_and_resumes_bit_identically(self):
        reference = self.path("reference")
        self.pretrain(reference, "--set", "trainer.dropout=0.1")
        expected = self.losses(reference)
        self.assertEqual(len(expected), 12)
        self.assertLess(sum(l for _, l in expected[-3:]) / 3, sum(l for _, l in expected[:3]) / 3 - 0.3)
        final = os.path.join(reference, "final")
        self.assertEqual(read_json(os.path.join(final, "config.json"))["model_type"], "t5")
        # The trained model loads in transformers and evaluates to our losses.
        self.assertSameLosses(final, self.eval_data(vocab=8100, n=6, seed=11))
        out = self.path("killed")
        proc = subprocess.Popen([tool("openba-pretrain"), "--config", self.config(), "--out", out, "--quiet",
                                 "--set", "trainer.dropout=0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(out, "checkpoints", "step-00000004")) and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(random.Random(3).uniform(0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.pretrain(out, "--resume", "--set", "trainer.dropout=0.1")
        self.assertEqual(self.losses(out), expected)
        self.assertEqual(read_binary(os.path.join(out, "final", "model.safetensors")),
                         read_binary(os.path.join(final, "model.safetensors")))


class T5Pipeline(T5TestCase):
    def test_the_shipped_t5_demo_pipeline(self):
        assets = t5_training_assets()
        with open(os.path.join(SOURCE_DIR, "configs", "pipelines", "t5-demo.yaml")) as f:
            text = f.read()
        for ours, theirs in (("runs/t5-demo/base", assets["tiny"]), ("runs/t5-demo/shards/train", assets["train"]),
                             ("runs/t5-demo/shards/heldout", assets["heldout"]),
                             ("configs/train/demo.yaml", os.path.join(SOURCE_DIR, "configs", "train", "demo.yaml"))):
            self.assertIn(ours, text)
            text = text.replace(ours, theirs)
        config = self.path("t5-demo.yaml")
        with open(config, "w") as f:
            f.write(text)
        out = self.path("run")
        run([tool("openba-compress"), "--pipeline", config, "--out", out, "--quiet"])
        report = read_json(os.path.join(out, "report.json"))
        ids = ["01-base", "02-layer", "03-recover-1", "04-width", "05-recover-2", "06-vocab"]
        self.assertEqual([s["id"] for s in report["steps"]], ids)
        self.assertTrue(all(s["status"] == "done" for s in report["steps"]))
        final = os.path.join(out, "06-vocab")
        config = read_json(os.path.join(final, "config.json"))
        self.assertEqual((config["num_layers"], config["num_decoder_layers"], config["num_heads"], config["d_ff"],
                          config["vocab_size"]), (1, 3, 2, 96, 4224))
        # The end of the chain loads in transformers and evaluates to our losses.
        self.assertSameLosses(final, self.eval_data(vocab=4100, n=6, seed=12))


class T5Task(T5TestCase):
    """openba-eval --task (ids form): every choice's summed log-likelihood
    against transformers' own, the predictions, accuracies and standard errors
    recomputed here, and bad task files named by line."""

    def write_task(self, items, name="task.jsonl"):
        path = self.path(name)
        with open(path, "w") as f:
            for i, item in enumerate(items):
                f.write(json.dumps(item) + "\n")
                if i == 2:
                    f.write("\n")  # blank lines are skipped
        return path

    def random_items(self, n, vocab, seed):
        rng = random.Random(seed)
        items = []
        for _ in range(n):
            choices = [[rng.randrange(2, vocab) for _ in range(rng.randint(1, 6))] for _ in range(rng.randint(2, 4))]
            items.append({"context_ids": [rng.randrange(2, vocab) for _ in range(rng.randint(3, 20))] + [1],
                          "choice_ids": choices, "answer": rng.randrange(len(choices))})
        return items

    def test_scores_match_transformers(self):
        model = self.make("v1_1")
        items = self.random_items(14, 512, seed=8)
        task = self.write_task(items)
        lines = json_lines(run([tool("openba-eval"), "--model", model, "--task", task, "--quiet",
                                "--batch-size", "3"])[1])
        ours, summary = lines[:-1], lines[-1]
        theirs = json_lines(run([sys.executable, REFERENCE, "task", model, task])[1])
        self.assertEqual(len(ours), len(items))
        correct, correct_mean = [], []
        for i, (item, a, b) in enumerate(zip(items, ours, theirs)):
            self.assertEqual(a["tokens"], [len(c) for c in item["choice_ids"]], f"item {i}")
            for x, y in zip(a["scores"], b["scores"]):
                self.assertAlmostEqual(x, y, delta=1e-4 * max(1.0, abs(y)), msg=f"item {i}")
            ranked = sorted(b["scores"], reverse=True)
            if ranked[0] - ranked[1] > 1e-3:  # transformers' own choice, where float rounding cannot flip it
                self.assertEqual(a["pred"], b["scores"].index(ranked[0]), f"item {i}")
            self.assertEqual(a["pred"], a["scores"].index(max(a["scores"])))
            means = [x / n for x, n in zip(a["scores"], a["tokens"])]
            self.assertEqual(a["pred_mean_token"], means.index(max(means)))
            self.assertEqual(a["correct"], a["pred"] == item["answer"])
            correct.append(a["correct"])
            correct_mean.append(a["pred_mean_token"] == item["answer"])
        n = len(items)
        for key, hits in (("accuracy", correct), ("accuracy_mean_token", correct_mean)):
            p = sum(hits) / n
            self.assertAlmostEqual(summary[key], p, places=12)
            self.assertAlmostEqual(summary[key + "_stderr"], math.sqrt(p * (1 - p) / (n - 1)), places=12)
        self.assertTrue(summary["summary"])
        self.assertEqual(summary["items"], n)
        self.assertAlmostEqual(summary["chance"], sum(1 / len(i["choice_ids"]) for i in items) / n, places=12)

    def test_decoder_prefix_matches_transformers(self):
        """decoder_prefix_ids (OpenBA's template decoder [0, <extra_id_0>]):
        read by the decoder, not scored; single-token choices after it are
        OpenBA's letter mode."""
        model = self.make("v1_1")
        items = self.random_items(8, 512, seed=12)
        for i, item in enumerate(items):
            item["decoder_prefix_ids"] = [0, 511 - i] if i % 2 == 0 else [0]
        items.append({"context_ids": [17, 18, 19, 1], "choice_ids": [[65], [66], [67], [68]], "answer": 2,
                      "decoder_prefix_ids": [0, 500]})
        task = self.write_task(items)
        ours = json_lines(run([tool("openba-eval"), "--model", model, "--task", task, "--quiet", "--batch-size", "5"])[1])[:-1]
        theirs = json_lines(run([sys.executable, REFERENCE, "task", model, task])[1])
        for i, (a, b) in enumerate(zip(ours, theirs)):
            for x, y in zip(a["scores"], b["scores"]):
                self.assertAlmostEqual(x, y, delta=1e-4 * max(1.0, abs(y)), msg=f"item {i}")
            self.assertEqual(a["tokens"], [len(c) for c in items[i]["choice_ids"]], f"item {i}")
        # A prefix of just the decoder start is the default.
        plain = [{k: v for k, v in item.items() if k != "decoder_prefix_ids"} for item in items[1:8:2]]
        plain_scores = json_lines(run([tool("openba-eval"), "--model", model, "--task", self.write_task(plain, "plain.jsonl"),
                                       "--quiet"])[1])[:-1]
        for a, b in zip(plain_scores, ours[1:8:2]):
            for x, y in zip(a["scores"], b["scores"]):
                self.assertAlmostEqual(x, y, delta=1e-5 * max(1.0, abs(y)))

    def test_bad_task_files(self):
        model = self.make("v1_0")
        good = {"context_ids": [5, 6, 1], "choice_ids": [[7], [8, 9]], "answer": 1}
        cases = [({k: v for k, v in good.items() if k != "answer"}, 'missing "answer"'),
                 ({**good, "answer": 2}, '"answer" 2 is outside the 2 choices'),
                 ({**good, "answer": "b"}, '"answer" must be an integer'),
                 ({**good, "choice_ids": []}, '"choice_ids" must be a non-empty array'),
                 ({**good, "choice_ids": [[7], []]}, '"choice_ids[1]" is empty'),
                 ({**good, "context_ids": [5, 100000]}, "context_ids[1] = 100000 is outside the vocabulary"),
                 ({**good, "decoder_prefix_ids": []}, '"decoder_prefix_ids"'),
                 ({**good, "decoder_prefix_ids": [0, 9999]}, "decoder_prefix_ids[1] = 9999 is outside the vocabulary")]
        for bad, message in cases:
            with self.subTest(message=message):
                task = self.write_task([good, good, bad], name="bad.jsonl")
                self.assertFails([tool("openba-eval"), "--model", model, "--task", task, "--quiet"],
                                 "bad.jsonl:3", message)
        task = self.write_task([good])
        self.assertFails([tool("openba-eval"), "--model", model, "--task", task, "--data", task], code=2)
        self.assertFails([tool("openba-eval"), "--model", model], code=2)


class T5BadInputs(T5TestCase):
    def test_umt5_is_refused_with_the_reason(self):
        model = self.make("v1_0")
        config = read_json(os.path.join(model, "config.json"))
        config["model_type"] = "umt5"
        with open(os.path.join(model, "config.json"), "w") as f:
            json.dump(config, f)
        self.assertFails([tool("openba-inspect"), model], "config.json", "umt5", "every layer")

    def test_width_mismatch_names_the_key(self):
        model = self.make("v1_1")
        config = read_json(os.path.join(model, "config.json"))
        config["d_ff"] = 64
        with open(os.path.join(model, "config.json"), "w") as f:
            json.dump(config, f)
        self.assertFails([tool("openba-eval"), "--model", model, "--data", self.eval_data(vocab=512, n=2)],
                         "config.json", "d_ff 64", "48")

    def test_bad_feed_forward_proj(self):
        model = self.make("v1_1")
        config = read_json(os.path.join(model, "config.json"))
        config["feed_forward_proj"] = "gated-quick_gelu"
        with open(os.path.join(model, "config.json"), "w") as f:
            json.dump(config, f)
        self.assertFails([tool("openba-inspect"), model], "feed_forward_proj", "quick_gelu")


if __name__ == "__main__":
    unittest.main()

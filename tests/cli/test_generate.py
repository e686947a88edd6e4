"""openba-generate against independent implementations: transformers' own
T5 `generate` (greedy and beam search, tests/python/t5_reference.py), the
plain-PyTorch OpenBA reference's greedy decode (each step the whole forward
again, tests/python/openba_reference.py), our own no-cache decode, and bad
inputs named by file and line or flag."""
import json
import os
import random
import sys
import unittest

from cli_support import PYTHON_DIR, ToolTestCase, json_lines, run, tool

T5_REFERENCE = os.path.join(PYTHON_DIR, "t5_reference.py")
OPENBA_REFERENCE = os.path.join(PYTHON_DIR, "openba_reference.py")


class GenerateTestCase(ToolTestCase):
    def write_inputs(self, n, vocab, seed, name="inputs.jsonl"):
        rng = random.Random(seed)
        path = self.path(name)
        with open(path, "w") as f:
            for i in range(n):
                ids = [rng.randrange(2, vocab) for _ in range(rng.randint(2, 18))] + [1]
                f.write(json.dumps({"input_ids": ids}) + "\n")
                if i == 1:
                    f.write("\n")  # blank lines are skipped
        return path

    def generate(self, model, inputs, *flags):
        return json_lines(run([tool("openba-generate"), "--model", model, "--input", inputs, "--quiet", *flags])[1])


class GenerateT5(GenerateTestCase):
    """Token for token against transformers' generate on random T5 models whose
    </s> is made likely, so that generations end at different lengths."""

    def make(self, variant, eos_scale):
        out = self.path(f"{variant}-{eos_scale}")
        run([sys.executable, T5_REFERENCE, "make", out, variant, "--eos-scale", str(eos_scale), "--seed", "3"])
        return out

    def reference(self, model, inputs, *flags):
        return json_lines(run([sys.executable, T5_REFERENCE, "generate", model, inputs, *flags])[1])

    def test_greedy_matches_transformers(self):
        # Scales that end some generations early and leave others running (v1.0's
        # tied row also scales </s>'s input embedding: a smaller factor).
        for variant, scale in (("v1_0", 1.5), ("v1_1", 3.5)):
            model = self.make(variant, scale)
            inputs = self.write_inputs(10, 512, seed=4)
            theirs = self.reference(model, inputs, "--max-new-tokens", "24")
            finished = 0
            for flags in (["--batch-size", "4"], ["--batch-size", "1", "--no-cache"]):
                ours = self.generate(model, inputs, "--max-new-tokens", "24", *flags)
                self.assertEqual(len(ours), len(theirs))
                for i, (a, b) in enumerate(zip(ours, theirs)):
                    self.assertEqual(a["output_ids"], b["output_ids"], f"{variant} {flags} input {i}")
                    self.assertEqual(a["tokens"], len(a["output_ids"]))
                    self.assertEqual(a["finished"], a["output_ids"][-1] == 1)
                    finished += a["finished"]
            self.assertGreater(finished, 0, "no generation ended: the check would not cover </s>")
            self.assertLess(finished, 2 * len(theirs), "every generation ended: max-new-tokens untested")

    def test_min_new_tokens_matches_transformers(self):
        model = self.make("v1_1", 8.0)
        inputs = self.write_inputs(6, 512, seed=9)
        for strategy, extra in (("greedy", []), ("beam", ["--beams", "3"])):
            theirs = self.reference(model, inputs, "--max-new-tokens", "12", "--min-new-tokens", "6", *extra)
            ours = self.generate(model, inputs, "--max-new-tokens", "12", "--min-new-tokens", "6", "--strategy",
                                 strategy, *extra)
            self.assertEqual([o["output_ids"] for o in ours], [t["output_ids"] for t in theirs], strategy)
            self.assertTrue(all(len(o["output_ids"]) >= 6 for o in ours))

    def test_beam_search_matches_transformers(self):
        model = self.make("v1_1", 5.0)
        inputs = self.write_inputs(8, 512, seed=6)
        # One setting with the cache, the other without (each gives the same tokens: the unit tests).
        for beams, penalty, flags in ((3, "1.0", ["--batch-size", "3"]), (4, "0.6", ["--batch-size", "2", "--no-cache"])):
            theirs = self.reference(model, inputs, "--max-new-tokens", "16", "--beams", str(beams),
                                    "--length-penalty", penalty)
            ours = self.generate(model, inputs, "--max-new-tokens", "16", "--strategy", "beam", "--beams",
                                 str(beams), "--length-penalty", penalty, *flags)
            for i, (a, b) in enumerate(zip(ours, theirs)):
                self.assertEqual(a["output_ids"], b["output_ids"], f"beams {beams} {flags} input {i}")
                self.assertIn("score", a)

    def test_sampling_is_reproducible_and_batch_independent(self):
        model = self.make("v1_1", 1.0)
        inputs = self.write_inputs(9, 512, seed=7)
        flags = ["--strategy", "sample", "--top-p", "0.9", "--temperature", "0.9", "--max-new-tokens", "12"]
        a = self.generate(model, inputs, *flags, "--seed", "4", "--batch-size", "4")
        b = self.generate(model, inputs, *flags, "--seed", "4", "--batch-size", "1", "--no-cache")
        c = self.generate(model, inputs, *flags, "--seed", "5", "--batch-size", "4")
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)


class GenerateOpenBA(GenerateTestCase):
    def test_greedy_matches_the_reference(self):
        model = self.init_tiny("hf", "--init", "hf")
        inputs = self.write_inputs(6, 8192, seed=2)
        for prefix in ([], ["--decoder-prefix", "0,8099"]):
            ref_flags = ["--decoder-prefix", "0,8099"] if prefix else []
            theirs = json_lines(run([sys.executable, OPENBA_REFERENCE, model, inputs, "--generate", "10",
                                     *ref_flags])[1])
            for flags in (["--batch-size", "4"], ["--no-cache"]):
                ours = self.generate(model, inputs, "--max-new-tokens", "10", *prefix, *flags)
                self.assertEqual([o["output_ids"] for o in ours], [t["output_ids"] for t in theirs],
                                 f"{prefix} {flags}")

    def test_cuda_style_path(self):
        # The ATen path CUDA runs (SDPA with the additive bias), forced on CPU.
        model = self.init_tiny("hf", "--init", "hf")
        inputs = self.write_inputs(5, 8192, seed=3)
        plain = self.generate(model, inputs, "--strategy", "beam", "--beams", "2", "--max-new-tokens", "8")
        rc, out, _ = run([tool("openba-generate"), "--model", model, "--input", inputs, "--quiet", "--strategy", "beam",
                          "--beams", "2", "--max-new-tokens", "8"], env={"OPENBA_CUDA_STYLE_PATH": "1"})
        forced = json_lines(out)
        self.assertEqual([o["output_ids"] for o in forced], [o["output_ids"] for o in plain])
        for a, b in zip(forced, plain):
            self.assertAlmostEqual(a["score"], b["score"], delta=1e-5 * max(1.0, abs(b["score"])))


class BenchModel(GenerateTestCase):
    """openba-bench-model: its JSON fields and their arithmetic; bad flags."""

    def test_fields(self):
        model = self.init_tiny()
        rc, out, err = run([tool("openba-bench-model"), "--model", model, "--batches", "1,3", "--new-tokens", "5",
                            "--input-length", "7", "--encoder-batch", "2", "--repeats", "1"])
        r = json.loads(out)
        self.assertEqual(r["family"], "openba")
        self.assertEqual(r["input_length"], 7)
        self.assertGreater(r["encoder_tokens_per_s"], 0)
        self.assertEqual([d["batch"] for d in r["decode"]], [1, 3])
        for d in r["decode"]:
            self.assertEqual(d["new_tokens"], 5)
            self.assertAlmostEqual(d["tokens_per_s"], d["batch"] * 5 / d["seconds"], places=6)
            self.assertAlmostEqual(d["ms_per_step"], 1000 * d["seconds"] / 5, places=6)
        self.assertGreater(r["peak_memory_bytes"], 1 << 20)
        self.assertEqual(r["peak_memory_kind"], "process peak RSS")
        self.assertIn("decode batch 3", err)

    def test_bad_flags(self):
        model = self.init_tiny()
        base = [tool("openba-bench-model"), "--model", model, "--quiet"]
        self.assertFails(base + ["--batches", "1,x"], "--batches", "'x' is not an integer")
        self.assertFails(base + ["--batches", "0"], "--batches", "below 1")
        self.assertFails(base + ["--new-tokens", "0"], "new_tokens")
        self.assertFails(base + ["--precision", "bf16"], "--precision bf16 needs --device cuda")


class GenerateBadInputs(GenerateTestCase):
    def test_bad_inputs(self):
        model = self.init_tiny()
        cases = [('{"input_ids": [5, 9000]}', "inputs.jsonl:2", "outside the vocabulary [0, 8192)"),
                 ('{"input_ids": []}', "inputs.jsonl:2", "input_ids"),
                 ('{"ids": [5]}', "inputs.jsonl:2", 'missing "input_ids"'),
                 ('{"text": "hello"}', "inputs.jsonl:2", "text inputs"),
                 ('[5, 6', "inputs.jsonl:2", "malformed JSON")]
        for line, *needles in cases:
            path = self.path("inputs.jsonl")
            with open(path, "w") as f:
                f.write('{"input_ids": [5, 6, 1]}\n' + line + "\n")
            self.assertFails([tool("openba-generate"), "--model", model, "--input", path, "--quiet"], *needles)
        good = self.path("good.jsonl")
        with open(good, "w") as f:
            f.write('{"input_ids": [5, 6, 1]}\n')
        base = [tool("openba-generate"), "--model", model, "--input", good, "--quiet"]
        self.assertFails(base + ["--strategy", "sample", "--top-p", "0"], "--top-p")
        self.assertFails(base + ["--strategy", "sample", "--temperature", "-1"], "--temperature")
        self.assertFails(base + ["--strategy", "beam", "--beams", "0"], "--beams")
        self.assertFails(base + ["--max-new-tokens", "0"], "--max-new-tokens")
        self.assertFails(base + ["--decoder-prefix", "0,x"], "--decoder-prefix", "'x' is not an integer")
        self.assertFails(base + ["--decoder-prefix", "0,99999"], "decoder prefix id 99999")
        self.assertFails(base + ["--strategy", "nucleus"], "--strategy", code=2)
        empty = self.path("empty.jsonl")
        open(empty, "w").close()
        self.assertFails([tool("openba-generate"), "--model", model, "--input", empty, "--quiet"], "no inputs")


if __name__ == "__main__":
    unittest.main()

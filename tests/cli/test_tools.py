"""openba-init -> openba-inspect -> openba-eval, checked against independent
computations: the Python reference model, a Python safetensors parser, and
checkpoints rewritten by the real torch.save."""
import json
import math
import os
import shutil
import subprocess
import sys
import unittest

from cli_support import (PYTHON_DIR, TINY, ToolTestCase, json_lines, read_binary, read_json, run,
                         safetensors_header, tool)


class InitInspect(ToolTestCase):
    def test_inspect_matches_an_independent_count(self):
        model = self.init_tiny()
        _, out, _ = run([tool("openba-inspect"), model, "--json"])
        report = json.loads(out)
        header = safetensors_header(os.path.join(model, "model.safetensors"))
        numel = {k: math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__"}
        # Tied lm_head.weight counted once.
        self.assertEqual(report["parameters"]["total"], sum(numel.values()) - numel["lm_head.weight"])
        self.assertEqual(sum(report["parameters"]["by_component"].values()), report["parameters"]["total"])
        self.assertEqual(report["tensors"], len(numel))
        self.assertEqual(report["config"]["decoder_layers"], 12)
        self.assertEqual(report["config"]["vocab_size"], 8192)
        self.assertTrue(report["lm_head_tied"])
        self.assertEqual(report["bytes_on_disk"], os.path.getsize(os.path.join(model, "model.safetensors")))
        _, text, _ = run([tool("openba-inspect"), model])
        self.assertIn("4 encoder / 12 decoder", text)
        self.assertIn(str(report["parameters"]["total"]), text)

    def test_dtype_and_shards(self):
        model = self.init_tiny("bf16", "--dtype", "bf16", "--shard-size", "2MB")
        report = json.loads(run([tool("openba-inspect"), model, "--json"])[1])
        self.assertEqual(report["config"]["dtype"], "bf16")
        self.assertEqual(list(report["dtypes"]), ["bf16"])
        self.assertGreater(len(report["shards"]), 4)
        index = read_json(os.path.join(model, "model.safetensors.index.json"))
        self.assertEqual(len(index["weight_map"]), report["tensors"])

    def test_same_seed_same_bytes(self):
        a = self.init_tiny("a", "--seed", "5")
        b = self.init_tiny("b", "--seed", "5", "--threads", "1")
        c = self.init_tiny("c", "--seed", "6")
        read = lambda d: read_binary(os.path.join(d, "model.safetensors"))
        self.assertEqual(read(a), read(b))
        self.assertNotEqual(read(a), read(c))


class EvalAgainstReference(ToolTestCase):
    def compare(self, model, data, rel=1e-4, env=None):
        ours = json_lines(run([tool("openba-eval"), "--model", model, "--data", data, "--quiet"], env=env)[1])
        ref = json_lines(run([sys.executable, os.path.join(PYTHON_DIR, "openba_reference.py"), model, data])[1])
        self.assertEqual(len(ours), len(ref))
        for a, b in zip(ours, ref):
            self.assertEqual(a["tokens"], b["tokens"])
            if b["loss"] is None:
                self.assertIsNone(a["loss"])
            else:
                self.assertAlmostEqual(a["loss"], b["loss"], delta=rel * abs(b["loss"]))
        self.assertTrue(ours[-1]["summary"])
        return ours

    def test_megatron_init(self):
        model = self.init_tiny()
        out = self.compare(model, self.eval_data())
        # A fresh model is near-uniform over the vocabulary.
        self.assertLess(abs(out[-1]["loss"] - math.log(8192)), 0.5)

    def test_hf_init(self):
        # Large weights (embedding std 1): a sharper check of every matrix.
        self.compare(self.init_tiny("hf", "--init", "hf"), self.eval_data(seed=2))

    def test_cuda_style_path(self):
        # The path CUDA runs (ATen ops, scaled_dot_product_attention with the
        # additive padding mask), forced on CPU, against the reference.
        self.compare(self.init_tiny("hf", "--init", "hf"), self.eval_data(seed=2),
                     env={"OPENBA_CUDA_STYLE_PATH": "1"})

    def test_torch_save_fixture(self):
        self.compare(os.path.join(os.path.dirname(PYTHON_DIR), "fixtures", "tiny-bin"), self.eval_data(vocab=128, seed=3))

    def test_batching_does_not_change_results(self):
        model = self.init_tiny()
        data = self.eval_data(n=30, seed=4)
        runs = [json_lines(run([tool("openba-eval"), "--model", model, "--data", data, "--quiet", *flags])[1])
                for flags in (["--batch-size", "1"], ["--batch-size", "8"], ["--max-batch-tokens", "60", "--window", "7"])]
        for other in runs[1:]:
            for a, b in zip(runs[0], other):
                self.assertEqual(a["tokens"], b["tokens"])
                if a["loss"] is not None:
                    self.assertAlmostEqual(a["loss"], b["loss"], delta=1e-5 * a["loss"])

    def test_summary_is_token_weighted(self):
        model = self.init_tiny()
        lines = json_lines(run([tool("openba-eval"), "--model", model, "--data", self.eval_data(), "--quiet"])[1])
        per_example, summary = lines[:-1], lines[-1]
        total = sum(l["tokens"] for l in per_example)
        nll = sum(l["loss"] * l["tokens"] for l in per_example if l["tokens"])
        self.assertEqual(summary["tokens"], total)
        self.assertEqual(summary["examples"], len(per_example))
        self.assertAlmostEqual(summary["loss"], nll / total, places=9)
        self.assertAlmostEqual(summary["perplexity"], math.exp(nll / total), delta=1e-6 * summary["perplexity"])


class BinVersusSafetensors(ToolTestCase):
    def test_same_weights_same_output(self):
        model = self.init_tiny("st", "--dtype", "f16")
        binary = self.path("bin")
        run([sys.executable, os.path.join(PYTHON_DIR, "safetensors_to_bin.py"), model, binary])
        report = json.loads(run([tool("openba-inspect"), binary, "--json"])[1])
        self.assertEqual(report["format"], "torch")
        self.assertEqual(report["lm_head_weight"], "shared storage with shared_embedding.weight")
        data = self.eval_data(seed=5)
        a = run([tool("openba-eval"), "--model", model, "--data", data, "--quiet"])[1]
        b = run([tool("openba-eval"), "--model", binary, "--data", data, "--quiet"])[1]
        self.assertEqual(a, b)


if __name__ == "__main__":
    unittest.main(verbosity=2)

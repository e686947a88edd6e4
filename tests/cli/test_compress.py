"""openba-compress, checked against independent computations: the Python
reference model (compress_reference.py) for bypassed blocks and for every
importance score, a Python safetensors reader for the surgery, and openba-eval
for the held-out losses."""
import json
import math
import os
import shutil
import struct
import sys
import unittest

import torch

from cli_support import (PYTHON_DIR, TINY, ToolTestCase, demo_training_assets, json_lines, read_binary, read_json, run,
                         safetensors_header, tool)

COMPRESS = tool("openba-compress")
REF = os.path.join(PYTHON_DIR, "compress_reference.py")

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}


def read_tensors(ckpt):
    """Every tensor of a safetensors checkpoint, read by hand."""
    out = {}
    for name in sorted(os.listdir(ckpt)):
        if not name.endswith(".safetensors"):
            continue
        path = os.path.join(ckpt, name)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
            data = f.read()
        for key, info in header.items():
            if key == "__metadata__":
                continue
            a, b = info["data_offsets"]
            out[key] = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors, metadata=None):
    header, offset, blobs = {}, 0, []
    for key, t in tensors.items():
        raw = t.contiguous().numpy().tobytes()
        header[key] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def losses(lines):
    return [x for x in lines if "summary" not in x]


class CompressCase(ToolTestCase):
    def setUp(self):
        super().setUp()
        self.model = self.init_tiny("model", "--seed", "3")
        self.data = self.eval_data(n=8)

    def compress(self, *args, expect_ok=True):
        return run([COMPRESS, "--model", self.model, "--quiet", *args], expect_ok=expect_ok)

    def ours(self, ckpt, data=None):
        return losses(json_lines(run([tool("openba-eval"), "--model", ckpt, "--data", data or self.data, "--quiet"])[1]))

    def reference(self, ckpt, *skips, data=None):
        return json_lines(run([sys.executable, REF, "eval", ckpt, data or self.data, *skips])[1])

    def assertLossesClose(self, a, b, rel=1e-4):
        self.assertEqual(len(a), len(b))
        for x, y in zip(a, b):
            self.assertEqual(x["tokens"], y["tokens"])
            if y["loss"] is not None:
                self.assertAlmostEqual(x["loss"], y["loss"], delta=rel * abs(y["loss"]))


class LayerStage(CompressCase):
    def test_dropped_layers_equal_the_bypassed_model(self):
        out = self.path("layer")
        _, text, _ = self.compress("--stage", "layer", "--out", out, "--drop-encoder-layers", "1",
                                   "--drop-decoder-layers", "3,7", "--eval", self.data)
        cfg = read_json(os.path.join(out, "config.json"))
        self.assertEqual((cfg["num_layers"], cfg["num_decoder_layers"]), (3, 10))
        # Same per-example losses as the reference running the input with those blocks skipped.
        self.assertLossesClose(self.ours(out), self.reference(self.model, "--skip-encoder", "1", "--skip-decoder", "3",
                                                                "--skip-decoder", "7"))
        # Renumbering: output decoder block 3 is input block 4; everything else unchanged.
        a, b = read_tensors(self.model), read_tensors(out)
        self.assertTrue(torch.equal(b["decoder.block.3.mlp.fc_in.weight"], a["decoder.block.4.mlp.fc_in.weight"]))
        self.assertTrue(torch.equal(b["decoder.block.9.self_attn.qkv.bias"], a["decoder.block.11.self_attn.qkv.bias"]))
        self.assertTrue(torch.equal(b["encoder.block.1.self_attn.o.weight"], a["encoder.block.2.self_attn.o.weight"]))
        self.assertTrue(torch.equal(b["shared_embedding.weight"], a["shared_embedding.weight"]))
        self.assertEqual(len(b), len(a) - 10 - 2 * 18)  # one encoder block (10 tensors), two decoder (18)
        report = read_json(os.path.join(out, "report.json"))
        self.assertEqual([e["layer"] for e in report["removed"]["decoder_layers"]], [3, 7])
        self.assertEqual(report["removed"]["reason"], "explicit lists")
        # The held-out loss after is openba-eval's on the output (same loss code).
        ours = self.ours(out)
        mean = sum(x["loss"] * x["tokens"] for x in ours if x["tokens"]) / sum(x["tokens"] for x in ours)
        self.assertAlmostEqual(report["heldout"]["after"]["loss"], mean, delta=1e-5 * mean)
        before = report["compression"]["parameters_before"]
        after = report["compression"]["parameters_after"]
        self.assertEqual(report["input"]["parameters"]["total"], before)
        self.assertAlmostEqual(report["compression"]["stage_ratio"], before / after)
        self.assertIn("held-out loss", text)
        self.assertIn("compression: this stage", text)
        self.assertGreater(report["peak_rss_bytes"], 0)

    def test_angular_scores_match_the_reference_and_drop_the_lowest(self):
        out, scores = self.path("scored"), self.path("scores.json")
        self.compress("--stage", "layer", "--out", out, "--keep-encoder-layers", "3", "--keep-decoder-layers", "9",
                      "--score", "angular", "--calib", self.data, "--save-scores", scores)
        ref = self.path("ref.json")
        run([sys.executable, REF, "scores", self.model, self.data, ref])
        expected = read_json(ref)["angular"]
        got = read_json(scores)
        for stack in ("encoder", "decoder"):
            for x, y in zip(got[stack], expected[stack]):
                self.assertAlmostEqual(x, y, delta=1e-4 * abs(y) + 1e-7)
        report = read_json(os.path.join(out, "report.json"))
        low = sorted(range(12), key=lambda i: got["decoder"][i])[:3]
        self.assertEqual([e["layer"] for e in report["removed"]["decoder_layers"]], sorted(low))
        self.assertEqual(len(report["scores"]["decoder"]), 12)
        # Re-prune from the saved scores without calibration data.
        again = self.path("again")
        self.compress("--stage", "layer", "--out", again, "--keep-encoder-layers", "4", "--keep-decoder-layers", "6",
                      "--scores", scores)
        r2 = read_json(os.path.join(again, "report.json"))
        low6 = sorted(sorted(range(12), key=lambda i: got["decoder"][i])[:6])
        self.assertEqual([e["layer"] for e in r2["removed"]["decoder_layers"]], low6)
        self.assertEqual(r2["removed"]["encoder_layers"], [])

    def test_loss_scores_are_the_loss_increase_with_the_block_skipped(self):
        out, scores = self.path("loss"), self.path("loss.json")
        self.compress("--stage", "layer", "--out", out, "--keep-encoder-layers", "3", "--keep-decoder-layers", "11",
                      "--score", "loss", "--eval", self.data, "--save-scores", scores)
        got = read_json(scores)

        def mean(lines):
            return sum(x["loss"] * x["tokens"] for x in lines if x["tokens"]) / sum(x["tokens"] for x in lines)

        base = mean(self.reference(self.model))
        for i in (0, 2):
            skipped = mean(self.reference(self.model, "--skip-encoder", str(i)))
            self.assertAlmostEqual(got["encoder"][i], skipped - base, delta=1e-4 * base)
        skipped = mean(self.reference(self.model, "--skip-decoder", "5"))
        self.assertAlmostEqual(got["decoder"][5], skipped - base, delta=1e-4 * base)

    def test_released_bin_format_input(self):
        """A torch.save .bin checkpoint (fp16, tied storage) in, safetensors out."""
        fixture = os.path.join(os.path.dirname(PYTHON_DIR), "fixtures", "tiny-bin")
        data = self.eval_data(vocab=128, n=6, seed=4)
        out = self.path("from-bin")
        run([COMPRESS, "--model", fixture, "--out", out, "--quiet", "--stage", "layer", "--drop-decoder-layers", "0",
             "--eval", data])
        self.assertLossesClose(self.ours(out, data), self.reference(fixture, "--skip-decoder", "0", data=data))
        self.assertEqual(read_json(os.path.join(out, "config.json"))["torch_dtype"], "float16")
        # Width pruning of the same file, every unit kept: the reference's losses unchanged.
        same = self.path("same-bin")
        run([COMPRESS, "--model", fixture, "--out", same, "--quiet", "--stage", "neuron", "--ffn", "24",
             "--score", "magnitude"])
        self.assertLossesClose(self.ours(same, data), self.reference(fixture, data=data), rel=1e-5)

    def test_lineage_carries_the_first_model(self):
        one, two = self.path("one"), self.path("two")
        self.compress("--stage", "layer", "--out", one, "--drop-decoder-layers", "0,1")
        run([COMPRESS, "--model", one, "--out", two, "--quiet", "--stage", "layer", "--drop-encoder-layers", "0"])
        r1, r2 = read_json(os.path.join(one, "report.json")), read_json(os.path.join(two, "report.json"))
        self.assertEqual(r2["compression"]["first_model_parameters"], r1["compression"]["parameters_before"])
        self.assertAlmostEqual(r2["compression"]["cumulative_ratio"],
                               r1["compression"]["parameters_before"] / r2["compression"]["parameters_after"])
        self.assertEqual(r2["lineage"][0]["stage"], "layer")

    def test_yaml_options(self):
        cfg = self.path("stage.yaml")
        with open(cfg, "w") as f:
            f.write(f"stage: layer\nout: {self.path('y')}\ndrop-decoder-layers: [2, 4]\n")
        run([COMPRESS, "--model", self.model, "--config", cfg, "--quiet", "--set", "drop-encoder-layers=[3]"])
        report = read_json(os.path.join(self.path("y"), "report.json"))
        self.assertEqual([e["layer"] for e in report["removed"]["decoder_layers"]], [2, 4])
        self.assertEqual([e["layer"] for e in report["removed"]["encoder_layers"]], [3])
        with open(cfg, "w") as f:
            f.write("stage: layer\ndrop-decoder-layer: [2]\n")
        self.assertFails([COMPRESS, "--model", self.model, "--out", self.path("z"), "--config", cfg],
                         "drop-decoder-layer")


class WidthStage(CompressCase):
    def test_keeping_every_unit_is_the_identity(self):
        out = self.path("same")
        self.compress("--stage", "neuron", "--out", out, "--ffn", "352", "--heads", "4", "--hidden", "128",
                      "--score", "magnitude")
        a, b = read_tensors(self.model), read_tensors(out)
        self.assertEqual(sorted(a), sorted(b))
        for k in a:
            self.assertTrue(torch.equal(a[k], b[k]), k)

    def zeroed_model(self):
        """The model with FFN neurons 5, 77, 200 and head 2 (self and cross) zeroed in every layer."""
        t = read_tensors(self.model)
        kv, ffn = 32, 352
        for name in list(t):
            if name.endswith("mlp.fc_in.weight"):
                for j in (5, 77, 200):
                    t[name][j] = 0
                    t[name][ffn + j] = 0
            elif name.endswith("mlp.fc_out.weight"):
                t[name][:, [5, 77, 200]] = 0
            elif name.endswith("self_attn.qkv.weight") or name.endswith("self_attn.qkv.bias"):
                t[name][2 * 3 * kv:3 * 3 * kv] = 0
            elif name.endswith("inter_attn.q.weight") or name.endswith("inter_attn.q.bias"):
                t[name][2 * kv:3 * kv] = 0
            elif name.endswith("inter_attn.kv.weight") or name.endswith("inter_attn.kv.bias"):
                t[name][2 * 2 * kv:3 * 2 * kv] = 0
            elif name.endswith("attn.o.weight"):
                t[name][:, 2 * kv:3 * kv] = 0
        zeroed = self.path("zeroed")
        os.makedirs(zeroed)
        write_safetensors(os.path.join(zeroed, "model.safetensors"), t, {"openba.lm_head": "tied"})
        with open(os.path.join(self.model, "config.json")) as f, open(os.path.join(zeroed, "config.json"), "w") as g:
            g.write(f.read())
        return zeroed, t

    def test_pruning_zero_units_leaves_the_logits_unchanged(self):
        zeroed, t = self.zeroed_model()
        out = self.path("pruned")
        run([COMPRESS, "--model", zeroed, "--out", out, "--quiet", "--stage", "neuron", "--ffn", "349", "--heads", "3",
             "--round-to", "1", "--score", "magnitude"])
        cfg = read_json(os.path.join(out, "config.json"))
        self.assertEqual((cfg["ffn_hidden_size"], cfg["num_heads"]), (349, 3))
        self.assertLossesClose(self.ours(out), self.ours(zeroed), rel=1e-5)
        report = read_json(os.path.join(out, "report.json"))
        self.assertEqual(report["removed"]["decoder_ffn"][4], [5, 77, 200])
        self.assertEqual([h["index"] for h in report["removed"]["decoder_cross_heads"][0]], [2])
        # The interleaved qkv rows of heads 0, 1, 3 survive, in order.
        b = read_tensors(out)
        kv = 32
        rows = list(range(0, 2 * 3 * kv)) + list(range(3 * 3 * kv, 4 * 3 * kv))
        self.assertTrue(torch.equal(b["encoder.block.2.self_attn.qkv.weight"], t["encoder.block.2.self_attn.qkv.weight"][rows]))
        self.assertTrue(torch.equal(b["decoder.block.1.inter_attn.kv.bias"],
                                    t["decoder.block.1.inter_attn.kv.bias"][list(range(0, 4 * kv)) + list(range(6 * kv, 8 * kv))]))

    def test_scores_match_the_reference(self):
        ref = self.path("ref.json")
        run([sys.executable, REF, "scores", self.model, self.data, ref])
        expected = read_json(ref)
        for method, rel in (("activation", 1e-4), ("magnitude", 1e-6), ("taylor", 2e-3)):
            scores = self.path(method + ".json")
            self.compress("--stage", "neuron", "--out", self.path(method), "--ffn", "256", "--heads", "2",
                          "--hidden", "64", "--score", method, "--calib", self.data, "--save-scores", scores)
            got = read_json(scores)
            exp = expected[method]
            for key in ("hidden", "encoder_heads", "decoder_heads", "decoder_cross_heads", "encoder_ffn", "decoder_ffn"):
                a = torch.tensor(got[key], dtype=torch.float64).flatten()
                b = torch.tensor(exp[key], dtype=torch.float64).flatten()
                self.assertEqual(a.shape, b.shape, (method, key))
                scale = b.abs().max().item()
                self.assertLess((a - b).abs().max().item(), rel * scale, (method, key))
            # The kept sets are the top scores, with the same units everywhere they appear.
            report = read_json(os.path.join(self.path(method), "report.json"))
            kept = report["kept"]
            top = sorted(sorted(range(128), key=lambda c: -got["hidden"][c])[:64])
            self.assertEqual(kept["hidden"], top)
            t, b = read_tensors(self.model), read_tensors(self.path(method))
            h = kept["hidden"]
            f = kept["decoder_ffn"][3]
            fc_in = t["decoder.block.3.mlp.fc_in.weight"]
            self.assertTrue(torch.equal(b["decoder.block.3.mlp.fc_in.weight"], fc_in[f + [352 + j for j in f]][:, h]))
            self.assertTrue(torch.equal(b["decoder.block.3.mlp.fc_out.weight"], t["decoder.block.3.mlp.fc_out.weight"][h][:, f]))
            self.assertTrue(torch.equal(b["shared_embedding.weight"], t["shared_embedding.weight"][:, h]))
            self.assertTrue(torch.equal(b["decoder.final_layernorm.bias"], t["decoder.final_layernorm.bias"][h]))

    def test_saved_scores_reprune_without_a_forward_pass(self):
        scores = self.path("act.json")
        self.compress("--stage", "neuron", "--out", self.path("a"), "--ffn", "256", "--score", "activation",
                      "--calib", self.data, "--save-scores", scores)
        saved = read_json(scores)
        # No --calib: the saved scores decide.
        self.compress("--stage", "neuron", "--out", self.path("b"), "--ffn", "128", "--heads", "3", "--scores", scores)
        report = read_json(os.path.join(self.path("b"), "report.json"))
        self.assertEqual(report["scores"]["method"], "activation")
        for layer in range(12):
            top = sorted(sorted(range(352), key=lambda j: -saved["decoder_ffn"][layer][j])[:128])
            self.assertEqual(report["kept"]["decoder_ffn"][layer], top)
            top_heads = sorted(sorted(range(4), key=lambda h: -saved["decoder_cross_heads"][layer][h])[:3])
            self.assertEqual(report["kept"]["decoder_cross_heads"][layer], top_heads)
        self.assertNotIn("calibration", report)
        self.assertFails([COMPRESS, "--model", self.model, "--out", self.path("c"), "--stage", "layer",
                          "--keep-decoder-layers", "3", "--scores", scores], "not layer scores")
        # Scores of another shape are refused.
        self.compress("--stage", "layer", "--out", self.path("shallow"), "--drop-decoder-layers", "0")
        self.assertFails([COMPRESS, "--model", self.path("shallow"), "--out", self.path("d"), "--stage", "neuron",
                          "--ffn", "128", "--scores", scores], "scores of another model")
        self.assertFalse(os.path.exists(self.path("d")))

    def test_same_inputs_same_bytes(self):
        outs = []
        for name, threads in (("x", "1"), ("y", "2")):
            out = self.path(name)
            run([COMPRESS, "--model", self.model, "--out", out, "--quiet", "--threads", threads, "--stage", "neuron",
                 "--ffn", "192", "--heads", "3", "--hidden", "96", "--round-to", "32", "--score", "activation",
                 "--calib", self.data])
            outs.append(out)
        a, b = (read_binary(os.path.join(d, "model.safetensors")) for d in outs)
        self.assertEqual(a, b)

    def test_random_is_seeded(self):
        a, b, c = self.path("a"), self.path("b"), self.path("c")
        for out, seed in ((a, "1"), (b, "1"), (c, "2")):
            self.compress("--stage", "neuron", "--out", out, "--ffn", "128", "--heads", "2", "--score", "random",
                          "--seed", seed)
        ka, kb, kc = (read_json(os.path.join(d, "report.json"))["kept"] for d in (a, b, c))
        self.assertEqual(ka, kb)
        self.assertNotEqual(ka["encoder_ffn"], kc["encoder_ffn"])
        self.assertEqual(len(ka["encoder_ffn"][0]), 128)


def spm_ids(model, text_file):
    out = run(["spm_encode", "--model", model, "--output_format=id", text_file])[1]
    return [[int(x) for x in line.split()] for line in out.split("\n")[:-1]]


class VocabStage(ToolTestCase):
    def test_vocabulary_round_trip(self):
        assets = demo_training_assets()
        out = self.path("vocab")
        _, text, _ = run([COMPRESS, "--model", assets["base"], "--out", out, "--quiet", "--stage", "vocab",
                          "--vocab", "3000", "--corpus", assets["train"], "--eval", assets["heldout"],
                          "--eval-samples", "2", "--encoder-tokens", "96", "--decoder-tokens", "48"])
        report = read_json(os.path.join(out, "report.json"))
        tok = report["tokenizer"]
        self.assertEqual(tok["pieces_after"], 3000)
        self.assertEqual(read_json(os.path.join(out, "config.json"))["vocab_size"], 3200)  # 3103 ids -> 128 multiple
        self.assertEqual(tok["check"]["mismatches"], 0)
        self.assertGreater(tok["check"]["documents_all_kept"], 0)
        self.assertGreater(tok["changed_token_share"], 0)
        self.assertLess(tok["changed_token_share"], 0.5)
        self.assertIn("tokenizer:", text)
        id_map = report["id_map"]
        # Sentinels and modes re-appended at the top, as OpenBA lays them out.
        self.assertEqual(id_map[8000 + 99], 3000 + 99)  # <extra_id_0>
        self.assertEqual(id_map[8000 + 100], 3100)      # <R>
        self.assertEqual(read_json(os.path.join(out, "added_tokens.json")), {"<R>": 3100, "<S>": 3101, "<X>": 3102})
        # Debian's spm_encode loads the rewritten model; held-out lines made only of kept pieces
        # encode to the old ids mapped through the id map.
        old_model, new_model = os.path.join(assets["base"], "spiece.model"), os.path.join(out, "spiece.model")
        lines = os.path.join(demo_training_assets()["tokenizer"], "..", "corpus", "heldout", "en.txt")
        sample = self.path("sample.txt")
        with open(lines, encoding="utf-8") as f, open(sample, "w", encoding="utf-8") as g:
            for i, line in enumerate(f):
                if i >= 400:
                    break
                g.write(line)
        with open(os.path.join(demo_training_assets()["tokenizer"], "..", "corpus", "heldout", "zh.txt"),
                  encoding="utf-8") as f, open(sample, "a", encoding="utf-8") as g:
            for i, line in enumerate(f):
                if i >= 200:
                    break
                g.write(line)
        old, new = spm_ids(old_model, sample), spm_ids(new_model, sample)
        self.assertEqual(len(old), len(new))
        checked = 0
        for a, b in zip(old, new):
            mapped = [id_map[x] for x in a]
            if all(m >= 0 for m in mapped):
                self.assertEqual(mapped, b)
                checked += 1
        self.assertGreater(checked, 50)
        # Every byte-fallback, control and unknown piece survives.
        vocab = run(["spm_export_vocab", "--model", new_model])[1]
        pieces = [line.split("\t")[0] for line in vocab.splitlines()]
        self.assertEqual(pieces[:3], ["<pad>", "</s>", "<unk>"])
        old_pieces = [line.split("\t")[0] for line in run(["spm_export_vocab", "--model", old_model])[1].splitlines()]
        for p in old_pieces:
            if p.startswith("<0x"):
                self.assertIn(p, pieces)
        # Embedding, lm_head and bias rows follow the map; padding rows are zero.
        a, b = read_tensors(assets["base"]), read_tensors(out)
        kept = [i for i in range(len(id_map)) if id_map[i] >= 0]
        rows = [id_map[i] for i in kept]
        for name in ("shared_embedding.weight", "lm_head.weight", "lm_head.bias"):
            self.assertEqual(b[name].shape[0], 3200)
            self.assertTrue(torch.equal(b[name][rows], a[name][kept]), name)
            self.assertEqual(b[name][3103:].abs().sum().item(), 0)
        self.assertTrue(torch.equal(b["decoder.block.5.mlp.fc_out.weight"], a["decoder.block.5.mlp.fc_out.weight"]))
        # The pruned model loads and evaluates with the new ids.
        self.assertGreater(report["heldout"]["after"]["loss"], 0)
        rc, out_text, _ = run([tool("openba-tokenize"), "compare", "--old", assets["base"], "--new", out, "--input", sample,
                               "--split", "line"])
        self.assertEqual(json.loads(out_text)["mismatches"], 0)


def pretrained_tiny():
    """The demo model after 60 UL2 steps on the demo shards (built once per build directory)."""
    assets = demo_training_assets()
    root = os.path.join(os.path.dirname(assets["base"]), "..", "pretrained-60")
    final = os.path.join(root, "final")
    if not os.path.isdir(final):
        work = root + f".making-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        run([tool("openba-pretrain"), "--config", os.path.join(os.path.dirname(TINY), "..", "train", "demo.yaml"),
             "--out", work, "--quiet", "--set", "model.checkpoint=" + assets["base"],
             "--set", "data.train=[{shards: " + assets["train"] + "}]", "--set", "data.heldout=" + assets["heldout"],
             "--set", "trainer.steps=60", "--set", "eval.every=0", "--set", "checkpoint.every=0",
             "--set", "logging.tensorboard=false"])
        try:
            os.rename(work, root)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)  # another test process finished first
    return assets, final


class ActivationVersusRandom(ToolTestCase):
    def test_activation_scores_lose_less_than_the_released_random_pruning(self):
        assets, model = pretrained_tiny()
        common = ["--stage", "neuron", "--ffn", "128", "--heads", "2", "--calib", assets["train"], "--calib-samples",
                  "64", "--eval", assets["heldout"], "--eval-samples", "8", "--encoder-tokens", "256",
                  "--decoder-tokens", "128", "--quiet"]

        def increase(score, seed="0"):
            out = self.path(f"{score}-{seed}")
            run([COMPRESS, "--model", model, "--out", out, "--score", score, "--seed", seed, *common])
            report = read_json(os.path.join(out, "report.json"))
            self.assertEqual(report["output"]["ffn_hidden"], 128)
            return report["heldout"]["loss_increase"]

        activation = increase("activation")
        randoms = [increase("random", seed) for seed in ("0", "1", "2")]
        print(f"\nheld-out loss increase at ffn 128 / 2 heads: activation {activation:.4f}, "
              f"random {', '.join(f'{r:.4f}' for r in randoms)}", file=sys.stderr)
        for r in randoms:
            self.assertLess(activation, r)


class BadInputs(CompressCase):
    def test_bad_targets_fail_before_anything_is_written(self):
        out = self.path("out")
        cases = [
            (["--stage", "neuron", "--ffn", "400"], "--ffn 400 is larger than the 352"),
            (["--stage", "neuron", "--ffn", "0"], "--ffn 0: must be positive"),
            (["--stage", "neuron", "--heads", "5"], "--heads 5 is larger than the 4"),
            (["--stage", "neuron", "--hidden", "-3"], "--hidden -3: must be positive"),
            (["--stage", "neuron", "--ffn", "128"], "--score activation needs --calib"),
            (["--stage", "neuron", "--ffn", "128", "--score", "magic"], "--score for the neuron stage"),
            (["--stage", "layer", "--drop-decoder-layers", "12"], "layer 12 does not exist"),
            (["--stage", "layer", "--drop-encoder-layers", "0,1,2,3"], "drops all 4 layers"),
            (["--stage", "layer", "--drop-encoder-layers", "1,1"], "listed twice"),
            (["--stage", "layer", "--keep-decoder-layers", "13", "--calib", self.data], "--keep-decoder-layers 13"),
            (["--stage", "layer", "--keep-decoder-layers", "0", "--calib", self.data], "--keep-decoder-layers 0"),
            (["--stage", "layer"], "needs --drop-encoder-layers"),
            (["--stage", "depth"], "--stage must be layer, neuron or vocab"),
            (["--stage", "vocab", "--vocab", "100"], "has no tokenizer"),
            (["--stage", "layer", "--drop-decoder-layers", "1", "--scores", self.data], "--scores"),
        ]
        for args, needle in cases:
            self.assertFails([COMPRESS, "--model", self.model, "--out", out, *args], needle)
            self.assertFalse(os.path.exists(out), args)
        self.assertEqual(sorted(os.listdir(self.tmp)), sorted(["model", os.path.basename(self.data)]))

    def test_output_paths(self):
        self.assertFails([COMPRESS, "--model", self.model, "--out", self.model, "--stage", "layer",
                          "--drop-decoder-layers", "1", "--force"], "is the input model directory")
        self.assertFails([COMPRESS, "--model", self.model, "--out", os.path.join(self.model, "sub"), "--stage", "layer",
                          "--drop-decoder-layers", "1"], "lies inside it")
        self.assertFails([COMPRESS, "--model", self.model, "--out", self.tmp, "--stage", "layer",
                          "--drop-decoder-layers", "1", "--force"], "contains the input model directory")
        existing = self.path("existing")
        os.makedirs(existing)
        self.assertFails([COMPRESS, "--model", self.model, "--out", existing, "--stage", "layer",
                          "--drop-decoder-layers", "1"], "already exists (use --force")
        self.assertEqual(os.listdir(existing), [])
        self.compress("--out", existing, "--stage", "layer", "--drop-decoder-layers", "1", "--force")
        self.assertTrue(os.path.exists(os.path.join(existing, "report.json")))

    def test_data_from_another_tokenizer_and_small_vocab(self):
        assets = demo_training_assets()
        other = self.path("other-shards")
        shutil.copytree(assets["train"], other)
        manifest = os.path.join(other, "manifest.json")
        m = read_json(manifest)
        m["tokenizer"]["fingerprint"] = "0" * 64
        with open(manifest, "w") as f:
            json.dump(m, f)
        out = self.path("out")
        self.assertFails([COMPRESS, "--model", assets["base"], "--out", out, "--stage", "neuron", "--ffn", "128",
                          "--calib", other], "were made with tokenizer 0000000000000000")
        self.assertFails([COMPRESS, "--model", assets["base"], "--out", out, "--stage", "vocab", "--vocab", "10",
                          "--corpus", assets["train"]], "smaller than the", "pieces that must be kept")
        self.assertFails([COMPRESS, "--model", assets["base"], "--out", out, "--stage", "vocab", "--vocab", "9000",
                          "--corpus", assets["train"]], "larger than the tokenizer's 8000 pieces")
        self.assertFails([COMPRESS, "--model", assets["base"], "--out", out, "--stage", "vocab", "--vocab", "3000",
                          "--corpus", other], "were made with tokenizer")
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()

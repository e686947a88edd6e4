"""Every kind of bad input, at the command line: a clear error naming the
file, line, tensor or flag, exit code 1 (2 for usage errors), never a crash,
and nothing executed from a hostile pickle."""
import io
import json
import os
import shutil
import struct
import sys
import unittest
import zipfile

import torch

from cli_support import TINY, ToolTestCase, read_binary, read_json, run, tool


def write(path, data, mode="w"):
    with open(path, mode) as f:
        f.write(data)


def safetensors(header, data=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


class BadCheckpoints(ToolTestCase):
    def setUp(self):
        super().setUp()
        self.good = self.init_tiny("good")

    def variant(self, name):
        target = self.path(name)
        shutil.copytree(self.good, target)
        return target

    def weights(self, d):
        return os.path.join(d, "model.safetensors")

    def test_truncated_file(self):
        d = self.variant("truncated")
        size = os.path.getsize(self.weights(d))
        os.truncate(self.weights(d), size // 2)
        self.assertFails([tool("openba-inspect"), d], "model.safetensors", "out of range")
        os.truncate(self.weights(d), 5)
        self.assertFails([tool("openba-inspect"), d], "model.safetensors", "truncated")

    def test_header_length_beyond_file(self):
        d = self.variant("hdr")
        data = bytearray(read_binary(self.weights(d)))
        data[0:8] = struct.pack("<Q", len(data) * 2)
        write(self.weights(d), bytes(data), "wb")
        self.assertFails([tool("openba-inspect"), d], "beyond the end of the file")

    def _rewrite_header(self, d, edit):
        raw = read_binary(self.weights(d))
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        data = raw[8 + n:]
        text = edit(header)
        if not isinstance(text, bytes):
            text = json.dumps(text).encode()
        write(self.weights(d), struct.pack("<Q", len(text)) + text + data, "wb")

    def test_offsets_out_of_range_overlapping_or_mismatched(self):
        d = self.variant("offsets")

        def out_of_range(h):
            h["lm_head.bias"]["data_offsets"][1] += 10**9
            return h
        self._rewrite_header(d, out_of_range)
        self.assertFails([tool("openba-inspect"), d], "'lm_head.bias'", "out of range")

        d = self.variant("overlap")

        def overlap(h):
            a, b = h["lm_head.bias"]["data_offsets"]
            h["lm_head.bias"]["data_offsets"] = [a - 4, b - 4]
            return h
        self._rewrite_header(d, overlap)
        self.assertFails([tool("openba-inspect"), d], "overlaps")

        d = self.variant("mismatch")

        def mismatch(h):
            h["lm_head.bias"]["shape"] = [8191]
            return h
        self._rewrite_header(d, mismatch)
        self.assertFails([tool("openba-inspect"), d], "'lm_head.bias'", "needs")

    def test_unknown_dtype_duplicate_and_malformed_header(self):
        d = self.variant("dtype")

        def dtype(h):
            h["lm_head.bias"]["dtype"] = "Q7"
            return h
        self._rewrite_header(d, dtype)
        self.assertFails([tool("openba-inspect"), d], "'lm_head.bias'", "unknown dtype 'Q7'")

        d = self.variant("dup")

        def duplicate(h):
            text = json.dumps(h)
            entry = json.dumps(h["lm_head.bias"])
            return text[:-1].encode() + b', "lm_head.bias": ' + entry.encode() + b"}"
        self._rewrite_header(d, duplicate)
        self.assertFails([tool("openba-inspect"), d], "'lm_head.bias'", "duplicate")

        d = self.variant("json")
        self._rewrite_header(d, lambda h: b'{"lm_head.bias": {')
        self.assertFails([tool("openba-inspect"), d], "malformed safetensors header JSON")

    def test_config_problems(self):
        d = self.variant("config")
        write(os.path.join(d, "config.json"), '{\n  "hidden_size": 128,\n  "num_heads": 4,\n  oops\n}')
        self.assertFails([tool("openba-inspect"), d], "config.json:4", "malformed JSON")
        cfg = read_json(os.path.join(self.good, "config.json"))
        cfg["num_heads"] = 2
        write(os.path.join(d, "config.json"), json.dumps(cfg))
        self.assertFails([tool("openba-inspect"), d], "self_attn.qkv.weight", "[384, 128]", "[192, 128]")
        cfg["num_heads"] = 4
        cfg["ffn_hidden_size"] = 100
        write(os.path.join(d, "config.json"), json.dumps(cfg))
        self.assertFails([tool("openba-inspect"), d], "ffn_hidden_size 100", "352")
        os.remove(os.path.join(d, "config.json"))
        self.assertFails([tool("openba-inspect"), d], "missing config.json")
        self.assertFails([tool("openba-inspect"), self.path("absent")], "not a checkpoint directory")

    def test_missing_and_unexpected_tensors(self):
        d = self.variant("missing")

        def drop(h):
            del h["decoder.block.3.mlp.fc_out.weight"]
            return h
        self._rewrite_header(d, drop)
        self.assertFails([tool("openba-inspect"), d], "missing tensor 'decoder.block.3.mlp.fc_out.weight'")

        d = self.variant("unexpected")

        def add(h):
            end = max(v["data_offsets"][1] for k, v in h.items() if k != "__metadata__")
            h["decoder.block.3.mlp.extra.weight"] = {"dtype": "F32", "shape": [0], "data_offsets": [end, end]}
            return h
        self._rewrite_header(d, add)
        self.assertFails([tool("openba-inspect"), d], "unexpected tensor 'decoder.block.3.mlp.extra.weight'")


FIXTURE_BIN = os.path.join(os.path.dirname(__file__), "..", "fixtures", "tiny-bin", "pytorch_model.bin")


def rewrite_fixture(path, compression=zipfile.ZIP_STORED, edit=lambda name, data: data):
    """Copies the torch.save fixture entry by entry, optionally compressed or edited."""
    with zipfile.ZipFile(FIXTURE_BIN) as zin, zipfile.ZipFile(path, "w", compression) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, edit(item.filename, zin.read(item.filename)))


class BadTorchBin(ToolTestCase):
    """.bin files made with the real torch.save and Python's zipfile."""

    def bin_dir(self, name, payload_writer):
        d = self.path(name)
        os.makedirs(d)
        shutil.copy(os.path.join(os.path.dirname(__file__), "..", "fixtures", "tiny-bin", "config.json"), d)
        payload_writer(os.path.join(d, "pytorch_model.bin"))
        return d

    def test_hostile_pickle_is_refused_not_run(self):
        marker = self.path("pwned")

        class Hostile:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        def writer(path):
            with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
                z.writestr("archive/data.pkl", __import__("pickle").dumps({"x": Hostile()}, protocol=2))
        d = self.bin_dir("hostile", writer)
        self.assertFails([tool("openba-inspect"), d], "pytorch_model.bin", "refusing global", "system")
        self.assertFalse(os.path.exists(marker))

    def test_truncated_bin(self):
        d = self.bin_dir("trunc", lambda p: write(p, read_binary(FIXTURE_BIN)[:20000], "wb"))
        self.assertFails([tool("openba-inspect"), d], "pytorch_model.bin", "truncated")

    def test_compressed_entries(self):
        d = self.bin_dir("deflated", lambda p: rewrite_fixture(p, zipfile.ZIP_DEFLATED))
        self.assertFails([tool("openba-inspect"), d], "pytorch_model.bin", "compressed")

    def test_legacy_format(self):
        sd = {"shared_embedding.weight": torch.zeros(128, 16)}
        d = self.bin_dir("legacy", lambda p: torch.save(sd, p, _use_new_zipfile_serialization=False))
        self.assertFails([tool("openba-inspect"), d], "pytorch_model.bin", "legacy")

    def test_storage_size_mismatch(self):
        shorten = lambda name, data: data[:-2] if name.endswith("/data/1") else data
        d = self.bin_dir("short-storage", lambda p: rewrite_fixture(p, edit=shorten))
        self.assertFails([tool("openba-inspect"), d], "pytorch_model.bin", "holds", "declares")


class BadToolArguments(ToolTestCase):
    def test_init(self):
        bad_yaml = self.path("bad.yaml")
        with open(TINY) as f:
            write(bad_yaml, f.read().replace("d_model:", "d_modl:"))
        self.assertFails([tool("openba-init"), "--config", bad_yaml, "--out", self.path("x")], "bad.yaml:", "unknown key 'd_modl'")
        self.assertFails([tool("openba-init"), "--config", TINY, "--out", self.path("x"), "--dtype", "f8"], "--dtype", "f8")
        self.assertFails([tool("openba-init"), "--config", TINY, "--out", self.path("x"), "--shard-size", "lots"], "--shard-size")
        self.assertFails([tool("openba-init"), "--config", TINY, "--out", self.path("x"), "--init", "xavier"], "--init")
        self.assertFails([tool("openba-init"), "--out", self.path("x")], "--config", code=2)
        out = self.init_tiny("exists")
        self.assertFails([tool("openba-init"), "--config", TINY, "--out", out], "already exists", "--force")
        run([tool("openba-init"), "--config", TINY, "--out", out, "--force", "--quiet"])
        self.assertEqual(run([tool("openba-init"), "--help"])[0], 0)

    def test_eval_data(self):
        model = self.init_tiny()
        cases = [
            ('{"input_ids": [5, 1], "labels": [7, 1]}\n{"input_ids": [5, 1], "labels": [7, 1]}\n{"input_ids": [5,\n', ":3", "malformed JSON"),
            ('{"input_ids": [5, 99999], "labels": [7]}\n', ":1", "input_ids[1] = 99999", "outside the vocabulary"),
            ('{"input_ids": [5], "labels": [-5]}\n', ":1", "labels[0] = -5"),
            ('{"input_ids": [5]}\n', ":1", "missing \"labels\""),
            ('{"input_ids": [], "labels": [3]}\n', ":1", "\"input_ids\" is empty"),
            ('{"input_ids": "5 6", "labels": [3]}\n', ":1", "must be an array"),
            ('[1, 2]\n', ":1", "expected a JSON object"),
            ('{"input_ids": [5.5], "labels": [3]}\n', ":1", "not an integer"),
        ]
        for i, (text, *needles) in enumerate(cases):
            data = self.path(f"bad{i}.jsonl")
            write(data, text)
            self.assertFails([tool("openba-eval"), "--model", model, "--data", data, "--quiet"], data + needles[0], *needles[1:])
        empty = self.path("empty.jsonl")
        write(empty, "\n\n")
        self.assertFails([tool("openba-eval"), "--model", model, "--data", empty, "--quiet"], "no examples")
        self.assertFails([tool("openba-eval"), "--model", model, "--data", self.path("nope.jsonl")], "nope.jsonl", "cannot open")
        self.assertFails([tool("openba-eval"), "--model", model, "--data", empty, "--batch-size", "0"], "--batch-size", code=2)


if __name__ == "__main__":
    unittest.main(verbosity=2)

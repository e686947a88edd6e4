"""openba-tokenize end to end, checked against the real SentencePiece tools
(spm_encode, spm_decode, spm_export_vocab) and independent computations."""
import collections
import gzip
import json
import math
import os
import shutil
import subprocess
import unittest

from cli_support import (TINY, ToolTestCase, demo_assets, demo_training_assets, read_binary, read_json, run, tool)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")


class TrainAndLayout(ToolTestCase):
    def test_trained_directory_has_openba_ids(self):
        _, tokenizer = demo_assets()
        vocab = run(["spm_export_vocab", "--model", os.path.join(tokenizer, "spiece.model")])[1]
        pieces = len(vocab.splitlines())  # counted by SentencePiece's own tool
        self.assertEqual(pieces, 8000)
        added = read_json(os.path.join(tokenizer, "added_tokens.json"))
        self.assertEqual(added, {"<R>": pieces + 100, "<S>": pieces + 101, "<X>": pieces + 102})
        config = read_json(os.path.join(tokenizer, "tokenizer_config.json"))
        self.assertEqual(config["extra_ids"], 100)
        specials = read_json(os.path.join(tokenizer, "special_tokens_map.json"))
        self.assertEqual(specials["additional_special_tokens"][0], "<extra_id_0>")
        first = vocab.splitlines()[:3]
        self.assertEqual([line.split("\t")[0] for line in first], ["<pad>", "</s>", "<unk>"])

    def test_training_is_repeatable_whatever_the_thread_count(self):
        corpus, _ = demo_assets()
        text = os.path.join(corpus, "train", "zh.txt")
        models = []
        for name, threads in (("a", "1"), ("b", "2"), ("c", "1")):
            out = self.path(name)
            run([tool("openba-tokenize"), "--threads", threads, "train", "--input", text, "--vocab-size", "6000", "--out", out])
            models.append(read_binary(os.path.join(out, "spiece.model")))
        self.assertEqual(models[0], models[1])
        self.assertEqual(models[0], models[2])

    def test_init_takes_vocabulary_rows_from_the_tokenizer(self):
        _, tokenizer = demo_assets()
        model = self.path("model")
        _, _, err = run([tool("openba-init"), "--config", TINY, "--out", model, "--tokenizer", tokenizer, "--quiet"])
        report = json.loads(run([tool("openba-inspect"), model, "--json"])[1])
        self.assertEqual(report["config"]["vocab_size"], 8192)  # 8103 ids padded to a multiple of 128
        self.assertEqual(sorted(report["tokenizer_files"]),
                         ["added_tokens.json", "special_tokens_map.json", "spiece.model", "tokenizer_config.json"])
        self.assertEqual(read_binary(os.path.join(model, "spiece.model")), read_binary(os.path.join(tokenizer, "spiece.model")))


class EncodeAgainstSentencePiece(ToolTestCase):
    def test_ids_identical_to_spm_encode(self):
        corpus, tokenizer = demo_assets()
        text = os.path.join(corpus, "heldout", "zh.txt")
        shards = self.path("shards")
        run([tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--input", text, "--split", "line",
             "--out", shards, "--quiet"])
        spm = run(["spm_encode", "--model", os.path.join(tokenizer, "spiece.model"), "--output_format=id", text])[1]
        expected = [line for line in spm.split("\n") if line]
        got = run([tool("openba-tokenize"), "dump", shards, "--count", "0"])[1].split("\n")[:-1]
        self.assertEqual(len(got), len(expected))
        self.assertEqual(got, expected)
        manifest = read_json(os.path.join(shards, "manifest.json"))
        empty_lines = sum(1 for line in read_lines(text)[:-1] if not line.strip())
        self.assertEqual(manifest["skipped_empty_documents"], empty_lines)

    def test_decode_matches_spm_decode(self):
        corpus, tokenizer = demo_assets()
        shards = self.path("shards")
        run([tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--input",
             os.path.join(corpus, "heldout", "en.txt"), "--out", shards, "--quiet"])
        ids = run([tool("openba-tokenize"), "dump", shards, "--count", "5"])[1]
        ours = run([tool("openba-tokenize"), "dump", shards, "--count", "5", "--tokenizer", tokenizer])[1]
        spm = subprocess.run(["spm_decode", "--model", os.path.join(tokenizer, "spiece.model"), "--input_format=id"],
                             input=ids, capture_output=True, text=True, check=True).stdout
        self.assertEqual(ours, spm)


class EncodeDeterminism(ToolTestCase):
    def encode(self, name, inputs, *flags):
        _, tokenizer = demo_assets()
        out = self.path(name)
        run([tool("openba-tokenize"), *flags, "encode", "--tokenizer", tokenizer, "--input", *inputs, "--out", out, "--quiet"])
        return out

    def test_same_bytes_whatever_the_thread_count(self):
        corpus, _ = demo_assets()
        inputs = [os.path.join(corpus, "train", "en.txt"), os.path.join(corpus, "train", "zh.txt")]
        a = self.encode("t1", inputs, "--threads", "1")
        b = self.encode("t2", inputs, "--threads", "2")
        c = self.encode("t3", inputs, "--threads", "3")
        for name in sorted(os.listdir(a)):
            self.assertEqual(read_binary(os.path.join(a, name)), read_binary(os.path.join(b, name)), name)
            self.assertEqual(read_binary(os.path.join(a, name)), read_binary(os.path.join(c, name)), name)

    def test_compressed_and_jsonl_inputs_give_the_same_tokens(self):
        corpus, _ = demo_assets()
        text = os.path.join(corpus, "heldout", "en.txt")
        plain = self.encode("plain", [text])
        gz = self.path("en.txt.gz")
        with open(text, "rb") as f, gzip.open(gz, "wb") as g:
            g.write(f.read())
        zst = self.path("en.txt.zst")
        run(["zstd", "-q", "-o", zst, text])
        docs = read_lines(text)[:-1]
        paragraphs = "\n".join(docs).split("\n\n")
        jsonl = self.path("en.jsonl")
        with open(jsonl, "w", encoding="utf-8") as f:
            for i, p in enumerate(paragraphs):
                f.write(json.dumps({"id": i, "body": p}, ensure_ascii=False) + "\n")
        for name, inputs, flags in (("gz", [gz], []), ("zst", [zst], []), ("jsonl", [jsonl], ["--field", "body"])):
            _, tokenizer = demo_assets()
            out = self.path(name)
            run([tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--input", *inputs, "--out", out,
                 "--quiet", *flags])
            for f in ("tokens-00000.bin", "index-00000.bin"):
                self.assertEqual(read_binary(os.path.join(out, f)), read_binary(os.path.join(plain, f)), name + " " + f)
        manifest = read_json(os.path.join(self.path("gz"), "manifest.json"))
        self.assertEqual(manifest["inputs"][0]["compression"], "gzip")
        sha = run(["sha256sum", gz])[1].split()[0]
        self.assertEqual(manifest["inputs"][0]["sha256"], sha)
        self.assertEqual(manifest["inputs"][0]["bytes"], os.path.getsize(gz))


class Stats(ToolTestCase):
    def test_frequencies_and_lengths_match_the_dumped_ids(self):
        corpus, tokenizer = demo_assets()
        shards = self.path("shards")
        run([tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--input",
             os.path.join(corpus, "heldout", "en.txt"), os.path.join(corpus, "heldout", "zh.txt"), "--out", shards, "--quiet"])
        docs = [list(map(int, line.split())) for line in
                run([tool("openba-tokenize"), "dump", shards, "--count", "0"])[1].split("\n")[:-1]]
        counts = collections.Counter(i for d in docs for i in d)
        freq = self.path("freq.json")
        out = json.loads(run([tool("openba-tokenize"), "stats", shards, "--json", "--freq", freq, "--top", "5",
                              "--tokenizer", tokenizer])[1])
        table = read_json(freq)
        self.assertEqual(table["tokens"], sum(counts.values()))
        self.assertEqual({i: c for i, c in enumerate(table["counts"]) if c}, dict(counts))
        self.assertEqual(out["documents"], len(docs))
        lengths = sorted(len(d) for d in docs)
        for p in (10, 50, 90, 99, 100):
            rank = max(1, math.ceil(p / 100 * len(lengths)))
            self.assertEqual(out["document_tokens"][f"p{p}"], lengths[rank - 1])
        top = [e["id"] for e in out["top"]]
        self.assertEqual(top, [i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]])
        self.assertTrue(all("piece" in e for e in out["top"]))


class BadTokenizeInputs(ToolTestCase):
    def encode_fails(self, inputs, *needles, flags=()):
        _, tokenizer = demo_assets()
        out = self.path("out")
        self.assertFails([tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--input", *inputs, "--out", out,
                          "--quiet", *flags], *needles)
        # Never a partial shard set: no output, no staging directory left behind.
        self.assertFalse(os.path.exists(out))
        self.assertEqual([n for n in os.listdir(self.tmp) if ".tmp-" in n], [])

    def write(self, name, data, mode="w"):
        path = self.path(name)
        with open(path, mode) as f:
            f.write(data)
        return path

    def test_invalid_utf8(self):
        path = self.write("bad.txt", b"good\n\nstill good\nbroken \xff here\n", "wb")
        self.encode_fails([path], "bad.txt:3", "invalid UTF-8")

    def test_empty_documents_are_counted(self):
        _, tokenizer = demo_assets()
        path = self.write("e.jsonl", '{"text": "one"}\n{"text": ""}\n{"text": "   "}\n{"text": "two"}\n')
        out = self.path("out")
        run([tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--input", path, "--out", out, "--quiet"])
        manifest = read_json(os.path.join(out, "manifest.json"))
        self.assertEqual((manifest["documents"], manifest["skipped_empty_documents"]), (2, 2))
        empty = self.write("empty.txt", "\n\n  \n")
        self.assertFails([tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--input", empty, "--out",
                          self.path("none"), "--quiet"], "no documents")

    def test_a_100_mb_single_line(self):
        path = self.path("huge.txt")
        with open(path, "w") as f:
            f.write("short document\n\n")
            f.write("x" * (100 << 20))
            f.write("\n")
        self.encode_fails([path], "huge.txt:3", "--max-document-bytes")

    def test_jsonl_problems(self):
        self.encode_fails([self.write("a.jsonl", '{"text": "ok"}\n"just a string"\n')], "a.jsonl:2", "not an object")
        self.encode_fails([self.write("b.jsonl", '{"text": "ok"}\n{"content": "x"}\n')], "b.jsonl:2", 'no "text" field')

    def test_truncated_and_unreadable_gzip(self):
        data = gzip.compress(("line of text\n\n" * 20000).encode())
        self.encode_fails([self.write("t.txt.gz", data[: len(data) // 2], "wb")], "t.txt.gz", "truncated gzip")
        self.encode_fails([self.write("g.txt.gz", b"\x1f\x8b" + b"garbage" * 100, "wb")], "g.txt.gz", "gzip")
        path = self.write("locked.txt", "text\n")
        os.chmod(path, 0)
        if os.access(path, os.R_OK):  # root reads anything: use a directory instead
            path = self.tmp
        self.encode_fails([path], os.path.basename(path))

    def test_missing_tokenizer_files(self):
        corpus, tokenizer = demo_assets()
        broken = self.path("tok")
        shutil.copytree(tokenizer, broken)
        os.remove(os.path.join(broken, "spiece.model"))
        self.assertFails([tool("openba-tokenize"), "encode", "--tokenizer", broken, "--input",
                          os.path.join(corpus, "heldout", "en.txt"), "--out", self.path("o")], "no spiece.model")
        with open(os.path.join(broken, "spiece.model"), "wb") as f:
            f.write(b"\x0a\x05trunc")
        self.assertFails([tool("openba-tokenize"), "encode", "--tokenizer", broken, "--input",
                          os.path.join(corpus, "heldout", "en.txt"), "--out", self.path("o")], "spiece.model")

    def test_shards_from_another_tokenizer_are_refused(self):
        corpus, tokenizer = demo_assets()
        other = self.path("other-tok")
        run([tool("openba-tokenize"), "train", "--input", os.path.join(corpus, "train", "zh.txt"), "--vocab-size", "6000",
             "--out", other])
        shards = self.path("shards")
        run([tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--input",
             os.path.join(corpus, "heldout", "en.txt"), "--out", shards, "--quiet"])
        fp_shards = read_json(os.path.join(shards, "manifest.json"))["tokenizer"]["fingerprint"][:16]
        err = self.assertFails([tool("openba-tokenize"), "stats", shards, "--tokenizer", other], fp_shards, "re-encode")

    def test_existing_output_needs_force(self):
        corpus, tokenizer = demo_assets()
        out = self.path("shards")
        args = [tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--input",
                os.path.join(corpus, "heldout", "en.txt"), "--out", out, "--quiet"]
        run(args)
        self.assertFails(args, "already exists", "--force")
        run(args + ["--force"])


class MakeTask(ToolTestCase):
    """openba-tokenize make-task: every item checked against the documents
    that openba-tokenize dump prints (the passage and the true continuation
    are consecutive tokens of the named document; each distractor a span of
    another document), the S-denoiser's format, determinism, and that
    openba-eval --task reads the file."""

    def make(self, out, *flags):
        a = demo_training_assets()
        run([tool("openba-tokenize"), "make-task", a["heldout"], "--tokenizer", demo_assets()[1], "--out", out, *flags])
        with open(out) as f:
            return f.read()

    def test_items_against_the_documents(self):
        a = demo_training_assets()
        docs = [[int(x) for x in line.split()]
                for line in run([tool("openba-tokenize"), "dump", a["heldout"], "--count", "0"])[1].splitlines()]
        text = self.make(self.path("task.jsonl"), "--items", "120", "--context-tokens", "20", "--choice-tokens", "6")
        items = [json.loads(line) for line in text.splitlines()]
        self.assertEqual(len(items), 120)
        answers = collections.Counter()
        for i, item in enumerate(items):
            ctx, choices, k = item["context_ids"], item["choice_ids"], item["answer"]
            doc, start = docs[item["document"]], item["start"]
            self.assertEqual(len(ctx), 1 + 20 + 2, i)
            sentinel, eos = ctx[-2], ctx[-1]
            self.assertEqual(eos, 1)
            self.assertEqual(ctx[1:-2], doc[start:start + 20], i)
            self.assertEqual(len(choices), 4)
            for c in choices:
                self.assertEqual(len(c), 6 + 2)
                self.assertEqual((c[0], c[-1]), (sentinel, eos))
            self.assertEqual(choices[k][1:-1], doc[start + 20:start + 26], i)
            # Each distractor: a span of another document, each document once.
            sources = set()
            for j, c in enumerate(choices):
                if j == k:
                    continue
                found = [d for d, other in enumerate(docs) if d != item["document"] and any(
                    other[t:t + 6] == c[1:-1] for t in range(len(other) - 5))]
                self.assertTrue(found, f"item {i} choice {j}")
                sources.add(tuple(found))
            self.assertEqual(len(sources), 3, i)
            answers[k] += 1
        self.assertEqual(sorted(answers), [0, 1, 2, 3])
        self.assertTrue(all(n >= 15 for n in answers.values()), answers)
        # <S> opens every passage, as the S-denoiser's inputs (OpenBA's
        # layout: <extra_id_0>, then <R>, <S>, <X>).
        self.assertEqual({item["context_ids"][0] for item in items}, {sentinel + 2})

    def test_deterministic_and_read_by_openba_eval(self):
        a = demo_training_assets()
        one = self.make(self.path("a.jsonl"), "--items", "30")
        self.assertEqual(one, self.make(self.path("b.jsonl"), "--items", "30"))
        self.assertNotEqual(one, self.make(self.path("c.jsonl"), "--items", "30", "--seed", "1"))
        summary = json.loads(run([tool("openba-eval"), "--model", a["base"], "--task", self.path("a.jsonl"),
                                  "--quiet"])[1].splitlines()[-1])
        self.assertEqual(summary["items"], 30)
        self.assertAlmostEqual(summary["chance"], 0.25)

    def test_bad_options(self):
        a = demo_training_assets()
        base = [tool("openba-tokenize"), "make-task", a["heldout"], "--tokenizer", demo_assets()[1], "--out",
                self.path("t.jsonl")]
        self.assertFails(base + ["--context-tokens", "1000000"], "documents of at least 1000012 tokens")
        self.assertFails(base + ["--choices", "1"], "--choices must be at least 2")
        self.assertFails(base + ["--items", "0"], "--items must be at least 1")
        self.assertFalse(os.path.exists(self.path("t.jsonl")))


if __name__ == "__main__":
    unittest.main(verbosity=2)

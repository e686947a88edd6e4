"""Shared helpers for the CLI tests: where the tools are, running them, and
reading safetensors with an independent parser."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

BUILD_DIR = os.environ.get("OPENBA_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON_DIR = os.path.join(SOURCE_DIR, "tests", "python")
TINY = os.path.join(SOURCE_DIR, "configs", "models", "tiny.yaml")
# The torchrun of the Python that runs these tests (the project's .venv: PyPI torch).
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")
sys.path.insert(0, PYTHON_DIR)


def tool(name):
    return os.path.join(BUILD_DIR, "tools", name)


def run(args, expect_ok=True, timeout=600, env=None):
    """Runs a command; returns (returncode, stdout, stderr). env: variables
    added to this process's environment."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})
    if expect_ok and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.returncode, proc.stdout, proc.stderr


def demo_assets():
    """The demo corpus and a tokenizer trained on it, built once per build
    directory (shared by test processes; created under a temporary name and
    renamed, so concurrent tests never see a half-made one)."""
    root = os.path.join(BUILD_DIR, "test-data", "demo")
    corpus, tokenizer = os.path.join(root, "corpus"), os.path.join(root, "tokenizer")
    if not os.path.isdir(tokenizer):
        os.makedirs(root, exist_ok=True)
        work = tempfile.mkdtemp(prefix="making-", dir=root)
        run([sys.executable, os.path.join(SOURCE_DIR, "scripts", "prepare_demo_corpus.py"), os.path.join(work, "corpus")])
        run([tool("openba-tokenize"), "train", "--input", os.path.join(work, "corpus", "train", "en.txt"),
             os.path.join(work, "corpus", "train", "zh.txt"), "--vocab-size", "8000", "--out",
             os.path.join(work, "tokenizer")])
        try:
            os.rename(os.path.join(work, "corpus"), corpus)
            os.rename(os.path.join(work, "tokenizer"), tokenizer)
        except OSError:
            pass  # another test process finished first
        shutil.rmtree(work, ignore_errors=True)
    return corpus, tokenizer


def demo_training_assets():
    """Demo tokenizer, train/held-out shards and an initialized tiny model,
    built once per build directory (see demo_assets)."""
    corpus, tokenizer = demo_assets()
    root = os.path.join(BUILD_DIR, "test-data", "demo")
    ready = os.path.join(root, "training")
    if not os.path.isdir(ready):
        work = tempfile.mkdtemp(prefix="making-", dir=root)
        for split in ("train", "heldout"):
            run([tool("openba-tokenize"), "encode", "--tokenizer", tokenizer, "--quiet", "--out",
                 os.path.join(work, split), "--input", os.path.join(corpus, split, "en.txt"),
                 os.path.join(corpus, split, "zh.txt")])
        run([tool("openba-init"), "--config", TINY, "--tokenizer", tokenizer, "--out", os.path.join(work, "base"),
             "--quiet"])
        try:
            os.rename(work, ready)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
    return {"tokenizer": tokenizer, "train": os.path.join(ready, "train"), "heldout": os.path.join(ready, "heldout"),
            "base": os.path.join(ready, "base")}


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_binary(path):
    with open(path, "rb") as f:
        return f.read()


def read_json(path):
    with open(path) as f:
        return json.load(f)


def safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


class ToolTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="openba-cli-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def init_tiny(self, name="model", *extra):
        out = self.path(name)
        run([tool("openba-init"), "--config", TINY, "--out", out, "--quiet", *extra])
        return out

    def eval_data(self, vocab=8192, n=16, seed=1):
        out = self.path(f"eval-{vocab}-{n}-{seed}.jsonl")
        run([sys.executable, os.path.join(PYTHON_DIR, "make_eval_data.py"), out, str(vocab), str(n), str(seed)])
        return out

    def assertFails(self, args, *needles, code=1):
        """The command exits with `code` (never a signal) and stderr names every needle."""
        rc, _, err = run(args, expect_ok=False)
        self.assertEqual(rc, code, f"exit {rc} for {' '.join(args)}; stderr:\n{err}")
        for needle in needles:
            self.assertIn(needle, err)
        self.assertNotIn("Exception raised from", err)  # no LibTorch backtraces
        return err

#!/usr/bin/env python3
"""The GPU check behind bench/gpu/run.sh: build, then (a) CUDA against CPU
per-example losses, (b) NCCL training with one rank and with two ranks
sharing the GPU, (c) training throughput and MFU of the OpenBA-V2 3.4B shape
and a ~1B shape, with and without activation checkpointing, against 989
TFLOP/s and an 8192^3 bf16 GEMM measured in the same process. Every step
is recorded in gpu-results.json whether it worked or not; one failing step
does not stop the others.

--dry-run runs the same steps on CPU with tiny shapes and the existing build
(the CUDA-style path forced where the real run uses CUDA), so tests can call
it and the script cannot rot. Needs only the Python standard library (the
torch module is not imported).
"""
import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STARTED = time.time()
FP32_TOLERANCE = 1e-5   # relative, per example: the bound for CUDA fp32 against CPU
BF16_TOLERANCE = 3e-2   # relative, per example: bf16 autocast keeps 8 mantissa bits through every layer
MFU_TARGET = 0.45       # on the 3.4B shape
TARGETS = ["openba-tokenize", "openba-init", "openba-eval", "openba-generate", "openba-bench-model", "openba-pretrain",
           "bench_train"]


def log(message):
    print(f"[{time.time() - STARTED:6.1f} s] {message}", flush=True)


class StepFailed(Exception):
    pass


def run(cmd, log_path, timeout, env=None, check=True):
    """Runs cmd with stdout+stderr into log_path; returns (returncode, stdout text)."""
    with open(log_path, "w") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=out, text=True, timeout=timeout,
                                  env=None if env is None else {**os.environ, **env}, cwd=ROOT)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"timed out after {timeout:.0f} s: {' '.join(cmd)} (log {log_path})")
        out.write(proc.stdout)
    if check and proc.returncode != 0:
        raise StepFailed(f"exit {proc.returncode}: {' '.join(cmd)}: {tail(log_path)}")
    return proc.returncode, proc.stdout


def tail(path, lines=6):
    with open(path, errors="replace") as f:
        return " | ".join(l.strip() for l in f.read().splitlines()[-lines:])


def step(results, name, fn):
    log(f"{name} ...")
    began = time.time()
    try:
        value = fn()
        results[name] = {"ok": True, **(value or {})}
    except Exception as e:  # noqa: BLE001 - every failure is a finding, recorded
        results[name] = {"ok": False, "error": str(e)}
    results[name]["seconds"] = round(time.time() - began, 1)
    log(f"{name}: {'ok' if results[name]['ok'] else 'FAILED: ' + results[name]['error']}")
    return results[name]["ok"]


# --- build ----------------------------------------------------------------------

def extract_deb(path, prefix):
    """A .deb is an ar archive; its data.tar.* holds the files (no dpkg needed)."""
    with open(path, "rb") as f:
        blob = f.read()
    if not blob.startswith(b"!<arch>\n"):
        raise StepFailed(f"{path}: not a .deb (ar) archive")
    pos = 8
    while pos + 60 <= len(blob):
        name = blob[pos:pos + 16].decode().strip().rstrip("/")
        size = int(blob[pos + 48:pos + 58].decode().strip())
        data = blob[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            mode = {"xz": "r:xz", "gz": "r:gz", "bz2": "r:bz2", "tar": "r:"}[name.rsplit(".", 1)[-1]]
            with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tar:
                tar.extractall(prefix)
            return
    raise StepFailed(f"{path}: no data.tar member")


def build(args, work):
    torch_dir = subprocess.run([sys.executable, "-c", "import os, torch; print(os.path.dirname(torch.__file__))"],
                               capture_output=True, text=True, check=True).stdout.strip()
    prefix_paths = [torch_dir, os.path.join(torch_dir, "share", "cmake")]
    extra = []
    debs = os.path.join(ROOT, ".device", "debs")
    if os.path.isdir(debs):
        # The Debian -dev packages the build needs (no apt there): extracted, found by CMake, and
        # their libraries found at run time through the build's RPATH.
        prefix = os.path.join(work, "prefix")
        for deb in sorted(os.listdir(debs)):
            if deb.endswith(".deb"):
                extract_deb(os.path.join(debs, deb), prefix)
        usr = os.path.join(prefix, "usr")
        libdir = os.path.join(usr, "lib", "x86_64-linux-gnu")
        prefix_paths.append(usr)
        extra += [f"-DCMAKE_INCLUDE_PATH={usr}/include", f"-DCMAKE_LIBRARY_PATH={libdir}",
                  f"-DCMAKE_BUILD_RPATH={libdir}", f"-Dyaml-cpp_DIR={libdir}/cmake/yaml-cpp",
                  f"-DCLI11_DIR={usr}/share/cmake/CLI11", f"-Dnlohmann_json_DIR={usr}/share/cmake/nlohmann_json"]
        # RUNPATH does not reach a library's own dependencies (libsentencepiece -> libprotobuf-lite).
        os.environ["LD_LIBRARY_PATH"] = ":".join(filter(None, [libdir, os.environ.get("LD_LIBRARY_PATH")]))
        os.environ["PKG_CONFIG_PATH"] = f"{libdir}/pkgconfig:{usr}/share/pkgconfig"
        os.environ["PKG_CONFIG_SYSROOT_DIR"] = prefix
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    build_dir = args.build_dir
    run(["cmake", "-S", ROOT, "-B", build_dir, *generator, "-DCMAKE_BUILD_TYPE=Release",
         "-DCMAKE_PREFIX_PATH=" + ";".join(prefix_paths), "-DOPENBA_BUILD_TESTS=OFF", "-DOPENBA_BUILD_FUZZERS=OFF",
         *extra], os.path.join(args.out, "build-configure.log"), timeout=240)
    run(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 4), "--target", *TARGETS],
        os.path.join(args.out, "build.log"), timeout=args.build_timeout)
    return {"build_dir": build_dir, "torch": torch_dir}


# --- data -----------------------------------------------------------------------

def synthetic_corpus(path, lines, seed):
    """Zipf-distributed made-up words: enough distinct pieces for a tokenizer, no data files needed."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    weights = [1.0 / (i + 1) for i in range(len(words))]
    with open(path, "w") as f:
        for _ in range(lines):
            f.write(" ".join(rng.choices(words, weights, k=rng.randint(8, 40))) + ".\n")


def make_data(args, tools, work):
    data = os.path.join(work, "data")
    os.makedirs(data, exist_ok=True)
    synthetic_corpus(os.path.join(data, "train.txt"), 6000, 0)
    synthetic_corpus(os.path.join(data, "heldout.txt"), 600, 1)
    logs = args.out
    run([tools["openba-tokenize"], "train", "--input", os.path.join(data, "train.txt"), "--vocab-size", "2000",
         "--out", os.path.join(data, "tokenizer"), "--force"], os.path.join(logs, "data-tokenizer.log"), 300)
    for split in ("train", "heldout"):
        run([tools["openba-tokenize"], "encode", "--tokenizer", os.path.join(data, "tokenizer"), "--out",
             os.path.join(data, "shards", split), "--force", "--input", os.path.join(data, f"{split}.txt")],
            os.path.join(logs, f"data-encode-{split}.log"), 300)
    model = os.path.join(data, "model")
    run([tools["openba-init"], "--config", os.path.join(ROOT, "configs", "models", "tiny.yaml"), "--tokenizer",
         os.path.join(data, "tokenizer"), "--out", model, "--seed", "0", "--force"],
        os.path.join(logs, "data-init.log"), 300)
    rows = json.load(open(os.path.join(model, "config.json")))["vocab_size"]
    rng = random.Random(2)
    with open(os.path.join(data, "eval.jsonl"), "w") as f:
        for _ in range(48):
            f.write(json.dumps({"input_ids": [rng.randrange(3, rows) for _ in range(rng.randint(10, 200))],
                                "labels": [rng.randrange(3, rows) for _ in range(rng.randint(5, 100))]}) + "\n")
    return {"model": model, "shards": os.path.join(data, "shards"), "eval": os.path.join(data, "eval.jsonl"),
            "vocab_rows": rows}


# --- (a) CUDA against CPU ----------------------------------------------------------

def eval_losses(args, tools, data, name, flags, env=None):
    _, out = run([tools["openba-eval"], "--model", data["model"], "--data", data["eval"], "--quiet", *flags],
                 os.path.join(args.out, f"eval-{name}.log"), 300, env=env)
    return [json.loads(l) for l in out.splitlines() if l.strip()][:-1]  # the last line is the summary


def compare_losses(reference, other, tolerance):
    if len(reference) != len(other):
        raise StepFailed(f"{len(other)} examples against {len(reference)}")
    worst = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(reference, other))
    return {"max_relative_difference": worst, "tolerance": tolerance, "within": worst <= tolerance}


def cuda_against_cpu(args, tools, data):
    cpu = eval_losses(args, tools, data, "cpu", ["--device", "cpu"])
    out = {"examples": len(cpu)}
    if args.dry_run:
        # The same code path CUDA takes (ATen ops + SDPA), on CPU.
        out["fp32"] = compare_losses(cpu, eval_losses(args, tools, data, "cuda-style", ["--device", "cpu"],
                                                      {"OPENBA_CUDA_STYLE_PATH": "1"}), FP32_TOLERANCE)
        out["bf16"] = {"skipped": "bf16 autocast runs on CUDA only"}
    else:
        out["fp32"] = compare_losses(cpu, eval_losses(args, tools, data, "cuda", ["--device", "cuda"]), FP32_TOLERANCE)
        out["bf16"] = compare_losses(cpu, eval_losses(args, tools, data, "cuda-bf16",
                                                      ["--device", "cuda", "--precision", "bf16"]), BF16_TOLERANCE)
    if not out["fp32"]["within"] or not out["bf16"].get("within", True):
        raise StepFailed("losses differ beyond the tolerance: " + json.dumps(out))
    return out


# --- (b) NCCL -------------------------------------------------------------------------

# --- (a') generation on the device against the CPU ---------------------------------

def generation(args, tools, data):
    """Greedy openba-generate on the device against the CPU (fp32, token for
    token: every output should agree, a near-tie may flip one), and the
    device's decode speed (openba-bench-model)."""
    inputs = os.path.join(args.work, "generate.jsonl")
    rng = random.Random(5)
    with open(inputs, "w") as f:
        for _ in range(8):
            f.write(json.dumps({"input_ids": [rng.randrange(3, data["vocab_rows"]) for _ in range(rng.randint(5, 60))]}) + "\n")

    def generate(name, flags, env=None):
        _, out = run([tools["openba-generate"], "--model", data["model"], "--input", inputs, "--quiet",
                      "--max-new-tokens", "16", "--batch-size", "4", *flags],
                     os.path.join(args.out, f"generate-{name}.log"), 300, env=env)
        return [json.loads(line)["output_ids"] for line in out.splitlines() if line.strip()]

    cpu = generate("cpu", ["--device", "cpu"])
    if args.dry_run:
        other, device = generate("cuda-style", ["--device", "cpu"], {"OPENBA_CUDA_STYLE_PATH": "1"}), "cpu"
    else:
        other, device = generate("cuda", ["--device", "cuda"]), "cuda"
    same = sum(a == b for a, b in zip(cpu, other))
    _, text = run([tools["openba-bench-model"], "--model", data["model"], "--device", device, "--quiet",
                   "--batches", "1,32", "--new-tokens", "4" if args.dry_run else "64", "--input-length", "64",
                   "--repeats", "1" if args.dry_run else "2"], os.path.join(args.out, "bench-model.log"), 300)
    out = {"inputs": len(cpu), "same_tokens": same, "speed": json.loads(text.strip().splitlines()[-1])}
    if same < len(cpu) - 1:
        raise StepFailed("greedy outputs differ from the CPU's: " + json.dumps(out))
    return out


def training_config(args, data, device, backend):
    path = os.path.join(args.work, f"train-{device.replace(':', '')}-{backend}.yaml")
    with open(path, "w") as f:
        f.write(f"""model:
  checkpoint: {data['model']}
data:
  train:
    - shards: {data['shards']}/train
  heldout: {data['shards']}/heldout
ul2:
  encoder_tokens: 128
  decoder_tokens: 64
trainer:
  steps: {3 if args.dry_run else 10}
  micro_batch: 4
  global_batch: 8
  lr: 1.0e-3
  warmup_steps: 2
  device: {device}
eval:
  examples_per_denoiser: 2
  batch: 8
logging:
  every: 1
  tensorboard: false
distributed:
  backend: {backend}
  timeout_s: 120
""")
    return path


def losses_of(run_dir):
    out = []
    for line in open(os.path.join(run_dir, "metrics.jsonl")):
        record = json.loads(line)
        if "loss" in record:
            out.append(record["loss"])
    return out


def pretrain(args, tools, config, name, extra):
    run_dir = os.path.join(args.work, "runs", name)
    shutil.rmtree(run_dir, ignore_errors=True)
    run([tools["openba-pretrain"], "--config", config, "--out", run_dir, "--quiet", *extra],
        os.path.join(args.out, f"pretrain-{name}.log"), 300)
    return losses_of(run_dir)


def nccl(args, tools, data):
    device = "cpu" if args.dry_run else "cuda"
    backend = "gloo" if args.dry_run else "nccl"
    cfg = training_config(args, data, device, backend)
    out = {"backend": backend}
    reference = pretrain(args, tools, training_config(args, data, "cpu", "gloo"), "cpu", [])
    one = pretrain(args, tools, cfg, "one-rank", ["--nproc", "1"])
    out["one_rank"] = {"losses": one, "cpu_losses": reference,
                       "max_abs_difference_to_cpu": max(abs(a - b) for a, b in zip(one, reference))}
    try:
        two = pretrain(args, tools, cfg, "two-ranks", ["--nproc", "2"] +
                       ([] if args.dry_run else ["--set", "trainer.device=cuda:0"]))
        out["two_ranks"] = {"shared_gpu": not args.dry_run, "losses": two,
                            "max_abs_difference_to_one_rank": max(abs(a - b) for a, b in zip(two, one))}
    except StepFailed as e:
        out["two_ranks"] = {"shared_gpu": not args.dry_run, "error": str(e)}  # NCCL may refuse one GPU for two ranks
    return out


# --- (c) throughput -------------------------------------------------------------------

def throughput(args, tools):
    if args.dry_run:
        shapes = [("tiny", os.path.join(ROOT, "configs", "models", "tiny.yaml"), 2, 64, 32)]
        device, iters = "cpu", 1
    else:
        shapes = [("3.4B", os.path.join(ROOT, "configs", "models", "openba-v2-3.4b.yaml"), args.batch_3b, 570, 381),
                  ("1B", os.path.join(ROOT, "bench", "configs", "openba-1b.yaml"), args.batch_1b, 570, 381)]
        device, iters = "cuda", args.iters
    rows = []
    for name, config, batch, enc, dec in shapes:
        remaining = args.budget_s - (time.time() - STARTED)
        if remaining < 60:
            rows.append({"shape": name, "error": f"skipped: {remaining:.0f} s of the budget left"})
            continue
        try:
            _, text = run([tools["bench_train"], "--config", config, "--device", device, "--batch", str(batch),
                           "--enc", str(enc), "--dec", str(dec), "--iters", str(iters),
                           "--modes", "plain,checkpointing"], os.path.join(args.out, f"throughput-{name}.log"),
                          timeout=remaining - 30)
            for line in text.splitlines():
                if line.strip().startswith("{"):
                    rows.append({"shape": name, **json.loads(line)})
        except StepFailed as e:
            rows.append({"shape": name, "error": str(e)})
    return {"runs": rows}


def summary(results):
    rows = results.get("throughput", {}).get("runs", [])
    lines = [f"{'shape':6} {'checkpointing':13} {'tokens/s':>10} {'MFU':>6} {'of GEMM':>8} {'peak GPU':>9}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['shape']:6} {str(r.get('activation_checkpointing', '')):13} {r['error'][:80]}")
            continue
        mfu = r.get("mfu")
        mem = r.get("peak_gpu_memory_bytes", -1)
        lines.append(f"{r['shape']:6} {str(r['activation_checkpointing']):13} {r['tokens_per_s']:10.0f} "
                     f"{(f'{mfu:.1%}' if mfu is not None else '-'):>6} {r['fraction_of_gemm']:8.1%} "
                     f"{(f'{mem / 2**30:.1f} GiB' if mem and mem > 0 else '-'):>9}")
    best = [r.get("mfu", 0) for r in rows if r.get("shape") == "3.4B" and "error" not in r]
    results["mfu_target"] = {"shape": "3.4B", "target": MFU_TARGET, "best": max(best) if best else None,
                             "met": bool(best) and max(best) >= MFU_TARGET}
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="every step on CPU with tiny shapes and the existing build")
    p.add_argument("--out", default=os.environ.get("OUT") or os.path.join(ROOT, "runs", "gpu"))
    p.add_argument("--build-dir", default=None, help="default: build-gpu (real run), build (dry run)")
    p.add_argument("--budget-s", type=float, default=540, help="the whole call ends within this (default 540)")
    p.add_argument("--build-timeout", type=float, default=300)
    p.add_argument("--batch-3b", type=int, default=8)
    p.add_argument("--batch-1b", type=int, default=16)
    p.add_argument("--iters", type=int, default=4)
    args = p.parse_args()
    args.out = os.path.abspath(args.out)
    args.build_dir = os.path.abspath(args.build_dir or os.path.join(ROOT, "build" if args.dry_run else "build-gpu"))
    os.makedirs(args.out, exist_ok=True)
    args.work = os.path.join(args.out, "work")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)

    results = {"dry_run": args.dry_run, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "python": sys.executable}
    try:
        results["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                         "--format=csv,noheader"], capture_output=True, text=True,
                                        timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        results["gpu"] = None
    if not args.dry_run:
        step(results, "build", lambda: build(args, args.work))
    tools = {t: os.path.join(args.build_dir, "bench" if t.startswith("bench") else "tools", t) for t in TARGETS}
    missing = [t for t, path in tools.items() if not os.access(path, os.X_OK)]
    if missing:
        results["tools"] = {"ok": False, "error": "not built: " + ", ".join(missing) + " in " + args.build_dir}
    else:
        data = {}
        if step(results, "data", lambda: data.update(make_data(args, tools, args.work)) or dict(data)):
            step(results, "cuda_against_cpu", lambda: cuda_against_cpu(args, tools, data))
            step(results, "generation", lambda: generation(args, tools, data))
            step(results, "nccl", lambda: nccl(args, tools, data))
        step(results, "throughput", lambda: throughput(args, tools))
    table = summary(results)
    results["seconds"] = round(time.time() - STARTED, 1)
    path = os.path.join(args.out, "gpu-results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(path + ".tmp", path)
    print(table)
    print(f"results: {path} ({results['seconds']} s)")
    failed = [k for k, v in results.items() if isinstance(v, dict) and v.get("ok") is False]
    runs = results.get("throughput", {}).get("runs", [])
    if any("error" in r for r in runs):
        failed.append("throughput runs")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

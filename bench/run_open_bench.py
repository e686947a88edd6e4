#!/usr/bin/env python3
"""Opening and inspecting a >= 2 GB checkpoint: openba-inspect's wall time
and peak RSS next to reading the same bytes once (cat > /dev/null), in one
run. Creates the checkpoint with openba-init (bench/configs/open-3g.yaml,
~3.3 GB) in --dir unless it is already there. When the page cache can be
dropped (root, /proc/sys/vm/drop_caches writable) both are also measured
cold.

Usage: bench/run_open_bench.py [--build build] [--dir /tmp/openba-open-bench]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def timed(cmd):
    """Wall seconds and peak RSS (bytes) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss * 1024


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
        return True
    except OSError:
        return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--dir", default="/tmp/openba-open-bench")
    a = p.parse_args()
    model = os.path.join(a.dir, "model")
    if not os.path.isdir(model):
        os.makedirs(a.dir, exist_ok=True)
        subprocess.run([os.path.join(a.build, "tools", "openba-init"), "--config",
                        os.path.join(HERE, "configs", "open-3g.yaml"), "--out", model, "--quiet"], check=True)
    files = [os.path.join(model, f) for f in sorted(os.listdir(model)) if f.endswith(".safetensors")]
    size = sum(os.path.getsize(f) for f in files)
    inspect = [os.path.join(a.build, "tools", "openba-inspect"), model]
    cat = ["cat", *files]
    results = {"checkpoint_bytes": size}
    # Warm: the files are in the page cache (just written or read).
    timed(cat)
    results["warm"] = {"cat": timed(cat), "inspect": timed(inspect)}
    if drop_caches():
        cold_cat = timed(cat)
        drop_caches()
        results["cold"] = {"cat": cold_cat, "inspect": timed(inspect)}
    print(f"checkpoint: {size / 2**30:.2f} GiB in {len(files)} file(s)")
    for mode in ("warm", "cold"):
        if mode not in results:
            print(f"{mode}: page cache cannot be dropped here (not root?), skipped")
            continue
        (cat_s, cat_rss), (ins_s, ins_rss) = results[mode]["cat"], results[mode]["inspect"]
        print(f"{mode}: cat {cat_s:.3f} s ({size / cat_s / 2**30:.2f} GiB/s); openba-inspect {ins_s:.3f} s, "
              f"peak RSS {ins_rss / 2**20:.1f} MiB = {ins_rss / size:.4f} of the checkpoint; "
              f"inspect / cat time = {ins_s / cat_s:.4f}")
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())

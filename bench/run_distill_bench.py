#!/usr/bin/env python3
"""What distillation costs per training step: bench_train (openba-pretrain's
step: forward, loss, backward, AdamW) without and with a teacher, in the same
run, at batch 8, encoder 256 / decoder 128 tokens. The teacher runs forward
only (no gradients) on every batch, as the distill: section does; its share
is its forward's seconds over the whole step's. Cases: the ~117M config
taught by itself (teacher = student shape, the cost's worst case for a given
student), the tiny student taught by the 117M teacher (a small pruned
student, a big teacher), and the 117M config with the teacher's top 64
logits kept.

Usage: bench/run_distill_bench.py [--build build] [--iters 3] [--threads N]
"""
import argparse
import json
import os
import sys

from throughput_common import CONFIGS, ROOT, run_json


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = p.parse_args()
    configs = dict(CONFIGS)
    cases = [("117M", "117M", 0), ("tiny", "117M", 0), ("117M", "117M", 64)]
    print(f"{'student':8} {'teacher':8} {'top_k':>5} {'step s':>8} {'+ teacher s':>11} {'teacher s':>9} "
          f"{'teacher share':>13} {'slowdown':>8}")
    results = []
    plain = {}
    for student, teacher, top_k in cases:
        base = [os.path.join(a.build, "bench", "bench_train"), "--config", configs[student], "--iters", str(a.iters),
                "--threads", str(a.threads)]
        if student not in plain:
            plain[student] = run_json(base)
        with_teacher = run_json(base + ["--distill", "--teacher-config", configs[teacher], "--top-k", str(top_k)])
        slow = with_teacher["seconds_per_step"] / plain[student]["seconds_per_step"]
        print(f"{student:8} {teacher:8} {top_k:5d} {plain[student]['seconds_per_step']:8.2f} "
              f"{with_teacher['seconds_per_step']:11.2f} {with_teacher['teacher_seconds_per_step']:9.2f} "
              f"{with_teacher['teacher_share']:13.1%} {slow:7.2f}x")
        results.append({"student": student, "teacher": teacher, "top_k": top_k, "plain": plain[student],
                        "distill": with_teacher, "slowdown": slow})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Compares two run trees file by file, for showing that a change leaves
outputs bit-identical: run the old and the new binaries on the same inputs
into OLD and NEW, then

  bench/compare_runs.py OLD NEW

Binary files (checkpoints, optimizer shards) are compared byte for byte;
JSON and JSONL with the fields that measure time, memory or name the run's
own paths removed; tfevents, logs and HTML are listed when they differ but
not counted (they hold wall-clock times). Exits 1 when anything else differs."""
import json, os, re, sys

TIMING = re.compile(r"(time|seconds|_s$|rate|per_s|elapsed|wall|eta|date|started|finished|per_second|throughput|invocation|host|duration|mfu|share|memory|gb_per_s|command_line|rss|config_hash|run_dir)", re.I)

def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if not TIMING.search(k)}
    if isinstance(v, list):
        return [strip(x) for x in v]
    if isinstance(v, str):
        v = v.replace(sys.argv[1] + "/", "RUN/").replace(sys.argv[2] + "/", "RUN/")
        return re.sub(r"\.tmp-\d+-", ".tmp-PID-", v)
    return v

def norm_name(p):
    return re.sub(r"tfevents\.\d+\.", "tfevents.T.", p)

def files(root):
    out = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            full = os.path.join(d, f)
            out[norm_name(os.path.relpath(full, root))] = full
    return out

a, b = files(sys.argv[1]), files(sys.argv[2])
bad = 0
for k in sorted(set(a) | set(b)):
    if k not in a or k not in b:
        print("ONLY IN ONE:", k); bad += 1; continue
    x, y = open(a[k], "rb").read(), open(b[k], "rb").read()
    if x == y: continue
    if k.endswith(".json"):
        if strip(json.loads(x)) == strip(json.loads(y)): continue
    elif k.endswith(".jsonl"):
        lx = [strip(json.loads(l)) for l in x.splitlines() if l.strip()]
        ly = [strip(json.loads(l)) for l in y.splitlines() if l.strip()]
        if lx == ly: continue
    elif k.endswith(".yaml") and x.replace(sys.argv[1].encode() + b"/", b"RUN/") == y.replace(sys.argv[2].encode() + b"/", b"RUN/"):
        continue
    elif "tfevents" in k or k.endswith(".html") or k.endswith(".log") or k.endswith(".txt"):
        print("differs (text/timing?):", k); continue
    print("DIFFERS:", k); bad += 1
print("compared", len(a), "files;", bad, "real differences")
sys.exit(1 if bad else 0)

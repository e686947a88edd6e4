#!/usr/bin/env bash
# The main job on the built-in demo: sets up a fresh Debian machine, builds,
# then runs the init -> inspect -> eval round trip on the tiny model.
# Output goes to ${OPENBA_DEMO_DIR:-runs/demo}.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
out=${OPENBA_DEMO_DIR:-runs/demo}
mkdir -p "$out"
bin=build/tools

echo "== openba-init: a randomly initialized tiny OpenBA"
$bin/openba-init --config configs/models/tiny.yaml --out "$out/base" --seed 0 --force
echo "== openba-inspect"
$bin/openba-inspect "$out/base"
echo "== openba-eval on 64 held-out examples"
python3 tests/python/make_eval_data.py "$out/eval.jsonl" 8192 64 0
$bin/openba-eval --model "$out/base" --data "$out/eval.jsonl" > "$out/eval.jsonl.losses"
tail -n 1 "$out/eval.jsonl.losses"
echo "demo: done; outputs in $out"

#!/usr/bin/env bash
# The main job on the built-in demo: sets up a fresh Debian machine, builds,
# makes the demo's inputs (bilingual corpus from Debian's KJV Bible and
# Chinese fortunes -> OpenBA-style tokenizer -> train/held-out token shards
# -> a randomly initialized tiny OpenBA, and a multiple-choice task made from
# the held-out shards), then runs the demo pipeline
# (configs/pipelines/demo.yaml): base pretraining, then layer -> recover ->
# layer -> recover -> width -> recover -> vocab, OpenBA-V2's recipe scaled
# down. It ends with the final table and the path of report.html.
#
# Everything goes to runs/demo. Running it again reuses the inputs and skips
# the pipeline steps already done (an interrupted run resumes); delete
# runs/demo to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
out=runs/demo
bin=build/tools
mkdir -p "$out"

if [ ! -f "$out/tokenizer/spiece.model" ]; then
  echo "== demo corpus"
  python3 scripts/prepare_demo_corpus.py "$out/corpus"
  echo "== openba-tokenize train"
  $bin/openba-tokenize train --input "$out/corpus/train/en.txt" "$out/corpus/train/zh.txt" \
    --vocab-size 8000 --out "$out/tokenizer" --force
fi
for split in train heldout; do
  if [ ! -f "$out/shards/$split/manifest.json" ]; then
    echo "== openba-tokenize encode ($split shards)"
    $bin/openba-tokenize encode --tokenizer "$out/tokenizer" --out "$out/shards/$split" --force \
      --input "$out/corpus/$split/en.txt" "$out/corpus/$split/zh.txt"
  fi
done
$bin/openba-tokenize stats "$out/shards/train" --tokenizer "$out/tokenizer" --top 10
if [ ! -f "$out/task.jsonl" ]; then
  echo "== openba-tokenize make-task: the demo's task (a held-out passage's true continuation among 4)"
  $bin/openba-tokenize make-task "$out/shards/heldout" --tokenizer "$out/tokenizer" --out "$out/task.jsonl" --items 200
fi
if [ ! -f "$out/base/config.json" ]; then
  echo "== openba-init: a randomly initialized tiny OpenBA with this tokenizer"
  $bin/openba-init --config configs/models/tiny.yaml --tokenizer "$out/tokenizer" --out "$out/base" --seed 0 --force
fi
$bin/openba-inspect "$out/base"
echo "== openba-compress --pipeline configs/pipelines/demo.yaml"
$bin/openba-compress --pipeline configs/pipelines/demo.yaml --out "$out/pipeline"

#!/usr/bin/env bash
# The T5 demo (configs/pipelines/t5-demo.yaml): sets up, builds, makes a T5
# tokenizer from the demo corpus's SentencePiece model (spiece.model and a
# T5Tokenizer tokenizer_config.json: 100 sentinels, no mode tokens), token
# shards, a randomly initialized tiny T5 v1.1 (configs/models/t5-tiny.json),
# then runs the pipeline into runs/t5-demo/pipeline. Re-running reuses the
# inputs and resumes the pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
out=runs/t5-demo
bin=build/tools
mkdir -p "$out"
if [ ! -f "$out/tokenizer/spiece.model" ]; then
  echo "== demo corpus and its SentencePiece model"
  [ -f "$out/corpus/train/en.txt" ] || python3 scripts/prepare_demo_corpus.py "$out/corpus"
  $bin/openba-tokenize train --input "$out/corpus/train/en.txt" "$out/corpus/train/zh.txt" \
    --vocab-size 8000 --out "$out/spm" --force
  mkdir -p "$out/tokenizer"
  cp "$out/spm/spiece.model" "$out/tokenizer/spiece.model"
  cat > "$out/tokenizer/tokenizer_config.json" <<'JSON'
{"tokenizer_class": "T5Tokenizer", "extra_ids": 100, "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
JSON
fi
for split in train heldout; do
  if [ ! -f "$out/shards/$split/manifest.json" ]; then
    echo "== openba-tokenize encode ($split shards)"
    $bin/openba-tokenize encode --tokenizer "$out/tokenizer" --out "$out/shards/$split" --force \
      --input "$out/corpus/$split/en.txt" "$out/corpus/$split/zh.txt"
  fi
done
if [ ! -f "$out/base/config.json" ]; then
  echo "== openba-init: a randomly initialized tiny T5 v1.1 with this tokenizer"
  $bin/openba-init --config configs/models/t5-tiny.json --tokenizer "$out/tokenizer" --out "$out/base" --seed 0 --force
fi
$bin/openba-inspect "$out/base"
echo "== openba-compress --pipeline configs/pipelines/t5-demo.yaml"
$bin/openba-compress --pipeline configs/pipelines/t5-demo.yaml --out "$out/pipeline"

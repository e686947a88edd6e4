#!/usr/bin/env bash
# The main job on the built-in demo: sets up a fresh Debian machine, builds,
# then: bilingual demo corpus (Debian's KJV Bible + Chinese fortunes) ->
# OpenBA-style tokenizer -> token shards (train / held-out) -> a tiny OpenBA
# model -> inspect -> held-out evaluation -> UL2 pretraining (a few minutes
# on 2 cores) -> held-out evaluation again -> a layer, a width and a
# vocabulary pruning stage, each with its report. Outputs go to ${OPENBA_DEMO_DIR:-runs/demo}.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
out=${OPENBA_DEMO_DIR:-runs/demo}
mkdir -p "$out"
bin=build/tools

echo "== demo corpus"
python3 scripts/prepare_demo_corpus.py "$out/corpus"
echo "== openba-tokenize train"
$bin/openba-tokenize train --input "$out/corpus/train/en.txt" "$out/corpus/train/zh.txt" \
  --vocab-size 8000 --out "$out/tokenizer" --force
echo "== openba-tokenize encode (train and held-out shards)"
$bin/openba-tokenize encode --tokenizer "$out/tokenizer" --out "$out/shards/train" --force \
  --input "$out/corpus/train/en.txt" "$out/corpus/train/zh.txt"
$bin/openba-tokenize encode --tokenizer "$out/tokenizer" --out "$out/shards/heldout" --force \
  --input "$out/corpus/heldout/en.txt" "$out/corpus/heldout/zh.txt"
$bin/openba-tokenize stats "$out/shards/train" --tokenizer "$out/tokenizer" --top 10
echo "== openba-init: a randomly initialized tiny OpenBA with this tokenizer"
$bin/openba-init --config configs/models/tiny.yaml --tokenizer "$out/tokenizer" --out "$out/base" --seed 0 --force
echo "== openba-inspect"
$bin/openba-inspect "$out/base"
echo "== openba-eval on held-out prefix -> continuation examples"
$bin/openba-tokenize dump "$out/shards/heldout" --count 0 | python3 scripts/make_prefix_examples.py "$out/heldout.jsonl"
$bin/openba-eval --model "$out/base" --data "$out/heldout.jsonl" > "$out/heldout.losses.jsonl"
tail -n 1 "$out/heldout.losses.jsonl"
echo "== openba-pretrain: UL2 mixed denoising on the demo shards (configs/train/demo.yaml)"
rm -rf "$out/pretrain"  # a previous demo's run; the demo always starts fresh
$bin/openba-pretrain --config configs/train/demo.yaml --out "$out/pretrain" \
  --set model.checkpoint="$out/base" --set "data.train=[{shards: $out/shards/train}]" \
  --set data.heldout="$out/shards/heldout"
echo "== openba-eval of the pretrained model on the same held-out examples"
$bin/openba-eval --model "$out/pretrain/final" --data "$out/heldout.jsonl" > "$out/heldout.pretrained.losses.jsonl"
echo "before: $(tail -n 1 "$out/heldout.losses.jsonl")"
echo "after:  $(tail -n 1 "$out/heldout.pretrained.losses.jsonl")"
echo "== openba-compress: one stage of each kind on the pretrained model"
data=(--calib "$out/shards/train" --calib-samples 128 --eval "$out/shards/heldout" --eval-samples 8
      --encoder-tokens 256 --decoder-tokens 128 --force)
for score in activation random; do
  # The same shape scored two ways: activation scores against the released (random) behaviour.
  $bin/openba-compress --stage neuron --model "$out/pretrain/final" --out "$out/compress/neuron-$score" \
    --ffn 128 --heads 2 --score "$score" "${data[@]}"
done
$bin/openba-compress --stage layer --model "$out/compress/neuron-activation" --out "$out/compress/layer" \
  --keep-encoder-layers 3 --keep-decoder-layers 9 --score angular "${data[@]}"
$bin/openba-compress --stage vocab --model "$out/compress/layer" --out "$out/compress/vocab" \
  --vocab 4000 --corpus "$out/shards/train" "${data[@]}"
echo "demo: done; outputs in $out"

// Held-out loss of a seq2seq model on (input_ids, labels) examples: the one
// loss computation shared by openba-eval, the compression stages and the
// trainer's evaluation.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "arch/seq2seq_model.h"

namespace openba {

struct Example {
  std::vector<int64_t> input_ids;  // encoder ids
  std::vector<int64_t> labels;     // target ids, -100 = ignored
  // The decoder's input, as long as labels; empty: shift_right(labels).
  // Task items with a decoder prefix read tokens whose labels are ignored.
  std::vector<int64_t> decoder_input_ids;
};

struct ExampleLoss {
  double nll_sum = 0;  // summed over counted target tokens
  int64_t tokens = 0;  // counted target tokens
  double mean() const { return tokens > 0 ? nll_sum / static_cast<double>(tokens) : 0.0; }
};

// Pads examples into one batch (right padding with pad_token_id; padded
// labels are -100). The decoder input is shift_right(labels), or an
// example's own decoder_input_ids.
Seq2SeqBatch collate(const std::vector<const Example*>& examples, const ModelConfig& config,
                     const torch::Device& device);

// Per-example summed NLL over counted tokens, in batch order. Runs without
// gradients; the output projection only sees counted positions, in chunks,
// so a 250K vocabulary never materializes [B, T, V] logits.
std::vector<ExampleLoss> example_losses(Seq2SeqModelImpl& model, const Seq2SeqBatch& batch);

// The loss half of example_losses, for callers that produce the decoder's
// final states another way (the compression stages run the model block by
// block over a memory-mapped checkpoint): dec [B, T, d], labels [B, T];
// `project` maps [N, d] states to fp32 logits [N, vocab].
std::vector<ExampleLoss> losses_from_decoder_states(
    const torch::Tensor& dec, const torch::Tensor& labels, int64_t vocab,
    const std::function<torch::Tensor(const torch::Tensor&)>& project);

// Groups example indices into batches of similar length to limit padding:
// at most max_batch examples and at most max_tokens (padded encoder + decoder
// tokens) per batch (a single longer example still gets its own batch).
std::vector<std::vector<size_t>> plan_batches(const std::vector<Example>& examples,
                                              size_t max_batch, size_t max_tokens);

// Reads one JSONL line {"input_ids": [...], "labels": [...]}; validates ids
// against the vocabulary. Errors name `where` (file:line).
Example parse_example_json(const std::string& line, int64_t vocab_size, const std::string& where);

}  // namespace openba

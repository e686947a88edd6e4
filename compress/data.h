// Calibration and held-out data for the compression stages: UL2 examples
// drawn from token shards with OpenBA's seven denoisers (the data the model
// is trained on), checked against the model's tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/evaluation.h"

namespace openba {

class TokenizerLayout;

struct DataOptions {
  int64_t encoder_tokens = 570;  // OpenBA-V2's recovery lengths
  int64_t decoder_tokens = 381;
  uint64_t seed = 0;          // calibration draws
  uint64_t heldout_seed = 0;  // held-out draws (see heldout_stream_seed in train/ul2_stream.h)
};

struct ExampleSet {
  std::vector<Example> examples;
  std::vector<int> denoisers;                 // per example
  std::vector<std::string> denoiser_names;    // index -> name
  uint64_t tokens() const;                    // encoder + decoder tokens
};

// `count` examples, each with a denoiser drawn uniformly (calibration).
// `what` names the flag in errors (--calib); shards made with another
// tokenizer are refused.
ExampleSet calibration_examples(const std::string& shards, const TokenizerLayout& tokenizer, int64_t count,
                                const DataOptions& options, const std::string& what);

// `per_denoiser` fixed examples for each of the seven denoisers from the
// held-out stream of options.heldout_seed: the examples openba-pretrain
// evaluates on with the same shards, budgets and eval.seed.
ExampleSet heldout_examples(const std::string& shards, const TokenizerLayout& tokenizer, int64_t per_denoiser,
                            const DataOptions& options, const std::string& what);

// A JSONL file of {"input_ids": [...], "labels": [...]} (openba-eval's
// format) instead of shards: fixed examples (denoiser -1), for tests and
// for data prepared elsewhere. `what` names the flag in errors.
ExampleSet jsonl_examples(const std::string& path, int64_t vocab_size, const std::string& what);

// True when `path` names a JSONL file rather than a shard directory.
bool is_jsonl_path(const std::string& path);

}  // namespace openba

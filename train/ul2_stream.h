// The UL2 example stream: example i is a pure function of (seed, i, mixture
// weights in force), so the data position in a checkpoint is a counter and
// any rank can produce any example.
//
// For example i: a denoiser is drawn by the weights; its raw length L is the
// largest whose example fits the encoder/decoder budgets; L raw tokens come
// from the shard mixture (a random window of one document, or documents
// concatenated with </s> between them when one is too short); the denoiser
// turns them into (input_ids, labels).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "train/denoiser.h"

namespace openba {

class ShardMixture;
class TokenizerLayout;

struct Ul2Options {
  int64_t encoder_tokens = 570;
  int64_t decoder_tokens = 381;
  std::vector<Denoiser> denoisers = openba_denoisers();
  uint64_t seed = 0;
};

struct Ul2Example {
  int denoiser = 0;
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;
};

// The seed of the held-out stream for a held-out seed: its own stream, apart
// from every training stream, so held-out examples never move when a run's
// training data seed does. Every tool that measures held-out loss
// (openba-pretrain's evaluations, openba-compress, the pipeline) draws its
// examples from this stream over the held-out shards.
inline uint64_t heldout_stream_seed(uint64_t heldout_seed) { return heldout_seed + 0x5eed; }

class Ul2Stream {
 public:
  Ul2Stream(std::shared_ptr<const ShardMixture> data, const TokenizerLayout& tokenizer, Ul2Options options);

  // The denoiser example i uses under `weights` (one per denoiser, any scale).
  int denoiser_for(uint64_t i, const std::vector<double>& weights) const;
  Ul2Example example(uint64_t i, const std::vector<double>& weights) const;
  // Example i with a given denoiser (held-out evaluation per denoiser).
  Ul2Example example_with(uint64_t i, int denoiser) const;
  // The L raw tokens behind example i.
  std::vector<int32_t> raw_tokens(uint64_t i, int64_t length) const;

  const Ul2Options& options() const { return options_; }
  const std::vector<int64_t>& raw_lengths() const { return raw_lengths_; }
  std::vector<double> initial_weights() const;  // the denoisers' configured weights, normalized
  // The fixed held-out set: for each denoiser d in order, examples
  // 0..per_denoiser-1 drawn with d (denoiser-major order).
  std::vector<Ul2Example> heldout_examples(int64_t per_denoiser) const;

 private:
  std::shared_ptr<const ShardMixture> data_;
  Ul2Options options_;
  DenoiserIds ids_;
  std::vector<int64_t> raw_lengths_;
};

}  // namespace openba

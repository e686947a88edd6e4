// Held-out loss of a checkpoint, computed block by block (out of core) with
// the loss code openba-eval uses, overall and per UL2 denoiser.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compress/data.h"

namespace openba {

class Checkpoint;
class Progress;

struct BatchLimits {
  size_t max_batch = 16;
  size_t max_tokens = 16384;
};

struct HeldoutLoss {
  double loss = 0;
  int64_t tokens = 0;
  std::vector<double> by_denoiser;  // one per ExampleSet::denoiser_names
  std::vector<int64_t> tokens_by_denoiser;
  nlohmann::ordered_json to_json(const std::vector<std::string>& denoiser_names) const;
};

// Sums per-example losses into the overall and per-denoiser figures.
HeldoutLoss summarize_losses(const std::vector<double>& nll, const std::vector<int64_t>& tokens,
                             const std::vector<int>& denoisers, size_t denoiser_count);

HeldoutLoss evaluate_checkpoint(const Checkpoint& checkpoint, const ExampleSet& data, const BatchLimits& limits,
                                bool show_progress, const std::string& label);

}  // namespace openba

#include "compress/heldout.h"

#include <cmath>

#include "runtime/blockwise.h"
#include "util/progress.h"

namespace openba {

nlohmann::ordered_json HeldoutLoss::to_json(const std::vector<std::string>& names) const {
  nlohmann::ordered_json j;
  j["loss"] = loss;
  j["perplexity"] = std::exp(loss);
  j["tokens"] = tokens;
  nlohmann::ordered_json per = nlohmann::ordered_json::object();
  for (size_t d = 0; d < by_denoiser.size() && d < names.size(); ++d) {
    if (tokens_by_denoiser[d] > 0) per[names[d]] = by_denoiser[d];
  }
  j["by_denoiser"] = per;
  return j;
}

HeldoutLoss summarize_losses(const std::vector<double>& nll, const std::vector<int64_t>& tokens,
                             const std::vector<int>& denoisers, size_t denoiser_count) {
  HeldoutLoss h;
  std::vector<double> sums(denoiser_count, 0.0);
  h.tokens_by_denoiser.assign(denoiser_count, 0);
  double total = 0;
  for (size_t i = 0; i < nll.size(); ++i) {
    total += nll[i];
    h.tokens += tokens[i];
    const int d = i < denoisers.size() ? denoisers[i] : -1;
    if (d >= 0 && static_cast<size_t>(d) < denoiser_count) {
      sums[d] += nll[i];
      h.tokens_by_denoiser[d] += tokens[i];
    }
  }
  h.loss = h.tokens > 0 ? total / static_cast<double>(h.tokens) : 0.0;
  for (size_t d = 0; d < denoiser_count; ++d) {
    h.by_denoiser.push_back(h.tokens_by_denoiser[d] > 0 ? sums[d] / static_cast<double>(h.tokens_by_denoiser[d]) : 0.0);
  }
  return h;
}

HeldoutLoss evaluate_checkpoint(const Checkpoint& checkpoint, const ExampleSet& data, const BatchLimits& limits,
                                bool show_progress, const std::string& label) {
  BlockwiseModel model(checkpoint);
  auto batches = make_block_batches(data.examples, data.denoisers, checkpoint.config(), limits.max_batch,
                                    limits.max_tokens);
  BlockwiseRun run;
  Progress progress(label, static_cast<uint64_t>(blockwise_steps(checkpoint.config(), run)), "blocks", show_progress);
  run.progress = &progress;
  const auto losses = run_blockwise(model, batches, run);
  progress.finish();
  std::vector<double> nll;
  std::vector<int64_t> tokens;
  std::vector<int> denoisers;
  for (size_t b = 0; b < batches.size(); ++b) {
    for (size_t k = 0; k < losses[b].size(); ++k) {
      nll.push_back(losses[b][k].nll_sum);
      tokens.push_back(losses[b][k].tokens);
      denoisers.push_back(batches[b].denoisers[k]);
    }
  }
  return summarize_losses(nll, tokens, denoisers, data.denoiser_names.size());
}

}  // namespace openba

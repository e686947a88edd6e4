// Continual pretraining of an OpenBA checkpoint on token shards with UL2
// objectives (one process; data parallelism plugs in through GradientSync:
// each rank takes its slice of every global batch, gradients meet in
// reduce_gradients).
//
// Each step: the next global_batch examples of the UL2 stream (positions
// state.examples ...), micro-batches of micro_batch, the loss of each a sum
// of token NLLs divided by the global batch's counted tokens (so any split
// of the batch gives the same gradient), gradient clipping by global norm,
// AdamW with warmup + cosine. Non-finite loss or gradients skip the step.
// Reports: metrics.jsonl, TensorBoard, train.log; checkpoints every K steps
// (last N kept); held-out loss per denoiser every E steps (driving D-UL2
// when enabled); the final model in OUT/final.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "train/train_config.h"

namespace openba {

class GradientSync;

struct TrainerRun {
  std::string out_dir;
  bool resume = false;           // continue from the newest checkpoint in out_dir
  std::string effective_config;  // YAML text, saved as out_dir/config.yaml
  bool quiet = false;            // no progress line
};

// What a finished run leaves (metrics.jsonl has the curve).
struct TrainResult {
  std::string final_dir;      // OUT/final
  int64_t steps = 0;          // optimizer steps, those before a resume included
  uint64_t tokens = 0;        // training tokens seen (not padding)
  std::optional<double> heldout_loss;  // the final evaluation (none without data.heldout)
};

// Runs training (train/trainer.cpp: the Trainer class).
TrainResult run_training(const TrainConfig& config, const TrainerRun& run, GradientSync& sync);

// Writes n examples of the stream as JSONL (denoiser, input_ids, labels,
// input_text, target_text) to `path` ("-" = stdout), without training.
void write_preview(const TrainConfig& config, int64_t n, const std::string& path);

}  // namespace openba

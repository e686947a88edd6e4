// Training checkpoints: OUT/checkpoints/step-NNNNNNNN/ holds the model as a
// checkpoint directory (fp32 master weights, tokenizer files) plus
//   optimizer*.safetensors AdamW state (whole, or one shard per rank: see
//                          train/optimizer_state.h)
//   trainer_state.json     step, data position, tokens, mixture weights,
//                          non-finite counters, config hash (no RNG
//                          state: dropout is seeded per step from (seed, rank, step))
// Written under a staging name and renamed when complete, so a kill at any
// moment leaves either the previous checkpoints or a new complete one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace openba {

struct Seq2SeqModelImpl;
class CheckpointWriter;
class OptimizerEngine;

struct TrainerState {
  int64_t step = 0;             // completed optimizer steps
  uint64_t examples = 0;        // data position: examples consumed
  uint64_t tokens = 0;          // real (non-padding) tokens processed
  std::vector<double> mixture_weights;
  int64_t nonfinite_total = 0;
  int64_t nonfinite_in_a_row = 0;
  std::string config_hash;
};

std::string checkpoint_dir_name(int64_t step);

// Written in three parts so every rank can add its optimizer shard:
//   rank 0: begin_training_checkpoint (model, tokenizer) -> staging path shared
//   every rank: OptimizerEngine::write_state(staging path)
//   rank 0, after a barrier: finish_training_checkpoint (checks the optimizer
//   state is complete, writes trainer_state.json, renames into place).
std::unique_ptr<CheckpointWriter> begin_training_checkpoint(const std::string& path, Seq2SeqModelImpl& model,
                                                            const std::vector<std::string>& tokenizer_files);
void finish_training_checkpoint(CheckpointWriter& writer, const TrainerState& state, const OptimizerEngine& optimizer,
                                int world_size);
// The newest complete checkpoint under `checkpoints_dir`, or "" when none.
std::string newest_training_checkpoint(const std::string& checkpoints_dir);
// Loads weights and optimizer state; Error naming the file when
// the checkpoint does not match the model.
TrainerState read_training_checkpoint(const std::string& path, Seq2SeqModelImpl& model, OptimizerEngine& optimizer);
// Keeps the newest `keep` complete checkpoints; removes staging leftovers.
void prune_training_checkpoints(const std::string& checkpoints_dir, int64_t keep);

}  // namespace openba

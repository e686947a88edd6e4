// The openba-pretrain configuration (configs/train/*.yaml). Every key is
// optional except model.checkpoint, data.train and trainer.steps; unknown
// keys are errors with their line (see util/config_node.h). Relative paths
// are taken from the working directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/denoiser.h"

namespace openba {

class ConfigNode;

struct DataSourceConfig {
  std::string shards;
  double weight = 1.0;
};

// Distillation from a teacher checkpoint (the `distill:` section; see
// train/distillation.h for the loss). Off when `teacher` is empty.
struct DistillConfig {
  std::string teacher;       // checkpoint directory (same tokenizer and vocabulary rows as the student)
  double alpha = 0.5;        // weight of the distillation term; 1 - alpha weighs the UL2 cross-entropy
  double temperature = 1.0;  // both distributions softened by T; the term is scaled by T^2
  int64_t top_k = 0;         // teacher logits kept per token (0 = the whole vocabulary)
  bool enabled() const { return !teacher.empty(); }
};

struct TrainConfig {
  // model
  std::string checkpoint;            // the checkpoint directory training starts from
  // data
  std::vector<DataSourceConfig> train;
  std::string heldout;               // held-out shard set ("" = no evaluation)
  uint64_t data_seed = 0;
  // ul2
  int64_t encoder_tokens = 570;
  int64_t decoder_tokens = 381;
  std::vector<Denoiser> denoisers = openba_denoisers();
  bool dynamic_mixture = false;      // D-UL2
  std::vector<double> dynamic_initial;   // initial weights (default: the denoisers' weights)
  std::vector<double> dynamic_targets;   // target held-out losses per denoiser
  double dynamic_c = 1e-4;
  // trainer
  int64_t steps = 0;
  int64_t micro_batch = 8;
  int64_t global_batch = 8;          // examples per optimizer step (a multiple of micro_batch x ranks)
  double lr = 2e-5;
  double min_lr = 1e-5;
  int64_t warmup_steps = 0;
  int64_t decay_steps = 0;           // cosine reaches min_lr here (0 = steps)
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;            // 0 = off
  double dropout = 0.0;
  bool activation_checkpointing = false;
  uint64_t seed = 0;
  int64_t max_nonfinite_in_a_row = 5;
  std::string device = "cpu";        // cpu or cuda[:N]
  int threads = 0;                   // CPU threads, 0 = all cores
  std::string save_dtype = "";       // final model dtype ("" = the input checkpoint's)
  // checkpoint
  int64_t checkpoint_every = 0;      // 0 = only at the end
  int64_t keep_checkpoints = 2;
  // eval
  int64_t eval_every = 0;            // 0 = only at the end (when data.heldout is set)
  int64_t eval_examples_per_denoiser = 16;
  int64_t eval_batch = 16;
  uint64_t heldout_seed = 0;         // eval.seed: which held-out examples (not data.seed: they never move with it)
  // distill
  DistillConfig distill;
  // logging
  int64_t log_every = 1;
  bool tensorboard = true;
  double peak_tflops = 0;            // for MFU; 0 = measured GEMM rate on CPU, known peaks on GPU
  // distributed (used when launched as several ranks; see dist/)
  std::string backend = "auto";      // auto (NCCL for CUDA, Gloo for CPU), gloo, nccl
  int64_t zero = 0;                  // optimizer sharding: 0 off, 1 state, 2 state + gradients
  double bucket_mb = 25;             // gradient bucket size
  double comm_timeout_s = 300;       // a collective (or a silent rank) waits at most this long
  bool overlap_comm = true;          // start gradient collectives during backward
  // debug (testing aids)
  std::vector<double> nonfinite_at_steps;  // make the loss NaN at these steps

  // Examples per micro-batch pass across `ranks` ranks, checked to divide.
  int64_t accumulation_steps(int ranks) const;
};

// Reads and validates; finishes the node (unknown keys are errors).
TrainConfig read_train_config(const ConfigNode& root);

}  // namespace openba

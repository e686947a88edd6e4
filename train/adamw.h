// AdamW with decoupled weight decay (PyTorch's update order), state kept per
// parameter name so checkpoints are safetensors any tool can read and a
// sharded optimizer can re-split by name:
//   p <- p (1 - lr wd)                 (decay only for matrices and embeddings,
//   m <- b1 m + (1 - b1) g              not for norms and biases)
//   v <- b2 v + (1 - b2) g^2
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace openba {

class OptimizerStateReader;

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

class AdamW {
 public:
  struct Param {
    std::string name;
    torch::Tensor tensor;
    bool decay = true;
  };
  // Decay applies to tensors of rank >= 2 (matrices, embeddings).
  static std::vector<Param> default_groups(const std::vector<std::pair<std::string, torch::Tensor>>& named);

  AdamW(std::vector<Param> params, AdamWOptions options);

  // One update from each parameter's .grad() (parameters without one are skipped).
  void step(double lr);
  int64_t steps() const { return steps_; }
  const std::vector<Param>& params() const { return params_; }

  // "exp_avg.<name>" and "exp_avg_sq.<name>" tensors, for checkpoints.
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  // Restores state saved by state_tensors(); every name and shape must match
  // (Error naming `source` and the tensor otherwise).
  void load_state(const std::map<std::string, torch::Tensor>& state, int64_t steps, const std::string& source);
  // Restores state from a checkpoint written by any engine (whole or sharded).
  void load_state(const OptimizerStateReader& reader, int64_t steps);
  uint64_t state_bytes() const;

 private:
  std::vector<Param> params_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

// One AdamW update of flat runs of elements (whole parameters or segments of
// them): each slice's p, g, m, v of equal shape, contiguous. Shared by AdamW
// and the sharded (ZeRO) optimizer so both compute the same updates. CPU
// float32 slices go through one fused loop each (bit-identical across
// engines); CUDA slices, or any slices on the CUDA-style path
// (ops/compute_path.h), through ATen's multi-tensor _fused_adamw_, one
// call per weight-decay group.
struct AdamWStepSizes {
  int64_t t = 1;  // the step being taken, from 1
  double lr = 0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double step_size = 0;  // lr / (1 - beta1^t)
  double bc2_sqrt = 1;   // sqrt(1 - beta2^t)
  static AdamWStepSizes at(int64_t t, double lr, const AdamWOptions& o);
};
struct AdamWSlice {
  torch::Tensor p, g, m, v;
  bool decay = true;  // weight decay applies (matrices and embeddings)
};
void adamw_update(const std::vector<AdamWSlice>& slices, double weight_decay, const AdamWStepSizes& s);

// Warmup (linear from lr/warmup to lr) then cosine from lr to min_lr at
// decay_steps, constant after.
double learning_rate(int64_t step, double lr, double min_lr, int64_t warmup_steps, int64_t decay_steps);

}  // namespace openba

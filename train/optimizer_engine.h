// How gradients become parameter updates. The trainer drives one of these
// per run and does not know which:
// Both apply an UpdateRule (train/update_rule.h: AdamW today) to what they own:
//   local engine (one process): the rule over whole parameters;
//   data-parallel engine (dist/): gradients averaged across ranks by bucketed
//     collectives that start during backward, optionally with the optimizer
//     state sharded across ranks (ZeRO stage 1 / 2).
// The order of calls each step: zero_grad; for each micro-batch
// begin_backward(last) -> loss.backward() -> end_backward(last); then
// grad_norm / nonfinite_gradients / scale_gradients; then step(lr).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "train/adamw.h"

namespace openba {

class OptimizerStateReader;

// Communication of the last step (zero for one process).
struct CommTimings {
  double comm_seconds = 0;     // wall time some gradient/parameter collective was in flight
  double exposed_seconds = 0;  // of which the trainer waited (not hidden behind backward)
  uint64_t bytes = 0;          // bytes handed to collectives
};

class OptimizerEngine {
 public:
  virtual ~OptimizerEngine() = default;
  virtual void zero_grad() = 0;
  virtual void begin_backward(bool last_micro_batch) = 0;
  virtual void end_backward(bool last_micro_batch) = 0;
  // The global gradient norm, identical on every rank.
  virtual double grad_norm() = 0;
  // Parameters (of this rank's view) whose gradient is not finite.
  virtual std::vector<std::string> nonfinite_gradients() = 0;
  virtual void scale_gradients(double scale) = 0;
  virtual void step(double lr) = 0;
  virtual int64_t steps() const = 0;

  // This rank's optimizer-state bytes, and gradient bytes it holds after reduction.
  virtual uint64_t state_bytes() const = 0;
  virtual uint64_t gradient_bytes() const = 0;
  virtual std::string describe() const = 0;

  // Writes this rank's part of the optimizer state into `dir` (every rank
  // calls it; see train/optimizer_state.h for the files).
  virtual void write_state(const std::string& dir) const = 0;
  virtual void load_state(const OptimizerStateReader& reader, int64_t steps) = 0;
  virtual CommTimings take_timings() { return {}; }
};

class UpdateRule;
// One process: the update rule over whole parameters.
std::unique_ptr<OptimizerEngine> make_local_engine(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                                   std::unique_ptr<UpdateRule> rule);

// Shared by the engines: sqrt(sum of squares) of every defined gradient, in double.
double local_grad_norm_squared(const std::vector<torch::Tensor>& grads);

}  // namespace openba

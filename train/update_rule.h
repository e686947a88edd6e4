// An optimizer's update rule, apart from where parameters, gradients and
// state live. The optimizer engines own those (train/local_engine.cpp: whole
// parameters; dist/data_parallel_engine.cpp: flat buckets, reduced across
// ranks, the state sharded for ZeRO): a rule only names the state it keeps
// per element and updates runs of elements. Another optimizer plugs into
// every engine by implementing this.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "train/adamw.h"

namespace openba {

class UpdateRule {
 public:
  // A flat run of elements: a whole parameter or a segment of one.
  struct Run {
    torch::Tensor p, g;
    std::vector<torch::Tensor> state;  // one per state_names(), shaped like p
    bool decay = true;                 // weight decay applies (matrices and embeddings)
  };
  virtual ~UpdateRule() = default;
  // The state tensors per element, by the names checkpoints store them
  // under ("exp_avg" -> "exp_avg.<parameter>"), zero-initialized.
  virtual const std::vector<std::string>& state_names() const = 0;
  virtual std::string name() const = 0;
  // The step-th update (from 1) at learning rate lr.
  virtual void update(const std::vector<Run>& runs, int64_t step, double lr) const = 0;
};

// AdamW with decoupled weight decay (train/adamw.h's adamw_update).
std::unique_ptr<UpdateRule> make_adamw_rule(const AdamWOptions& options);

}  // namespace openba

// How the trainer talks to the other data-parallel ranks. The one-process
// trainer uses LocalSync (no peers); dist/c10d_sync.h implements it on c10d.
// The trainer never sees which.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "train/adamw.h"
#include "train/optimizer_engine.h"
#include "train/update_rule.h"

namespace openba {

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual int local_rank() const { return 0; }
  // Sums values across ranks, in place (token counts, loss sums).
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  virtual void barrier(const std::string& what) = 0;
  // Rank 0's value on every rank; `key` names the exchange (unique per run).
  virtual std::string broadcast_string(const std::string& key, const std::string& value) = 0;
  // Error on every rank when ranks disagree on `value` (e.g. the config hash).
  virtual void require_same(const std::string& what, const std::string& value) = 0;
  // The step being taken (reported in heartbeats and failure messages).
  virtual void set_step(int64_t) {}
  // The engine that turns this rank's gradients into updates (gradient
  // averaging across ranks, optimizer sharding).
  virtual std::unique_ptr<OptimizerEngine> make_engine(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                                       std::unique_ptr<UpdateRule> rule) = 0;
};

class LocalSync final : public GradientSync {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(std::vector<double>&) override {}
  void barrier(const std::string&) override {}
  std::string broadcast_string(const std::string&, const std::string& value) override { return value; }
  void require_same(const std::string&, const std::string&) override {}
  std::unique_ptr<OptimizerEngine> make_engine(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                               std::unique_ptr<UpdateRule> rule) override {
    return make_local_engine(named, std::move(rule));
  }
};

}  // namespace openba

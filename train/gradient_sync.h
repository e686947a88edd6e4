// How the trainer talks to other data-parallel ranks. The single-process
// trainer uses LocalSync (no peers); the distributed trainer plugs in an
// implementation on c10d without touching the training loop.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace openba {

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Sums values across ranks, in place (token counts, loss sums).
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  // Called after the last backward of a step: leaves every rank with the
  // gradients averaged over ranks (grads are already divided by the global
  // token count, so "average" here is a sum).
  virtual void reduce_gradients(const std::vector<torch::Tensor>& params) = 0;
};

class LocalSync final : public GradientSync {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(std::vector<double>&) override {}
  void reduce_gradients(const std::vector<torch::Tensor>&) override {}
};

}  // namespace openba

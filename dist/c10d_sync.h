// GradientSync over c10d: the trainer's view of a distributed run.
#pragma once

#include <memory>

#include "dist/communicator.h"
#include "dist/data_parallel_engine.h"
#include "train/gradient_sync.h"

namespace openba {

class C10dSync final : public GradientSync {
 public:
  C10dSync(std::unique_ptr<Communicator> comm, int local_rank, DataParallelOptions options)
      : comm_(std::move(comm)), local_rank_(local_rank), options_(options) {}

  int rank() const override { return comm_->rank(); }
  int world_size() const override { return comm_->world_size(); }
  int local_rank() const override { return local_rank_; }
  void all_reduce_sum(std::vector<double>& values) override { comm_->all_reduce_sum(values); }
  void barrier(const std::string& what) override { comm_->barrier(what); }
  std::string broadcast_string(const std::string& key, const std::string& value) override {
    return comm_->broadcast_string(key, value);
  }
  void require_same(const std::string& what, const std::string& value) override { comm_->require_same(what, value); }
  void set_step(int64_t step) override { comm_->set_step(step); }
  std::unique_ptr<OptimizerEngine> make_engine(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                               std::unique_ptr<UpdateRule> rule) override {
    return make_data_parallel_engine(named, std::move(rule), *comm_, options_);
  }
  Communicator& communicator() { return *comm_; }

 private:
  std::unique_ptr<Communicator> comm_;
  int local_rank_ = 0;
  DataParallelOptions options_;
};

}  // namespace openba

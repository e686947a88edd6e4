#include "dist/data_parallel_engine.h"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "dist/communicator.h"
#include "runtime/safetensors_io.h"
#include "train/optimizer_state.h"
#include "train/update_rule.h"
#include "util/error.h"

namespace openba {
namespace {

struct Param {
  std::string name;
  torch::Tensor tensor;
  bool decay = true;
  size_t bucket = 0;
  int64_t offset = 0;  // within the bucket's flat buffer
};

// Where this rank's chunk of a bucket meets a parameter.
struct Segment {
  size_t param = 0;
  int64_t param_offset = 0;  // element offset within the flattened parameter
  int64_t chunk_offset = 0;  // element offset within this rank's chunk
  int64_t length = 0;
};

struct Bucket {
  std::vector<size_t> params;
  int64_t numel = 0, padded = 0, chunk = 0;
  torch::Tensor flat_param, flat_grad;  // flat_grad: ZeRO 0/1 only
  torch::Tensor shard_grad;             // ZeRO 2: this rank's reduced chunk, accumulated
  std::vector<Segment> owned;           // ZeRO 1/2: where this rank's chunk meets each parameter
  // per backward
  size_t ready = 0;
  bool launched = false;
  std::unique_ptr<PendingOp> op;
  torch::Tensor send, recv;  // ZeRO 2 buffers while in flight
  double launched_at = 0;
};

double union_seconds(std::vector<std::pair<double, double>> intervals) {
  std::sort(intervals.begin(), intervals.end());
  double total = 0, lo = 0, hi = -1;
  for (const auto& [a, e] : intervals) {
    if (a > hi) {
      if (hi > lo) total += hi - lo;
      lo = a;
      hi = e;
    } else {
      hi = std::max(hi, e);
    }
  }
  if (hi > lo) total += hi - lo;
  return total;
}

// The gradient side: parameters as views into flat buckets, gradient-ready
// hooks, the bucket collectives overlapping backward, and this rank's
// reduced gradient (the whole bucket for ZeRO 0, its chunk for ZeRO 1/2).
// It knows nothing of the update rule.
class BucketedGradients {
 public:
  BucketedGradients(const std::vector<std::pair<std::string, torch::Tensor>>& named, Communicator& comm,
                    const DataParallelOptions& options)
      : comm_(comm), options_(options) {
    if (options.zero < 0 || options.zero > 2) {
      throw Error("distributed.zero: " + std::to_string(options.zero) + " is not 0, 1 or 2");
    }
    if (!(options.bucket_mb > 0)) throw Error("distributed.bucket_mb: must be positive");
    torch::NoGradGuard no_grad;
    const int world = comm.world_size();
    const int rank = comm.rank();
    // Backward visits the last layers first: fill buckets in reverse order.
    for (auto it = named.rbegin(); it != named.rend(); ++it) {
      if (it->second.scalar_type() != torch::kFloat) {
        throw Error("data parallel training needs float32 parameters; '" + it->first + "' is " +
                    std::string(c10::toString(it->second.scalar_type())));
      }
      params_.push_back({it->first, it->second, it->second.dim() >= 2});
    }
    const int64_t bucket_elements = std::max<int64_t>(1, static_cast<int64_t>(options.bucket_mb * 1024 * 1024 / 4));
    for (size_t i = 0; i < params_.size(); ++i) {
      if (buckets_.empty() || buckets_.back().numel >= bucket_elements) buckets_.emplace_back();
      Bucket& b = buckets_.back();
      params_[i].bucket = buckets_.size() - 1;
      params_[i].offset = b.numel;
      b.params.push_back(i);
      b.numel += params_[i].tensor.numel();
    }
    const auto options_f32 = params_.front().tensor.options().requires_grad(false);
    for (Bucket& b : buckets_) {
      b.padded = (b.numel + world - 1) / world * world;
      b.chunk = b.padded / world;
      b.flat_param = torch::zeros({b.padded}, options_f32);
      if (options.zero < 2) b.flat_grad = torch::zeros({b.padded}, options_f32);
      for (size_t i : b.params) {
        Param& p = params_[i];
        const int64_t n = p.tensor.numel();
        torch::Tensor view = b.flat_param.narrow(0, p.offset, n).view(p.tensor.sizes());
        view.copy_(p.tensor);
        p.tensor.set_data(view);
        if (options.zero < 2) p.tensor.mutable_grad() = b.flat_grad.narrow(0, p.offset, n).view(p.tensor.sizes());
      }
      if (options.zero > 0) {
        if (options.zero == 2) b.shard_grad = torch::zeros({b.chunk}, options_f32);
        const int64_t lo = rank * b.chunk, hi = lo + b.chunk;
        for (size_t i : b.params) {
          const int64_t p_lo = params_[i].offset, p_hi = p_lo + params_[i].tensor.numel();
          const int64_t a = std::max(lo, p_lo), e = std::min(hi, p_hi);
          if (a < e) b.owned.push_back({i, a - p_lo, a - lo, e - a});
        }
      }
    }
    // Gradient-ready hooks. The accumulator nodes must be kept alive: a
    // parameter holds them weakly and would get a fresh one (without our hook).
    for (size_t i = 0; i < params_.size(); ++i) {
      auto acc = torch::autograd::impl::grad_accumulator(params_[i].tensor);
      acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
            on_gradient_ready(i);
            return outputs;
          }));
      accumulators_.push_back(std::move(acc));
    }
  }

  const std::vector<Param>& params() const { return params_; }
  std::vector<Bucket>& buckets() { return buckets_; }
  const std::vector<Bucket>& buckets() const { return buckets_; }
  bool sharded() const { return options_.zero > 0; }

  void zero_grad() {
    torch::NoGradGuard no_grad;
    for (Bucket& b : buckets_) {
      if (b.flat_grad.defined()) b.flat_grad.zero_();
      if (b.shard_grad.defined()) b.shard_grad.zero_();
    }
    if (options_.zero == 2) {
      for (Param& p : params_) p.tensor.mutable_grad() = torch::Tensor();
    }
  }

  void begin_backward(bool last) {
    armed_ = options_.zero == 2 || last;
    next_launch_ = 0;
    for (Bucket& b : buckets_) {
      b.ready = 0;
      b.launched = false;
    }
    fired_.assign(params_.size(), false);
  }

  void end_backward() {
    if (!armed_) return;
    torch::NoGradGuard no_grad;
    // Buckets whose parameters got no gradient this time start now.
    while (next_launch_ < buckets_.size()) launch(next_launch_++);
    const double waited_from = comm_clock_seconds();
    std::vector<std::pair<double, double>> intervals;
    for (Bucket& b : buckets_) {
      b.op->wait();
      intervals.emplace_back(b.launched_at, std::max(b.launched_at, b.op->finished_at()));
      if (options_.zero == 2) {
        b.shard_grad.add_(b.recv);
        b.send = b.recv = torch::Tensor();
      }
      b.op.reset();
    }
    const double waited_to = comm_clock_seconds();
    timings_.exposed_seconds += waited_to - waited_from;
    timings_.comm_seconds += union_seconds(intervals);
    armed_ = false;
  }

  // The reduced gradient this rank holds for bucket b: the whole bucket
  // (ZeRO 0) or its chunk (ZeRO 1/2).
  torch::Tensor reduced(Bucket& b) const {
    if (options_.zero == 0) return b.flat_grad;
    if (options_.zero == 2) return b.shard_grad;
    return b.flat_grad.narrow(0, comm_.rank() * b.chunk, b.chunk);
  }

  double grad_norm() {
    if (!sharded()) {
      std::vector<torch::Tensor> grads;
      for (const Param& p : params_) grads.push_back(p.tensor.grad());
      return std::sqrt(local_grad_norm_squared(grads));
    }
    std::vector<torch::Tensor> chunks;
    for (Bucket& b : buckets_) chunks.push_back(reduced(b));
    std::vector<double> total{local_grad_norm_squared(chunks)};
    comm_.all_reduce_sum(total);
    return std::sqrt(total[0]);
  }

  std::vector<std::string> nonfinite() {
    std::vector<std::string> bad;
    if (!sharded()) {
      for (const Param& p : params_) {
        if (!torch::isfinite(p.tensor.grad()).all().item<bool>()) bad.push_back(p.name);
      }
      return bad;
    }
    std::set<size_t> seen;
    for (Bucket& b : buckets_) {
      const torch::Tensor g = reduced(b);
      for (const Segment& s : b.owned) {
        if (!seen.count(s.param) && !torch::isfinite(g.narrow(0, s.chunk_offset, s.length)).all().item<bool>()) {
          seen.insert(s.param);
          bad.push_back(params_[s.param].name);
        }
      }
    }
    return bad;
  }

  void scale(double factor) {
    torch::NoGradGuard no_grad;
    for (Bucket& b : buckets_) reduced(b).mul_(factor);
  }

  uint64_t bytes() const {
    uint64_t total = 0;
    for (const Bucket& b : buckets_) {
      total += static_cast<uint64_t>((b.flat_grad.defined() ? b.flat_grad.numel() : 0) +
                                     (b.shard_grad.defined() ? b.shard_grad.numel() : 0)) * 4;
    }
    return total;
  }

  CommTimings& timings() { return timings_; }

 private:
  void on_gradient_ready(size_t i) {
    if (!armed_) return;
    Param& p = params_[i];
    Bucket& b = buckets_[p.bucket];
    if (fired_[i] || b.launched) {
      throw Error("data parallel: parameter '" + p.name +
                  "' received a second gradient in one backward pass after its bucket was sent "
                  "(a parameter used by two independent graphs?)");
    }
    fired_[i] = true;
    if (options_.zero < 2) {
      // Autograd accumulates in place into our view; if it ever replaced the
      // gradient tensor, put the values back into the bucket.
      torch::Tensor view = b.flat_grad.narrow(0, p.offset, p.tensor.numel());
      const torch::Tensor g = p.tensor.grad();
      if (!g.defined() || g.data_ptr() != view.data_ptr()) {
        torch::NoGradGuard no_grad;
        if (g.defined()) view.copy_(g.reshape(-1));
        p.tensor.mutable_grad() = view.view(p.tensor.sizes());
      }
    }
    if (++b.ready == b.params.size() && options_.overlap) {
      while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
        launch(next_launch_++);
      }
    }
  }

  void launch(size_t index) {
    torch::NoGradGuard no_grad;
    Bucket& b = buckets_[index];
    b.launched = true;
    b.launched_at = comm_clock_seconds();
    timings_.bytes += static_cast<uint64_t>(b.padded) * 4;
    if (options_.zero < 2) {
      b.op = comm_.all_reduce_sum(b.flat_grad);
      return;
    }
    b.send = torch::zeros({b.padded}, b.flat_param.options());
    for (size_t i : b.params) {
      Param& p = params_[i];
      const torch::Tensor g = p.tensor.grad();
      if (g.defined()) b.send.narrow(0, p.offset, p.tensor.numel()).copy_(g.reshape(-1));
      p.tensor.mutable_grad() = torch::Tensor();  // ZeRO 2: the full gradient is not kept
    }
    b.recv = torch::empty({b.chunk}, b.flat_param.options());
    b.op = comm_.reduce_scatter_sum(b.send, b.recv);
  }

  std::vector<Param> params_;
  std::vector<Bucket> buckets_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<bool> fired_;
  Communicator& comm_;
  DataParallelOptions options_;
  bool armed_ = false;
  size_t next_launch_ = 0;
  CommTimings timings_;
};

// The optimizer side: the rule's state for what this rank updates (whole
// buckets for ZeRO 0, its chunk of each for ZeRO 1/2), the update, and for
// ZeRO 1/2 the all-gather of the updated parameters.
class DataParallelEngine final : public OptimizerEngine {
 public:
  DataParallelEngine(const std::vector<std::pair<std::string, torch::Tensor>>& named, std::unique_ptr<UpdateRule> rule,
                     Communicator& comm, const DataParallelOptions& options)
      : grads_(named, comm, options), rule_(std::move(rule)), comm_(comm), options_(options) {
    torch::NoGradGuard no_grad;
    const auto options_f32 = grads_.params().front().tensor.options().requires_grad(false);
    for (const Bucket& b : grads_.buckets()) {
      std::vector<torch::Tensor> state;
      for (size_t k = 0; k < rule_->state_names().size(); ++k) {
        state.push_back(torch::zeros({grads_.sharded() ? b.chunk : b.padded}, options_f32));
      }
      state_.push_back(std::move(state));
    }
  }

  void zero_grad() override { grads_.zero_grad(); }
  void begin_backward(bool last) override { grads_.begin_backward(last); }
  void end_backward(bool) override { grads_.end_backward(); }
  double grad_norm() override { return grads_.grad_norm(); }
  std::vector<std::string> nonfinite_gradients() override { return grads_.nonfinite(); }
  void scale_gradients(double scale) override { grads_.scale(scale); }

  void step(double lr) override {
    torch::NoGradGuard no_grad;
    ++steps_;
    auto& buckets = grads_.buckets();
    const auto& params = grads_.params();
    if (!grads_.sharded()) {
      std::vector<UpdateRule::Run> runs;
      for (size_t bi = 0; bi < buckets.size(); ++bi) {
        Bucket& b = buckets[bi];
        for (size_t i : b.params) {
          const Param& p = params[i];
          const int64_t n = p.tensor.numel();
          runs.push_back({b.flat_param.narrow(0, p.offset, n), b.flat_grad.narrow(0, p.offset, n),
                          narrowed(state_[bi], p.offset, n), p.decay});
        }
      }
      rule_->update(runs, steps_, lr);
      return;
    }
    const int rank = comm_.rank();
    CommTimings& timings = grads_.timings();
    std::vector<std::unique_ptr<PendingOp>> gathers;
    std::vector<torch::Tensor> sent;
    std::vector<std::pair<double, double>> intervals;
    const double started = comm_clock_seconds();
    for (size_t bi = 0; bi < buckets.size(); ++bi) {
      Bucket& b = buckets[bi];
      const torch::Tensor g = grads_.reduced(b);
      torch::Tensor mine = b.flat_param.narrow(0, rank * b.chunk, b.chunk);
      std::vector<UpdateRule::Run> runs;
      for (const Segment& s : b.owned) {
        runs.push_back({mine.narrow(0, s.chunk_offset, s.length), g.narrow(0, s.chunk_offset, s.length),
                        narrowed(state_[bi], s.chunk_offset, s.length), params[s.param].decay});
      }
      rule_->update(runs, steps_, lr);  // this bucket's, before its all-gather starts
      sent.push_back(mine.clone());  // the gather writes into flat_param, which `mine` is part of
      intervals.emplace_back(comm_clock_seconds(), 0);
      gathers.push_back(comm_.all_gather(b.flat_param, sent.back()));
      timings.bytes += static_cast<uint64_t>(b.padded) * 4;
    }
    for (size_t i = 0; i < gathers.size(); ++i) {
      gathers[i]->wait();
      intervals[i].second = std::max(intervals[i].first, gathers[i]->finished_at());
    }
    timings.comm_seconds += union_seconds(intervals);
    // Nothing else runs while parameters are gathered: all of it is exposed
    // (minus the optimizer arithmetic it overlapped with).
    timings.exposed_seconds += comm_clock_seconds() - std::max(started, intervals.back().first);
  }

  int64_t steps() const override { return steps_; }
  uint64_t state_bytes() const override {
    uint64_t total = 0;
    for (const auto& state : state_) {
      for (const auto& t : state) total += static_cast<uint64_t>(t.numel()) * 4;
    }
    return total;
  }
  uint64_t gradient_bytes() const override { return grads_.bytes(); }
  std::string describe() const override {
    // (The text is stored in trainer_state.json as it was before rules were pluggable.)
    char text[200];
    std::snprintf(text, sizeof(text), "data parallel over %d ranks (%s), ZeRO stage %d, %zu buckets of ~%g MB%s",
                  comm_.world_size(), comm_.backend().c_str(), options_.zero, grads_.buckets().size(),
                  options_.bucket_mb, options_.overlap ? "" : ", no overlap");
    return text;
  }

  void write_state(const std::string& dir) const override {
    const auto& names = rule_->state_names();
    const auto& buckets = grads_.buckets();
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    if (!grads_.sharded()) {
      if (comm_.rank() != 0) return;  // every rank holds the same state
      for (const Param& p : grads_.params()) {
        const int64_t n = p.tensor.numel();
        for (size_t k = 0; k < names.size(); ++k) {
          tensors.emplace_back(names[k] + "." + p.name, state_[p.bucket][k].narrow(0, p.offset, n).view(p.tensor.sizes()));
        }
      }
      std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      write_safetensors_file((std::filesystem::path(dir) / kFullOptimizerFile).string(), tensors);
      return;
    }
    for (size_t bi = 0; bi < buckets.size(); ++bi) {
      for (const Segment& s : buckets[bi].owned) {
        const std::string& name = grads_.params()[s.param].name;
        for (size_t k = 0; k < names.size(); ++k) {
          tensors.emplace_back(optimizer_piece_key(names[k], name, s.param_offset),
                               state_[bi][k].narrow(0, s.chunk_offset, s.length));
        }
      }
    }
    write_safetensors_file(
        (std::filesystem::path(dir) / optimizer_shard_file_name(comm_.rank(), comm_.world_size())).string(), tensors,
        {{"openba.zero_stage", std::to_string(options_.zero)}});
  }

  void load_state(const OptimizerStateReader& reader, int64_t steps) override {
    torch::NoGradGuard no_grad;
    const auto& names = rule_->state_names();
    auto read = [&](const std::string& kind, const std::string& name, int64_t offset, int64_t param_numel,
                    torch::Tensor dest) {
      torch::Tensor host = dest.device().is_cpu() ? dest : torch::empty({dest.numel()}, torch::kFloat);
      reader.read(kind, name, offset, param_numel, host);
      if (!dest.device().is_cpu()) dest.copy_(host);
    };
    const auto& buckets = grads_.buckets();
    for (size_t bi = 0; bi < buckets.size(); ++bi) {
      const Bucket& b = buckets[bi];
      if (!grads_.sharded()) {
        for (size_t i : b.params) {
          const Param& p = grads_.params()[i];
          const int64_t n = p.tensor.numel();
          for (size_t k = 0; k < names.size(); ++k) read(names[k], p.name, 0, n, state_[bi][k].narrow(0, p.offset, n));
        }
        continue;
      }
      for (const Segment& s : b.owned) {
        const Param& p = grads_.params()[s.param];
        for (size_t k = 0; k < names.size(); ++k) {
          read(names[k], p.name, s.param_offset, p.tensor.numel(), state_[bi][k].narrow(0, s.chunk_offset, s.length));
        }
      }
    }
    steps_ = steps;
  }

  CommTimings take_timings() override {
    CommTimings t = grads_.timings();
    grads_.timings() = CommTimings{};
    return t;
  }

 private:
  static std::vector<torch::Tensor> narrowed(const std::vector<torch::Tensor>& state, int64_t offset, int64_t n) {
    std::vector<torch::Tensor> out;
    for (const auto& t : state) out.push_back(t.narrow(0, offset, n));
    return out;
  }

  BucketedGradients grads_;
  std::unique_ptr<UpdateRule> rule_;
  std::vector<std::vector<torch::Tensor>> state_;  // [bucket][state]
  Communicator& comm_;
  DataParallelOptions options_;
  int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<OptimizerEngine> make_data_parallel_engine(
    const std::vector<std::pair<std::string, torch::Tensor>>& named, std::unique_ptr<UpdateRule> rule,
    Communicator& comm, const DataParallelOptions& options) {
  return std::make_unique<DataParallelEngine>(named, std::move(rule), comm, options);
}

}  // namespace openba

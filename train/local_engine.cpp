// The one-process optimizer engine: an update rule over whole parameters.
#include <torch/torch.h>

#include <filesystem>

#include "runtime/safetensors_io.h"
#include "train/optimizer_engine.h"
#include "train/optimizer_state.h"
#include "train/update_rule.h"

namespace openba {

double local_grad_norm_squared(const std::vector<torch::Tensor>& grads) {
  // One device-to-host copy for all of them; summed on the host in order.
  std::vector<torch::Tensor> squares;
  for (const auto& g : grads) {
    if (g.defined()) squares.push_back(g.to(torch::kDouble).pow(2).sum().reshape({1}));
  }
  if (squares.empty()) return 0;
  const torch::Tensor host = torch::cat(squares).cpu();
  double total = 0;
  for (int64_t i = 0; i < host.numel(); ++i) total += host.data_ptr<double>()[i];
  return total;
}

namespace {

class LocalEngine final : public OptimizerEngine {
 public:
  LocalEngine(const std::vector<std::pair<std::string, torch::Tensor>>& named, std::unique_ptr<UpdateRule> rule)
      : named_(named), params_(AdamW::default_groups(named)), rule_(std::move(rule)) {
    for (const AdamW::Param& p : params_) {
      std::vector<torch::Tensor> state;
      for (size_t k = 0; k < rule_->state_names().size(); ++k) {
        state.push_back(torch::zeros_like(p.tensor, torch::MemoryFormat::Contiguous));
      }
      state_.push_back(std::move(state));
    }
  }

  void zero_grad() override {
    for (const auto& [name, p] : named_) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
  }
  void begin_backward(bool) override {}
  void end_backward(bool) override {}
  double grad_norm() override {
    std::vector<torch::Tensor> grads;
    for (const auto& [name, p] : named_) grads.push_back(p.grad());
    return std::sqrt(local_grad_norm_squared(grads));
  }
  std::vector<std::string> nonfinite_gradients() override {
    std::vector<std::string> bad;
    for (const auto& [name, p] : named_) {
      if (p.grad().defined() && !torch::isfinite(p.grad()).all().item<bool>()) bad.push_back(name);
    }
    return bad;
  }
  void scale_gradients(double scale) override {
    torch::NoGradGuard no_grad;
    for (const auto& [name, p] : named_) {
      if (p.grad().defined()) p.mutable_grad().mul_(scale);
    }
  }
  // Parameters without a gradient are left alone.
  void step(double lr) override {
    torch::NoGradGuard no_grad;
    ++steps_;
    std::vector<UpdateRule::Run> runs;
    for (size_t i = 0; i < params_.size(); ++i) {
      const torch::Tensor g = params_[i].tensor.grad();
      if (!g.defined()) continue;
      runs.push_back({params_[i].tensor, g, state_[i], params_[i].decay});
    }
    rule_->update(runs, steps_, lr);
  }
  int64_t steps() const override { return steps_; }
  uint64_t state_bytes() const override {
    uint64_t total = 0;
    for (const auto& state : state_) {
      for (const auto& t : state) total += static_cast<uint64_t>(t.numel() * t.element_size());
    }
    return total;
  }
  uint64_t gradient_bytes() const override {
    uint64_t total = 0;
    for (const auto& [name, p] : named_) total += static_cast<uint64_t>(p.numel() * p.element_size());
    return total;
  }
  std::string describe() const override { return rule_->name() + " (one process)"; }
  // "<state>.<parameter>" for each parameter in order, each state in the rule's order.
  void write_state(const std::string& dir) const override {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (size_t i = 0; i < named_.size(); ++i) {
      for (size_t k = 0; k < state_[i].size(); ++k) {
        tensors.emplace_back(rule_->state_names()[k] + "." + named_[i].first, state_[i][k]);
      }
    }
    write_safetensors_file((std::filesystem::path(dir) / kFullOptimizerFile).string(), tensors);
  }
  void load_state(const OptimizerStateReader& reader, int64_t steps) override {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < named_.size(); ++i) {
      for (size_t k = 0; k < state_[i].size(); ++k) {
        torch::Tensor& target = state_[i][k];
        torch::Tensor host = torch::empty({target.numel()}, torch::kFloat);
        reader.read(rule_->state_names()[k], named_[i].first, 0, target.numel(), host);
        target.copy_(host.view(target.sizes()));
      }
    }
    steps_ = steps;
  }

 private:
  std::vector<std::pair<std::string, torch::Tensor>> named_;
  std::vector<AdamW::Param> params_;  // with the weight-decay groups (AdamW::default_groups)
  std::unique_ptr<UpdateRule> rule_;
  std::vector<std::vector<torch::Tensor>> state_;  // [parameter][state]
  int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<OptimizerEngine> make_local_engine(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                                   std::unique_ptr<UpdateRule> rule) {
  return std::make_unique<LocalEngine>(named, std::move(rule));
}

}  // namespace openba

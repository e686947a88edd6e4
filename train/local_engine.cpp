// The one-process optimizer engine: AdamW over whole parameters.
#include <torch/torch.h>

#include <filesystem>

#include "model/safetensors_io.h"
#include "train/optimizer_engine.h"
#include "train/optimizer_state.h"

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
  LocalEngine(const std::vector<std::pair<std::string, torch::Tensor>>& named, const AdamWOptions& options)
      : named_(named), optimizer_(AdamW::default_groups(named), options) {}

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
  void step(double lr) override { optimizer_.step(lr); }
  int64_t steps() const override { return optimizer_.steps(); }
  uint64_t state_bytes() const override { return optimizer_.state_bytes(); }
  uint64_t gradient_bytes() const override {
    uint64_t total = 0;
    for (const auto& [name, p] : named_) total += static_cast<uint64_t>(p.numel() * p.element_size());
    return total;
  }
  std::string describe() const override { return "AdamW (one process)"; }
  void write_state(const std::string& dir) const override {
    write_safetensors_file((std::filesystem::path(dir) / kFullOptimizerFile).string(), optimizer_.state_tensors());
  }
  void load_state(const OptimizerStateReader& reader, int64_t steps) override {
    optimizer_.load_state(reader, steps);
  }

 private:
  std::vector<std::pair<std::string, torch::Tensor>> named_;
  AdamW optimizer_;
};

}  // namespace

std::unique_ptr<OptimizerEngine> make_local_engine(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                                   const AdamWOptions& options) {
  return std::make_unique<LocalEngine>(named, options);
}

}  // namespace openba

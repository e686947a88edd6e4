#include "train/adamw.h"

#include <torch/torch.h>

#include <cmath>

#include "ops/compute_path.h"
#include "train/optimizer_state.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace openba {
namespace {

// One fused pass over a CPU float32 parameter: every array read and written once.
void adamw_cpu(float* p, const float* g, float* m, float* v, int64_t n, float lr_decay, float b1, float b2,
               float step_size, float bc2_sqrt, float eps) {
  parallel_for(n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float pi = p[i] * lr_decay;
      const float gi = g[i];
      const float mi = m[i] * b1 + (1.0f - b1) * gi;
      const float vi = v[i] * b2 + (1.0f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      pi -= step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps);
      p[i] = pi;
    }
  });
}

}  // namespace

std::vector<AdamW::Param> AdamW::default_groups(const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  std::vector<Param> out;
  for (const auto& [name, t] : named) out.push_back({name, t, t.dim() >= 2});
  return out;
}

AdamW::AdamW(std::vector<Param> params, AdamWOptions options) : params_(std::move(params)), options_(options) {
  for (const Param& p : params_) {
    exp_avg_.push_back(torch::zeros_like(p.tensor, torch::MemoryFormat::Contiguous));
    exp_avg_sq_.push_back(torch::zeros_like(p.tensor, torch::MemoryFormat::Contiguous));
  }
}

AdamWStepSizes AdamWStepSizes::at(int64_t t, double lr, const AdamWOptions& o) {
  AdamWStepSizes s;
  s.t = t;
  s.lr = lr;
  s.beta1 = o.beta1;
  s.beta2 = o.beta2;
  s.eps = o.eps;
  s.step_size = lr / (1.0 - std::pow(o.beta1, static_cast<double>(t)));
  s.bc2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(t)));
  return s;
}

namespace {

// ATen's fused multi-tensor kernel (what torch.optim.AdamW(fused=True) runs):
// decoupled decay, bias corrections from the step count, one launch per list.
void fused_aten_update(const std::vector<AdamWSlice>& slices, bool decay, double weight_decay,
                       const AdamWStepSizes& s) {
  std::vector<torch::Tensor> p, g, m, v, steps;
  for (const AdamWSlice& x : slices) {
    if (x.decay != decay) continue;
    p.push_back(x.p);
    g.push_back(x.g);
    m.push_back(x.m);
    v.push_back(x.v);
  }
  if (p.empty()) return;
  // The kernel reads each slice's step count from a tensor on the slices'
  // device (it does not change it); one shared tensor serves every slice.
  const torch::Tensor step = torch::full({}, static_cast<double>(s.t), p.front().options().dtype(torch::kFloat));
  steps.assign(p.size(), step);
  at::_fused_adamw_(p, g, m, v, {}, steps, s.lr, s.beta1, s.beta2, decay ? weight_decay : 0.0, s.eps,
                    /*amsgrad=*/false, /*maximize=*/false);
}

bool fused_cpu_slice(const AdamWSlice& x) {
  return x.p.device().is_cpu() && x.p.scalar_type() == torch::kFloat && x.g.scalar_type() == torch::kFloat &&
         x.p.is_contiguous() && x.g.is_contiguous() && x.m.is_contiguous() && x.v.is_contiguous();
}

}  // namespace

void adamw_update(const std::vector<AdamWSlice>& slices, double weight_decay, const AdamWStepSizes& s) {
  std::vector<AdamWSlice> aten;
  for (const AdamWSlice& x : slices) {
    if (!cuda_style_path_forced() && fused_cpu_slice(x)) {
      adamw_cpu(x.p.data_ptr<float>(), x.g.data_ptr<float>(), x.m.data_ptr<float>(), x.v.data_ptr<float>(),
                x.p.numel(), static_cast<float>(1.0 - s.lr * (x.decay ? weight_decay : 0.0)),
                static_cast<float>(s.beta1), static_cast<float>(s.beta2), static_cast<float>(s.step_size),
                static_cast<float>(s.bc2_sqrt), static_cast<float>(s.eps));
    } else {
      aten.push_back(x);
    }
  }
  // _fused_adamw_ wants one device per call.
  while (!aten.empty()) {
    const torch::Device device = aten.front().p.device();
    std::vector<AdamWSlice> here, rest;
    for (AdamWSlice& x : aten) (x.p.device() == device ? here : rest).push_back(std::move(x));
    for (bool decay : {true, false}) fused_aten_update(here, decay, weight_decay, s);
    aten = std::move(rest);
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const AdamWStepSizes sizes = AdamWStepSizes::at(steps_, lr, options_);
  std::vector<AdamWSlice> slices;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor g = params_[i].tensor.grad();
    if (!g.defined()) continue;
    slices.push_back({params_[i].tensor, g, exp_avg_[i], exp_avg_sq_[i], params_[i].decay});
  }
  adamw_update(slices, options_.weight_decay, sizes);
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back("exp_avg." + params_[i].name, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + params_[i].name, exp_avg_sq_[i]);
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state, int64_t steps, const std::string& source) {
  torch::NoGradGuard no_grad;
  if (state.size() != 2 * params_.size()) {
    throw Error(source + ": optimizer state holds " + std::to_string(state.size()) + " tensors, the model needs " +
                std::to_string(2 * params_.size()) + " (a checkpoint of another model?)");
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [prefix, target] : {std::pair<const char*, torch::Tensor*>{"exp_avg.", &exp_avg_[i]},
                                  {"exp_avg_sq.", &exp_avg_sq_[i]}}) {
      const std::string name = prefix + params_[i].name;
      auto it = state.find(name);
      if (it == state.end()) throw Error(source + ": optimizer state has no '" + name + "' (a checkpoint of another model?)");
      if (it->second.sizes() != target->sizes()) {
        throw Error(source + ": optimizer state '" + name + "' has shape " + c10::str(it->second.sizes()) +
                    " but the parameter has " + c10::str(target->sizes()));
      }
      target->copy_(it->second);
    }
  }
  steps_ = steps;
}

void AdamW::load_state(const OptimizerStateReader& reader, int64_t steps) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [kind, target] : {std::pair<const char*, torch::Tensor*>{"exp_avg", &exp_avg_[i]},
                                {"exp_avg_sq", &exp_avg_sq_[i]}}) {
      torch::Tensor host = torch::empty({target->numel()}, torch::kFloat);
      reader.read(kind, params_[i].name, 0, target->numel(), host);
      target->copy_(host.view(target->sizes()));
    }
  }
  steps_ = steps;
}

uint64_t AdamW::state_bytes() const {
  uint64_t total = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    total += static_cast<uint64_t>(exp_avg_[i].numel() * exp_avg_[i].element_size() +
                                   exp_avg_sq_[i].numel() * exp_avg_sq_[i].element_size());
  }
  return total;
}

double learning_rate(int64_t step, double lr, double min_lr, int64_t warmup_steps, int64_t decay_steps) {
  if (warmup_steps > 0 && step < warmup_steps) {
    return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  if (decay_steps <= warmup_steps) return lr;
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) /
                                            static_cast<double>(decay_steps - warmup_steps));
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace openba

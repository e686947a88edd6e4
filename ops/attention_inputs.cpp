#include "ops/attention_inputs.h"

#include <torch/torch.h>

namespace openba {

torch::Tensor AttentionMask::dense(int64_t tq, int64_t tk) const {
  torch::Tensor hidden;
  if (key_hidden.defined()) hidden = key_hidden.view({key_hidden.size(0), 1, 1, tk});
  if (causal) {
    auto opts = torch::TensorOptions().dtype(torch::kBool);
    if (key_hidden.defined()) opts = opts.device(key_hidden.device());
    auto later = torch::ones({tq, tk}, opts).triu(1).view({1, 1, tq, tk});
    hidden = hidden.defined() ? (hidden | later) : later;
  }
  return hidden;
}

AttentionMask key_padding_mask(const torch::Tensor& attention_mask, bool causal) {
  AttentionMask mask;
  mask.causal = causal;
  if (attention_mask.defined()) {
    auto hidden = attention_mask == 0;
    if (!hidden.device().is_cpu() || hidden.any().item<bool>()) mask.key_hidden = hidden;
  }
  return mask;
}

RotaryTables make_rotary_tables(int64_t length, int64_t kv_channels, double base,
                                const torch::Device& device) {
  // inv_freq[i] = 1 / base^(2i / kv), as the reference computes it.
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
  auto inv_freq =
      1.0 / torch::pow(base, torch::arange(0, kv_channels, 2, opts) / static_cast<double>(kv_channels));
  auto angles = torch::outer(torch::arange(length, opts), inv_freq);  // [T, kv/2]
  auto cos = angles.cos();
  auto sin = angles.sin();
  return {torch::cat({cos, cos}, -1), torch::cat({sin, sin}, -1)};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const RotaryTables& rope) {
  const int64_t half = x.size(-1) / 2;
  const int64_t t = x.size(1);
  auto cos = rope.cos.narrow(0, 0, t).unsqueeze(1);  // [T, 1, kv]
  auto sin = rope.sin.narrow(0, 0, t).unsqueeze(1);
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

}  // namespace openba

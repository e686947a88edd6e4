#include "ops/ops_aten.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <optional>

namespace openba {
namespace {

// [B, H, T, kv] -> [B, T, H*kv]
torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

}  // namespace

torch::Tensor AtenOps::linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) const {
  return torch::nn::functional::linear(x, weight, bias);
}

torch::Tensor AtenOps::layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                  double eps) const {
  return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

// ATen's SDPA takes its flash kernel on CUDA when nothing but causality
// hides keys, the memory-efficient one with the additive padding mask. The
// reference fills hidden scores with -10000; adding -10000 gives the same
// softmax wherever a query sees any key (exp(-10000) is 0 in fp32), and a
// query that sees none (an all-padding input) stays finite.
torch::Tensor AtenOps::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const AttentionMask& mask, double dropout) const {
  if (!mask.key_hidden.defined()) {
    return at::scaled_dot_product_attention(q, k, v, {}, dropout, /*is_causal=*/mask.causal);
  }
  auto hidden = mask.dense(q.size(2), k.size(2));
  auto bias = torch::zeros(hidden.sizes(), q.options()).masked_fill_(hidden, kMaskedScore);
  return at::scaled_dot_product_attention(q, k, v, bias, dropout, false);
}

torch::Tensor AtenMathOps::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const AttentionMask& mask, double dropout) const {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) * scale;
  auto hidden = mask.dense(q.size(2), k.size(2));
  if (hidden.defined()) scores = scores.masked_fill(hidden, kMaskedScore);
  auto probs = torch::softmax(scores, -1);
  if (dropout > 0) probs = torch::dropout(probs, dropout, true);
  return torch::matmul(probs, v);
}

// q, k, v [B, T, H, kv] of the fused projection (rows interleaved per
// head), q and k rotated.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> AtenOps::rotary_heads(const torch::Tensor& x,
                                                                              const torch::Tensor& qkv_weight,
                                                                              const torch::Tensor& qkv_bias,
                                                                              AttentionHeads shape,
                                                                              const RotaryTables& rope) const {
  const int64_t b = x.size(0), t = x.size(1);
  auto per_head = linear(x, qkv_weight, qkv_bias).view({b, t, shape.heads, 3, shape.kv_channels});
  return {apply_rotary(per_head.select(3, 0), rope), apply_rotary(per_head.select(3, 1), rope), per_head.select(3, 2)};
}

torch::Tensor AtenOps::self_attention(const torch::Tensor& x, const torch::Tensor& qkv_weight,
                                      const torch::Tensor& qkv_bias, AttentionHeads shape, const RotaryTables& rope,
                                      const AttentionMask& mask, double dropout) const {
  auto [q, k, v] = rotary_heads(x, qkv_weight, qkv_bias, shape, rope);
  return merge_heads(attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, dropout));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> AtenOps::rotary_qkv(const torch::Tensor& x,
                                                                            const torch::Tensor& qkv_weight,
                                                                            const torch::Tensor& qkv_bias,
                                                                            AttentionHeads shape,
                                                                            const RotaryTables& rope) const {
  auto [q, k, v] = rotary_heads(x, qkv_weight, qkv_bias, shape, rope);
  auto flat = [&](const torch::Tensor& h) { return h.reshape({x.size(0), x.size(1), shape.heads * shape.kv_channels}); };
  return {flat(q), flat(k), flat(v)};
}

torch::Tensor AtenOps::cross_attention(const torch::Tensor& x, const torch::Tensor& memory,
                                       const torch::Tensor& q_weight, const torch::Tensor& q_bias,
                                       const torch::Tensor& kv_weight, const torch::Tensor& kv_bias,
                                       AttentionHeads shape, const AttentionMask& mask, double dropout) const {
  const int64_t b = x.size(0), t = x.size(1), s = memory.size(1);
  auto query = linear(x, q_weight, q_bias).view({b, t, shape.heads, shape.kv_channels}).transpose(1, 2);
  auto mixed = linear(memory, kv_weight, kv_bias).view({b, s, shape.heads, 2, shape.kv_channels});
  auto key = mixed.select(3, 0).transpose(1, 2);
  auto value = mixed.select(3, 1).transpose(1, 2);
  return merge_heads(attend(query, key, value, mask, dropout));
}

torch::Tensor AtenOps::gated_activation(const torch::Tensor& h, int64_t ffn_hidden) const {
  return torch::silu(h.narrow(-1, 0, ffn_hidden)) * h.narrow(-1, ffn_hidden, ffn_hidden);
}

torch::Tensor AtenOps::rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) const {
  auto variance = x.to(torch::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  auto normed = x * torch::rsqrt(variance + eps);
  if (weight.scalar_type() == torch::kHalf || weight.scalar_type() == torch::kBFloat16) {
    normed = normed.to(weight.scalar_type());
  }
  return weight * normed;
}

torch::Tensor AtenOps::attend_with_bias(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        const torch::Tensor& bias, double scale, double dropout) const {
  std::optional<at::Tensor> mask;
  if (bias.defined()) mask = bias.to(q.scalar_type());
  return at::scaled_dot_product_attention(q, k, v, mask, dropout, /*is_causal=*/false, scale);
}

// transformers' T5Attention: scores in the activations' dtype, the bias
// (position bias + mask) added, softmax in fp32 and cast back.
torch::Tensor AtenMathOps::attend_with_bias(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                            const torch::Tensor& bias, double scale, double dropout) const {
  auto scores = torch::matmul(q, k.transpose(-1, -2));
  if (scale != 1.0) scores = scores * scale;
  if (bias.defined()) scores = scores + bias.to(scores.scalar_type());
  auto probs = torch::softmax(scores.to(torch::kFloat), -1).to(scores.scalar_type());
  if (dropout > 0) probs = torch::dropout(probs, dropout, true);
  return torch::matmul(probs, v);
}

torch::Tensor AtenOps::biased_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        AttentionHeads shape, const torch::Tensor& position_bias,
                                        const AttentionMask& mask, double scale, double dropout) const {
  const int64_t b = q.size(0), tq = q.size(1), tk = k.size(1);
  auto split = [&](const torch::Tensor& x, int64_t t) {
    return x.view({b, t, shape.heads, shape.kv_channels}).transpose(1, 2);
  };
  // Hidden keys get the lowest float (transformers adds finfo.min to the
  // bias): a query that sees no key still gets a finite softmax.
  torch::Tensor bias = position_bias.defined() ? position_bias.to(torch::kFloat) : torch::Tensor();
  auto hidden = mask.dense(tq, tk);
  if (hidden.defined()) {
    hidden = hidden.to(q.device());
    const double lowest = std::numeric_limits<float>::lowest();
    auto floor = torch::full({}, lowest, q.options().dtype(torch::kFloat));
    bias = torch::where(hidden, floor, bias.defined() ? bias : torch::zeros({}, floor.options()));
  }
  return merge_heads(attend_with_bias(split(q, tq), split(k, tk), split(v, tk), bias, scale, dropout));
}

torch::Tensor AtenOps::mlp_activation(const torch::Tensor& gate, const torch::Tensor& up,
                                      FfnActivation activation) const {
  torch::Tensor act;
  switch (activation) {
    case FfnActivation::kSilu: act = torch::silu(gate); break;
    case FfnActivation::kRelu: act = torch::relu(gate); break;
    case FfnActivation::kGelu: act = torch::gelu(gate); break;
    case FfnActivation::kGeluTanh: act = torch::gelu(gate, "tanh"); break;
  }
  return up.defined() ? act * up : act;
}

torch::Tensor AtenOps::residual_add(const torch::Tensor& residual, torch::Tensor update, double dropout) const {
  if (dropout > 0) update = torch::dropout(update, dropout, true);
  return residual + update;
}

torch::Tensor AtenOps::token_nll(const torch::Tensor& logits, const torch::Tensor& targets) const {
  return torch::cross_entropy_loss(logits, targets, {}, at::Reduction::None, -100);
}

torch::Tensor AtenOps::distillation_kl(const torch::Tensor& logits, const torch::Tensor& labels,
                                       const torch::Tensor& probs, const torch::Tensor& index,
                                       const torch::Tensor& neg_entropy, double temperature) const {
  const torch::Tensor log_q = torch::log_softmax(logits / temperature, 1);
  const torch::Tensor picked = index.defined() ? log_q.gather(1, index) : log_q;
  const torch::Tensor kl = neg_entropy - (probs * picked).sum(1);
  return (temperature * temperature) * kl.masked_fill(labels == -100, 0.0);
}

}  // namespace openba

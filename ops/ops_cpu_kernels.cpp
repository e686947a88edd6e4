// The cpu-inference and cpu-training backends (ops/op_backend.h): the
// fused CPU kernels, and aten's ops where they have none (dropout; the
// losses without autograd).
#include <cmath>

#include "ops/cpu_autograd.h"
#include "ops/cpu_kernels.h"
#include "ops/ops_aten.h"

namespace openba {
namespace {

class CpuInferenceOps : public AtenOps {
 public:
  OpBackendId id() const override { return OpBackendId::kCpuInference; }
  const char* name() const override { return "cpu-inference"; }

  torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) const override {
    return cpu::linear(x, weight, bias);
  }
  torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           double eps) const override {
    return cpu::layer_norm(x, weight, bias, eps);
  }
  torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& qkv_weight, const torch::Tensor& qkv_bias,
                               AttentionHeads shape, const RotaryTables& rope, const AttentionMask& mask,
                               double dropout) const override {
    if (dropout > 0) return AtenOps::self_attention(x, qkv_weight, qkv_bias, shape, rope, mask, dropout);
    // The bias is added inside the split kernel (one pass fewer), and q is
    // scaled there, so the attention kernel scales by 1.
    auto mixed = cpu::linear(x, qkv_weight, {});
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(shape.kv_channels)));
    auto [q, k, v] =
        cpu::split_qkv_rotary(mixed, qkv_bias, shape.heads, shape.kv_channels, rope.cos, rope.sin, scale);
    return cpu::attention(q, k, v, mask.key_hidden, mask.causal, 1.0);
  }
  // The split kernel with the bias and rotary in one pass; its [B, H, T, kv]
  // is a view of [B, T, H*kv] when T = 1 (a decoding step).
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> rotary_qkv(const torch::Tensor& x,
                                                                     const torch::Tensor& qkv_weight,
                                                                     const torch::Tensor& qkv_bias,
                                                                     AttentionHeads shape,
                                                                     const RotaryTables& rope) const override {
    auto mixed = cpu::linear(x, qkv_weight, {});
    auto [q, k, v] = cpu::split_qkv_rotary(mixed, qkv_bias, shape.heads, shape.kv_channels, rope.cos, rope.sin, 1.0f);
    auto flat = [&](const torch::Tensor& h) {
      return h.transpose(1, 2).reshape({x.size(0), x.size(1), shape.heads * shape.kv_channels});
    };
    return {flat(q), flat(k), flat(v)};
  }
  torch::Tensor cross_attention(const torch::Tensor& x, const torch::Tensor& memory, const torch::Tensor& q_weight,
                                const torch::Tensor& q_bias, const torch::Tensor& kv_weight,
                                const torch::Tensor& kv_bias, AttentionHeads shape, const AttentionMask& mask,
                                double dropout) const override {
    if (dropout > 0) {
      return AtenOps::cross_attention(x, memory, q_weight, q_bias, kv_weight, kv_bias, shape, mask, dropout);
    }
    const int64_t b = x.size(0), t = x.size(1), s = memory.size(1);
    auto query = cpu::linear(x, q_weight, q_bias).view({b, t, shape.heads, shape.kv_channels}).transpose(1, 2);
    auto mixed = cpu::linear(memory, kv_weight, kv_bias).view({b, s, shape.heads, 2, shape.kv_channels});
    const double scale = 1.0 / std::sqrt(static_cast<double>(shape.kv_channels));
    return cpu::attention(query, mixed.select(3, 0).transpose(1, 2), mixed.select(3, 1).transpose(1, 2),
                          mask.key_hidden, false, scale);
  }
  torch::Tensor gated_activation(const torch::Tensor& h, int64_t ffn_hidden) const override {
    return cpu::swiglu(h, ffn_hidden);
  }
  torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) const override {
    return cpu::rms_norm(x, weight, eps);
  }
  // act(gate) * up in one pass over the two inputs.
  torch::Tensor mlp_activation(const torch::Tensor& gate, const torch::Tensor& up,
                               FfnActivation activation) const override {
    return cpu::mlp_activation(gate, up, activation);
  }
  // T5's attention: the projections are the caller's; the kernel adds the
  // position bias to each score block while it is in cache.
  torch::Tensor biased_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 AttentionHeads shape, const torch::Tensor& position_bias, const AttentionMask& mask,
                                 double scale, double dropout) const override {
    if (dropout > 0) return AtenOps::biased_attention(q, k, v, shape, position_bias, mask, scale, dropout);
    const int64_t b = q.size(0), tq = q.size(1), tk = k.size(1);
    auto heads = [&](const torch::Tensor& x, int64_t t) {
      return x.view({b, t, shape.heads, shape.kv_channels}).transpose(1, 2);
    };
    return cpu::attention(heads(q, tq), heads(k, tk), heads(v, tk), mask.key_hidden, mask.causal, scale,
                          position_bias);
  }
  // In place on the update, a fresh tensor of the block's (one pass and
  // one allocation fewer than residual + update).
  torch::Tensor residual_add(const torch::Tensor& residual, torch::Tensor update, double dropout) const override {
    if (dropout > 0) return AtenOps::residual_add(residual, std::move(update), dropout);
    cpu::add_(update, residual);
    return update;
  }
};

class CpuTrainingOps : public AtenOps {
 public:
  OpBackendId id() const override { return OpBackendId::kCpuTraining; }
  const char* name() const override { return "cpu-training"; }

  torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) const override {
    return cpu::linear_autograd(x, weight, bias);
  }
  torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           double eps) const override {
    return cpu::layer_norm_autograd(x, weight, bias, eps);
  }
  torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& qkv_weight, const torch::Tensor& qkv_bias,
                               AttentionHeads shape, const RotaryTables& rope, const AttentionMask& mask,
                               double dropout) const override {
    if (dropout > 0) return AtenOps::self_attention(x, qkv_weight, qkv_bias, shape, rope, mask, dropout);
    auto mixed = cpu::linear_autograd(x, qkv_weight, {});
    return cpu::self_attention_autograd(mixed, qkv_bias, shape.heads, shape.kv_channels, rope.cos, rope.sin,
                                        mask.key_hidden, mask.causal);
  }
  torch::Tensor cross_attention(const torch::Tensor& x, const torch::Tensor& memory, const torch::Tensor& q_weight,
                                const torch::Tensor& q_bias, const torch::Tensor& kv_weight,
                                const torch::Tensor& kv_bias, AttentionHeads shape, const AttentionMask& mask,
                                double dropout) const override {
    if (dropout > 0) {
      return AtenOps::cross_attention(x, memory, q_weight, q_bias, kv_weight, kv_bias, shape, mask, dropout);
    }
    return cpu::cross_attention_autograd(cpu::linear_autograd(x, q_weight, q_bias),
                                         cpu::linear_autograd(memory, kv_weight, kv_bias), shape.heads,
                                         shape.kv_channels, mask.key_hidden);
  }
  torch::Tensor gated_activation(const torch::Tensor& h, int64_t ffn_hidden) const override {
    return cpu::swiglu_autograd(h, ffn_hidden);
  }
  torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) const override {
    return cpu::rms_norm_autograd(x, weight, eps);
  }
  torch::Tensor biased_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 AttentionHeads shape, const torch::Tensor& position_bias, const AttentionMask& mask,
                                 double scale, double dropout) const override {
    if (dropout > 0) return AtenOps::biased_attention(q, k, v, shape, position_bias, mask, scale, dropout);
    return cpu::biased_attention_autograd(q, k, v, shape.heads, shape.kv_channels, position_bias, mask.key_hidden,
                                          mask.causal, scale);
  }
  torch::Tensor mlp_activation(const torch::Tensor& gate, const torch::Tensor& up,
                               FfnActivation activation) const override {
    return cpu::mlp_activation_autograd(gate, up, activation);
  }
  torch::Tensor residual_add(const torch::Tensor& residual, torch::Tensor update, double dropout) const override {
    if (dropout > 0) return AtenOps::residual_add(residual, std::move(update), dropout);
    return cpu::add_autograd(residual, update);
  }
  torch::Tensor token_nll(const torch::Tensor& logits, const torch::Tensor& targets) const override {
    return cpu::cross_entropy_autograd(logits, targets);
  }
  torch::Tensor distillation_kl(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& probs,
                                const torch::Tensor& index, const torch::Tensor& neg_entropy,
                                double temperature) const override {
    return cpu::distillation_autograd(logits, labels, probs, index, neg_entropy, temperature);
  }
};

}  // namespace

const OpBackend& op_backend(OpBackendId id) {
  static const CpuInferenceOps cpu_inference;
  static const CpuTrainingOps cpu_training;
  static const AtenOps aten;
  static const AtenMathOps aten_math;
  switch (id) {
    case OpBackendId::kCpuInference: return cpu_inference;
    case OpBackendId::kCpuTraining: return cpu_training;
    case OpBackendId::kAten: return aten;
    case OpBackendId::kAtenMath: return aten_math;
  }
  return aten;
}

}  // namespace openba

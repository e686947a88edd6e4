// The aten and aten-math backends (ops/op_backend.h), visible so that the
// CPU backends can hand them the ops they have no kernel for.
#pragma once

#include "ops/op_backend.h"

namespace openba {

class AtenOps : public OpBackend {
 public:
  OpBackendId id() const override { return OpBackendId::kAten; }
  const char* name() const override { return "aten"; }
  torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) const override;
  torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           double eps) const override;
  torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& qkv_weight, const torch::Tensor& qkv_bias,
                               AttentionHeads shape, const RotaryTables& rope, const AttentionMask& mask,
                               double dropout) const override;
  torch::Tensor cross_attention(const torch::Tensor& x, const torch::Tensor& memory, const torch::Tensor& q_weight,
                                const torch::Tensor& q_bias, const torch::Tensor& kv_weight,
                                const torch::Tensor& kv_bias, AttentionHeads shape, const AttentionMask& mask,
                                double dropout) const override;
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> rotary_qkv(const torch::Tensor& x,
                                                                     const torch::Tensor& qkv_weight,
                                                                     const torch::Tensor& qkv_bias,
                                                                     AttentionHeads shape,
                                                                     const RotaryTables& rope) const override;
  torch::Tensor gated_activation(const torch::Tensor& h, int64_t ffn_hidden) const override;
  torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) const override;
  torch::Tensor biased_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 AttentionHeads shape, const torch::Tensor& position_bias, const AttentionMask& mask,
                                 double scale, double dropout) const override;
  torch::Tensor mlp_activation(const torch::Tensor& gate, const torch::Tensor& up,
                               FfnActivation activation) const override;
  torch::Tensor residual_add(const torch::Tensor& residual, torch::Tensor update, double dropout) const override;
  torch::Tensor token_nll(const torch::Tensor& logits, const torch::Tensor& targets) const override;
  torch::Tensor distillation_kl(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& probs,
                                const torch::Tensor& index, const torch::Tensor& neg_entropy,
                                double temperature) const override;

 protected:
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> rotary_heads(const torch::Tensor& x,
                                                                       const torch::Tensor& qkv_weight,
                                                                       const torch::Tensor& qkv_bias,
                                                                       AttentionHeads shape,
                                                                       const RotaryTables& rope) const;
  // softmax(q k^T / sqrt(kv) + hidden) v for q [B, H, Tq, kv], k and v
  // [B, H, Tk, kv]; returns [B, H, Tq, kv].
  virtual torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const AttentionMask& mask, double dropout) const;
  // softmax(q k^T * scale + bias) v with an additive float bias
  // (broadcastable to [B, H, Tq, Tk], may be undefined); [B, H, *, kv] in and out.
  virtual torch::Tensor attend_with_bias(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& bias, double scale, double dropout) const;
};

class AtenMathOps : public AtenOps {
 public:
  OpBackendId id() const override { return OpBackendId::kAtenMath; }
  const char* name() const override { return "aten-math"; }

 protected:
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const AttentionMask& mask, double dropout) const override;
  torch::Tensor attend_with_bias(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& bias, double scale, double dropout) const override;
};

}  // namespace openba

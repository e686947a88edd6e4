// The op table the model's one forward calls (arch/openba/openba_model.cpp), with
// the backends that implement it. A forward picks its backend once, from
// its first activation (select_op_backend), and every op of that forward
// runs there:
//
//   cpu-inference  the fused CPU kernels (ops/cpu_kernels.h): CPU float32,
//                  no autograd. Evaluation, calibration, teachers.
//   cpu-training   their hand-written differentiable versions
//                  (ops/cpu_autograd.h): CPU float32 with autograd.
//   aten           plain ATen ops, attention through
//                  at::scaled_dot_product_attention: CUDA (flash or
//                  memory-efficient kernels), and CPU where the fused kernels
//                  do not apply (other dtypes) or where the CUDA-style path
//                  is forced (ops/compute_path.h) so that CPU tests run it.
//   aten-math      aten with the attention written as the reference writes
//                  it (softmax(q k^T / sqrt(kv), hidden = -10000) v): the
//                  activation scores of width pruning are defined on it.
//
// The fused kernels have no dropout: an op asked to drop out (dropout > 0)
// runs its aten version inside the CPU backends.
//
// Adding a backend: implement this interface in one file (ops_<name>.cpp),
// add its id and a case to select_op_backend. Adding an op: one virtual
// here, one implementation per backend.
#pragma once

#include <torch/types.h>

#include <tuple>

#include "ops/activation.h"
#include "ops/attention_inputs.h"

namespace openba {

enum class OpBackendId { kCpuInference, kCpuTraining, kAten, kAtenMath };

struct AttentionHeads {
  int64_t heads = 0;
  int64_t kv_channels = 0;
};

class OpBackend {
 public:
  virtual ~OpBackend() = default;
  virtual OpBackendId id() const = 0;
  virtual const char* name() const = 0;

  // x W^T + b for x [..., K], W [N, K]; b may be undefined.
  virtual torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias) const = 0;
  // LayerNorm over the last dimension.
  virtual torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   double eps) const = 0;
  // Self-attention of x [B, T, d] through the fused projection (rows
  // interleaved per head [q_h; k_h; v_h]): rotary on q and k, scores scaled
  // by 1/sqrt(kv), hidden keys at kMaskedScore, softmax in fp32, dropout
  // on the probabilities. Returns the context [B, T, H*kv], the input of
  // the output projection.
  virtual torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& qkv_weight,
                                       const torch::Tensor& qkv_bias, AttentionHeads shape, const RotaryTables& rope,
                                       const AttentionMask& mask, double dropout) const = 0;
  // Cross-attention of x [B, Tq, d] over memory [B, Tk, d] (kv rows
  // interleaved per head [k_h; v_h]; no rotary). Returns [B, Tq, H*kv].
  virtual torch::Tensor cross_attention(const torch::Tensor& x, const torch::Tensor& memory,
                                        const torch::Tensor& q_weight, const torch::Tensor& q_bias,
                                        const torch::Tensor& kv_weight, const torch::Tensor& kv_bias,
                                        AttentionHeads shape, const AttentionMask& mask, double dropout) const = 0;
  // The fused projection of self_attention without the attention, for
  // incremental decoding: q, k, v [B, T, H*kv] of x [B, T, d], q and k
  // rotated by rope (tables whose row 0 is x's first position). No scaling.
  virtual std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> rotary_qkv(const torch::Tensor& x,
                                                                             const torch::Tensor& qkv_weight,
                                                                             const torch::Tensor& qkv_bias,
                                                                             AttentionHeads shape,
                                                                             const RotaryTables& rope) const = 0;
  // silu(gate) * up for h = [gate, up] along the last dimension.
  virtual torch::Tensor gated_activation(const torch::Tensor& h, int64_t ffn_hidden) const = 0;

  // The T5 family's ops (arch/t5/t5_model.cpp).
  // RMS norm over the last dimension as T5LayerNorm: x * rsqrt(mean(x^2) +
  // eps) with the mean taken in fp32, cast to the weight's dtype when that
  // is half precision, times the weight (no bias, no centering).
  virtual torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) const = 0;
  // Attention over separately projected q [B, Tq, H*kv], k and v [B, Tk,
  // H*kv]: scores (q k^T) * scale + position_bias (broadcastable to [B, H,
  // Tq, Tk]; undefined: none), hidden keys at the lowest float (as
  // transformers' T5), softmax in fp32, dropout on the probabilities.
  // Returns the context [B, Tq, H*kv].
  virtual torch::Tensor biased_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         AttentionHeads shape, const torch::Tensor& position_bias,
                                         const AttentionMask& mask, double scale, double dropout) const = 0;
  // act(gate) * up, or act(gate) when up is undefined (an ungated MLP).
  virtual torch::Tensor mlp_activation(const torch::Tensor& gate, const torch::Tensor& up,
                                       FfnActivation activation) const = 0;
  // residual + dropout(update). May write into `update` (a temporary that
  // the caller does not read again); never into `residual`.
  virtual torch::Tensor residual_add(const torch::Tensor& residual, torch::Tensor update, double dropout) const = 0;
  // Per-row NLL of logits [N, V] against targets [N] (-100: ignored, 0).
  virtual torch::Tensor token_nll(const torch::Tensor& logits, const torch::Tensor& targets) const = 0;
  // Per-row T^2 * KL(teacher || softmax(logits / T)) (train/distillation.h):
  // labels -100 give 0; the teacher's probabilities probs [N, K] over the ids
  // index [N, K] (undefined: every id), neg_entropy [N] = sum p log p.
  virtual torch::Tensor distillation_kl(const torch::Tensor& logits, const torch::Tensor& labels,
                                        const torch::Tensor& probs, const torch::Tensor& index,
                                        const torch::Tensor& neg_entropy, double temperature) const = 0;
};

// The backend for a forward whose activations look like x, under the
// current grad mode (see the table above).
const OpBackend& select_op_backend(const torch::Tensor& x);
const OpBackend& op_backend(OpBackendId id);
inline const OpBackend& aten_ops() { return op_backend(OpBackendId::kAten); }
inline const OpBackend& aten_math_ops() { return op_backend(OpBackendId::kAtenMath); }

}  // namespace openba

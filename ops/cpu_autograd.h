// Differentiable versions of the fused CPU kernels (cpu_kernels.h) for
// training: custom autograd functions whose backward passes are written out
// by hand and run on the worker pool with single-threaded GEMMs, like the
// forward. Used for CPU float32 tensors when gradients are recorded and
// dropout is off; tests compare every one against ATen's own autograd.
#pragma once

#include <torch/types.h>

#include "ops/activation.h"

namespace openba::cpu {

// x W^T + b (b may be undefined).
torch::Tensor linear_autograd(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// LayerNorm over the last dimension.
torch::Tensor layer_norm_autograd(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                  double eps);

// silu(gate) * up for h = [gate, up] along the last dimension.
torch::Tensor swiglu_autograd(const torch::Tensor& h, int64_t ffn_hidden);

// x + y (same shapes).
torch::Tensor add_autograd(const torch::Tensor& x, const torch::Tensor& y);

// Self-attention from the fused projection qkv [B, T, H*3*kv] (per-head
// [q; k; v], before its bias): bias, rotary embedding, 1/sqrt(kv) scaling,
// masking (key_hidden bool [B, T] or undefined; causal) and softmax.
// Returns [B, T, H*kv].
torch::Tensor self_attention_autograd(const torch::Tensor& qkv, const torch::Tensor& bias, int64_t heads,
                                      int64_t kv_channels, const torch::Tensor& cos, const torch::Tensor& sin,
                                      const torch::Tensor& key_hidden, bool causal);

// Cross-attention from q [B, Tq, H*kv] and kv [B, Tk, H*2*kv] (per-head
// [k; v]); key_hidden bool [B, Tk] or undefined. Returns [B, Tq, H*kv].
torch::Tensor cross_attention_autograd(const torch::Tensor& q, const torch::Tensor& kv, int64_t heads,
                                       int64_t kv_channels, const torch::Tensor& key_hidden);

// T5's attention (ops/op_backend.h biased_attention) from separately
// projected q [B, Tq, H*kv], k and v [B, Tk, H*kv]: scores scale * q k^T +
// position_bias ([1 or B, H, Tq, Tk] or undefined; differentiable), masked
// (key_hidden bool [B, Tk] or undefined; causal), softmax. Returns [B, Tq, H*kv].
torch::Tensor biased_attention_autograd(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        int64_t heads, int64_t kv_channels, const torch::Tensor& position_bias,
                                        const torch::Tensor& key_hidden, bool causal, double scale);

// T5's RMS norm over the last dimension (float32 weight).
torch::Tensor rms_norm_autograd(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// act(gate) * up, or act(gate) when up is undefined.
torch::Tensor mlp_activation_autograd(const torch::Tensor& gate, const torch::Tensor& up, FfnActivation activation);

// Per-row NLL of logits [N, V] against targets [N] (int64; -100 = ignored,
// NLL 0). Returns [N].
torch::Tensor cross_entropy_autograd(const torch::Tensor& logits, const torch::Tensor& targets);

// Per-row T^2 * KL(teacher || softmax(logits / T)) for distillation
// (train/distillation.h): logits [N, V]; labels [N] (-100: row not counted,
// 0); the teacher's probabilities probs [N, K] over the ids index [N, K]
// (undefined: K = V, every id in order), and neg_entropy [N] = sum p log p.
// Differentiable in logits. Returns [N].
torch::Tensor distillation_autograd(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& probs,
                                   const torch::Tensor& index, const torch::Tensor& neg_entropy, double temperature);

}  // namespace openba::cpu

// Fast CPU kernels for the no-gradient forward (evaluation, calibration):
// float32 only. Each runs row- or head-parallel on openba::WorkerPool; the
// attention issues one small single-threaded GEMM pair per (batch, head) so
// scores stay in cache and the output lands directly in merged-head layout.
// The model uses them when grad mode is off and tensors are CPU float32, and
// plain ATen ops otherwise; tests check both paths agree.
#pragma once

#include <torch/types.h>

#include <tuple>

#include "ops/activation.h"

namespace openba::cpu {

// x W^T + b for x [..., K], W [N, K]: the pool's threads each run one
// single-threaded GEMM on a block of rows (columns when rows are few), with
// the bias added while the block is in cache. Matches OpenBLAS's own
// threading on these shapes and never leaves BLAS threads spinning.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// qkv: [B, T, H*3*kv] with rows interleaved per head ([q_h; k_h; v_h]),
// before its bias (added here, saving a pass; bias may be undefined).
// Returns q, k, v as contiguous [B, H, T, kv]; q and k rotated (rotate-half,
// tables [>=T, kv] laid out [half, half]), q multiplied by q_scale.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> split_qkv_rotary(
    const torch::Tensor& qkv, const torch::Tensor& bias, int64_t heads, int64_t kv_channels,
    const torch::Tensor& cos, const torch::Tensor& sin, float q_scale);

// softmax(q k^T * scale, masked entries = -10000) v for every (b, h).
// q: [B, H, Tq, kv], k and v: [B, H, Tk, kv] (any strides with unit last
// stride). key_hidden: bool [B, Tk], true = hidden, or undefined. causal
// hides keys after the query position. Returns [B, Tq, H*kv].
// position_bias (T5): float [1 or B, H, Tq, Tk] added to the scores before
// the mask, or undefined.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& key_hidden, bool causal, double scale,
                        const torch::Tensor& position_bias = {});

// T5's RMS norm over the last dimension: w * x * rsqrt(mean(x^2) + eps).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// LayerNorm over the last dimension.
torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias, double eps);

// act(gate) * up in one pass (up the same shape as gate), or act(gate)
// when up is undefined (an ungated MLP). Formulas: ops/activation_math.h.
torch::Tensor mlp_activation(const torch::Tensor& gate, const torch::Tensor& up, FfnActivation activation);

// h: [..., 2f] = [gate, up] -> silu(gate) * up: [..., f].
torch::Tensor swiglu(const torch::Tensor& h, int64_t ffn_hidden);

// x += y (same shape, contiguous).
void add_(torch::Tensor& x, const torch::Tensor& y);

}  // namespace openba::cpu

#include "ops/cpu_autograd.h"
#include "ops/optional_tensor.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <cmath>

#include "ops/activation_math.h"
#include "ops/blas.h"
#include "ops/cpu_kernel_support.h"
#include "ops/cpu_kernels.h"
#include "ops/fast_math.h"

namespace openba::cpu {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using torch::autograd::variable_list;

// Reductions over rows (bias and LayerNorm weight gradients) go through this
// many row blocks summed in block order: the result does not depend on the
// thread count.
constexpr int64_t kReductionBlocks = 64;

// Row-major C = alpha op(A) op(B) + beta C across the pool: one block of C's
// rows per thread (or of its columns when rows are few), each a
// single-threaded sgemm.
void parallel_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const bool by_rows = m >= WorkerPool::instance().threads() * 64 || m >= n;
  for_each_gemm_part(m, n, by_rows, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    const float* a_rows = trans_a ? a + r0 : a + r0 * lda;
    const float* b_cols = trans_b ? b + c0 * ldb : b + c0;
    sgemm_row_major(trans_a, trans_b, static_cast<int>(r1 - r0), static_cast<int>(c1 - c0), static_cast<int>(k),
                    alpha, a_rows, static_cast<int>(lda), b_cols, static_cast<int>(ldb), beta, c + r0 * ldc + c0,
                    static_cast<int>(ldc));
  });
}

// Sums rows [rows, n] -> [n] (row blocks in a fixed order).
torch::Tensor sum_rows(const float* x, int64_t rows, int64_t n) {
  const int64_t blocks = std::min(rows, kReductionBlocks);
  auto partial = torch::zeros({std::max<int64_t>(blocks, 1), n});
  float* p = partial.data_ptr<float>();
  parallel_for(blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      float* out = p + blk * n;
      for (int64_t r = blk * rows / blocks; r < (blk + 1) * rows / blocks; ++r) {
        const float* row = x + r * n;
        for (int64_t i = 0; i < n; ++i) out[i] += row[i];
      }
    }
  });
  return partial.sum(0);
}

// ---- elementwise helpers (vectorized clones) ---------------------------------

OPENBA_VECTOR_CLONES
void swiglu_backward_row(const float* gate, const float* up, const float* grad, int64_t n, float* d_gate, float* d_up) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float sig = 1.0f / (1.0f + fast_exp(-gate[i]));
    const float silu = gate[i] * sig;
    d_up[i] = grad[i] * silu;
    d_gate[i] = grad[i] * up[i] * sig * (1.0f + gate[i] * (1.0f - sig));
  }
}

// One row of RMS norm's backward; accumulates g xhat into d_weight.
OPENBA_VECTOR_CLONES
void rms_norm_backward_row(const float* x, const float* g, const float* w, int64_t n, float inv, float* dx,
                           float* d_weight) {
  float dot = 0;  // sum g w xhat
#pragma omp simd reduction(+ : dot)
  for (int64_t i = 0; i < n; ++i) dot += g[i] * w[i] * x[i];
  const float c = dot * inv / static_cast<float>(n);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float xhat = x[i] * inv;
    dx[i] = inv * (g[i] * w[i] - xhat * c);
    d_weight[i] += g[i] * xhat;
  }
}

// d_gate = g up act'(gate), d_up = g act(gate) (up null: d_gate = g act'(gate)).
OPENBA_VECTOR_CLONES
void mlp_activation_backward_row(FfnActivation activation, const float* gate, const float* up, const float* g,
                                 int64_t n, float* d_gate, float* d_up) {
  namespace am = activation_math;
#define OPENBA_ACTIVATION_BACKWARD_LOOP(f, df)                      \
  if (up) {                                                         \
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) {           \
      d_up[i] = g[i] * f(gate[i]);                                  \
      d_gate[i] = g[i] * up[i] * df(gate[i]);                       \
    }                                                               \
  } else {                                                          \
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) d_gate[i] = g[i] * df(gate[i]); \
  }
  switch (activation) {
    case FfnActivation::kSilu: OPENBA_ACTIVATION_BACKWARD_LOOP(am::silu, am::silu_grad) break;
    case FfnActivation::kRelu: OPENBA_ACTIVATION_BACKWARD_LOOP(am::relu, am::relu_grad) break;
    case FfnActivation::kGeluTanh: OPENBA_ACTIVATION_BACKWARD_LOOP(am::gelu_tanh, am::gelu_tanh_grad) break;
    case FfnActivation::kGelu: OPENBA_ACTIVATION_BACKWARD_LOOP(am::gelu_erf, am::gelu_erf_grad) break;
  }
#undef OPENBA_ACTIVATION_BACKWARD_LOOP
}

OPENBA_VECTOR_CLONES
void add_rows(const float* x, const float* y, float* out, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] + y[i];
}

// dS = P (dP - sum(dP P)) for one row, in place in dp.
OPENBA_VECTOR_CLONES
void softmax_backward_row(const float* p, float* dp, int64_t n) {
  float dot = 0;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < n; ++j) dot += dp[j] * p[j];
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - dot);
}

// ---- attention core shared by self- and cross-attention ----------------------

// Strided views of per-head matrices: element (b, h, t, c) at
// base + b * sb + h * sh + t * st + c.
struct HeadView {
  float* base;
  int64_t sb, sh, st;
  float* at(int64_t b, int64_t h) const { return base + b * sb + h * sh; }
};

struct AttentionShape {
  int64_t batch, heads, tq, tk, kv;
};

// Masks one score row: hidden keys and (causal) later positions get -10000.
void mask_row(float* row, int64_t tk, const uint8_t* hidden, bool causal, int64_t query) {
  if (hidden) {
    for (int64_t j = 0; j < tk; ++j) {
      if (hidden[j]) row[j] = kMaskedScoreFloat;
    }
  }
  if (causal) {
    for (int64_t j = query + 1; j < tk; ++j) row[j] = kMaskedScoreFloat;
  }
}

// The same entries get no gradient (masked_fill replaced them by constants).
void unmask_gradient_row(float* row, int64_t tk, const uint8_t* hidden, bool causal, int64_t query) {
  if (hidden) {
    for (int64_t j = 0; j < tk; ++j) {
      if (hidden[j]) row[j] = 0;
    }
  }
  if (causal) {
    for (int64_t j = query + 1; j < tk; ++j) row[j] = 0;
  }
}

// An additive bias on the scores (T5's relative position bias): contiguous
// [1 or B, H, Tq, Tk]; batch_stride 0 when one bias serves every example.
struct ScoreBias {
  const float* data = nullptr;
  int64_t batch_stride = 0;
  const float* at(const AttentionShape& s, int64_t b, int64_t h) const {
    return data ? data + b * batch_stride + h * s.tq * s.tk : nullptr;
  }
};

// Forward: probs [B, H, Tq, Tk] (kept for backward) and out (strided).
// Scores are alpha q k^T + bias, then masked, then softmaxed.
void attention_forward(const AttentionShape& s, HeadView q, HeadView k, HeadView v, HeadView out, float alpha,
                       const uint8_t* hidden, bool causal, float* probs, ScoreBias bias = {}) {
  SingleThreadedBlas single_threaded_blas;
  parallel_for(s.batch * s.heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / s.heads, h = task % s.heads;
      float* p = probs + task * s.tq * s.tk;
      sgemm_row_major(false, true, s.tq, s.tk, s.kv, alpha, q.at(b, h), q.st, k.at(b, h), k.st, 0.0f, p, s.tk);
      const uint8_t* row_hidden = hidden ? hidden + b * s.tk : nullptr;
      const float* bias_rows = bias.at(s, b, h);
      for (int64_t i = 0; i < s.tq; ++i) {
        if (bias_rows) add_row(p + i * s.tk, bias_rows + i * s.tk, s.tk);
        mask_row(p + i * s.tk, s.tk, row_hidden, causal, i);
        softmax_row(p + i * s.tk, s.tk);
      }
      sgemm_row_major(false, false, s.tq, s.kv, s.tk, 1.0f, p, s.tk, v.at(b, h), v.st, 0.0f, out.at(b, h), out.st);
    }
  });
}

// Backward: gradients of q, k, v (strided, overwritten) from d_out. alpha is
// the score scale applied in forward. d_scores ([B, H, Tq, Tk], or null)
// receives the gradient of the scores after scaling, which is the gradient
// of an additive score bias for that example.
void attention_backward(const AttentionShape& s, HeadView q, HeadView k, HeadView v, HeadView d_out, HeadView dq,
                        HeadView dk, HeadView dv, float alpha, const uint8_t* hidden, bool causal, const float* probs,
                        float* d_scores = nullptr) {
  SingleThreadedBlas single_threaded_blas;
  parallel_for(s.batch * s.heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(d_scores ? 0 : static_cast<size_t>(s.tq * s.tk));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / s.heads, h = task % s.heads;
      const float* p = probs + task * s.tq * s.tk;
      float* ds = d_scores ? d_scores + task * s.tq * s.tk : scratch.data();
      // dV = P^T dO
      sgemm_row_major(true, false, s.tk, s.kv, s.tq, 1.0f, p, s.tk, d_out.at(b, h), d_out.st, 0.0f, dv.at(b, h), dv.st);
      // dP = dO V^T, then dS = P (dP - rowsum(dP P)), masked entries 0.
      sgemm_row_major(false, true, s.tq, s.tk, s.kv, 1.0f, d_out.at(b, h), d_out.st, v.at(b, h), v.st, 0.0f, ds, s.tk);
      const uint8_t* row_hidden = hidden ? hidden + b * s.tk : nullptr;
      for (int64_t i = 0; i < s.tq; ++i) {
        softmax_backward_row(p + i * s.tk, ds + i * s.tk, s.tk);
        unmask_gradient_row(ds + i * s.tk, s.tk, row_hidden, causal, i);
      }
      // dQ = alpha dS K; dK = alpha dS^T Q
      sgemm_row_major(false, false, s.tq, s.kv, s.tk, alpha, ds, s.tk, k.at(b, h), k.st, 0.0f, dq.at(b, h), dq.st);
      sgemm_row_major(true, false, s.tk, s.kv, s.tq, alpha, ds, s.tk, q.at(b, h), q.st, 0.0f, dk.at(b, h), dk.st);
    }
  });
}

torch::Tensor hidden_bytes(const torch::Tensor& key_hidden) {
  if (!key_hidden.defined() || key_hidden.numel() == 0) return {};
  return key_hidden.to(torch::kCPU, torch::kByte).contiguous();
}

// ---- autograd functions --------------------------------------------------------

struct LinearFunction : torch::autograd::Function<LinearFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b_or_empty) {
    const torch::Tensor b = empty_as_absent(b_or_empty);
    ctx->save_for_backward({x, w});
    ctx->saved_data["has_bias"] = b.defined();
    return linear(x, w, b);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::linear_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor x = saved[0].contiguous(), w = saved[1].contiguous();
    const torch::Tensor g = grads[0].contiguous();
    const int64_t k = x.size(-1), n = w.size(0), m = x.numel() / k;
    torch::Tensor gx, gw, gb;
    if (ctx->needs_input_grad(0)) {
      gx = torch::empty_like(x);
      parallel_gemm(false, false, m, k, n, 1.0f, g.data_ptr<float>(), n, w.data_ptr<float>(), k, 0.0f,
                    gx.data_ptr<float>(), k);
    }
    if (ctx->needs_input_grad(1)) {
      gw = torch::empty_like(w);
      parallel_gemm(true, false, n, k, m, 1.0f, g.data_ptr<float>(), n, x.data_ptr<float>(), k, 0.0f,
                    gw.data_ptr<float>(), k);
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) gb = sum_rows(g.data_ptr<float>(), m, n);
    return {gx, gw, gb};
  }
};

struct LayerNormFunction : torch::autograd::Function<LayerNormFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& w,
                               const torch::Tensor& b, double eps) {
    const torch::Tensor x = x_in.contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    auto stats = torch::empty({rows, 2});  // mean, rstd
    auto y = torch::empty_like(x);
    const float* xs = x.data_ptr<float>();
    const float* wd = w.data_ptr<float>();
    const float* bd = b.data_ptr<float>();
    float* ys = y.data_ptr<float>();
    float* st = stats.data_ptr<float>();
    parallel_for(rows, std::max<int64_t>(1, 16384 / n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* row = xs + r * n;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < n; ++i) sum += row[i];
        const float mean = static_cast<float>(sum / n);
        for (int64_t i = 0; i < n; ++i) sq += static_cast<double>(row[i] - mean) * (row[i] - mean);
        const float rstd = static_cast<float>(1.0 / std::sqrt(sq / n + eps));
        st[2 * r] = mean;
        st[2 * r + 1] = rstd;
        float* out = ys + r * n;
        for (int64_t i = 0; i < n; ++i) out[i] = (row[i] - mean) * rstd * wd[i] + bd[i];
      }
    });
    ctx->save_for_backward({x, w, stats});
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::layer_norm_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor x = saved[0], w = saved[1], stats = saved[2];
    const torch::Tensor g = grads[0].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    auto gx = torch::empty_like(x);
    const int64_t blocks = std::min(rows, kReductionBlocks);
    auto partial = torch::zeros({std::max<int64_t>(blocks, 1), 2, n});  // per block: d_weight, d_bias
    const float* xs = x.data_ptr<float>();
    const float* wd = w.data_ptr<float>();
    const float* st = stats.data_ptr<float>();
    const float* gs = g.data_ptr<float>();
    float* gxs = gx.data_ptr<float>();
    float* pd = partial.data_ptr<float>();
    parallel_for(blocks, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> xhat(static_cast<size_t>(n)), gw(static_cast<size_t>(n));
      for (int64_t blk = begin; blk < end; ++blk) {
        float* dweight = pd + blk * 2 * n;
        float* dbias = dweight + n;
        for (int64_t r = blk * rows / blocks; r < (blk + 1) * rows / blocks; ++r) {
          const float* row = xs + r * n;
          const float* grow = gs + r * n;
          const float mean = st[2 * r], rstd = st[2 * r + 1];
          double mean_gw = 0, mean_gw_xhat = 0;
          for (int64_t i = 0; i < n; ++i) {
            xhat[i] = (row[i] - mean) * rstd;
            gw[i] = grow[i] * wd[i];
            mean_gw += gw[i];
            mean_gw_xhat += static_cast<double>(gw[i]) * xhat[i];
            dweight[i] += grow[i] * xhat[i];
            dbias[i] += grow[i];
          }
          const float a = static_cast<float>(mean_gw / n), c = static_cast<float>(mean_gw_xhat / n);
          float* out = gxs + r * n;
          for (int64_t i = 0; i < n; ++i) out[i] = rstd * (gw[i] - a - xhat[i] * c);
        }
      }
    });
    const auto sums = partial.sum(0);
    return {gx, sums[0], sums[1], torch::Tensor()};
  }
};

struct SwiGluFunction : torch::autograd::Function<SwiGluFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& h, int64_t f) {
    ctx->save_for_backward({h});
    ctx->saved_data["f"] = f;
    return swiglu(h, f);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::swiglu_backward", std::vector<c10::IValue>());
    const torch::Tensor h = ctx->get_saved_variables()[0].contiguous();
    const int64_t f = ctx->saved_data["f"].toInt();
    const torch::Tensor g = grads[0].contiguous();
    auto dh = torch::empty_like(h);
    const int64_t rows = h.numel() / (2 * f);
    const float* hd = h.data_ptr<float>();
    const float* gd = g.data_ptr<float>();
    float* dd = dh.data_ptr<float>();
    parallel_for(rows, std::max<int64_t>(1, 16384 / (2 * f)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        swiglu_backward_row(hd + r * 2 * f, hd + r * 2 * f + f, gd + r * f, f, dd + r * 2 * f, dd + r * 2 * f + f);
      }
    });
    return {dh, torch::Tensor()};
  }
};

struct AddFunction : torch::autograd::Function<AddFunction> {
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& x_in, const torch::Tensor& y_in) {
    const torch::Tensor x = x_in.contiguous(), y = y_in.contiguous();
    auto out = torch::empty_like(x);
    const float* xd = x.data_ptr<float>();
    const float* yd = y.data_ptr<float>();
    float* od = out.data_ptr<float>();
    parallel_for(x.numel(), 65536, [&](int64_t begin, int64_t end) { add_rows(xd + begin, yd + begin, od + begin, end - begin); });
    return out;
  }
  static tensor_list backward(AutogradContext*, tensor_list grads) { return {grads[0], grads[0]}; }
};

struct SelfAttentionFunction : torch::autograd::Function<SelfAttentionFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& qkv, const torch::Tensor& bias_or_empty,
                               int64_t heads, int64_t kv, const torch::Tensor& cos, const torch::Tensor& sin,
                               const torch::Tensor& key_hidden, bool causal) {
    const torch::Tensor bias = empty_as_absent(bias_or_empty);
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(kv)));
    auto [q, k, v] = split_qkv_rotary(qkv, bias, heads, kv, cos, sin, scale);  // q pre-scaled
    const int64_t b = qkv.size(0), t = qkv.size(1);
    const torch::Tensor hidden = hidden_bytes(key_hidden);
    auto probs = torch::empty({b, heads, t, t});
    auto out = torch::empty({b, t, heads * kv});
    const AttentionShape s{b, heads, t, t, kv};
    const int64_t a = heads * kv;
    auto head_major = [&](const torch::Tensor& x) {
      return HeadView{x.data_ptr<float>(), heads * t * kv, t * kv, kv};
    };
    attention_forward(s, head_major(q), head_major(k), head_major(v), HeadView{out.data_ptr<float>(), t * a, kv, a}, 1.0f,
                      hidden.defined() ? hidden.data_ptr<uint8_t>() : nullptr, causal, probs.data_ptr<float>());
    ctx->save_for_backward({q, k, v, probs, cos.contiguous(), sin.contiguous()});
    ctx->saved_data["hidden"] = hidden.defined() ? hidden : torch::Tensor();
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["has_bias"] = bias.defined();
    return out;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::self_attention_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor q = saved[0], k = saved[1], v = saved[2], probs = saved[3], cos = saved[4], sin = saved[5];
    const torch::Tensor hidden = ctx->saved_data["hidden"].toTensor();
    const bool causal = ctx->saved_data["causal"].toBool();
    const int64_t b = q.size(0), heads = q.size(1), t = q.size(2), kv = q.size(3), a = heads * kv;
    const torch::Tensor g = grads[0].contiguous();
    auto dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    auto head_major = [&](const torch::Tensor& x) { return HeadView{x.data_ptr<float>(), heads * t * kv, t * kv, kv}; };
    attention_backward({b, heads, t, t, kv}, head_major(q), head_major(k), head_major(v),
                       HeadView{const_cast<float*>(g.data_ptr<float>()), t * a, kv, a}, head_major(dq), head_major(dk),
                       head_major(dv), 1.0f, hidden.defined() ? hidden.data_ptr<uint8_t>() : nullptr, causal,
                       probs.data_ptr<float>());
    // Back through the scale and the rotation into the fused qkv layout:
    // the rotation is orthogonal, so its transpose rotates by -theta.
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(kv)));
    auto dqkv = torch::empty({b, t, heads * 3 * kv});
    const float* cs = cos.data_ptr<float>();
    const float* sn = sin.data_ptr<float>();
    const float* dqd = dq.data_ptr<float>();
    const float* dkd = dk.data_ptr<float>();
    const float* dvd = dv.data_ptr<float>();
    float* out = dqkv.data_ptr<float>();
    const int64_t half = kv / 2;
    parallel_for(b * t, std::max<int64_t>(1, 4096 / (3 * a)), [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t bi = row / t, ti = row % t;
        const float* c = cs + ti * kv;
        const float* s = sn + ti * kv;
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t src = ((bi * heads + h) * t + ti) * kv;
          float* o = out + (row * heads + h) * 3 * kv;
          for (int64_t i = 0; i < half; ++i) {
            const float q1 = dqd[src + i] * scale, q2 = dqd[src + i + half] * scale;
            o[i] = q1 * c[i] + q2 * s[i];
            o[i + half] = q2 * c[i] - q1 * s[i];
            const float k1 = dkd[src + i], k2 = dkd[src + i + half];
            o[kv + i] = k1 * c[i] + k2 * s[i];
            o[kv + i + half] = k2 * c[i] - k1 * s[i];
          }
          for (int64_t i = 0; i < kv; ++i) o[2 * kv + i] = dvd[src + i];
        }
      }
    });
    torch::Tensor dbias;
    if (ctx->saved_data["has_bias"].toBool()) dbias = sum_rows(out, b * t, heads * 3 * kv);
    return {dqkv, dbias, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

struct CrossAttentionFunction : torch::autograd::Function<CrossAttentionFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in, const torch::Tensor& kv_in,
                               int64_t heads, int64_t kv, const torch::Tensor& key_hidden) {
    const torch::Tensor q = q_in.contiguous(), kvt = kv_in.contiguous();
    const int64_t b = q.size(0), tq = q.size(1), tk = kvt.size(1), a = heads * kv;
    const float alpha = static_cast<float>(1.0 / std::sqrt(static_cast<double>(kv)));
    const torch::Tensor hidden = hidden_bytes(key_hidden);
    auto probs = torch::empty({b, heads, tq, tk});
    auto out = torch::empty({b, tq, a});
    float* kvd = kvt.data_ptr<float>();
    attention_forward({b, heads, tq, tk, kv}, HeadView{q.data_ptr<float>(), tq * a, kv, a},
                      HeadView{kvd, tk * 2 * a, 2 * kv, 2 * a}, HeadView{kvd + kv, tk * 2 * a, 2 * kv, 2 * a},
                      HeadView{out.data_ptr<float>(), tq * a, kv, a}, alpha,
                      hidden.defined() ? hidden.data_ptr<uint8_t>() : nullptr, false, probs.data_ptr<float>());
    ctx->save_for_backward({q, kvt, probs});
    ctx->saved_data["hidden"] = hidden.defined() ? hidden : torch::Tensor();
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["kv"] = kv;
    return out;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::cross_attention_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor q = saved[0], kvt = saved[1], probs = saved[2];
    const torch::Tensor hidden = ctx->saved_data["hidden"].toTensor();
    const int64_t heads = ctx->saved_data["heads"].toInt(), kv = ctx->saved_data["kv"].toInt();
    const int64_t b = q.size(0), tq = q.size(1), tk = kvt.size(1), a = heads * kv;
    const float alpha = static_cast<float>(1.0 / std::sqrt(static_cast<double>(kv)));
    const torch::Tensor g = grads[0].contiguous();
    auto dq = torch::empty_like(q), dkv = torch::empty_like(kvt);
    float* kvd = kvt.data_ptr<float>();
    float* dkvd = dkv.data_ptr<float>();
    attention_backward({b, heads, tq, tk, kv}, HeadView{q.data_ptr<float>(), tq * a, kv, a},
                       HeadView{kvd, tk * 2 * a, 2 * kv, 2 * a}, HeadView{kvd + kv, tk * 2 * a, 2 * kv, 2 * a},
                       HeadView{const_cast<float*>(g.data_ptr<float>()), tq * a, kv, a},
                       HeadView{dq.data_ptr<float>(), tq * a, kv, a}, HeadView{dkvd, tk * 2 * a, 2 * kv, 2 * a},
                       HeadView{dkvd + kv, tk * 2 * a, 2 * kv, 2 * a}, alpha,
                       hidden.defined() ? hidden.data_ptr<uint8_t>() : nullptr, false, probs.data_ptr<float>());
    return {dq, dkv, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// T5's attention on separately projected q [B, Tq, H*kv], k and v [B, Tk,
// H*kv] (heads side by side): scores scale * q k^T + position bias, hidden
// keys masked, softmax. The bias ([1 or B, H, Tq, Tk]) gets the scores'
// gradient, summed over the examples a shared bias serves.
struct BiasedAttentionFunction : torch::autograd::Function<BiasedAttentionFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in, const torch::Tensor& k_in,
                               const torch::Tensor& v_in, const torch::Tensor& bias_or_empty, int64_t heads,
                               int64_t kv, double scale, const torch::Tensor& key_hidden, bool causal) {
    const torch::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const int64_t b = q.size(0), tq = q.size(1), tk = k.size(1), a = heads * kv;
    if (q.dim() != 3 || q.size(2) != a || k.sizes() != v.sizes() || k.dim() != 3 || k.size(0) != b || k.size(2) != a) {
      throw Error("cpu autograd attention: q [B, Tq, H*kv] and k, v [B, Tk, H*kv] expected");
    }
    const torch::Tensor bias = empty_as_absent(bias_or_empty);
    torch::Tensor bias_data;
    if (bias.defined()) {
      require_float_cpu(bias, "position bias");
      if (bias.dim() != 4 || bias.size(1) != heads || bias.size(2) != tq || bias.size(3) != tk ||
          (bias.size(0) != 1 && bias.size(0) != b)) {
        throw Error("cpu autograd attention: position bias must be [1 or B, H, Tq, Tk]");
      }
      bias_data = bias.contiguous();
    }
    const torch::Tensor hidden = hidden_bytes(key_hidden);
    auto probs = torch::empty({b, heads, tq, tk});
    auto out = torch::empty({b, tq, a});
    auto view = [&](const torch::Tensor& x, int64_t t) { return HeadView{x.data_ptr<float>(), t * a, kv, a}; };
    const ScoreBias score_bias{bias_data.defined() ? bias_data.data_ptr<float>() : nullptr,
                               bias_data.defined() && bias_data.size(0) > 1 ? heads * tq * tk : 0};
    attention_forward({b, heads, tq, tk, kv}, view(q, tq), view(k, tk), view(v, tk), view(out, tq),
                      static_cast<float>(scale), hidden.defined() ? hidden.data_ptr<uint8_t>() : nullptr, causal,
                      probs.data_ptr<float>(), score_bias);
    ctx->save_for_backward({q, k, v, probs});
    ctx->saved_data["hidden"] = hidden.defined() ? hidden : torch::Tensor();
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["kv"] = kv;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["bias_batch"] = bias.defined() ? bias.size(0) : int64_t{0};
    return out;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::biased_attention_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor q = saved[0], k = saved[1], v = saved[2], probs = saved[3];
    const torch::Tensor hidden = ctx->saved_data["hidden"].toTensor();
    const int64_t heads = ctx->saved_data["heads"].toInt(), kv = ctx->saved_data["kv"].toInt();
    const int64_t bias_batch = ctx->saved_data["bias_batch"].toInt();
    const int64_t b = q.size(0), tq = q.size(1), tk = k.size(1), a = heads * kv;
    const torch::Tensor g = grads[0].contiguous();
    auto dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    const bool bias_grad = bias_batch > 0 && ctx->needs_input_grad(3);
    torch::Tensor d_scores = bias_grad ? torch::empty({b, heads, tq, tk}) : torch::Tensor();
    auto view = [&](const torch::Tensor& x, int64_t t) {
      return HeadView{const_cast<float*>(x.data_ptr<float>()), t * a, kv, a};
    };
    attention_backward({b, heads, tq, tk, kv}, view(q, tq), view(k, tk), view(v, tk), view(g, tq), view(dq, tq),
                       view(dk, tk), view(dv, tk), static_cast<float>(ctx->saved_data["scale"].toDouble()),
                       hidden.defined() ? hidden.data_ptr<uint8_t>() : nullptr, ctx->saved_data["causal"].toBool(),
                       probs.data_ptr<float>(), bias_grad ? d_scores.data_ptr<float>() : nullptr);
    torch::Tensor d_bias;
    if (bias_grad) d_bias = bias_batch == 1 && b > 1 ? d_scores.sum(0, /*keepdim=*/true) : d_scores;
    return {dq, dk, dv, d_bias, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// T5's RMS norm: y = w * x * inv, inv = 1 / sqrt(mean(x^2) + eps) per row.
// dx = inv (g w - xhat mean(g w xhat)), xhat = x inv; dw = sum over rows of
// g xhat (row blocks summed in a fixed order). inv is recomputed in
// backward by the forward's own function (one pass over x, no saved
// tensor).
struct RmsNormFunction : torch::autograd::Function<RmsNormFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& w, double eps) {
    const torch::Tensor x = x_in.contiguous();
    ctx->save_for_backward({x, w});
    ctx->saved_data["eps"] = eps;
    return rms_norm(x, w, eps);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::rms_norm_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor x = saved[0], w = saved[1].contiguous();
    const float eps = static_cast<float>(ctx->saved_data["eps"].toDouble());
    const torch::Tensor g = grads[0].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n;
    auto gx = torch::empty_like(x);
    const int64_t blocks = std::min(rows, kReductionBlocks);
    auto partial = torch::zeros({std::max<int64_t>(blocks, 1), n});
    const float* xs = x.data_ptr<float>();
    const float* wd = w.data_ptr<float>();
    const float* gs = g.data_ptr<float>();
    float* gxs = gx.data_ptr<float>();
    float* pd = partial.data_ptr<float>();
    parallel_for(blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t blk = begin; blk < end; ++blk) {
        for (int64_t r = blk * rows / blocks; r < (blk + 1) * rows / blocks; ++r) {
          rms_norm_backward_row(xs + r * n, gs + r * n, wd, n, rms_inverse(xs + r * n, n, eps), gxs + r * n,
                                pd + blk * n);
        }
      }
    });
    return {gx, partial.sum(0), torch::Tensor()};
  }
};

// act(gate) * up (or act(gate)): d_up = g act(gate), d_gate = g up act'(gate).
struct MlpActivationFunction : torch::autograd::Function<MlpActivationFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate, const torch::Tensor& up_or_empty,
                               int64_t activation) {
    const torch::Tensor up = empty_as_absent(up_or_empty);
    const auto kind = static_cast<FfnActivation>(activation);
    auto out = mlp_activation(gate, up, kind);
    ctx->save_for_backward({gate.contiguous(), up.defined() ? up.contiguous() : up_or_empty});
    ctx->saved_data["activation"] = activation;
    return out;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::mlp_activation_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor gate = saved[0], up = empty_as_absent(saved[1]);
    const auto kind = static_cast<FfnActivation>(ctx->saved_data["activation"].toInt());
    const torch::Tensor g = grads[0].contiguous();
    auto d_gate = torch::empty_like(gate);
    torch::Tensor d_up = up.defined() ? torch::empty_like(up) : torch::Tensor();
    const float* gd = gate.data_ptr<float>();
    const float* ud = up.defined() ? up.data_ptr<float>() : nullptr;
    const float* grad = g.data_ptr<float>();
    float* dg = d_gate.data_ptr<float>();
    float* du = up.defined() ? d_up.data_ptr<float>() : nullptr;
    parallel_for(gate.numel(), 65536, [&](int64_t begin, int64_t end) {
      mlp_activation_backward_row(kind, gd + begin, ud ? ud + begin : nullptr, grad + begin, end - begin, dg + begin,
                                  du ? du + begin : nullptr);
    });
    return {d_gate, d_up, torch::Tensor()};
  }
};

OPENBA_VECTOR_CLONES
float row_logsumexp(const float* row, int64_t n) {
  float max = row[0];
#pragma omp simd reduction(max : max)
  for (int64_t j = 0; j < n; ++j) max = row[j] > max ? row[j] : max;
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += fast_exp(row[j] - max);
  return max + std::log(sum);
}

OPENBA_VECTOR_CLONES
void softmax_minus(const float* row, float lse, float scale, int64_t n, float* out) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) out[j] = scale * fast_exp(row[j] - lse);
}

// logsumexp of row * scale (scale > 0).
OPENBA_VECTOR_CLONES
float row_logsumexp_scaled(const float* row, float scale, int64_t n) {
  float max = row[0];
#pragma omp simd reduction(max : max)
  for (int64_t j = 0; j < n; ++j) max = row[j] > max ? row[j] : max;
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += fast_exp((row[j] - max) * scale);
  return max * scale + std::log(sum);
}

// out = factor * exp(row * scale - lse).
OPENBA_VECTOR_CLONES
void softmax_scaled(const float* row, float scale, float lse, float factor, int64_t n, float* out) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) out[j] = factor * fast_exp(row[j] * scale - lse);
}

struct CrossEntropyFunction : torch::autograd::Function<CrossEntropyFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits_in, const torch::Tensor& targets_in) {
    const torch::Tensor logits = logits_in.contiguous();
    const torch::Tensor targets = targets_in.to(torch::kLong).contiguous();
    const int64_t n = logits.size(0), v = logits.size(1);
    auto nll = torch::empty({n});
    auto lse = torch::empty({n});
    const float* ld = logits.data_ptr<float>();
    const int64_t* td = targets.data_ptr<int64_t>();
    float* nd = nll.data_ptr<float>();
    float* sd = lse.data_ptr<float>();
    for (int64_t r = 0; r < n; ++r) {
      if (td[r] >= v || (td[r] < 0 && td[r] != -100)) {
        throw Error("cross entropy: target " + std::to_string(td[r]) + " outside [0, " + std::to_string(v) + ")");
      }
    }
    parallel_for(n, std::max<int64_t>(1, 65536 / v), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        sd[r] = row_logsumexp(ld + r * v, v);
        nd[r] = td[r] < 0 ? 0.0f : sd[r] - ld[r * v + td[r]];
      }
    });
    ctx->save_for_backward({logits, targets, lse});
    return nll;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::cross_entropy_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor logits = saved[0], targets = saved[1], lse = saved[2];
    const torch::Tensor g = grads[0].contiguous();
    const int64_t n = logits.size(0), v = logits.size(1);
    auto dl = torch::empty_like(logits);
    const float* ld = logits.data_ptr<float>();
    const int64_t* td = targets.data_ptr<int64_t>();
    const float* sd = lse.data_ptr<float>();
    const float* gd = g.data_ptr<float>();
    float* dd = dl.data_ptr<float>();
    parallel_for(n, std::max<int64_t>(1, 65536 / v), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        if (td[r] < 0) {
          std::fill(dd + r * v, dd + (r + 1) * v, 0.0f);
          continue;
        }
        softmax_minus(ld + r * v, sd[r], gd[r], v, dd + r * v);
        dd[r * v + td[r]] -= gd[r];
      }
    });
    return {dl, torch::Tensor()};
  }
};

// Per-row T^2 * KL(p || softmax(s / T)) for distillation, where p is the
// teacher's distribution over ids index[r] (all ids when index is empty).
// With q = softmax(s / T) and p normalized: KL = sum p log p - sum p (s_i / T)
// + logsumexp(s / T), and d KL / d s_j = (q_j - p_j) / T, so the row's
// gradient is g * T * (q - p), p scattered into the vocabulary.
struct DistillationFunction : torch::autograd::Function<DistillationFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits_in, const torch::Tensor& labels_in,
                               const torch::Tensor& probs_in, const torch::Tensor& index_in,
                               const torch::Tensor& neg_entropy_in, double temperature) {
    const torch::Tensor logits = logits_in.contiguous();
    const torch::Tensor labels = labels_in.to(torch::kLong).contiguous();
    const torch::Tensor probs = probs_in.contiguous(), neg_entropy = neg_entropy_in.contiguous();
    const torch::Tensor index = index_in.numel() ? index_in.to(torch::kLong).contiguous() : index_in;
    const int64_t n = logits.size(0), v = logits.size(1), k = probs.size(1);
    const bool all_ids = index.numel() == 0;
    if (probs.size(0) != n || (all_ids ? k != v : index.sizes() != probs.sizes())) {
      throw Error("distillation: teacher targets [" + std::to_string(probs.size(0)) + ", " + std::to_string(k) +
                  "] do not fit student logits [" + std::to_string(n) + ", " + std::to_string(v) + "]");
    }
    const float inv_t = static_cast<float>(1.0 / temperature);
    const float t2 = static_cast<float>(temperature * temperature);
    auto out = torch::empty({n});
    auto lse = torch::empty({n});
    const float* ld = logits.data_ptr<float>();
    const int64_t* yd = labels.data_ptr<int64_t>();
    const float* pd = probs.data_ptr<float>();
    const int64_t* id = all_ids ? nullptr : index.data_ptr<int64_t>();
    const float* hd = neg_entropy.data_ptr<float>();
    float* od = out.data_ptr<float>();
    float* sd = lse.data_ptr<float>();
    parallel_for(n, std::max<int64_t>(1, 65536 / v), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        if (yd[r] < 0) {
          od[r] = 0.0f;
          sd[r] = 0.0f;
          continue;
        }
        const float* row = ld + r * v;
        const float* p = pd + r * k;
        sd[r] = row_logsumexp_scaled(row, inv_t, v);
        float dot = 0;
        if (all_ids) {
#pragma omp simd reduction(+ : dot)
          for (int64_t j = 0; j < v; ++j) dot += p[j] * row[j];
        } else {
          const int64_t* ids = id + r * k;
          for (int64_t j = 0; j < k; ++j) dot += p[j] * row[ids[j]];
        }
        od[r] = t2 * (hd[r] - dot * inv_t + sd[r]);
      }
    });
    ctx->save_for_backward({logits, labels, probs, index, lse});
    ctx->saved_data["temperature"] = temperature;
    return out;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    RECORD_FUNCTION("openba::distillation_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor logits = saved[0], labels = saved[1], probs = saved[2], index = saved[3], lse = saved[4];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const float inv_t = static_cast<float>(1.0 / temperature);
    const torch::Tensor g = grads[0].contiguous();
    const int64_t n = logits.size(0), v = logits.size(1), k = probs.size(1);
    const bool all_ids = index.numel() == 0;
    auto dl = torch::empty_like(logits);
    const float* ld = logits.data_ptr<float>();
    const int64_t* yd = labels.data_ptr<int64_t>();
    const float* pd = probs.data_ptr<float>();
    const int64_t* id = all_ids ? nullptr : index.data_ptr<int64_t>();
    const float* sd = lse.data_ptr<float>();
    const float* gd = g.data_ptr<float>();
    float* dd = dl.data_ptr<float>();
    parallel_for(n, std::max<int64_t>(1, 65536 / v), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        float* d = dd + r * v;
        if (yd[r] < 0) {
          std::fill(d, d + v, 0.0f);
          continue;
        }
        const float scale = gd[r] * static_cast<float>(temperature);
        softmax_scaled(ld + r * v, inv_t, sd[r], scale, v, d);
        const float* p = pd + r * k;
        if (all_ids) {
#pragma omp simd
          for (int64_t j = 0; j < v; ++j) d[j] -= scale * p[j];
        } else {
          const int64_t* ids = id + r * k;
          for (int64_t j = 0; j < k; ++j) d[ids[j]] -= scale * p[j];
        }
      }
    });
    return {dl, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor linear_autograd(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  require_float_cpu(x, "linear input");
  if (!have_direct_sgemm()) return torch::nn::functional::linear(x, weight, bias);
  return LinearFunction::apply(x, weight, absent_as_empty(bias));
}

torch::Tensor layer_norm_autograd(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                  double eps) {
  require_float_cpu(x, "layer_norm input");
  return LayerNormFunction::apply(x, weight, bias, eps);
}

torch::Tensor swiglu_autograd(const torch::Tensor& h, int64_t ffn_hidden) {
  require_float_cpu(h, "swiglu input");
  return SwiGluFunction::apply(h, ffn_hidden);
}

torch::Tensor add_autograd(const torch::Tensor& x, const torch::Tensor& y) {
  require_float_cpu(x, "add input");
  return AddFunction::apply(x, y);
}

torch::Tensor self_attention_autograd(const torch::Tensor& qkv, const torch::Tensor& bias, int64_t heads,
                                      int64_t kv_channels, const torch::Tensor& cos, const torch::Tensor& sin,
                                      const torch::Tensor& key_hidden, bool causal) {
  require_float_cpu(qkv, "qkv");
  if (!have_direct_sgemm()) throw Error("cpu autograd attention needs a BLAS with sgemm_");
  return SelfAttentionFunction::apply(qkv, absent_as_empty(bias), heads, kv_channels, cos, sin,
                                      absent_as_empty(key_hidden), causal);
}

torch::Tensor cross_attention_autograd(const torch::Tensor& q, const torch::Tensor& kv, int64_t heads,
                                       int64_t kv_channels, const torch::Tensor& key_hidden) {
  require_float_cpu(q, "q");
  if (!have_direct_sgemm()) throw Error("cpu autograd attention needs a BLAS with sgemm_");
  return CrossAttentionFunction::apply(q, kv, heads, kv_channels, absent_as_empty(key_hidden));
}

torch::Tensor biased_attention_autograd(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        int64_t heads, int64_t kv_channels, const torch::Tensor& position_bias,
                                        const torch::Tensor& key_hidden, bool causal, double scale) {
  require_float_cpu(q, "q");
  require_float_cpu(k, "k");
  require_float_cpu(v, "v");
  if (!have_direct_sgemm()) throw Error("cpu autograd attention needs a BLAS with sgemm_");
  return BiasedAttentionFunction::apply(q, k, v, absent_as_empty(position_bias), heads, kv_channels, scale,
                                        absent_as_empty(key_hidden), causal);
}

torch::Tensor rms_norm_autograd(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  require_float_cpu(x, "rms_norm input");
  require_float_cpu(weight, "rms_norm weight");
  return RmsNormFunction::apply(x, weight, eps);
}

torch::Tensor mlp_activation_autograd(const torch::Tensor& gate, const torch::Tensor& up, FfnActivation activation) {
  require_float_cpu(gate, "mlp activation input");
  return MlpActivationFunction::apply(gate, absent_as_empty(up), static_cast<int64_t>(activation));
}

torch::Tensor cross_entropy_autograd(const torch::Tensor& logits, const torch::Tensor& targets) {
  require_float_cpu(logits, "logits");
  return CrossEntropyFunction::apply(logits, targets);
}

torch::Tensor distillation_autograd(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& probs,
                                   const torch::Tensor& index, const torch::Tensor& neg_entropy, double temperature) {
  require_float_cpu(logits, "logits");
  return DistillationFunction::apply(logits, labels, probs, absent_as_empty(index), neg_entropy, temperature);
}

}  // namespace openba::cpu

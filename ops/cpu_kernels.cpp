#include "ops/cpu_kernels.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <cmath>

#include "ops/activation_math.h"
#include "ops/blas.h"
#include "ops/cpu_kernel_support.h"
#include "ops/fast_math.h"
#include "ops/small_gemm.h"
#include "util/error.h"

namespace openba::cpu {
namespace {

// Query rows per attention block: 64 x Tk scores (64 KiB at Tk = 256) plus a
// head's keys and values fit in L2 together; whole 256 x 256 score blocks
// did not (measured: 2 threads were barely faster than 1).
constexpr int64_t kAttentionRowBlock = 64;

// Rows of at least this many elements per chunk keep pool overhead small.
int64_t row_grain(int64_t row_elems) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_elems)); }

// One head's q and k rotated (and q scaled), v copied, bias added on the way.
OPENBA_VECTOR_CLONES
void rotate_head(const float* x, const float* bias, const float* c, const float* s, int64_t kv,
                 float q_scale, float* qo, float* ko, float* vo) {
  const int64_t half = kv / 2;
  float tmp[3 * 256];  // kv <= 256 is checked by the caller
  const int64_t n = 3 * kv;
  if (bias) {
    for (int64_t i = 0; i < n; ++i) tmp[i] = x[i] + bias[i];
  } else {
    for (int64_t i = 0; i < n; ++i) tmp[i] = x[i];
  }
  const float* xq = tmp;
  const float* xk = tmp + kv;
  // x*cos + rotate_half(x)*sin, rotate_half(x) = [-x2, x1].
  for (int64_t i = 0; i < half; ++i) {
    qo[i] = (xq[i] * c[i] - xq[i + half] * s[i]) * q_scale;
    qo[i + half] = (xq[i + half] * c[i] + xq[i] * s[i]) * q_scale;
    ko[i] = xk[i] * c[i] - xk[i + half] * s[i];
    ko[i + half] = xk[i + half] * c[i] + xk[i] * s[i];
  }
  for (int64_t i = 0; i < kv; ++i) vo[i] = tmp[2 * kv + i];
}

// out = silu(gate) * up = gate * up / (1 + e^-gate).
OPENBA_VECTOR_CLONES
void swiglu_row(const float* gate, const float* up, int64_t n, float* out) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] * up[i] / (1.0f + fast_exp(-gate[i]));
}

// One query's scores against tk keys (rows `key_stride` apart) and the
// probability-weighted sum of the values: the attention of a decoding step.
// Loops, not sgemm_: its per-call cost exceeded this arithmetic (the 2 x B x H
// calls per attention took 17% of a batch-32 T5 decoding step, perf).
OPENBA_VECTOR_CLONES
void query_key_scores(const float* q, const float* keys, int64_t key_stride, int64_t tk, int64_t kv, float alpha,
                      float* scores) {
  for (int64_t j = 0; j < tk; ++j) {
    const float* key = keys + j * key_stride;
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < kv; ++c) dot += q[c] * key[c];
    scores[j] = alpha * dot;
  }
}

OPENBA_VECTOR_CLONES
void weighted_value_sum(const float* probs, const float* values, int64_t value_stride, int64_t tk, int64_t kv,
                        float* out) {
  for (int64_t c = 0; c < kv; ++c) out[c] = 0;
  for (int64_t j = 0; j < tk; ++j) {
    const float p = probs[j];
    const float* value = values + j * value_stride;
#pragma omp simd
    for (int64_t c = 0; c < kv; ++c) out[c] += p * value[c];
  }
}

// act(gate) * up (up null: act(gate)) over n elements.
OPENBA_VECTOR_CLONES
void mlp_activation_row(FfnActivation activation, const float* gate, const float* up, int64_t n, float* out) {
  namespace am = activation_math;
  // One loop per activation so each vectorizes on its own formula.
#define OPENBA_ACTIVATION_LOOP(f)                                         \
  if (up) {                                                               \
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) out[i] = f(gate[i]) * up[i]; \
  } else {                                                                \
    _Pragma("omp simd") for (int64_t i = 0; i < n; ++i) out[i] = f(gate[i]);         \
  }
  switch (activation) {
    case FfnActivation::kSilu: OPENBA_ACTIVATION_LOOP(am::silu) break;
    case FfnActivation::kRelu: OPENBA_ACTIVATION_LOOP(am::relu) break;
    case FfnActivation::kGeluTanh: OPENBA_ACTIVATION_LOOP(am::gelu_tanh) break;
    case FfnActivation::kGelu: OPENBA_ACTIVATION_LOOP(am::gelu_erf) break;
  }
#undef OPENBA_ACTIVATION_LOOP
}

OPENBA_VECTOR_CLONES
void layer_norm_row(const float* row, const float* w, const float* b, int64_t n, float eps, float* out) {
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += row[i];
  const float mean = sum / static_cast<float>(n);
  float sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t i = 0; i < n; ++i) {
    const float d = row[i] - mean;
    sq += d * d;
  }
  const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = (row[i] - mean) * rstd * w[i] + b[i];
}

}  // namespace

torch::Tensor linear(const torch::Tensor& x_in, const torch::Tensor& weight_in, const torch::Tensor& bias) {
  RECORD_FUNCTION("openba::linear", std::vector<c10::IValue>());
  require_float_cpu(x_in, "linear input");
  if (!have_direct_sgemm()) return torch::nn::functional::linear(x_in, weight_in, bias);
  const torch::Tensor x = x_in.contiguous();
  const torch::Tensor weight = weight_in.contiguous();
  const int64_t k = x.size(-1), n = weight.size(0), m = x.numel() / k;
  auto sizes = x.sizes().vec();
  sizes.back() = n;
  auto out = torch::empty(sizes, x.options());
  const float* xd = x.data_ptr<float>();
  const float* wd = weight.data_ptr<float>();
  const float* bd = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* od = out.data_ptr<float>();
  // Rows split once there are 128 per thread (columns below: few rows).
  const bool split_rows = m >= WorkerPool::instance().threads() * 128;
  for_each_gemm_part(m, n, split_rows, [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    if (r1 - r0 == 1) {
      // One row (a batch-1 decoding step): a matrix-vector product.
      sgemv_row_major(c1 - c0, k, wd + c0 * k, k, xd + r0 * k, od + r0 * n + c0);
    } else if (r1 - r0 <= kSmallGemmMaxRows && small_gemm_available()) {
      // A few rows (a batched decoding step): the weights read in place, unpacked.
      small_gemm_nt(r1 - r0, c1 - c0, k, xd + r0 * k, k, wd + c0 * k, k, od + r0 * n + c0, n);
    } else {
      sgemm_row_major(false, true, r1 - r0, c1 - c0, k, 1.0f, xd + r0 * k, k, wd + c0 * k, k, 0.0f, od + r0 * n + c0,
                      n);
    }
    if (bd) {
      for (int64_t r = r0; r < r1; ++r) add_row(od + r * n + c0, bd + c0, c1 - c0);
    }
  });
  return out;
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> split_qkv_rotary(
    const torch::Tensor& qkv_in, const torch::Tensor& bias_in, int64_t heads, int64_t kv,
    const torch::Tensor& cos_table, const torch::Tensor& sin_table, float q_scale) {
  RECORD_FUNCTION("openba::split_qkv_rotary", std::vector<c10::IValue>());
  require_float_cpu(qkv_in, "qkv");
  if (kv > 256 || kv % 2 != 0) throw Error("cpu kernel: kv_channels must be even and <= 256");
  const torch::Tensor qkv = qkv_in.contiguous();
  const torch::Tensor bias = bias_in.defined() ? bias_in.contiguous() : bias_in;
  const torch::Tensor cos_t = cos_table.contiguous(), sin_t = sin_table.contiguous();
  const int64_t b = qkv.size(0), t = qkv.size(1);
  auto q = torch::empty({b, heads, t, kv}, qkv.options());
  auto k = torch::empty_like(q);
  auto v = torch::empty_like(q);
  const float* src = qkv.data_ptr<float>();
  const float* bias_data = bias.defined() ? bias.data_ptr<float>() : nullptr;
  const float* cs = cos_t.data_ptr<float>();
  const float* sn = sin_t.data_ptr<float>();
  float* qd = q.data_ptr<float>();
  float* kd = k.data_ptr<float>();
  float* vd = v.data_ptr<float>();
  parallel_for(b * t, row_grain(heads * 3 * kv), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t bi = row / t, ti = row % t;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t dst = ((bi * heads + h) * t + ti) * kv;
        rotate_head(src + (row * heads + h) * 3 * kv, bias_data ? bias_data + h * 3 * kv : nullptr,
                    cs + ti * kv, sn + ti * kv, kv, q_scale, qd + dst, kd + dst, vd + dst);
      }
    }
  });
  return {q, k, v};
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& key_hidden_in, bool causal, double scale,
                        const torch::Tensor& position_bias_in) {
  RECORD_FUNCTION("openba::attention", std::vector<c10::IValue>());
  require_float_cpu(q, "q");
  require_float_cpu(k, "k");
  require_float_cpu(v, "v");
  const int64_t b = q.size(0), heads = q.size(1), tq = q.size(2), kv = q.size(3), tk = k.size(2);
  if (q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1) {
    throw Error("cpu kernel: attention inputs need unit stride in the channel dimension");
  }
  auto out = torch::empty({b, tq, heads * kv}, q.options());
  torch::Tensor key_hidden;  // uint8 [B, Tk] or undefined
  if (key_hidden_in.defined()) key_hidden = key_hidden_in.to(torch::kCPU, torch::kByte).contiguous();
  const uint8_t* hidden = key_hidden.defined() ? key_hidden.data_ptr<uint8_t>() : nullptr;
  torch::Tensor position_bias;  // float [1 or B, H, Tq, Tk] contiguous, or undefined
  if (position_bias_in.defined()) {
    position_bias = position_bias_in.to(torch::kFloat).contiguous();
    if (position_bias.dim() != 4 || position_bias.size(1) != heads || position_bias.size(2) != tq ||
        position_bias.size(3) != tk || (position_bias.size(0) != 1 && position_bias.size(0) != b)) {
      throw Error("cpu kernel: attention position bias must be [1 or B, H, Tq, Tk]");
    }
  }
  const float* pbias = position_bias.defined() ? position_bias.data_ptr<float>() : nullptr;
  const int64_t pbias_batch_stride = position_bias.defined() && position_bias.size(0) == b ? heads * tq * tk : 0;
  const float* qd = q.data_ptr<float>();
  const float* kd = k.data_ptr<float>();
  const float* vd = v.data_ptr<float>();
  float* od = out.data_ptr<float>();
  const bool direct = have_direct_sgemm();
  const float alpha = static_cast<float>(scale);

  // Many small GEMMs from the pool in parallel, each single-threaded. Query
  // rows go in blocks so a task's scores stay in L2 next to its keys/values.
  const int64_t block = std::min<int64_t>(tq, kAttentionRowBlock);
  SingleThreadedBlas single_threaded_blas;
  parallel_for(b * heads, 1, [&](int64_t begin, int64_t end) {
    auto scores = torch::empty({block, tk}, q.options());
    float* s = scores.data_ptr<float>();
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task / heads, h = task % heads;
      const float* kp = kd + bi * k.stride(0) + h * k.stride(1);
      const float* vp = vd + bi * v.stride(0) + h * v.stride(1);
      const uint8_t* row_hidden = hidden ? hidden + bi * tk : nullptr;
      for (int64_t i0 = 0; i0 < tq; i0 += block) {
        const int64_t rows = std::min(block, tq - i0);
        const float* qp = qd + bi * q.stride(0) + h * q.stride(1) + i0 * q.stride(2);
        float* op = od + (bi * tq + i0) * heads * kv + h * kv;
        if (rows == 1) {
          query_key_scores(qp, kp, k.stride(2), tk, kv, alpha, s);
        } else if (direct) {
          sgemm_row_major(false, true, rows, tk, kv, alpha, qp, q.stride(2), kp, k.stride(2), 0.0f, s, tk);
        } else {
          auto s_rows = scores.narrow(0, 0, rows);
          torch::mm_out(s_rows, q[bi][h].narrow(0, i0, rows), k[bi][h].t());
          if (scale != 1.0) s_rows.mul_(scale);
        }
        // Hidden keys (padding, then later positions) score -10000, as the reference.
        const float* bias_rows = pbias ? pbias + bi * pbias_batch_stride + (h * tq + i0) * tk : nullptr;
        for (int64_t i = 0; i < rows; ++i) {
          float* row = s + i * tk;
          if (bias_rows) add_row(row, bias_rows + i * tk, tk);
          if (row_hidden) {
            for (int64_t j = 0; j < tk; ++j) {
              if (row_hidden[j]) row[j] = kMaskedScoreFloat;
            }
          }
          if (causal) {
            for (int64_t j = i0 + i + 1; j < tk; ++j) row[j] = kMaskedScoreFloat;
          }
          softmax_row(row, tk);  // scores become probabilities in place
        }
        if (rows == 1) {
          weighted_value_sum(s, vp, v.stride(2), tk, kv, op);
        } else if (direct) {
          sgemm_row_major(false, false, rows, kv, tk, 1.0f, s, tk, vp, v.stride(2), 0.0f, op, heads * kv);
        } else {
          auto dst = out[bi].narrow(0, i0, rows).narrow(1, h * kv, kv);
          torch::mm_out(dst, scores.narrow(0, 0, rows), v[bi][h]);
        }
      }
    }
  });
  return out;
}

torch::Tensor layer_norm(const torch::Tensor& x_in, const torch::Tensor& weight,
                         const torch::Tensor& bias, double eps) {
  RECORD_FUNCTION("openba::layer_norm", std::vector<c10::IValue>());
  require_float_cpu(x_in, "layer_norm input");
  const torch::Tensor x = x_in.contiguous();
  auto y = torch::empty_like(x);
  const int64_t n = x.size(-1), rows = x.numel() / n;
  const float* xs = x.data_ptr<float>();
  const float* w = weight.data_ptr<float>();
  const float* bb = bias.data_ptr<float>();
  float* ys = y.data_ptr<float>();
  parallel_for(rows, row_grain(n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) layer_norm_row(xs + r * n, w, bb, n, static_cast<float>(eps), ys + r * n);
  });
  return y;
}

torch::Tensor rms_norm(const torch::Tensor& x_in, const torch::Tensor& weight, double eps) {
  RECORD_FUNCTION("openba::rms_norm", std::vector<c10::IValue>());
  require_float_cpu(x_in, "rms_norm input");
  require_float_cpu(weight, "rms_norm weight");
  const torch::Tensor x = x_in.contiguous();
  auto y = torch::empty_like(x);
  const int64_t n = x.size(-1), rows = x.numel() / n;
  const float* xs = x.data_ptr<float>();
  const float* w = weight.data_ptr<float>();
  float* ys = y.data_ptr<float>();
  parallel_for(rows, row_grain(n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = xs + r * n;
      float* yr = ys + r * n;
      const float inv = rms_inverse(xr, n, static_cast<float>(eps));
      for (int64_t j = 0; j < n; ++j) yr[j] = w[j] * (xr[j] * inv);
    }
  });
  return y;
}

torch::Tensor mlp_activation(const torch::Tensor& gate_in, const torch::Tensor& up_in, FfnActivation activation) {
  RECORD_FUNCTION("openba::mlp_activation", std::vector<c10::IValue>());
  require_float_cpu(gate_in, "mlp activation input");
  const torch::Tensor gate = gate_in.contiguous();
  const torch::Tensor up = up_in.defined() ? up_in.contiguous() : up_in;
  if (up.defined()) {
    require_float_cpu(up, "mlp activation up input");
    if (up.sizes() != gate.sizes()) throw Error("cpu kernel: mlp activation gate and up differ in shape");
  }
  auto out = torch::empty_like(gate);
  const int64_t n = gate.numel();
  const float* gd = gate.data_ptr<float>();
  const float* ud = up.defined() ? up.data_ptr<float>() : nullptr;
  float* od = out.data_ptr<float>();
  parallel_for(n, 65536, [&](int64_t begin, int64_t end) {
    mlp_activation_row(activation, gd + begin, ud ? ud + begin : nullptr, end - begin, od + begin);
  });
  return out;
}

torch::Tensor swiglu(const torch::Tensor& h_in, int64_t f) {
  RECORD_FUNCTION("openba::swiglu", std::vector<c10::IValue>());
  require_float_cpu(h_in, "swiglu input");
  const torch::Tensor h = h_in.contiguous();
  auto sizes = h.sizes().vec();
  sizes.back() = f;
  auto out = torch::empty(sizes, h.options());
  const int64_t rows = h.numel() / (2 * f);
  const float* hd = h.data_ptr<float>();
  float* od = out.data_ptr<float>();
  parallel_for(rows, row_grain(2 * f), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) swiglu_row(hd + r * 2 * f, hd + r * 2 * f + f, f, od + r * f);
  });
  return out;
}

void add_(torch::Tensor& x, const torch::Tensor& y) {
  RECORD_FUNCTION("openba::add_", std::vector<c10::IValue>());
  auto xf = x.view({-1});
  auto yf = y.contiguous().view({-1});
  parallel_for(xf.numel(), 65536, [&](int64_t begin, int64_t end) {
    xf.narrow(0, begin, end - begin).add_(yf.narrow(0, begin, end - begin));
  });
}

}  // namespace openba::cpu

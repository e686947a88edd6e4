// What the fused CPU kernels (cpu_kernels.cpp, cpu_autograd.cpp) share: the
// vector-clone attribute of their hot loops, the input check, the masked
// score, and the way a GEMM is split across the worker pool. Private to
// those two files.
#pragma once

#include <torch/types.h>

#include <string>

#include "ops/attention_inputs.h"
#include "ops/cpu_runtime.h"
#include "ops/fast_math.h"
#include "util/error.h"
#include "util/thread_pool.h"

// The build targets baseline x86-64 (SSE2) so binaries run anywhere; the hot
// loops get an AVX2+FMA clone picked at load time where the CPU has it.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OPENBA_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define OPENBA_VECTOR_CLONES
#endif

namespace openba::cpu {

constexpr float kMaskedScoreFloat = static_cast<float>(kMaskedScore);

// softmax over one row in place (hidden entries already hold
// kMaskedScoreFloat). Static: each kernel file gets its own vector clones.
OPENBA_VECTOR_CLONES
static void softmax_row(float* row, int64_t n) {
  float max = row[0];
#pragma omp simd reduction(max : max)
  for (int64_t j = 0; j < n; ++j) max = row[j] > max ? row[j] : max;
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    const float e = fast_exp(row[j] - max);
    row[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
}

// out += values over n elements (a bias on a GEMM block, a position bias on
// a score row).
OPENBA_VECTOR_CLONES
static void add_row(float* out, const float* values, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] += values[i];
}

// 1 / sqrt(mean(x^2) + eps) of one row (T5's RMS norm): the forward and
// its backward (which recomputes it rather than saving it) share this.
OPENBA_VECTOR_CLONES
static float rms_inverse(const float* row, int64_t n, float eps) {
  float squares = 0;
#pragma omp simd reduction(+ : squares)
  for (int64_t j = 0; j < n; ++j) squares += row[j] * row[j];
  return 1.0f / std::sqrt(squares / static_cast<float>(n) + eps);
}

inline void require_float_cpu(const torch::Tensor& t, const char* what) {
  if (!t.device().is_cpu() || t.scalar_type() != torch::kFloat) {
    throw Error(std::string("cpu kernel: ") + what + " must be a CPU float32 tensor");
  }
}

// Runs part(r0, r1, c0, c1) for one block of an m x n GEMM output per pool
// thread: blocks of rows when by_rows, else of columns (for few rows), each
// thread's BLAS single-threaded. Empty blocks are skipped. Where to split is
// the caller's measured choice (forward and backward GEMMs differ).
template <class Part>
void for_each_gemm_part(int64_t m, int64_t n, bool by_rows, Part&& part) {
  const int64_t threads = WorkerPool::instance().threads();
  SingleThreadedBlas single_threaded_blas;
  parallel_for(threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      if (by_rows) {
        const int64_t r0 = p * m / threads, r1 = (p + 1) * m / threads;
        if (r1 > r0) part(r0, r1, int64_t{0}, n);
      } else {
        const int64_t c0 = p * n / threads, c1 = (p + 1) * n / threads;
        if (c1 > c0) part(int64_t{0}, m, c0, c1);
      }
    }
  });
}

}  // namespace openba::cpu

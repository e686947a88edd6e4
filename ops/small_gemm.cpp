#include "ops/small_gemm.h"

#include <immintrin.h>

namespace openba::cpu {
namespace {

#if defined(__x86_64__) && defined(__GNUC__)
#define OPENBA_AVX512 __attribute__((target("avx512f")))

// y[R, C] for R rows of x and C rows of w: R*C accumulators of 16 lanes over
// k (R = 6, C = 4: 24 of the 32 zmm registers, 10 loads per 24 FMAs), the
// tail of k masked, each accumulator reduced once at the end.
template <int R, int C>
OPENBA_AVX512 void block(int64_t k, const float* x, int64_t ldx, const float* w, int64_t ldw, float* y, int64_t ldy) {
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  int64_t kk = 0;
  for (; kk + 16 <= k; kk += 16) {
    __m512 wv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) wv[c] = _mm512_loadu_ps(w + c * ldw + kk);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 xv = _mm512_loadu_ps(x + r * ldx + kk);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  if (kk < k) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (k - kk)) - 1u);
    __m512 wv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) wv[c] = _mm512_maskz_loadu_ps(mask, w + c * ldw + kk);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + r * ldx + kk);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) y[r * ldy + c] = _mm512_reduce_add_ps(acc[r][c]);
  }
}

constexpr int kRows = 6, kCols = 4;

// Every row of x against C rows of w, in blocks of kRows rows.
template <int C>
OPENBA_AVX512 void column_block(int64_t m, int64_t k, const float* x, int64_t ldx, const float* w, int64_t ldw,
                                float* y, int64_t ldy) {
  int64_t r = 0;
  for (; r + kRows <= m; r += kRows) block<kRows, C>(k, x + r * ldx, ldx, w, ldw, y + r * ldy, ldy);
  const float* xr = x + r * ldx;
  float* yr = y + r * ldy;
  switch (m - r) {
    case 5: block<5, C>(k, xr, ldx, w, ldw, yr, ldy); break;
    case 4: block<4, C>(k, xr, ldx, w, ldw, yr, ldy); break;
    case 3: block<3, C>(k, xr, ldx, w, ldw, yr, ldy); break;
    case 2: block<2, C>(k, xr, ldx, w, ldw, yr, ldy); break;
    case 1: block<1, C>(k, xr, ldx, w, ldw, yr, ldy); break;
    default: break;
  }
}

OPENBA_AVX512 void small_gemm_avx512(int64_t m, int64_t n, int64_t k, const float* x, int64_t ldx, const float* w,
                                     int64_t ldw, float* y, int64_t ldy) {
  int64_t c = 0;
  for (; c + kCols <= n; c += kCols) column_block<kCols>(m, k, x, ldx, w + c * ldw, ldw, y + c, ldy);
  for (; c < n; ++c) column_block<1>(m, k, x, ldx, w + c * ldw, ldw, y + c, ldy);
}

bool cpu_has_avx512() { return __builtin_cpu_supports("avx512f"); }
#else
void small_gemm_avx512(int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t) {}
bool cpu_has_avx512() { return false; }
#endif

}  // namespace

bool small_gemm_available() {
  static const bool available = cpu_has_avx512();
  return available;
}

void small_gemm_nt(int64_t m, int64_t n, int64_t k, const float* x, int64_t ldx, const float* w, int64_t ldw,
                   float* y, int64_t ldy) {
  small_gemm_avx512(m, n, k, x, ldx, w, ldw, y, ldy);
}

}  // namespace openba::cpu

// A branch-free float exp that compilers vectorize (LibTorch's vectorized exp
// is not reachable from our kernels). Cody-Waite range reduction x = n ln2 + r,
// |r| <= ln2/2, then a degree-6 polynomial for e^r and 2^n by exponent bits.
// Relative error below 2e-7 on [-87, 88]; x < -87.3 gives exactly 0 (as the
// true value underflows in fp32 softmax terms) and x > 88.7 is clamped.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace openba {

// Forced inline: a loop that calls it out of line does not vectorize, and
// GCC declined to inline it into mlp_activation_row's per-activation loops
// (one call per element: ~10 ns each, 6% of a T5 decoding step, perf).
#define OPENBA_ALWAYS_INLINE inline __attribute__((always_inline))

OPENBA_ALWAYS_INLINE float fast_exp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  // Written without branches or libm calls so the loops around it vectorize.
  const float keep = x < -87.3f ? 0.0f : 1.0f;
  x = x > 88.7f ? 88.7f : x;
  x = x < -87.3f ? -87.3f : x;
  const float n = (x * kLog2e + kRound) - kRound;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  // e^r on [-ln2/2, ln2/2] (Taylor coefficients, Horner form).
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale * keep;
}

}  // namespace openba

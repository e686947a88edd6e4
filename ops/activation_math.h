// The MLP activations (ops/activation.h) and their derivatives as scalar
// float formulas, written without branches or libm calls (fast_exp) so that
// the kernels' loops around them vectorize. One place for the math of the
// fused CPU forward (cpu_kernels.cpp) and its backward (cpu_autograd.cpp).
//
// Accuracy against ATen's own activations (tests/test_cpu_kernels.cpp):
// silu and gelu_new within a few float ulps of the result (fast_exp's
// relative error is below 2e-7); gelu (erf) uses std::erf and is not
// vectorized (no T5 or OpenBA config uses it in a hot path).
#pragma once

#include <cmath>

#include "ops/fast_math.h"

namespace openba::activation_math {

// tanh(u) = 1 - 2 / (1 + e^(2u)): exact limits +-1 where e^(2u) saturates or
// underflows; the absolute error near 0 (~1e-7) is what gelu_new adds to 1.
OPENBA_ALWAYS_INLINE float tanh_approx(float u) { return 1.0f - 2.0f / (1.0f + fast_exp(2.0f * u)); }

OPENBA_ALWAYS_INLINE float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

OPENBA_ALWAYS_INLINE float silu(float x) { return x * sigmoid(x); }
OPENBA_ALWAYS_INLINE float silu_grad(float x) {
  const float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

OPENBA_ALWAYS_INLINE float relu(float x) { return x > 0.0f ? x : 0.0f; }
OPENBA_ALWAYS_INLINE float relu_grad(float x) { return x > 0.0f ? 1.0f : 0.0f; }

// gelu_new / gelu(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
OPENBA_ALWAYS_INLINE float gelu_tanh(float x) {
  const float t = tanh_approx(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
  return 0.5f * x * (1.0f + t);
}
OPENBA_ALWAYS_INLINE float gelu_tanh_grad(float x) {
  const float t = tanh_approx(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
}

// gelu (erf): 0.5 x (1 + erf(x / sqrt 2)).
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
OPENBA_ALWAYS_INLINE float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2)); }
OPENBA_ALWAYS_INLINE float gelu_erf_grad(float x) {
  return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * fast_exp(-0.5f * x * x);
}

}  // namespace openba::activation_math

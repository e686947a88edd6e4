// y = x w^T for a few rows of x: the GEMMs of a decoding step, where x is
// the batch's one new position per row and w a weight matrix read from
// memory once per step. sgemm_ packs all of w before it multiplies (in a
// batch-32 T5 decoding step OpenBLAS spent 21% of the time in its packing
// routine, against 31% in its kernel, perf); this kernel reads w in place,
// a block of weight rows at a time, against register-blocked rows of x.
//
// AVX-512 only (checked at run time); small_gemm_available() false means
// the caller keeps sgemm_. Sums run in a different order than sgemm_'s:
// results agree to float rounding (tests/test_cpu_kernels.cpp).
#pragma once

#include <cstdint>

namespace openba::cpu {

// Rows up to which small_gemm_nt beats sgemm_ (bench/run_generate_bench.py's
// shapes; measured in ops/small_gemm.cpp).
constexpr int64_t kSmallGemmMaxRows = 32;

bool small_gemm_available();

// Row-major y[m, n] = x[m, k] w[n, k]^T (ldx, ldw, ldy: row strides).
// Single-threaded; the caller splits columns across threads.
void small_gemm_nt(int64_t m, int64_t n, int64_t k, const float* x, int64_t ldx, const float* w, int64_t ldw,
                   float* y, int64_t ldy);

}  // namespace openba::cpu

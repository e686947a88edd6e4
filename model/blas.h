// Direct calls into the process's BLAS for the many small GEMMs of the CPU
// attention kernel, where ATen's per-call dispatch would cost as much as the
// arithmetic. The symbol (sgemm_) is looked up at run time in the BLAS that
// LibTorch already loaded; when absent, callers fall back to ATen.
#pragma once

namespace openba {

bool have_direct_sgemm();

// Row-major C[m, n] = alpha * op(A) op(B) + beta * C, op = transpose when
// the flag is set; lda/ldb/ldc are row strides. Single call of sgemm_.
void sgemm_row_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                     int lda, const float* b, int ldb, float beta, float* c, int ldc);

}  // namespace openba

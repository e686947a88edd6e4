// Direct calls into a BLAS for the GEMMs of the CPU kernels, where ATen's
// per-call dispatch would cost as much as the arithmetic (the many small
// GEMMs of attention) and where the worker pool splits one GEMM itself.
//
// Which BLAS: OpenBLAS (Debian's libopenblas0-pthread, dlopen'ed privately)
// when it loads, else the sgemm_ LibTorch already carries (the PyPI wheel's
// MKL). Measured on these AMD EPYC cores, one thread, fp32, idle machine
// (bench/run_blas_bench.py): OpenBLAS 1.03-1.39x MKL on the 117M config's
// GEMM shapes (97 vs 70 GFLOP/s at 512x768x2304), and the gap grew to ~2x
// with the other core busy. OPENBA_BLAS=openblas|torch forces one (an error when the
// named one is absent). ATen's own GEMMs keep LibTorch's BLAS.
#pragma once

#include <string>

namespace openba {

bool have_direct_sgemm();
// "openblas", "torch" (LibTorch's sgemm_, e.g. MKL) or "none".
const char* direct_blas_name();
// The name and, for OpenBLAS, the kernels it dispatched to and the
// OPENBLAS_CORETYPE that pinned them, e.g. "openblas Haswell kernels,
// OPENBLAS_CORETYPE=Haswell" (benchmarks print it: on the AMD EPYC cores
// here the pinned Haswell sgemm runs at about half the Cooperlake one).
std::string direct_blas_description();

// Row-major C[m, n] = alpha * op(A) op(B) + beta * C, op = transpose when
// the flag is set; lda/ldb/ldc are row strides. Single call of sgemm_.
void sgemm_row_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                     int lda, const float* b, int ldb, float beta, float* c, int ldc);

// Row-major y[n] = A[n, k] x[k] (lda: A's row stride): sgemv_, which reads
// A once, where sgemm_ would first pack all of it (OpenBLAS: 35% of a
// batch-1 decoding step went to packing the weights, perf, t5-v1.1-small
// shape); sgemm_ when the BLAS has no sgemv_.
void sgemv_row_major(int n, int k, const float* a, int lda, const float* x, float* y);

// Threads of the direct BLAS: -1 when it cannot tell. For MKL this is the
// calling thread's count (mkl_set_num_threads_local).
int direct_blas_threads();
void set_direct_blas_threads(int threads);  // no-op when it cannot be controlled

}  // namespace openba

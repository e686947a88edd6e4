// CPU threading for the whole process: all parallel work goes through one
// pool whose threads wait passively (openba::WorkerPool). LibTorch's OpenMP
// pool is kept at one thread (its workers spin after every parallel region,
// stealing the cores the next GEMM needs: ~1.45x on the eval forward; this
// also keeps the wheel's MKL single-threaded), and the direct BLAS
// (ops/blas.h) runs single-threaded (OpenBLAS's idle workers poll for ~0.1 s after
// each call, which made the attention that follows a GEMM take up to 2x
// longer); our kernels split GEMMs across the pool instead (cpu::linear).
// Autograd paths that rely on ATen's GEMMs get BLAS threads back with
// ScopedBlasThreads.
#pragma once

namespace openba {

// Sets the worker pool to `threads` (0 = all cores), LibTorch's intra-op
// threads and BLAS threads to 1, and installs the caching CPU allocator
// (ops/cpu_allocator.h) holding at most OPENBA_CPU_CACHE_MB (default 2048)
// MiB of freed blocks for reuse.
void configure_cpu_runtime(int threads);

// Thread count of the BLAS the CPU kernels call (ops/blas.h); -1 when unknown.
int blas_threads();
// No-op when the BLAS cannot be controlled.
void set_blas_threads(int threads);

// The configured thread count (what configure_cpu_runtime was given).
int cpu_threads();

// Runs a scope with BLAS at `threads` threads, restoring the previous count.
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int threads);
  ~ScopedBlasThreads();
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  int previous_;
};

// Runs a scope with BLAS single-threaded (many small GEMMs issued from the
// worker pool in parallel), restoring the previous count afterwards.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int previous_;
};

}  // namespace openba

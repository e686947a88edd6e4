// CPU threading for the whole process. LibTorch's own OpenMP pool is kept at
// one thread: its workers spin after every parallel region and steal the
// cores OpenBLAS needs for the next GEMM. Instead, large GEMMs use OpenBLAS's
// threads and our kernels use openba::WorkerPool (passive waits).
#pragma once

namespace openba {

// Sets BLAS and worker-pool threads to `threads` (0 = all cores),
// LibTorch's intra-op threads to 1, and installs the caching CPU allocator
// (model/cpu_allocator.h) holding at most OPENBA_CPU_CACHE_MB (default 2048)
// MiB of freed blocks for reuse.
void configure_cpu_runtime(int threads);

// OpenBLAS thread count when the process's BLAS is OpenBLAS; -1 otherwise.
int blas_threads();
// No-op when the BLAS cannot be controlled.
void set_blas_threads(int threads);

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

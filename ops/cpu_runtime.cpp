#include "ops/cpu_runtime.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "ops/blas.h"
#include "ops/cpu_allocator.h"
#include "util/thread_pool.h"

namespace openba {

int blas_threads() { return direct_blas_threads(); }

void set_blas_threads(int threads) { set_direct_blas_threads(threads); }

namespace {
int configured_threads = 1;  // set by configure_cpu_runtime
}  // namespace

int cpu_threads() { return configured_threads; }

void configure_cpu_runtime(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  configured_threads = threads;
  at::set_num_threads(1);
  set_blas_threads(1);
  WorkerPool::instance().set_threads(threads);
  uint64_t cache_mb = 2048;
  if (const char* env = std::getenv("OPENBA_CPU_CACHE_MB")) cache_mb = std::strtoull(env, nullptr, 10);
  install_caching_cpu_allocator(cache_mb << 20);
}

ScopedBlasThreads::ScopedBlasThreads(int threads) : previous_(blas_threads()) {
  if (previous_ > 0 && previous_ != threads) set_blas_threads(threads);
}

ScopedBlasThreads::~ScopedBlasThreads() {
  if (previous_ > 0 && blas_threads() != previous_) set_blas_threads(previous_);
}

SingleThreadedBlas::SingleThreadedBlas() : previous_(blas_threads()) {
  if (previous_ > 1) set_blas_threads(1);
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (previous_ > 1) set_blas_threads(previous_);
}

}  // namespace openba

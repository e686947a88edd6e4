// A fixed pool of worker threads that wait on condition variables between
// jobs after a short spin (kSpinMicroseconds). Used for CPU kernels instead
// of LibTorch's OpenMP pool, whose threads spin after every parallel region
// (200 us by default) and steal the cores that OpenBLAS needs for the next
// GEMM (measured: ~1.45x on the eval forward). The short spin is for
// decoding, whose steps issue a job every few tens of microseconds: each
// futex wake-up cost ~5-10 us there (the kernel's scheduler took ~19% of a
// batch-1 decoding run, perf).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace openba {

class WorkerPool {
 public:
  // The process-wide pool (starts with one thread: the caller only).
  static WorkerPool& instance();

  // Total threads including the caller; 0 = hardware concurrency.
  void set_threads(int threads);
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) in chunks of at least `grain`, on the
  // workers and the calling thread; returns when all chunks are done. The
  // first exception thrown by fn is rethrown here. Nested calls from inside
  // fn run inline; calls from several outside threads take turns.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  ~WorkerPool();

 private:
  WorkerPool() = default;
  void worker_loop();
  void run_chunks();
  void stop_workers();

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one job at a time when several threads call in
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // The current job.
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t chunk_ = 1;
  int64_t next_ = 0;
  // Written under mutex_; atomic so that the spin reads it without the lock.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> pending_chunks_{0};
  bool stopping_ = false;
  std::exception_ptr error_;
};

// Convenience: WorkerPool::instance().parallel_for(...).
inline void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  WorkerPool::instance().parallel_for(n, grain, fn);
}

}  // namespace openba

#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace openba {
namespace {
thread_local bool inside_job = false;

// How long a waiting thread polls before it blocks.
constexpr auto kSpin = std::chrono::microseconds(50);

// Polls `done` for up to kSpin; true when it became true.
template <class Done>
bool spin_until(Done&& done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  while (!done()) {
    for (int i = 0; i < 16; ++i) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    if (std::chrono::steady_clock::now() >= until) return done();
  }
  return true;
}
}  // namespace

WorkerPool& WorkerPool::instance() {
  static WorkerPool pool;
  return pool;
}

WorkerPool::~WorkerPool() { stop_workers(); }

void WorkerPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  stopping_ = false;
}

void WorkerPool::set_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads == this->threads()) return;
  stop_workers();
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void WorkerPool::worker_loop() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    lock.unlock();
    spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
    lock.lock();
    wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    lock.unlock();
    run_chunks();
    lock.lock();
  }
}

// Takes chunks of the current job until none are left.
void WorkerPool::run_chunks() {
  inside_job = true;
  while (true) {
    int64_t begin;
    const std::function<void(int64_t, int64_t)>* job;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!job_ || next_ >= job_n_) break;
      begin = next_;
      next_ += chunk_;
      job = job_;
    }
    const int64_t end = std::min(begin + chunk_, job_n_);
    try {
      (*job)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (--pending_chunks_ == 0) done_.notify_all();
  }
  inside_job = false;
}

void WorkerPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || inside_job || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> one_job(call_mutex_);
  // A few chunks per thread balances uneven work without much locking.
  const int64_t target_chunks = static_cast<int64_t>(threads()) * 4;
  const int64_t chunk = std::max(grain, (n + target_chunks - 1) / target_chunks);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    chunk_ = chunk;
    next_ = 0;
    pending_chunks_ = (n + chunk - 1) / chunk;
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  run_chunks();
  spin_until([&] { return pending_chunks_.load(std::memory_order_acquire) == 0; });
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_chunks_ == 0; });
    job_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace openba

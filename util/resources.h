// Process resource figures reported by tools and benchmarks.
#pragma once

#include <chrono>
#include <cstdint>

namespace openba {

// Peak resident set size of this process so far (VmHWM), in bytes.
uint64_t peak_rss_bytes();
// Current resident set size (VmRSS), in bytes.
uint64_t current_rss_bytes();

// Wall-clock stopwatch.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void reset() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace openba

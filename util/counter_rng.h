// A small deterministic generator seeded from a counter-based hash, for
// randomness that must be a pure function of (seed, example index): each
// example seeds its own CounterRng, so examples can be produced in any order,
// on any rank, and resumed anywhere.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "util/counter_random.h"

namespace openba {

class CounterRng {
 public:
  CounterRng(uint64_t seed, uint64_t stream, uint64_t counter) : state_(counter_hash(seed, stream, counter)) {}
  uint64_t next() {  // splitmix64
    state_ += 0x9e3779b97f4a7c15ull;
    return mix64(state_);
  }
  // Uniform integer in [0, n) (n > 0), without modulo bias.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do {
      v = next();
    } while (v >= limit);
    return v % n;
  }
  // Uniform integer in [lo, hi].
  int64_t between(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1))); }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t state_;
};

}  // namespace openba

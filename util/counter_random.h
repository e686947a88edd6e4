// Counter-based randomness: a value is a pure function of (seed, counter),
// so data streams can be resumed at any position and do not depend on
// thread count or draw order (splitmix64 finalizer).
#pragma once

#include <cstdint>

namespace openba {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A 64-bit value for (seed, stream, counter).
inline uint64_t counter_hash(uint64_t seed, uint64_t stream, uint64_t counter) {
  return mix64(mix64(seed + 0x9e3779b97f4a7c15ull * (stream + 1)) ^ (counter * 0xd1b54a32d192ed03ull));
}

// Uniform in [0, 1) with 53 bits.
inline double counter_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  return static_cast<double>(counter_hash(seed, stream, counter) >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace openba

// Statistics of a token shard set: document lengths and token frequencies
// (the full frequency table feeds vocabulary pruning).
#pragma once

#include <cstdint>
#include <vector>

namespace openba {

class ShardSet;

struct TokenStats {
  uint64_t documents = 0;
  uint64_t tokens = 0;
  std::vector<uint64_t> counts;         // per token id, size = vocab_size
  std::vector<uint32_t> lengths;        // tokens per document, in document order
  // Length at the given percentile (0..100), nearest-rank.
  uint32_t length_percentile(double p) const;
};

// Reads every token once (parallel over documents on the worker pool);
// an id outside the vocabulary is an error naming the document.
TokenStats compute_token_stats(const ShardSet& shards);

}  // namespace openba

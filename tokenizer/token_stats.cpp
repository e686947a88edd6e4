#include "tokenizer/token_stats.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "tokenizer/shard_reader.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace openba {

uint32_t TokenStats::length_percentile(double p) const {
  if (lengths.empty()) return 0;
  std::vector<uint32_t> sorted = lengths;
  std::sort(sorted.begin(), sorted.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  const size_t index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

TokenStats compute_token_stats(const ShardSet& shards) {
  TokenStats stats;
  stats.documents = shards.documents();
  stats.tokens = shards.tokens();
  stats.counts.assign(static_cast<size_t>(shards.vocab_size()), 0);
  stats.lengths.resize(shards.documents());
  std::mutex merge;
  const int vocab = shards.vocab_size();
  parallel_for(static_cast<int64_t>(shards.documents()), 256, [&](int64_t begin, int64_t end) {
    std::vector<uint64_t> local(static_cast<size_t>(vocab), 0);
    for (int64_t d = begin; d < end; ++d) {
      const TokenView doc = shards.document(static_cast<uint64_t>(d));
      stats.lengths[d] = static_cast<uint32_t>(doc.size());
      for (size_t i = 0; i < doc.size(); ++i) {
        const int32_t id = doc[i];
        if (id < 0 || id >= vocab) {
          throw Error(shards.dir() + ": document " + std::to_string(d) + " holds token id " + std::to_string(id) +
                      " outside the vocabulary [0, " + std::to_string(vocab) + ")");
        }
        ++local[static_cast<size_t>(id)];
      }
    }
    std::lock_guard<std::mutex> lock(merge);
    for (size_t i = 0; i < local.size(); ++i) stats.counts[i] += local[i];
  });
  return stats;
}

}  // namespace openba

// bench_shards: reading a token shard set sequentially (every document in
// order) against random access (every document once, in a random order) and
// random fixed-size token ranges, in tokens/s measured in one run.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "tokenizer/shard_reader.h"
#include "tools/cli_common.h"
#include "util/counter_random.h"
#include "util/resources.h"

int main(int argc, char** argv) {
  return openba::run_tool("bench_shards", [&] {
    CLI::App app{"Sequential vs random reading of token shards."};
    std::string dir;
    int repeats = 3;
    uint64_t range = 512;
    app.add_option("shards", dir, "shard directory")->required();
    app.add_option("--repeats", repeats, "passes of each kind (best is reported)");
    app.add_option("--range", range, "tokens per random range read");
    openba::parse_command_line(app, argc, argv);

    const openba::ShardSet shards = openba::ShardSet::open(dir);
    const uint64_t docs = shards.documents();
    std::vector<uint64_t> order(docs);
    std::iota(order.begin(), order.end(), 0);
    for (uint64_t i = docs; i > 1; --i) std::swap(order[i - 1], order[openba::counter_hash(7, 0, i) % i]);
    std::vector<int32_t> buffer;
    int64_t checksum = 0;
    auto read_docs = [&](bool random) {
      openba::Stopwatch clock;
      for (uint64_t k = 0; k < docs; ++k) {
        const auto doc = shards.document(random ? order[k] : k);
        buffer.resize(doc.size());
        doc.copy_to(buffer.data());
        checksum += buffer[buffer.size() / 2];
      }
      return static_cast<double>(shards.tokens()) / clock.seconds();
    };
    auto read_ranges = [&] {
      const uint64_t n = shards.tokens() / range;
      buffer.resize(range);
      openba::Stopwatch clock;
      for (uint64_t k = 0; k < n; ++k) {
        shards.read_tokens(openba::counter_hash(11, 0, k) % (shards.tokens() - range), range, buffer.data());
        checksum += buffer[range / 2];
      }
      return static_cast<double>(n * range) / clock.seconds();
    };
    double sequential = 0, random = 0, ranges = 0;
    for (int r = 0; r < repeats; ++r) {
      sequential = std::max(sequential, read_docs(false));
      random = std::max(random, read_docs(true));
      ranges = std::max(ranges, read_ranges());
    }
    nlohmann::ordered_json out;
    out["shards"] = dir;
    out["documents"] = docs;
    out["tokens"] = shards.tokens();
    out["sequential_tokens_per_s"] = sequential;
    out["random_document_tokens_per_s"] = random;
    out["random_range_tokens_per_s"] = ranges;
    out["random_over_sequential"] = random / sequential;
    out["checksum"] = checksum;
    std::printf("%s\n", out.dump().c_str());
    return 0;
  });
}

// bench_ul2: UL2 example generation on one core (what each data-loading
// thread of openba-pretrain does): examples 0..N-1 of the stream with
// OpenBA's seven denoisers, in examples/s and tokens/s (encoder input +
// decoder target tokens produced). Prints one JSON line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "tokenizer/layout.h"
#include "tokenizer/shard_reader.h"
#include "tools/cli_common.h"
#include "train/ul2_stream.h"
#include "util/resources.h"

int main(int argc, char** argv) {
  return openba::run_tool("bench_ul2", [&] {
    CLI::App app{"UL2 example generation throughput on one core."};
    std::string shards_dir, tokenizer_dir;
    int64_t enc = 570, dec = 381;
    uint64_t examples = 20000;
    int repeats = 3;
    app.add_option("--shards", shards_dir, "token shard directory")->required();
    app.add_option("--tokenizer", tokenizer_dir, "tokenizer directory (spiece.model)")->required();
    app.add_option("--enc", enc, "encoder token budget");
    app.add_option("--dec", dec, "decoder token budget");
    app.add_option("--examples", examples, "examples per pass");
    app.add_option("--repeats", repeats, "passes (the best is reported)");
    openba::parse_command_line(app, argc, argv);

    const auto tokenizer = openba::TokenizerLayout::load(tokenizer_dir);
    auto mixture = std::make_shared<openba::ShardMixture>(
        std::vector<openba::ShardMixture::Source>{
            {std::make_shared<openba::ShardSet>(openba::ShardSet::open(shards_dir)), 1.0}});
    openba::Ul2Options options;
    options.encoder_tokens = enc;
    options.decoder_tokens = dec;
    const openba::Ul2Stream stream(mixture, tokenizer, options);
    const std::vector<double> weights = stream.initial_weights();

    double best = 1e30;
    uint64_t tokens = 0, padding = 0;
    for (int r = 0; r < repeats; ++r) {
      tokens = padding = 0;
      openba::Stopwatch clock;
      for (uint64_t i = 0; i < examples; ++i) {
        const openba::Ul2Example e = stream.example(i, weights);
        tokens += e.input_ids.size() + e.labels.size();
        padding += static_cast<uint64_t>(enc + dec) - e.input_ids.size() - e.labels.size();
      }
      best = std::min(best, clock.seconds());
    }
    nlohmann::ordered_json out;
    out["encoder_tokens"] = enc;
    out["decoder_tokens"] = dec;
    out["examples"] = examples;
    out["seconds"] = best;
    out["examples_per_s"] = static_cast<double>(examples) / best;
    out["tokens_per_s"] = static_cast<double>(tokens) / best;
    out["padding_fraction"] = static_cast<double>(padding) / static_cast<double>(tokens + padding);
    std::printf("%s\n", out.dump().c_str());
    return 0;
  });
}

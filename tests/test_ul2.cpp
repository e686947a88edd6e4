// UL2 denoisers and the example stream, against hand computations and the
// invariants of the T5 algorithm.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "tests/test_util.h"
#include "tokenizer/layout.h"
#include "tokenizer/shard_reader.h"
#include "tokenizer/shard_writer.h"
#include "train/denoiser.h"
#include "train/ul2_stream.h"
#include "util/counter_rng.h"
#include "util/error.h"

using Catch::Matchers::Contains;
using openba::test::TempDir;

namespace {

openba::DenoiserIds test_ids() {
  openba::DenoiserIds ids;
  ids.eos = 1;
  ids.sentinel_base = 1099;  // <extra_id_0>; pieces 1000..1099 are sentinels
  ids.sentinels = 100;
  ids.mode_r = 1100;
  ids.mode_s = 1101;
  ids.mode_x = 1102;
  return ids;
}

std::vector<int32_t> raw(int64_t n) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<int32_t>(10 + i));
  return v;
}

bool is_sentinel(int32_t id) { return id >= 1000 && id <= 1099; }

}  // namespace

TEST_CASE("ul2: span counts and example lengths, by hand", "[ul2]") {
  // The reference's example: L = 568, r = 0.15, mu = 3 -> 512 inputs, 114 targets (no prefix).
  const auto c = openba::span_counts(568, 0.15, 3);
  CHECK(c.noise == 85);  // round(85.2)
  CHECK(c.spans == 28);  // round(28.33)
  openba::Denoiser r3{"R", openba::Denoiser::Kind::kSpan, 3, 0.15, 0, 1};
  CHECK(openba::example_lengths(r3, 568).encoder == 512);
  CHECK(openba::example_lengths(r3, 568).decoder == 114);
  r3.prefix = 'R';
  CHECK(openba::example_lengths(r3, 568).encoder == 513);
  // Ties round to even: 630 * 0.15 = 94.5 -> 94.
  CHECK(openba::span_counts(630, 0.15, 3).noise == 94);
  // Largest L for 570/381: L = 631 gives N = 95, S = 32, encoder 1 + 536 + 32 + 1 = 570;
  // L = 632 gives N = 95, S = 32, encoder 571.
  CHECK(openba::raw_length_for(r3, 570, 381) == 631);
  // X(3, 0.5) is decoder-bound: L = 570 -> N = 285, S = 95: decoder 381, encoder 1 + 285 + 95 + 1 = 382.
  const openba::Denoiser x3{"X", openba::Denoiser::Kind::kSpan, 3, 0.5, 'X', 1};
  CHECK(openba::raw_length_for(x3, 570, 381) == 570);
  // S(0.25): the encoder holds the prefix, a sentinel and </s> around L - 1 tokens.
  const openba::Denoiser s{"S", openba::Denoiser::Kind::kPrefix, 0, 0.25, 'S', 1};
  CHECK(openba::raw_length_for(s, 570, 381) == 568);
  for (const auto& d : openba::openba_denoisers()) {
    const int64_t length = openba::raw_length_for(d, 570, 381);
    const auto e = openba::example_lengths(d, length);
    CHECK(e.encoder <= 570);
    CHECK(e.decoder <= 381);
  }
  CHECK_THROWS_WITH(openba::raw_length_for(x3, 3, 2), Contains("denoiser X") && Contains("no raw length fits"));
}

TEST_CASE("ul2: random segmentation splits into non-empty runs, uniformly", "[ul2]") {
  std::map<int64_t, int> first_run;
  for (uint64_t i = 0; i < 8000; ++i) {
    openba::CounterRng rng(1, 0, i);
    const auto runs = openba::random_segmentation(5, 2, rng);
    REQUIRE(runs.size() == 2);
    CHECK(runs[0] + runs[1] == 5);
    CHECK(runs[0] >= 1);
    first_run[runs[0]]++;
  }
  // The single cut lands in any of the 4 gaps with probability 1/4.
  for (int64_t k = 1; k <= 4; ++k) CHECK(first_run[k] == Approx(2000).margin(200));
  openba::CounterRng rng(2, 0, 0);
  CHECK(openba::random_segmentation(7, 7, rng) == std::vector<int64_t>(7, 1));
  CHECK(openba::random_segmentation(7, 1, rng) == std::vector<int64_t>{7});
}

TEST_CASE("ul2: span corruption keeps every token exactly once, sentinels in order", "[ul2]") {
  const auto ids = test_ids();
  for (const auto& d : openba::openba_denoisers()) {
    if (d.kind != openba::Denoiser::Kind::kSpan) continue;
    for (int64_t length : {10, 57, 300}) {
      for (uint64_t seed = 0; seed < 20; ++seed) {
        const auto tokens = raw(length);
        openba::CounterRng rng(seed, 3, static_cast<uint64_t>(length));
        const auto ex = openba::corrupt_spans(tokens, d, ids, rng);
        const auto c = openba::span_counts(length, d.rate, d.mean_span);
        REQUIRE(static_cast<int64_t>(ex.input_ids.size()) == length - c.noise + c.spans + 2);
        REQUIRE(static_cast<int64_t>(ex.labels.size()) == c.noise + c.spans + 1);
        CHECK(ex.input_ids.front() == ids.mode(d.prefix));
        CHECK(ex.input_ids.back() == 1);
        CHECK(ex.labels.back() == 1);
        CHECK(ex.labels.front() == 1099);       // labels start with <extra_id_0>
        CHECK(!is_sentinel(ex.input_ids[1]));   // input starts with a non-noise run
        // Rebuild the raw tokens: each input sentinel is replaced by the label span after it.
        std::map<int32_t, std::vector<int32_t>> spans;
        int32_t current = -1;
        for (size_t i = 0; i + 1 < ex.labels.size(); ++i) {
          if (is_sentinel(ex.labels[i])) {
            current = ex.labels[i];
            continue;
          }
          spans[current].push_back(ex.labels[i]);
        }
        std::vector<int32_t> rebuilt;
        int32_t expected_sentinel = 1099;
        for (size_t i = 1; i + 1 < ex.input_ids.size(); ++i) {
          const int32_t id = ex.input_ids[i];
          if (is_sentinel(id)) {
            CHECK(id == expected_sentinel--);  // in order: extra_id_0, 1, ...
            REQUIRE(!spans[id].empty());      // non-empty spans
            rebuilt.insert(rebuilt.end(), spans[id].begin(), spans[id].end());
          } else {
            rebuilt.push_back(id);
          }
        }
        CHECK(rebuilt == tokens);
      }
    }
  }
}

TEST_CASE("ul2: the S-denoiser splits off a suffix of up to 25%", "[ul2]") {
  const auto ids = test_ids();
  const openba::Denoiser s{"S", openba::Denoiser::Kind::kPrefix, 0, 0.25, 'S', 1};
  const auto tokens = raw(40);
  std::set<size_t> suffixes;
  for (uint64_t i = 0; i < 500; ++i) {
    openba::CounterRng rng(4, 3, i);
    const auto ex = openba::prefix_lm(tokens, s, ids, rng);
    const size_t suffix = ex.labels.size() - 2;
    suffixes.insert(suffix);
    CHECK(ex.input_ids.front() == 1101);
    CHECK(ex.input_ids[ex.input_ids.size() - 2] == 1099);
    CHECK(ex.input_ids.back() == 1);
    CHECK(ex.labels.front() == 1099);
    CHECK(ex.labels.back() == 1);
    std::vector<int32_t> rebuilt(ex.input_ids.begin() + 1, ex.input_ids.end() - 2);
    rebuilt.insert(rebuilt.end(), ex.labels.begin() + 1, ex.labels.end() - 1);
    CHECK(rebuilt == tokens);
  }
  CHECK(*suffixes.begin() == 1);
  CHECK(*suffixes.rbegin() == 10);  // round(0.25 * 40)
  CHECK(suffixes.size() == 10);
}

TEST_CASE("ul2: D-UL2 mixture update, by hand", "[ul2]") {
  const auto w = openba::dynamic_mixture_update({0.5, 0.5}, {2.0, 1.0}, {1.0, 1.0}, 0.0);
  const double e = std::exp(1.0);
  CHECK(w[0] == Approx(e / (e + 1)));
  CHECK(w[1] == Approx(1 / (e + 1)));
  const auto mixed = openba::dynamic_mixture_update({0.5, 0.5}, {2.0, 1.0}, {1.0, 1.0}, 0.1);
  CHECK(mixed[0] == Approx(0.9 * e / (e + 1) + 0.05));
  CHECK(mixed[0] + mixed[1] == Approx(1.0));
  // Losses at their targets leave the weights alone.
  const auto same = openba::dynamic_mixture_update({0.2, 0.8}, {1.5, 2.0}, {1.5, 2.0}, 0.0);
  CHECK(same[0] == Approx(0.2));
}

TEST_CASE("ul2: the example stream is a pure function of (seed, i, weights)", "[ul2]") {
  TempDir dir;
  // Documents whose tokens say where they come from: doc d holds 10 + 100 d + t.
  openba::ShardWriter writer(dir / "s", {"fp", 8103, 8000}, {});
  const std::vector<int> lengths = {700, 30, 50, 900, 20, 15, 400};
  for (size_t d = 0; d < lengths.size(); ++d) {
    std::vector<int> ids;
    for (int t = 0; t < lengths[d]; ++t) ids.push_back(static_cast<int>(10 + 100 * d + t % 100));
    writer.add(ids.data(), ids.size());
  }
  writer.commit({});
  // A tokenizer layout with 8000 pieces: sentinels 8000..8099, R/S/X 8100..8102.
  TempDir tok;
  openba::test::write_bytes(tok / "spiece.model", openba::test::synthetic_spiece_model(8000));
  const auto layout = openba::TokenizerLayout::load(tok.path());
  auto shards = std::make_shared<openba::ShardSet>(openba::ShardSet::open(dir / "s"));
  auto mixture = std::make_shared<openba::ShardMixture>(std::vector<openba::ShardMixture::Source>{{shards, 1.0}});
  openba::Ul2Options options;
  options.encoder_tokens = 128;
  options.decoder_tokens = 64;
  options.seed = 9;
  const openba::Ul2Stream stream(mixture, layout, options);
  const auto weights = stream.initial_weights();
  std::map<int, int> by_denoiser;
  for (uint64_t i = 0; i < 700; ++i) {
    const auto a = stream.example(i, weights);
    by_denoiser[a.denoiser]++;
    CHECK(static_cast<int64_t>(a.input_ids.size()) <= 128);
    CHECK(static_cast<int64_t>(a.labels.size()) <= 64);
    CHECK(a.input_ids.front() == layout.mode_id(stream.options().denoisers[a.denoiser].prefix));
  }
  for (int d = 0; d < 7; ++d) CHECK(by_denoiser[d] == Approx(100).margin(40));
  // Any order, same examples.
  const auto late = stream.example(500, weights);
  const auto early = stream.example(3, weights);
  CHECK(stream.example(3, weights).input_ids == early.input_ids);
  CHECK(stream.example(500, weights).labels == late.labels);
  // Raw tokens: exactly L; a window of one document, or documents joined by </s>.
  for (uint64_t i = 0; i < 200; ++i) {
    const auto tokens = stream.raw_tokens(i, 120);
    REQUIRE(tokens.size() == 120);
    for (size_t t = 1; t < tokens.size(); ++t) {
      if (tokens[t] == 1 || tokens[t - 1] == 1) continue;  // a boundary
      CHECK((tokens[t] - 10) / 100 == (tokens[t - 1] - 10) / 100);  // same document
    }
  }
  // Weights steer the denoiser; a zero weight never draws.
  std::vector<double> only_s(7, 0.0);
  only_s[2] = 1.0;
  for (uint64_t i = 0; i < 50; ++i) CHECK(stream.example(i, only_s).denoiser == 2);
}

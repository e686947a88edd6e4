// Incremental decoding and generation (runtime/generation.h) for both
// families: decode_step against decode() over the whole sequence on every
// backend, the cache's row selection, every strategy with and without the
// cache, and sampling's distribution against the softmax worked by hand.
// Token-for-token agreement with transformers' generate is in
// tests/cli/test_generate.py.
#include "tests/torch_test.h"

#include <map>

#include "arch/openba/config.h"
#include "arch/openba/init.h"
#include "arch/seq2seq_model.h"
#include "ops/op_backend.h"
#include "runtime/generation.h"
#include "tests/test_util.h"
#include "util/error.h"

using Catch::Matchers::Contains;

namespace {

constexpr int64_t kVocab = 96;

openba::Seq2SeqModel family_model(const std::string& family) {
  openba::Seq2SeqModel model;
  if (family == "openba") {
    model = openba::make_model(openba::test::small_config(2, 3, 32, 2, 8, 40, kVocab));
    openba::initialize_weights(*model, 7);
  } else {
    const std::string proj = family == "t5-relu" ? "relu" : "gated-gelu";
    auto c = openba::parse_hf_config_json(
        R"({"model_type": "t5", "d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_decoder_layers": 3,
            "num_heads": 4, "vocab_size": 96, "relative_attention_num_buckets": 8,
            "relative_attention_max_distance": 16, "dropout_rate": 0.0, "feed_forward_proj": ")" +
            proj + R"(", "tie_word_embeddings": )" + (family == "t5-relu" ? "true" : "false") + "}",
        "config.json");
    model = openba::make_model(c);
    openba::initialize_weights(*model, 7, openba::InitScheme::kHf);
  }
  model->eval();
  return model;
}

const std::vector<std::string> kFamilies = {"openba", "t5-relu", "t5-gated"};

double max_difference(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST_CASE("generation: decode_step equals decode over the whole sequence", "[generation]") {
  using openba::OpBackendId;
  torch::NoGradGuard no_grad;
  for (const auto& family : kFamilies) {
    auto model = family_model(family);
    torch::manual_seed(3);
    auto input = torch::randint(3, kVocab, {3, 7}, torch::kLong);
    auto mask = torch::ones({3, 7}, torch::kLong);
    mask[1].narrow(0, 4, 3).zero_();  // a padded input
    auto decoder_ids = torch::randint(3, kVocab, {3, 6}, torch::kLong);
    for (auto id : {OpBackendId::kCpuInference, OpBackendId::kAten, OpBackendId::kAtenMath}) {
      const auto& ops = openba::op_backend(id);
      INFO(family << " on " << ops.name());
      auto enc = model->encode(ops, input, mask);
      auto whole = model->decode(ops, decoder_ids, {}, enc, mask);
      auto cache = model->start_decoding(ops, enc, mask, /*capacity=*/8);
      // A two-position prefix, then one position per step.
      std::vector<torch::Tensor> steps{model->decode_step(ops, decoder_ids.narrow(1, 0, 2), cache)};
      for (int64_t t = 2; t < 6; ++t) steps.push_back(model->decode_step(ops, decoder_ids.narrow(1, t, 1), cache));
      CHECK(cache.length == 6);
      CHECK(max_difference(torch::cat(steps, 1), whole) < 1e-5);

      // Rows reordered (and one duplicated) mid-sequence: the cache then
      // continues the selected rows' sequences.
      auto rows = torch::tensor({2, 0, 0}, torch::kLong);
      auto cache2 = model->start_decoding(ops, enc, mask, 8);
      model->decode_step(ops, decoder_ids.narrow(1, 0, 3), cache2);
      cache2.select_rows(rows);
      auto next = model->decode_step(ops, decoder_ids.index_select(0, rows).narrow(1, 3, 1), cache2);
      auto expected = model->decode(ops, decoder_ids.index_select(0, rows).narrow(1, 0, 4), {},
                                    enc.index_select(0, rows), mask.index_select(0, rows));
      CHECK(max_difference(next.select(1, 0), expected.select(1, 3)) < 1e-5);
    }
  }
}

TEST_CASE("generation: decode_step refuses what the cache cannot hold", "[generation][bad-input]") {
  torch::NoGradGuard no_grad;
  auto model = family_model("openba");
  auto input = torch::randint(3, kVocab, {1, 5}, torch::kLong);
  auto enc = model->encode(input, {});
  const auto& ops = openba::select_op_backend(enc);
  auto cache = model->start_decoding(ops, enc, {}, 3);
  model->decode_step(ops, torch::zeros({1, 2}, torch::kLong), cache);
  CHECK_THROWS_WITH(model->decode_step(ops, torch::zeros({1, 2}, torch::kLong), cache),
                    Contains("only as the prefix of an empty cache"));
  model->decode_step(ops, torch::zeros({1, 1}, torch::kLong), cache);
  CHECK_THROWS_WITH(model->decode_step(ops, torch::zeros({1, 1}, torch::kLong), cache),
                    Contains("exceed the cache's capacity 3"));
}

TEST_CASE("generation: every strategy gives the same tokens with and without the cache", "[generation]") {
  const std::vector<std::vector<int64_t>> inputs = {{5, 9, 14, 30, 2, 1}, {7, 8, 1}, {40, 41, 42, 43, 44, 45, 46, 1}};
  for (const auto& family : kFamilies) {
    auto model = family_model(family);
    for (auto strategy : {openba::DecodeStrategy::kGreedy, openba::DecodeStrategy::kBeam, openba::DecodeStrategy::kSample}) {
      openba::GenerationOptions o;
      o.strategy = strategy;
      o.max_new_tokens = 12;
      o.beams = 3;
      o.top_p = 0.9;
      o.temperature = 0.8;
      o.seed = 5;
      o.decoder_prefix = family == "openba" ? std::vector<int64_t>{0, 90} : std::vector<int64_t>{};
      INFO(family << " strategy " << static_cast<int>(strategy));
      const auto cached = openba::generate(*model, inputs, o, torch::kCPU);
      o.use_cache = false;
      const auto uncached = openba::generate(*model, inputs, o, torch::kCPU);
      REQUIRE(cached.size() == inputs.size());
      for (size_t i = 0; i < inputs.size(); ++i) {
        CHECK(cached[i].ids == uncached[i].ids);
        CHECK(cached[i].finished == uncached[i].finished);
        CHECK(!cached[i].ids.empty());
        CHECK(static_cast<int64_t>(cached[i].ids.size()) <= o.max_new_tokens);
        // Finished means it ends with </s> and holds no earlier one.
        const auto eos_count = std::count(cached[i].ids.begin(), cached[i].ids.end(), model->config.eos_token_id);
        CHECK(eos_count == (cached[i].finished ? 1 : 0));
        if (cached[i].finished) CHECK(cached[i].ids.back() == model->config.eos_token_id);
      }
      // An input alone gives what it gave in the batch (greedy and sample: per-input generators).
      if (strategy != openba::DecodeStrategy::kBeam) {
        o.use_cache = true;
        const auto alone = openba::generate(*model, {inputs[1]}, o, torch::kCPU, /*input_indices=*/{1});
        CHECK(alone[0].ids == cached[1].ids);
      }
    }
  }
}

TEST_CASE("generation: greedy follows the argmax of the full forward", "[generation]") {
  torch::NoGradGuard no_grad;
  for (const auto& family : kFamilies) {
    INFO(family);
    auto model = family_model(family);
    const std::vector<int64_t> input = {5, 9, 14, 30, 2, 1};
    openba::GenerationOptions o;
    o.max_new_tokens = 10;
    const auto got = openba::generate(*model, {input}, o, torch::kCPU)[0];
    // By hand: the model's forward over the whole sequence at each length.
    std::vector<int64_t> sequence = {model->config.decoder_start_token_id};
    const auto ids = torch::tensor(input, torch::kLong).view({1, -1});
    auto enc = model->encode(ids, {});
    for (int64_t s = 0; s < o.max_new_tokens; ++s) {
      auto logits = model->project(model->decode(torch::tensor(sequence, torch::kLong).view({1, -1}), {}, enc, {}));
      sequence.push_back(logits[0][-1].argmax().item<int64_t>());
      if (sequence.back() == model->config.eos_token_id) break;
    }
    CHECK(got.ids == std::vector<int64_t>(sequence.begin() + 1, sequence.end()));
  }
}

TEST_CASE("generation: sampling draws from the warped softmax", "[generation]") {
  torch::NoGradGuard no_grad;
  auto model = family_model("openba");
  const std::vector<int64_t> input = {5, 9, 14, 30, 2, 1};
  // The first step's distribution by hand: softmax(logits / T) over the top-k.
  auto enc = model->encode(torch::tensor(input, torch::kLong).view({1, -1}), {});
  auto logits = model->project(model->decode(torch::zeros({1, 1}, torch::kLong), {}, enc, {}))[0][0];
  const double temperature = 0.7;
  const int64_t top_k = 4;
  auto [top_logits, top_ids] = torch::topk(logits, top_k);
  auto expected = torch::softmax(top_logits / temperature, 0);

  openba::GenerationOptions o;
  o.strategy = openba::DecodeStrategy::kSample;
  o.max_new_tokens = 1;
  o.temperature = temperature;
  o.top_k = top_k;
  o.seed = 17;
  const int n = 3000;
  const auto samples = openba::generate(*model, std::vector<std::vector<int64_t>>(n, input), o, torch::kCPU);
  std::map<int64_t, int> counts;
  for (const auto& s : samples) counts[s.ids.at(0)]++;
  for (const auto& [id, count] : counts) {
    INFO("sampled id " << id);
    CHECK((top_ids == id).any().item<bool>());  // only the top-k are drawn
  }
  for (int64_t j = 0; j < top_k; ++j) {
    const double p = expected[j].item<double>();
    const double sigma = std::sqrt(n * p * (1 - p));
    INFO("id " << top_ids[j].item<int64_t>() << " p " << p);
    CHECK(std::abs(counts[top_ids[j].item<int64_t>()] - n * p) < 5 * sigma + 1);
  }

  // A top-p smaller than the best token's probability leaves only it: greedy.
  o.top_k = 0;
  o.temperature = 1.0;
  o.top_p = 1e-6;
  o.max_new_tokens = 8;
  openba::GenerationOptions greedy;
  greedy.max_new_tokens = 8;
  CHECK(openba::generate(*model, {input}, o, torch::kCPU)[0].ids ==
        openba::generate(*model, {input}, greedy, torch::kCPU)[0].ids);

  // The seed decides: the same seed repeats, another differs somewhere.
  o.top_p = 1.0;
  o.temperature = 1.5;
  const std::vector<std::vector<int64_t>> few(8, input);
  const auto a = openba::generate(*model, few, o, torch::kCPU);
  const auto b = openba::generate(*model, few, o, torch::kCPU);
  o.seed = 18;
  const auto c = openba::generate(*model, few, o, torch::kCPU);
  bool any_different = false;
  for (size_t i = 0; i < few.size(); ++i) {
    CHECK(a[i].ids == b[i].ids);
    any_different = any_different || a[i].ids != c[i].ids;
  }
  CHECK(any_different);
}

TEST_CASE("generation: bad options and inputs are errors naming them", "[generation][bad-input]") {
  auto model = family_model("t5-gated");
  openba::GenerationOptions o;
  o.max_new_tokens = 0;
  CHECK_THROWS_WITH(openba::generate(*model, {{5, 1}}, o, torch::kCPU), Contains("--max-new-tokens"));
  o = {};
  o.strategy = openba::DecodeStrategy::kSample;
  o.top_p = 1.5;
  CHECK_THROWS_WITH(openba::generate(*model, {{5, 1}}, o, torch::kCPU), Contains("--top-p"));
  o.top_p = 1.0;
  o.temperature = 0;
  CHECK_THROWS_WITH(openba::generate(*model, {{5, 1}}, o, torch::kCPU), Contains("--temperature"));
  o = {};
  o.strategy = openba::DecodeStrategy::kBeam;
  o.beams = 0;
  CHECK_THROWS_WITH(openba::generate(*model, {{5, 1}}, o, torch::kCPU), Contains("--beams"));
  o = {};
  CHECK_THROWS_WITH(openba::generate(*model, {{5, 96}}, o, torch::kCPU), Contains("outside the vocabulary [0, 96)"));
  o.decoder_prefix = {0, 200};
  CHECK_THROWS_WITH(openba::generate(*model, {{5, 1}}, o, torch::kCPU), Contains("decoder prefix id 200"));
}

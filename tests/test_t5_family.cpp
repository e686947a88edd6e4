// The T5 family's config.json, descriptor and relative position buckets,
// checked against hand computations (transformers' formulas worked by hand;
// the whole forward is checked against transformers itself in
// tests/cli/test_t5.py).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>

#include "arch/openba/config.h"
#include "arch/openba/layout.h"
#include "arch/t5/t5_config.h"
#include "arch/openba/init.h"
#include "arch/t5/t5_model.h"
#include "ops/op_backend.h"
#include "tests/model_test_util.h"
#include "util/error.h"

using Catch::Matchers::Contains;

namespace {

openba::ModelConfig parse(const std::string& json) { return openba::parse_hf_config_json(json, "config.json"); }

}  // namespace

TEST_CASE("t5: config.json keys and transformers' defaults", "[t5][config]") {
  const auto v11 = parse(R"({"model_type": "t5", "d_model": 768, "d_kv": 64, "d_ff": 2048, "num_layers": 12,
                             "num_heads": 12, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false,
                             "vocab_size": 32128, "dtype": "bfloat16", "task_specific_params": {"x": 1}})");
  CHECK(v11.family == openba::ModelFamily::kT5);
  CHECK(v11.decoder_layers == 12);  // num_decoder_layers defaults to num_layers
  CHECK(v11.ffn_gated);
  CHECK(v11.ffn_activation == openba::FfnActivation::kGeluTanh);  // "gated-gelu" is gelu_new
  CHECK(v11.relative_attention_num_buckets == 32);
  CHECK(v11.relative_attention_max_distance == 128);
  CHECK(v11.layernorm_eps == 1e-6);
  CHECK(v11.dtype == openba::DType::BF16);  // transformers >= 4.56 writes "dtype"
  CHECK_FALSE(v11.add_qkv_bias);
  CHECK(v11.extra_hf_keys.count("task_specific_params") == 1);
  // mT5's defaults: untied, gated-gelu, 250112 rows.
  const auto mt5 = parse(R"({"model_type": "mt5"})");
  CHECK(mt5.vocab_size == 250112);
  CHECK_FALSE(mt5.tie_word_embeddings);
  CHECK(mt5.ffn_gated);
  // T5 v1.0's: tied relu.
  const auto v10 = parse(R"({"model_type": "t5"})");
  CHECK(v10.tie_word_embeddings);
  CHECK_FALSE(v10.ffn_gated);
  CHECK(v10.ffn_activation == openba::FfnActivation::kRelu);
  CHECK(parse(R"({"model_type": "t5", "feed_forward_proj": "gated-silu"})").ffn_activation ==
        openba::FfnActivation::kSilu);
  // Written back and read again: the same architecture, our keys and the carried ones.
  const auto again = parse(openba::to_hf_config_json(v11));
  CHECK(again.same_architecture(v11));
  CHECK(again.extra_hf_keys.count("task_specific_params") == 1);
  CHECK(openba::t5_feed_forward_proj(again) == "gated-gelu");
}

TEST_CASE("t5: bad config.json values name the key", "[t5][config][bad-input]") {
  CHECK_THROWS_WITH(parse(R"({"model_type": "umt5"})"), Contains("config.json") && Contains("umt5"));
  CHECK_THROWS_WITH(parse(R"({"model_type": "t5", "feed_forward_proj": "double-gelu"})"),
                    Contains("feed_forward_proj 'double-gelu'"));
  CHECK_THROWS_WITH(parse(R"({"model_type": "t5", "feed_forward_proj": "gated-tanh"})"), Contains("'tanh'"));
  CHECK_THROWS_WITH(parse(R"({"model_type": "t5", "d_model": "512"})"), Contains("'d_model' must be an integer"));
  CHECK_THROWS_WITH(parse(R"({"model_type": "t5", "relative_attention_num_buckets": 1})"),
                    Contains("relative_attention_num_buckets"));
}

TEST_CASE("t5: the descriptor's names, shapes and units", "[t5][layout]") {
  auto c = parse(R"({"model_type": "t5", "d_model": 16, "d_kv": 4, "d_ff": 24, "num_layers": 2,
                     "num_decoder_layers": 3, "num_heads": 2, "vocab_size": 64, "feed_forward_proj": "gated-gelu",
                     "tie_word_embeddings": false, "relative_attention_num_buckets": 8})");
  const auto specs = openba::openba_tensor_specs(c);
  // Per encoder block: q k v o + norm, wi_0 wi_1 wo + norm (9), block 0 the table too;
  // decoder blocks add EncDecAttention q k v o + norm (14); shared, 2 final norms, lm_head.
  CHECK(specs.size() == 1 + (2 * 9 + 1) + 1 + (3 * 14 + 1) + 1 + 1);
  const auto table = openba::find_tensor_spec("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", c);
  REQUIRE(table);
  CHECK(table->shape == std::vector<int64_t>{8, 2});
  CHECK(table->stack_table);
  CHECK(table->units.size() == 1);
  CHECK(table->units[0].kind == openba::UnitKind::kSelfHead);
  CHECK(table->units[0].axis == 1);
  CHECK_FALSE(openba::find_tensor_spec("decoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight", c));
  const auto q = openba::find_tensor_spec("decoder.block.2.layer.1.EncDecAttention.q.weight", c);
  REQUIRE(q);
  CHECK(q->shape == std::vector<int64_t>{8, 16});
  CHECK(q->units[0].kind == openba::UnitKind::kCrossHead);
  CHECK(q->units[0].group == 4);
  CHECK(openba::find_tensor_spec("decoder.block.0.layer.2.DenseReluDense.wi_1.weight", c)->shape ==
        std::vector<int64_t>{24, 16});
  CHECK(openba::find_tensor_spec("lm_head.weight", c));
  CHECK(openba::is_ignored_tensor_name("encoder.embed_tokens.weight", c));
  CHECK(openba::is_ignored_tensor_name("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight", c));
  CHECK_FALSE(openba::is_ignored_tensor_name("lm_head.weight", c));
  c.tie_word_embeddings = true;  // tied: the head is the embedding, no tensor of its own
  CHECK_FALSE(openba::find_tensor_spec("lm_head.weight", c));
  CHECK(openba::is_ignored_tensor_name("lm_head.weight", c));
  CHECK(openba::embedding_name(c) == "shared.weight");
  CHECK(openba::final_norm_weight_name(c, true) == "decoder.final_layer_norm.weight");
  CHECK(openba::final_norm_bias_name(c, true).empty());
}

TEST_CASE("t5: relative position buckets by hand", "[t5][model]") {
  // 32 buckets, max distance 128. Bidirectional: 16 per direction, 8 exact;
  // beyond, 8 + floor(log(n / 8) / log(128 / 8) * 8), capped at 15.
  auto large = [](int64_t n) {
    return std::min<int64_t>(15, 8 + static_cast<int64_t>(std::log(n / 8.0) / std::log(16.0) * 8.0));
  };
  const auto b = openba::t5_relative_position_buckets(1, 201, /*bidirectional=*/true, 32, 128, torch::kCPU);
  auto at = [&](int64_t key) { return b[0][key].item<int64_t>(); };
  CHECK(at(0) == 0);
  CHECK(at(1) == 16 + 1);  // a later key: the upper half
  CHECK(at(7) == 16 + 7);
  CHECK(at(8) == 16 + large(8));
  CHECK(at(100) == 16 + large(100));
  CHECK(at(200) == 16 + 15);
  // Query 200 looking back: the lower half.
  const auto back = openba::t5_relative_position_buckets(201, 1, true, 32, 128, torch::kCPU);
  CHECK(back[200][0].item<int64_t>() == large(200));
  CHECK(back[5][0].item<int64_t>() == 5);
  // Unidirectional (the decoder): later keys all bucket 0; 16 exact, 32 buckets.
  const auto causal = openba::t5_relative_position_buckets(101, 101, false, 32, 128, torch::kCPU);
  CHECK(causal[3][10].item<int64_t>() == 0);
  CHECK(causal[10][3].item<int64_t>() == 7);
  CHECK(causal[100][0].item<int64_t>() ==
        std::min<int64_t>(31, 16 + static_cast<int64_t>(std::log(100 / 16.0) / std::log(8.0) * 16.0)));
}

namespace {

openba::Seq2SeqModel small_t5(const std::string& proj, bool tied) {
  auto c = parse(R"({"model_type": "t5", "d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2,
                     "num_decoder_layers": 2, "num_heads": 4, "vocab_size": 64, "relative_attention_num_buckets": 8,
                     "relative_attention_max_distance": 16, "dropout_rate": 0.0, "feed_forward_proj": ")" +
                 proj + R"(", "tie_word_embeddings": )" + (tied ? "true" : "false") + "}");
  auto model = openba::make_model(c);
  openba::initialize_weights(*model, 5, openba::InitScheme::kHf);
  return model;
}

torch::Tensor logits_on(openba::Seq2SeqModelImpl& model, const openba::Seq2SeqBatch& b, const openba::OpBackend& ops) {
  auto enc = model.encode(ops, b.input_ids, b.encoder_mask());
  auto dec = model.decode(ops, b.decoder_input_ids, b.decoder_mask(), enc, b.encoder_mask());
  return model.project(ops, dec);
}

}  // namespace

TEST_CASE("t5: every op backend gives the same forward and gradients", "[t5][backends]") {
  using openba::OpBackendId;
  for (const auto& [proj, tied] : {std::pair<std::string, bool>{"relu", true}, {"gated-gelu", false}, {"gated-silu", false}}) {
    INFO(proj);
    auto model = small_t5(proj, tied);
    model->eval();
    const auto batch = openba::test::padded_batch(64);
    torch::Tensor reference;
    {
      torch::NoGradGuard no_grad;
      reference = logits_on(*model, batch, openba::op_backend(OpBackendId::kAtenMath));
      for (auto id : {OpBackendId::kCpuInference, OpBackendId::kCpuTraining, OpBackendId::kAten}) {
        const auto& ops = openba::op_backend(id);
        INFO(ops.name());
        CHECK((logits_on(*model, batch, ops) - reference).abs().max().item<double>() < 1e-4);
      }
    }
    // Gradients of every parameter (the relative-bias tables included) on the
    // training backend against aten-math's.
    auto grads_on = [&](const openba::OpBackend& ops) {
      for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
      auto logits = logits_on(*model, batch, ops);
      torch::nn::functional::cross_entropy(logits.reshape({-1, 64}), batch.labels.reshape({-1}),
                                           torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100))
          .backward();
      std::vector<torch::Tensor> g;
      for (auto& p : model->parameters()) g.push_back(p.grad().clone());
      return g;
    };
    const auto expected = grads_on(openba::op_backend(OpBackendId::kAtenMath));
    const auto got = grads_on(openba::op_backend(OpBackendId::kCpuTraining));
    REQUIRE(expected.size() == got.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK((got[i] - expected[i]).abs().max().item<double>() <= 1e-4 * (1 + expected[i].abs().max().item<double>()));
    }
    CHECK(expected[0].abs().sum().item<double>() > 0);
  }
}

// Model configs (YAML and config.json), the tensor layout and parameter
// counts, checked against hand computations.
#include <catch2/catch.hpp>

#include "arch/openba/config.h"
#include "arch/openba/layout.h"
#include "tests/test_util.h"
#include "util/error.h"

using Catch::Matchers::Contains;
using openba::test::TempDir;
using openba::test::source_path;

TEST_CASE("config: the shipped YAML configs load", "[config]") {
  const auto tiny = openba::load_model_config_yaml(source_path("configs/models/tiny.yaml"));
  CHECK(tiny.encoder_layers == 4);
  CHECK(tiny.decoder_layers == 12);
  const auto big = openba::load_model_config_yaml(source_path("configs/models/openba-15b.yaml"));
  CHECK(big.attention_width() == 5120);
  CHECK(big.dtype == openba::DType::F16);
  const auto v2 = openba::load_model_config_yaml(source_path("configs/models/openba-v2-3.4b.yaml"));
  CHECK(v2.d_model == 2560);
  CHECK(v2.vocab_size % 128 == 0);
}

TEST_CASE("config: OpenBA-15B counts 14,567,703,040 parameters in 775 tensors", "[config]") {
  const auto c = openba::load_model_config_yaml(source_path("configs/models/openba-15b.yaml"));
  CHECK(openba::openba_tensor_specs(c).size() == 12 * 10 + 36 * 18 + 7);
  // By hand: d=4096, a=5120, f=11008, V=250368.
  const int64_t d = 4096, a = 5120, f = 11008, v = 250368;
  const int64_t enc = (3 * a * d + 3 * a) + (d * a + d) + 4 * d + 3 * f * d;
  const int64_t dec = enc + (a * d + a) + (2 * a * d + 2 * a) + (d * a + d) + 2 * d;
  const int64_t expected = 12 * enc + 36 * dec + v * d + 4 * d + v;
  CHECK(expected == 14567703040LL);
  const auto tied = openba::count_parameters(c, true);
  CHECK(tied.total == expected);
  CHECK(tied.by_component[static_cast<int>(openba::Component::kEmbedding)] == v * d);
  CHECK(tied.by_component[static_cast<int>(openba::Component::kLmHead)] == v);
  CHECK(tied.by_component[static_cast<int>(openba::Component::kDecoderCrossAttention)] ==
        36 * (a * d + a + 2 * a * d + 2 * a + d * a + d));
  CHECK(openba::count_parameters(c, false).total == expected + v * d);
}

TEST_CASE("config: YAML errors name the file and line", "[config][bad-input]") {
  TempDir dir;
  const std::string path = dir / "m.yaml";
  SECTION("unknown key (typo)") {
    openba::test::write_bytes(path, "encoder_layers: 2\ndecoder_layers: 2\nd_modle: 64\n");
    CHECK_THROWS_WITH(openba::load_model_config_yaml(path), Contains("m.yaml:3") && Contains("unknown key 'd_modle'"));
  }
  SECTION("wrong type") {
    openba::test::write_bytes(path, "encoder_layers: two\n");
    CHECK_THROWS_WITH(openba::load_model_config_yaml(path), Contains("m.yaml:1") && Contains("integer"));
  }
  SECTION("missing key") {
    openba::test::write_bytes(path, "encoder_layers: 2\n");
    CHECK_THROWS_WITH(openba::load_model_config_yaml(path), Contains("missing required key"));
  }
  SECTION("invalid value") {
    openba::test::write_bytes(path,
                              "encoder_layers: 2\ndecoder_layers: 2\nd_model: 64\nnum_heads: 2\n"
                              "kv_channels: 7\nffn_hidden: 64\nvocab_size: 128\n");
    CHECK_THROWS_WITH(openba::load_model_config_yaml(path), Contains("kv_channels must be even"));
  }
  SECTION("YAML syntax") {
    openba::test::write_bytes(path, "encoder_layers: [2\n");
    CHECK_THROWS_WITH(openba::load_model_config_yaml(path), Contains("m.yaml") && Contains("syntax"));
  }
}

TEST_CASE("config: OpenBA's config.json", "[config]") {
  const std::string released = R"({
    "add_qkv_bias": true, "add_ffn_bias": false, "add_lm_head_bias": true,
    "decoder_max_seq_length": 512, "ffn_hidden_size": 16384, "hidden_size": 4096,
    "kv_channels": 128, "max_seq_length": 1024, "model_type": "OpenBT5",
    "num_decoder_layers": 36, "num_heads": 40, "num_layers": 12, "vocab_size": 250368,
    "tie_word_embeddings": false, "tokenizer_class": "OpenBT5Tokenizer"})";
  auto c = openba::parse_hf_config_json(released, "config.json");
  CHECK(c.decoder_layers == 36);
  CHECK(c.extra_hf_keys.at("tokenizer_class") == "\"OpenBT5Tokenizer\"");
  // The FFN width comes from the tensors; 16384 -> 11008 is the V1 derivation.
  CHECK(openba::openba_v1_derived_ffn(16384) == 11008);
  openba::reconcile_with_tensor_shapes(c, 11008, 250368, "config.json");
  CHECK(c.ffn_hidden == 11008);
  // A width matching neither is an error naming both numbers.
  auto c2 = openba::parse_hf_config_json(released, "config.json");
  CHECK_THROWS_WITH(openba::reconcile_with_tensor_shapes(c2, 6912, 250368, "config.json"),
                    Contains("16384") && Contains("6912"));
  CHECK_THROWS_WITH(openba::reconcile_with_tensor_shapes(c2, 11008, 250240, "config.json"),
                    Contains("250368") && Contains("250240"));
  // Written back in OpenBA's names, extra keys preserved, and read again identically.
  const auto again = openba::parse_hf_config_json(openba::to_hf_config_json(c), "rewritten");
  CHECK(again.same_architecture(c));
  CHECK(again.extra_hf_keys.at("tokenizer_class") == "\"OpenBT5Tokenizer\"");
}

TEST_CASE("config: config.json errors", "[config][bad-input]") {
  CHECK_THROWS_WITH(openba::parse_hf_config_json("{\n\"hidden_size\": 4,\n,}", "c.json"),
                    Contains("c.json:3") && Contains("malformed JSON"));
  CHECK_THROWS_WITH(openba::parse_hf_config_json(R"({"hidden_size": 4})", "c.json"),
                    Contains("missing required key"));
  CHECK_THROWS_WITH(openba::parse_hf_config_json(R"({"model_type": "bert", "hidden_size": 4})", "c.json"),
                    Contains("model_type 'bert' is not a supported model"));
  CHECK_THROWS_WITH(
      openba::parse_hf_config_json(R"({"hidden_size": "4096", "num_heads": 1, "kv_channels": 2,)"
                                   R"("ffn_hidden_size": 4, "num_layers": 1, "vocab_size": 8})",
                                   "c.json"),
      Contains("'hidden_size' must be an integer"));
}

#include "arch/openba/flops.h"

TEST_CASE("flops: the section-6 count on a hand-computed case", "[config][flops]") {
  openba::ModelConfig c;
  c.encoder_layers = 1;
  c.decoder_layers = 1;
  c.d_model = 2;
  c.num_heads = 1;
  c.kv_channels = 3;  // a = 3
  c.ffn_hidden = 5;
  c.vocab_size = 7;
  // Te = 4, Td = 2, multiply-adds:
  //  encoder tokens: 4 * (4*2*3 + 3*2*5) = 4 * 54 = 216
  //  encoder attention: 2 * 4 * 4 * 3 = 96
  //  decoder tokens: 2 * (6*2*3 + 3*2*5) = 2 * 66 = 132
  //  cross K/V over encoder tokens: 4 * 2*2*3 = 48
  //  decoder attention: 2*2*2*3 + 2*2*4*3 = 24 + 48 = 72
  //  lm_head: 2 * 2 * 7 = 28
  CHECK(openba::forward_flops_per_sequence(c, 4, 2) == 2.0 * (216 + 96 + 132 + 48 + 72 + 28));
}

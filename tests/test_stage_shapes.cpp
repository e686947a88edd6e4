// The shape each compression stage leaves (compress/stage_kind.h), worked
// out by hand: the stage and a pipeline's plan both call these. Also the
// architecture descriptor (arch/openba/layout.h) that the stages read.
#include "tests/torch_test.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <fstream>

#include "compress/compress_options.h"
#include "compress/stage_kind.h"
#include "compress/width_units.h"
#include "arch/openba/layout.h"
#include "tests/test_util.h"
#include "util/config_node.h"
#include "util/error.h"

namespace {

using Catch::Matchers::Contains;

const openba::ShapeContext kCli{"--", "the input model"};
const openba::ShapeContext kStep{"", "the model at this step"};

}  // namespace

TEST_CASE("stage kinds: names, the width alias, unknown kinds refused", "[stages]") {
  CHECK(openba::parse_stage_kind("layer") == openba::StageKind::kLayer);
  CHECK(openba::parse_stage_kind("width") == openba::StageKind::kWidth);
  CHECK(std::string(openba::stage_kind_name(*openba::parse_stage_kind("neuron"))) == "neuron");
  CHECK_FALSE(openba::parse_stage_kind("vocabulary").has_value());
  CHECK_FALSE(openba::parse_stage_kind("").has_value());
}

TEST_CASE("stage shapes: layer drop lists and keep counts", "[stages]") {
  const auto c = openba::test::small_config(4, 12, 32, 4, 8, 64, 256);
  openba::CompressOptions o;
  o.drop_encoder_layers = "1,3";
  o.keep_decoder_layers = 9;
  const auto shape = openba::layer_shape_after(c, o, kCli);
  CHECK(shape.config.encoder_layers == 2);
  CHECK(shape.config.decoder_layers == 9);
  CHECK(shape.drop[0] == std::vector<int64_t>{1, 3});
  CHECK(shape.drop[1].empty());
  CHECK(shape.scored);
  o.keep_decoder_layers = 13;
  CHECK_THROWS_WITH(openba::layer_shape_after(c, o, kCli),
                    Contains("--keep-decoder-layers 13: must be in [1, 12] (the input model has 12 decoder layers)"));
  CHECK_THROWS_WITH(openba::layer_shape_after(c, o, kStep), Contains("keep-decoder-layers 13: must be in [1, 12] (the model at this step"));
  CHECK_THROWS_WITH(openba::layer_shape_after(c, openba::CompressOptions{}, kCli), Contains("needs --drop-encoder-layers"));
}

TEST_CASE("stage shapes: width targets are rounded and bounded", "[stages]") {
  const auto c = openba::test::small_config(2, 2, 128, 4, 8, 352, 256);
  openba::CompressOptions o;
  o.ffn = 230;  // nearest multiple of 16: 224
  o.hidden = 80;
  o.heads = 2;
  o.round_to = 16;
  const auto shape = openba::width_shape_after(c, o, kCli);
  CHECK(shape.ffn == 224);
  CHECK(shape.hidden == 80);
  CHECK(shape.config.num_heads == 2);
  CHECK(shape.config.d_model == 80);
  CHECK(shape.config.ffn_hidden == 224);
  CHECK(shape.config.encoder_layers == 2);
  o.ffn = 400;
  CHECK_THROWS_WITH(openba::width_shape_after(c, o, kStep),
                    Contains("ffn 400 is larger than the 352 FFN neurons per layer of the model at this step"));
}

TEST_CASE("stage shapes: vocabulary rows follow OpenBA's layout", "[stages]") {
  const auto c = openba::test::small_config(2, 2, 32, 4, 8, 64, 8192);
  openba::CompressOptions o;
  o.vocab = 4000;  // 4000 + 100 sentinels + <R>/<S>/<X> = 4103 -> 4224 rows (33 x 128)
  CHECK(openba::vocab_shape_after(c, o, 8000, 5, kCli).vocab_size == 4224);
  o.vocab = 9000;
  CHECK_THROWS_WITH(openba::vocab_shape_after(c, o, 8000, 5, kCli),
                    Contains("--vocab 9000 is larger than the tokenizer's 8000 pieces"));
  o.vocab = 3;
  CHECK_THROWS_WITH(openba::vocab_shape_after(c, o, 8000, 5, kCli), Contains("smaller than the 5 pieces"));
}

TEST_CASE("architecture descriptor: every tensor located, unit axes as documented", "[stages][layout]") {
  const auto c = openba::test::small_config(2, 3, 16, 2, 8, 24, 40);
  const auto specs = openba::openba_tensor_specs(c);
  for (const auto& spec : specs) {
    INFO(spec.name);
    const auto found = openba::find_tensor_spec(spec.name, c);
    REQUIRE(found.has_value());
    CHECK(found->shape == spec.shape);
    const auto loc = openba::locate_tensor(spec.name);
    CHECK(loc.stack == spec.stack);
    CHECK(loc.layer == spec.layer);
    CHECK(loc.local == spec.local);
    if (spec.stack >= 0) CHECK(openba::block_tensor_name(spec.stack == 1, spec.layer, spec.local) == spec.name);
    // Every unit axis divides its dimension into whole units.
    for (const auto& u : spec.units) {
      const int64_t dim = spec.shape.at(static_cast<size_t>(u.axis));
      if (u.kind == openba::UnitKind::kHidden) CHECK(dim == c.d_model);
      if (u.kind == openba::UnitKind::kFfn) CHECK(dim == (u.gate_up ? 2 : 1) * c.ffn_hidden);
      if (u.kind == openba::UnitKind::kSelfHead || u.kind == openba::UnitKind::kCrossHead) CHECK(dim == u.group * c.num_heads);
    }
  }
  // By hand: qkv rows are heads of 3 kv, columns hidden channels; cross o columns are cross heads of kv.
  const auto qkv = openba::find_tensor_spec("decoder.block.2.self_attn.qkv.weight", c);
  REQUIRE(qkv);
  REQUIRE(qkv->units.size() == 2);
  CHECK((qkv->units[0].kind == openba::UnitKind::kSelfHead && qkv->units[0].axis == 0 && qkv->units[0].group == 24 &&
         qkv->units[0].stack == 1 && qkv->units[0].layer == 2));
  CHECK((qkv->units[1].kind == openba::UnitKind::kHidden && qkv->units[1].axis == 1));
  const auto cross_o = openba::find_tensor_spec("decoder.block.0.inter_attn.o.weight", c);
  REQUIRE(cross_o);
  CHECK((cross_o->units[1].kind == openba::UnitKind::kCrossHead && cross_o->units[1].axis == 1 && cross_o->units[1].group == 8));
  CHECK(openba::find_tensor_spec("lm_head.weight", c)->vocabulary_rows);
  CHECK_FALSE(openba::find_tensor_spec("encoder.block.0.mlp.fc_in.weight", c)->vocabulary_rows);
  CHECK_FALSE(openba::find_tensor_spec("encoder.block.2.mlp.fc_in.weight", c).has_value());  // 2 encoder layers
  CHECK_FALSE(openba::find_tensor_spec("encoder.block.x.mlp.fc_in.weight", c).has_value());
  CHECK(openba::find_tensor_spec("decoder.block.0.self_attn.qkv.bias", c).has_value());
  auto no_bias = c;
  no_bias.add_qkv_bias = false;
  CHECK_FALSE(openba::find_tensor_spec("decoder.block.0.self_attn.qkv.bias", no_bias).has_value());
  CHECK_THROWS_WITH(openba::unit_axes("encoder.block.0.mlp.gate.weight", c), Contains("unknown tensor"));
}

TEST_CASE("compress options: one table gives the same options from flags and from YAML", "[stages][options]") {
  openba::test::TempDir dir;
  const std::string yaml = dir / "stage.yaml";
  {
    std::ofstream out(yaml);
    out << "ffn: 128\nround-to: 16\ndrop-encoder-layers: [1, 2]\nheldout-seed: 3\ncorpus: shards\nscore: magnitude\n";
  }
  openba::CompressOptions from_yaml;
  const openba::ConfigNode node = openba::ConfigNode::load(yaml, std::vector<std::string>{});
  openba::read_compress_yaml(node, from_yaml);

  CLI::App app;
  openba::CompressOptions from_flags;
  openba::add_compress_flags(app, from_flags);
  // Every key of the table is a flag.
  for (const auto& k : openba::compress_yaml_keys()) CHECK(app.get_option_no_throw("--" + k.key) != nullptr);
  std::vector<std::string> args = {"--ffn", "128", "--round-to", "16", "--drop-encoder-layers", "1,2",
                                   "--heldout-seed", "3", "--corpus", "shards", "--score", "magnitude"};
  std::reverse(args.begin(), args.end());  // CLI11 parses a vector from its back
  app.parse(args);
  for (const auto* o : {&from_yaml, &from_flags}) {
    CHECK(o->ffn == 128);
    CHECK(o->round_to == 16);
    CHECK(o->drop_encoder_layers == "1,2");
    CHECK(o->heldout_seed == 3);
    CHECK(o->corpus == std::vector<std::string>{"shards"});
    CHECK(o->score == "magnitude");
    CHECK(o->hidden == openba::kUnset);
  }
  CLI::App strict;
  openba::CompressOptions refused;
  openba::add_compress_flags(strict, refused);
  std::vector<std::string> negative = {"-1", "--heldout-seed"};
  CHECK_THROWS(strict.parse(negative));
}

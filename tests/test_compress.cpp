// The compression library's pieces, against hand computations: unit
// bookkeeping (which rows/columns a unit owns, per-unit sums), top-k and
// lowest-k choices, the instrumented block forward, the blockwise runner, and
// the spiece.model editor.
#include "arch/openba/openba_model.h"
#include "tests/torch_test.h"

#include <filesystem>

#include "runtime/blockwise.h"
#include "compress/layer_stage.h"
#include "compress/width_scores.h"
#include "compress/width_units.h"
#include "runtime/checkpoint.h"
#include "arch/openba/init.h"
#include "runtime/model_io.h"
#include "tests/test_util.h"
#include "tokenizer/spiece_edit.h"
#include "tokenizer/spiece_model.h"
#include "util/error.h"

namespace {

// kv 2, 3 heads: attention width 6 != d_model 4; ffn 5.
openba::ModelConfig tiny() { return openba::test::small_config(2, 2, 4, 3, 2, 5, 16); }

}  // namespace

TEST_CASE("compress: a head owns its interleaved q/k/v rows and its o columns", "[compress]") {
  const auto c = tiny();
  // qkv rows 0..17: head h owns [6h, 6h+6). Rows numbered so slicing is visible.
  auto qkv = torch::arange(18 * 4, torch::kFloat).view({18, 4});
  auto keep = openba::all_units(c);
  keep.heads[1][0] = {0, 2};
  keep.hidden = {1, 3};
  auto sliced = openba::slice_tensor("decoder.block.0.self_attn.qkv.weight", qkv, c, keep);
  REQUIRE(sliced.sizes() == torch::IntArrayRef({12, 2}));
  // Rows 0..5 and 12..17; columns 1 and 3.
  CHECK(sliced[0][0].item<float>() == 1);
  CHECK(sliced[5][1].item<float>() == 5 * 4 + 3);
  CHECK(sliced[6][0].item<float>() == 12 * 4 + 1);
  auto o = torch::arange(4 * 6, torch::kFloat).view({4, 6});
  auto so = openba::slice_tensor("decoder.block.0.self_attn.o.weight", o, c, keep);
  REQUIRE(so.sizes() == torch::IntArrayRef({2, 4}));
  CHECK(so[0][0].item<float>() == 6 * 1 + 0);   // row 1, column 0 (head 0)
  CHECK(so[1][2].item<float>() == 6 * 3 + 4);   // row 3, column 4 (head 2)
  // Cross kv: head h owns rows [4h, 4h+4) ([k_h; v_h]).
  keep.cross_heads[1] = {1};
  auto kv = torch::arange(12, torch::kFloat);
  auto skv = openba::slice_tensor("decoder.block.1.inter_attn.kv.bias", kv, c, keep);
  CHECK(torch::equal(skv, torch::tensor({4.f, 5.f, 6.f, 7.f})));
  // The encoder's heads were not touched.
  CHECK(openba::slice_tensor("encoder.block.0.self_attn.qkv.bias", torch::arange(18, torch::kFloat), c, keep).size(0) == 18);
}

TEST_CASE("compress: an FFN neuron owns its gate and up rows and its fc_out column", "[compress]") {
  const auto c = tiny();
  auto keep = openba::all_units(c);
  keep.ffn[0][1] = {1, 4};
  auto fc_in = torch::arange(10, torch::kFloat).view({10, 1}).expand({10, 4}).contiguous();
  auto s = openba::slice_tensor("encoder.block.1.mlp.fc_in.weight", fc_in, c, keep);
  CHECK(torch::equal(s.select(1, 0), torch::tensor({1.f, 4.f, 6.f, 9.f})));  // gate 1, 4; up 5+1, 5+4
  // Per-unit sums by hand: values 1 everywhere -> each neuron sums 2 rows x 4 columns.
  auto scores = openba::WidthScores::zeros(c, "test");
  openba::accumulate_unit_sums("encoder.block.1.mlp.fc_in.weight", torch::ones({10, 4}), c, scores);
  CHECK(scores.ffn[0][1] == std::vector<double>{8, 8, 8, 8, 8});
  CHECK(scores.hidden == std::vector<double>{10, 10, 10, 10});
  openba::accumulate_unit_sums("encoder.block.1.mlp.fc_out.weight", torch::arange(20, torch::kFloat).view({4, 5}), c, scores);
  // Column j of [[0..4],[5..9],[10..14],[15..19]] sums to 30 + 4j; row i sums to 10 + 25i.
  CHECK(scores.ffn[0][1] == std::vector<double>{38, 42, 46, 50, 54});
  CHECK(scores.hidden == std::vector<double>{20, 45, 70, 95});
}

TEST_CASE("compress: top and lowest choices break ties deterministically", "[compress]") {
  CHECK(openba::top_units({0.5, 2, 2, 1}, 2) == std::vector<int64_t>{1, 2});
  CHECK(openba::top_units({3, 1, 3, 3}, 2) == std::vector<int64_t>{0, 2});
  CHECK(openba::lowest_scores({0.1, 0.3, 0.1, 0.9}, 1) == std::vector<int64_t>{2});
  CHECK(openba::lowest_scores({0.4, 0.3, 0.2, 0.9}, 2) == std::vector<int64_t>{1, 2});
  CHECK(openba::parse_layer_list("7, 4", 12, "--x") == std::vector<int64_t>{4, 7});
  CHECK_THROWS_WITH(openba::parse_layer_list("4,x", 12, "--x"), Catch::Contains("'x' is not a layer number"));
}

TEST_CASE("compress: the instrumented block forward equals the block's own", "[compress]") {
  for (bool decoder : {false, true}) {
    const auto c = openba::test::small_config(1, 1, 16, 2, 8, 24, 32);
    openba::OpenBAModel model(c);
    openba::initialize_weights(*model, 3);
    model->eval();
    torch::NoGradGuard no_grad;
    auto x = torch::randn({2, 5, 16});
    auto memory = torch::randn({2, 7, 16});
    auto mask = torch::ones({2, 5}, torch::kLong);
    mask[1][4] = 0;
    auto mem_mask = torch::ones({2, 7}, torch::kLong);
    mem_mask[0][6] = 0;
    const auto self_mask = openba::key_padding_mask(mask, decoder);
    const auto memory_mask = openba::key_padding_mask(mem_mask);
    const auto rope = openba::make_rotary_tables(5, 8, c.rope_base, torch::kCPU);
    auto& block = decoder ? *model->decoder->layer(0) : *model->encoder->layer(0);
    auto expected = decoder ? block.forward(x, self_mask, rope, memory, memory_mask) : block.forward(x, self_mask, rope);
    openba::StackInputs inputs;
    inputs.self_mask = self_mask;
    inputs.rope = rope;
    if (decoder) {
      inputs.memory = memory;
      inputs.memory_mask = memory_mask;
    }
    const auto probe = openba::probe_block(block, x, inputs);
    CHECK(torch::allclose(probe.out, expected, 1e-5, 1e-5));
    CHECK(probe.norms.size() == (decoder ? 3u : 2u));
    CHECK(probe.ffn.size(-1) == 24);
    CHECK(probe.self_context.size(-1) == 16);
  }
}

TEST_CASE("compress: the blockwise runner gives openba-eval's losses and can bypass a block", "[compress]") {
  openba::test::TempDir dir;
  const auto c = openba::test::small_config(2, 3, 16, 2, 8, 24, 40);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 5);
  model->eval();
  const std::string path = openba::save_model(*model, dir / "m", openba::DType::F32, {});
  const auto checkpoint = openba::Checkpoint::open(path);
  std::vector<openba::Example> examples = {{{5, 6, 7, 1}, {8, 9, 1}}, {{10, 11, 1}, {12, -100, 13, 1}}};
  const openba::BlockwiseModel blockwise(checkpoint);
  auto batches = openba::make_block_batches(examples, {}, c, 8, 1000);
  const auto ours = openba::run_blockwise(blockwise, batches, {});
  std::vector<const openba::Example*> members = {&examples[0], &examples[1]};
  const auto batch = openba::collate(members, c, torch::kCPU);
  const auto expected = openba::example_losses(*model, batch);
  // plan_batches sorts longest first: both examples are in the one batch.
  REQUIRE(ours.size() == 1);
  double a = 0, b = 0;
  for (const auto& l : ours[0]) a += l.nll_sum;
  for (const auto& l : expected) b += l.nll_sum;
  CHECK(a == Approx(b).epsilon(1e-5));
  // Bypassing decoder block 1 == a model whose decoder list lacks it.
  openba::BlockwiseRun skip;
  skip.skip.insert({true, 1});
  const auto skipped = openba::run_blockwise(blockwise, batches, skip);
  auto kept = torch::nn::ModuleList();
  kept->push_back(model->decoder->block[0]);
  kept->push_back(model->decoder->block[2]);
  model->decoder->block = model->decoder->replace_module("block", kept);
  const auto bypassed = openba::example_losses(*model, batch);
  double s = 0, t = 0;
  for (const auto& l : skipped[0]) s += l.nll_sum;
  for (const auto& l : bypassed) t += l.nll_sum;
  CHECK(s == Approx(t).epsilon(1e-5));
  CHECK(std::abs(s - a) > 1e-3);
}

TEST_CASE("compress: spiece.model editing keeps the chosen pieces and every other field", "[compress]") {
  const std::string model = openba::test::synthetic_spiece_model(8);
  const std::vector<bool> all(8, true);
  CHECK(openba::keep_spiece_pieces(model, all, "m") == model);
  std::vector<bool> some = {true, true, true, false, true, false, false, true};
  const std::string edited = openba::keep_spiece_pieces(model, some, "m");
  const auto parsed = openba::parse_spiece_model(edited, "edited");
  REQUIRE(parsed.pieces.size() == 5);
  CHECK(parsed.pieces[3].text == "p4");
  CHECK(parsed.pieces[4].text == "p7");
  CHECK(parsed.unk_id == 2);  // trainer_spec carried over
  CHECK(edited.size() < model.size());
  CHECK_THROWS_WITH(openba::keep_spiece_pieces(model, std::vector<bool>(7, true), "m.model"),
                    Catch::Contains("m.model"));
  CHECK_THROWS_WITH(openba::keep_spiece_pieces("\x0a\xff", all, "bad.model"), Catch::Contains("bad.model"));
}

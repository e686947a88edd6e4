// Properties of the OpenBA forward pass that hold whatever the weights.
#include "tests/torch_test.h"

#include "arch/openba/config.h"
#include "runtime/evaluation.h"
#include "arch/openba/init.h"
#include "arch/openba/openba_model.h"
#include "tests/test_util.h"

namespace {

// Attention width 2 x 8 = 16 != d_model 32, as in OpenBA.
openba::ModelConfig small_config() { return openba::test::small_config(2, 2, 32, 2, 8, 40, 96); }

openba::OpenBAModel small_model(uint64_t seed = 7) {
  openba::OpenBAModel model(small_config());
  openba::initialize_weights(*model, seed);
  model->eval();
  return model;
}

torch::Tensor ids(std::vector<int64_t> values) {
  return torch::tensor(values, torch::kLong).view({1, static_cast<int64_t>(values.size())});
}

openba::Seq2SeqBatch single(const std::vector<int64_t>& input, const std::vector<int64_t>& labels,
                            const openba::ModelConfig& c) {
  openba::Seq2SeqBatch b;
  b.input_ids = ids(input);
  b.attention_mask = torch::ones_like(b.input_ids);
  b.labels = ids(labels);
  b.decoder_input_ids = openba::shift_right(b.labels, c.decoder_start_token_id, c.pad_token_id);
  return b;
}

}  // namespace

TEST_CASE("model: forward shapes", "[model]") {
  auto model = small_model();
  const auto& c = model->config;
  openba::Seq2SeqBatch b;
  b.input_ids = torch::randint(3, c.vocab_size, {3, 7}, torch::kLong);
  b.attention_mask = torch::ones({3, 7}, torch::kLong);
  b.labels = torch::randint(3, c.vocab_size, {3, 5}, torch::kLong);
  b.decoder_input_ids = openba::shift_right(b.labels, 0, 0);
  torch::NoGradGuard no_grad;
  auto enc = model->encode(b.input_ids, b.attention_mask);
  CHECK(enc.sizes() == torch::IntArrayRef({3, 7, 32}));
  auto logits = model->forward(b);
  CHECK(logits.sizes() == torch::IntArrayRef({3, 5, 96}));
  CHECK(logits.scalar_type() == torch::kFloat);
  CHECK(torch::isfinite(logits).all().item<bool>());
}

TEST_CASE("model: shift_right puts the start token first and -100 becomes pad", "[model]") {
  auto shifted = openba::shift_right(ids({5, 6, -100, 7}), 0, 0);
  CHECK(torch::equal(shifted, ids({0, 5, 6, 0})));
  CHECK(torch::equal(openba::shift_right(ids({9}), 3, 0), ids({3})));
}

TEST_CASE("model: the decoder is causal", "[model]") {
  auto model = small_model();
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> input = {5, 9, 13, 1};
  std::vector<int64_t> labels = {20, 21, 22, 23, 24, 1};
  auto before = model->forward(single(input, labels, model->config));
  labels[3] = 77;  // changes decoder input at position 4
  auto after = model->forward(single(input, labels, model->config));
  CHECK(torch::equal(before.narrow(1, 0, 4), after.narrow(1, 0, 4)));
  // ...and the change does reach the positions that see it.
  CHECK_FALSE(torch::allclose(before.narrow(1, 4, 2), after.narrow(1, 4, 2)));
}

TEST_CASE("model: encoder padding does not change the result", "[model]") {
  auto model = small_model();
  const auto& c = model->config;
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> input = {5, 9, 13, 40, 1};
  const std::vector<int64_t> labels = {20, 21, 22, 1};
  auto reference = model->forward(single(input, labels, c));

  // Same example padded to 9 encoder tokens with junk ids under a zero mask.
  auto padded = single(input, labels, c);
  padded.input_ids = ids({5, 9, 13, 40, 1, 88, 87, 86, 85});
  padded.attention_mask = ids({1, 1, 1, 1, 1, 0, 0, 0, 0});
  auto result = model->forward(padded);
  CHECK(torch::allclose(reference, result, 1e-5, 1e-5));
  // Without the mask the junk would leak in (so the comparison above means something).
  padded.attention_mask = torch::ones_like(padded.attention_mask);
  CHECK_FALSE(torch::allclose(reference, model->forward(padded), 1e-5, 1e-5));
}

TEST_CASE("model: rotary scores depend only on relative position", "[model]") {
  const int64_t t = 12, kv = 8;
  auto rope = openba::make_rotary_tables(t, kv, 10000.0, torch::kCPU);
  torch::manual_seed(3);
  auto q = torch::randn({kv}).view({1, 1, 1, kv}).expand({1, t, 1, kv}).contiguous();
  auto k = torch::randn({kv}).view({1, 1, 1, kv}).expand({1, t, 1, kv}).contiguous();
  auto qr = openba::apply_rotary(q, rope).view({t, kv});
  auto kr = openba::apply_rotary(k, rope).view({t, kv});
  auto score = [&](int64_t m, int64_t n) { return torch::dot(qr[m], kr[n]).item<double>(); };
  for (int64_t shift : {1, 3, 5}) {
    CHECK(score(2, 0) == Approx(score(2 + shift, shift)).margin(1e-5));
    CHECK(score(1, 4) == Approx(score(1 + shift, 4 + shift)).margin(1e-5));
  }
  // Different offsets give different scores, and norms are preserved.
  CHECK(score(2, 0) != Approx(score(3, 0)).margin(1e-3));
  CHECK(torch::allclose(qr.norm(2, 1), q.view({t, kv}).norm(2, 1), 1e-5, 1e-5));
  // Position 0 is the identity.
  CHECK(torch::allclose(qr[0], q.view({t, kv})[0]));
}

TEST_CASE("model: lm_head is tied to the embedding until untied", "[model]") {
  auto model = small_model();
  CHECK(model->lm_head_tied());
  CHECK(openba::unique_named_parameters(*model).size() + 1 == model->named_parameters().size());
  model->untie_lm_head();
  CHECK_FALSE(model->lm_head_tied());
  CHECK(torch::equal(model->lm_head->weight, model->shared_embedding->weight));
  CHECK(openba::unique_named_parameters(*model).size() == model->named_parameters().size());
  model->tie_lm_head();
  CHECK(model->lm_head_tied());
}

TEST_CASE("model: initialization depends only on seed and tensor name", "[model]") {
  const auto c = small_config();
  const auto specs = openba::openba_tensor_specs(c);
  const auto& qkv = specs[3];  // encoder.block.0.self_attn.qkv.weight
  REQUIRE(qkv.name == "encoder.block.0.self_attn.qkv.weight");
  CHECK(torch::equal(openba::initial_tensor(qkv, c, 1), openba::initial_tensor(qkv, c, 1)));
  CHECK_FALSE(torch::equal(openba::initial_tensor(qkv, c, 1), openba::initial_tensor(qkv, c, 2)));
  // The tied output weight is the embedding.
  const auto lm_head = std::find_if(specs.begin(), specs.end(),
                                    [](const openba::TensorSpec& s) { return s.name == "lm_head.weight"; });
  REQUIRE(lm_head != specs.end());
  CHECK(torch::equal(openba::initial_tensor(*lm_head, c, 4), openba::initial_tensor(specs.front(), c, 4)));
  // megatron scheme: std 0.02, output projections scaled by 1/sqrt(2L).
  // (the descriptor's rules on larger shapes, for a sharp estimate of the std)
  auto fc_out_spec = *openba::find_tensor_spec("decoder.block.0.mlp.fc_out.weight", c);
  fc_out_spec.shape = {320, 400};
  auto fc_out = openba::initial_tensor(fc_out_spec, c, 5);
  CHECK(fc_out.std().item<double>() == Approx(0.02 / std::sqrt(4.0)).epsilon(0.02));
  auto emb_spec = *openba::find_tensor_spec("shared_embedding.weight", c);
  emb_spec.shape = {400, 300};
  auto emb = openba::initial_tensor(emb_spec, c, 5);
  CHECK(emb.std().item<double>() == Approx(0.02).epsilon(0.02));
}

TEST_CASE("evaluation: batching with padding gives the per-example losses", "[model][eval]") {
  auto model = small_model();
  const auto& c = model->config;
  std::vector<openba::Example> examples = {
      {{5, 9, 13, 1}, {20, 21, 1}},
      {{7, 1}, {30, -100, 31, 32, 33, 1}},
      {{8, 8, 8, 8, 8, 8, 8, 1}, {-100, -100}},
  };
  std::vector<openba::ExampleLoss> alone;
  for (const auto& e : examples) alone.push_back(openba::example_losses(*model, openba::collate({&e}, c, torch::kCPU))[0]);
  const auto batched = openba::example_losses(*model, openba::collate({&examples[0], &examples[1], &examples[2]}, c, torch::kCPU));
  for (size_t i = 0; i < examples.size(); ++i) {
    CHECK(batched[i].tokens == alone[i].tokens);
    CHECK(batched[i].nll_sum == Approx(alone[i].nll_sum).epsilon(1e-5));
  }
  CHECK(alone[1].tokens == 5);
  CHECK(alone[2].tokens == 0);
  // Hand check for example 0: mean NLL equals cross entropy over its logits.
  torch::NoGradGuard no_grad;
  auto logits = model->forward(single(examples[0].input_ids, examples[0].labels, c))[0];
  auto expected = torch::nn::functional::cross_entropy(logits, ids({20, 21, 1})[0]).item<double>();
  CHECK(alone[0].mean() == Approx(expected).epsilon(1e-5));
}

TEST_CASE("evaluation: plan_batches respects limits and covers every example once", "[eval]") {
  std::vector<openba::Example> examples;
  for (int i = 0; i < 50; ++i) {
    examples.push_back({std::vector<int64_t>(1 + (i * 7) % 23, 5), std::vector<int64_t>(1 + i % 5, 6)});
  }
  const auto batches = openba::plan_batches(examples, 4, 60);
  std::vector<int> seen(examples.size(), 0);
  for (const auto& batch : batches) {
    CHECK(batch.size() <= 4);
    size_t enc = 0, dec = 0;
    for (size_t i : batch) {
      seen[i]++;
      enc = std::max(enc, examples[i].input_ids.size());
      dec = std::max(dec, examples[i].labels.size());
    }
    CHECK((batch.size() == 1 || batch.size() * (enc + dec) <= 60));
  }
  for (int count : seen) CHECK(count == 1);
}

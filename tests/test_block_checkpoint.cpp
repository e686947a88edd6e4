// Activation checkpointing: the same loss and gradients, bit for bit, as
// keeping the activations; dropout masks replayed; the RNG stream untouched.
// And the autocast scope the trainer uses for CUDA mixed precision.
#include "tests/torch_test.h"

#include <functional>
#include <optional>
#include <set>

#include "ops/autocast.h"
#include "ops/compute_path.h"
#include "arch/openba/init.h"
#include "arch/openba/config.h"
#include "arch/openba/openba_model.h"
#include "tests/test_util.h"
#include "train/ul2_batch.h"
#include "tests/model_test_util.h"
#include "util/thread_pool.h"

namespace {

using openba::test::padded_batch;

struct StepResult {
  std::vector<torch::Tensor> values;  // loss, then every gradient
  int checkpoint_nodes = 0;
  torch::Tensor draw_after;           // a random draw after backward
};

// Autograd nodes of BlockFunction reachable from the loss.
int count_checkpoint_nodes(const torch::Tensor& loss) {
  std::set<torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> stack{loss.grad_fn().get()};
  int found = 0;
  while (!stack.empty()) {
    auto* node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->name().find("BlockFunction") != std::string::npos) ++found;
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return found;
}

StepResult training_step(openba::Seq2SeqModelImpl& model, const openba::Seq2SeqBatch& batch, bool checkpointing) {
  openba::set_activation_checkpointing(model, checkpointing);
  model.zero_grad();
  torch::manual_seed(99);
  auto parts = openba::seq2seq_loss(model, batch);
  StepResult r;
  r.checkpoint_nodes = count_checkpoint_nodes(parts.nll_sum);
  parts.nll_sum.backward();
  r.values.push_back(parts.nll_sum.detach().clone());
  for (const auto& [name, p] : openba::unique_named_parameters(model)) r.values.push_back(p.grad().clone());
  r.draw_after = torch::rand({8});
  return r;
}

// The same step without and with checkpointing (every block a checkpoint
// node in the second, none in the first).
std::pair<StepResult, StepResult> plain_and_recomputed(openba::Seq2SeqModelImpl& model,
                                                       const openba::Seq2SeqBatch& batch) {
  StepResult plain = training_step(model, batch, false);
  StepResult recomputed = training_step(model, batch, true);
  CHECK(plain.checkpoint_nodes == 0);
  CHECK(recomputed.checkpoint_nodes == model.config.encoder_layers + model.config.decoder_layers);
  return {std::move(plain), std::move(recomputed)};
}

void check_identical(const StepResult& a, const StepResult& b, openba::Seq2SeqModelImpl& model) {
  const auto names = openba::unique_named_parameters(model);
  REQUIRE(a.values.size() == b.values.size());
  CHECK(torch::equal(a.values[0], b.values[0]));
  for (size_t i = 1; i < a.values.size(); ++i) {
    INFO(names[i - 1].first);
    CHECK(torch::equal(a.values[i], b.values[i]));
  }
  CHECK(torch::equal(a.draw_after, b.draw_after));
}

}  // namespace

TEST_CASE("activation checkpointing: fused CPU path, bit-identical loss and gradients", "[checkpointing]") {
  openba::WorkerPool::instance().set_threads(2);
  const openba::ModelConfig c = openba::test::small_config(2, 3, 32, 4, 6, 40, 64);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 3, openba::InitScheme::kHf);
  model->train();
  const auto batch = padded_batch(c.vocab_size);
  const auto [plain, recomputed] = plain_and_recomputed(*model, batch);
  check_identical(plain, recomputed, *model);
  // Not trivially equal: the gradients are non-zero.
  CHECK(plain.values.back().abs().sum().item<double>() > 0);
  openba::WorkerPool::instance().set_threads(1);
}

TEST_CASE("activation checkpointing: dropout masks are replayed in the recomputation", "[checkpointing]") {
  const openba::ModelConfig c = openba::test::small_config(2, 2, 32, 4, 6, 40, 64);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 4, openba::InitScheme::kHf);
  openba::set_dropout(*model, 0.3);
  model->train();
  const auto batch = padded_batch(c.vocab_size);
  const auto [plain, recomputed] = plain_and_recomputed(*model, batch);
  check_identical(plain, recomputed, *model);
  // Dropout really is on: another seed gives another loss.
  openba::set_activation_checkpointing(*model, false);
  torch::manual_seed(100);
  auto other = openba::seq2seq_loss(*model, batch).nll_sum.detach();
  CHECK_FALSE(torch::equal(other, plain.values[0]));
}

TEST_CASE("activation checkpointing: plain ATen path and evaluation mode", "[checkpointing]") {
  const openba::ModelConfig c = openba::test::small_config(1, 2, 32, 4, 6, 40, 64);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 5, openba::InitScheme::kHf);
  model->train();
  const auto batch = padded_batch(c.vocab_size);
  {
    openba::CudaStylePath plain_ops;
    const auto [plain, recomputed] = plain_and_recomputed(*model, batch);
    check_identical(plain, recomputed, *model);
  }
  // Outside training nothing is checkpointed.
  model->eval();
  openba::set_activation_checkpointing(*model, true);
  auto parts = openba::seq2seq_loss(*model, batch);
  CHECK(count_checkpoint_nodes(parts.nll_sum) == 0);
}

TEST_CASE("activation checkpointing: T5 blocks, the position bias's gradient included", "[checkpointing][t5]") {
  // Both stacks' relative-bias tables get their gradients through the
  // checkpointed blocks' position-bias input; dropout on (replayed).
  const auto c = openba::parse_hf_config_json(
      R"({"model_type": "t5", "d_model": 32, "d_kv": 8, "d_ff": 40, "num_layers": 2, "num_decoder_layers": 2,
          "num_heads": 4, "vocab_size": 64, "relative_attention_num_buckets": 8, "feed_forward_proj": "gated-gelu",
          "tie_word_embeddings": false})",
      "config.json");
  auto model = openba::make_model(c);
  openba::initialize_weights(*model, 6, openba::InitScheme::kHf);
  openba::set_dropout(*model, 0.2);
  model->train();
  const auto batch = padded_batch(c.vocab_size);
  const auto [plain, recomputed] = plain_and_recomputed(*model, batch);
  // The same loss; gradients equal to rounding (not bit for bit as OpenBA's;
  // see arch/block_checkpoint.h). Dropout masks replayed: otherwise they
  // would differ by far more.
  CHECK(torch::equal(plain.values[0], recomputed.values[0]));
  const auto names = openba::unique_named_parameters(*model);
  for (size_t i = 1; i < plain.values.size(); ++i) {
    INFO(names[i - 1].first);
    const double scale = plain.values[i].abs().max().item<double>();
    CHECK((plain.values[i] - recomputed.values[i]).abs().max().item<double>() <= 2e-6 * (1 + scale));
    if (names[i - 1].first.find("relative_attention_bias") != std::string::npos) CHECK(scale > 0);
  }
  CHECK(torch::equal(plain.draw_after, recomputed.draw_after));
}

TEST_CASE("autocast scope: sets CUDA bf16 autocast for its lifetime and restores the previous state", "[precision]") {
  const openba::AutocastState before = openba::current_autocast_state();
  CHECK_FALSE(before.cuda_enabled);
  {
    openba::AutocastScope scope(openba::training_autocast(/*device_is_cuda=*/true));
    const auto inside = openba::current_autocast_state();
    CHECK(inside.cuda_enabled);
    CHECK(inside.cuda_dtype == c10::ScalarType::BFloat16);
    {
      openba::AutocastScope cpu(openba::training_autocast(false));  // CPU training: fp32, nothing enabled
      CHECK_FALSE(openba::current_autocast_state().cuda_enabled);
    }
    CHECK(openba::current_autocast_state().cuda_enabled);
  }
  CHECK_FALSE(openba::current_autocast_state().cuda_enabled);
  CHECK(openba::current_autocast_state().cuda_dtype == before.cuda_dtype);
}

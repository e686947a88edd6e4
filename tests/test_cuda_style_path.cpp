// The CUDA-style path (ops/compute_path.h: ATen ops, attention through
// scaled_dot_product_attention, AdamW through ATen's _fused_adamw_), forced
// on CPU, against the fused CPU kernels: the code a GPU runs is checked on a
// machine without one (the Python reference checks it too:
// tests/cli/test_tools.py EvalAgainstReference.test_cuda_style_path and
// tests/cli/test_pretrain.py Training.test_cuda_style_path).
#include "tests/torch_test.h"

#include <optional>

#include "ops/compute_path.h"
#include "runtime/evaluation.h"
#include "arch/openba/init.h"
#include "arch/openba/openba_model.h"
#include "tests/model_test_util.h"
#include "tests/test_util.h"
#include "train/adamw.h"
#include "train/ul2_batch.h"
#include "util/thread_pool.h"

namespace {

using openba::test::padded_batch;
using openba::test::PoolThreads;

struct Trajectory {
  std::vector<double> losses;
  std::vector<torch::Tensor> parameters;
};

// Three AdamW steps from the same initial weights.
Trajectory train(const openba::ModelConfig& c, const openba::Seq2SeqBatch& batch, bool cuda_style) {
  std::optional<openba::CudaStylePath> path;
  if (cuda_style) path.emplace();
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 3);
  model->train();
  const auto named = openba::unique_named_parameters(*model);
  openba::AdamW adam(openba::AdamW::default_groups(named), {});
  Trajectory t;
  for (int step = 0; step < 3; ++step) {
    for (const auto& item : named) {
      if (item.second.grad().defined()) item.second.mutable_grad().zero_();
    }
    auto parts = openba::seq2seq_loss(*model, batch);
    (parts.objective / 17.0).backward();
    adam.step(3e-3);
    t.losses.push_back(parts.nll_sum.item<double>());
  }
  for (const auto& item : named) t.parameters.push_back(item.second.detach().clone());
  return t;
}

}  // namespace

TEST_CASE("CUDA-style path on CPU: forward and gradients match the fused kernels", "[cuda-style][model]") {
  PoolThreads pool(3);
  const openba::ModelConfig c = openba::test::small_config(2, 3, 32, 4, 6, 40, 64);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 3, openba::InitScheme::kHf);  // large weights: a sharp check
  model->train();
  const auto batch = padded_batch(c.vocab_size);
  auto run = [&](bool cuda_style) {
    std::optional<openba::CudaStylePath> path;
    if (cuda_style) path.emplace();
    REQUIRE(openba::cuda_style_path_forced() == cuda_style);
    REQUIRE((openba::select_op_backend(torch::zeros({1})).id() == openba::OpBackendId::kCpuTraining) == !cuda_style);
    model->zero_grad();
    auto parts = openba::seq2seq_loss(*model, batch);
    parts.nll_sum.backward();
    std::vector<torch::Tensor> out{parts.nll_sum.detach().clone(), parts.example_nll.clone()};
    for (const auto& item : openba::unique_named_parameters(*model)) out.push_back(item.second.grad().clone());
    return out;
  };
  const auto fused = run(false);
  const auto aten = run(true);
  CHECK(fused[0].item<double>() == Approx(aten[0].item<double>()).epsilon(1e-5));
  CHECK(torch::allclose(fused[1], aten[1], 1e-5, 1e-5));
  const auto names = openba::unique_named_parameters(*model);
  for (size_t i = 2; i < fused.size(); ++i) {
    INFO(names[i - 2].first);
    CHECK(torch::allclose(fused[i], aten[i], 1e-3, 1e-4));
  }
}

TEST_CASE("CUDA-style path on CPU: three training steps (fused AdamW) follow the fused kernels", "[cuda-style][model]") {
  PoolThreads pool(3);
  const openba::ModelConfig c = openba::test::small_config(2, 3, 32, 4, 6, 40, 64);
  const auto batch = padded_batch(c.vocab_size);
  const Trajectory fused = train(c, batch, false);
  const Trajectory aten = train(c, batch, true);
  for (size_t i = 0; i < fused.losses.size(); ++i) {
    INFO("step " << i);
    CHECK(fused.losses[i] == Approx(aten.losses[i]).epsilon(1e-5));
  }
  CHECK(fused.losses.back() < fused.losses.front());  // it trains
  openba::OpenBAModel names_of(c);
  const auto names = openba::unique_named_parameters(*names_of);
  for (size_t i = 0; i < fused.parameters.size(); ++i) {
    INFO(names[i].first << ": max difference " << (fused.parameters[i] - aten.parameters[i]).abs().max().item<double>());
    // 3e-5: the key half of cross-attention's kv.bias has a zero gradient in
    // exact arithmetic (it shifts every score of a query alike), so AdamW's
    // normalized step moves it by rounding noise, ~1e-5 after 3 steps here.
    CHECK(torch::allclose(fused.parameters[i], aten.parameters[i], 1e-4, 3e-5));
  }
}

TEST_CASE("CUDA-style path on CPU: a batch without padding passes no mask (SDPA's causal path)", "[cuda-style][model]") {
  PoolThreads pool(2);
  const openba::ModelConfig c = openba::test::small_config(1, 2, 32, 4, 6, 40, 64);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 4, openba::InitScheme::kHf);
  model->eval();
  std::vector<openba::Example> examples(3);
  for (size_t i = 0; i < examples.size(); ++i) {
    for (int j = 0; j < 8; ++j) examples[i].input_ids.push_back(3 + (7 * i + 5 * j) % 60);
    for (int j = 0; j < 6; ++j) examples[i].labels.push_back(3 + (11 * i + 3 * j) % 60);
  }
  std::vector<const openba::Example*> members;
  for (const auto& e : examples) members.push_back(&e);
  const auto batch = openba::collate(members, c, torch::kCPU);
  CHECK_FALSE(batch.inputs_padded);
  CHECK_FALSE(batch.targets_padded);
  CHECK_FALSE(batch.encoder_mask().defined());
  torch::NoGradGuard no_grad;
  const auto fused = model->forward(batch);
  torch::Tensor aten;
  {
    openba::CudaStylePath path;
    aten = model->forward(batch);
  }
  CHECK(torch::allclose(fused, aten, 1e-4, 1e-4));
  // One shorter example: the masks come back.
  examples[1].labels.pop_back();
  const auto padded = openba::collate(members, c, torch::kCPU);
  CHECK(padded.targets_padded);
  CHECK_FALSE(padded.inputs_padded);
  CHECK(padded.decoder_mask().defined());
}

TEST_CASE("fused AdamW: ATen's _fused_adamw_ equals the CPU loop, decay groups included", "[cuda-style][adamw]") {
  torch::manual_seed(5);
  const openba::AdamWOptions options{0.9, 0.95, 1e-8, 0.1};
  std::vector<openba::AdamWSlice> loop, aten;
  for (int i = 0; i < 4; ++i) {
    const auto p = torch::randn({37 + i});
    const auto m = torch::randn({37 + i}) * 0.1;
    const auto v = torch::rand({37 + i}) * 0.01;
    loop.push_back({p.clone(), {}, m.clone(), v.clone(), i % 2 == 0});
    aten.push_back({p.clone(), {}, m.clone(), v.clone(), i % 2 == 0});
  }
  for (int64_t t = 1; t <= 3; ++t) {
    for (size_t i = 0; i < loop.size(); ++i) loop[i].g = aten[i].g = torch::randn_like(loop[i].p);
    const auto sizes = openba::AdamWStepSizes::at(t, 1e-2, options);
    openba::adamw_update(loop, options.weight_decay, sizes);
    openba::CudaStylePath path;
    openba::adamw_update(aten, options.weight_decay, sizes);
  }
  for (size_t i = 0; i < loop.size(); ++i) {
    INFO("slice " << i);
    CHECK(torch::allclose(loop[i].p, aten[i].p, 1e-6, 1e-6));
    CHECK(torch::allclose(loop[i].m, aten[i].m, 1e-6, 1e-7));
    CHECK(torch::allclose(loop[i].v, aten[i].v, 1e-6, 1e-8));
  }
  // Decay really differs between the groups (a kernel ignoring it would pass the above only by luck).
  CHECK_FALSE(torch::allclose(loop[0].p, loop[1].p.narrow(0, 0, 37)));
}

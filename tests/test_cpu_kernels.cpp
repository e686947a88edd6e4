// The fused CPU kernels against the plain ATen path they replace.
#include "tests/torch_test.h"

#include "ops/blas.h"
#include "ops/compute_path.h"
#include "ops/cpu_allocator.h"
#include "ops/cpu_kernels.h"
#include "ops/cpu_runtime.h"
#include "ops/small_gemm.h"
#include "arch/openba/init.h"
#include "arch/openba/openba_model.h"
#include "tests/model_test_util.h"
#include "tests/test_util.h"
#include "util/thread_pool.h"

namespace {

using openba::test::PoolThreads;

}  // namespace

TEST_CASE("cpu kernels: sgemm_row_major matches at::mm for every transpose", "[kernels]") {
  REQUIRE(openba::have_direct_sgemm());
  torch::manual_seed(1);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      auto a = ta ? torch::randn({7, 5}) : torch::randn({5, 7});  // op(A): [5, 7]
      auto b = tb ? torch::randn({3, 7}) : torch::randn({7, 3});  // op(B): [7, 3]
      auto c = torch::full({5, 3}, 2.0);
      openba::sgemm_row_major(ta, tb, 5, 3, 7, 0.5f, a.data_ptr<float>(), a.size(1), b.data_ptr<float>(),
                              b.size(1), 1.0f, c.data_ptr<float>(), 3);
      auto expected = 2.0 + 0.5 * torch::mm(ta ? a.t() : a, tb ? b.t() : b);
      CHECK(torch::allclose(c, expected, 1e-5, 1e-5));
    }
  }
}

TEST_CASE("blas: the direct BLAS's threads are set and read back", "[kernels][blas]") {
  // CTest runs this under OPENBA_BLAS=openblas and OPENBA_BLAS=torch (the wheel's MKL).
  REQUIRE(openba::have_direct_sgemm());
  INFO(openba::direct_blas_name());
  const int before = openba::blas_threads();
  REQUIRE(before > 0);
  openba::set_blas_threads(2);
  CHECK(openba::blas_threads() == 2);
  openba::set_blas_threads(1);
  CHECK(openba::blas_threads() == 1);
  openba::set_blas_threads(before);
}

TEST_CASE("cpu kernels: split_qkv_rotary equals bias + per-head split + apply_rotary", "[kernels]") {
  PoolThreads pool(3);
  torch::NoGradGuard no_grad;
  const int64_t b = 2, t = 5, h = 3, kv = 8;
  auto qkv = torch::randn({b, t, h * 3 * kv});
  auto bias = torch::randn({h * 3 * kv});
  auto rope = openba::make_rotary_tables(t + 2, kv, 10000.0, torch::kCPU);
  auto [q, k, v] = openba::cpu::split_qkv_rotary(qkv, bias, h, kv, rope.cos, rope.sin, 0.5f);
  auto per_head = (qkv + bias).view({b, t, h, 3, kv});
  CHECK(torch::allclose(q, 0.5 * openba::apply_rotary(per_head.select(3, 0), rope).transpose(1, 2), 1e-6, 1e-6));
  CHECK(torch::allclose(k, openba::apply_rotary(per_head.select(3, 1), rope).transpose(1, 2), 1e-6, 1e-6));
  CHECK(torch::equal(v, per_head.select(3, 2).transpose(1, 2)));
}

TEST_CASE("cpu kernels: attention equals masked softmax attention, fully masked rows included", "[kernels]") {
  PoolThreads pool(3);
  torch::NoGradGuard no_grad;
  const int64_t b = 3, h = 2, tq = 6, tk = 9, kv = 4;
  auto q = torch::randn({b, h, tq, kv});
  auto k = torch::randn({b, tk, h, kv}).transpose(1, 2);  // strided, as in cross-attention
  auto v = torch::randn({b, tk, h, kv}).transpose(1, 2);
  auto hidden = torch::zeros({b, tk}, torch::kBool);
  hidden[0].narrow(0, 5, 4).fill_(true);  // padding
  hidden[2].fill_(true);                  // nothing visible: uniform weights, as the reference
  for (bool causal : {false, true}) {
    const int64_t tqc = causal ? tk : tq;
    auto qc = causal ? torch::randn({b, h, tk, kv}) : q;
    openba::AttentionMask mask;
    mask.key_hidden = hidden;
    mask.causal = causal;
    auto scores = torch::matmul(qc, k.transpose(-1, -2)) * 0.7;
    scores = scores.masked_fill(mask.dense(tqc, tk), -10000.0);
    auto expected = torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({b, tqc, h * kv});
    auto got = openba::cpu::attention(qc, k, v, hidden, causal, 0.7);
    CHECK(torch::allclose(got, expected, 1e-5, 1e-5));
  }
}

TEST_CASE("cpu kernels: layer_norm, rms_norm, the MLP activations, swiglu and add_ match ATen", "[kernels]") {
  PoolThreads pool(3);
  torch::manual_seed(4);
  torch::NoGradGuard no_grad;
  auto x = torch::randn({4, 7, 33}) * 3 + 1;
  auto w = torch::randn({33});
  auto bias = torch::randn({33});
  CHECK(torch::allclose(openba::cpu::layer_norm(x, w, bias, 1e-5), at::layer_norm(x, {33}, w, bias, 1e-5), 1e-5, 1e-5));
  auto h = torch::randn({4, 7, 2 * 19});
  auto expected = torch::silu(h.narrow(-1, 0, 19)) * h.narrow(-1, 19, 19);
  CHECK(torch::allclose(openba::cpu::swiglu(h, 19), expected, 1e-6, 1e-6));
  // T5's RMS norm (fp32 mean of squares) and every MLP activation, gated and not.
  auto rms_expected = w * (x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6));
  CHECK(torch::allclose(openba::cpu::rms_norm(x, w, 1e-6), rms_expected, 1e-5, 1e-5));
  auto gate = torch::randn({3, 5000}) * 4;  // past tanh's and exp's saturation points too
  auto up = torch::randn({3, 5000});
  for (auto [kind, act] : std::vector<std::pair<openba::FfnActivation, torch::Tensor>>{
           {openba::FfnActivation::kSilu, torch::silu(gate)},
           {openba::FfnActivation::kRelu, torch::relu(gate)},
           {openba::FfnActivation::kGelu, torch::gelu(gate)},
           {openba::FfnActivation::kGeluTanh, torch::gelu(gate, "tanh")}}) {
    INFO(openba::ffn_activation_name(kind));
    // A few float ulps (std::erf's float result for gelu: up to 2e-6 of ATen's).
    CHECK(torch::allclose(openba::cpu::mlp_activation(gate, up, kind), act * up, 1e-5, 1e-5));
    CHECK(torch::allclose(openba::cpu::mlp_activation(gate, {}, kind), act, 1e-5, 1e-5));
  }
  auto y = torch::randn({300000});
  auto z = y.clone();
  auto d = torch::randn({300000});
  openba::cpu::add_(z, d);
  CHECK(torch::equal(z, y + d));
}

// A whole training step against the CUDA-style (ATen + SDPA) path: tests/test_cuda_style_path.cpp.
TEST_CASE("cpu kernels: the model's fused path equals its autograd path", "[kernels][model]") {
  PoolThreads pool(3);
  const openba::ModelConfig c = openba::test::small_config(2, 2, 32, 4, 6, 40, 64);
  openba::OpenBAModel model(c);
  openba::initialize_weights(*model, 3, openba::InitScheme::kHf);  // large weights: a sharp check
  model->eval();
  openba::Seq2SeqBatch batch;
  batch.input_ids = torch::randint(3, 64, {3, 9}, torch::kLong);
  batch.attention_mask = torch::ones({3, 9}, torch::kLong);
  batch.attention_mask[1].narrow(0, 4, 5).zero_();
  batch.labels = torch::randint(3, 64, {3, 7}, torch::kLong);
  batch.decoder_input_ids = openba::shift_right(batch.labels, 0, 0);
  batch.decoder_attention_mask = torch::ones({3, 7}, torch::kLong);
  batch.decoder_attention_mask[2].narrow(0, 5, 2).zero_();
  torch::Tensor generic;
  {
    openba::CudaStylePath aten_ops;  // the aten backend
    generic = model->forward(batch).detach();
  }
  torch::Tensor fused;
  {
    torch::NoGradGuard no_grad;
    REQUIRE(openba::select_op_backend(batch.attention_mask.to(torch::kFloat)).id() ==
            openba::OpBackendId::kCpuInference);
    fused = model->forward(batch);
  }
  CHECK(torch::allclose(fused, generic, 1e-4, 1e-4));
  CHECK((fused - generic).abs().max().item<double>() < 1e-3);
}

TEST_CASE("cpu allocator: large blocks are reused, the cache is bounded", "[kernels]") {
  openba::install_caching_cpu_allocator(64ull << 20);
  openba::release_cached_cpu_memory();
  const auto before = openba::cpu_cache_stats();
  for (int i = 0; i < 5; ++i) {
    auto t = torch::empty({4 << 20}, torch::kFloat);  // 16 MiB
    t.fill_(static_cast<float>(i));
    CHECK(t[123].item<float>() == static_cast<float>(i));
  }
  const auto after = openba::cpu_cache_stats();
  CHECK(after.reused - before.reused >= 4);
  CHECK(after.cached_bytes <= (64ull << 20));
  { auto big = torch::empty({32 << 20}, torch::kFloat); }  // 128 MiB: over the limit, not kept
  CHECK(openba::cpu_cache_stats().cached_bytes <= (64ull << 20));
  openba::release_cached_cpu_memory();
  CHECK(openba::cpu_cache_stats().cached_bytes == 0);
}

TEST_CASE("cpu kernels: linear splits rows or columns and adds the bias", "[kernels]") {
  PoolThreads pool(3);
  torch::NoGradGuard no_grad;
  // One row (a batch-1 decoding step: sgemv_ per column block); few rows:
  // column blocks; many: row blocks.
  for (const auto& [batch, rows] : {std::pair<int64_t, int64_t>{1, 1}, {2, 5}, {2, 1000}}) {
    auto x = torch::randn({batch, rows, 24});
    auto w = torch::randn({37, 24});
    auto b = torch::randn({37});
    CHECK(torch::allclose(openba::cpu::linear(x, w, b), torch::nn::functional::linear(x, w, b), 1e-5, 1e-5));
    CHECK(torch::allclose(openba::cpu::linear(x, w, {}), torch::matmul(x, w.t()), 1e-5, 1e-5));
  }
}

TEST_CASE("cpu kernels: the few-rows GEMM of decoding steps against ATen", "[kernels]") {
  if (!openba::cpu::small_gemm_available()) return;  // no AVX-512: linear keeps sgemm_
  torch::manual_seed(4);
  // Row tails of the 6-row blocks, column tails of the 4-column blocks, k
  // tails of the 16-lane vectors, and strided operands.
  for (int64_t m : {1, 2, 5, 6, 7, 13, 32}) {
    for (int64_t n : {1, 3, 4, 9}) {
      for (int64_t k : {1, 15, 16, 17, 40}) {
        INFO("m " << m << " n " << n << " k " << k);
        auto x = torch::randn({m, k + 3});
        auto w = torch::randn({n, k + 5});
        auto y = torch::full({m, n + 2}, 7.0f);
        openba::cpu::small_gemm_nt(m, n, k, x.data_ptr<float>(), k + 3, w.data_ptr<float>(), k + 5, y.data_ptr<float>(),
                                   n + 2);
        auto expected = torch::matmul(x.narrow(1, 0, k), w.narrow(1, 0, k).t());
        CHECK(torch::allclose(y.narrow(1, 0, n), expected, 1e-4, 1e-5));
        CHECK((y.narrow(1, n, 2) == 7.0f).all().item<bool>());  // nothing written past n
      }
    }
  }
}

#include <functional>

#include "ops/cpu_autograd.h"
#include "train/distillation.h"

namespace {

// Gradients of `loss(inputs...)` w.r.t. the inputs, computed twice: with the
// fused kernels and with plain ATen ops.
template <typename F>
void compare_gradients(std::vector<torch::Tensor> inputs, F fused, F plain, double tol = 1e-4) {
  auto grads_of = [&](F f) {
    std::vector<torch::Tensor> leaves;
    for (auto& t : inputs) leaves.push_back(t.detach().clone().requires_grad_(true));
    auto out = f(leaves);
    // A fixed random projection of the output makes every element matter.
    torch::manual_seed(11);
    (out * torch::randn_like(out)).sum().backward();
    std::vector<torch::Tensor> g{out.detach()};
    for (auto& l : leaves) g.push_back(l.grad());
    return g;
  };
  const auto a = grads_of(fused);
  const auto b = grads_of(plain);
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("tensor " << i << " (0 = output)");
    REQUIRE(a[i].defined());
    CHECK(torch::allclose(a[i], b[i], tol, tol));
  }
}

using Inputs = std::vector<torch::Tensor>;
using Fn = std::function<torch::Tensor(const Inputs&)>;

}  // namespace

TEST_CASE("cpu autograd kernels: gradients equal ATen's autograd", "[kernels][autograd]") {
  PoolThreads pool(3);
  torch::manual_seed(5);
  SECTION("linear, with and without bias") {
    compare_gradients<Fn>({torch::randn({2, 70, 24}), torch::randn({37, 24}), torch::randn({37})},
                          [](const Inputs& v) { return openba::cpu::linear_autograd(v[0], v[1], v[2]); },
                          [](const Inputs& v) { return torch::nn::functional::linear(v[0], v[1], v[2]); });
    compare_gradients<Fn>({torch::randn({3, 24}), torch::randn({400, 24})},
                          [](const Inputs& v) { return openba::cpu::linear_autograd(v[0], v[1], {}); },
                          [](const Inputs& v) { return torch::matmul(v[0], v[1].t()); });
  }
  SECTION("layer norm") {
    compare_gradients<Fn>({torch::randn({5, 9, 33}) * 2 + 1, torch::randn({33}), torch::randn({33})},
                          [](const Inputs& v) { return openba::cpu::layer_norm_autograd(v[0], v[1], v[2], 1e-5); },
                          [](const Inputs& v) { return at::layer_norm(v[0], {33}, v[1], v[2], 1e-5); });
  }
  SECTION("swiglu and add") {
    compare_gradients<Fn>({torch::randn({4, 6, 2 * 19}) * 3},
                          [](const Inputs& v) { return openba::cpu::swiglu_autograd(v[0], 19); },
                          [](const Inputs& v) { return torch::silu(v[0].narrow(-1, 0, 19)) * v[0].narrow(-1, 19, 19); });
    compare_gradients<Fn>({torch::randn({300}), torch::randn({300})},
                          [](const Inputs& v) { return openba::cpu::add_autograd(v[0], v[1]); },
                          [](const Inputs& v) { return v[0] + v[1]; });
  }
  SECTION("cross entropy with ignored targets") {
    auto targets = torch::randint(0, 50, {40}, torch::kLong);
    targets.narrow(0, 30, 10).fill_(-100);
    compare_gradients<Fn>({torch::randn({40, 50}) * 4},
                          [&](const Inputs& v) { return openba::cpu::cross_entropy_autograd(v[0], targets); },
                          [&](const Inputs& v) {
                            return torch::cross_entropy_loss(v[0], targets, {}, at::Reduction::None, -100);
                          });
  }
  SECTION("distillation KL, whole vocabulary and top-k, with ignored rows") {
    auto labels = torch::randint(0, 60, {24}, torch::kLong);
    labels.narrow(0, 20, 4).fill_(-100);
    const auto teacher_logits = torch::randn({24, 60}) * 3;
    for (int64_t top_k : {0, 7}) {
      for (double temperature : {1.0, 2.5}) {
        INFO("top_k " << top_k << ", temperature " << temperature);
        const auto t = openba::teacher_targets_from_logits(teacher_logits, labels, temperature, top_k);
        compare_gradients<Fn>(
            {torch::randn({24, 60}) * 2},
            [&](const Inputs& v) {
              return openba::cpu::distillation_autograd(v[0], labels, t.probs, t.index, t.neg_entropy, temperature);
            },
            [&](const Inputs& v) { return openba::distillation_loss_aten(v[0], labels, t, temperature); });
      }
    }
  }
  SECTION("self-attention with bias, rotary, padding, causal and a fully hidden row") {
    const int64_t b = 3, t = 7, h = 2, kv = 6;
    auto rope = openba::make_rotary_tables(t, kv, 10000.0, torch::kCPU);
    for (bool causal : {false, true}) {
      auto hidden = torch::zeros({b, t}, torch::kBool);
      hidden[0].narrow(0, 4, 3).fill_(true);
      hidden[2].fill_(true);
      openba::AttentionMask mask;
      mask.key_hidden = hidden;
      mask.causal = causal;
      compare_gradients<Fn>(
          {torch::randn({b, t, h * 3 * kv}), torch::randn({h * 3 * kv})},
          [&](const Inputs& v) {
            return openba::cpu::self_attention_autograd(v[0], v[1], h, kv, rope.cos, rope.sin, hidden, causal);
          },
          [&](const Inputs& v) {
            auto per_head = (v[0] + v[1]).view({b, t, h, 3, kv});
            auto q = openba::apply_rotary(per_head.select(3, 0), rope).transpose(1, 2);
            auto k = openba::apply_rotary(per_head.select(3, 1), rope).transpose(1, 2);
            auto vv = per_head.select(3, 2).transpose(1, 2);
            auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(kv));
            scores = scores.masked_fill(mask.dense(t, t), -10000.0);
            return torch::matmul(torch::softmax(scores, -1), vv).transpose(1, 2).reshape({b, t, h * kv});
          });
    }
  }
  SECTION("T5 RMS norm") {
    compare_gradients<Fn>({torch::randn({5, 9, 33}) * 2 + 1, torch::randn({33})},
                          [](const Inputs& v) { return openba::cpu::rms_norm_autograd(v[0], v[1], 1e-6); },
                          [](const Inputs& v) { return v[1] * (v[0] * torch::rsqrt(v[0].pow(2).mean(-1, true) + 1e-6)); });
  }
  SECTION("MLP activations, gated and ungated") {
    using openba::FfnActivation;
    const std::vector<std::pair<FfnActivation, std::function<torch::Tensor(const torch::Tensor&)>>> kinds{
        {FfnActivation::kSilu, [](const torch::Tensor& g) { return torch::silu(g); }},
        {FfnActivation::kRelu, [](const torch::Tensor& g) { return torch::relu(g); }},
        {FfnActivation::kGelu, [](const torch::Tensor& g) { return torch::gelu(g); }},
        {FfnActivation::kGeluTanh, [](const torch::Tensor& g) { return torch::gelu(g, "tanh"); }}};
    for (const auto& [kind, act] : kinds) {
      INFO(openba::ffn_activation_name(kind));
      compare_gradients<Fn>({torch::randn({4, 6, 50}) * 3, torch::randn({4, 6, 50})},
                            [&](const Inputs& v) { return openba::cpu::mlp_activation_autograd(v[0], v[1], kind); },
                            [&](const Inputs& v) { return act(v[0]) * v[1]; });
      compare_gradients<Fn>({torch::randn({4, 6, 50}) * 3},
                            [&](const Inputs& v) { return openba::cpu::mlp_activation_autograd(v[0], {}, kind); },
                            [&](const Inputs& v) { return act(v[0]); });
    }
  }
  SECTION("T5 attention: a shared or per-example position bias, padding, causal, a fully hidden row") {
    const int64_t b = 3, tq = 6, tk = 7, h = 2, kv = 5;
    for (bool causal : {false, true}) {
      for (int64_t bias_batch : {int64_t{0}, int64_t{1}, b}) {
        INFO("causal " << causal << ", bias batch " << bias_batch);
        auto hidden = torch::zeros({b, tk}, torch::kBool);
        hidden[0].narrow(0, 4, 3).fill_(true);
        hidden[2].fill_(true);
        openba::AttentionMask mask;
        mask.key_hidden = hidden;
        mask.causal = causal;
        Inputs leaves{torch::randn({b, tq, h * kv}), torch::randn({b, tk, h * kv}), torch::randn({b, tk, h * kv})};
        if (bias_batch) leaves.push_back(torch::randn({bias_batch, h, tq, tk}) * 2);
        const double scale = causal ? 1.0 : 0.7;
        compare_gradients<Fn>(
            leaves,
            [&](const Inputs& v) {
              return openba::cpu::biased_attention_autograd(v[0], v[1], v[2], h, kv, bias_batch ? v[3] : torch::Tensor(),
                                                            hidden, causal, scale);
            },
            [&](const Inputs& v) {
              auto heads = [&](const torch::Tensor& x, int64_t t) { return x.view({b, t, h, kv}).transpose(1, 2); };
              auto scores = torch::matmul(heads(v[0], tq), heads(v[1], tk).transpose(-1, -2)) * scale;
              if (bias_batch) scores = scores + v[3];
              scores = scores.masked_fill(mask.dense(tq, tk), -10000.0);
              return torch::matmul(torch::softmax(scores, -1), heads(v[2], tk)).transpose(1, 2).reshape({b, tq, h * kv});
            });
      }
    }
  }
  SECTION("cross-attention with padding") {
    const int64_t b = 2, tq = 5, tk = 8, h = 3, kv = 4;
    auto hidden = torch::zeros({b, tk}, torch::kBool);
    hidden[1].narrow(0, 5, 3).fill_(true);
    openba::AttentionMask mask;
    mask.key_hidden = hidden;
    compare_gradients<Fn>(
        {torch::randn({b, tq, h * kv}), torch::randn({b, tk, h * 2 * kv})},
        [&](const Inputs& v) { return openba::cpu::cross_attention_autograd(v[0], v[1], h, kv, hidden); },
        [&](const Inputs& v) {
          auto q = v[0].view({b, tq, h, kv}).transpose(1, 2);
          auto mixed = v[1].view({b, tk, h, 2, kv});
          auto k = mixed.select(3, 0).transpose(1, 2), vv = mixed.select(3, 1).transpose(1, 2);
          auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(kv));
          scores = scores.masked_fill(mask.dense(tq, tk), -10000.0);
          return torch::matmul(torch::softmax(scores, -1), vv).transpose(1, 2).reshape({b, tq, h * kv});
        });
  }
}

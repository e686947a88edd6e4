// The distillation loss (train/distillation.h) against hand computations
// and ATen's own KL divergence.
#include "tests/torch_test.h"

#include <cmath>
#include <vector>

#include "ops/cpu_autograd.h"
#include "train/distillation.h"

namespace {

std::vector<double> softmax(const std::vector<double>& x, double temperature) {
  double max = x[0], sum = 0;
  for (double v : x) max = std::max(max, v);
  std::vector<double> out;
  for (double v : x) out.push_back(std::exp((v - max) / temperature));
  for (double v : out) sum += v;
  for (double& v : out) v /= sum;
  return out;
}

torch::Tensor row(const std::vector<double>& v) { return torch::tensor(v, torch::kDouble).to(torch::kFloat).view({1, -1}); }

}  // namespace

TEST_CASE("distillation: T^2 KL and its gradient by hand, fused and ATen", "[train][distill]") {
  const std::vector<double> s = {1.0, 2.0, 0.0, -1.0}, t = {0.0, 1.0, 3.0, 0.5};
  for (double temperature : {1.0, 2.0}) {
    const auto p = softmax(t, temperature), q = softmax(s, temperature);
    double kl = 0;
    for (size_t j = 0; j < p.size(); ++j) kl += p[j] * std::log(p[j] / q[j]);
    const double expected = temperature * temperature * kl;
    const auto labels = torch::tensor(std::vector<int64_t>{2}, torch::kLong);
    const auto targets = openba::teacher_targets_from_logits(row(t), labels, temperature, 0);
    // The teacher's own CE at T = 1: logsumexp(t) - t[label].
    double lse = 0;
    for (double v : t) lse += std::exp(v);
    CHECK(targets.nll_sum.item<double>() == Approx(std::log(lse) - t[2]).epsilon(1e-6));
    for (bool fused : {true, false}) {
      INFO("temperature " << temperature << (fused ? ", fused" : ", ATen"));
      auto x = row(s).requires_grad_(true);
      const auto loss = fused ? openba::cpu::distillation_autograd(x, labels, targets.probs, targets.index,
                                                                  targets.neg_entropy, temperature)
                              : openba::distillation_loss_aten(x, labels, targets, temperature);
      CHECK(loss.item<double>() == Approx(expected).epsilon(1e-5));
      loss.sum().backward();
      // d(T^2 KL)/ds_j = T (q_j - p_j).
      for (size_t j = 0; j < s.size(); ++j) {
        CHECK(x.grad()[0][static_cast<int64_t>(j)].item<double>() == Approx(temperature * (q[j] - p[j])).margin(1e-6));
      }
    }
  }
}

TEST_CASE("distillation: equals ATen's kl_div; zero for the teacher itself; top-k", "[train][distill]") {
  torch::manual_seed(3);
  const int64_t rows = 32, vocab = 200;
  auto labels = torch::randint(0, vocab, {rows}, torch::kLong);
  labels.narrow(0, 0, 5).fill_(-100);
  const auto teacher = torch::randn({rows, vocab}) * 2;
  const auto student = torch::randn({rows, vocab}) * 2;
  const double temperature = 1.5;
  const auto counted = (labels != -100).to(torch::kFloat);

  SECTION("the whole vocabulary: kl_div(log q, p) summed per row, times T^2") {
    const auto targets = openba::teacher_targets_from_logits(teacher, labels, temperature, 0);
    const auto ours = openba::distillation_loss_aten(student, labels, targets, temperature);
    const auto p = torch::softmax(teacher / temperature, 1);
    const auto log_q = torch::log_softmax(student / temperature, 1);
    const auto theirs = torch::kl_div(log_q, p, at::Reduction::None).sum(1) * (temperature * temperature) * counted;
    CHECK(torch::allclose(ours, theirs, 1e-4, 1e-5));
    CHECK(ours.narrow(0, 0, 5).abs().max().item<double>() == 0.0);  // ignored rows
  }
  SECTION("the teacher against itself is 0, and any student is >= 0") {
    const auto targets = openba::teacher_targets_from_logits(teacher, labels, temperature, 0);
    CHECK(openba::distillation_loss_aten(teacher, labels, targets, temperature).abs().max().item<double>() < 1e-5);
    CHECK(openba::distillation_loss_aten(student, labels, targets, temperature).min().item<double>() >= -1e-6);
  }
  SECTION("top_k = vocabulary equals the whole; a smaller k renormalizes over the kept ids") {
    const auto all = openba::teacher_targets_from_logits(teacher, labels, temperature, 0);
    const auto every = openba::teacher_targets_from_logits(teacher, labels, temperature, vocab);
    CHECK(!every.index.defined());
    CHECK(torch::allclose(openba::distillation_loss_aten(student, labels, all, temperature),
                          openba::distillation_loss_aten(student, labels, every, temperature)));
    const int64_t k = 10;
    const auto top = openba::teacher_targets_from_logits(teacher, labels, temperature, k);
    REQUIRE(top.probs.sizes() == torch::IntArrayRef({rows, k}));
    CHECK(torch::allclose(top.probs.sum(1), torch::ones({rows}), 1e-5, 1e-5));
    // By hand for row 7: p over the k largest teacher logits, renormalized;
    // the student's log-probabilities over the whole vocabulary.
    const auto ids = std::get<1>(teacher[7].topk(k));
    const auto p = torch::softmax(teacher[7].index_select(0, ids) / temperature, 0);
    const auto log_q = torch::log_softmax(student[7] / temperature, 0).index_select(0, ids);
    const double expected = (temperature * temperature) * (p * (p.log() - log_q)).sum().item<double>();
    const auto ours = openba::distillation_loss_aten(student, labels, top, temperature);
    CHECK(ours[7].item<double>() == Approx(expected).epsilon(1e-5));
    CHECK(ours.min().item<double>() >= -1e-6);
  }
}

// The optimizer and schedule, against hand computations.
#include "tests/torch_test.h"

#include "train/adamw.h"

TEST_CASE("adamw: two steps by hand, fused CPU path and generic path agree", "[train]") {
  // p = 1, g = 0.5, lr 0.1, betas (0.9, 0.95), wd 0.1:
  //  step 1: p = 0.99 - (0.1 / 0.1) * 0.05 / (sqrt(0.0125) / sqrt(0.05)) = 0.99 - 0.1 = 0.89
  //  step 2: p = 0.89 * 0.99 - (0.1 / 0.19) * 0.095 / (sqrt(0.024375) / sqrt(0.0975)) = 0.8811 - 0.1 = 0.7811
  for (auto dtype : {torch::kFloat, torch::kDouble}) {  // float: fused loop; double: ATen ops
    auto p = torch::ones({1}, dtype).requires_grad_();
    openba::AdamWOptions o;
    o.beta1 = 0.9;
    o.beta2 = 0.95;
    o.eps = 0;
    o.weight_decay = 0.1;
    openba::AdamW adam({{"p", p, true}}, o);
    p.mutable_grad() = torch::full({1}, 0.5, dtype);
    adam.step(0.1);
    CHECK(p.item<double>() == Approx(0.89).epsilon(1e-6));
    adam.step(0.1);
    CHECK(p.item<double>() == Approx(0.7811).epsilon(1e-6));
    CHECK(adam.steps() == 2);
    const auto state = adam.state_tensors();
    REQUIRE(state.size() == 2);
    CHECK(state[0].first == "exp_avg.p");
    CHECK(state[0].second.item<double>() == Approx(0.095));
    CHECK(state[1].second.item<double>() == Approx(0.024375));
  }
  // No decay on norms and biases (rank < 2).
  auto groups = openba::AdamW::default_groups({{"w", torch::ones({2, 2})}, {"b", torch::ones({2})}});
  CHECK(groups[0].decay);
  CHECK_FALSE(groups[1].decay);
}

TEST_CASE("adamw: state round-trips and a mismatched state is refused", "[train]") {
  auto p = torch::randn({3, 4}).requires_grad_();
  openba::AdamW adam({{"w", p, true}}, {});
  p.mutable_grad() = torch::randn({3, 4});
  adam.step(0.01);
  std::map<std::string, torch::Tensor> saved;
  for (const auto& [name, t] : adam.state_tensors()) saved[name] = t.clone();
  auto q = p.detach().clone().requires_grad_();
  openba::AdamW restored({{"w", q, true}}, {});
  restored.load_state(saved, adam.steps(), "state.safetensors");
  p.mutable_grad() = torch::ones({3, 4});
  q.mutable_grad() = torch::ones({3, 4});
  adam.step(0.01);
  restored.step(0.01);
  CHECK(torch::equal(p, q));
  saved["exp_avg.w"] = torch::zeros({4, 3});
  CHECK_THROWS_WITH(restored.load_state(saved, 1, "state.safetensors"),
                    Catch::Matchers::Contains("state.safetensors") && Catch::Matchers::Contains("'exp_avg.w'"));
  saved.erase("exp_avg.w");
  CHECK_THROWS_WITH(restored.load_state(saved, 1, "state.safetensors"), Catch::Matchers::Contains("holds 1 tensors"));
}

TEST_CASE("learning rate: linear warmup, cosine decay to the floor", "[train]") {
  CHECK(openba::learning_rate(0, 1.0, 0.1, 10, 110) == Approx(0.1));
  CHECK(openba::learning_rate(9, 1.0, 0.1, 10, 110) == Approx(1.0));
  CHECK(openba::learning_rate(10, 1.0, 0.1, 10, 110) == Approx(1.0));
  CHECK(openba::learning_rate(60, 1.0, 0.1, 10, 110) == Approx(0.55));  // half way: 0.1 + 0.45 (1 + cos(pi/2))
  CHECK(openba::learning_rate(110, 1.0, 0.1, 10, 110) == Approx(0.1));
  CHECK(openba::learning_rate(500, 1.0, 0.1, 10, 110) == Approx(0.1));
  CHECK(openba::learning_rate(5, 1.0, 0.1, 0, 10) == Approx(0.55));
}

#include "compress/width_scores.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "runtime/blockwise.h"
#include "compress/data.h"
#include "runtime/checkpoint.h"
#include "runtime/model_io.h"
#include "util/counter_random.h"
#include "util/progress.h"

namespace openba {
namespace {

// Keeps what the activation score reads from a block's forward.
class RecordingProbe : public BlockProbe {
 public:
  explicit RecordingProbe(BlockActivations& into) : into_(into) {}
  void norm_output(const torch::Tensor& normed) override { into_.norms.push_back(normed); }
  void attention_context(bool cross, const torch::Tensor& context) override {
    (cross ? into_.cross_context : into_.self_context) = context;
  }
  void ffn_activation(const torch::Tensor& activation) override { into_.ffn = activation; }

 private:
  BlockActivations& into_;
};

// Per example: mean over real positions of `values` [B, T, U]; returns [B, U] (double).
torch::Tensor example_means(const torch::Tensor& values, const torch::Tensor& real) {
  auto r = real.to(torch::kDouble);  // [B, T, 1]
  return (values.to(torch::kDouble) * r).sum(1) / r.sum(1).clamp_min(1.0);
}

void add_squares(std::vector<double>& target, const torch::Tensor& per_example) {
  auto s = per_example.pow(2).sum(0).contiguous();
  const double* p = s.data_ptr<double>();
  for (size_t i = 0; i < target.size(); ++i) target[i] += p[i];
}

}  // namespace

BlockActivations probe_block(Seq2SeqBlockImpl& block, const torch::Tensor& x, const StackInputs& inputs) {
  torch::NoGradGuard no_grad;
  BlockActivations a;
  RecordingProbe probe(a);
  a.out = block.forward(aten_math_ops(), x, inputs, &probe);
  return a;
}

WidthScores activation_scores(const BlockwiseModel& model, std::vector<BlockBatch>& batches, Progress* progress) {
  const ModelConfig& c = model.config();
  WidthScores s = WidthScores::zeros(c, "activation");
  // Hidden channels: per example, summed over every LayerNorm, then L2 over examples.
  std::map<const BlockBatch*, torch::Tensor> hidden_per_example;
  BlockwiseRun run;
  run.losses = false;
  run.progress = progress;
  run.forward = [&](bool decoder, int64_t layer, Seq2SeqBlockImpl& block, BlockBatch& b, const torch::Tensor& x) {
    const auto a = probe_block(block, x, b.inputs);
    const auto real = b.real_positions(decoder);
    auto& acc = hidden_per_example[&b];
    for (const auto& n : a.norms) {
      auto m = example_means(n.abs(), real);
      acc = acc.defined() ? acc + m : m;
    }
    add_squares(s.ffn[decoder][static_cast<size_t>(layer)], example_means(a.ffn.abs(), real));
    const int64_t heads = c.num_heads, kv = c.kv_channels;
    auto head_norm = [&](const torch::Tensor& ctx) {
      return ctx.view({ctx.size(0), ctx.size(1), heads, kv}).norm(2, {-1});
    };
    add_squares(s.heads[decoder][static_cast<size_t>(layer)], example_means(head_norm(a.self_context), real));
    if (decoder) add_squares(s.cross_heads[static_cast<size_t>(layer)], example_means(head_norm(a.cross_context), real));
    return a.out;
  };
  run_blockwise(model, batches, run);
  for (const auto& [batch, acc] : hidden_per_example) add_squares(s.hidden, acc);
  auto root = [](std::vector<double>& v) {
    for (double& x : v) x = std::sqrt(x);
  };
  root(s.hidden);
  for (int st = 0; st < 2; ++st) {
    for (auto& v : s.heads[st]) root(v);
    for (auto& v : s.ffn[st]) root(v);
  }
  for (auto& v : s.cross_heads) root(v);
  return s;
}

WidthScores magnitude_scores(const Checkpoint& checkpoint, Progress* progress) {
  const ModelConfig& c = checkpoint.config();
  WidthScores s = WidthScores::zeros(c, "magnitude");
  const bool tied = checkpoint.lm_head_is_tied();
  for (const std::string& name : checkpoint.tensor_names()) {
    if (name == kLmHeadWeightName && tied) continue;  // one tensor, counted once
    auto t = checkpoint.tensor(name).to(torch::kDouble);
    accumulate_unit_sums(name, t * t, c, s);
    checkpoint.release(name);
    if (progress) progress->advance(1);
  }
  auto root = [](std::vector<double>& v) {
    for (double& x : v) x = std::sqrt(x);
  };
  root(s.hidden);
  for (int st = 0; st < 2; ++st) {
    for (auto& v : s.heads[st]) root(v);
    for (auto& v : s.ffn[st]) root(v);
  }
  for (auto& v : s.cross_heads) root(v);
  return s;
}

WidthScores taylor_scores(const Checkpoint& checkpoint, const ExampleSet& calibration, size_t max_batch,
                          size_t max_tokens, Progress* progress) {
  const ModelConfig& c = checkpoint.config();
  Seq2SeqModel model = load_model(checkpoint);
  model->eval();  // no dropout; gradients still flow
  for (auto& p : model->parameters()) p.set_requires_grad(true);
  for (const auto& indices : plan_batches(calibration.examples, max_batch, max_tokens)) {
    std::vector<const Example*> members;
    for (size_t i : indices) members.push_back(&calibration.examples[i]);
    const Seq2SeqBatch batch = collate(members, c, torch::kCPU);
    auto logits = model->forward(batch);
    auto loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), batch.labels.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
    loss.backward();
    if (progress) progress->advance(indices.size());
  }
  WidthScores s = WidthScores::zeros(c, "taylor");
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : unique_named_parameters(*model)) {
    if (!p.grad().defined()) continue;
    accumulate_unit_sums(name, (p * p.grad()).abs(), c, s);
  }
  return s;
}

WidthScores random_scores(const ModelConfig& c, uint64_t seed) {
  WidthScores s = WidthScores::zeros(c, "random");
  uint64_t stream = 0;
  auto fill = [&](std::vector<double>& v) {
    ++stream;
    for (size_t i = 0; i < v.size(); ++i) v[i] = counter_uniform(seed, stream, i);
  };
  fill(s.hidden);
  for (int st = 0; st < 2; ++st) {
    for (auto& v : s.heads[st]) fill(v);
    for (auto& v : s.ffn[st]) fill(v);
  }
  for (auto& v : s.cross_heads) fill(v);
  return s;
}

}  // namespace openba

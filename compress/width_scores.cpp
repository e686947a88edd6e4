#include "compress/width_scores.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "compress/blockwise.h"
#include "compress/data.h"
#include "model/checkpoint.h"
#include "model/model_io.h"
#include "util/counter_random.h"
#include "util/progress.h"

namespace openba {
namespace {

torch::Tensor layer_norm(const torch::nn::LayerNorm& ln, const torch::Tensor& x) {
  return torch::layer_norm(x, {x.size(-1)}, ln->weight, ln->bias, ln->options.eps());
}

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const AttentionMask& mask) {
  // q, k, v: [B, H, T, kv] -> context [B, Tq, H*kv]
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) * scale;
  auto hidden = mask.dense(q.size(2), k.size(2));
  if (hidden.defined()) scores = scores.masked_fill(hidden, -10000.0);
  auto out = torch::matmul(torch::softmax(scores, -1), v);
  return out.transpose(1, 2).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
}

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

BlockActivations probe_block(BlockImpl& block, const torch::Tensor& x, const AttentionMask& self_mask,
                             const RotaryTables& rope, const torch::Tensor& memory, const AttentionMask& memory_mask) {
  torch::NoGradGuard no_grad;
  BlockActivations a;
  const int64_t b = x.size(0), t = x.size(1);
  auto& sa = *block.self_attn;
  const int64_t heads = sa.heads, kv = sa.kv_channels;
  auto ln1 = layer_norm(block.input_layernorm, x);
  a.norms.push_back(ln1);
  auto mixed = torch::nn::functional::linear(ln1, sa.qkv->weight, sa.qkv->bias).view({b, t, heads, 3, kv});
  auto q = apply_rotary(mixed.select(3, 0), rope).transpose(1, 2);
  auto k = apply_rotary(mixed.select(3, 1), rope).transpose(1, 2);
  auto v = mixed.select(3, 2).transpose(1, 2);
  a.self_context = attend(q, k, v, self_mask);
  auto h = x + torch::nn::functional::linear(a.self_context, sa.o->weight, sa.o->bias);
  auto normed = layer_norm(block.post_attn_layernorm, h);
  a.norms.push_back(normed);
  if (block.is_decoder) {
    auto& ca = *block.inter_attn;
    const int64_t s = memory.size(1);
    auto cq = torch::nn::functional::linear(normed, ca.q->weight, ca.q->bias).view({b, t, heads, kv}).transpose(1, 2);
    auto ckv = torch::nn::functional::linear(memory, ca.kv->weight, ca.kv->bias).view({b, s, heads, 2, kv});
    a.cross_context = attend(cq, ckv.select(3, 0).transpose(1, 2), ckv.select(3, 1).transpose(1, 2), memory_mask);
    h = h + torch::nn::functional::linear(a.cross_context, ca.o->weight, ca.o->bias);
    normed = layer_norm(block.post_inter_attn_layernorm, h);
    a.norms.push_back(normed);
  }
  auto& mlp = *block.mlp;
  auto in = torch::nn::functional::linear(normed, mlp.fc_in->weight, mlp.fc_in->bias);
  a.ffn = torch::silu(in.narrow(-1, 0, mlp.ffn_hidden)) * in.narrow(-1, mlp.ffn_hidden, mlp.ffn_hidden);
  a.out = h + torch::nn::functional::linear(a.ffn, mlp.fc_out->weight, mlp.fc_out->bias);
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
  run.forward = [&](bool decoder, int64_t layer, BlockImpl& block, BlockBatch& b, const torch::Tensor& x) {
    const auto a = decoder ? probe_block(block, x, b.dec_mask, b.dec_rope, b.memory, b.memory_mask)
                           : probe_block(block, x, b.enc_mask, b.enc_rope, {}, {});
    const auto real = b.real_positions(decoder);
    auto& acc = hidden_per_example[&b];
    for (const auto& n : a.norms) {
      auto m = example_means(n.abs(), real);
      acc = acc.defined() ? acc + m : m;
    }
    add_squares(s.ffn[decoder][static_cast<size_t>(layer)], example_means(a.ffn.abs(), real));
    const int64_t heads = block.self_attn->heads, kv = block.self_attn->kv_channels;
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
    if (name == "lm_head.weight" && tied) continue;  // one tensor, counted once
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
  OpenBAModel model = load_model(checkpoint);
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

#include "model/openba_model.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

#include "model/block_checkpoint.h"
#include "model/cpu_autograd.h"
#include "model/cpu_kernels.h"
#include "util/error.h"

namespace openba {
namespace {

constexpr double kMaskedScore = -10000.0;  // the reference fills masked scores with this

torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

torch::nn::LayerNorm make_norm(const ModelConfig& c) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({c.d_model}).eps(c.layernorm_eps).elementwise_affine(true));
}

torch::Tensor norm(torch::nn::LayerNorm ln, const torch::Tensor& x) {
  if (use_cpu_kernels(x)) return cpu::layer_norm(x, ln->weight, ln->bias, ln->options.eps());
  if (use_cpu_training_kernels(x)) return cpu::layer_norm_autograd(x, ln->weight, ln->bias, ln->options.eps());
  return ln(x);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (use_cpu_kernels(x)) return cpu::linear(x, weight, bias);
  if (use_cpu_training_kernels(x)) return cpu::linear_autograd(x, weight, bias);
  return torch::nn::functional::linear(x, weight, bias);
}

torch::Tensor linear(const torch::nn::Linear& l, const torch::Tensor& x) { return linear(x, l->weight, l->bias); }

// The CUDA-style path. q, k, v: [B, H, Tq|Tk, kv]. ATen's SDPA takes its
// flash kernel on CUDA when nothing but causality hides keys, the
// memory-efficient one with the additive padding mask. The reference fills
// hidden scores with -10000; adding -10000 gives the same softmax wherever a
// query sees any key (exp(-10000) is 0 in fp32), and a query that sees none
// (an all-padding input) stays finite.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const AttentionMask& mask, double dropout, bool training) {
  const double p = training ? dropout : 0.0;
  if (!mask.key_hidden.defined()) {
    return at::scaled_dot_product_attention(q, k, v, {}, p, /*is_causal=*/mask.causal);
  }
  auto hidden = mask.dense(q.size(2), k.size(2));
  auto bias = torch::zeros(hidden.sizes(), q.options()).masked_fill_(hidden, kMaskedScore);
  return at::scaled_dot_product_attention(q, k, v, bias, p, false);
}

// [B, H, T, kv] -> [B, T, H*kv]
torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

}  // namespace

bool use_cpu_kernels(const torch::Tensor& x) {
  return !cuda_style_path_forced() && !torch::GradMode::is_enabled() && x.device().is_cpu() && x.scalar_type() == torch::kFloat;
}

bool use_cpu_training_kernels(const torch::Tensor& x) {
  return !cuda_style_path_forced() && torch::GradMode::is_enabled() && x.device().is_cpu() && x.scalar_type() == torch::kFloat;
}

torch::Tensor AttentionMask::dense(int64_t tq, int64_t tk) const {
  torch::Tensor hidden;
  if (key_hidden.defined()) hidden = key_hidden.view({key_hidden.size(0), 1, 1, tk});
  if (causal) {
    auto opts = torch::TensorOptions().dtype(torch::kBool);
    if (key_hidden.defined()) opts = opts.device(key_hidden.device());
    auto later = torch::ones({tq, tk}, opts).triu(1).view({1, 1, tq, tk});
    hidden = hidden.defined() ? (hidden | later) : later;
  }
  return hidden;
}

AttentionMask key_padding_mask(const torch::Tensor& attention_mask, bool causal) {
  AttentionMask mask;
  mask.causal = causal;
  if (attention_mask.defined()) {
    auto hidden = attention_mask == 0;
    if (!hidden.device().is_cpu() || hidden.any().item<bool>()) mask.key_hidden = hidden;
  }
  return mask;
}

RotaryTables make_rotary_tables(int64_t length, int64_t kv_channels, double base,
                                const torch::Device& device) {
  // inv_freq[i] = 1 / base^(2i / kv), as the reference computes it.
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
  auto inv_freq =
      1.0 / torch::pow(base, torch::arange(0, kv_channels, 2, opts) / static_cast<double>(kv_channels));
  auto angles = torch::outer(torch::arange(length, opts), inv_freq);  // [T, kv/2]
  auto cos = angles.cos();
  auto sin = angles.sin();
  return {torch::cat({cos, cos}, -1), torch::cat({sin, sin}, -1)};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const RotaryTables& rope) {
  const int64_t half = x.size(-1) / 2;
  const int64_t t = x.size(1);
  auto cos = rope.cos.narrow(0, 0, t).unsqueeze(1);  // [T, 1, kv]
  auto sin = rope.sin.narrow(0, 0, t).unsqueeze(1);
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

// --- attention ---------------------------------------------------------------

SelfAttentionImpl::SelfAttentionImpl(const ModelConfig& c)
    : heads(c.num_heads), kv_channels(c.kv_channels), dropout(c.attention_dropout) {
  qkv = register_module("qkv", make_linear(c.d_model, 3 * c.attention_width(), c.add_qkv_bias));
  o = register_module("o", make_linear(c.attention_width(), c.d_model, c.add_qkv_bias));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, const AttentionMask& mask,
                                         const RotaryTables& rope) {
  const int64_t b = x.size(0), t = x.size(1);
  if (use_cpu_kernels(x) && (!is_training() || dropout == 0)) {
    // The bias is added inside the split kernel (one pass fewer).
    auto mixed = cpu::linear(x, qkv->weight, {});
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(kv_channels)));
    auto [q, k, v] = cpu::split_qkv_rotary(mixed, qkv->bias, heads, kv_channels, rope.cos, rope.sin, scale);
    return linear(o, cpu::attention(q, k, v, mask.key_hidden, mask.causal, 1.0));
  }
  if (use_cpu_training_kernels(x) && (!is_training() || dropout == 0)) {
    auto mixed = cpu::linear_autograd(x, qkv->weight, {});
    return linear(o, cpu::self_attention_autograd(mixed, qkv->bias, heads, kv_channels, rope.cos, rope.sin,
                                                  mask.key_hidden, mask.causal));
  }
  auto mixed = linear(qkv, x);
  // Rows are interleaved per head: [q_h; k_h; v_h] for each head h.
  auto per_head = mixed.view({b, t, heads, 3, kv_channels});
  auto q = apply_rotary(per_head.select(3, 0), rope).transpose(1, 2);
  auto k = apply_rotary(per_head.select(3, 1), rope).transpose(1, 2);
  auto v = per_head.select(3, 2).transpose(1, 2);
  return linear(o, merge_heads(attend(q, k, v, mask, dropout, is_training())));
}

CrossAttentionImpl::CrossAttentionImpl(const ModelConfig& c)
    : heads(c.num_heads), kv_channels(c.kv_channels), dropout(c.attention_dropout) {
  q = register_module("q", make_linear(c.d_model, c.attention_width(), c.add_qkv_bias));
  kv = register_module("kv", make_linear(c.d_model, 2 * c.attention_width(), c.add_qkv_bias));
  o = register_module("o", make_linear(c.attention_width(), c.d_model, c.add_qkv_bias));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& memory,
                                          const AttentionMask& mask) {
  const int64_t b = x.size(0), t = x.size(1), s = memory.size(1);
  auto query = linear(q, x).view({b, t, heads, kv_channels}).transpose(1, 2);
  // Rows interleaved per head: [k_h; v_h].
  auto mixed = linear(kv, memory).view({b, s, heads, 2, kv_channels});
  auto key = mixed.select(3, 0).transpose(1, 2);
  auto value = mixed.select(3, 1).transpose(1, 2);
  if (use_cpu_kernels(x) && (!is_training() || dropout == 0)) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(kv_channels));
    return linear(o, cpu::attention(query, key, value, mask.key_hidden, false, scale));
  }
  if (use_cpu_training_kernels(x) && (!is_training() || dropout == 0)) {
    return linear(o, cpu::cross_attention_autograd(linear(q, x), linear(kv, memory), heads, kv_channels,
                                                   mask.key_hidden));
  }
  return linear(o, merge_heads(attend(query, key, value, mask, dropout, is_training())));
}

// --- MLP and blocks -------------------------------------------------------------

SwiGluMlpImpl::SwiGluMlpImpl(const ModelConfig& c) : ffn_hidden(c.ffn_hidden) {
  fc_in = register_module("fc_in", make_linear(c.d_model, 2 * c.ffn_hidden, c.add_ffn_bias));
  fc_out = register_module("fc_out", make_linear(c.ffn_hidden, c.d_model, c.add_ffn_bias));
}

torch::Tensor SwiGluMlpImpl::forward(const torch::Tensor& x) {
  auto h = linear(fc_in, x);
  if (use_cpu_kernels(x)) return linear(fc_out, cpu::swiglu(h, ffn_hidden));
  if (use_cpu_training_kernels(x)) return linear(fc_out, cpu::swiglu_autograd(h, ffn_hidden));
  auto gate = h.narrow(-1, 0, ffn_hidden);
  auto up = h.narrow(-1, ffn_hidden, ffn_hidden);
  return linear(fc_out, torch::silu(gate) * up);
}

BlockImpl::BlockImpl(const ModelConfig& c, bool decoder)
    : is_decoder(decoder), dropout(c.hidden_dropout) {
  input_layernorm = register_module("input_layernorm", make_norm(c));
  self_attn = register_module("self_attn", SelfAttention(c));
  post_attn_layernorm = register_module("post_attn_layernorm", make_norm(c));
  if (is_decoder) {
    inter_attn = register_module("inter_attn", CrossAttention(c));
    post_inter_attn_layernorm = register_module("post_inter_attn_layernorm", make_norm(c));
  }
  mlp = register_module("mlp", SwiGluMlp(c));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const AttentionMask& self_mask,
                                 const RotaryTables& rope, const torch::Tensor& memory,
                                 const AttentionMask& memory_mask) {
  if (use_cpu_kernels(x) && (!is_training() || dropout == 0)) {
    // Residual adds in place on tensors this block owns (x itself is left alone).
    auto h = self_attn(norm(input_layernorm, x), self_mask, rope);
    cpu::add_(h, x);
    auto normed = norm(post_attn_layernorm, h);
    if (is_decoder) {
      auto cross = inter_attn(normed, memory, memory_mask);
      cpu::add_(h, cross);
      normed = norm(post_inter_attn_layernorm, h);
    }
    auto mlp_out = mlp(normed);
    cpu::add_(h, mlp_out);
    return h;
  }
  if (use_cpu_training_kernels(x) && (!is_training() || dropout == 0)) {
    auto h = cpu::add_autograd(x, self_attn(norm(input_layernorm, x), self_mask, rope));
    auto normed = norm(post_attn_layernorm, h);
    if (is_decoder) {
      h = cpu::add_autograd(h, inter_attn(normed, memory, memory_mask));
      normed = norm(post_inter_attn_layernorm, h);
    }
    return cpu::add_autograd(h, mlp(normed));
  }
  auto residual_dropout = [&](torch::Tensor t) {
    return (is_training() && dropout > 0) ? torch::dropout(t, dropout, true) : t;
  };
  auto h = x + residual_dropout(self_attn(input_layernorm(x), self_mask, rope));
  auto normed = post_attn_layernorm(h);
  if (is_decoder) {
    h = h + residual_dropout(inter_attn(normed, memory, memory_mask));
    normed = post_inter_attn_layernorm(h);
  }
  return h + residual_dropout(mlp(normed));
}

StackImpl::StackImpl(const ModelConfig& c, bool decoder) : is_decoder(decoder) {
  block = register_module("block", torch::nn::ModuleList());
  const int64_t layers = decoder ? c.decoder_layers : c.encoder_layers;
  for (int64_t i = 0; i < layers; ++i) block->push_back(Block(c, decoder));
  final_layernorm = register_module("final_layernorm", make_norm(c));
}

// --- the model ------------------------------------------------------------------

torch::Tensor shift_right(const torch::Tensor& labels, int64_t decoder_start_token_id,
                          int64_t pad_token_id) {
  auto shifted = torch::empty_like(labels);
  shifted.select(1, 0).fill_(decoder_start_token_id);
  if (labels.size(1) > 1) {
    shifted.narrow(1, 1, labels.size(1) - 1).copy_(labels.narrow(1, 0, labels.size(1) - 1));
  }
  return shifted.masked_fill_(shifted == -100, pad_token_id);
}

OutputProjectionImpl::OutputProjectionImpl(torch::Tensor weight_tensor, torch::Tensor bias_tensor) {
  weight = register_parameter("weight", weight_tensor);
  if (bias_tensor.defined()) bias = register_parameter("bias", bias_tensor);
}

torch::Tensor OutputProjectionImpl::forward(const torch::Tensor& x) { return linear(x, weight, bias); }

OpenBAModelImpl::OpenBAModelImpl(const ModelConfig& c) : config(c) {
  shared_embedding = register_module(
      "shared_embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.d_model)));
  encoder = register_module("encoder", Stack(c, false));
  decoder = register_module("decoder", Stack(c, true));
  torch::Tensor bias;
  if (c.add_lm_head_bias) bias = torch::zeros({c.vocab_size}, shared_embedding->weight.options());
  lm_head = register_module("lm_head", OutputProjection(shared_embedding->weight, bias));
}

void OpenBAModelImpl::tie_lm_head() {
  lm_head = replace_module("lm_head", OutputProjection(shared_embedding->weight, lm_head->bias));
}

void OpenBAModelImpl::untie_lm_head() {
  torch::NoGradGuard no_grad;
  auto copy = shared_embedding->weight.detach().clone().requires_grad_(shared_embedding->weight.requires_grad());
  lm_head = replace_module("lm_head", OutputProjection(copy, lm_head->bias));
}

bool OpenBAModelImpl::lm_head_tied() const {
  return lm_head->weight.unsafeGetTensorImpl() == shared_embedding->weight.unsafeGetTensorImpl();
}

torch::Tensor OpenBAModelImpl::run_block(BlockImpl& block, const torch::Tensor& x, const AttentionMask& self_mask,
                                         const RotaryTables& rope, const torch::Tensor& memory,
                                         const AttentionMask& memory_mask) {
  if (activation_checkpointing && is_training() && torch::GradMode::is_enabled()) {
    return checkpointed_block_forward(block, x, self_mask, rope, memory, memory_mask);
  }
  return block.forward(x, self_mask, rope, memory, memory_mask);
}

torch::Tensor OpenBAModelImpl::encode(const torch::Tensor& input_ids,
                                      const torch::Tensor& attention_mask) {
  auto x = shared_embedding(input_ids);
  const AttentionMask mask = key_padding_mask(attention_mask);
  auto rope = make_rotary_tables(input_ids.size(1), config.kv_channels, config.rope_base, x.device());
  for (int64_t i = 0; i < encoder->size(); ++i) x = run_block(*encoder->layer(i), x, mask, rope, {}, {});
  return norm(encoder->final_layernorm, x);
}

torch::Tensor OpenBAModelImpl::decode(const torch::Tensor& decoder_input_ids,
                                      const torch::Tensor& decoder_attention_mask,
                                      const torch::Tensor& encoder_states,
                                      const torch::Tensor& encoder_attention_mask) {
  auto x = shared_embedding(decoder_input_ids);
  const AttentionMask self_mask = key_padding_mask(decoder_attention_mask, /*causal=*/true);
  const AttentionMask memory_mask = key_padding_mask(encoder_attention_mask);
  auto rope = make_rotary_tables(decoder_input_ids.size(1), config.kv_channels, config.rope_base, x.device());
  for (int64_t i = 0; i < decoder->size(); ++i) {
    x = run_block(*decoder->layer(i), x, self_mask, rope, encoder_states, memory_mask);
  }
  return norm(decoder->final_layernorm, x);
}

torch::Tensor OpenBAModelImpl::project(const torch::Tensor& decoder_states) {
  auto h = decoder_states;
  if (config.tie_word_embeddings) h = h * std::pow(static_cast<double>(config.d_model), -0.5);
  return lm_head(h).to(torch::kFloat);
}

torch::Tensor OpenBAModelImpl::forward(const Seq2SeqBatch& batch) {
  auto enc = encode(batch.input_ids, batch.encoder_mask());
  auto dec = decode(batch.decoder_input_ids, batch.decoder_mask(), enc, batch.encoder_mask());
  return project(dec);
}

void set_activation_checkpointing(OpenBAModelImpl& model, bool enabled) { model.activation_checkpointing = enabled; }

void set_dropout(OpenBAModelImpl& model, double probability) {
  model.config.hidden_dropout = probability;
  model.config.attention_dropout = probability;
  for (Stack stack : {model.encoder, model.decoder}) {
    for (int64_t i = 0; i < stack->size(); ++i) {
      Block block = stack->layer(i);
      block->dropout = probability;
      block->self_attn->dropout = probability;
      if (block->is_decoder) block->inter_attn->dropout = probability;
    }
  }
}

std::vector<std::pair<std::string, torch::Tensor>> unique_named_parameters(OpenBAModelImpl& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::set<const void*> seen;
  for (const auto& item : model.named_parameters(true)) {
    if (seen.insert(item.value().unsafeGetTensorImpl()).second) out.emplace_back(item.key(), item.value());
  }
  return out;
}

}  // namespace openba

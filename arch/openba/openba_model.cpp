#include "arch/openba/openba_model.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

#include "util/error.h"

namespace openba {
namespace {

torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

torch::nn::LayerNorm make_norm(const ModelConfig& c) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({c.d_model}).eps(c.layernorm_eps).elementwise_affine(true));
}

torch::Tensor norm(const OpBackend& ops, const torch::nn::LayerNorm& ln, const torch::Tensor& x) {
  return ops.layer_norm(x, ln->weight, ln->bias, ln->options.eps());
}

torch::Tensor linear(const OpBackend& ops, const torch::nn::Linear& l, const torch::Tensor& x) {
  return ops.linear(x, l->weight, l->bias);
}

double attention_scale(int64_t kv_channels) { return 1.0 / std::sqrt(static_cast<double>(kv_channels)); }

}  // namespace

// --- attention ---------------------------------------------------------------

SelfAttentionImpl::SelfAttentionImpl(const ModelConfig& c)
    : heads(c.num_heads), kv_channels(c.kv_channels), dropout(c.attention_dropout) {
  qkv = register_module("qkv", make_linear(c.d_model, 3 * c.attention_width(), c.add_qkv_bias));
  o = register_module("o", make_linear(c.attention_width(), c.d_model, c.add_qkv_bias));
}

torch::Tensor SelfAttentionImpl::forward(const OpBackend& ops, const torch::Tensor& x, const AttentionMask& mask,
                                         const RotaryTables& rope, BlockProbe* probe, LayerKv* kv) {
  torch::Tensor context;
  if (kv) {
    // Decoding: the new positions attend over every cached one, causally
    // among themselves (only a prefix on an empty cache has several).
    auto [q, k, v] = ops.rotary_qkv(x, qkv->weight, qkv->bias, {heads, kv_channels}, rope);
    auto [keys, values] = append_self_kv(*kv, k, v);
    AttentionMask causal;
    causal.causal = x.size(1) > 1;
    context = ops.biased_attention(q, keys, values, {heads, kv_channels}, {}, causal, attention_scale(kv_channels), 0.0);
  } else {
    context = ops.self_attention(x, qkv->weight, qkv->bias, {heads, kv_channels}, rope, mask,
                                 is_training() ? dropout : 0.0);
  }
  if (probe) probe->attention_context(false, context);
  return linear(ops, o, context);
}

CrossAttentionImpl::CrossAttentionImpl(const ModelConfig& c)
    : heads(c.num_heads), kv_channels(c.kv_channels), dropout(c.attention_dropout) {
  q = register_module("q", make_linear(c.d_model, c.attention_width(), c.add_qkv_bias));
  kv = register_module("kv", make_linear(c.d_model, 2 * c.attention_width(), c.add_qkv_bias));
  o = register_module("o", make_linear(c.attention_width(), c.d_model, c.add_qkv_bias));
}

torch::Tensor CrossAttentionImpl::forward(const OpBackend& ops, const torch::Tensor& x, const torch::Tensor& memory,
                                          const AttentionMask& mask, BlockProbe* probe, const LayerKv* cache) {
  torch::Tensor context;
  if (cache) {
    // The same softmax as cross_attention's wherever a query sees a key
    // (hidden keys' exp is 0 under -10000 and the lowest float alike).
    context = ops.biased_attention(linear(ops, q, x), cache->cross_k, cache->cross_v, {heads, kv_channels}, {}, mask,
                                   attention_scale(kv_channels), 0.0);
  } else {
    context = ops.cross_attention(x, memory, q->weight, q->bias, kv->weight, kv->bias, {heads, kv_channels}, mask,
                                  is_training() ? dropout : 0.0);
  }
  if (probe) probe->attention_context(true, context);
  return linear(ops, o, context);
}

std::pair<torch::Tensor, torch::Tensor> CrossAttentionImpl::memory_kv(const OpBackend& ops, const torch::Tensor& memory) {
  const int64_t b = memory.size(0), s = memory.size(1);
  auto mixed = linear(ops, kv, memory).view({b, s, heads, 2, kv_channels});
  return {mixed.select(3, 0).reshape({b, s, heads * kv_channels}), mixed.select(3, 1).reshape({b, s, heads * kv_channels})};
}

// --- MLP and blocks -------------------------------------------------------------

SwiGluMlpImpl::SwiGluMlpImpl(const ModelConfig& c) : ffn_hidden(c.ffn_hidden) {
  fc_in = register_module("fc_in", make_linear(c.d_model, 2 * c.ffn_hidden, c.add_ffn_bias));
  fc_out = register_module("fc_out", make_linear(c.ffn_hidden, c.d_model, c.add_ffn_bias));
}

torch::Tensor SwiGluMlpImpl::forward(const OpBackend& ops, const torch::Tensor& x, BlockProbe* probe) {
  auto activation = ops.gated_activation(linear(ops, fc_in, x), ffn_hidden);
  if (probe) probe->ffn_activation(activation);
  return linear(ops, fc_out, activation);
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

torch::Tensor BlockImpl::forward(const OpBackend& ops, const torch::Tensor& x, const AttentionMask& self_mask,
                                 const RotaryTables& rope, const torch::Tensor& memory,
                                 const AttentionMask& memory_mask, BlockProbe* probe, LayerKv* kv) {
  const double p = is_training() ? dropout : 0.0;
  auto normed = norm(ops, input_layernorm, x);
  if (probe) probe->norm_output(normed);
  auto h = ops.residual_add(x, self_attn->forward(ops, normed, self_mask, rope, probe, kv), p);
  normed = norm(ops, post_attn_layernorm, h);
  if (probe) probe->norm_output(normed);
  if (is_decoder) {
    h = ops.residual_add(h, inter_attn->forward(ops, normed, memory, memory_mask, probe, kv), p);
    normed = norm(ops, post_inter_attn_layernorm, h);
    if (probe) probe->norm_output(normed);
  }
  return ops.residual_add(h, mlp->forward(ops, normed, probe), p);
}

torch::Tensor BlockImpl::forward(const OpBackend& ops, const torch::Tensor& x, const StackInputs& in,
                                 BlockProbe* probe) {
  return forward(ops, x, in.self_mask, in.rope, in.memory, in.memory_mask, probe, in.kv);
}

bool BlockImpl::applies_dropout() const {
  return dropout > 0 || self_attn->dropout > 0 || (is_decoder && inter_attn->dropout > 0);
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const AttentionMask& self_mask, const RotaryTables& rope,
                                 const torch::Tensor& memory, const AttentionMask& memory_mask) {
  return forward(select_op_backend(x), x, self_mask, rope, memory, memory_mask);
}

StackImpl::StackImpl(const ModelConfig& c, bool decoder) : is_decoder(decoder) {
  block = register_module("block", torch::nn::ModuleList());
  const int64_t layers = decoder ? c.decoder_layers : c.encoder_layers;
  for (int64_t i = 0; i < layers; ++i) block->push_back(Block(c, decoder));
  final_layernorm = register_module("final_layernorm", make_norm(c));
}

// --- the model ------------------------------------------------------------------

OutputProjectionImpl::OutputProjectionImpl(torch::Tensor weight_tensor, torch::Tensor bias_tensor) {
  weight = register_parameter("weight", weight_tensor);
  if (bias_tensor.defined()) bias = register_parameter("bias", bias_tensor);
}


OpenBAModelImpl::OpenBAModelImpl(const ModelConfig& c) : Seq2SeqModelImpl(c) {
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



torch::Tensor OpenBAModelImpl::encode(const OpBackend& ops, const torch::Tensor& input_ids,
                                      const torch::Tensor& attention_mask) {
  auto x = shared_embedding(input_ids);
  StackInputs in;
  in.self_mask = key_padding_mask(attention_mask);
  in.rope = make_rotary_tables(input_ids.size(1), config.kv_channels, config.rope_base, x.device());
  for (int64_t i = 0; i < encoder->size(); ++i) x = run_block(ops, *encoder->layer(i), x, in);
  return norm(ops, encoder->final_layernorm, x);
}


torch::Tensor OpenBAModelImpl::decode(const OpBackend& ops, const torch::Tensor& decoder_input_ids,
                                      const torch::Tensor& decoder_attention_mask,
                                      const torch::Tensor& encoder_states,
                                      const torch::Tensor& encoder_attention_mask) {
  auto x = shared_embedding(decoder_input_ids);
  StackInputs in;
  in.self_mask = key_padding_mask(decoder_attention_mask, /*causal=*/true);
  in.memory_mask = key_padding_mask(encoder_attention_mask);
  in.rope = make_rotary_tables(decoder_input_ids.size(1), config.kv_channels, config.rope_base, x.device());
  in.memory = encoder_states;
  for (int64_t i = 0; i < decoder->size(); ++i) x = run_block(ops, *decoder->layer(i), x, in);
  return norm(ops, decoder->final_layernorm, x);
}



DecoderCache OpenBAModelImpl::start_decoding(const OpBackend& ops, const torch::Tensor& encoder_states,
                                             const torch::Tensor& encoder_attention_mask, int64_t capacity) {
  DecoderCache cache = make_decoder_cache(decoder->size(), encoder_attention_mask, capacity, [&](int64_t i) {
    return decoder->layer(i)->inter_attn->memory_kv(ops, encoder_states);
  });
  cache.rope = make_rotary_tables(capacity, config.kv_channels, config.rope_base, encoder_states.device());
  return cache;
}

torch::Tensor OpenBAModelImpl::decode_step(const OpBackend& ops, const torch::Tensor& decoder_input_ids,
                                           DecoderCache& cache) {
  const int64_t t = decoder_input_ids.size(1);
  check_decode_step(cache, t);  // before the tables are narrowed
  StackInputs in;
  in.rope = {cache.rope.cos.narrow(0, cache.length, t), cache.rope.sin.narrow(0, cache.length, t)};
  auto x = run_cached_decoder(ops, shared_embedding(decoder_input_ids), in, cache,
                              [&](int64_t i) -> Seq2SeqBlockImpl& { return *decoder->layer(i); });
  return norm(ops, decoder->final_layernorm, x);
}

torch::Tensor OpenBAModelImpl::project(const OpBackend& ops, const torch::Tensor& decoder_states) {
  return project_to_vocabulary(ops, config, decoder_states, lm_head->weight, lm_head->bias);
}


void OpenBAModelImpl::set_dropout(double probability) {
  config.hidden_dropout = probability;
  config.attention_dropout = probability;
  for (Stack stack : {encoder, decoder}) {
    for (int64_t i = 0; i < stack->size(); ++i) {
      Block block = stack->layer(i);
      block->dropout = probability;
      block->self_attn->dropout = probability;
      if (block->is_decoder) block->inter_attn->dropout = probability;
    }
  }
}

}  // namespace openba

#include "arch/t5/t5_model.h"

#include <torch/torch.h>

#include <cmath>

#include "ops/autocast.h"
#include "util/error.h"

namespace openba {
namespace {

torch::nn::Linear make_linear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

torch::Tensor rms(const OpBackend& ops, const T5LayerNorm& norm, const torch::Tensor& x) {
  return ops.rms_norm(x, norm->weight, norm->eps);
}

torch::Tensor linear(const OpBackend& ops, const torch::nn::Linear& l, const torch::Tensor& x) {
  return ops.linear(x, l->weight, torch::Tensor());
}

// transformers casts the MLP output projection's input to wo's dtype when
// they differ (wo kept in fp32 while the rest runs in bf16).
torch::Tensor to_dtype_of(const torch::Tensor& x, const torch::Tensor& weight) {
  return x.scalar_type() == weight.scalar_type() ? x : x.to(weight.scalar_type());
}

}  // namespace

torch::Tensor t5_relative_position_buckets(int64_t tq, int64_t tk, bool bidirectional, int64_t num_buckets,
                                           int64_t max_distance, const torch::Device& device,
                                           int64_t query_offset) {
  const auto i64 = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto context = torch::arange(query_offset, query_offset + tq, i64).unsqueeze(1);
  auto memory = torch::arange(tk, i64).unsqueeze(0);
  auto relative = memory - context;  // key - query
  auto buckets = torch::zeros_like(relative);
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + (relative > 0).to(torch::kLong) * num_buckets;
    relative = relative.abs();
  } else {
    relative = -torch::min(relative, torch::zeros_like(relative));
  }
  const int64_t max_exact = num_buckets / 2;
  auto is_small = relative < max_exact;
  // The same float ops in the same order as transformers, so that the
  // truncation lands on the same bucket.
  auto large = max_exact + (torch::log(relative.to(torch::kFloat) / static_cast<double>(max_exact)) /
                            std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                            static_cast<double>(num_buckets - max_exact))
                               .to(torch::kLong);
  large = torch::min(large, torch::full_like(large, num_buckets - 1));
  return buckets + torch::where(is_small, relative, large);
}

torch::Tensor t5_position_bias(const torch::Tensor& table, int64_t tq, int64_t tk, bool bidirectional,
                               const ModelConfig& c, int64_t query_offset) {
  auto buckets = t5_relative_position_buckets(tq, tk, bidirectional, c.relative_attention_num_buckets,
                                              c.relative_attention_max_distance, table.device(), query_offset);
  auto values = table.index_select(0, buckets.reshape({-1})).view({tq, tk, table.size(1)});
  // Contiguous once per stack: every block's attention reads it row by row.
  return values.permute({2, 0, 1}).unsqueeze(0).contiguous();
}

T5LayerNormImpl::T5LayerNormImpl(int64_t d, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({d}));
}

T5AttentionImpl::T5AttentionImpl(const ModelConfig& c, bool has_relative_bias)
    : heads(c.num_heads), kv_channels(c.kv_channels), dropout(c.attention_dropout) {
  const int64_t a = c.attention_width();
  q = register_module("q", make_linear(c.d_model, a));
  k = register_module("k", make_linear(c.d_model, a));
  v = register_module("v", make_linear(c.d_model, a));
  o = register_module("o", make_linear(a, c.d_model));
  if (has_relative_bias) {
    relative_attention_bias = register_module(
        "relative_attention_bias",
        torch::nn::Embedding(torch::nn::EmbeddingOptions(c.relative_attention_num_buckets, c.num_heads)));
  }
}

torch::Tensor T5AttentionImpl::forward(const OpBackend& ops, const torch::Tensor& x, const torch::Tensor& kv_source,
                                       const torch::Tensor& position_bias, const AttentionMask& mask, bool cross,
                                       BlockProbe* probe, LayerKv* kv) {
  torch::Tensor context;
  if (kv && cross) {
    context = ops.biased_attention(linear(ops, q, x), kv->cross_k, kv->cross_v, {heads, kv_channels}, {}, mask,
                                   /*scale=*/1.0, 0.0);
  } else if (kv) {
    // Decoding: the new positions attend over every cached one, causally
    // among themselves (only a prefix on an empty cache has several).
    auto [keys, values] = append_self_kv(*kv, linear(ops, k, x), linear(ops, v, x));
    AttentionMask causal;
    causal.causal = x.size(1) > 1;
    context = ops.biased_attention(linear(ops, q, x), keys, values, {heads, kv_channels}, position_bias, causal,
                                   /*scale=*/1.0, 0.0);
  } else {
    context = ops.biased_attention(linear(ops, q, x), linear(ops, k, kv_source), linear(ops, v, kv_source),
                                   {heads, kv_channels}, position_bias, mask, /*scale=*/1.0,
                                   is_training() ? dropout : 0.0);
  }
  if (probe) probe->attention_context(cross, context);
  return linear(ops, o, context);
}

std::pair<torch::Tensor, torch::Tensor> T5AttentionImpl::memory_kv(const OpBackend& ops, const torch::Tensor& memory) {
  return {linear(ops, k, memory), linear(ops, v, memory)};
}

T5AttentionLayerImpl::T5AttentionLayerImpl(const ModelConfig& c, bool cross, bool has_relative_bias) {
  attention = register_module(cross ? "EncDecAttention" : "SelfAttention", T5Attention(c, has_relative_bias));
  layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.layernorm_eps));
}

T5MlpImpl::T5MlpImpl(const ModelConfig& c) : activation(c.ffn_activation), dropout(c.hidden_dropout) {
  if (c.ffn_gated) {
    wi_0 = register_module("wi_0", make_linear(c.d_model, c.ffn_hidden));
    wi_1 = register_module("wi_1", make_linear(c.d_model, c.ffn_hidden));
  } else {
    wi = register_module("wi", make_linear(c.d_model, c.ffn_hidden));
  }
  wo = register_module("wo", make_linear(c.ffn_hidden, c.d_model));
}

torch::Tensor T5MlpImpl::forward(const OpBackend& ops, const torch::Tensor& x, BlockProbe* probe) {
  auto h = wi ? ops.mlp_activation(linear(ops, wi, x), {}, activation)
              : ops.mlp_activation(linear(ops, wi_0, x), linear(ops, wi_1, x), activation);
  if (is_training() && dropout > 0) h = torch::dropout(h, dropout, true);
  if (probe) probe->ffn_activation(h);
  // transformers keeps wo in fp32 (_keep_in_fp32_modules): T5 v1.1's MLP
  // outputs overflow half precision. Under bf16 autocast its GEMM leaves
  // autocast and runs in fp32 on the fp32 master weight.
  if (h.is_cuda() && current_autocast_state().cuda_enabled) {
    AutocastScope fp32({false, current_autocast_state().cuda_dtype});
    return linear(ops, wo, to_dtype_of(h, wo->weight));
  }
  return linear(ops, wo, to_dtype_of(h, wo->weight));
}

T5FeedForwardLayerImpl::T5FeedForwardLayerImpl(const ModelConfig& c) {
  mlp = register_module("DenseReluDense", T5Mlp(c));
  layer_norm = register_module("layer_norm", T5LayerNorm(c.d_model, c.layernorm_eps));
}

T5BlockImpl::T5BlockImpl(const ModelConfig& c, bool decoder, bool has_relative_bias)
    : is_decoder(decoder), dropout(c.hidden_dropout) {
  layer = register_module("layer", torch::nn::ModuleList());
  self_attention = T5AttentionLayer(c, /*cross=*/false, has_relative_bias);
  layer->push_back(self_attention);
  if (decoder) {
    cross_attention = T5AttentionLayer(c, /*cross=*/true, false);
    layer->push_back(cross_attention);
  }
  feed_forward = T5FeedForwardLayer(c);
  layer->push_back(feed_forward);
}

torch::Tensor T5BlockImpl::forward(const OpBackend& ops, const torch::Tensor& x, const StackInputs& in,
                                   BlockProbe* probe) {
  const double p = is_training() ? dropout : 0.0;
  auto normed = rms(ops, self_attention->layer_norm, x);
  if (probe) probe->norm_output(normed);
  auto h = ops.residual_add(
      x, self_attention->attention->forward(ops, normed, normed, in.position_bias, in.self_mask, false, probe, in.kv),
      p);
  if (is_decoder) {
    normed = rms(ops, cross_attention->layer_norm, h);
    if (probe) probe->norm_output(normed);
    h = ops.residual_add(
        h, cross_attention->attention->forward(ops, normed, in.memory, {}, in.memory_mask, true, probe, in.kv), p);
  }
  normed = rms(ops, feed_forward->layer_norm, h);
  if (probe) probe->norm_output(normed);
  return ops.residual_add(h, feed_forward->mlp->forward(ops, normed, probe), p);
}

bool T5BlockImpl::applies_dropout() const {
  return dropout > 0 || self_attention->attention->dropout > 0 ||
         (is_decoder && cross_attention->attention->dropout > 0) || feed_forward->mlp->dropout > 0;
}

T5StackImpl::T5StackImpl(const ModelConfig& c, bool decoder) : is_decoder(decoder) {
  block = register_module("block", torch::nn::ModuleList());
  const int64_t layers = decoder ? c.decoder_layers : c.encoder_layers;
  for (int64_t i = 0; i < layers; ++i) block->push_back(T5Block(c, decoder, /*has_relative_bias=*/i == 0));
  final_layer_norm = register_module("final_layer_norm", T5LayerNorm(c.d_model, c.layernorm_eps));
}

torch::Tensor T5StackImpl::position_bias(int64_t t, const ModelConfig& c) const {
  const auto& table = layer(0)->self_attention->attention->relative_attention_bias->weight;
  return t5_position_bias(table, t, t, /*bidirectional=*/!is_decoder, c);
}

T5ModelImpl::T5ModelImpl(const ModelConfig& c) : Seq2SeqModelImpl(c) {
  if (c.family != ModelFamily::kT5) throw Error("T5Model built from a config of family " + std::string(model_family_name(c.family)));
  shared = register_module("shared", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.d_model)));
  encoder = register_module("encoder", T5Stack(c, false));
  decoder = register_module("decoder", T5Stack(c, true));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", make_linear(c.d_model, c.vocab_size));
}

torch::Tensor T5ModelImpl::encode(const OpBackend& ops, const torch::Tensor& input_ids,
                                  const torch::Tensor& attention_mask) {
  const double p = is_training() ? config.hidden_dropout : 0.0;
  auto x = shared(input_ids);
  if (p > 0) x = torch::dropout(x, p, true);
  StackInputs in;
  in.self_mask = key_padding_mask(attention_mask);
  in.position_bias = encoder->position_bias(input_ids.size(1), config).to(x.scalar_type());
  for (int64_t i = 0; i < encoder->size(); ++i) x = run_block(ops, *encoder->layer(i), x, in);
  x = rms(ops, encoder->final_layer_norm, x);
  return p > 0 ? torch::dropout(x, p, true) : x;
}

torch::Tensor T5ModelImpl::decode(const OpBackend& ops, const torch::Tensor& decoder_input_ids,
                                  const torch::Tensor& decoder_attention_mask, const torch::Tensor& encoder_states,
                                  const torch::Tensor& encoder_attention_mask) {
  const double p = is_training() ? config.hidden_dropout : 0.0;
  auto x = shared(decoder_input_ids);
  if (p > 0) x = torch::dropout(x, p, true);
  StackInputs in;
  in.self_mask = key_padding_mask(decoder_attention_mask, /*causal=*/true);
  in.position_bias = decoder->position_bias(decoder_input_ids.size(1), config).to(x.scalar_type());
  in.memory = encoder_states;
  in.memory_mask = key_padding_mask(encoder_attention_mask);
  for (int64_t i = 0; i < decoder->size(); ++i) x = run_block(ops, *decoder->layer(i), x, in);
  x = rms(ops, decoder->final_layer_norm, x);
  return p > 0 ? torch::dropout(x, p, true) : x;
}

DecoderCache T5ModelImpl::start_decoding(const OpBackend& ops, const torch::Tensor& encoder_states,
                                         const torch::Tensor& encoder_attention_mask, int64_t capacity) {
  return make_decoder_cache(decoder->size(), encoder_attention_mask, capacity, [&](int64_t i) {
    return decoder->layer(i)->cross_attention->attention->memory_kv(ops, encoder_states);
  });
}

torch::Tensor T5ModelImpl::decode_step(const OpBackend& ops, const torch::Tensor& decoder_input_ids,
                                       DecoderCache& cache) {
  const int64_t t = decoder_input_ids.size(1);
  auto x = shared(decoder_input_ids);
  StackInputs in;
  // The rows of the decoder's bias for the new queries, over every key so far.
  const auto& table = decoder->layer(0)->self_attention->attention->relative_attention_bias->weight;
  in.position_bias = t5_position_bias(table, t, cache.length + t, /*bidirectional=*/false, config, cache.length)
                         .to(x.scalar_type());
  x = run_cached_decoder(ops, x, in, cache, [&](int64_t i) -> Seq2SeqBlockImpl& { return *decoder->layer(i); });
  return rms(ops, decoder->final_layer_norm, x);
}

torch::Tensor T5ModelImpl::project(const OpBackend& ops, const torch::Tensor& decoder_states) {
  return project_to_vocabulary(ops, config, decoder_states, lm_head ? lm_head->weight : shared->weight, {});
}

void T5ModelImpl::untie_lm_head() {
  if (lm_head) return;
  throw Error("a T5 model's lm_head is tied by its config (tie_word_embeddings true) and cannot be untied");
}

void T5ModelImpl::tie_lm_head() {
  if (!lm_head) return;
  throw Error("a T5 model's lm_head is separate by its config (tie_word_embeddings false) and cannot be tied");
}

void T5ModelImpl::set_dropout(double probability) {
  config.hidden_dropout = probability;
  config.attention_dropout = probability;
  for (T5Stack stack : {encoder, decoder}) {
    for (int64_t i = 0; i < stack->size(); ++i) {
      T5Block block = stack->layer(i);
      block->dropout = probability;
      block->self_attention->attention->dropout = probability;
      if (block->is_decoder) block->cross_attention->attention->dropout = probability;
      block->feed_forward->mlp->dropout = probability;
    }
  }
}


}  // namespace openba

// The T5 family's encoder-decoder in LibTorch, as transformers'
// T5ForConditionalGeneration computes it (T5, T5 v1.1, mT5, Flan-T5, UL2):
//
//   encoder block:  x += SelfAttn(RMS(x), bias_enc);  x += MLP(RMS(x))
//   decoder block:  x += SelfAttn(RMS(x), bias_dec); x += CrossAttn(RMS(x), enc); x += MLP(RMS(x))
//   each stack ends with a final RMS norm; logits = lm_head(dec), the
//   decoder output first scaled by d_model^-0.5 when the head is the embedding.
//
// RMS norm without bias or centering (variance in fp32). Separate q, k, v,
// o without biases; no 1/sqrt(d_kv) score scaling; a relative position
// bias [1, H, Tq, Tk] computed once per stack from the table in its block 0
// (bidirectional buckets in the encoder, causal in the decoder) and added to
// the scores of every self-attention of the stack; none on cross-attention.
// MLP: act(wi x) or act(wi_0 x) * (wi_1 x), then wo (kept in its own dtype:
// transformers runs wo in fp32 when the rest is bf16). Module and parameter
// names are transformers', so named_parameters() are checkpoint keys.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "arch/seq2seq_model.h"
#include "ops/attention_inputs.h"

namespace openba {

// transformers' _relative_position_bucket for every (query, key) pair of a
// [tq, tk] grid, queries at positions [query_offset, +tq) and keys at [0,
// tk): int64 buckets in [0, num_buckets).
torch::Tensor t5_relative_position_buckets(int64_t tq, int64_t tk, bool bidirectional, int64_t num_buckets,
                                           int64_t max_distance, const torch::Device& device,
                                           int64_t query_offset = 0);
// The additive bias [1, H, tq, tk] from a table [num_buckets, H] (queries
// from query_offset: a decoding step's rows of the full bias).
torch::Tensor t5_position_bias(const torch::Tensor& table, int64_t tq, int64_t tk, bool bidirectional,
                               const ModelConfig& config, int64_t query_offset = 0);

struct T5LayerNormImpl : torch::nn::Module {
  T5LayerNormImpl(int64_t d, double eps);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(T5LayerNorm);

struct T5AttentionImpl : torch::nn::Module {
  T5AttentionImpl(const ModelConfig& config, bool has_relative_bias);
  // Context projected by o; bias may be undefined (cross-attention). With
  // kv (incremental decoding): self-attention appends x's keys and values
  // to kv's self caches and attends over them (mask unused: no padding);
  // cross-attention reads kv's cross caches (kv_source unused).
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const torch::Tensor& kv_source,
                        const torch::Tensor& position_bias, const AttentionMask& mask, bool cross, BlockProbe* probe,
                        LayerKv* kv = nullptr);
  // The keys and values [B, Te, H*kv] of the memory (once per generation).
  std::pair<torch::Tensor, torch::Tensor> memory_kv(const OpBackend& ops, const torch::Tensor& memory);
  int64_t heads, kv_channels;
  double dropout;
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};  // block 0 of each stack only
};
TORCH_MODULE(T5Attention);

// layer.N of a block: the attention (SelfAttention / EncDecAttention) and its norm.
struct T5AttentionLayerImpl : torch::nn::Module {
  T5AttentionLayerImpl(const ModelConfig& config, bool cross, bool has_relative_bias);
  T5Attention attention{nullptr};
  T5LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(T5AttentionLayer);

struct T5MlpImpl : torch::nn::Module {
  explicit T5MlpImpl(const ModelConfig& config);
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, BlockProbe* probe);
  FfnActivation activation;
  double dropout;
  torch::nn::Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
};
TORCH_MODULE(T5Mlp);

struct T5FeedForwardLayerImpl : torch::nn::Module {
  explicit T5FeedForwardLayerImpl(const ModelConfig& config);
  T5Mlp mlp{nullptr};
  T5LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(T5FeedForwardLayer);

// A block reads its stack's position bias from StackInputs (block 0 owns
// the table; the stack computes the bias once).
struct T5BlockImpl : Seq2SeqBlockImpl {
  T5BlockImpl(const ModelConfig& config, bool is_decoder, bool has_relative_bias);
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const StackInputs& in,
                        BlockProbe* probe = nullptr) override;
  bool applies_dropout() const override;
  bool is_decoder;
  double dropout;
  torch::nn::ModuleList layer{nullptr};
  T5AttentionLayer self_attention{nullptr}, cross_attention{nullptr};
  T5FeedForwardLayer feed_forward{nullptr};
};
TORCH_MODULE(T5Block);

struct T5StackImpl : torch::nn::Module {
  T5StackImpl(const ModelConfig& config, bool is_decoder);
  torch::nn::ModuleList block{nullptr};
  T5LayerNorm final_layer_norm{nullptr};
  bool is_decoder;
  int64_t size() const { return static_cast<int64_t>(block->size()); }
  T5Block layer(int64_t i) const { return block->ptr<T5BlockImpl>(i); }
  // The stack's position bias for t positions, from block 0's table.
  torch::Tensor position_bias(int64_t t, const ModelConfig& config) const;
};
TORCH_MODULE(T5Stack);

struct T5ModelImpl : Seq2SeqModelImpl {
  explicit T5ModelImpl(const ModelConfig& config);

  using Seq2SeqModelImpl::decode;
  using Seq2SeqModelImpl::encode;
  using Seq2SeqModelImpl::project;
  torch::Tensor encode(const OpBackend& ops, const torch::Tensor& input_ids,
                       const torch::Tensor& attention_mask) override;
  torch::Tensor decode(const OpBackend& ops, const torch::Tensor& decoder_input_ids,
                       const torch::Tensor& decoder_attention_mask, const torch::Tensor& encoder_states,
                       const torch::Tensor& encoder_attention_mask) override;
  torch::Tensor project(const OpBackend& ops, const torch::Tensor& decoder_states) override;
  DecoderCache start_decoding(const OpBackend& ops, const torch::Tensor& encoder_states,
                              const torch::Tensor& encoder_attention_mask, int64_t capacity) override;
  torch::Tensor decode_step(const OpBackend& ops, const torch::Tensor& decoder_input_ids, DecoderCache& cache) override;
  const torch::Tensor& embedding_weight() const override { return shared->weight; }

  bool lm_head_tied() const override { return !lm_head; }
  void untie_lm_head() override;
  void tie_lm_head() override;
  void set_dropout(double probability) override;

  torch::nn::Embedding shared{nullptr};
  T5Stack encoder{nullptr}, decoder{nullptr};
  torch::nn::Linear lm_head{nullptr};  // absent when tied to the embedding
};
TORCH_MODULE(T5Model);

}  // namespace openba

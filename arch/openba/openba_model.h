// The OpenBA encoder-decoder in LibTorch (shared/reference/openba.md §1).
//
//   encoder block:  x += SelfAttn(LN(x));                       x += MLP(LN(x))
//   decoder block:  x += SelfAttn(LN(x)); x += CrossAttn(LN(x), enc); x += MLP(LN(x))
//   each stack ends with a final LayerNorm; logits = lm_head(dec) (+ bias).
//
// Pre-LN LayerNorm with bias (eps 1e-5). Rotary embedding (rotate-half over
// the full head width, base 10000) on self-attention only. Fused qkv rows
// interleaved per head [q_h; k_h; v_h]; cross-attention kv interleaved per
// head [k_h; v_h]. SwiGLU MLP: fc_in rows = [gate; up], out = fc_out(silu(gate)*up).
// Scores scaled by 1/sqrt(kv_channels), masked with -10000, softmax in fp32.
// The input embedding and lm_head weight are one tensor unless a checkpoint
// stores them differently. Module and parameter names are OpenBA's HF names,
// so named_parameters() are checkpoint keys.
#pragma once

#include <functional>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "arch/openba/config.h"
#include "arch/openba/layout.h"
#include "arch/seq2seq_model.h"
#include "ops/attention_inputs.h"
#include "ops/op_backend.h"

namespace openba {

// The one forward of the model: every op goes through the OpBackend the
// forward picked (ops/op_backend.h); nothing below chooses a kernel.

struct SelfAttentionImpl : torch::nn::Module {
  SelfAttentionImpl(const ModelConfig& config);
  // x: [B, T, d]. With kv (incremental decoding) x holds positions
  // [kv->length, +T), rope their tables, and their keys and values are
  // appended to kv's self caches; the mask is then unused (no padding).
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const AttentionMask& mask,
                        const RotaryTables& rope, BlockProbe* probe = nullptr, LayerKv* kv = nullptr);
  int64_t heads, kv_channels;
  double dropout;
  torch::nn::Linear qkv{nullptr}, o{nullptr};
};
TORCH_MODULE(SelfAttention);

struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(const ModelConfig& config);
  // x: [B, Td, d]; memory: [B, Te, d]; mask over the memory positions.
  // With kv the memory's keys and values are kv's cross caches (memory unused).
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const torch::Tensor& memory,
                        const AttentionMask& mask, BlockProbe* probe = nullptr, const LayerKv* kv = nullptr);
  // The memory's keys and values [B, Te, H*kv] each (once per generation).
  std::pair<torch::Tensor, torch::Tensor> memory_kv(const OpBackend& ops, const torch::Tensor& memory);
  int64_t heads, kv_channels;
  double dropout;
  torch::nn::Linear q{nullptr}, kv{nullptr}, o{nullptr};
};
TORCH_MODULE(CrossAttention);

struct SwiGluMlpImpl : torch::nn::Module {
  SwiGluMlpImpl(const ModelConfig& config);
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, BlockProbe* probe = nullptr);
  int64_t ffn_hidden;
  torch::nn::Linear fc_in{nullptr}, fc_out{nullptr};
};
TORCH_MODULE(SwiGluMlp);

struct BlockImpl : Seq2SeqBlockImpl {
  BlockImpl(const ModelConfig& config, bool is_decoder);
  // The forward below on the stack's rope, masks and memory.
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const StackInputs& in,
                        BlockProbe* probe = nullptr) override;
  bool applies_dropout() const override;
  // memory/memory_mask only for decoder blocks. Never modifies x.
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const AttentionMask& self_mask,
                        const RotaryTables& rope, const torch::Tensor& memory, const AttentionMask& memory_mask,
                        BlockProbe* probe = nullptr, LayerKv* kv = nullptr);
  // The same on select_op_backend(x).
  torch::Tensor forward(const torch::Tensor& x, const AttentionMask& self_mask, const RotaryTables& rope,
                        const torch::Tensor& memory = {}, const AttentionMask& memory_mask = {});
  bool is_decoder;
  double dropout;
  torch::nn::LayerNorm input_layernorm{nullptr}, post_attn_layernorm{nullptr},
      post_inter_attn_layernorm{nullptr};
  SelfAttention self_attn{nullptr};
  CrossAttention inter_attn{nullptr};
  SwiGluMlp mlp{nullptr};
};
TORCH_MODULE(Block);

struct StackImpl : torch::nn::Module {
  StackImpl(const ModelConfig& config, bool is_decoder);
  torch::nn::ModuleList block{nullptr};
  torch::nn::LayerNorm final_layernorm{nullptr};
  bool is_decoder;
  int64_t size() const { return static_cast<int64_t>(block->size()); }
  Block layer(int64_t i) const { return block->ptr<BlockImpl>(i); }
};
TORCH_MODULE(Stack);

// lm_head's parameters (logits = x W^T + b), built around a given weight
// tensor so that it can be the embedding's own tensor (tied) or a separate one.
struct OutputProjectionImpl : torch::nn::Module {
  OutputProjectionImpl(torch::Tensor weight_tensor, torch::Tensor bias_tensor);
  torch::Tensor weight, bias;
};
TORCH_MODULE(OutputProjection);

struct OpenBAModelImpl : Seq2SeqModelImpl {
  explicit OpenBAModelImpl(const ModelConfig& config);

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
  const torch::Tensor& embedding_weight() const override { return shared_embedding->weight; }

  // Makes lm_head.weight a separate copy of the embedding (a checkpoint that
  // stores different values), or ties it back.
  void untie_lm_head() override;
  void tie_lm_head() override;
  bool lm_head_tied() const override;
  void set_dropout(double probability) override;

  torch::nn::Embedding shared_embedding{nullptr};
  Stack encoder{nullptr}, decoder{nullptr};
  OutputProjection lm_head{nullptr};
};
TORCH_MODULE(OpenBAModel);

}  // namespace openba

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

#include "ops/attention_inputs.h"
#include "arch/openba/config.h"
#include "arch/openba/layout.h"
#include "ops/op_backend.h"

namespace openba {

// The one forward of the model: every op goes through the OpBackend the
// forward picked (ops/op_backend.h); nothing below chooses a kernel.

// Observes a block's forward from inside, without copies (width pruning's
// activation scores, compress/width_scores.cpp). The tensors are the
// forward's own: read them, do not modify them.
class BlockProbe {
 public:
  virtual ~BlockProbe() = default;
  // Each LayerNorm output of the block, in block order.
  virtual void norm_output(const torch::Tensor& /*normed*/) {}
  // The input of an attention output projection [B, T, H*kv].
  virtual void attention_context(bool /*cross*/, const torch::Tensor& /*context*/) {}
  // The input of fc_out [B, T, ffn].
  virtual void ffn_activation(const torch::Tensor& /*activation*/) {}
};

struct SelfAttentionImpl : torch::nn::Module {
  SelfAttentionImpl(const ModelConfig& config);
  // x: [B, T, d].
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const AttentionMask& mask,
                        const RotaryTables& rope, BlockProbe* probe = nullptr);
  int64_t heads, kv_channels;
  double dropout;
  torch::nn::Linear qkv{nullptr}, o{nullptr};
};
TORCH_MODULE(SelfAttention);

struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(const ModelConfig& config);
  // x: [B, Td, d]; memory: [B, Te, d]; mask over the memory positions.
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const torch::Tensor& memory,
                        const AttentionMask& mask, BlockProbe* probe = nullptr);
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

struct BlockImpl : torch::nn::Module {
  BlockImpl(const ModelConfig& config, bool is_decoder);
  // memory/memory_mask only for decoder blocks. Never modifies x.
  torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const AttentionMask& self_mask,
                        const RotaryTables& rope, const torch::Tensor& memory, const AttentionMask& memory_mask,
                        BlockProbe* probe = nullptr);
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

// One batch of the seq2seq task. Masks are 1 for real tokens, 0 for padding.
struct Seq2SeqBatch {
  torch::Tensor input_ids;       // [B, Te] int64
  torch::Tensor attention_mask;  // [B, Te]
  torch::Tensor labels;          // [B, Td] int64, -100 = ignored
  torch::Tensor decoder_input_ids;       // [B, Td]: shift_right(labels)
  torch::Tensor decoder_attention_mask;  // [B, Td] or undefined (all real)
  // False when the maker knows no position is padding (collate does): the
  // forward then passes no mask, so that CUDA attention can take its flash
  // kernel, and needs no device-to-host check of the mask.
  bool inputs_padded = true, targets_padded = true;
  // The masks the forward uses: undefined when nothing is padded.
  torch::Tensor encoder_mask() const { return inputs_padded ? attention_mask : torch::Tensor(); }
  torch::Tensor decoder_mask() const { return targets_padded ? decoder_attention_mask : torch::Tensor(); }
};

// [start] + labels[:-1], with -100 replaced by pad (the reference's _shift_right).
torch::Tensor shift_right(const torch::Tensor& labels, int64_t decoder_start_token_id,
                          int64_t pad_token_id);

// lm_head's parameters (logits = x W^T + b), built around a given weight
// tensor so that it can be the embedding's own tensor (tied) or a separate one.
struct OutputProjectionImpl : torch::nn::Module {
  OutputProjectionImpl(torch::Tensor weight_tensor, torch::Tensor bias_tensor);
  torch::Tensor weight, bias;
};
TORCH_MODULE(OutputProjection);

struct OpenBAModelImpl : torch::nn::Module {
  explicit OpenBAModelImpl(const ModelConfig& config);

  // Encoder final hidden states [B, Te, d].
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  // Decoder final hidden states [B, Td, d] (before lm_head).
  torch::Tensor decode(const torch::Tensor& decoder_input_ids,
                       const torch::Tensor& decoder_attention_mask,
                       const torch::Tensor& encoder_states,
                       const torch::Tensor& encoder_attention_mask);
  // Logits [B, Td, V] in fp32 from decoder hidden states.
  torch::Tensor project(const torch::Tensor& decoder_states);
  // encode + decode + project, all on one backend.
  torch::Tensor forward(const Seq2SeqBatch& batch);
  // The same three on a given backend.
  torch::Tensor encode(const OpBackend& ops, const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  torch::Tensor decode(const OpBackend& ops, const torch::Tensor& decoder_input_ids,
                       const torch::Tensor& decoder_attention_mask, const torch::Tensor& encoder_states,
                       const torch::Tensor& encoder_attention_mask);
  torch::Tensor project(const OpBackend& ops, const torch::Tensor& decoder_states);

  // Makes lm_head.weight a separate copy of the embedding (a checkpoint that
  // stores different values), or ties it back.
  void untie_lm_head();
  void tie_lm_head();
  bool lm_head_tied() const;

  // One block's forward, checkpointed when activation_checkpointing is on.
  torch::Tensor run_block(const OpBackend& ops, BlockImpl& block, const torch::Tensor& x, const AttentionMask& self_mask,
                          const RotaryTables& rope, const torch::Tensor& memory, const AttentionMask& memory_mask);

  ModelConfig config;
  // Recompute each block in backward (training with gradients only).
  bool activation_checkpointing = false;
  torch::nn::Embedding shared_embedding{nullptr};
  Stack encoder{nullptr}, decoder{nullptr};
  OutputProjection lm_head{nullptr};
};
TORCH_MODULE(OpenBAModel);

// Decoder final states [..., d] -> fp32 logits [..., V]: the scaling by
// d_model^-0.5 of a tied head, then lm_head. The model and the out-of-core
// runner (runtime/blockwise.h) both project through this.
torch::Tensor project_to_vocabulary(const OpBackend& ops, const ModelConfig& config, const torch::Tensor& states,
                                    const torch::Tensor& weight, const torch::Tensor& bias);

// Recomputes each block in backward instead of keeping its activations
// (a custom autograd function; see arch/openba/block_checkpoint.h).
void set_activation_checkpointing(OpenBAModelImpl& model, bool enabled);

// Sets every dropout probability (attention and residual) of the model.
void set_dropout(OpenBAModelImpl& model, double probability);

// Copies source(spec) into the parameter of every tensor spec of the
// model's layout (arch/openba/layout.h), in the descriptor's order; a tied
// lm_head.weight (the embedding) is skipped. Loading, initialization and
// training checkpoints fill a model this way.
void fill_parameters(OpenBAModelImpl& model, const std::function<torch::Tensor(const TensorSpec&)>& source);

// Parameters by checkpoint name, each distinct tensor once (the tied
// lm_head.weight is reported only under shared_embedding.weight).
std::vector<std::pair<std::string, torch::Tensor>> unique_named_parameters(OpenBAModelImpl& model);


}  // namespace openba

// What every model family's module tree is to the rest of the toolkit: an
// encoder-decoder with one forward over the op table (ops/op_backend.h),
// parameters named as its checkpoint keys (its descriptor's names), and the
// few knobs training turns. Loading, evaluation, training and Taylor scores
// hold a Seq2SeqModel and never a family's class; make_model() builds the
// family the config names (arch/openba/openba_model.h, arch/t5/t5_model.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include "arch/openba/config.h"
#include "arch/openba/layout.h"
#include "ops/attention_inputs.h"
#include "ops/op_backend.h"

namespace openba {

// Observes a block's forward from inside, without copies (width pruning's
// activation scores, compress/width_scores.cpp). The tensors are the
// forward's own: read them, do not modify them.
class BlockProbe {
 public:
  virtual ~BlockProbe() = default;
  // Each norm output of the block, in block order.
  virtual void norm_output(const torch::Tensor& /*normed*/) {}
  // The input of an attention output projection [B, T, H*kv].
  virtual void attention_context(bool /*cross*/, const torch::Tensor& /*context*/) {}
  // The input of the MLP's output projection [B, T, ffn].
  virtual void ffn_activation(const torch::Tensor& /*activation*/) {}
};

// One decoder block's keys and values for incremental decoding
// (Seq2SeqModelImpl::start_decoding / decode_step).
struct LayerKv {
  // [B, capacity, H*kv], preallocated: rows [0, length) hold the positions
  // decoded so far (OpenBA: k after rotary).
  torch::Tensor self_k, self_v;
  // [B, Te, H*kv]: the cross-attention's keys and values of the encoder
  // output, computed once.
  torch::Tensor cross_k, cross_v;
  int64_t length = 0;
};

// What incremental decoding keeps between steps: every decoder block's
// keys and values, the encoder mask, and the family's positions for the
// whole capacity (OpenBA's rotary tables; T5 computes each step's bias rows
// from its table).
struct DecoderCache {
  std::vector<LayerKv> layers;
  AttentionMask memory_mask;
  RotaryTables rope;
  int64_t length = 0;    // decoder positions consumed
  int64_t capacity = 0;  // the most positions the self caches hold
  int64_t batch() const;
  // Keeps rows `index` (int64 [B'], on the cache's device) of every self
  // cache (only their filled rows are copied), and of the cross caches and
  // memory mask when cross_too. Beam search reorders within each input's
  // beams, which share their cross keys and values: cross_too = false.
  void select_rows(const torch::Tensor& index, bool cross_too = true);
};
// A block's cache around its cross keys and values [B, Te, W] (W = H*kv),
// with empty self caches for `capacity` positions of their dtype and device.
LayerKv empty_layer_kv(int64_t capacity, torch::Tensor cross_k, torch::Tensor cross_v);
// Writes the next positions' k and v [B, t, W] into the self caches and
// advances kv.length; returns the filled rows [B, length, W] of k and v.
std::pair<torch::Tensor, torch::Tensor> append_self_kv(LayerKv& kv, const torch::Tensor& k, const torch::Tensor& v);


// What every block of a stack reads besides its input, made once per
// stack and batch (make_stack_inputs).
struct StackInputs {
  AttentionMask self_mask;
  RotaryTables rope;            // OpenBA: rotary tables for the stack's length
  torch::Tensor position_bias;  // T5: the stack's relative position bias [1, H, T, T]
  torch::Tensor memory;         // decoder blocks: the encoder output
  AttentionMask memory_mask;
  // Incremental decoding: the block's cache (set per block by decode_step;
  // null otherwise). The input then holds positions [kv->length, +t).
  LayerKv* kv = nullptr;
};

// One block of either stack, as the out-of-core runner (runtime/blockwise.h)
// and activation scoring drive it. Its parameters are named as the
// descriptor's local names.
struct Seq2SeqBlockImpl : torch::nn::Module {
  // Never modifies x.
  virtual torch::Tensor forward(const OpBackend& ops, const torch::Tensor& x, const StackInputs& in,
                                BlockProbe* probe = nullptr) = 0;
  // Whether a training-mode forward draws dropout masks (activation
  // checkpointing then replays the generator state in its recomputation).
  virtual bool applies_dropout() const = 0;
};
using Seq2SeqBlock = std::shared_ptr<Seq2SeqBlockImpl>;

// What both families' start_decoding / decode_step share. A cache for
// `capacity` positions over `layers` decoder blocks, block i's cross keys and
// values being cross_kv(i):
DecoderCache make_decoder_cache(int64_t layers, const torch::Tensor& encoder_attention_mask, int64_t capacity,
                                const std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t)>& cross_kv);
// decode_step's preconditions (1 <= t, t = 1 unless the cache is empty, room
// for t more positions; an Error naming the numbers otherwise), then every
// block on x (its LayerKv in `in`), the cache advanced by x's positions.
torch::Tensor run_cached_decoder(const OpBackend& ops, torch::Tensor x, StackInputs& in, DecoderCache& cache,
                                 const std::function<Seq2SeqBlockImpl&(int64_t)>& block);
void check_decode_step(const DecoderCache& cache, int64_t t);

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

struct Seq2SeqModelImpl : torch::nn::Module {
  explicit Seq2SeqModelImpl(const ModelConfig& c) : config(c) {}

  // Encoder final hidden states [B, Te, d].
  virtual torch::Tensor encode(const OpBackend& ops, const torch::Tensor& input_ids,
                               const torch::Tensor& attention_mask) = 0;
  // Decoder final hidden states [B, Td, d] (before the output projection).
  virtual torch::Tensor decode(const OpBackend& ops, const torch::Tensor& decoder_input_ids,
                               const torch::Tensor& decoder_attention_mask, const torch::Tensor& encoder_states,
                               const torch::Tensor& encoder_attention_mask) = 0;
  // Logits [B, Td, V] in fp32 from decoder hidden states.
  virtual torch::Tensor project(const OpBackend& ops, const torch::Tensor& decoder_states) = 0;
  // Incremental decoding. start_decoding computes every decoder block's
  // cross-attention keys and values of the encoder output once and
  // allocates self caches for `capacity` positions; decode_step then runs
  // the decoder on the next positions [B, t] and returns their final
  // states [B, t, d] (before the output projection), appending their keys
  // and values. t > 1 only on an empty cache (the decoder prefix); after
  // that one position per step. The result equals decode() on the whole
  // sequence at those positions (tests/test_generation.cpp). No padding in
  // the decoder: every row decodes in lockstep.
  virtual DecoderCache start_decoding(const OpBackend& ops, const torch::Tensor& encoder_states,
                                      const torch::Tensor& encoder_attention_mask, int64_t capacity) = 0;
  virtual torch::Tensor decode_step(const OpBackend& ops, const torch::Tensor& decoder_input_ids,
                                    DecoderCache& cache) = 0;

  // The input embedding [V, d] (its device and dtype pick the backend).
  virtual const torch::Tensor& embedding_weight() const = 0;

  // The same on select_op_backend of the model's weights.
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  torch::Tensor decode(const torch::Tensor& decoder_input_ids, const torch::Tensor& decoder_attention_mask,
                       const torch::Tensor& encoder_states, const torch::Tensor& encoder_attention_mask);
  torch::Tensor project(const torch::Tensor& decoder_states);
  // encode + decode + project, all on one backend.
  torch::Tensor forward(const Seq2SeqBatch& batch);

  // Whether the output projection is the embedding's own tensor. OpenBA
  // can make it a separate copy (a checkpoint that stores different values)
  // and tie it back; T5's config decides and these refuse to change it.
  virtual bool lm_head_tied() const = 0;
  virtual void untie_lm_head() = 0;
  virtual void tie_lm_head() = 0;
  // Every dropout probability (attention and residual).
  virtual void set_dropout(double probability) = 0;
  // Recompute each block in backward (training with gradients only):
  // arch/block_checkpoint.h, for either family.
  void set_activation_checkpointing(bool enabled) { activation_checkpointing = enabled; }

  // One block's forward, checkpointed when activation_checkpointing is on,
  // the model is training and gradients are recorded.
  torch::Tensor run_block(const OpBackend& ops, Seq2SeqBlockImpl& block, const torch::Tensor& x,
                          const StackInputs& in);

  ModelConfig config;
  bool activation_checkpointing = false;
};
using Seq2SeqModel = std::shared_ptr<Seq2SeqModelImpl>;

// A model of the config's family with uninitialized weights.
Seq2SeqModel make_model(const ModelConfig& config);
// Block `layer` of a stack of the config's family (uninitialized).
Seq2SeqBlock make_block(const ModelConfig& config, bool decoder, int64_t layer);
// A stack's inputs for `length` positions: the mask from a 1/0 attention
// mask (undefined: all real; causal in the decoder) and the family's
// positions: rotary tables (OpenBA) or the relative position bias from the
// stack's table (T5; stack_table: the descriptor's stack_table tensor).
StackInputs make_stack_inputs(const ModelConfig& config, bool decoder, int64_t length,
                              const torch::Tensor& attention_mask, const torch::Tensor& stack_table,
                              const torch::Device& device);
// A stack's final norm: LayerNorm with bias (OpenBA) or RMS norm (T5, bias undefined).
torch::Tensor final_norm(const OpBackend& ops, const ModelConfig& config, const torch::Tensor& x,
                         const torch::Tensor& weight, const torch::Tensor& bias);

// Decoder final states [..., d] -> fp32 logits [..., V]: the scaling by
// d_model^-0.5 of a tied head (config.tie_word_embeddings), then the
// projection. Every family and the out-of-core runner (runtime/blockwise.h)
// project through this.
torch::Tensor project_to_vocabulary(const OpBackend& ops, const ModelConfig& config, const torch::Tensor& states,
                                    const torch::Tensor& weight, const torch::Tensor& bias);

void set_activation_checkpointing(Seq2SeqModelImpl& model, bool enabled);
void set_dropout(Seq2SeqModelImpl& model, double probability);

// Copies source(spec) into the parameter of every tensor spec of the
// model's layout (its family's descriptor), in the descriptor's order; a
// tied lm_head.weight (the embedding) is skipped. Loading, initialization
// and training checkpoints fill a model this way.
void fill_parameters(Seq2SeqModelImpl& model, const std::function<torch::Tensor(const TensorSpec&)>& source);

// Parameters by checkpoint name, each distinct tensor once (a tied
// lm_head.weight is reported only under the embedding's name).
std::vector<std::pair<std::string, torch::Tensor>> unique_named_parameters(Seq2SeqModelImpl& model);

}  // namespace openba

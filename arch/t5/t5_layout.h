// The T5 architecture descriptor (T5, T5 v1.1, mT5, Flan-T5, UL2): every
// tensor of a checkpoint under transformers' own names, which are ours too
// (the key map is the identity), in the order save_pretrained writes them:
//
//   shared.weight                                           [V, d]
//   encoder.block.i.layer.0.SelfAttention.{q,k,v}.weight    [H*kv, d]
//   encoder.block.i.layer.0.SelfAttention.o.weight          [d, H*kv]
//   encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight  [buckets, H]
//   encoder.block.i.layer.0.layer_norm.weight               [d]   (RMS norm, no bias)
//   encoder.block.i.layer.1.DenseReluDense.wi.weight        [ff, d]  (relu/gelu)
//     or .wi_0.weight, .wi_1.weight                         [ff, d]  (gated: act(wi_0 x) * wi_1 x)
//   encoder.block.i.layer.1.DenseReluDense.wo.weight        [d, ff]
//   encoder.block.i.layer.1.layer_norm.weight
//   encoder.final_layer_norm.weight
//   decoder.block.i: layer.0 self-attention (block 0 owns the decoder's
//     table), layer.1.EncDecAttention.{q,k,v,o} + layer.1.layer_norm,
//     layer.2 the MLP; decoder.final_layer_norm.weight
//   lm_head.weight [V, d]   only when tie_word_embeddings is false
//
// Unit axes: hidden channel c = column c of q/k/v/wi*/shared/lm_head, row c
// of o/wo, element c of every norm; head h = rows [h*kv, (h+1)*kv) of q, k
// and v, the same columns of o, column h of the relative-bias table; FFN
// neuron j = row j of wi (or wi_0 and wi_1), column j of wo. Torch-free.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "arch/openba/layout.h"

namespace openba {

// The descriptor's parts; arch/openba/layout.cpp assembles them in the
// canonical order and looks names up in them (openba_tensor_specs,
// find_tensor_spec), as for every family.
std::vector<TensorSpec> t5_embedding_specs(const ModelConfig& config);
std::vector<TensorSpec> t5_final_norm_specs(const ModelConfig& config, bool decoder);
std::vector<TensorSpec> t5_lm_head_specs(const ModelConfig& config);  // empty when tied
std::vector<TensorSpec> t5_block_tensor_specs(const ModelConfig& config, bool decoder, int64_t layer);
std::string t5_embedding_name();
std::string t5_final_norm_name(bool decoder);
// encoder block 0's wi (or wi_0 when gated).
std::string t5_ffn_width_tensor(const ModelConfig& config);
bool is_t5_ignored_tensor_name(const std::string& name, const ModelConfig& config);

// Local names inside a block, for the T5 module tree (arch/t5/t5_model.cpp).
std::string t5_attention_prefix(bool cross);     // "layer.0.SelfAttention" / "layer.1.EncDecAttention"
std::string t5_ffn_prefix(bool decoder);         // "layer.1.DenseReluDense" / "layer.2.DenseReluDense"
inline const char* kT5RelativeBiasLocalName = "layer.0.SelfAttention.relative_attention_bias.weight";

}  // namespace openba

// Initial weights, tensor by tensor. Each tensor's values depend only on
// (scheme, seed, tensor name), so a model can be initialized straight to disk
// one tensor at a time, in any order, with any thread count.
//
// Schemes (LayerNorms 1/0 and biases 0 in both):
//  - megatron (default): what OpenBA's pretraining used (Megatron-LM
//    defaults, init_method_std 0.02): every matrix and the embedding
//    N(0, 0.02), output projections (attention o, mlp.fc_out) N(0, 0.02 /
//    sqrt(2 * layers of their stack)). Starts near loss ln(vocab).
//  - hf: the HF modeling code's _init_weights (embedding N(0, 1), q rows
//    (d*kv)^-0.5, ...). With the tied, unscaled lm_head this starts at a
//    very high loss; kept for parity with the Python reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "arch/openba/config.h"
#include "arch/openba/layout.h"

namespace openba {

enum class InitScheme { kMegatron, kHf };
// "megatron" or "hf"; throws Error naming the flag otherwise.
InitScheme parse_init_scheme(const std::string& text, const std::string& flag);

// fp32 values for `spec` (the tied lm_head.weight equals the embedding).
torch::Tensor initial_tensor(const TensorSpec& spec, const ModelConfig& config, uint64_t seed,
                             InitScheme scheme = InitScheme::kMegatron);

struct Seq2SeqModelImpl;
// Fills every parameter of an in-memory model with initial_tensor().
void initialize_weights(Seq2SeqModelImpl& model, uint64_t seed,
                        InitScheme scheme = InitScheme::kMegatron);

// Written straight to disk: runtime/initial_checkpoint.h.

}  // namespace openba

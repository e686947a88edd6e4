// What every attention op of the model takes besides its activations: the
// rotary tables and the mask of hidden keys (shared/reference/openba.md §1),
// and the one value hidden scores get. Every backend (ops/op_backend.h)
// reads these; none builds its own.
#pragma once

#include <torch/types.h>

namespace openba {

// The reference fills hidden scores with this before the softmax (not -inf:
// a query that sees no key, an all-padding input, stays finite).
constexpr double kMaskedScore = -10000.0;

// Rotary tables for positions [0, length): cos and sin, each [length, kv_channels]
// laid out as [half, half] for rotate-half.
struct RotaryTables {
  torch::Tensor cos;
  torch::Tensor sin;
};
RotaryTables make_rotary_tables(int64_t length, int64_t kv_channels, double base,
                                const torch::Device& device);
// x: [B, T, H, kv] -> x * cos + rotate_half(x) * sin at positions [0, T).
torch::Tensor apply_rotary(const torch::Tensor& x, const RotaryTables& rope);

// Which keys a query may not see: padded keys and, for the decoder's
// self-attention, later positions. Hidden scores are set to kMaskedScore.
struct AttentionMask {
  torch::Tensor key_hidden;  // bool [B, Tk], true = hidden; undefined when no key is hidden
  bool causal = false;
  // bool mask broadcastable to [B, H, Tq, Tk]; undefined when nothing is hidden.
  torch::Tensor dense(int64_t tq, int64_t tk) const;
};
// From a 1/0 attention mask [B, Tk] (undefined = all real). A CPU mask with
// nothing hidden gives no key_hidden; a CUDA mask is kept as it is (checking
// would wait for the device).
AttentionMask key_padding_mask(const torch::Tensor& attention_mask, bool causal = false);

}  // namespace openba

// FLOPs of the OpenBA encoder-decoder, counted as in the reference
// (shared/reference/openba.md §6): 2 FLOPs per multiply-add; per encoder
// token qkv+o (4*d*a) and MLP (3*d*f) per encoder layer; per decoder token
// self qkv+o and cross q+o (6*d*a) and MLP (3*d*f) per decoder layer plus
// the lm_head (d*V); cross-attention K/V projections over encoder tokens
// (2*d*a per decoder layer per encoder token); attention scores and values
// 2*T*T'*a multiply-adds per attention (causal attention counted in full).
// A training step is 3x the forward.
#pragma once

#include <cstdint>

#include "arch/openba/config.h"

namespace openba {

// Forward FLOPs for one sequence pair of the given lengths.
double forward_flops_per_sequence(const ModelConfig& config, int64_t encoder_tokens,
                                  int64_t decoder_tokens);

}  // namespace openba

// Activation checkpointing per block. LibTorch's C++ API has no
// torch.utils.checkpoint, so this is a custom autograd function: its forward
// runs the block on detached inputs and keeps only those inputs; its backward
// runs the block again with gradients recorded (same RNG state, so dropout
// masks repeat) and back-propagates through that recomputation. Activation
// memory per block drops to its input; compute rises by one block forward.
#pragma once

#include <torch/types.h>

namespace openba {

struct BlockImpl;
struct AttentionMask;
struct RotaryTables;
class OpBackend;

// block.forward(ops, x, self_mask, rope, memory, memory_mask) with the
// block's activations recomputed in backward on the same backend. The
// result and every gradient equal the plain call's bit for bit (the same
// kernels run on the same values).
torch::Tensor checkpointed_block_forward(const OpBackend& ops, BlockImpl& block, const torch::Tensor& x, const AttentionMask& self_mask,
                                         const RotaryTables& rope, const torch::Tensor& memory,
                                         const AttentionMask& memory_mask);

}  // namespace openba

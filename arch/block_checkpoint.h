// Activation checkpointing per block. LibTorch's C++ API has no
// torch.utils.checkpoint, so this is a custom autograd function: its forward
// runs the block on detached inputs and keeps only those inputs; its backward
// runs the block again with gradients recorded (same RNG state, so dropout
// masks repeat) and back-propagates through that recomputation. Activation
// memory per block drops to its input; compute rises by one block forward.
#pragma once

#include <torch/types.h>

namespace openba {

struct Seq2SeqBlockImpl;
struct StackInputs;
class OpBackend;

// block.forward(ops, x, in) with the block's activations recomputed in
// backward on the same backend, for a block of either family. The result
// equals the plain call's bit for bit (the same kernels on the same
// values), and so does every gradient of an OpenBA block; T5's gradients
// (x, the memory, the position bias and so its table, the parameters) equal
// them to float rounding (1e-6 relative measured; the likely cause: the
// bias shared by every block of the stack gets its gradient summed in
// another order, not yet pinned down).
torch::Tensor checkpointed_block_forward(const OpBackend& ops, Seq2SeqBlockImpl& block, const torch::Tensor& x,
                                         const StackInputs& in);

}  // namespace openba

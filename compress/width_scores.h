// Importance scores for width pruning (shared/reference/openba.md section 5).
//
//   activation: Minitron's: per unit, |activation| averaged over an example's
//               real tokens, then the L2 norm over examples. FFN neuron: the
//               input of fc_out; head: the L2 norm of its slice of the input
//               of the output projection; hidden channel: the block
//               LayerNorm outputs (input, post-attention, post-cross-attention
//               of every block), summed over those LayerNorms per example.
//               Forward only, block by block over the memory-mapped model.
//   magnitude:  the L2 norm of all weights of the unit (streams the tensors).
//   taylor:     sum over the unit's weights of |w * dL/dw|, the gradient
//               accumulated over the calibration examples (LLM-Pruner's
//               first-order score; loads the whole model with gradients).
//   random:     uniform scores from the seed: a seeded random subset, the
//               released OpenBA-V2 behaviour, kept as the baseline.
#pragma once

#include <cstdint>
#include <vector>

#include "compress/width_units.h"

namespace openba {

class BlockwiseModel;
class Checkpoint;
class Progress;
struct BlockBatch;
struct ExampleSet;
struct Seq2SeqBlockImpl;
struct StackInputs;

WidthScores activation_scores(const BlockwiseModel& model, std::vector<BlockBatch>& batches, Progress* progress);
WidthScores magnitude_scores(const Checkpoint& checkpoint, Progress* progress);
WidthScores taylor_scores(const Checkpoint& checkpoint, const ExampleSet& calibration, size_t max_batch,
                          size_t max_tokens, Progress* progress);
WidthScores random_scores(const ModelConfig& config, uint64_t seed);

// The activations the activation score reads, recorded by a BlockProbe on
// the block's own forward. The scores are defined on the aten-math backend
// (the reference's attention formula; ops/op_backend.h), so they do not
// move with kernel changes. Its output equals the block's forward to
// rounding (tests check it).
struct BlockActivations {
  std::vector<at::Tensor> norms;  // LayerNorm outputs [B, T, d], in block order
  at::Tensor self_context;        // input of self_attn.o [B, T, H*kv]
  at::Tensor cross_context;       // input of inter_attn.o (decoder)
  at::Tensor ffn;                 // input of fc_out [B, T, ffn]
  at::Tensor out;                 // block output
};
BlockActivations probe_block(Seq2SeqBlockImpl& block, const at::Tensor& x, const StackInputs& inputs);

}  // namespace openba

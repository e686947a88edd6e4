// Running a checkpoint (either family) block by block, out of core.
//
// Only the top-level tensors (embedding, final norms, lm_head) and one block's
// weights are resident at a time: a block is built from the memory-mapped
// checkpoint, every calibration/evaluation batch is pushed through it, and it
// is freed before the next one. The activations of all batches stay resident
// (that, not the weights, is what the caller sizes with sample counts). This
// is how the compression stages score and evaluate a model larger than RAM.
#pragma once

#include <functional>
#include <set>
#include <utility>
#include <vector>

#include "runtime/checkpoint.h"
#include "runtime/evaluation.h"
#include "arch/seq2seq_model.h"

namespace openba {

class Progress;

// One batch moving through the model.
struct BlockBatch {
  Seq2SeqBatch batch;
  std::vector<int> denoisers;  // per example (-1 when not UL2)
  torch::Tensor x;             // hidden states of the stack being run
  torch::Tensor memory;        // encoder output (after its final norm)
  StackInputs inputs;          // of the stack being run (masks, positions, memory)
  // True for real (non-padding) positions of the current stack, float [B, T, 1].
  torch::Tensor real_positions(bool decoder) const;
};

// Pads examples into batches (see plan_batches) ready for a blockwise run.
std::vector<BlockBatch> make_block_batches(const std::vector<Example>& examples,
                                           const std::vector<int>& denoisers, const ModelConfig& config,
                                           size_t max_batch, size_t max_tokens);

class BlockwiseModel {
 public:
  // Reads only the top-level tensors now (in fp32).
  explicit BlockwiseModel(const Checkpoint& checkpoint);
  const Checkpoint& checkpoint() const { return checkpoint_; }
  const ModelConfig& config() const { return checkpoint_.config(); }

  // A block with the checkpoint's weights (fp32, CPU, eval mode). The file
  // pages it read are released.
  Seq2SeqBlock load_block(bool decoder, int64_t index) const;
  torch::Tensor embed(const torch::Tensor& ids) const;
  torch::Tensor final_norm(bool decoder, const torch::Tensor& x) const;
  // The inputs every block of a stack reads for this batch (its masks, its
  // positions from the stack's table, the encoder output for the decoder).
  StackInputs stack_inputs(bool decoder, const BlockBatch& batch) const;
  // Decoder final states [N, d] -> fp32 logits [N, V], as OpenBAModelImpl::project.
  torch::Tensor project(const torch::Tensor& states) const;

 private:
  const Checkpoint& checkpoint_;
  torch::Tensor embedding_, lm_head_weight_, lm_head_bias_;
  torch::Tensor final_w_[2], final_b_[2];
  torch::Tensor stack_table_[2];  // T5's relative-bias table per stack (undefined for OpenBA)
};

// A block's forward over one batch (batch.inputs are the stack's): returns
// the block output. The default is the block's forward on select_op_backend;
// scorers substitute an instrumented one.
using BlockForward = std::function<torch::Tensor(bool decoder, int64_t layer, Seq2SeqBlockImpl& block,
                                                 BlockBatch& batch, const torch::Tensor& x)>;
// Called after each block on each batch with its input and output.
using BlockObserver = std::function<void(bool decoder, int64_t layer, BlockBatch& batch, const torch::Tensor& in,
                                         const torch::Tensor& out)>;

struct BlockwiseRun {
  std::set<std::pair<bool, int64_t>> skip;  // (decoder, layer) bypassed
  bool run_decoder = true;
  bool losses = true;         // compute per-example held-out losses at the end
  BlockForward forward;       // optional
  BlockObserver observer;     // optional
  Progress* progress = nullptr;  // advanced once per block
};

// Runs every batch through the model. Returns per-batch example losses when
// run.losses (empty otherwise). Uses the same loss code as openba-eval.
std::vector<std::vector<ExampleLoss>> run_blockwise(const BlockwiseModel& model, std::vector<BlockBatch>& batches,
                                                    const BlockwiseRun& run);

// Blocks run_blockwise visits for `run` (for progress totals).
int64_t blockwise_steps(const ModelConfig& config, const BlockwiseRun& run);

}  // namespace openba

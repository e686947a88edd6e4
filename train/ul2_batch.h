// UL2 examples as model batches, and the training loss over them.
#pragma once

#include <cstdint>
#include <vector>

#include "arch/seq2seq_model.h"
#include "train/ul2_stream.h"

namespace openba {

struct TrainBatch {
  Seq2SeqBatch batch;
  std::vector<int> denoisers;    // per example
  std::vector<int64_t> example_targets;  // counted labels per example
  int64_t target_tokens = 0;     // counted labels
  int64_t real_tokens = 0;       // encoder + decoder tokens that are not padding
  int64_t padded_tokens = 0;     // batch slots (B x (Te + Td))
};

// Pads to the longest example of the batch.
TrainBatch make_train_batch(const std::vector<Ul2Example>& examples, const ModelConfig& config,
                            const torch::Device& device);

struct TeacherTargets;

// What distillation adds to a micro-batch's loss (train/distillation.h).
struct DistillationInputs {
  const TeacherTargets* teacher = nullptr;  // the teacher's targets for this micro-batch
  double alpha = 0.5, temperature = 1.0;
};

struct LossParts {
  // Scalar, differentiable: what backward runs on. The summed NLL of the
  // counted tokens, or with distillation (1 - alpha) * that + alpha * the
  // summed T^2 KL (a term of weight 0 is computed without gradients, so
  // alpha = 0 trains exactly as without distillation).
  // Everything stays on the model's device (reading a value would wait for
  // it): the trainer brings a step's statistics back once.
  torch::Tensor objective;
  torch::Tensor nll_sum;          // scalar fp32: summed NLL of counted tokens
  torch::Tensor kd_sum;           // distillation: summed T^2 KL of counted tokens (else undefined)
  torch::Tensor teacher_nll_sum;  // distillation: the teacher's own summed NLL (else undefined)
  torch::Tensor example_nll;      // [B] float64, detached: summed NLL per example
};
LossParts seq2seq_loss(Seq2SeqModelImpl& model, const Seq2SeqBatch& batch,
                       const DistillationInputs* distill = nullptr);

}  // namespace openba

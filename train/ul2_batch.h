// UL2 examples as model batches, and the training loss over them.
#pragma once

#include <cstdint>
#include <vector>

#include "model/openba_model.h"
#include "train/ul2_stream.h"

namespace openba {

struct TrainBatch {
  Seq2SeqBatch batch;
  std::vector<int> denoisers;    // per example
  int64_t target_tokens = 0;     // counted labels
  int64_t real_tokens = 0;       // encoder + decoder tokens that are not padding
  int64_t padded_tokens = 0;     // batch slots (B x (Te + Td))
};

// Pads to the longest example of the batch.
TrainBatch make_train_batch(const std::vector<Ul2Example>& examples, const ModelConfig& config,
                            const torch::Device& device);

struct LossParts {
  torch::Tensor nll_sum;                  // scalar, differentiable: summed NLL of counted tokens
  std::vector<double> example_nll;        // per example (detached)
  std::vector<int64_t> example_tokens;
};
LossParts seq2seq_loss(OpenBAModelImpl& model, const Seq2SeqBatch& batch);

}  // namespace openba

// Helpers for the torch-using model tests (include after tests/torch_test.h).
#pragma once

#include "arch/openba/openba_model.h"
#include "util/thread_pool.h"

namespace openba::test {

// Runs a test body with the worker pool at `n` threads, then back to 1.
struct PoolThreads {
  explicit PoolThreads(int n) { WorkerPool::instance().set_threads(n); }
  ~PoolThreads() { WorkerPool::instance().set_threads(1); }
};

// Three examples with padding on both sides (example 1's input, example 2's
// targets, whose last two labels are ignored). Seeded: the same batch every call.
inline Seq2SeqBatch padded_batch(int64_t vocab) {
  torch::manual_seed(11);
  Seq2SeqBatch batch;
  batch.input_ids = torch::randint(3, vocab, {3, 9}, torch::kLong);
  batch.attention_mask = torch::ones({3, 9}, torch::kLong);
  batch.attention_mask[1].narrow(0, 4, 5).zero_();
  batch.labels = torch::randint(3, vocab, {3, 7}, torch::kLong);
  batch.labels[2].narrow(0, 5, 2).fill_(-100);
  batch.decoder_input_ids = shift_right(batch.labels, 0, 0);
  batch.decoder_attention_mask = (batch.labels != -100).to(torch::kLong);
  return batch;
}

}  // namespace openba::test

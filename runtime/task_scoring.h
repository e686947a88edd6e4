// Multiple-choice task scoring through a seq2seq model's likelihoods, the
// ids form of `openba-eval --task`: each line {"context_ids": [...],
// "choice_ids": [[...], ...], "answer": k} and optionally
// "decoder_prefix_ids": [...]. Every choice is scored as the decoder target
// exactly as given (decoder input = prefix + choice[:-1], the prefix being
// [decoder_start] unless the line gives one; only the choice's tokens are
// scored) against the encoder input context_ids, and
// the item is predicted by the summed log-likelihood (lm-eval's "acc") and
// by the per-token mean (length-normalized, cf. lm-eval's "acc_norm", which
// normalizes by bytes instead). Ties go to the first choice (numpy argmax).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arch/seq2seq_model.h"

namespace openba {

struct TaskItem {
  std::vector<int64_t> context_ids;
  std::vector<std::vector<int64_t>> choice_ids;
  int64_t answer = 0;
  // The decoder's first ids, read but not scored (e.g. OpenBA's template
  // [0, <extra_id_0>]); empty: [decoder_start]. Each choice is scored after it.
  std::vector<int64_t> decoder_prefix_ids;
};

struct ItemScore {
  std::vector<double> loglik;   // summed log-likelihood per choice
  std::vector<int64_t> tokens;  // target tokens per choice
  int64_t pred_sum = 0;         // argmax of loglik
  int64_t pred_mean = 0;        // argmax of loglik / tokens
};

// One line of a task file; errors name `where` (file:line) and the field.
TaskItem parse_task_item_json(const std::string& line, int64_t vocab_size, const std::string& where);

// Scores every choice of every item (batched by similar length: at most
// max_batch choices and max_tokens padded tokens per batch). No gradients.
// scored(n) is called after each batch with the choices it scored.
std::vector<ItemScore> score_task_items(Seq2SeqModelImpl& model, const std::vector<TaskItem>& items,
                                        const torch::Device& device, size_t max_batch, size_t max_tokens,
                                        const std::function<void(size_t)>& scored = {});

struct TaskAccuracy {
  double accuracy = 0;  // mean of correct
  double standard_error = 0;  // sample standard deviation / sqrt(n), as lm-eval's mean_stderr (0 when n = 1)
};
TaskAccuracy task_accuracy(const std::vector<bool>& correct);

// Every item of a task file (blank lines skipped); errors name path:line,
// and an unreadable or itemless file.
std::vector<TaskItem> read_task_file(const std::string& path, int64_t vocab_size);

// The summary line of openba-eval --task: {"summary": true, "items",
// "accuracy", "accuracy_stderr", "accuracy_mean_token",
// "accuracy_mean_token_stderr", "chance"} (chance: the mean of 1/choices).
nlohmann::ordered_json task_summary(const std::vector<TaskItem>& items, const std::vector<ItemScore>& scores);

}  // namespace openba

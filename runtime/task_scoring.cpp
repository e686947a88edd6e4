#include "runtime/task_scoring.h"

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/evaluation.h"
#include "runtime/jsonl_input.h"
#include "util/error.h"

namespace openba {
namespace {

int64_t first_argmax(const std::vector<double>& values) {
  int64_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[static_cast<size_t>(best)]) best = static_cast<int64_t>(i);
  }
  return best;
}

}  // namespace

TaskItem parse_task_item_json(const std::string& line, int64_t vocab_size, const std::string& where) {
  const nlohmann::json root =
      parse_jsonl_object(line, where, "a JSON object with context_ids, choice_ids and answer");
  auto field = [&](const char* key) -> const nlohmann::json& { return required_field(root, key, where); };
  TaskItem item;
  item.context_ids = read_token_ids(field("context_ids"), "context_ids", vocab_size, false, where);
  const auto& choices = field("choice_ids");
  if (!choices.is_array() || choices.empty()) {
    throw Error(where + ": \"choice_ids\" must be a non-empty array of token-id arrays");
  }
  for (size_t i = 0; i < choices.size(); ++i) {
    item.choice_ids.push_back(
        read_token_ids(choices[i], "choice_ids[" + std::to_string(i) + "]", vocab_size, false, where));
  }
  if (root.contains("decoder_prefix_ids")) {
    item.decoder_prefix_ids = read_token_ids(root["decoder_prefix_ids"], "decoder_prefix_ids", vocab_size, false, where);
  }
  const auto& answer = field("answer");
  if (!answer.is_number_integer()) throw Error(where + ": \"answer\" must be an integer (the correct choice's index)");
  item.answer = answer.get<int64_t>();
  if (item.answer < 0 || item.answer >= static_cast<int64_t>(item.choice_ids.size())) {
    throw Error(where + ": \"answer\" " + std::to_string(item.answer) + " is outside the " +
                std::to_string(item.choice_ids.size()) + " choices [0, " + std::to_string(item.choice_ids.size()) +
                ")");
  }
  return item;
}

std::vector<ItemScore> score_task_items(Seq2SeqModelImpl& model, const std::vector<TaskItem>& items,
                                        const torch::Device& device, size_t max_batch, size_t max_tokens,
                                        const std::function<void(size_t)>& scored) {
  // Every (item, choice) pair is one example: the context as the encoder
  // input, the choice as the labels (all counted).
  std::vector<Example> examples;
  std::vector<std::pair<size_t, size_t>> owner;  // (item, choice) per example
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& prefix = items[i].decoder_prefix_ids;
    for (size_t c = 0; c < items[i].choice_ids.size(); ++c) {
      const auto& choice = items[i].choice_ids[c];
      Example e{items[i].context_ids, choice, {}};
      if (!prefix.empty()) {
        // Labels ignored under the prefix after its first id; the decoder
        // reads prefix + choice[:-1].
        e.labels.assign(prefix.size() - 1, -100);
        e.labels.insert(e.labels.end(), choice.begin(), choice.end());
        e.decoder_input_ids = prefix;
        e.decoder_input_ids.insert(e.decoder_input_ids.end(), choice.begin(), choice.end() - 1);
      }
      examples.push_back(std::move(e));
      owner.emplace_back(i, c);
    }
  }
  std::vector<ItemScore> scores(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    scores[i].loglik.assign(items[i].choice_ids.size(), 0.0);
    scores[i].tokens.assign(items[i].choice_ids.size(), 0);
  }
  for (const auto& batch_indices : plan_batches(examples, max_batch, max_tokens)) {
    std::vector<const Example*> members;
    for (size_t e : batch_indices) members.push_back(&examples[e]);
    const auto losses = example_losses(model, collate(members, model.config, device));
    for (size_t k = 0; k < batch_indices.size(); ++k) {
      const auto [i, c] = owner[batch_indices[k]];
      scores[i].loglik[c] = -losses[k].nll_sum;
      scores[i].tokens[c] = losses[k].tokens;
    }
    if (scored) scored(batch_indices.size());
  }
  for (auto& s : scores) {
    s.pred_sum = first_argmax(s.loglik);
    std::vector<double> mean(s.loglik.size());
    for (size_t c = 0; c < mean.size(); ++c) mean[c] = s.loglik[c] / static_cast<double>(s.tokens[c]);
    s.pred_mean = first_argmax(mean);
  }
  return scores;
}

TaskAccuracy task_accuracy(const std::vector<bool>& correct) {
  TaskAccuracy out;
  const double n = static_cast<double>(correct.size());
  if (correct.empty()) return out;
  double hits = 0;
  for (bool c : correct) hits += c ? 1.0 : 0.0;
  out.accuracy = hits / n;
  if (correct.size() > 1) {
    // Sample variance of the 0/1 outcomes: n p (1 - p) / (n - 1).
    const double variance = n * out.accuracy * (1.0 - out.accuracy) / (n - 1.0);
    out.standard_error = std::sqrt(variance / n);
  }
  return out;
}

std::vector<TaskItem> read_task_file(const std::string& path, int64_t vocab_size) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  std::vector<TaskItem> items;
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    items.push_back(parse_task_item_json(line, vocab_size, path + ":" + std::to_string(line_number)));
  }
  if (in.bad()) throw Error(path + ": read error");
  if (items.empty()) throw Error(path + ": no items");
  return items;
}

nlohmann::ordered_json task_summary(const std::vector<TaskItem>& items, const std::vector<ItemScore>& scores) {
  std::vector<bool> correct_sum, correct_mean;
  double chance = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    correct_sum.push_back(scores[i].pred_sum == items[i].answer);
    correct_mean.push_back(scores[i].pred_mean == items[i].answer);
    chance += 1.0 / static_cast<double>(items[i].choice_ids.size());
  }
  const auto by_sum = task_accuracy(correct_sum);
  const auto by_mean = task_accuracy(correct_mean);
  nlohmann::ordered_json summary;
  summary["summary"] = true;
  summary["items"] = items.size();
  summary["accuracy"] = by_sum.accuracy;
  summary["accuracy_stderr"] = by_sum.standard_error;
  summary["accuracy_mean_token"] = by_mean.accuracy;
  summary["accuracy_mean_token_stderr"] = by_mean.standard_error;
  summary["chance"] = items.empty() ? 0.0 : chance / static_cast<double>(items.size());
  return summary;
}

}  // namespace openba

#include "tokenizer/continuation_task.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tokenizer/layout.h"
#include "tokenizer/shard_reader.h"
#include "util/counter_rng.h"
#include "util/error.h"

namespace openba {

std::vector<std::string> make_continuation_task(const ShardSet& shards, const TokenizerLayout& layout,
                                                const ContinuationTaskOptions& o) {
  if (o.items < 1) throw Error("--items must be at least 1");
  if (o.context_tokens < 1) throw Error("--context-tokens must be at least 1");
  if (o.choice_tokens < 1) throw Error("--choice-tokens must be at least 1");
  if (o.choices < 2) throw Error("--choices must be at least 2");
  const auto needed = static_cast<size_t>(o.context_tokens + o.choice_tokens);
  std::vector<uint64_t> eligible;
  for (uint64_t d = 0; d < shards.documents(); ++d) {
    if (shards.document_length(d) >= needed) eligible.push_back(d);
  }
  if (eligible.size() < static_cast<size_t>(o.choices)) {
    throw Error(shards.dir() + ": " + std::to_string(eligible.size()) + " documents of at least " + std::to_string(needed) +
                " tokens (--context-tokens + --choice-tokens); " + std::to_string(o.choices) + " choices need " +
                std::to_string(o.choices) + " documents");
  }
  const int sentinel = layout.sentinel_id(0), eos = layout.eos_id();
  auto span = [&](uint64_t doc, uint64_t start, int64_t n) {
    const auto view = shards.document(doc);
    std::vector<int64_t> ids;
    for (int64_t j = 0; j < n; ++j) ids.push_back(view[start + static_cast<uint64_t>(j)]);
    return ids;
  };
  std::vector<std::string> lines;
  for (int64_t i = 0; i < o.items; ++i) {
    CounterRng rng(o.seed, /*stream=*/0x7a5c, static_cast<uint64_t>(i));
    const uint64_t doc = eligible[rng.below(eligible.size())];
    const uint64_t start = rng.below(shards.document_length(doc) - needed + 1);
    std::vector<int64_t> context;
    if (layout.has_mode_tokens()) context.push_back(layout.mode_id('S'));
    for (int64_t id : span(doc, start, o.context_tokens)) context.push_back(id);
    context.push_back(sentinel);
    context.push_back(eos);
    auto choice = [&](std::vector<int64_t> ids) {
      ids.insert(ids.begin(), sentinel);
      ids.push_back(eos);
      return ids;
    };
    // Distractors: spans of other documents, each document once.
    std::vector<uint64_t> used = {doc};
    std::vector<std::vector<int64_t>> choices;
    while (static_cast<int64_t>(choices.size()) < o.choices - 1) {
      const uint64_t other = eligible[rng.below(eligible.size())];
      if (std::find(used.begin(), used.end(), other) != used.end()) continue;
      used.push_back(other);
      const uint64_t at = rng.below(shards.document_length(other) - static_cast<uint64_t>(o.choice_tokens) + 1);
      choices.push_back(choice(span(other, at, o.choice_tokens)));
    }
    const auto answer = static_cast<int64_t>(rng.below(static_cast<uint64_t>(o.choices)));
    choices.insert(choices.begin() + answer, choice(span(doc, start + static_cast<uint64_t>(o.context_tokens), o.choice_tokens)));
    nlohmann::ordered_json line;
    line["context_ids"] = context;
    line["choice_ids"] = choices;
    line["answer"] = answer;
    line["document"] = doc;
    line["start"] = start;
    lines.push_back(line.dump());
  }
  return lines;
}

}  // namespace openba

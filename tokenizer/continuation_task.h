// A multiple-choice task made from a token shard set (openba-tokenize
// make-task): pick a passage's true continuation among `choices` spans, the
// others taken from other documents. It is the demo's task: a model that
// learned anything about its corpus beats the chance level 1/choices, and it
// needs no labelled data. Lines are openba-eval --task's ids form, in the
// S-denoiser's format so that a UL2-trained model reads it as it trained
// (train/denoiser.h):
//
//   context_ids  [<S>] passage <extra_id_0> </s>  (<S> where the layout has mode tokens)
//   choice_ids   <extra_id_0> span </s>            (every choice the same length)
//   answer       the true continuation's index
//
// plus "document" and "start", where the passage came from. Item i is a
// pure function of (seed, i): the same file on every machine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace openba {

class ShardSet;
class TokenizerLayout;

struct ContinuationTaskOptions {
  int64_t items = 200;
  int64_t context_tokens = 48;
  int64_t choice_tokens = 12;
  int64_t choices = 4;
  uint64_t seed = 0;
};

// One JSON line per item. Errors name the option, or the shard set when it
// has fewer than `choices` documents of context_tokens + choice_tokens.
std::vector<std::string> make_continuation_task(const ShardSet& shards, const TokenizerLayout& layout,
                                                const ContinuationTaskOptions& options);

}  // namespace openba

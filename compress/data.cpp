#include "compress/data.h"

#include <filesystem>
#include <fstream>
#include <memory>

#include "tokenizer/layout.h"
#include "tokenizer/shard_reader.h"
#include "train/ul2_stream.h"
#include "util/error.h"

namespace openba {
namespace {

std::unique_ptr<Ul2Stream> open_stream(const std::string& shards, const TokenizerLayout& tokenizer,
                                       const DataOptions& options, const std::string& what) {
  auto set = std::make_shared<ShardSet>(ShardSet::open(shards));
  set->require_tokenizer(tokenizer.fingerprint(), "the model's tokenizer (" + what + " " + shards + ")");
  if (set->tokens() == 0) throw Error(what + " " + shards + ": no tokens");
  Ul2Options u;
  u.encoder_tokens = options.encoder_tokens;
  u.decoder_tokens = options.decoder_tokens;
  u.seed = options.seed;
  return std::make_unique<Ul2Stream>(
      std::make_shared<ShardMixture>(std::vector<ShardMixture::Source>{{set, 1.0}}), tokenizer, u);
}

void add(ExampleSet& set, const Ul2Example& e) {
  Example ex;
  ex.input_ids.assign(e.input_ids.begin(), e.input_ids.end());
  ex.labels.assign(e.labels.begin(), e.labels.end());
  set.examples.push_back(std::move(ex));
  set.denoisers.push_back(e.denoiser);
}

std::vector<std::string> names(const Ul2Stream& s) {
  std::vector<std::string> out;
  for (const auto& d : s.options().denoisers) out.push_back(d.name);
  return out;
}

}  // namespace

uint64_t ExampleSet::tokens() const {
  uint64_t n = 0;
  for (const auto& e : examples) n += e.input_ids.size() + e.labels.size();
  return n;
}

bool is_jsonl_path(const std::string& path) {
  return std::filesystem::is_regular_file(path) && path.size() > 6 && path.substr(path.size() - 6) == ".jsonl";
}

ExampleSet jsonl_examples(const std::string& path, int64_t vocab_size, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw Error(what + " " + path + ": cannot open");
  ExampleSet set;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    set.examples.push_back(parse_example_json(line, vocab_size, path + ":" + std::to_string(n)));
    set.denoisers.push_back(-1);
  }
  if (set.examples.empty()) throw Error(what + " " + path + ": no examples");
  return set;
}

ExampleSet calibration_examples(const std::string& shards, const TokenizerLayout& tokenizer, int64_t count,
                                const DataOptions& options, const std::string& what) {
  if (count <= 0) throw Error(what + "-samples must be positive");
  auto stream = open_stream(shards, tokenizer, options, what);
  ExampleSet set;
  set.denoiser_names = names(*stream);
  const auto weights = stream->initial_weights();
  for (int64_t i = 0; i < count; ++i) add(set, stream->example(static_cast<uint64_t>(i), weights));
  return set;
}

ExampleSet heldout_examples(const std::string& shards, const TokenizerLayout& tokenizer, int64_t per_denoiser,
                            const DataOptions& options, const std::string& what) {
  if (per_denoiser <= 0) throw Error(what + "-samples must be positive");
  DataOptions o = options;
  o.seed = heldout_stream_seed(options.heldout_seed);
  auto stream = open_stream(shards, tokenizer, o, what);
  ExampleSet set;
  set.denoiser_names = names(*stream);
  for (const Ul2Example& e : stream->heldout_examples(per_denoiser)) add(set, e);
  return set;
}

}  // namespace openba

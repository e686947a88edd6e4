#include "compress/compress_options.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <type_traits>

#include "util/config_node.h"
#include "util/error.h"

namespace openba {
namespace {

// "4,8" or a YAML list [4, 8].
std::string yaml_list(const ConfigNode& node, const std::string& key) {
  const auto values = node.get_doubles(key, {});
  if (values.empty()) return node.get_string(key, "");
  std::string out;
  for (double v : values) out += (out.empty() ? "" : ",") + std::to_string(static_cast<long long>(v));
  return out;
}

// Binds --key to the field with CLI11's parsing for its type.
template <typename Field>
std::function<void(CLI::App&, const std::string&, CompressOptions&)> flag_into(Field CompressOptions::*field,
                                                                               std::string help) {
  return [field, help](CLI::App& app, const std::string& flag, CompressOptions& o) {
    app.add_option(flag, o.*field, help);
  };
}

template <typename Field>
CompressKey text(const char* key, Field CompressOptions::*field, const char* help) {
  return {key, help,
          [field](const ConfigNode& n, const std::string& k, CompressOptions& o) { o.*field = n.get_string(k, o.*field); },
          flag_into(field, help)};
}
CompressKey layer_list(const char* key, std::string CompressOptions::*field, const char* help) {
  return {key, help, [field](const ConfigNode& n, const std::string& k, CompressOptions& o) { o.*field = yaml_list(n, k); },
          flag_into(field, help)};
}
CompressKey number(const char* key, int64_t CompressOptions::*field, const char* help) {
  return {key, help,
          [field](const ConfigNode& n, const std::string& k, CompressOptions& o) { o.*field = n.get_int(k, o.*field); },
          flag_into(field, help)};
}
template <typename Field>
CompressKey unsigned_number(const char* key, Field CompressOptions::*field, const char* help) {
  return {key, help,
          [field](const ConfigNode& n, const std::string& k, CompressOptions& o) {
            const int64_t v = n.get_int(k, static_cast<int64_t>(o.*field));
            if (v < 0) throw Error(n.where(k) + ": " + k + " must not be negative");
            o.*field = static_cast<Field>(v);
          },
          flag_into(field, help)};
}

// One directory in YAML, repeatable as a flag.
CompressKey corpus_key() {
  const char* help = "token shards to count piece frequencies on (default: --calib)";
  return {"corpus", help,
          [](const ConfigNode& n, const std::string& k, CompressOptions& o) { o.corpus = {n.get_string(k, "")}; },
          flag_into(&CompressOptions::corpus, help)};
}

// -1 (unset) by default, so CLI11 checks a given value is not negative.
CompressKey heldout_seed_key() {
  CompressKey k = unsigned_number("heldout-seed", &CompressOptions::heldout_seed,
                                  "seed of the held-out draws alone (default: --data-seed); "
                                  "openba-pretrain's eval.seed draws the same examples");
  const std::string help = k.help;
  k.add_flag = [help](CLI::App& app, const std::string& flag, CompressOptions& o) {
    app.add_option(flag, o.heldout_seed, help)->check(CLI::NonNegativeNumber);
  };
  return k;
}

}  // namespace

const std::vector<CompressKey>& compress_yaml_keys() {
  static const std::vector<CompressKey> keys = {
      text("calib", &CompressOptions::calib, "calibration token shards (the model's tokenizer)"),
      number("calib-samples", &CompressOptions::calib_samples, "calibration UL2 examples (default 1024)"),
      text("eval", &CompressOptions::eval, "held-out token shards: loss before/after, per UL2 denoiser"),
      number("eval-samples", &CompressOptions::eval_samples, "held-out examples per denoiser (default 16)"),
      number("encoder-tokens", &CompressOptions::encoder_tokens, "encoder length of the UL2 examples (default 570)"),
      number("decoder-tokens", &CompressOptions::decoder_tokens, "decoder length of the UL2 examples (default 381)"),
      unsigned_number("batch-size", &CompressOptions::batch_size, "examples per batch (default 16)"),
      unsigned_number("max-batch-tokens", &CompressOptions::max_batch_tokens, "padded tokens per batch (default 16384)"),
      unsigned_number("seed", &CompressOptions::seed, "seed of --score random (default 0)"),
      unsigned_number("data-seed", &CompressOptions::data_seed, "seed of the calibration and held-out draws (default 0)"),
      heldout_seed_key(),
      text("score", &CompressOptions::score,
           "layer: angular (default) | loss; neuron: activation (default) | magnitude | taylor | random"),
      text("save-scores", &CompressOptions::save_scores, "write the importance scores (JSON) here"),
      text("scores", &CompressOptions::scores_file, "reuse saved scores instead of a calibration pass"),
      layer_list("drop-encoder-layers", &CompressOptions::drop_encoder_layers, "encoder layers to drop, input numbering (4,8)"),
      layer_list("drop-decoder-layers", &CompressOptions::drop_decoder_layers, "decoder layers to drop, input numbering"),
      number("keep-encoder-layers", &CompressOptions::keep_encoder_layers, "keep the N highest-scoring encoder layers"),
      number("keep-decoder-layers", &CompressOptions::keep_decoder_layers, "keep the N highest-scoring decoder layers"),
      number("ffn", &CompressOptions::ffn, "FFN neurons per layer to keep"),
      number("heads", &CompressOptions::heads, "attention heads per layer to keep (self and cross)"),
      number("hidden", &CompressOptions::hidden, "hidden channels to keep"),
      number("round-to", &CompressOptions::round_to, "keep FFN/hidden sizes multiples of M (default 64)"),
      number("vocab", &CompressOptions::vocab, "SentencePiece pieces to keep (sentinels and <R>/<S>/<X> come on top)"),
      number("min-freq", &CompressOptions::min_freq, "also drop pieces seen fewer times than this (default 0)"),
      corpus_key(),
      text("tokenize-tool", &CompressOptions::tokenize_tool,
           "openba-tokenize for the tokenizer check (default: next to this tool)"),
  };
  return keys;
}

void add_compress_flags(CLI::App& app, CompressOptions& o) {
  for (const auto& k : compress_yaml_keys()) k.add_flag(app, "--" + k.key, o);
}

void read_compress_yaml(const ConfigNode& node, CompressOptions& o, const std::vector<std::string>& skip) {
  for (const auto& k : compress_yaml_keys()) {
    if (std::find(skip.begin(), skip.end(), k.key) != skip.end()) continue;
    if (node.has(k.key)) k.read(node, k.key, o);
  }
}

}  // namespace openba

#include "compress/compress_options.h"

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

template <typename Field>
CompressKey text(const char* key, Field CompressOptions::*field) {
  return {key, [field](const ConfigNode& n, const std::string& k, CompressOptions& o) { o.*field = n.get_string(k, o.*field); }};
}
CompressKey layer_list(const char* key, std::string CompressOptions::*field) {
  return {key, [field](const ConfigNode& n, const std::string& k, CompressOptions& o) { o.*field = yaml_list(n, k); }};
}
CompressKey number(const char* key, int64_t CompressOptions::*field) {
  return {key, [field](const ConfigNode& n, const std::string& k, CompressOptions& o) { o.*field = n.get_int(k, o.*field); }};
}
template <typename Field>
CompressKey unsigned_number(const char* key, Field CompressOptions::*field) {
  return {key, [field](const ConfigNode& n, const std::string& k, CompressOptions& o) {
            const int64_t v = n.get_int(k, static_cast<int64_t>(o.*field));
            if (v < 0) throw Error(n.where(k) + ": " + k + " must not be negative");
            o.*field = static_cast<Field>(v);
          }};
}

}  // namespace

const std::vector<CompressKey>& compress_yaml_keys() {
  static const std::vector<CompressKey> keys = {
      text("calib", &CompressOptions::calib),
      number("calib-samples", &CompressOptions::calib_samples),
      text("eval", &CompressOptions::eval),
      number("eval-samples", &CompressOptions::eval_samples),
      number("encoder-tokens", &CompressOptions::encoder_tokens),
      number("decoder-tokens", &CompressOptions::decoder_tokens),
      unsigned_number("batch-size", &CompressOptions::batch_size),
      unsigned_number("max-batch-tokens", &CompressOptions::max_batch_tokens),
      unsigned_number("seed", &CompressOptions::seed),
      unsigned_number("data-seed", &CompressOptions::data_seed),
      unsigned_number("heldout-seed", &CompressOptions::heldout_seed),
      text("score", &CompressOptions::score),
      text("save-scores", &CompressOptions::save_scores),
      text("scores", &CompressOptions::scores_file),
      layer_list("drop-encoder-layers", &CompressOptions::drop_encoder_layers),
      layer_list("drop-decoder-layers", &CompressOptions::drop_decoder_layers),
      number("keep-encoder-layers", &CompressOptions::keep_encoder_layers),
      number("keep-decoder-layers", &CompressOptions::keep_decoder_layers),
      number("ffn", &CompressOptions::ffn),
      number("heads", &CompressOptions::heads),
      number("hidden", &CompressOptions::hidden),
      number("round-to", &CompressOptions::round_to),
      number("vocab", &CompressOptions::vocab),
      number("min-freq", &CompressOptions::min_freq),
      {"corpus",
       [](const ConfigNode& n, const std::string& k, CompressOptions& o) { o.corpus = {n.get_string(k, "")}; }},
      text("tokenize-tool", &CompressOptions::tokenize_tool),
  };
  return keys;
}

void read_compress_yaml(const ConfigNode& node, CompressOptions& o, const std::vector<std::string>& skip) {
  for (const auto& k : compress_yaml_keys()) {
    if (std::find(skip.begin(), skip.end(), k.key) != skip.end()) continue;
    if (node.has(k.key)) k.read(node, k.key, o);
  }
}

}  // namespace openba

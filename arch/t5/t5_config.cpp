#include "arch/t5/t5_config.h"

#include <set>

#include "util/error.h"

namespace openba {
namespace {

namespace cj = config_json;

const std::set<std::string>& interpreted_t5_keys() {
  static const std::set<std::string> keys = {
      "model_type", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads",
      "relative_attention_num_buckets", "relative_attention_max_distance", "dropout_rate",
      "layer_norm_epsilon", "feed_forward_proj", "is_encoder_decoder", "tie_word_embeddings", "vocab_size",
      "pad_token_id", "eos_token_id", "decoder_start_token_id", "torch_dtype", "dtype"};
  return keys;
}

// transformers' T5Config: feed_forward_proj is "ACT" or "gated-ACT", and
// "gated-gelu" means the tanh approximation (gelu_new), for T5 v1.1's sake.
void parse_feed_forward_proj(const std::string& text, ModelConfig& c, const std::string& source) {
  const size_t dash = text.find('-');
  std::string act = text;
  c.ffn_gated = false;
  if (dash != std::string::npos) {
    if (text.substr(0, dash) != "gated" || text.find('-', dash + 1) != std::string::npos) {
      throw Error(source + ": feed_forward_proj '" + text +
                  "' is not a valid activation (expected ACT or gated-ACT, e.g. relu, gated-gelu, gated-silu)");
    }
    c.ffn_gated = true;
    act = text.substr(dash + 1);
    if (act == "gelu") act = "gelu_new";
  }
  if (act == "relu") {
    c.ffn_activation = FfnActivation::kRelu;
  } else if (act == "gelu") {
    c.ffn_activation = FfnActivation::kGelu;
  } else if (act == "gelu_new" || act == "gelu_pytorch_tanh") {
    c.ffn_activation = FfnActivation::kGeluTanh;
  } else if (act == "silu" || act == "swish") {
    c.ffn_activation = FfnActivation::kSilu;
  } else {
    throw Error(source + ": feed_forward_proj '" + text + "': activation '" + act +
                "' is not supported (relu, gelu, gelu_new, silu)");
  }
}

}  // namespace

bool is_t5_model_type(const std::string& model_type) {
  return model_type == "t5" || model_type == "mt5" || model_type == "umt5";
}

ModelConfig parse_t5_config_json(const cj::Json& root, const std::string& source) {
  const std::string type = root.at("model_type").get<std::string>();
  if (type == "umt5") {
    throw Error(source + ": model_type 'umt5' is not supported: umT5 gives every layer its own relative "
                         "position bias, and the T5 descriptor keeps one table per stack (in block 0)");
  }
  const bool mt5 = type == "mt5";
  ModelConfig c;
  c.family = ModelFamily::kT5;
  c.model_type = type;
  // T5Config / MT5Config defaults.
  c.vocab_size = cj::integer(root, "vocab_size", source, mt5 ? 250112 : 32128);
  c.d_model = cj::integer(root, "d_model", source, 512);
  c.kv_channels = cj::integer(root, "d_kv", source, 64);
  c.ffn_hidden = cj::integer(root, "d_ff", source, mt5 ? 1024 : 2048);
  c.encoder_layers = cj::integer(root, "num_layers", source, mt5 ? 8 : 6);
  c.decoder_layers = cj::integer(root, "num_decoder_layers", source, c.encoder_layers);
  c.num_heads = cj::integer(root, "num_heads", source, mt5 ? 6 : 8);
  c.relative_attention_num_buckets = cj::integer(root, "relative_attention_num_buckets", source, 32);
  c.relative_attention_max_distance = cj::integer(root, "relative_attention_max_distance", source, 128);
  c.hidden_dropout = c.attention_dropout = cj::number(root, "dropout_rate", source, 0.1);
  c.layernorm_eps = cj::number(root, "layer_norm_epsilon", source, 1e-6);
  c.tie_word_embeddings = cj::boolean(root, "tie_word_embeddings", source, !mt5);
  c.pad_token_id = cj::integer(root, "pad_token_id", source, 0);
  c.eos_token_id = cj::integer(root, "eos_token_id", source, 1);
  c.decoder_start_token_id = cj::integer(root, "decoder_start_token_id", source, c.pad_token_id);
  c.dtype = cj::torch_dtype(root, source);
  std::string proj = mt5 ? "gated-gelu" : "relu";
  if (auto it = root.find("feed_forward_proj"); it != root.end() && !it->is_null()) {
    if (!it->is_string()) throw Error(source + ": key 'feed_forward_proj' must be a string (got " + it->dump() + ")");
    proj = it->get<std::string>();
  }
  parse_feed_forward_proj(proj, c, source);
  c.add_qkv_bias = c.add_ffn_bias = c.add_lm_head_bias = false;
  // Relative positions: no length limit in the weights. n_positions (old
  // T5 configs) is the pretraining length; openba-eval warns past it.
  c.max_seq_length = c.decoder_max_seq_length = cj::integer(root, "n_positions", source, 512);
  if (c.relative_attention_num_buckets < 2) {
    throw Error(source + ": relative_attention_num_buckets must be at least 2");
  }
  if (c.relative_attention_max_distance < 1) {
    throw Error(source + ": relative_attention_max_distance must be positive");
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (!interpreted_t5_keys().count(it.key())) c.extra_hf_keys[it.key()] = it.value().dump();
  }
  c.validate(source);
  return c;
}

std::string t5_feed_forward_proj(const ModelConfig& c) {
  if (c.ffn_gated && c.ffn_activation == FfnActivation::kGeluTanh) return "gated-gelu";
  const std::string act = ffn_activation_name(c.ffn_activation);
  return c.ffn_gated ? "gated-" + act : act;
}

std::string t5_config_json(const ModelConfig& c) {
  cj::Json root;
  if (!c.extra_hf_keys.count("architectures")) {
    root["architectures"] = cj::Json::array({c.model_type == "mt5" ? "MT5ForConditionalGeneration"
                                                                    : "T5ForConditionalGeneration"});
  }
  root["model_type"] = c.model_type;
  root["is_encoder_decoder"] = true;
  root["vocab_size"] = c.vocab_size;
  root["d_model"] = c.d_model;
  root["d_kv"] = c.kv_channels;
  root["d_ff"] = c.ffn_hidden;
  root["num_layers"] = c.encoder_layers;
  root["num_decoder_layers"] = c.decoder_layers;
  root["num_heads"] = c.num_heads;
  root["relative_attention_num_buckets"] = c.relative_attention_num_buckets;
  root["relative_attention_max_distance"] = c.relative_attention_max_distance;
  root["dropout_rate"] = c.hidden_dropout;
  root["layer_norm_epsilon"] = c.layernorm_eps;
  root["feed_forward_proj"] = t5_feed_forward_proj(c);
  root["tie_word_embeddings"] = c.tie_word_embeddings;
  root["pad_token_id"] = c.pad_token_id;
  root["eos_token_id"] = c.eos_token_id;
  root["decoder_start_token_id"] = c.decoder_start_token_id;
  root["torch_dtype"] = torch_dtype_name(c.dtype);
  for (const auto& [key, value] : c.extra_hf_keys) root[key] = cj::Json::parse(value);
  return root.dump(2) + "\n";
}

}  // namespace openba

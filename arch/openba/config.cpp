#include "arch/openba/config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"

namespace openba {
namespace {

using Json = nlohmann::ordered_json;

// --- YAML -----------------------------------------------------------------

std::string yaml_where(const std::string& path, const YAML::Node& node) {
  const auto mark = node.Mark();
  if (mark.line < 0) return path;
  return path + ":" + std::to_string(mark.line + 1);
}

template <typename T>
T yaml_scalar(const std::string& path, const std::string& key, const YAML::Node& node,
              const char* expected) {
  if (!node.IsScalar()) {
    throw Error(yaml_where(path, node) + ": key '" + key + "' must be " + expected);
  }
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw Error(yaml_where(path, node) + ": key '" + key + "' must be " + expected + " (got '" +
                node.Scalar() + "')");
  }
}

}  // namespace

ModelConfig load_model_config_yaml(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(path + ": cannot open model config");
  } catch (const YAML::ParserException& e) {
    throw Error(path + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) throw Error(path + ": a model config must be a YAML mapping");

  ModelConfig config;
  using Setter = std::function<void(const std::string&, const YAML::Node&)>;
  auto int_key = [&](int64_t& field) -> Setter {
    return [&field, &path](const std::string& key, const YAML::Node& node) {
      field = yaml_scalar<int64_t>(path, key, node, "an integer");
    };
  };
  auto bool_key = [&](bool& field) -> Setter {
    return [&field, &path](const std::string& key, const YAML::Node& node) {
      field = yaml_scalar<bool>(path, key, node, "true or false");
    };
  };
  auto double_key = [&](double& field) -> Setter {
    return [&field, &path](const std::string& key, const YAML::Node& node) {
      field = yaml_scalar<double>(path, key, node, "a number");
    };
  };
  const std::map<std::string, Setter> setters = {
      {"name", [](const std::string&, const YAML::Node&) {}},
      {"description", [](const std::string&, const YAML::Node&) {}},
      {"encoder_layers", int_key(config.encoder_layers)},
      {"decoder_layers", int_key(config.decoder_layers)},
      {"d_model", int_key(config.d_model)},
      {"num_heads", int_key(config.num_heads)},
      {"kv_channels", int_key(config.kv_channels)},
      {"ffn_hidden", int_key(config.ffn_hidden)},
      {"vocab_size", int_key(config.vocab_size)},
      {"max_seq_length", int_key(config.max_seq_length)},
      {"decoder_max_seq_length", int_key(config.decoder_max_seq_length)},
      {"add_qkv_bias", bool_key(config.add_qkv_bias)},
      {"add_ffn_bias", bool_key(config.add_ffn_bias)},
      {"add_lm_head_bias", bool_key(config.add_lm_head_bias)},
      {"tie_word_embeddings", bool_key(config.tie_word_embeddings)},
      {"layernorm_eps", double_key(config.layernorm_eps)},
      {"rope_base", double_key(config.rope_base)},
      {"hidden_dropout", double_key(config.hidden_dropout)},
      {"attention_dropout", double_key(config.attention_dropout)},
      {"pad_token_id", int_key(config.pad_token_id)},
      {"eos_token_id", int_key(config.eos_token_id)},
      {"decoder_start_token_id", int_key(config.decoder_start_token_id)},
      {"dtype",
       [&config, &path](const std::string& key, const YAML::Node& node) {
         const auto text = yaml_scalar<std::string>(path, key, node, "a dtype name");
         try {
           config.dtype = parse_float_dtype_flag(text, key);
         } catch (const Error& e) {
           throw Error(yaml_where(path, node) + ": " + e.what());
         }
       }},
  };
  const std::set<std::string> required = {"encoder_layers", "decoder_layers", "d_model",
                                          "num_heads",      "kv_channels",    "ffn_hidden",
                                          "vocab_size"};
  std::set<std::string> seen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    auto setter = setters.find(key);
    if (setter == setters.end()) {
      std::string known;
      for (const auto& [name, unused] : setters) known += (known.empty() ? "" : ", ") + name;
      throw Error(yaml_where(path, it->first) + ": unknown key '" + key + "' (known keys: " +
                  known + ")");
    }
    if (!seen.insert(key).second) {
      throw Error(yaml_where(path, it->first) + ": key '" + key + "' given twice");
    }
    setter->second(key, it->second);
  }
  for (const auto& key : required) {
    if (!seen.count(key)) throw Error(path + ": missing required key '" + key + "'");
  }
  config.validate(path);
  return config;
}

// --- validation -------------------------------------------------------------

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t value, const char* name) {
    if (value <= 0) {
      throw Error(source + ": " + name + " must be positive (got " + std::to_string(value) + ")");
    }
  };
  positive(encoder_layers, "encoder_layers");
  positive(decoder_layers, "decoder_layers");
  positive(d_model, "d_model");
  positive(num_heads, "num_heads");
  positive(kv_channels, "kv_channels");
  positive(ffn_hidden, "ffn_hidden");
  positive(vocab_size, "vocab_size");
  positive(max_seq_length, "max_seq_length");
  positive(decoder_max_seq_length, "decoder_max_seq_length");
  if (kv_channels % 2 != 0) {
    throw Error(source + ": kv_channels must be even for rotary embeddings (got " +
                std::to_string(kv_channels) + ")");
  }
  if (!(layernorm_eps > 0) || !std::isfinite(layernorm_eps)) {
    throw Error(source + ": layernorm_eps must be a positive number");
  }
  if (!(rope_base > 1) || !std::isfinite(rope_base)) {
    throw Error(source + ": rope_base must be a number > 1");
  }
  for (const auto& [value, name] : {std::pair<double, const char*>{hidden_dropout, "hidden_dropout"},
                                    {attention_dropout, "attention_dropout"}}) {
    if (!(value >= 0 && value < 1)) throw Error(source + ": " + name + " must be in [0, 1)");
  }
  for (const auto& [value, name] :
       {std::pair<int64_t, const char*>{pad_token_id, "pad_token_id"},
        {eos_token_id, "eos_token_id"},
        {decoder_start_token_id, "decoder_start_token_id"}}) {
    if (value < 0 || value >= vocab_size) {
      throw Error(source + ": " + name + " " + std::to_string(value) +
                  " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    }
  }
  if (!is_floating(dtype) || dtype == DType::F64) {
    throw Error(source + ": weights dtype must be f32, bf16 or f16");
  }
}

bool ModelConfig::same_architecture(const ModelConfig& o) const {
  return encoder_layers == o.encoder_layers && decoder_layers == o.decoder_layers &&
         d_model == o.d_model && num_heads == o.num_heads && kv_channels == o.kv_channels &&
         ffn_hidden == o.ffn_hidden && vocab_size == o.vocab_size &&
         add_qkv_bias == o.add_qkv_bias && add_ffn_bias == o.add_ffn_bias &&
         add_lm_head_bias == o.add_lm_head_bias && tie_word_embeddings == o.tie_word_embeddings &&
         layernorm_eps == o.layernorm_eps && rope_base == o.rope_base;
}

std::string ModelConfig::summary() const {
  std::ostringstream out;
  out << "enc " << encoder_layers << " / dec " << decoder_layers << ", d_model " << d_model
      << ", heads " << num_heads << "x" << kv_channels << ", ffn " << ffn_hidden << ", vocab "
      << vocab_size;
  return out.str();
}

// --- config.json ------------------------------------------------------------

namespace {

size_t line_of_offset(const std::string& text, size_t offset) {
  size_t line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line;
  }
  return line;
}

int64_t json_int(const Json& root, const std::string& key, const std::string& source,
                 std::optional<int64_t> fallback = std::nullopt) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) {
    if (fallback) return *fallback;
    throw Error(source + ": missing required key '" + key + "'");
  }
  if (!it->is_number_integer()) {
    throw Error(source + ": key '" + key + "' must be an integer (got " + it->dump() + ")");
  }
  return it->get<int64_t>();
}

bool json_bool(const Json& root, const std::string& key, const std::string& source, bool fallback) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    throw Error(source + ": key '" + key + "' must be true or false (got " + it->dump() + ")");
  }
  return it->get<bool>();
}

double json_number(const Json& root, const std::string& key, const std::string& source,
                   double fallback) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return fallback;
  if (!it->is_number()) {
    throw Error(source + ": key '" + key + "' must be a number (got " + it->dump() + ")");
  }
  return it->get<double>();
}

// Keys this module interprets; everything else is carried in extra_hf_keys.
const std::set<std::string>& interpreted_hf_keys() {
  static const std::set<std::string> keys = {
      "model_type", "hidden_size", "num_heads", "kv_channels", "ffn_hidden_size", "num_layers",
      "num_decoder_layers", "vocab_size", "max_seq_length", "decoder_max_seq_length",
      "add_qkv_bias", "add_ffn_bias", "add_lm_head_bias", "tie_word_embeddings",
      "layernorm_epsilon", "rotary_base", "hidden_dropout", "attention_dropout", "pad_token_id",
      "eos_token_id", "decoder_start_token_id", "torch_dtype", "architectures",
      "is_encoder_decoder"};
  return keys;
}

}  // namespace

ModelConfig parse_hf_config_json(const std::string& text, const std::string& source) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw Error(source + ":" + std::to_string(line_of_offset(text, e.byte)) +
                ": malformed JSON: " + e.what());
  }
  if (!root.is_object()) throw Error(source + ": config.json must hold a JSON object");

  if (auto it = root.find("model_type"); it != root.end()) {
    const std::string type = it->is_string() ? it->get<std::string>() : it->dump();
    if (type != "openba" && type != "OpenBT5" && type != "openbt5") {
      throw Error(source + ": model_type '" + type +
                  "' is not an OpenBA model (expected \"openba\")");
    }
  }
  ModelConfig c;
  c.d_model = json_int(root, "hidden_size", source);
  c.num_heads = json_int(root, "num_heads", source);
  c.kv_channels = json_int(root, "kv_channels", source);
  c.ffn_hidden = json_int(root, "ffn_hidden_size", source);
  c.encoder_layers = json_int(root, "num_layers", source);
  c.decoder_layers = json_int(root, "num_decoder_layers", source, c.encoder_layers);
  c.vocab_size = json_int(root, "vocab_size", source);
  c.max_seq_length = json_int(root, "max_seq_length", source, 1024);
  c.decoder_max_seq_length = json_int(root, "decoder_max_seq_length", source, 256);
  c.add_qkv_bias = json_bool(root, "add_qkv_bias", source, false);
  c.add_ffn_bias = json_bool(root, "add_ffn_bias", source, false);
  c.add_lm_head_bias = json_bool(root, "add_lm_head_bias", source, false);
  c.tie_word_embeddings = json_bool(root, "tie_word_embeddings", source, false);
  c.layernorm_eps = json_number(root, "layernorm_epsilon", source, 1e-5);
  c.rope_base = json_number(root, "rotary_base", source, 10000.0);
  // Training-time dropout is a trainer decision; keep the file's values only as metadata.
  c.hidden_dropout = json_number(root, "hidden_dropout", source, 0.0);
  c.attention_dropout = json_number(root, "attention_dropout", source, 0.0);
  c.pad_token_id = json_int(root, "pad_token_id", source, 0);
  c.eos_token_id = json_int(root, "eos_token_id", source, 1);
  c.decoder_start_token_id = json_int(root, "decoder_start_token_id", source, 0);
  if (auto it = root.find("torch_dtype"); it != root.end() && !it->is_null()) {
    auto dtype = it->is_string() ? dtype_from_torch_name(it->get<std::string>()) : std::nullopt;
    if (!dtype) throw Error(source + ": unknown torch_dtype " + it->dump());
    c.dtype = *dtype;
  } else {
    c.dtype = DType::F32;
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (!interpreted_hf_keys().count(it.key())) c.extra_hf_keys[it.key()] = it.value().dump();
  }
  // The vocabulary/FFN checks need the tensors; validate the rest now.
  c.validate(source);
  return c;
}

ModelConfig load_hf_config(const std::string& path) {
  return parse_hf_config_json(read_text_file(path), path);
}

std::string to_hf_config_json(const ModelConfig& c) {
  Json root;
  root["architectures"] = Json::array({"OpenBAForConditionalGeneration"});
  root["model_type"] = "openba";
  root["is_encoder_decoder"] = true;
  root["vocab_size"] = c.vocab_size;
  root["hidden_size"] = c.d_model;
  root["kv_channels"] = c.kv_channels;
  // Written as the real width (V2 convention: used as is by the modeling code).
  root["ffn_hidden_size"] = c.ffn_hidden;
  root["num_layers"] = c.encoder_layers;
  root["num_decoder_layers"] = c.decoder_layers;
  root["num_heads"] = c.num_heads;
  root["add_qkv_bias"] = c.add_qkv_bias;
  root["add_ffn_bias"] = c.add_ffn_bias;
  root["add_lm_head_bias"] = c.add_lm_head_bias;
  root["tie_word_embeddings"] = c.tie_word_embeddings;
  root["max_seq_length"] = c.max_seq_length;
  root["decoder_max_seq_length"] = c.decoder_max_seq_length;
  root["hidden_dropout"] = c.hidden_dropout;
  root["attention_dropout"] = c.attention_dropout;
  if (c.layernorm_eps != 1e-5) root["layernorm_epsilon"] = c.layernorm_eps;
  if (c.rope_base != 10000.0) root["rotary_base"] = c.rope_base;
  root["pad_token_id"] = c.pad_token_id;
  root["eos_token_id"] = c.eos_token_id;
  root["decoder_start_token_id"] = c.decoder_start_token_id;
  root["torch_dtype"] = torch_dtype_name(c.dtype);
  for (const auto& [key, value] : c.extra_hf_keys) root[key] = Json::parse(value);
  return root.dump(2) + "\n";
}

int64_t openba_v1_derived_ffn(int64_t declared) {
  const int64_t two_thirds = (2 * declared) / 3;
  return ((two_thirds + 255) / 256) * 256;
}

void reconcile_with_tensor_shapes(ModelConfig& config, int64_t ffn_width_in_tensors,
                                  int64_t vocab_rows_in_tensors, const std::string& source) {
  if (ffn_width_in_tensors != config.ffn_hidden) {
    if (ffn_width_in_tensors != openba_v1_derived_ffn(config.ffn_hidden)) {
      throw Error(source + ": FFN width mismatch: config says ffn_hidden_size " +
                  std::to_string(config.ffn_hidden) + " (or " +
                  std::to_string(openba_v1_derived_ffn(config.ffn_hidden)) +
                  " by OpenBA-15B's 2/3 rule) but mlp.fc_in.weight holds " +
                  std::to_string(ffn_width_in_tensors) + " neurons");
    }
    config.ffn_hidden = ffn_width_in_tensors;
  }
  if (vocab_rows_in_tensors != config.vocab_size) {
    throw Error(source + ": vocabulary mismatch: config says vocab_size " +
                std::to_string(config.vocab_size) + " but shared_embedding.weight has " +
                std::to_string(vocab_rows_in_tensors) + " rows");
  }
}

}  // namespace openba

#include "arch/openba/config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "arch/openba/config_json.h"
#include "arch/t5/t5_config.h"
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

const char* model_family_name(ModelFamily family) {
  switch (family) {
    case ModelFamily::kOpenBA: return "openba";
    case ModelFamily::kT5: return "t5";
  }
  return "?";
}


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
  if (family == ModelFamily::kOpenBA && kv_channels % 2 != 0) {
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
  return family == o.family && ffn_activation == o.ffn_activation && ffn_gated == o.ffn_gated &&
         relative_attention_num_buckets == o.relative_attention_num_buckets &&
         relative_attention_max_distance == o.relative_attention_max_distance && encoder_layers == o.encoder_layers && decoder_layers == o.decoder_layers &&
         d_model == o.d_model && num_heads == o.num_heads && kv_channels == o.kv_channels &&
         ffn_hidden == o.ffn_hidden && vocab_size == o.vocab_size &&
         add_qkv_bias == o.add_qkv_bias && add_ffn_bias == o.add_ffn_bias &&
         add_lm_head_bias == o.add_lm_head_bias && tie_word_embeddings == o.tie_word_embeddings &&
         layernorm_eps == o.layernorm_eps && rope_base == o.rope_base;
}

std::string ModelConfig::summary() const {
  std::ostringstream out;
  if (family != ModelFamily::kOpenBA) out << model_type << ", ";
  out << "enc " << encoder_layers << " / dec " << decoder_layers << ", d_model " << d_model
      << ", heads " << num_heads << "x" << kv_channels << ", ffn " << ffn_hidden << ", vocab "
      << vocab_size;
  return out.str();
}

// --- config.json ------------------------------------------------------------

namespace {

// Keys this module interprets; everything else is carried in extra_hf_keys.
const std::set<std::string>& interpreted_hf_keys() {
  static const std::set<std::string> keys = {
      "model_type", "hidden_size", "num_heads", "kv_channels", "ffn_hidden_size", "num_layers",
      "num_decoder_layers", "vocab_size", "max_seq_length", "decoder_max_seq_length",
      "add_qkv_bias", "add_ffn_bias", "add_lm_head_bias", "tie_word_embeddings",
      "layernorm_epsilon", "rotary_base", "hidden_dropout", "attention_dropout", "pad_token_id",
      "eos_token_id", "decoder_start_token_id", "torch_dtype", "dtype", "architectures",
      "is_encoder_decoder"};
  return keys;
}

}  // namespace

ModelConfig parse_hf_config_json(const std::string& text, const std::string& source) {
  namespace cj = config_json;
  const cj::Json root = cj::parse_object(text, source);
  if (auto it = root.find("model_type"); it != root.end()) {
    const std::string type = it->is_string() ? it->get<std::string>() : it->dump();
    if (is_t5_model_type(type)) return parse_t5_config_json(root, source);
    if (type != "openba" && type != "OpenBT5" && type != "openbt5") {
      throw Error(source + ": model_type '" + type +
                  "' is not a supported model (expected \"openba\", \"t5\" or \"mt5\")");
    }
  }
  ModelConfig c;
  c.d_model = cj::integer(root, "hidden_size", source);
  c.num_heads = cj::integer(root, "num_heads", source);
  c.kv_channels = cj::integer(root, "kv_channels", source);
  c.ffn_hidden = cj::integer(root, "ffn_hidden_size", source);
  c.encoder_layers = cj::integer(root, "num_layers", source);
  c.decoder_layers = cj::integer(root, "num_decoder_layers", source, c.encoder_layers);
  c.vocab_size = cj::integer(root, "vocab_size", source);
  c.max_seq_length = cj::integer(root, "max_seq_length", source, 1024);
  c.decoder_max_seq_length = cj::integer(root, "decoder_max_seq_length", source, 256);
  c.add_qkv_bias = cj::boolean(root, "add_qkv_bias", source, false);
  c.add_ffn_bias = cj::boolean(root, "add_ffn_bias", source, false);
  c.add_lm_head_bias = cj::boolean(root, "add_lm_head_bias", source, false);
  c.tie_word_embeddings = cj::boolean(root, "tie_word_embeddings", source, false);
  c.layernorm_eps = cj::number(root, "layernorm_epsilon", source, 1e-5);
  c.rope_base = cj::number(root, "rotary_base", source, 10000.0);
  // Training-time dropout is a trainer decision; keep the file's values only as metadata.
  c.hidden_dropout = cj::number(root, "hidden_dropout", source, 0.0);
  c.attention_dropout = cj::number(root, "attention_dropout", source, 0.0);
  c.pad_token_id = cj::integer(root, "pad_token_id", source, 0);
  c.eos_token_id = cj::integer(root, "eos_token_id", source, 1);
  c.decoder_start_token_id = cj::integer(root, "decoder_start_token_id", source, 0);
  c.dtype = cj::torch_dtype(root, source);
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

ModelConfig load_model_config_file(const std::string& path) {
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  return json ? load_hf_config(path) : load_model_config_yaml(path);
}

std::string to_hf_config_json(const ModelConfig& c) {
  if (c.family == ModelFamily::kT5) return t5_config_json(c);
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
  const bool t5 = config.family == ModelFamily::kT5;
  if (ffn_width_in_tensors != config.ffn_hidden) {
    if (t5) {
      throw Error(source + ": FFN width mismatch: config says d_ff " + std::to_string(config.ffn_hidden) +
                  " but the MLP input weight of encoder block 0 holds " + std::to_string(ffn_width_in_tensors) +
                  " neurons");
    }
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
                std::to_string(config.vocab_size) + " but " + (t5 ? "shared.weight" : "shared_embedding.weight") +
                " has " + std::to_string(vocab_rows_in_tensors) + " rows");
  }
}

}  // namespace openba

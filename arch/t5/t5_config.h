// config.json of the T5 family (T5, T5 v1.1, mT5, Flan-T5, UL2) as a
// ModelConfig with family kT5. Missing keys take transformers' T5Config /
// MT5Config defaults, as from_pretrained does; keys we do not interpret are
// kept verbatim and written back. Torch-free.
#pragma once

#include <string>

#include "arch/openba/config.h"
#include "arch/openba/config_json.h"

namespace openba {

// "t5", "mt5" (and "umt5", which parse_t5_config_json refuses with a reason).
bool is_t5_model_type(const std::string& model_type);
ModelConfig parse_t5_config_json(const config_json::Json& root, const std::string& source);
// config.json text in T5's key names.
std::string t5_config_json(const ModelConfig& config);
// transformers' feed_forward_proj value for the config's MLP ("relu", "gated-gelu", ...).
std::string t5_feed_forward_proj(const ModelConfig& config);

}  // namespace openba

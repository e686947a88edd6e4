// Reading config.json values with errors that name the file and key: the
// helpers both families' config readers share (arch/openba/config.cpp,
// arch/t5/t5_config.cpp). Internal to arch/.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "formats/dtype.h"

namespace openba::config_json {

using Json = nlohmann::ordered_json;

// Parses the text (errors carry the line) and checks it is an object.
Json parse_object(const std::string& text, const std::string& source);
// A required integer (or the fallback when absent or null).
int64_t integer(const Json& root, const std::string& key, const std::string& source,
                std::optional<int64_t> fallback = std::nullopt);
bool boolean(const Json& root, const std::string& key, const std::string& source, bool fallback);
double number(const Json& root, const std::string& key, const std::string& source, double fallback);
// torch_dtype, or dtype as transformers >= 4.56 writes it ("float32",
// "bfloat16", ...); F32 when absent.
DType torch_dtype(const Json& root, const std::string& source);

}  // namespace openba::config_json

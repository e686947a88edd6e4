#include "arch/openba/config_json.h"

#include "util/error.h"

namespace openba::config_json {
namespace {

size_t line_of_offset(const std::string& text, size_t offset) {
  size_t line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line;
  }
  return line;
}

}  // namespace

Json parse_object(const std::string& text, const std::string& source) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw Error(source + ":" + std::to_string(line_of_offset(text, e.byte)) + ": malformed JSON: " + e.what());
  }
  if (!root.is_object()) throw Error(source + ": config.json must hold a JSON object");
  return root;
}

int64_t integer(const Json& root, const std::string& key, const std::string& source,
                std::optional<int64_t> fallback) {
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

bool boolean(const Json& root, const std::string& key, const std::string& source, bool fallback) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    throw Error(source + ": key '" + key + "' must be true or false (got " + it->dump() + ")");
  }
  return it->get<bool>();
}

double number(const Json& root, const std::string& key, const std::string& source, double fallback) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return fallback;
  if (!it->is_number()) {
    throw Error(source + ": key '" + key + "' must be a number (got " + it->dump() + ")");
  }
  return it->get<double>();
}

DType torch_dtype(const Json& root, const std::string& source) {
  auto it = root.find("torch_dtype");
  // transformers >= 4.56 writes "dtype" (and reads either).
  if (it == root.end() || it->is_null()) it = root.find("dtype");
  if (it == root.end() || it->is_null()) return DType::F32;
  auto dtype = it->is_string() ? dtype_from_torch_name(it->get<std::string>()) : std::nullopt;
  if (!dtype) throw Error(source + ": unknown torch_dtype " + it->dump());
  return *dtype;
}

}  // namespace openba::config_json

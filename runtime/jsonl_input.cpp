#include "runtime/jsonl_input.h"

#include "util/error.h"

namespace openba {

nlohmann::json parse_jsonl_object(const std::string& line, const std::string& where, const std::string& expected) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed JSON: " + e.what());
  }
  if (!root.is_object()) throw Error(where + ": expected " + expected);
  return root;
}

const nlohmann::json& required_field(const nlohmann::json& root, const std::string& key, const std::string& where) {
  auto it = root.find(key);
  if (it == root.end()) throw Error(where + ": missing \"" + key + "\"");
  return *it;
}

std::vector<int64_t> read_token_ids(const nlohmann::json& value, const std::string& name, int64_t vocab_size,
                                    bool allow_ignore, const std::string& where) {
  if (!value.is_array()) throw Error(where + ": \"" + name + "\" must be an array of token ids");
  std::vector<int64_t> out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const auto& v = value[i];
    if (!v.is_number_integer()) throw Error(where + ": " + name + "[" + std::to_string(i) + "] is not an integer");
    const int64_t id = v.get<int64_t>();
    if (!(allow_ignore && id == -100) && (id < 0 || id >= vocab_size)) {
      throw Error(where + ": " + name + "[" + std::to_string(i) + "] = " + std::to_string(id) +
                  " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")" +
                  (allow_ignore ? " (and is not -100)" : ""));
    }
    out.push_back(id);
  }
  if (out.empty()) throw Error(where + ": \"" + name + "\" is empty");
  return out;
}

}  // namespace openba

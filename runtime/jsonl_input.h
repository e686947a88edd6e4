// The JSONL inputs of openba-eval (held-out examples, task items): a line
// parsed as a JSON object, its required fields, and token-id arrays checked
// against the vocabulary, each with errors that name `where` (file:line).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace openba {

// The line as a JSON object; "<where>: malformed JSON: ..." or "<where>:
// expected <expected>" otherwise.
nlohmann::json parse_jsonl_object(const std::string& line, const std::string& where, const std::string& expected);

// root[key], or "<where>: missing \"key\"".
const nlohmann::json& required_field(const nlohmann::json& root, const std::string& key, const std::string& where);

// `value` must be a non-empty array of integers in [0, vocab_size) (or
// -100 where allow_ignore). Errors: "<where>: <name>[i] = ... is outside the
// vocabulary [0, V)" and the like.
std::vector<int64_t> read_token_ids(const nlohmann::json& value, const std::string& name, int64_t vocab_size,
                                    bool allow_ignore, const std::string& where);

}  // namespace openba

// Small formatting helpers for messages and tables (no dependencies).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace openba {

// "1.50 GiB", "312.0 KiB", "17 B".
std::string human_bytes(uint64_t bytes);
// "14.6B", "3.4M", "912" (parameter counts).
std::string human_count(uint64_t count);
// "[2, 3, 4]".
std::string shape_string(const std::vector<int64_t>& shape);
// "1h02m", "3m05s", "12s".
std::string human_duration(double seconds);
// A word for /bin/sh: single-quoted, embedded quotes escaped.
std::string shell_quote(const std::string& text);
// Joins with a separator.
std::string join(const std::vector<std::string>& parts, const std::string& separator);

}  // namespace openba

// UTF-8 validation and repair.
#pragma once

#include <cstddef>
#include <string>

namespace openba {

// Offset of the first byte that is not part of valid UTF-8 (overlong forms,
// surrogates and code points past U+10FFFF are invalid), or npos.
size_t find_invalid_utf8(const std::string& text, size_t from = 0);

// The text with each invalid byte replaced by U+FFFD.
std::string repair_utf8(const std::string& text);

}  // namespace openba

#include "util/utf8.h"

#include <cstdint>

namespace openba {

size_t find_invalid_utf8(const std::string& text, size_t from) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = from;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t min;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;  // overlong, range, surrogates
    i += len;
  }
  return std::string::npos;
}

std::string repair_utf8(const std::string& text) {
  size_t bad = find_invalid_utf8(text);
  if (bad == std::string::npos) return text;
  std::string out;
  size_t pos = 0;
  while (bad != std::string::npos) {
    out.append(text, pos, bad - pos);
    out += "\xef\xbf\xbd";  // U+FFFD
    pos = bad + 1;
    bad = find_invalid_utf8(text, pos);
  }
  out.append(text, pos, std::string::npos);
  return out;
}

}  // namespace openba

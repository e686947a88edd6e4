#include "tokenizer/spiece_edit.h"

#include <cstdint>

#include "util/error.h"

namespace openba {
namespace {

struct Cursor {
  const uint8_t* p;
  const uint8_t* end;
  const std::string& source;
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(source + ": not a valid SentencePiece model (" + what + ")");
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) fail("truncated varint");
      const uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint too long");
  }
  void skip(int wire_type) {
    uint64_t n = 0;
    switch (wire_type) {
      case 0: varint(); return;
      case 1: n = 8; break;
      case 2: n = varint(); break;
      case 5: n = 4; break;
      default: fail("unsupported wire type " + std::to_string(wire_type));
    }
    if (n > static_cast<uint64_t>(end - p)) fail("field runs past the end");
    p += n;
  }
};

}  // namespace

std::string keep_spiece_pieces(const std::string& serialized, const std::vector<bool>& keep, const std::string& source) {
  Cursor c{reinterpret_cast<const uint8_t*>(serialized.data()),
           reinterpret_cast<const uint8_t*>(serialized.data()) + serialized.size(), source};
  const uint8_t* begin = c.p;
  std::string out;
  out.reserve(serialized.size());
  size_t piece = 0;
  while (c.p < c.end) {
    const uint8_t* field_start = c.p;
    const uint64_t key = c.varint();
    const int field = static_cast<int>(key >> 3), type = static_cast<int>(key & 7);
    c.skip(type);
    const bool is_piece = field == 1 && type == 2;
    if (is_piece) {
      if (piece >= keep.size()) c.fail("more pieces than the keep list (" + std::to_string(keep.size()) + ")");
      if (!keep[piece++]) continue;
    }
    out.append(reinterpret_cast<const char*>(field_start), static_cast<size_t>(c.p - field_start));
  }
  (void)begin;
  if (piece != keep.size()) {
    throw Error(source + ": the model has " + std::to_string(piece) + " pieces but the keep list " +
                std::to_string(keep.size()));
  }
  return out;
}

}  // namespace openba

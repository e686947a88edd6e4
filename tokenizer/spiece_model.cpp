#include "tokenizer/spiece_model.h"

#include <cstring>

#include "util/error.h"

namespace openba {
namespace {

// Bounds-checked protobuf wire-format cursor.
class Wire {
 public:
  Wire(const uint8_t* p, size_t n, const std::string& source) : p_(p), end_(p + n), source_(source) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated varint");
      const uint8_t b = *p_++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint too long");
  }
  Wire bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail("field runs past the end");
    Wire sub(p_, static_cast<size_t>(n), source_);
    p_ += n;
    return sub;
  }
  std::string str() {
    Wire w = bytes();
    return std::string(reinterpret_cast<const char*>(w.p_), static_cast<size_t>(w.end_ - w.p_));
  }
  uint32_t fixed32() {
    if (end_ - p_ < 4) fail("truncated fixed32");
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p_[i];
    p_ += 4;
    return v;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1:
        if (end_ - p_ < 8) fail("truncated fixed64");
        p_ += 8;
        break;
      case 2: bytes(); break;
      case 5: fixed32(); break;
      default: fail("unsupported wire type " + std::to_string(wire_type));
    }
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(source_ + ": not a valid SentencePiece model (" + what + ")");
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& source_;
};

SpiecePiece parse_piece(Wire w) {
  SpiecePiece piece;
  while (!w.done()) {
    const uint64_t key = w.varint();
    const int field = static_cast<int>(key >> 3), type = static_cast<int>(key & 7);
    if (field == 1 && type == 2) {
      piece.text = w.str();
    } else if (field == 2 && type == 5) {
      const uint32_t bits = w.fixed32();
      std::memcpy(&piece.score, &bits, 4);
    } else if (field == 3 && type == 0) {
      const uint64_t t = w.varint();
      if (t < 1 || t > 6) w.fail("unknown piece type " + std::to_string(t));
      piece.type = static_cast<PieceType>(t);
    } else {
      w.skip(type);
    }
  }
  return piece;
}

}  // namespace

SpieceModel parse_spiece_model(const std::string& serialized, const std::string& source) {
  SpieceModel model;
  Wire w(reinterpret_cast<const uint8_t*>(serialized.data()), serialized.size(), source);
  bool saw_trainer_spec = false;
  while (!w.done()) {
    const uint64_t key = w.varint();
    const int field = static_cast<int>(key >> 3), type = static_cast<int>(key & 7);
    if (field == 1 && type == 2) {
      model.pieces.push_back(parse_piece(w.bytes()));
    } else if (field == 2 && type == 2) {
      saw_trainer_spec = true;
      Wire spec = w.bytes();
      while (!spec.done()) {
        const uint64_t k = spec.varint();
        const int f = static_cast<int>(k >> 3), t = static_cast<int>(k & 7);
        if (t == 0 && f >= 40 && f <= 43) {
          const int v = static_cast<int>(static_cast<int32_t>(spec.varint()));
          (f == 40 ? model.unk_id : f == 41 ? model.bos_id : f == 42 ? model.eos_id : model.pad_id) = v;
        } else {
          spec.skip(t);
        }
      }
    } else {
      w.skip(type);
    }
  }
  if (model.pieces.empty()) w.fail("no pieces");
  if (!saw_trainer_spec) w.fail("no trainer_spec");
  return model;
}

}  // namespace openba

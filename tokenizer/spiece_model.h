// Reading SentencePiece's model file (a serialized ModelProto) without
// linking SentencePiece or protobuf: just the protobuf wire format. Needed
// where SentencePiece cannot be loaded (Debian's libsentencepiece and
// LibTorch's protobuf clash when loaded into one process) and for editing
// the vocabulary.
//
//   ModelProto:     1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec, ...
//   SentencePiece:  1 piece (string), 2 score (float), 3 type (NORMAL 1, UNKNOWN 2,
//                   CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6)
//   TrainerSpec:    40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id (proto2 defaults 0, 1, 2, -1)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace openba {

enum class PieceType : uint8_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct SpiecePiece {
  std::string text;
  float score = 0;
  PieceType type = PieceType::kNormal;
};

struct SpieceModel {
  std::vector<SpiecePiece> pieces;
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
};

// Throws Error naming `source` if the bytes are not a well-formed ModelProto.
SpieceModel parse_spiece_model(const std::string& serialized, const std::string& source);

}  // namespace openba

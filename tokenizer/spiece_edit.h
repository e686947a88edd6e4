// Editing SentencePiece's model file without protobuf: keep a subset of the
// pieces (field 1 of ModelProto), in their original order, and every other
// field (trainer_spec, normalizer_spec, denormalizer_spec, self-test data)
// byte for byte. Used by vocabulary pruning.
#pragma once

#include <string>
#include <vector>

namespace openba {

// `keep[i]` says whether piece i stays. Throws Error naming `source` if the
// bytes are not a ModelProto or keep has the wrong size.
std::string keep_spiece_pieces(const std::string& serialized, const std::vector<bool>& keep, const std::string& source);

}  // namespace openba

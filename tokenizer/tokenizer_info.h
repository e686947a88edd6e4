// What a token shard set records about the tokenizer that made it.
#pragma once

#include <string>

namespace openba {

struct TokenizerInfo {
  std::string fingerprint;  // Tokenizer::fingerprint()
  int vocab_size = 0;       // ids are in [0, vocab_size)
  int pieces = 0;           // SentencePiece pieces
};

}  // namespace openba

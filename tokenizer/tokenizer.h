// The OpenBA tokenizer: the id layout (layout.h) plus SentencePiece for
// exact encoding and decoding. SentencePiece is loaded only here: processes
// that also load LibTorch use TokenizerLayout (Debian's libsentencepiece and
// LibTorch's protobuf clash in one process).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/layout.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace openba {

class Tokenizer : public TokenizerLayout {
 public:
  static Tokenizer load(const std::string& dir);
  static Tokenizer from_model_proto(const std::string& serialized, const std::string& source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // SentencePiece ids of the text, then </s> when add_eos (as the reference).
  std::vector<int> encode(const std::string& text, bool add_eos = true) const;
  // The same without </s>, into a reused vector (thread-safe: const).
  void encode_into(const std::string& text, std::vector<int>& ids) const;
  // Text of the ids; specials print by name (<extra_id_3>, <R>, </s>) unless skipped.
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const;

 private:
  explicit Tokenizer(TokenizerLayout layout);
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace openba

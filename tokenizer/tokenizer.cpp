#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include "util/error.h"

namespace openba {

Tokenizer::Tokenizer(TokenizerLayout layout)
    : TokenizerLayout(std::move(layout)), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto status = sp_->LoadFromSerializedProto(model_proto_);
  if (!status.ok()) throw Error("not a SentencePiece model (" + status.ToString() + ")");
  if (sp_->GetPieceSize() != piece_count()) throw Error("SentencePiece and the model file disagree on the piece count");
}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& dir) { return Tokenizer(TokenizerLayout::load(dir)); }

Tokenizer Tokenizer::from_model_proto(const std::string& serialized, const std::string& source) {
  return Tokenizer(TokenizerLayout::from_model_proto(serialized, source));
}

std::vector<int> Tokenizer::encode(const std::string& text, bool add_eos) const {
  std::vector<int> ids;
  encode_into(text, ids);
  if (add_eos) ids.push_back(eos_id());
  return ids;
}

void Tokenizer::encode_into(const std::string& text, std::vector<int>& ids) const {
  ids.clear();
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) throw Error("SentencePiece encode failed: " + status.ToString());
}

std::string Tokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  std::string out;
  std::vector<int> run;  // consecutive ordinary pieces, decoded together by SentencePiece
  auto flush = [&] {
    if (run.empty()) return;
    std::string text;
    const auto status = sp_->Decode(run, &text);
    if (!status.ok()) throw Error("SentencePiece decode failed: " + status.ToString());
    out += text;
    run.clear();
  };
  for (int id : ids) {
    check_id(id);
    if (!is_special(id)) {
      run.push_back(id);
      continue;
    }
    flush();
    if (!skip_special) out += id_to_piece(id);
  }
  flush();
  return out;
}

}  // namespace openba

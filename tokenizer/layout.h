// The token-id layout of OpenBA and of the T5 family over a SentencePiece
// model, without loading SentencePiece (safe in processes that load
// LibTorch; see spiece_model.h). With P pieces in spiece.model
// (shared/reference/openba.md section 2):
//   pad 0 (also the decoder start), </s> 1, <unk> 2   (inside the model)
//   <extra_id_N> = P + 99 - N for N in [0, 100)       (counting down: T5's
//                                                      sentinels, the last ids)
//   <R> = P + 100, <S> = P + 101, <X> = P + 102       (OpenBA only: its UL2 mode
//                                                      tokens, added_tokens.json)
// vocab_size() = P + 103 (OpenBA) or P + 100 (T5); the embedding has
// padded_vocab_rows(), the next multiple of 128 (t5-base: 32100 -> 32128).
//
// A tokenizer directory holds spiece.model and, where present,
// added_tokens.json, special_tokens_map.json and tokenizer_config.json: the
// files of OpenBA's released tokenizer and of T5Tokenizer's save_pretrained
// (tokenizer_class T5Tokenizer: no mode tokens) load with the ids above.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tokenizer/spiece_model.h"
#include "tokenizer/tokenizer_info.h"

namespace openba {

class TokenizerLayout {
 public:
  // A tokenizer (or checkpoint) directory. Missing spiece.model, malformed
  // JSON or ids that contradict OpenBA's layout are errors naming the file.
  static TokenizerLayout load(const std::string& dir);
  // Serialized spiece.model bytes with OpenBA's default added tokens (or,
  // with mode_tokens false, T5's layout: sentinels only).
  static TokenizerLayout from_model_proto(const std::string& serialized, const std::string& source,
                                          bool mode_tokens = true);

  int piece_count() const { return static_cast<int>(model_.pieces.size()); }
  int extra_ids() const { return extra_ids_; }
  int vocab_size() const { return vocab_size_; }
  int padded_vocab_rows() const { return (vocab_size_ + 127) / 128 * 128; }
  // The embedding rows of the layout over `pieces` pieces (100 sentinels
  // and, with mode tokens, <R>/<S>/<X> on top, padded to a multiple of 128).
  static int64_t padded_rows_for_pieces(int64_t pieces, bool mode_tokens = true) {
    return (pieces + 100 + (mode_tokens ? 3 : 0) + 127) / 128 * 128;
  }
  // OpenBA's <R>/<S>/<X> exist (T5 tokenizers have none: UL2 then adds no
  // mode prefix).
  bool has_mode_tokens() const { return added_.count("<R>") != 0; }
  int pad_id() const { return 0; }
  int eos_id() const { return 1; }
  int unk_id() const { return 2; }
  int decoder_start_id() const { return 0; }
  int sentinel_id(int n) const;  // <extra_id_n>
  int mode_id(char mode) const;  // 'R', 'S' or 'X'
  bool is_special(int id) const; // control, unknown, sentinel or added token
  std::string id_to_piece(int id) const;

  // Text from ids by the piece table alone: '\u2581' becomes a space, byte
  // pieces become their bytes (invalid UTF-8 from a cut character becomes
  // U+FFFD, as SentencePiece decodes it), specials print by name (or are skipped).
  // Matches SentencePiece's decoding for ordinary text; for previews in
  // processes that cannot load SentencePiece.
  std::string decode_pieces(const std::vector<int>& ids, bool skip_special = false) const;

  // SHA-256 over spiece.model and the special-id layout: equal fingerprints
  // mean identical ids for any text.
  const std::string& fingerprint() const { return fingerprint_; }
  TokenizerInfo info() const { return {fingerprint_, vocab_size_, piece_count()}; }
  const std::string& model_proto() const { return model_proto_; }
  const std::map<std::string, int>& added_tokens() const { return added_; }

  // Writes spiece.model, added_tokens.json, special_tokens_map.json and
  // tokenizer_config.json into an existing directory.
  void write_files(const std::string& dir) const;

 protected:
  TokenizerLayout() = default;
  void finish(const std::string& source);
  void check_id(int id) const;

  std::string model_proto_;
  SpieceModel model_;
  int extra_ids_ = 100;
  int vocab_size_ = 0;
  std::map<std::string, int> added_;
  std::map<int, std::string> special_names_;  // ids >= pieces
  std::string fingerprint_;
};

}  // namespace openba

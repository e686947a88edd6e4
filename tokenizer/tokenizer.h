// The OpenBA tokenizer: a SentencePiece model plus OpenBA's special ids
// (shared/reference/openba.md section 2). With P pieces in spiece.model:
//   pad 0 (also the decoder start), </s> 1, <unk> 2   (inside the model)
//   <extra_id_N> = P + 99 - N for N in [0, 100)       (counting down)
//   <R> = P + 100, <S> = P + 101, <X> = P + 102       (added_tokens.json)
// The model's embedding has vocab_size() = P + 103 rows padded up to a
// multiple of 128 (padded_vocab_rows()).
//
// A tokenizer directory holds spiece.model and, where present,
// added_tokens.json, special_tokens_map.json, tokenizer_config.json: the
// files of OpenBA's released tokenizer, which load with the ids above.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace openba {

class Tokenizer {
 public:
  // Loads a tokenizer directory (or a checkpoint directory holding one).
  // Missing spiece.model, malformed JSON, or special ids that contradict
  // OpenBA's layout are errors naming the file.
  static Tokenizer load(const std::string& dir);
  // From serialized spiece.model bytes with OpenBA's default layout.
  static Tokenizer from_model_proto(const std::string& serialized, const std::string& source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  int piece_count() const { return pieces_; }
  int extra_ids() const { return extra_ids_; }
  int vocab_size() const { return vocab_size_; }            // pieces + sentinels + added tokens
  int padded_vocab_rows() const { return (vocab_size_ + 127) / 128 * 128; }
  int pad_id() const { return 0; }
  int eos_id() const { return 1; }
  int unk_id() const { return 2; }
  int decoder_start_id() const { return 0; }
  int sentinel_id(int n) const;                               // <extra_id_n>
  int mode_id(char mode) const;                               // 'R', 'S' or 'X'
  bool is_special(int id) const;                              // control, sentinel or added token

  // SentencePiece ids of the text, then </s> when add_eos (as the reference).
  std::vector<int> encode(const std::string& text, bool add_eos = true) const;
  void encode_into(const std::string& text, std::vector<int>& ids) const;  // no </s>, no allocation churn
  // Text of the ids; sentinels and mode tokens print as <extra_id_N> / <R>;
  // skip_special drops them and pad/eos/unk.
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const;
  std::string id_to_piece(int id) const;

  // SHA-256 over spiece.model and the special-id layout: equal fingerprints
  // mean identical ids for any text.
  const std::string& fingerprint() const { return fingerprint_; }
  const std::string& model_proto() const { return model_proto_; }
  // Added tokens (name -> id), as in added_tokens.json.
  const std::map<std::string, int>& added_tokens() const { return added_; }

  // Writes spiece.model, added_tokens.json, special_tokens_map.json and
  // tokenizer_config.json into an existing directory.
  void write_files(const std::string& dir) const;

 private:
  Tokenizer() = default;
  void finish_layout(const std::string& source);

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string model_proto_;
  int pieces_ = 0;
  int extra_ids_ = 100;
  int vocab_size_ = 0;
  std::map<std::string, int> added_;
  std::map<int, std::string> special_names_;  // id -> name, for ids >= pieces
  std::string fingerprint_;
};

}  // namespace openba

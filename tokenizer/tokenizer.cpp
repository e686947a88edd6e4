#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

const char* kModes[3] = {"<R>", "<S>", "<X>"};

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed JSON: " + e.what());
  }
}

}  // namespace

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_model_proto(const std::string& serialized, const std::string& source) {
  Tokenizer t;
  t.model_proto_ = serialized;
  t.sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = t.sp_->LoadFromSerializedProto(serialized);
  if (!status.ok()) throw Error(source + ": not a SentencePiece model (" + status.ToString() + ")");
  t.pieces_ = t.sp_->GetPieceSize();
  for (int i = 0; i < 3; ++i) t.added_[kModes[i]] = t.pieces_ + t.extra_ids_ + i;
  t.finish_layout(source);
  return t;
}

Tokenizer Tokenizer::load(const std::string& dir) {
  const std::string model_path = (fs::path(dir) / "spiece.model").string();
  if (!fs::is_regular_file(model_path)) {
    throw Error(dir + ": no spiece.model (not a tokenizer directory)");
  }
  Tokenizer t;
  t.model_proto_ = read_text_file(model_path);
  t.sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = t.sp_->LoadFromSerializedProto(t.model_proto_);
  if (!status.ok()) throw Error(model_path + ": not a SentencePiece model (" + status.ToString() + ")");
  t.pieces_ = t.sp_->GetPieceSize();

  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  if (fs::is_regular_file(config_path)) {
    const auto config = read_json_file(config_path);
    if (config.contains("extra_ids")) {
      if (!config["extra_ids"].is_number_integer() || config["extra_ids"].get<int>() < 0) {
        throw Error(config_path + ": extra_ids must be a non-negative integer");
      }
      t.extra_ids_ = config["extra_ids"].get<int>();
    }
  }
  const std::string added_path = (fs::path(dir) / "added_tokens.json").string();
  if (fs::is_regular_file(added_path)) {
    const auto added = read_json_file(added_path);
    if (!added.is_object()) throw Error(added_path + ": expected an object of token -> id");
    for (auto it = added.begin(); it != added.end(); ++it) {
      if (!it.value().is_number_integer()) throw Error(added_path + ": id of '" + it.key() + "' is not an integer");
      const int id = it.value().get<int>();
      if (it.key().rfind("<extra_id_", 0) == 0) {
        // Sentinels listed explicitly must agree with the counting-down rule.
        const int n = std::atoi(it.key().c_str() + 10);
        if (id != t.pieces_ + t.extra_ids_ - 1 - n) {
          throw Error(added_path + ": " + it.key() + " has id " + std::to_string(id) + " but OpenBA's layout gives " +
                      std::to_string(t.pieces_ + t.extra_ids_ - 1 - n));
        }
        continue;
      }
      if (id < t.pieces_ + t.extra_ids_) {
        throw Error(added_path + ": '" + it.key() + "' has id " + std::to_string(id) +
                    ", inside the pieces and sentinels [0, " + std::to_string(t.pieces_ + t.extra_ids_) + ")");
      }
      t.added_[it.key()] = id;
    }
  } else {
    for (int i = 0; i < 3; ++i) t.added_[kModes[i]] = t.pieces_ + t.extra_ids_ + i;
  }
  t.finish_layout(model_path);
  return t;
}

void Tokenizer::finish_layout(const std::string& source) {
  if (sp_->pad_id() != 0 || sp_->eos_id() != 1 || sp_->unk_id() != 2) {
    throw Error(source + ": special ids pad/eos/unk are " + std::to_string(sp_->pad_id()) + "/" +
                std::to_string(sp_->eos_id()) + "/" + std::to_string(sp_->unk_id()) +
                ", OpenBA needs 0/1/2 (train with pad_id=0 eos_id=1 unk_id=2 bos_id=-1)");
  }
  for (const char* mode : kModes) {
    if (!added_.count(mode)) throw Error(source + ": no id for " + std::string(mode) + " (added_tokens.json)");
  }
  vocab_size_ = pieces_ + extra_ids_;
  special_names_.clear();
  for (int n = 0; n < extra_ids_; ++n) special_names_[sentinel_id(n)] = "<extra_id_" + std::to_string(n) + ">";
  for (const auto& [name, id] : added_) {
    if (special_names_.count(id)) throw Error(source + ": id " + std::to_string(id) + " given to two tokens");
    special_names_[id] = name;
    vocab_size_ = std::max(vocab_size_, id + 1);
  }
  // Ids must be contiguous: every id below vocab_size_ is a piece or a named special.
  for (int id = pieces_; id < vocab_size_; ++id) {
    if (!special_names_.count(id)) throw Error(source + ": no token has id " + std::to_string(id));
  }
  Sha256 h;
  h.update(model_proto_);
  std::string layout = "|extra_ids=" + std::to_string(extra_ids_);
  for (const auto& [name, id] : added_) layout += "|" + name + "=" + std::to_string(id);
  h.update(layout);
  fingerprint_ = h.hex_digest();
}

int Tokenizer::sentinel_id(int n) const {
  if (n < 0 || n >= extra_ids_) {
    throw Error("sentinel <extra_id_" + std::to_string(n) + "> does not exist (" + std::to_string(extra_ids_) + " sentinels)");
  }
  return pieces_ + extra_ids_ - 1 - n;
}

int Tokenizer::mode_id(char mode) const {
  const std::string name = std::string("<") + mode + ">";
  auto it = added_.find(name);
  if (it == added_.end()) throw Error("no mode token " + name);
  return it->second;
}

bool Tokenizer::is_special(int id) const {
  if (id >= pieces_) return true;
  return sp_->IsControl(id) || sp_->IsUnknown(id);
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

std::string Tokenizer::id_to_piece(int id) const {
  if (id >= 0 && id < pieces_) return sp_->IdToPiece(id);
  auto it = special_names_.find(id);
  if (it != special_names_.end()) return it->second;
  throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_size_) + ")");
}

std::string Tokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  std::string out;
  std::vector<int> run;  // consecutive piece ids, decoded together
  auto flush = [&] {
    if (run.empty()) return;
    std::string text;
    const auto status = sp_->Decode(run, &text);
    if (!status.ok()) throw Error("SentencePiece decode failed: " + status.ToString());
    out += text;
    run.clear();
  };
  for (int id : ids) {
    if (id < 0 || id >= vocab_size_) {
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_size_) + ")");
    }
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

void Tokenizer::write_files(const std::string& dir) const {
  write_file_durably((fs::path(dir) / "spiece.model").string(), model_proto_);
  nlohmann::ordered_json added = nlohmann::ordered_json::object();
  std::vector<std::pair<int, std::string>> by_id;
  for (const auto& [name, id] : added_) by_id.emplace_back(id, name);
  std::sort(by_id.begin(), by_id.end());
  for (const auto& [id, name] : by_id) added[name] = id;
  write_file_durably((fs::path(dir) / "added_tokens.json").string(), added.dump(2) + "\n");

  nlohmann::ordered_json specials;
  specials["eos_token"] = "</s>";
  specials["unk_token"] = "<unk>";
  specials["pad_token"] = "<pad>";
  auto extra = nlohmann::ordered_json::array();
  for (int n = 0; n < extra_ids_; ++n) extra.push_back("<extra_id_" + std::to_string(n) + ">");
  for (const auto& [id, name] : by_id) extra.push_back(name);
  specials["additional_special_tokens"] = extra;
  write_file_durably((fs::path(dir) / "special_tokens_map.json").string(), specials.dump(2) + "\n");

  nlohmann::ordered_json config;
  config["tokenizer_class"] = "OpenBATokenizer";
  config["eos_token"] = "</s>";
  config["unk_token"] = "<unk>";
  config["pad_token"] = "<pad>";
  config["extra_ids"] = extra_ids_;
  config["additional_special_tokens"] = extra;
  write_file_durably((fs::path(dir) / "tokenizer_config.json").string(), config.dump(2) + "\n");
}

}  // namespace openba

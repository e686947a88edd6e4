#include "tokenizer/layout.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/utf8.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

const char* kModes[3] = {"<R>", "<S>", "<X>"};
const std::string kSpaceMark = "\xe2\x96\x81";  // U+2581, SentencePiece's word boundary

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed JSON: " + e.what());
  }
}

}  // namespace

TokenizerLayout TokenizerLayout::from_model_proto(const std::string& serialized, const std::string& source,
                                                  bool mode_tokens) {
  TokenizerLayout t;
  t.model_proto_ = serialized;
  t.model_ = parse_spiece_model(serialized, source);
  if (mode_tokens) {
    for (int i = 0; i < 3; ++i) t.added_[kModes[i]] = t.piece_count() + t.extra_ids_ + i;
  }
  t.finish(source);
  return t;
}

TokenizerLayout TokenizerLayout::load(const std::string& dir) {
  const std::string model_path = (fs::path(dir) / "spiece.model").string();
  if (!fs::is_regular_file(model_path)) throw Error(dir + ": no spiece.model (not a tokenizer directory)");
  TokenizerLayout t;
  t.model_proto_ = read_text_file(model_path);
  t.model_ = parse_spiece_model(t.model_proto_, model_path);
  const int pieces = t.piece_count();

  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  bool t5_tokenizer = false;  // T5Tokenizer / T5TokenizerFast: sentinels only
  if (fs::is_regular_file(config_path)) {
    const auto config = read_json_file(config_path);
    if (config.contains("tokenizer_class") && config["tokenizer_class"].is_string()) {
      t5_tokenizer = config["tokenizer_class"].get<std::string>().rfind("T5Tokenizer", 0) == 0;
    }
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
        if (id != pieces + t.extra_ids_ - 1 - n) {
          throw Error(added_path + ": " + it.key() + " has id " + std::to_string(id) + " but OpenBA's layout gives " +
                      std::to_string(pieces + t.extra_ids_ - 1 - n));
        }
        continue;
      }
      if (id < pieces + t.extra_ids_) {
        throw Error(added_path + ": '" + it.key() + "' has id " + std::to_string(id) +
                    ", inside the pieces and sentinels [0, " + std::to_string(pieces + t.extra_ids_) + ")");
      }
      t.added_[it.key()] = id;
    }
  } else if (!t5_tokenizer) {
    for (int i = 0; i < 3; ++i) t.added_[kModes[i]] = pieces + t.extra_ids_ + i;
  }
  t.finish(model_path);
  return t;
}

void TokenizerLayout::finish(const std::string& source) {
  if (model_.pad_id != 0 || model_.eos_id != 1 || model_.unk_id != 2) {
    throw Error(source + ": special ids pad/eos/unk are " + std::to_string(model_.pad_id) + "/" +
                std::to_string(model_.eos_id) + "/" + std::to_string(model_.unk_id) +
                ", OpenBA needs 0/1/2 (train with pad_id=0 eos_id=1 unk_id=2 bos_id=-1)");
  }
  // The mode tokens come as a set (OpenBA) or not at all (T5).
  int modes = 0;
  for (const char* mode : kModes) modes += added_.count(mode) ? 1 : 0;
  if (modes != 0 && modes != 3) {
    for (const char* mode : kModes) {
      if (!added_.count(mode)) throw Error(source + ": no id for " + std::string(mode) + " (added_tokens.json)");
    }
  }
  const int pieces = piece_count();
  vocab_size_ = pieces + extra_ids_;
  special_names_.clear();
  for (int n = 0; n < extra_ids_; ++n) special_names_[sentinel_id(n)] = "<extra_id_" + std::to_string(n) + ">";
  for (const auto& [name, id] : added_) {
    if (special_names_.count(id)) throw Error(source + ": id " + std::to_string(id) + " given to two tokens");
    special_names_[id] = name;
    vocab_size_ = std::max(vocab_size_, id + 1);
  }
  // Ids are contiguous: every id below vocab_size_ is a piece or a named special.
  for (int id = pieces; id < vocab_size_; ++id) {
    if (!special_names_.count(id)) throw Error(source + ": no token has id " + std::to_string(id));
  }
  Sha256 h;
  h.update(model_proto_);
  std::string layout = "|extra_ids=" + std::to_string(extra_ids_);
  for (const auto& [name, id] : added_) layout += "|" + name + "=" + std::to_string(id);
  h.update(layout);
  fingerprint_ = h.hex_digest();
}

void TokenizerLayout::check_id(int id) const {
  if (id < 0 || id >= vocab_size_) {
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_size_) + ")");
  }
}

int TokenizerLayout::sentinel_id(int n) const {
  if (n < 0 || n >= extra_ids_) {
    throw Error("sentinel <extra_id_" + std::to_string(n) + "> does not exist (" + std::to_string(extra_ids_) + " sentinels)");
  }
  return piece_count() + extra_ids_ - 1 - n;
}

int TokenizerLayout::mode_id(char mode) const {
  const std::string name = std::string("<") + mode + ">";
  auto it = added_.find(name);
  if (it == added_.end()) throw Error("no mode token " + name);
  return it->second;
}

bool TokenizerLayout::is_special(int id) const {
  if (id >= piece_count()) return true;
  const PieceType type = model_.pieces[static_cast<size_t>(id)].type;
  return type == PieceType::kControl || type == PieceType::kUnknown;
}

std::string TokenizerLayout::id_to_piece(int id) const {
  check_id(id);
  if (id < piece_count()) return model_.pieces[static_cast<size_t>(id)].text;
  return special_names_.at(id);
}

std::string TokenizerLayout::decode_pieces(const std::vector<int>& ids, bool skip_special) const {
  std::string out;
  for (int id : ids) {
    check_id(id);
    if (is_special(id)) {
      if (!skip_special) out += id_to_piece(id);
      continue;
    }
    const SpiecePiece& piece = model_.pieces[static_cast<size_t>(id)];
    if (piece.type == PieceType::kByte && piece.text.size() == 6) {  // <0xNN>
      out.push_back(static_cast<char>(std::stoi(piece.text.substr(3, 2), nullptr, 16)));
      continue;
    }
    for (size_t pos = 0; pos < piece.text.size();) {
      if (piece.text.compare(pos, kSpaceMark.size(), kSpaceMark) == 0) {
        out.push_back(' ');
        pos += kSpaceMark.size();
      } else {
        out.push_back(piece.text[pos++]);
      }
    }
  }
  // SentencePiece adds a dummy space before the text; drop it like its decoder.
  if (!out.empty() && out[0] == ' ') out.erase(0, 1);
  return repair_utf8(out);
}

void TokenizerLayout::write_files(const std::string& dir) const {
  write_file_durably((fs::path(dir) / "spiece.model").string(), model_proto_);
  nlohmann::ordered_json added = nlohmann::ordered_json::object();
  std::vector<std::pair<int, std::string>> by_id;
  for (const auto& [name, id] : added_) by_id.emplace_back(id, name);
  std::sort(by_id.begin(), by_id.end());
  for (const auto& [id, name] : by_id) added[name] = id;
  write_file_durably((fs::path(dir) / "added_tokens.json").string(), added.dump(2) + "\n");

  auto extra = nlohmann::ordered_json::array();
  for (int n = 0; n < extra_ids_; ++n) extra.push_back("<extra_id_" + std::to_string(n) + ">");
  for (const auto& [id, name] : by_id) extra.push_back(name);
  nlohmann::ordered_json specials;
  specials["eos_token"] = "</s>";
  specials["unk_token"] = "<unk>";
  specials["pad_token"] = "<pad>";
  specials["additional_special_tokens"] = extra;
  write_file_durably((fs::path(dir) / "special_tokens_map.json").string(), specials.dump(2) + "\n");

  nlohmann::ordered_json config;
  config["tokenizer_class"] = has_mode_tokens() ? "OpenBATokenizer" : "T5Tokenizer";
  config["eos_token"] = "</s>";
  config["unk_token"] = "<unk>";
  config["pad_token"] = "<pad>";
  config["extra_ids"] = extra_ids_;
  config["additional_special_tokens"] = extra;
  write_file_durably((fs::path(dir) / "tokenizer_config.json").string(), config.dump(2) + "\n");
}

}  // namespace openba

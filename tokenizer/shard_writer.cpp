#include "tokenizer/shard_writer.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;

ShardWriter::ShardWriter(const std::string& out_dir, const TokenizerInfo& tokenizer, ShardWriterOptions options)
    : out_dir_(out_dir),
      options_(std::move(options)),
      tokenizer_(tokenizer),
      width_(tokenizer.vocab_size <= 65536 ? 2 : 4) {
  if (tokenizer_.vocab_size <= 0) throw Error("shard writer: vocabulary size must be positive");
  if (options_.max_shard_tokens == 0) throw Error("--shard-tokens must be positive");
  if (fs::exists(out_dir_) && !options_.overwrite) {
    throw Error(out_dir_ + ": already exists (use --force to replace it)");
  }
  staging_ = std::make_unique<StagingDir>(out_dir_);
  open_shard();
}

ShardWriter::~ShardWriter() {
  if (out_) std::fclose(out_);
}

void ShardWriter::open_shard() {
  char name[64];
  Shard shard;
  std::snprintf(name, sizeof(name), "tokens-%05zu.bin", shards_.size());
  shard.tokens_file = name;
  std::snprintf(name, sizeof(name), "index-%05zu.bin", shards_.size());
  shard.index_file = name;
  const std::string path = (fs::path(staging_->path()) / shard.tokens_file).string();
  out_ = std::fopen(path.c_str(), "wb");
  if (!out_) throw Error(path + ": cannot create: " + std::strerror(errno));
  shards_.push_back(std::move(shard));
}

void ShardWriter::close_shard() {
  if (std::fclose(out_) != 0) {
    out_ = nullptr;
    throw Error(out_dir_ + ": writing " + shards_.back().tokens_file + " failed: " + std::strerror(errno));
  }
  out_ = nullptr;
  const Shard& s = shards_.back();
  std::string index(s.offsets.size() * 8, '\0');
  for (size_t i = 0; i < s.offsets.size(); ++i) {
    for (int b = 0; b < 8; ++b) index[i * 8 + b] = static_cast<char>((s.offsets[i] >> (8 * b)) & 0xff);
  }
  write_file_durably((fs::path(staging_->path()) / s.index_file).string(), index);
}

void ShardWriter::add(const int* ids, size_t count) {
  if (count == 0) throw Error("shard writer: empty document");
  Shard* shard = &shards_.back();
  if (shard->offsets.back() > 0 && shard->offsets.back() + count > options_.max_shard_tokens) {
    close_shard();
    open_shard();
    shard = &shards_.back();
  }
  buffer_.resize(count * width_);
  for (size_t i = 0; i < count; ++i) {
    const int id = ids[i];
    if (id < 0 || id >= tokenizer_.vocab_size) {
      throw Error("shard writer: token id " + std::to_string(id) + " outside the vocabulary [0, " +
                  std::to_string(tokenizer_.vocab_size) + ")");
    }
    for (int b = 0; b < width_; ++b) buffer_[i * width_ + b] = static_cast<uint8_t>((static_cast<uint32_t>(id) >> (8 * b)) & 0xff);
  }
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), out_) != buffer_.size()) {
    throw Error(out_dir_ + ": writing " + shard->tokens_file + " failed: " + std::strerror(errno));
  }
  shard->offsets.push_back(shard->offsets.back() + count);
  ++documents_;
  tokens_ += count;
}

std::string ShardWriter::commit(const std::vector<InputSummary>& inputs) {
  close_shard();
  if (documents_ == 0) throw Error(out_dir_ + ": no documents to write (every input was empty)");
  nlohmann::ordered_json m;
  m["format"] = "openba-token-shards";
  m["version"] = 1;
  m["tokenizer"] = {{"fingerprint", tokenizer_.fingerprint},
                    {"vocab_size", tokenizer_.vocab_size},
                    {"pieces", tokenizer_.pieces}};
  m["token_dtype"] = width_ == 2 ? "uint16" : "uint32";
  m["eos_appended"] = false;
  m["documents"] = documents_;
  m["tokens"] = tokens_;
  uint64_t skipped = 0;
  for (const auto& in : inputs) skipped += in.skipped_empty;
  m["skipped_empty_documents"] = skipped;
  auto shards = nlohmann::ordered_json::array();
  for (const Shard& s : shards_) {
    shards.push_back({{"tokens_file", s.tokens_file},
                      {"index_file", s.index_file},
                      {"documents", s.offsets.size() - 1},
                      {"tokens", s.offsets.back()}});
  }
  m["shards"] = shards;
  auto in = nlohmann::ordered_json::array();
  for (const auto& i : inputs) {
    in.push_back({{"path", i.path},
                  {"bytes", i.bytes},
                  {"sha256", i.sha256},
                  {"compression", i.compression},
                  {"documents", i.documents},
                  {"skipped_empty_documents", i.skipped_empty}});
  }
  m["inputs"] = in;
  nlohmann::ordered_json provenance = nlohmann::ordered_json::object();
  for (const auto& [k, v] : options_.provenance) provenance[k] = v;
  m["options"] = provenance;
  write_file_durably((fs::path(staging_->path()) / "manifest.json").string(), m.dump(2) + "\n");
  staging_->commit(options_.overwrite);
  return staging_->final_path();
}

}  // namespace openba

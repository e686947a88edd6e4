// Writes a token shard set: a directory of
//   tokens-NNNNN.bin  token ids, little-endian uint16 (vocabulary <= 65536) or uint32
//   index-NNNNN.bin   uint64 token offsets of the documents in that file (documents + 1)
//   manifest.json     tokenizer fingerprint, counts, shards, inputs (size, SHA-256)
// Documents are stored without </s> (consumers add boundaries). Everything is
// written under a staging name and renamed into place by commit(); the same
// documents in the same order give byte-identical files.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/document_reader.h"
#include "tokenizer/tokenizer_info.h"

namespace openba {

class StagingDir;

struct ShardWriterOptions {
  uint64_t max_shard_tokens = 1ull << 30;  // a new file starts past this many tokens
  bool overwrite = false;
  // key/value pairs recorded under "options" in the manifest (how it was made).
  std::vector<std::pair<std::string, std::string>> provenance;
};

class ShardWriter {
 public:
  ShardWriter(const std::string& out_dir, const TokenizerInfo& tokenizer, ShardWriterOptions options);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // One document (at least one token; ids checked against the vocabulary).
  void add(const int* ids, size_t count);
  std::string commit(const std::vector<InputSummary>& inputs);

  uint64_t documents() const { return documents_; }
  uint64_t tokens() const { return tokens_; }

 private:
  struct Shard {
    std::string tokens_file, index_file;
    std::vector<uint64_t> offsets{0};
  };
  void open_shard();
  void close_shard();

  std::string out_dir_;
  ShardWriterOptions options_;
  TokenizerInfo tokenizer_;
  int width_ = 2;
  std::unique_ptr<StagingDir> staging_;
  std::vector<Shard> shards_;
  FILE* out_ = nullptr;
  std::vector<uint8_t> buffer_;
  uint64_t documents_ = 0;
  uint64_t tokens_ = 0;
};

}  // namespace openba

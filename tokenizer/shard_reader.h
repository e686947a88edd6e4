// Reading token shard sets (see shard_writer.h): memory-mapped, random access
// to documents and to token ranges of the concatenated stream, and a
// deterministic weighted mixture of several sets. This is the data source
// for training, calibration and vocabulary statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace openba {

class MappedFile;

// A document's (or range's) tokens, viewed in place.
class TokenView {
 public:
  TokenView(const uint8_t* data, size_t size, int width) : data_(data), size_(size), width_(width) {}
  size_t size() const { return size_; }
  int32_t operator[](size_t i) const {
    if (width_ == 2) return static_cast<int32_t>(data_[2 * i] | (uint32_t(data_[2 * i + 1]) << 8));
    const uint8_t* p = data_ + 4 * i;
    return static_cast<int32_t>(p[0] | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24));
  }
  void copy_to(int32_t* out) const;
  std::vector<int32_t> to_vector() const;

 private:
  const uint8_t* data_;
  size_t size_;
  int width_;
};

class ShardSet {
 public:
  // Validates the manifest, file sizes and every document index; errors name
  // the file. Token data is mapped, not read.
  static ShardSet open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::string& tokenizer_fingerprint() const { return fingerprint_; }
  int vocab_size() const { return vocab_size_; }
  int token_width() const { return width_; }
  uint64_t documents() const { return documents_; }
  uint64_t tokens() const { return tokens_; }

  size_t document_length(uint64_t doc) const;
  TokenView document(uint64_t doc) const;
  // Tokens [begin, begin + count) of all documents concatenated (in order).
  void read_tokens(uint64_t begin, uint64_t count, int32_t* out) const;

  // Refuses a shard set made with another tokenizer, naming both fingerprints.
  void require_tokenizer(const std::string& fingerprint, const std::string& what) const;

 private:
  struct Shard {
    std::shared_ptr<MappedFile> tokens, index;
    uint64_t first_document = 0, first_token = 0, documents = 0, tokens_count = 0;
    uint64_t offset(uint64_t local_doc) const;
  };
  const Shard& shard_of_document(uint64_t doc) const;

  std::string dir_;
  std::string fingerprint_;
  int vocab_size_ = 0;
  int width_ = 2;
  uint64_t documents_ = 0, tokens_ = 0;
  std::vector<Shard> shards_;
};

// Documents drawn from several shard sets with given weights. Draw i is a
// pure function of (seed, i): resumable from any position, independent of
// threads.
class ShardMixture {
 public:
  struct Source {
    std::shared_ptr<const ShardSet> shards;
    double weight = 1.0;
  };
  explicit ShardMixture(std::vector<Source> sources);

  struct Draw {
    size_t source;
    uint64_t document;
  };
  Draw draw(uint64_t seed, uint64_t i) const;
  const std::vector<Source>& sources() const { return sources_; }

 private:
  std::vector<Source> sources_;
  std::vector<double> cumulative_;
};

}  // namespace openba

// Sequential reading of an input file's decoded bytes: plain, gzip (also
// concatenated members) or zstd, chosen by the file's magic bytes, not its
// name. The raw file bytes are hashed on the way (SHA-256) for manifests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace openba {

class ByteSource {
 public:
  // Throws Error naming the path if it cannot be opened.
  static std::unique_ptr<ByteSource> open(const std::string& path);
  virtual ~ByteSource() = default;

  // Up to `size` decoded bytes; 0 at the end. Corrupt or truncated
  // compressed data throws Error naming the file and the decoded offset.
  virtual size_t read(char* out, size_t size) = 0;

  const std::string& path() const { return path_; }
  const char* compression() const { return compression_; }
  // Raw (on-disk) bytes read so far, and their SHA-256 once read() hit the end.
  uint64_t raw_bytes() const { return raw_bytes_; }
  const std::string& raw_sha256() const { return raw_sha256_; }

 protected:
  ByteSource(std::string path, const char* compression) : path_(std::move(path)), compression_(compression) {}
  std::string path_;
  const char* compression_;
  uint64_t raw_bytes_ = 0;
  std::string raw_sha256_;
};

}  // namespace openba

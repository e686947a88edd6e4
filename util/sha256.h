// SHA-256 (FIPS 180-4), for tokenizer fingerprints and input hashes in
// manifests (checkable with `sha256sum`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace openba {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(const std::string& text) { update(text.data(), text.size()); }
  // Lowercase hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

std::string sha256_hex(const std::string& data);
// Hash of a whole file, read in chunks; throws Error naming the path.
std::string sha256_file(const std::string& path);

}  // namespace openba

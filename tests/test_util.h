// Helpers shared by the C++ tests: temporary directories and small files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "arch/openba/config.h"

namespace openba::test {

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::string& path, const std::string& bytes);
std::string read_bytes(const std::string& path);

// Repository root (for fixtures and configs), from the OPENBA_SOURCE_DIR define.
std::string source_path(const std::string& relative);

// A small, validated model config (f32 storage unless given).
ModelConfig small_config(int64_t encoder_layers, int64_t decoder_layers, int64_t d_model, int64_t heads,
                         int64_t kv_channels, int64_t ffn_hidden, int64_t vocab_size,
                         DType dtype = DType::F32);

// A SentencePiece model file (protobuf wire format) with `pieces` pieces:
// <pad>, </s> (control), <unk>, then ordinary pieces "p3", "p4", ...; pad/eos/unk
// ids 0/1/2 and no BOS, as OpenBA's. Enough for TokenizerLayout (not for
// SentencePiece's own encoder).
std::string synthetic_spiece_model(int pieces);

// A safetensors file: 8-byte little-endian length, the header text as given,
// then the data bytes.
std::string safetensors_bytes(const std::string& header_json, const std::string& data);

}  // namespace openba::test

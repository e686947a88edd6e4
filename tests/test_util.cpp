#include "tests/test_util.h"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace openba::test {

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("openba-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string source_path(const std::string& relative) {
  return std::string(OPENBA_SOURCE_DIR) + "/" + relative;
}

ModelConfig small_config(int64_t encoder_layers, int64_t decoder_layers, int64_t d_model, int64_t heads,
                         int64_t kv_channels, int64_t ffn_hidden, int64_t vocab_size, DType dtype) {
  ModelConfig c;
  c.encoder_layers = encoder_layers;
  c.decoder_layers = decoder_layers;
  c.d_model = d_model;
  c.num_heads = heads;
  c.kv_channels = kv_channels;
  c.ffn_hidden = ffn_hidden;
  c.vocab_size = vocab_size;
  c.dtype = dtype;
  c.validate("test config");
  return c;
}

std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header_json + data;
}

}  // namespace openba::test

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

namespace {
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_int(std::string& out, int field, int64_t value) {
  put_varint(out, static_cast<uint64_t>(field) << 3);
  put_varint(out, static_cast<uint64_t>(value));
}
}  // namespace

std::string synthetic_spiece_model(int pieces) {
  std::string model;
  for (int i = 0; i < pieces; ++i) {
    std::string piece;
    put_bytes(piece, 1, i == 0 ? "<pad>" : i == 1 ? "</s>" : i == 2 ? "<unk>" : "p" + std::to_string(i));
    put_int(piece, 3, i < 2 ? 3 : i == 2 ? 2 : 1);  // CONTROL, UNKNOWN, NORMAL
    put_bytes(model, 1, piece);
  }
  std::string spec;
  put_int(spec, 40, 2);   // unk_id
  put_int(spec, 41, -1);  // bos_id
  put_int(spec, 42, 1);   // eos_id
  put_int(spec, 43, 0);   // pad_id
  put_bytes(model, 2, spec);
  return model;
}

std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header_json + data;
}

}  // namespace openba::test

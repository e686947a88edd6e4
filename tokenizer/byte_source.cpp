#include "tokenizer/byte_source.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "util/error.h"
#include "util/sha256.h"

namespace openba {
namespace {

constexpr size_t kChunk = 1 << 20;

// Raw file reading with hashing, shared by the decoders.
class RawFile {
 public:
  explicit RawFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  }
  ~RawFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Reads up to `size` bytes; 0 at end of file (then the digest is final).
  size_t read(char* out, size_t size) {
    ssize_t n;
    do {
      n = ::read(fd_, out, size);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw Error(path_ + ": read error: " + std::strerror(errno));
    if (n == 0 && !done_) {
      done_ = true;
      digest_ = sha.hex_digest();
    }
    if (n > 0) {
      sha.update(out, static_cast<size_t>(n));
      bytes_ += static_cast<uint64_t>(n);
    }
    return static_cast<size_t>(n);
  }
  uint64_t bytes() const { return bytes_; }
  const std::string& digest() const { return digest_; }

 private:
  std::string path_;
  int fd_ = -1;
  Sha256 sha;
  uint64_t bytes_ = 0;
  bool done_ = false;
  std::string digest_;
};

class PlainSource final : public ByteSource {
 public:
  PlainSource(const std::string& path, std::unique_ptr<RawFile> raw, std::string head)
      : ByteSource(path, "none"), raw_(std::move(raw)), head_(std::move(head)) {}
  size_t read(char* out, size_t size) override {
    if (head_pos_ < head_.size()) {
      const size_t n = std::min(size, head_.size() - head_pos_);
      std::memcpy(out, head_.data() + head_pos_, n);
      head_pos_ += n;
      return n;
    }
    const size_t n = raw_->read(out, size);
    raw_bytes_ = raw_->bytes();
    if (n == 0) raw_sha256_ = raw_->digest();
    return n;
  }

 private:
  std::unique_ptr<RawFile> raw_;
  std::string head_;
  size_t head_pos_ = 0;
};

class GzipSource final : public ByteSource {
 public:
  GzipSource(const std::string& path, std::unique_ptr<RawFile> raw, std::string head)
      : ByteSource(path, "gzip"), raw_(std::move(raw)), in_(kChunk) {
    std::memset(&z_, 0, sizeof(z_));
    if (inflateInit2(&z_, 15 + 32) != Z_OK) throw Error(path + ": cannot initialize gzip decoder");
    std::memcpy(in_.data(), head.data(), head.size());
    z_.next_in = reinterpret_cast<Bytef*>(in_.data());
    z_.avail_in = static_cast<uInt>(head.size());
  }
  ~GzipSource() override { inflateEnd(&z_); }
  size_t read(char* out, size_t size) override {
    if (finished_) return 0;
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(size);
    while (z_.avail_out == size) {
      if (z_.avail_in == 0) {
        const size_t n = raw_->read(in_.data(), in_.size());
        raw_bytes_ = raw_->bytes();
        if (n == 0) {
          raw_sha256_ = raw_->digest();
          if (member_done_) {
            finished_ = true;
            return 0;
          }
          throw Error(path_ + ": truncated gzip stream (input ends after " + std::to_string(decoded_) +
                      " decoded bytes)");
        }
        z_.next_in = reinterpret_cast<Bytef*>(in_.data());
        z_.avail_in = static_cast<uInt>(n);
      }
      member_done_ = false;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_done_ = true;  // another member may follow (concatenated gzip)
        inflateReset(&z_);
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw Error(path_ + ": corrupt gzip data after " + std::to_string(decoded_) + " decoded bytes (" +
                    (z_.msg ? z_.msg : "zlib error " + std::to_string(rc)) + ")");
      }
    }
    const size_t produced = size - z_.avail_out;
    decoded_ += produced;
    return produced;
  }

 private:
  std::unique_ptr<RawFile> raw_;
  std::vector<char> in_;
  z_stream z_;
  bool member_done_ = false;
  bool finished_ = false;
  uint64_t decoded_ = 0;
};

class ZstdSource final : public ByteSource {
 public:
  ZstdSource(const std::string& path, std::unique_ptr<RawFile> raw, std::string head)
      : ByteSource(path, "zstd"), raw_(std::move(raw)), in_(kChunk), dctx_(ZSTD_createDCtx()) {
    if (!dctx_) throw Error(path + ": cannot initialize zstd decoder");
    std::memcpy(in_.data(), head.data(), head.size());
    input_ = {in_.data(), head.size(), 0};
  }
  ~ZstdSource() override { ZSTD_freeDCtx(dctx_); }
  size_t read(char* out, size_t size) override {
    if (finished_) return 0;
    ZSTD_outBuffer output = {out, size, 0};
    while (output.pos == 0) {
      if (input_.pos == input_.size) {
        const size_t n = raw_->read(in_.data(), in_.size());
        raw_bytes_ = raw_->bytes();
        if (n == 0) {
          raw_sha256_ = raw_->digest();
          if (frame_done_) {
            finished_ = true;
            return 0;
          }
          throw Error(path_ + ": truncated zstd stream (input ends after " + std::to_string(decoded_) +
                      " decoded bytes)");
        }
        input_ = {in_.data(), n, 0};
      }
      const size_t rc = ZSTD_decompressStream(dctx_, &output, &input_);
      if (ZSTD_isError(rc)) {
        throw Error(path_ + ": corrupt zstd data after " + std::to_string(decoded_) + " decoded bytes (" +
                    ZSTD_getErrorName(rc) + ")");
      }
      frame_done_ = rc == 0;
    }
    decoded_ += output.pos;
    return output.pos;
  }

 private:
  std::unique_ptr<RawFile> raw_;
  std::vector<char> in_;
  ZSTD_DCtx* dctx_;
  ZSTD_inBuffer input_{};
  bool frame_done_ = true;
  bool finished_ = false;
  uint64_t decoded_ = 0;
};

}  // namespace

std::unique_ptr<ByteSource> ByteSource::open(const std::string& path) {
  auto raw = std::make_unique<RawFile>(path);
  // Sniff the first bytes for a compression magic number.
  std::string head(4, '\0');
  size_t have = 0;
  while (have < head.size()) {
    const size_t n = raw->read(head.data() + have, head.size() - have);
    if (n == 0) break;
    have += n;
  }
  head.resize(have);
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(head[i]); };
  if (have >= 2 && byte(0) == 0x1f && byte(1) == 0x8b) {
    return std::make_unique<GzipSource>(path, std::move(raw), head);
  }
  if (have >= 4 && byte(0) == 0x28 && byte(1) == 0xb5 && byte(2) == 0x2f && byte(3) == 0xfd) {
    return std::make_unique<ZstdSource>(path, std::move(raw), head);
  }
  return std::make_unique<PlainSource>(path, std::move(raw), head);
}

}  // namespace openba

#include "formats/zip_archive.h"

#include <algorithm>

#include "util/error.h"

namespace openba {
namespace {

constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64EndOfCentralDir = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;

// Bounds-checked little-endian reads over the archive bytes.
class Bytes {
 public:
  Bytes(const uint8_t* data, uint64_t size, const std::string& source)
      : data_(data), size_(size), source_(source) {}
  void need(uint64_t offset, uint64_t length, const char* what) const {
    if (offset > size_ || length > size_ - offset) {
      throw Error(source_ + ": truncated or corrupt zip archive (" + what + " at offset " +
                  std::to_string(offset) + " runs past the end of the " + std::to_string(size_) +
                  "-byte file)");
    }
  }
  uint64_t le(uint64_t offset, int width, const char* what) const {
    need(offset, width, what);
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | data_[offset + i];
    return v;
  }
  std::string str(uint64_t offset, uint64_t length, const char* what) const {
    need(offset, length, what);
    return std::string(reinterpret_cast<const char*>(data_ + offset), length);
  }
  uint64_t size() const { return size_; }

 private:
  const uint8_t* data_;
  uint64_t size_;
  const std::string& source_;
};

}  // namespace

std::vector<ZipEntry> read_zip_directory(const uint8_t* file, uint64_t size,
                                         const std::string& source) {
  Bytes b(file, size, source);
  if (size < 22) throw Error(source + ": not a zip archive (too short; truncated file?)");

  // The end record sits in the last 22 + 65535 bytes (it may carry a comment).
  uint64_t eocd = UINT64_MAX;
  const uint64_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (uint64_t pos = size - 22 + 1; pos-- > lowest;) {
    if (b.le(pos, 4, "end record") == kEndOfCentralDir) {
      eocd = pos;
      break;
    }
  }
  if (eocd == UINT64_MAX) {
    throw Error(source + ": not a zip archive, or truncated (no end-of-central-directory record;"
                         " legacy torch.save files from before PyTorch 1.6 are not supported)");
  }
  uint64_t entry_count = b.le(eocd + 10, 2, "end record");
  uint64_t dir_size = b.le(eocd + 12, 4, "end record");
  uint64_t dir_offset = b.le(eocd + 16, 4, "end record");

  if (entry_count == 0xffff || dir_size == 0xffffffff || dir_offset == 0xffffffff) {
    if (eocd < 20 || b.le(eocd - 20, 4, "zip64 locator") != kZip64EndLocator) {
      throw Error(source + ": zip64 archive without a zip64 end-of-central-directory locator");
    }
    const uint64_t z64 = b.le(eocd - 20 + 8, 8, "zip64 locator");
    if (b.le(z64, 4, "zip64 end record") != kZip64EndOfCentralDir) {
      throw Error(source + ": zip64 end-of-central-directory record not found at offset " +
                  std::to_string(z64));
    }
    entry_count = b.le(z64 + 32, 8, "zip64 end record");
    dir_size = b.le(z64 + 40, 8, "zip64 end record");
    dir_offset = b.le(z64 + 48, 8, "zip64 end record");
  }
  b.need(dir_offset, dir_size, "central directory");
  // Each central header is at least 46 bytes: a cheap bound against absurd counts.
  if (entry_count > dir_size / 46) {
    throw Error(source + ": central directory claims " + std::to_string(entry_count) +
                " entries but holds only " + std::to_string(dir_size) + " bytes");
  }

  std::vector<ZipEntry> entries;
  entries.reserve(entry_count);
  uint64_t pos = dir_offset;
  for (uint64_t i = 0; i < entry_count; ++i) {
    if (b.le(pos, 4, "central header") != kCentralHeader) {
      throw Error(source + ": corrupt zip central directory (entry " + std::to_string(i) +
                  " at offset " + std::to_string(pos) + ")");
    }
    ZipEntry e;
    const uint64_t flags = b.le(pos + 8, 2, "central header");
    e.method = static_cast<uint16_t>(b.le(pos + 10, 2, "central header"));
    e.compressed_size = b.le(pos + 20, 4, "central header");
    e.uncompressed_size = b.le(pos + 24, 4, "central header");
    const uint64_t name_len = b.le(pos + 28, 2, "central header");
    const uint64_t extra_len = b.le(pos + 30, 2, "central header");
    const uint64_t comment_len = b.le(pos + 32, 2, "central header");
    uint64_t local_offset = b.le(pos + 42, 4, "central header");
    e.name = b.str(pos + 46, name_len, "entry name");
    if (flags & 1) throw Error(source + ": zip entry '" + e.name + "' is encrypted");

    // ZIP64 extended information: the 64-bit values present, in this order,
    // for exactly the fields whose 32-bit slots hold 0xffffffff.
    uint64_t extra = pos + 46 + name_len;
    const uint64_t extra_end = extra + extra_len;
    b.need(extra, extra_len, "extra field");
    while (extra + 4 <= extra_end) {
      const uint64_t id = b.le(extra, 2, "extra field");
      const uint64_t len = b.le(extra + 2, 2, "extra field");
      if (extra + 4 + len > extra_end) throw Error(source + ": corrupt extra field in '" + e.name + "'");
      if (id == 0x0001) {
        uint64_t field = extra + 4;
        auto take = [&](uint64_t& value) {
          if (field + 8 > extra + 4 + len) {
            throw Error(source + ": short zip64 extra field in '" + e.name + "'");
          }
          value = b.le(field, 8, "zip64 extra field");
          field += 8;
        };
        if (e.uncompressed_size == 0xffffffff) take(e.uncompressed_size);
        if (e.compressed_size == 0xffffffff) take(e.compressed_size);
        if (local_offset == 0xffffffff) take(local_offset);
      }
      extra += 4 + len;
    }

    if (b.le(local_offset, 4, "local header") != kLocalHeader) {
      throw Error(source + ": local header of '" + e.name + "' not found at offset " +
                  std::to_string(local_offset));
    }
    const uint64_t local_name_len = b.le(local_offset + 26, 2, "local header");
    const uint64_t local_extra_len = b.le(local_offset + 28, 2, "local header");
    e.data_offset = local_offset + 30 + local_name_len + local_extra_len;
    b.need(e.data_offset, e.compressed_size, ("data of '" + e.name + "'").c_str());
    entries.push_back(std::move(e));
    pos += 46 + name_len + extra_len + comment_len;
  }
  return entries;
}

}  // namespace openba

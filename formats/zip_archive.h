// Reads the central directory of a ZIP archive held in memory (ZIP64
// included, as torch.save uses for files over 4 GB) and locates each entry's
// data. Only stored (uncompressed) entries can be memory-mapped; the caller
// decides what to do with compressed ones. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace openba {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;            // 0 = stored
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t data_offset = 0;       // absolute offset of the entry's bytes
};

// Throws Error naming `source` on any structural problem (no end record,
// directory or local header out of range, encrypted entries, ...).
std::vector<ZipEntry> read_zip_directory(const uint8_t* file, uint64_t size,
                                         const std::string& source);

}  // namespace openba

// The safetensors format: u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {...}},
// then the data section. Offsets are relative to the data section.
//
// parse_safetensors() validates everything a reader relies on and throws
// Error naming the file and tensor: header length beyond the file, malformed
// JSON, duplicate names, unknown dtypes, offsets out of range or overlapping,
// and byte ranges that do not match shape x dtype.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "formats/tensor_record.h"

namespace openba {

struct SafetensorsFile {
  uint64_t header_bytes = 0;  // N
  uint64_t data_start = 0;    // 8 + N
  std::vector<TensorRecord> tensors;  // in file order (by offset); offsets are absolute
  std::map<std::string, std::string> metadata;
};

// Limits the header JSON (as the reference implementation does).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull * 1000 * 1000;

SafetensorsFile parse_safetensors(const uint8_t* file, uint64_t file_size,
                                  const std::string& source);

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

// Builds the 8-byte length plus JSON header for tensors stored back to back
// in the given order, padded with spaces so the data section starts 8-byte
// aligned. offsets_out receives each tensor's offset within the data section.
std::string build_safetensors_header(const std::vector<SafetensorsEntry>& entries,
                                     const std::map<std::string, std::string>& metadata,
                                     std::vector<uint64_t>* offsets_out);

}  // namespace openba

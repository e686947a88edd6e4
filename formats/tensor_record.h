// Where one tensor lives on disk: the common currency of the safetensors and
// torch.save (.bin) readers. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/dtype.h"

namespace openba {

struct TensorRecord {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  // Element strides; empty means C-contiguous (always so for safetensors).
  std::vector<int64_t> strides;
  // Absolute byte offset in the file of the tensor's first element.
  uint64_t offset = 0;
  // Bytes the tensor's elements span in the file (numel * size when contiguous).
  uint64_t span_bytes = 0;
  // Identifies the underlying storage: equal ids mean the bytes are shared
  // (torch.save stores tied weights once). "" for safetensors.
  std::string storage_id;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  uint64_t nbytes() const { return static_cast<uint64_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;
};

// Product of dims with overflow checking; returns false on overflow or a negative dim.
bool checked_numel(const std::vector<int64_t>& shape, int64_t* out);

}  // namespace openba

// Checkpoint::tensor(): the one LibTorch-dependent piece of checkpoint
// reading, kept apart so tools that only inspect files do not load torch.
#include <torch/torch.h>

#include <cstring>

#include "runtime/checkpoint.h"
#include "formats/mapped_file.h"
#include "ops/torch_dtype.h"

namespace openba {
namespace {

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

}  // namespace

at::Tensor Checkpoint::tensor(const std::string& name) const {
  const Located& l = locate(name);
  const TensorRecord& r = l.record;
  const auto options = torch::TensorOptions().dtype(to_scalar_type(r.dtype));
  if (r.numel() == 0) return torch::empty(r.shape, options);
  const std::vector<int64_t> strides = r.strides.empty() ? contiguous_strides(r.shape) : r.strides;
  std::shared_ptr<MappedFile> file = files_[l.file];
  uint8_t* ptr = file->mutable_data() + r.offset;
  if (reinterpret_cast<uintptr_t>(ptr) % dtype_size(r.dtype) != 0) {
    // Misaligned data (legal in safetensors): copy into an aligned buffer.
    const int64_t elems = static_cast<int64_t>(r.span_bytes / dtype_size(r.dtype));
    torch::Tensor flat = torch::empty({elems}, options);
    std::memcpy(flat.data_ptr(), ptr, r.span_bytes);
    return flat.as_strided(r.shape, strides);
  }
  return torch::from_blob(
      ptr, r.shape, strides, [file](void*) {}, options);
}

}  // namespace openba

#include "runtime/safetensors_io.h"

#include <torch/torch.h>

#include <cstring>

#include "formats/mapped_file.h"
#include "formats/safetensors.h"
#include "ops/torch_dtype.h"
#include "util/error.h"
#include "util/fs.h"

namespace openba {

void write_safetensors_file(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                            const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsEntry> entries;
  std::vector<torch::Tensor> data;
  for (const auto& [name, t] : tensors) {
    data.push_back(t.detach().to(torch::kCPU).contiguous());
    entries.push_back({name, from_scalar_type(data.back().scalar_type()), data.back().sizes().vec()});
  }
  std::vector<uint64_t> offsets;
  std::string bytes = build_safetensors_header(entries, metadata, &offsets);
  for (const auto& t : data) bytes.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  write_file_durably(path, bytes);
}

std::map<std::string, torch::Tensor> read_safetensors_file(const std::string& path) {
  auto file = MappedFile::open(path);
  const SafetensorsFile parsed = parse_safetensors(file->data(), file->size(), path);
  std::map<std::string, torch::Tensor> out;
  for (const TensorRecord& r : parsed.tensors) {
    auto t = torch::empty(r.shape, torch::TensorOptions().dtype(to_scalar_type(r.dtype)));
    std::memcpy(t.data_ptr(), file->data() + r.offset, r.nbytes());
    out[r.name] = t;
  }
  return out;
}

}  // namespace openba

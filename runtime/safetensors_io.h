// Whole safetensors files of named tensors (optimizer state and other
// trainer files; model checkpoints use CheckpointWriter).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace openba {

// Writes the tensors (any dtype, any device; copied to CPU) to `path`.
void write_safetensors_file(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                            const std::map<std::string, std::string>& metadata = {});
// Reads every tensor into memory (owned copies), by name.
std::map<std::string, torch::Tensor> read_safetensors_file(const std::string& path);

}  // namespace openba

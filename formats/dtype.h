// Element types of tensors on disk, independent of LibTorch, so the file
// format parsers (and their fuzzers) build without torch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace openba {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

// Bytes per element.
size_t dtype_size(DType dtype);
// Short name used in messages and CLI flags: "f32", "bf16", ...
const char* dtype_name(DType dtype);
// safetensors header spelling: "F32", "BF16", ...
const char* safetensors_dtype_name(DType dtype);
// config.json "torch_dtype" spelling: "float32", "bfloat16", ...
const char* torch_dtype_name(DType dtype);

std::optional<DType> dtype_from_safetensors(const std::string& name);
// torch.save storage class, e.g. "HalfStorage" -> F16.
std::optional<DType> dtype_from_torch_storage(const std::string& class_name);
// Accepts "float16", "bfloat16", "float32" (config.json) and the short names.
std::optional<DType> dtype_from_torch_name(const std::string& name);

// Parses a --dtype flag value (f32|fp32|float32, bf16|bfloat16, f16|fp16|float16);
// throws Error naming the flag on anything else. Only floating types allowed.
DType parse_float_dtype_flag(const std::string& value, const std::string& flag);

inline bool is_floating(DType d) {
  return d == DType::F32 || d == DType::F16 || d == DType::BF16 || d == DType::F64;
}

}  // namespace openba

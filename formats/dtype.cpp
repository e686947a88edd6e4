#include "formats/dtype.h"

#include "util/error.h"

namespace openba {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F64:
    case DType::I64: return 8;
    case DType::F32:
    case DType::I32: return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16: return 2;
    case DType::I8:
    case DType::U8:
    case DType::Bool: return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::F64: return "f64";
    case DType::I64: return "i64";
    case DType::I32: return "i32";
    case DType::I16: return "i16";
    case DType::I8: return "i8";
    case DType::U8: return "u8";
    case DType::Bool: return "bool";
  }
  return "?";
}

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F64: return "float64";
    case DType::I64: return "int64";
    case DType::I32: return "int32";
    case DType::I16: return "int16";
    case DType::I8: return "int8";
    case DType::U8: return "uint8";
    case DType::Bool: return "bool";
  }
  return "?";
}

std::optional<DType> dtype_from_safetensors(const std::string& name) {
  static const std::pair<const char*, DType> kTable[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
      {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16},   {"I8", DType::I8},
      {"U8", DType::U8},   {"BOOL", DType::Bool}};
  for (const auto& [text, dtype] : kTable) {
    if (name == text) return dtype;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_torch_storage(const std::string& class_name) {
  static const std::pair<const char*, DType> kTable[] = {
      {"FloatStorage", DType::F32},  {"HalfStorage", DType::F16},
      {"BFloat16Storage", DType::BF16}, {"DoubleStorage", DType::F64},
      {"LongStorage", DType::I64},   {"IntStorage", DType::I32},
      {"ShortStorage", DType::I16},  {"CharStorage", DType::I8},
      {"ByteStorage", DType::U8},    {"BoolStorage", DType::Bool}};
  for (const auto& [text, dtype] : kTable) {
    if (class_name == text) return dtype;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_torch_name(const std::string& name) {
  static const std::pair<const char*, DType> kTable[] = {
      {"float32", DType::F32}, {"float", DType::F32},   {"f32", DType::F32},
      {"fp32", DType::F32},    {"float16", DType::F16}, {"half", DType::F16},
      {"f16", DType::F16},     {"fp16", DType::F16},    {"bfloat16", DType::BF16},
      {"bf16", DType::BF16},   {"float64", DType::F64}, {"f64", DType::F64}};
  for (const auto& [text, dtype] : kTable) {
    if (name == text) return dtype;
  }
  return std::nullopt;
}

DType parse_float_dtype_flag(const std::string& value, const std::string& flag) {
  auto dtype = dtype_from_torch_name(value);
  if (!dtype || !(*dtype == DType::F32 || *dtype == DType::F16 || *dtype == DType::BF16)) {
    throw Error(flag + ": unknown dtype '" + value + "' (expected f32, bf16 or f16)");
  }
  return *dtype;
}

}  // namespace openba

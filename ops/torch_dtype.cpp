#include "ops/torch_dtype.h"

#include "util/error.h"

namespace openba {

c10::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return c10::kFloat;
    case DType::F16: return c10::kHalf;
    case DType::BF16: return c10::kBFloat16;
    case DType::F64: return c10::kDouble;
    case DType::I64: return c10::kLong;
    case DType::I32: return c10::kInt;
    case DType::I16: return c10::kShort;
    case DType::I8: return c10::kChar;
    case DType::U8: return c10::kByte;
    case DType::Bool: return c10::kBool;
  }
  return c10::kFloat;
}

DType from_scalar_type(c10::ScalarType type) {
  switch (type) {
    case c10::kFloat: return DType::F32;
    case c10::kHalf: return DType::F16;
    case c10::kBFloat16: return DType::BF16;
    case c10::kDouble: return DType::F64;
    case c10::kLong: return DType::I64;
    case c10::kInt: return DType::I32;
    case c10::kShort: return DType::I16;
    case c10::kChar: return DType::I8;
    case c10::kByte: return DType::U8;
    case c10::kBool: return DType::Bool;
    default: throw Error(std::string("unsupported tensor dtype ") + c10::toString(type));
  }
}

}  // namespace openba

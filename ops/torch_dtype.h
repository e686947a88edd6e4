// Conversions between our on-disk DType and LibTorch's ScalarType.
#pragma once

#include <c10/core/ScalarType.h>

#include "formats/dtype.h"

namespace openba {

c10::ScalarType to_scalar_type(DType dtype);
// Throws Error for types with no on-disk DType.
DType from_scalar_type(c10::ScalarType type);

}  // namespace openba

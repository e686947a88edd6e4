// The yardstick benchmarks and MFU on CPU report against: fp32 GEMM FLOP/s
// measured in the same process (4096 x 4096 x 4096 by default).
#pragma once

#include <cstdint>

namespace openba {

double measure_gemm_flops(int64_t n = 4096, int repeats = 3);

}  // namespace openba

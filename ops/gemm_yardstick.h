// The yardstick benchmarks and MFU report against: GEMM FLOP/s measured in
// the same process. On CPU fp32 (4096 x 4096 x 4096 by default); on CUDA a
// square GEMM of the given dtype (bench/gpu/run.sh: 8192^3 bf16).
#pragma once

#include <cstdint>
#include <string>

namespace openba {

double measure_gemm_flops(int64_t n = 4096, int repeats = 3);

// On `device` ("cpu", "cuda", "cuda:N") in `dtype` ("f32", "bf16", "f16"):
// the best of `repeats` timed n^3 GEMMs after a warm-up. CPU f32 is
// measure_gemm_flops.
double measure_gemm_flops_on(const std::string& device, const std::string& dtype, int64_t n, int repeats);

// Waits for the work queued on a CUDA device (no-op for CPU).
void synchronize_device(const std::string& device);

}  // namespace openba

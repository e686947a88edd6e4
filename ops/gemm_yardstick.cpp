#include "ops/gemm_yardstick.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include "ops/torch_dtype.h"

#include "ops/blas.h"
#include "ops/cpu_runtime.h"
#include "util/resources.h"

namespace openba {

double measure_gemm_flops(int64_t n, int repeats) {
  torch::NoGradGuard no_grad;
  // The yardstick is the best GEMM in the process: the BLAS our kernels call
  // (ops/blas.h; OpenBLAS beats the wheel's MKL here) with all configured
  // threads, else ATen's.
  ScopedBlasThreads blas(cpu_threads());
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  auto c = torch::empty({n, n});
  const int m = static_cast<int>(n);
  auto gemm = [&] {
    if (have_direct_sgemm()) {
      sgemm_row_major(false, false, m, m, m, 1.0f, a.data_ptr<float>(), m, b.data_ptr<float>(), m, 0.0f,
                      c.data_ptr<float>(), m);
    } else {
      torch::mm_out(c, a, b);
    }
  };
  gemm();  // warm-up
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    Stopwatch clock;
    gemm();
    best = std::min(best, clock.seconds());
  }
  return 2.0 * static_cast<double>(n) * n * n / best;
}

void synchronize_device(const std::string& device) {
  const torch::Device d(device);
  if (d.is_cuda()) torch::cuda::synchronize(d.has_index() ? d.index() : -1);
}

double measure_gemm_flops_on(const std::string& device, const std::string& dtype, int64_t n, int repeats) {
  const torch::Device d(device);
  if (d.is_cpu() && dtype == "f32") return measure_gemm_flops(n, repeats);
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().device(d).dtype(to_scalar_type(parse_float_dtype_flag(dtype, "GEMM dtype")));
  auto a = torch::randn({n, n}, options);
  auto b = torch::randn({n, n}, options);
  auto c = torch::mm(a, b);  // warm-up (and cuBLAS's heuristics)
  synchronize_device(device);
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    Stopwatch clock;
    torch::mm_out(c, a, b);
    synchronize_device(device);
    best = std::min(best, clock.seconds());
  }
  return 2.0 * static_cast<double>(n) * n * n / best;
}

}  // namespace openba

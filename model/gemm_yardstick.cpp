#include "model/gemm_yardstick.h"

#include <torch/torch.h>

#include "model/cpu_runtime.h"
#include "util/resources.h"

namespace openba {

double measure_gemm_flops(int64_t n, int repeats) {
  torch::NoGradGuard no_grad;
  // The yardstick is the library's best: OpenBLAS with all configured threads.
  ScopedBlasThreads blas(cpu_threads());
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  auto c = torch::mm(a, b);  // warm-up
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    Stopwatch clock;
    torch::mm_out(c, a, b);
    best = std::min(best, clock.seconds());
  }
  return 2.0 * static_cast<double>(n) * n * n / best;
}

}  // namespace openba

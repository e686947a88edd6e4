#include "ops/op_backend.h"

#include <ATen/core/grad_mode.h>

#include "ops/compute_path.h"

namespace openba {

const OpBackend& select_op_backend(const torch::Tensor& x) {
  if (cuda_style_path_forced() || !x.device().is_cpu() || x.scalar_type() != torch::kFloat) {
    return op_backend(OpBackendId::kAten);
  }
  return op_backend(at::GradMode::is_enabled() ? OpBackendId::kCpuTraining : OpBackendId::kCpuInference);
}

}  // namespace openba

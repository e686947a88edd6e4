// Which implementation the model's ops and the optimizer take. Two exist:
// the fused CPU kernels (ops/cpu_kernels.h, ops/cpu_autograd.h, the
// AdamW loop in train/adamw.cpp) for CPU float32, and "the CUDA-style path":
// plain ATen ops, attention through at::scaled_dot_product_attention (flash
// or memory-efficient kernels on CUDA), AdamW through ATen's _fused_adamw_.
// CUDA always takes the CUDA-style path; CPU takes it where the fused
// kernels do not apply (dropout, other dtypes) or when it is forced here, so
// that the code CUDA runs is tested on machines without a GPU.
#pragma once

namespace openba {

// True when this thread takes the CUDA-style path on CPU too: inside a
// CudaStylePath scope, or when the process started with
// OPENBA_CUDA_STYLE_PATH=1 in its environment (every thread then).
bool cuda_style_path_forced();

// While alive, this thread takes the CUDA-style path on CPU.
class CudaStylePath {
 public:
  CudaStylePath();
  ~CudaStylePath();
  CudaStylePath(const CudaStylePath&) = delete;
  CudaStylePath& operator=(const CudaStylePath&) = delete;

 private:
  bool previous_;
};

}  // namespace openba

// For openba-* mains that run the model: LibTorch errors reported without
// their C++ backtrace, and the CPU runtime configured.
#pragma once

#include <functional>

namespace openba {

// run_tool() that also reports c10::Error (LibTorch's) as a one-line error.
int run_torch_tool(const char* tool, const std::function<int()>& body);

// CPU threads for BLAS and our kernels (0 = all cores); see ops/cpu_runtime.h.
void configure_threads(int threads);

}  // namespace openba

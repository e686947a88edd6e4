// For openba-* mains that run the model: LibTorch errors reported without
// their C++ backtrace, and the CPU runtime configured.
#pragma once

#include <functional>
#include <string>

#include "ops/autocast.h"

namespace CLI {
class App;
}

namespace openba {

// run_tool() that also reports c10::Error (LibTorch's) as a one-line error.
int run_torch_tool(const char* tool, const std::function<int()>& body);

// CPU threads for BLAS and our kernels (0 = all cores); see ops/cpu_runtime.h.
void configure_threads(int threads);

// --precision fp32|bf16, as every model-running tool spells it.
void add_precision_option(CLI::App& app, std::string& precision);
// Its autocast state on `device` ("cpu", "cuda[:N]"): bf16 is CUDA autocast
// over fp32 weights, as training runs; an Error when bf16 is asked off CUDA.
AutocastState precision_autocast(const std::string& precision, const std::string& device);

}  // namespace openba

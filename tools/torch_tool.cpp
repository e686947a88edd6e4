#include "tools/torch_tool.h"

#include <CLI/CLI.hpp>
#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include "ops/cpu_runtime.h"
#include "tools/cli_common.h"
#include "util/error.h"

namespace openba {

int run_torch_tool(const char* tool, const std::function<int()>& body) {
  return run_tool(tool, [&] {
    try {
      return body();
    } catch (const c10::Error& e) {
      throw Error(e.what_without_backtrace());
    }
  });
}

void configure_threads(int threads) { configure_cpu_runtime(threads); }

void add_precision_option(CLI::App& app, std::string& precision) {
  app.add_option("--precision", precision,
                 "fp32 (default), or bf16: CUDA autocast to bfloat16 over fp32 weights, as training runs")
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

AutocastState precision_autocast(const std::string& precision, const std::string& device) {
  if (precision == "bf16" && !c10::Device(device).is_cuda()) {
    throw Error("--precision bf16 needs --device cuda (bf16 autocast runs on CUDA; CPU computes in fp32)");
  }
  return training_autocast(precision == "bf16");
}

}  // namespace openba

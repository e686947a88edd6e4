#include "tools/torch_tool.h"

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

}  // namespace openba

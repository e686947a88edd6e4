#include "ops/compute_path.h"

#include <cstdlib>
#include <string>

namespace openba {
namespace {

bool forced_by_environment() {
  static const bool forced = [] {
    const char* env = std::getenv("OPENBA_CUDA_STYLE_PATH");
    return env != nullptr && std::string(env) == "1";
  }();
  return forced;
}

thread_local bool forced_here = forced_by_environment();

}  // namespace

bool cuda_style_path_forced() { return forced_here; }

CudaStylePath::CudaStylePath() : previous_(forced_here) { forced_here = true; }
CudaStylePath::~CudaStylePath() { forced_here = previous_; }

}  // namespace openba

#include "ops/autocast.h"

#include <ATen/autocast_mode.h>

namespace openba {
namespace {

bool cuda_enabled() { return at::autocast::is_autocast_enabled(at::kCUDA); }
c10::ScalarType cuda_dtype() { return at::autocast::get_autocast_dtype(at::kCUDA); }
void set_cuda(bool enabled, c10::ScalarType dtype) {
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
}

}  // namespace

AutocastState current_autocast_state() { return {cuda_enabled(), cuda_dtype()}; }

AutocastScope::AutocastScope(const AutocastState& state) : previous_(current_autocast_state()) {
  set_cuda(state.cuda_enabled, state.cuda_dtype);
}

AutocastScope::~AutocastScope() {
  const bool leaving_enabled = cuda_enabled() && !previous_.cuda_enabled;
  set_cuda(previous_.cuda_enabled, previous_.cuda_dtype);
  if (leaving_enabled) at::autocast::clear_cache();
}

AutocastState training_autocast(bool device_is_cuda) {
  AutocastState s;
  s.cuda_enabled = device_is_cuda;
  s.cuda_dtype = c10::ScalarType::BFloat16;
  return s;
}

}  // namespace openba

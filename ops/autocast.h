// CUDA autocast (mixed precision) state (at::autocast::set_autocast_enabled
// (kCUDA, ...), kept out of the headers that use it). On CUDA, training
// runs its forward under bf16 autocast with fp32 weights, gradients and
// optimizer state (the reference's mixed precision).
#pragma once

#include <c10/core/ScalarType.h>

namespace openba {

struct AutocastState {
  bool cuda_enabled = false;
  c10::ScalarType cuda_dtype = c10::ScalarType::BFloat16;
};

AutocastState current_autocast_state();

// Sets the state for its lifetime and restores the previous one after
// (clearing the cast cache when leaving an enabled region, as torch.autocast does).
class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& state);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState previous_;
};

// The state a training forward on `device_is_cuda` uses: bf16 autocast on
// CUDA, nothing on CPU (fp32).
AutocastState training_autocast(bool device_is_cuda);

}  // namespace openba

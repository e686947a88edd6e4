// torch::autograd::Function records a VariableInfo for every tensor argument
// and rejects undefined ones, so an absent optional input (a bias, a key
// mask) travels through apply() as an empty tensor and is turned back into
// "absent" inside forward.
#pragma once

#include <torch/types.h>

namespace openba {

inline torch::Tensor absent_as_empty(const torch::Tensor& t) { return t.defined() ? t : torch::empty({0}); }
inline torch::Tensor empty_as_absent(const torch::Tensor& t) { return t.numel() == 0 ? torch::Tensor() : t; }

}  // namespace openba

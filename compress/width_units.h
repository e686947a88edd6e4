// Width pruning's units (hidden channels, self/cross heads, FFN neurons):
// which ones are kept, their scores, and slicing a tensor to the kept ones.
// Where each unit sits in each tensor is the architecture descriptor's
// (arch/openba/layout.h: TensorSpec::units); one description serves the surgery
// (which rows/columns survive), the magnitude and Taylor scores (per-unit
// sums over exactly those elements) and the tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arch/openba/config.h"
#include "arch/openba/layout.h"

namespace at {
class Tensor;
}

namespace openba {

// The unit axes of a tensor of the OpenBA layout (empty for none); Error
// naming the tensor when the architecture has no such tensor.
std::vector<UnitAxis> unit_axes(const std::string& name, const ModelConfig& config);

// Per-layer (or global, for hidden) unit lists; index = unit id.
struct WidthUnits {
  std::vector<int64_t> hidden;                     // kept hidden channels
  std::vector<std::vector<int64_t>> heads[2];      // self-attention heads [stack][layer]
  std::vector<std::vector<int64_t>> cross_heads;   // decoder cross-attention heads [layer]
  std::vector<std::vector<int64_t>> ffn[2];        // [stack][layer]
  const std::vector<int64_t>& of(const UnitAxis& a) const;
  std::vector<int64_t>& of(const UnitAxis& a);
  nlohmann::ordered_json to_json() const;
};

// Every unit kept: the identity.
WidthUnits all_units(const ModelConfig& config);

// A width target rounded to a multiple of m (--round-to): the nearest, at
// least m, at most `limit`; unchanged when m <= 1, when it is the current
// size (nothing pruned), or when the current size is below m.
int64_t round_width(int64_t n, int64_t m, int64_t limit);

// Scores with the same shape as WidthUnits, one double per unit.
struct WidthScores {
  std::string method;
  std::vector<double> hidden;
  std::vector<std::vector<double>> heads[2], cross_heads, ffn[2];
  static WidthScores zeros(const ModelConfig& config, const std::string& method);
  std::vector<double>& of(const UnitAxis& a);
  nlohmann::ordered_json to_json() const;
  static WidthScores from_json(const nlohmann::json& j, const ModelConfig& config, const std::string& source);
};

// The `keep` highest-scoring units (ties: lower index), ascending.
std::vector<int64_t> top_units(const std::vector<double>& scores, int64_t keep);

// The tensor with only the kept units along each of its unit axes.
at::Tensor slice_tensor(const std::string& name, const at::Tensor& tensor, const ModelConfig& config,
                        const WidthUnits& keep);

// Adds, for each unit axis of `name`, the per-unit sums of `values`
// (elementwise, same shape as the tensor: w^2 for magnitude, |w g| for
// Taylor) into `scores`.
void accumulate_unit_sums(const std::string& name, const at::Tensor& values, const ModelConfig& config,
                          WidthScores& scores);

// The pruned configuration.
ModelConfig pruned_config(const ModelConfig& config, const WidthUnits& keep);

}  // namespace openba

// The structural units of width pruning and where they sit in every tensor.
//
//   hidden channel c:  column c of every matrix reading the residual stream
//                      (embedding, qkv, cross q/kv, fc_in, lm_head), row c of
//                      every matrix writing it (o, cross o, fc_out) and their
//                      biases, element c of every LayerNorm weight and bias;
//   self/cross head h: qkv rows [h*3kv, (h+1)*3kv) (interleaved q_h, k_h, v_h),
//                      cross q rows [h*kv, ..), cross kv rows [h*2kv, ..)
//                      (interleaved k_h, v_h), their biases, o columns [h*kv, ..);
//   FFN neuron j:      fc_in rows j (gate) and ffn + j (up), fc_out column j.
//
// One description serves the surgery (which rows/columns survive), the
// magnitude and Taylor scores (per-unit sums over exactly those elements)
// and the tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace at {
class Tensor;
}

namespace openba {

enum class UnitKind { kHidden, kSelfHead, kCrossHead, kFfn };

// One axis of a tensor and the units along it.
struct UnitAxis {
  UnitKind kind;
  int axis = 0;
  int stack = 0;      // 0 encoder, 1 decoder (heads and FFN)
  int64_t layer = 0;
  int64_t group = 1;  // consecutive indices per unit (3kv for qkv rows, ...)
  bool gate_up = false;  // fc_in rows: index r is neuron r mod ffn
};

// The unit axes of a tensor of the OpenBA layout (empty for none).
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

// The pieces every family's descriptor builds its TensorSpecs from
// (arch/openba/layout.cpp, arch/t5/t5_layout.cpp): init rules, the hidden
// unit axis, a top-level spec and a block spec. Internal to arch/.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "arch/openba/layout.h"

namespace openba::spec_builder {

inline InitRule zeros() { return {InitRule::Kind::kZeros}; }
inline InitRule ones() { return {InitRule::Kind::kOnes}; }
inline InitRule normal(double hf_std, bool residual_output = false) {
  InitRule r;
  r.hf_std = hf_std;
  r.residual_output = residual_output;
  return r;
}

inline UnitAxis hidden_axis(int axis) { return {UnitKind::kHidden, axis, 0, 0, 1, false}; }

// A tensor outside the blocks (its local name is its name).
inline TensorSpec top_level(const std::string& name, std::vector<int64_t> shape, Component component,
                            std::vector<UnitAxis> units, InitRule init, bool vocabulary_rows = false) {
  TensorSpec s{name, std::move(shape), component};
  s.local = name;
  s.units = std::move(units);
  s.init = std::move(init);
  s.vocabulary_rows = vocabulary_rows;
  return s;
}

// A tensor of block `layer` of a stack, by its name inside the block.
inline TensorSpec in_block(bool decoder, int64_t layer, const std::string& local, std::vector<int64_t> shape,
                           Component component, std::vector<UnitAxis> units, InitRule init) {
  TensorSpec s{block_tensor_name(decoder, layer, local), std::move(shape), component};
  s.stack = decoder ? 1 : 0;
  s.layer = layer;
  s.local = local;
  s.units = std::move(units);
  s.init = std::move(init);
  return s;
}

}  // namespace openba::spec_builder

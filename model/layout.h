// The tensor layout of an OpenBA checkpoint, derived from a ModelConfig:
// every tensor name (OpenBA's Hugging Face names) with its shape, in the
// canonical order we write them. Torch-free; used to validate checkpoints,
// plan writes and count parameters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace openba {

// Which part of the model a tensor belongs to (for parameter breakdowns).
enum class Component {
  kEmbedding,
  kEncoderAttention,
  kEncoderMlp,
  kEncoderNorms,
  kDecoderSelfAttention,
  kDecoderCrossAttention,
  kDecoderMlp,
  kDecoderNorms,
  kLmHead,
};
const char* component_name(Component component);
constexpr int kComponentCount = 9;

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  Component component;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Names of the tied pair: the embedding and the output projection share one
// tensor in OpenBA (the released files store it once under both names).
inline const char* kEmbeddingName = "shared_embedding.weight";
inline const char* kLmHeadWeightName = "lm_head.weight";

std::vector<TensorSpec> openba_tensor_specs(const ModelConfig& config);

// "encoder.block.3." etc.
std::string block_prefix(bool decoder, int64_t index);

struct ParameterBreakdown {
  int64_t by_component[kComponentCount] = {};
  int64_t total = 0;
  bool lm_head_tied = true;
};
// Counts parameters per component. With lm_head_tied the lm_head weight is
// the embedding and is counted once (under the embedding).
ParameterBreakdown count_parameters(const ModelConfig& config, bool lm_head_tied = true);

}  // namespace openba

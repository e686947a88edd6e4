// The OpenBA architecture descriptor: every tensor of a checkpoint, derived
// from a ModelConfig, with what the rest of the toolkit needs to know about
// it, so that no file outside this one spells a tensor name:
//
//   name, shape       OpenBA's Hugging Face names (the released checkpoints
//                     use them as they are: the key map is the identity), in
//                     the canonical order we write them;
//   where             its block (stack, layer) and its name inside the block,
//                     or top level; layer renumbering and block loading read it;
//   component         for parameter breakdowns;
//   units             which rows/columns each prunable width unit (hidden
//                     channel, self/cross head, FFN neuron) owns;
//   vocabulary_rows   rows indexed by token id (vocabulary pruning slices them);
//   init              how a fresh model fills it.
//
// Torch-free; used to validate checkpoints, plan writes, count parameters,
// initialize, prune and renumber. A second family (T5) gets its own
// descriptor of the same shape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/openba/config.h"

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

// The structural units of width pruning and where they sit in a tensor:
//   hidden channel c:  column c of every matrix reading the residual stream
//                      (embedding, qkv, cross q/kv, fc_in, lm_head), row c of
//                      every matrix writing it (o, cross o, fc_out) and their
//                      biases, element c of every LayerNorm weight and bias;
//   self/cross head h: qkv rows [h*3kv, (h+1)*3kv) (interleaved q_h, k_h, v_h),
//                      cross q rows [h*kv, ..), cross kv rows [h*2kv, ..)
//                      (interleaved k_h, v_h), their biases, o columns [h*kv, ..);
//   FFN neuron j:      fc_in rows j (gate) and ffn + j (up), fc_out column j.
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

// How a fresh model fills a tensor (arch/openba/init.h applies it).
struct InitRule {
  enum class Kind { kZeros, kOnes, kNormal };
  Kind kind = Kind::kNormal;
  // The "hf" scheme (the reference's): normal(0, hf_std); with split_rows > 0
  // the rows from split_rows on get hf_std_rest instead.
  double hf_std = 0;
  int64_t split_rows = 0;
  double hf_std_rest = 0;
  // The "megatron" scheme: normal(0, 0.02), divided by sqrt(2 * layers of
  // the tensor's stack) for the matrices that write the residual stream.
  bool residual_output = false;
  // Drawn from the stream of another tensor, so that it starts equal to it
  // (the untied lm_head starts as the embedding). Empty: its own name.
  std::string same_as;
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  Component component;
  int stack = -1;       // 0 encoder, 1 decoder; -1 for top-level tensors
  int64_t layer = -1;   // block index within its stack; -1 for top level
  std::string local;    // the name inside its block ("mlp.fc_in.weight"); the name at top level
  std::vector<UnitAxis> units;
  bool vocabulary_rows = false;
  // Stored in block 0 but belongs to the whole stack (T5's relative position
  // bias table: every block of the stack reads it). Layer pruning moves it
  // to the first kept block.
  bool stack_table = false;
  InitRule init;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Names of the tied pair: the embedding and the output projection share one
// tensor in OpenBA (the released files store it once under both names).
// The embedding's name depends on the family: embedding_name().
inline const char* kEmbeddingName = "shared_embedding.weight";
inline const char* kLmHeadWeightName = "lm_head.weight";
inline const char* kLmHeadBiasName = "lm_head.bias";
// The tensor whose rows give ffn_hidden (gate and up halves) when a config
// file does not say it, inside encoder block 0.
inline const char* kFfnGateUpLocalName = "mlp.fc_in.weight";

// Every tensor of the model the config describes (its family's descriptor:
// this file for OpenBA, arch/t5/t5_layout.h for T5).
std::vector<TensorSpec> openba_tensor_specs(const ModelConfig& config);
// The specs of one block, in canonical order.
std::vector<TensorSpec> block_tensor_specs(const ModelConfig& config, bool decoder, int64_t layer);
// The spec of one tensor (std::nullopt when the architecture has no such
// tensor: unknown name, layer out of range, or a bias the config turns off).
std::optional<TensorSpec> find_tensor_spec(const std::string& name, const ModelConfig& config);

// Where a tensor name lives, from the name alone.
struct TensorLocation {
  int stack = -1;      // -1: top level
  int64_t layer = -1;
  std::string local;   // the name inside the block; the whole name at top level
};
// Error when a block name has no layer number.
TensorLocation locate_tensor(const std::string& name);
// "encoder.block.3." etc.
std::string block_prefix(bool decoder, int64_t index);
std::string block_tensor_name(bool decoder, int64_t layer, const std::string& local);
// "encoder.final_layernorm.weight" etc.; part is "weight" or "bias".
std::string final_norm_name(bool decoder, const std::string& part);
// The family's names: the embedding ("shared_embedding.weight", T5
// "shared.weight"); a stack's final norm weight and bias (T5's RMS norm has
// no bias: empty).
std::string embedding_name(const ModelConfig& config);
std::string final_norm_weight_name(const ModelConfig& config, bool decoder);
std::string final_norm_bias_name(const ModelConfig& config, bool decoder);

// The tensor whose rows give the FFN width when config.json does not say it
// reliably: width = rows / rows_per_neuron.
struct FfnWidthSource {
  std::string name;
  int64_t rows_per_neuron = 1;
};
FfnWidthSource ffn_width_source(const ModelConfig& config);

// Names a checkpoint of the family may hold beside its tensors, which
// loading ignores: aliases of the embedding that transformers re-ties
// (T5's encoder/decoder.embed_tokens, its tied lm_head) and keys old
// releases left behind (T5's decoder cross-attention relative bias).
bool is_ignored_tensor_name(const std::string& name, const ModelConfig& config);

struct ParameterBreakdown {
  int64_t by_component[kComponentCount] = {};
  int64_t total = 0;
  bool lm_head_tied = true;
};
// Counts parameters per component. With lm_head_tied the lm_head weight is
// the embedding and is counted once (under the embedding).
ParameterBreakdown count_parameters(const ModelConfig& config, bool lm_head_tied = true);

}  // namespace openba

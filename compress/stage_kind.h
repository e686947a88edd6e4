// The compression stages by kind, and the shape each leaves: one rule per
// stage, used by the stage itself (openba-compress) and by a pipeline's plan
// (pipeline/pipeline_plan.cpp) before anything runs, so the two cannot
// disagree on what a set of options does to a model. Torch-free.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compress/compress.h"
#include "arch/openba/config.h"

namespace openba {

enum class StageKind { kLayer, kWidth, kVocab };

// "layer", "neuron" (or its alias "width"), "vocab"; std::nullopt otherwise.
std::optional<StageKind> parse_stage_kind(const std::string& text);
// The name reports and pipeline files use: layer, neuron, vocab.
const char* stage_kind_name(StageKind kind);

// How a shape error names the options and the model it checks against:
// openba-compress says "--ffn 400 ... of the input model", a pipeline step
// "ffn 400 ... of the model at this step".
struct ShapeContext {
  std::string option_prefix;  // "--" or ""
  std::string model;          // "the input model" / "the model at this step"
  std::string opt(const std::string& key) const { return option_prefix + key; }
};

struct LayerShape {
  ModelConfig config;                          // after the stage
  std::array<std::vector<int64_t>, 2> drop;    // explicit drop lists [encoder, decoder], input numbering
  bool scored = false;                         // keep-*-layers given: the lowest scores go
};
LayerShape layer_shape_after(const ModelConfig& config, const CompressOptions& options, const ShapeContext& context);

struct WidthShape {
  ModelConfig config;  // after the stage
  int64_t ffn = 0, hidden = 0, heads = 0;  // the targets after rounding
};
WidthShape width_shape_after(const ModelConfig& config, const CompressOptions& options, const ShapeContext& context);

// `pieces`: the tokenizer's SentencePiece pieces before the stage; `required`:
// those that must stay (control, unknown, byte, user-defined; 0 when unknown).
ModelConfig vocab_shape_after(const ModelConfig& config, const CompressOptions& options, int64_t pieces,
                              int64_t required, const ShapeContext& context);

// The score methods of the scored stages (the first is the default).
const std::vector<std::string>& layer_score_methods();
const std::vector<std::string>& width_score_methods();
bool is_one_of(const std::vector<std::string>& names, const std::string& name);

}  // namespace openba

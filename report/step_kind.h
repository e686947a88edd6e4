// The kinds of pipeline steps, as pipeline files and report.json spell them.
// Torch-free (the report library reads them back from report.json).
#pragma once

#include <optional>
#include <string>

namespace openba {

enum class StepKind { kLayer, kNeuron, kVocab, kPretrain, kEval };

// The exact names: layer, neuron, vocab, pretrain, eval; std::nullopt otherwise.
inline std::optional<StepKind> parse_step_kind(const std::string& text) {
  if (text == "layer") return StepKind::kLayer;
  if (text == "neuron") return StepKind::kNeuron;
  if (text == "vocab") return StepKind::kVocab;
  if (text == "pretrain") return StepKind::kPretrain;
  if (text == "eval") return StepKind::kEval;
  return std::nullopt;
}

inline const char* step_kind_name(StepKind kind) {
  switch (kind) {
    case StepKind::kLayer: return "layer";
    case StepKind::kNeuron: return "neuron";
    case StepKind::kVocab: return "vocab";
    case StepKind::kPretrain: return "pretrain";
    case StepKind::kEval: return "eval";
  }
  return "?";
}

// Layer, neuron and vocab steps remove parameters (compression stages).
inline bool prunes(StepKind kind) {
  return kind == StepKind::kLayer || kind == StepKind::kNeuron || kind == StepKind::kVocab;
}

}  // namespace openba

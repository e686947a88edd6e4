// The MLP activations the families use (torch-free, so that ModelConfig can
// name one): OpenBA's SwiGLU is silu; T5 v1.0 relu, T5 v1.1 / mT5 / Flan-T5
// gated gelu_new (the tanh approximation), UL2 gated silu.
#pragma once

namespace openba {

enum class FfnActivation { kSilu, kRelu, kGelu, kGeluTanh };
// transformers' ACT2FN name: "silu", "relu", "gelu", "gelu_new".
inline const char* ffn_activation_name(FfnActivation activation) {
  switch (activation) {
    case FfnActivation::kSilu: return "silu";
    case FfnActivation::kRelu: return "relu";
    case FfnActivation::kGelu: return "gelu";
    case FfnActivation::kGeluTanh: return "gelu_new";
  }
  return "?";
}

}  // namespace openba

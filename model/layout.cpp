#include "model/layout.h"

namespace openba {

const char* component_name(Component component) {
  switch (component) {
    case Component::kEmbedding: return "embedding";
    case Component::kEncoderAttention: return "encoder attention";
    case Component::kEncoderMlp: return "encoder mlp";
    case Component::kEncoderNorms: return "encoder norms";
    case Component::kDecoderSelfAttention: return "decoder self-attention";
    case Component::kDecoderCrossAttention: return "decoder cross-attention";
    case Component::kDecoderMlp: return "decoder mlp";
    case Component::kDecoderNorms: return "decoder norms";
    case Component::kLmHead: return "lm_head";
  }
  return "?";
}

std::string block_prefix(bool decoder, int64_t index) {
  return std::string(decoder ? "decoder" : "encoder") + ".block." + std::to_string(index) + ".";
}

std::vector<TensorSpec> openba_tensor_specs(const ModelConfig& c) {
  const int64_t d = c.d_model, a = c.attention_width(), f = c.ffn_hidden;
  std::vector<TensorSpec> specs;
  specs.push_back({kEmbeddingName, {c.vocab_size, d}, Component::kEmbedding});
  auto norm = [&](const std::string& name, Component comp) {
    specs.push_back({name + ".weight", {d}, comp});
    specs.push_back({name + ".bias", {d}, comp});
  };
  auto linear = [&](const std::string& name, int64_t out, int64_t in, bool bias, Component comp) {
    specs.push_back({name + ".weight", {out, in}, comp});
    if (bias) specs.push_back({name + ".bias", {out}, comp});
  };
  for (int stack = 0; stack < 2; ++stack) {
    const bool decoder = stack == 1;
    const int64_t layers = decoder ? c.decoder_layers : c.encoder_layers;
    const Component attn = decoder ? Component::kDecoderSelfAttention : Component::kEncoderAttention;
    const Component mlp = decoder ? Component::kDecoderMlp : Component::kEncoderMlp;
    const Component norms = decoder ? Component::kDecoderNorms : Component::kEncoderNorms;
    for (int64_t i = 0; i < layers; ++i) {
      const std::string p = block_prefix(decoder, i);
      norm(p + "input_layernorm", norms);
      linear(p + "self_attn.qkv", 3 * a, d, c.add_qkv_bias, attn);
      linear(p + "self_attn.o", d, a, c.add_qkv_bias, attn);
      norm(p + "post_attn_layernorm", norms);
      if (decoder) {
        linear(p + "inter_attn.q", a, d, c.add_qkv_bias, Component::kDecoderCrossAttention);
        linear(p + "inter_attn.kv", 2 * a, d, c.add_qkv_bias, Component::kDecoderCrossAttention);
        linear(p + "inter_attn.o", d, a, c.add_qkv_bias, Component::kDecoderCrossAttention);
        norm(p + "post_inter_attn_layernorm", norms);
      }
      linear(p + "mlp.fc_in", 2 * f, d, c.add_ffn_bias, mlp);
      linear(p + "mlp.fc_out", d, f, c.add_ffn_bias, mlp);
    }
    norm(std::string(decoder ? "decoder" : "encoder") + ".final_layernorm", norms);
  }
  linear("lm_head", c.vocab_size, d, c.add_lm_head_bias, Component::kLmHead);
  return specs;
}

ParameterBreakdown count_parameters(const ModelConfig& config, bool lm_head_tied) {
  ParameterBreakdown out;
  out.lm_head_tied = lm_head_tied;
  for (const TensorSpec& spec : openba_tensor_specs(config)) {
    if (lm_head_tied && spec.name == kLmHeadWeightName) continue;
    out.by_component[static_cast<int>(spec.component)] += spec.numel();
    out.total += spec.numel();
  }
  return out;
}

}  // namespace openba

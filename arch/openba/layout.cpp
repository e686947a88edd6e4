#include "arch/openba/layout.h"

#include <cmath>

#include "arch/spec_builder.h"
#include "arch/t5/t5_layout.h"
#include "util/error.h"

namespace openba {
namespace {

using namespace spec_builder;

constexpr const char* kStackNames[2] = {"encoder", "decoder"};

// Appends specs in canonical order; the unit axes follow width_units' table
// in the header.
class SpecBuilder {
 public:
  SpecBuilder(const ModelConfig& c, std::vector<TensorSpec>& out) : c_(c), out_(out) {}

  void top(const std::string& name, std::vector<int64_t> shape, Component comp, std::vector<UnitAxis> units,
           InitRule init, bool vocabulary_rows = false) {
    out_.push_back(top_level(name, std::move(shape), comp, std::move(units), std::move(init), vocabulary_rows));
  }

  void final_norm(bool decoder) {
    const Component comp = decoder ? Component::kDecoderNorms : Component::kEncoderNorms;
    top(final_norm_name(decoder, "weight"), {c_.d_model}, comp, {hidden_axis(0)}, ones());
    top(final_norm_name(decoder, "bias"), {c_.d_model}, comp, {hidden_axis(0)}, zeros());
  }

  void block(bool decoder, int64_t layer) {
    const int stack = decoder ? 1 : 0;
    const int64_t d = c_.d_model, a = c_.attention_width(), f = c_.ffn_hidden, kv = c_.kv_channels;
    const double dd = static_cast<double>(d);
    const Component attn = decoder ? Component::kDecoderSelfAttention : Component::kEncoderAttention;
    const Component mlp = decoder ? Component::kDecoderMlp : Component::kEncoderMlp;
    const Component norms = decoder ? Component::kDecoderNorms : Component::kEncoderNorms;
    const Component cross = Component::kDecoderCrossAttention;
    auto unit = [&](UnitKind kind, int axis, int64_t group, bool gate_up = false) {
      return UnitAxis{kind, axis, stack, layer, group, gate_up};
    };
    auto add = [&](const std::string& local, std::vector<int64_t> shape, Component comp, std::vector<UnitAxis> units,
                   InitRule init) {
      out_.push_back(in_block(decoder, layer, local, std::move(shape), comp, std::move(units), std::move(init)));
    };
    auto norm = [&](const std::string& local) {
      add(local + ".weight", {d}, norms, {hidden_axis(0)}, ones());
      add(local + ".bias", {d}, norms, {hidden_axis(0)}, zeros());
    };
    // A linear layer: weight [out, in] with the units of its rows (out) and
    // columns (in); its bias has the row units.
    auto linear = [&](const std::string& local, int64_t out, int64_t in, bool bias, Component comp,
                      std::vector<UnitAxis> row_units, std::vector<UnitAxis> column_units, InitRule init) {
      std::vector<UnitAxis> weight_units = row_units;
      for (UnitAxis u : column_units) {
        u.axis = 1;
        weight_units.push_back(u);
      }
      add(local + ".weight", {out, in}, comp, weight_units, init);
      if (bias) add(local + ".bias", {out}, comp, row_units, zeros());
    };
    const bool qkv_bias = c_.add_qkv_bias, ffn_bias = c_.add_ffn_bias;
    norm("input_layernorm");
    // As the reference: the first H*kv rows (the queries) std (d*kv)^-0.5, the rest d^-0.5.
    InitRule qkv = normal(std::pow(dd * static_cast<double>(kv), -0.5));
    qkv.split_rows = a;
    qkv.hf_std_rest = std::pow(dd, -0.5);
    linear("self_attn.qkv", 3 * a, d, qkv_bias, attn, {unit(UnitKind::kSelfHead, 0, 3 * kv)}, {hidden_axis(0)}, qkv);
    linear("self_attn.o", d, a, qkv_bias, attn, {hidden_axis(0)}, {unit(UnitKind::kSelfHead, 0, kv)},
           normal(std::pow(static_cast<double>(a), -0.5), true));
    norm("post_attn_layernorm");
    if (decoder) {
      linear("inter_attn.q", a, d, qkv_bias, cross, {unit(UnitKind::kCrossHead, 0, kv)}, {hidden_axis(0)},
             normal(std::pow(dd * static_cast<double>(kv), -0.5)));
      linear("inter_attn.kv", 2 * a, d, qkv_bias, cross, {unit(UnitKind::kCrossHead, 0, 2 * kv)}, {hidden_axis(0)},
             normal(std::pow(dd, -0.5)));
      linear("inter_attn.o", d, a, qkv_bias, cross, {hidden_axis(0)}, {unit(UnitKind::kCrossHead, 0, kv)},
             normal(std::pow(static_cast<double>(a), -0.5), true));
      norm("post_inter_attn_layernorm");
    }
    linear("mlp.fc_in", 2 * f, d, ffn_bias, mlp, {unit(UnitKind::kFfn, 0, 1, /*gate_up=*/true)}, {hidden_axis(0)},
           normal(std::pow(dd, -0.5)));
    linear("mlp.fc_out", d, f, ffn_bias, mlp, {hidden_axis(0)}, {unit(UnitKind::kFfn, 0, 1)},
           normal(std::pow(static_cast<double>(f), -0.5), true));
  }

  void embedding() {
    top(kEmbeddingName, {c_.vocab_size, c_.d_model}, Component::kEmbedding, {hidden_axis(1)}, normal(1.0), true);
  }

  void lm_head() {
    InitRule same = normal(1.0);
    same.same_as = kEmbeddingName;  // the tied output weight is the embedding
    top(kLmHeadWeightName, {c_.vocab_size, c_.d_model}, Component::kLmHead, {hidden_axis(1)}, same, true);
    if (c_.add_lm_head_bias) top(kLmHeadBiasName, {c_.vocab_size}, Component::kLmHead, {}, zeros(), true);
  }

 private:
  const ModelConfig& c_;
  std::vector<TensorSpec>& out_;
};

}  // namespace

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
  return std::string(kStackNames[decoder ? 1 : 0]) + ".block." + std::to_string(index) + ".";
}

std::string block_tensor_name(bool decoder, int64_t layer, const std::string& local) {
  return block_prefix(decoder, layer) + local;
}

std::string final_norm_name(bool decoder, const std::string& part) {
  return std::string(kStackNames[decoder ? 1 : 0]) + ".final_layernorm." + part;
}

TensorLocation locate_tensor(const std::string& name) {
  TensorLocation loc;
  loc.local = name;
  for (int s = 0; s < 2; ++s) {
    const std::string stack = std::string(kStackNames[s]) + ".block.";
    if (name.rfind(stack, 0) != 0) continue;
    const size_t dot = name.find('.', stack.size());
    const std::string digits = name.substr(stack.size(), dot == std::string::npos ? std::string::npos : dot - stack.size());
    if (dot == std::string::npos || digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
      throw Error("tensor '" + name + "': no layer number after '" + stack + "'");
    }
    loc.stack = s;
    loc.layer = std::stoll(digits);
    loc.local = name.substr(dot + 1);
    return loc;
  }
  return loc;
}

std::string embedding_name(const ModelConfig& c) {
  return c.family == ModelFamily::kT5 ? t5_embedding_name() : kEmbeddingName;
}

std::string final_norm_weight_name(const ModelConfig& c, bool decoder) {
  return c.family == ModelFamily::kT5 ? t5_final_norm_name(decoder) : final_norm_name(decoder, "weight");
}

std::string final_norm_bias_name(const ModelConfig& c, bool decoder) {
  return c.family == ModelFamily::kT5 ? std::string() : final_norm_name(decoder, "bias");
}

FfnWidthSource ffn_width_source(const ModelConfig& c) {
  if (c.family == ModelFamily::kT5) return {t5_ffn_width_tensor(c), 1};
  return {block_tensor_name(false, 0, kFfnGateUpLocalName), 2};
}

bool is_ignored_tensor_name(const std::string& name, const ModelConfig& c) {
  return c.family == ModelFamily::kT5 && is_t5_ignored_tensor_name(name, c);
}

std::vector<TensorSpec> block_tensor_specs(const ModelConfig& c, bool decoder, int64_t layer) {
  if (c.family == ModelFamily::kT5) return t5_block_tensor_specs(c, decoder, layer);
  std::vector<TensorSpec> specs;
  SpecBuilder(c, specs).block(decoder, layer);
  return specs;
}

namespace {

// A family's descriptor in parts; the canonical order and the lookup below
// are the same for every family.
enum class TopPart { kEmbedding, kEncoderFinalNorm, kDecoderFinalNorm, kLmHead };

void append_top(const ModelConfig& c, TopPart part, std::vector<TensorSpec>& out) {
  if (c.family == ModelFamily::kT5) {
    std::vector<TensorSpec> specs;
    switch (part) {
      case TopPart::kEmbedding: specs = t5_embedding_specs(c); break;
      case TopPart::kEncoderFinalNorm: specs = t5_final_norm_specs(c, false); break;
      case TopPart::kDecoderFinalNorm: specs = t5_final_norm_specs(c, true); break;
      case TopPart::kLmHead: specs = t5_lm_head_specs(c); break;
    }
    for (auto& spec : specs) out.push_back(std::move(spec));
    return;
  }
  SpecBuilder b(c, out);
  switch (part) {
    case TopPart::kEmbedding: b.embedding(); break;
    case TopPart::kEncoderFinalNorm: b.final_norm(false); break;
    case TopPart::kDecoderFinalNorm: b.final_norm(true); break;
    case TopPart::kLmHead: b.lm_head(); break;
  }
}

void append_block(const ModelConfig& c, bool decoder, int64_t layer, std::vector<TensorSpec>& out) {
  for (auto& spec : block_tensor_specs(c, decoder, layer)) out.push_back(std::move(spec));
}

}  // namespace

std::vector<TensorSpec> openba_tensor_specs(const ModelConfig& c) {
  std::vector<TensorSpec> specs;
  append_top(c, TopPart::kEmbedding, specs);
  for (int stack = 0; stack < 2; ++stack) {
    const bool decoder = stack == 1;
    const int64_t layers = decoder ? c.decoder_layers : c.encoder_layers;
    for (int64_t i = 0; i < layers; ++i) append_block(c, decoder, i, specs);
    append_top(c, decoder ? TopPart::kDecoderFinalNorm : TopPart::kEncoderFinalNorm, specs);
  }
  append_top(c, TopPart::kLmHead, specs);
  return specs;
}

std::optional<TensorSpec> find_tensor_spec(const std::string& name, const ModelConfig& c) {
  TensorLocation loc;
  try {
    loc = locate_tensor(name);
  } catch (const Error&) {
    return std::nullopt;
  }
  std::vector<TensorSpec> candidates;
  if (loc.stack >= 0) {
    const int64_t layers = loc.stack ? c.decoder_layers : c.encoder_layers;
    if (loc.layer >= layers) return std::nullopt;
    append_block(c, loc.stack == 1, loc.layer, candidates);
  } else {
    for (TopPart part : {TopPart::kEmbedding, TopPart::kEncoderFinalNorm, TopPart::kDecoderFinalNorm, TopPart::kLmHead}) {
      append_top(c, part, candidates);
    }
  }
  for (auto& s : candidates) {
    if (s.name == name) return std::move(s);
  }
  return std::nullopt;
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

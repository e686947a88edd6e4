#include "arch/t5/t5_layout.h"

#include <cmath>

#include "arch/spec_builder.h"

namespace openba {
namespace {

using namespace spec_builder;

std::string layer_norm_local(int sublayer) { return "layer." + std::to_string(sublayer) + ".layer_norm.weight"; }

class T5SpecBuilder {
 public:
  T5SpecBuilder(const ModelConfig& c, std::vector<TensorSpec>& out) : c_(c), out_(out) {}

  void top(const std::string& name, std::vector<int64_t> shape, Component comp, std::vector<UnitAxis> units,
           InitRule init, bool vocabulary_rows = false) {
    out_.push_back(top_level(name, std::move(shape), comp, std::move(units), std::move(init), vocabulary_rows));
  }

  void embedding() {
    top(t5_embedding_name(), {c_.vocab_size, c_.d_model}, Component::kEmbedding, {hidden_axis(1)}, normal(1.0), true);
  }

  void final_norm(bool decoder) {
    top(t5_final_norm_name(decoder), {c_.d_model}, decoder ? Component::kDecoderNorms : Component::kEncoderNorms,
        {hidden_axis(0)}, ones());
  }

  void lm_head() {
    if (c_.tie_word_embeddings) return;  // the embedding itself
    top(kLmHeadWeightName, {c_.vocab_size, c_.d_model}, Component::kLmHead, {hidden_axis(1)}, normal(1.0), true);
  }

  void block(bool decoder, int64_t layer) {
    const int stack = decoder ? 1 : 0;
    const int64_t d = c_.d_model, a = c_.attention_width(), f = c_.ffn_hidden, kv = c_.kv_channels;
    const double dd = static_cast<double>(d);
    const Component norms = decoder ? Component::kDecoderNorms : Component::kEncoderNorms;
    auto add = [&](const std::string& local, std::vector<int64_t> shape, Component comp, std::vector<UnitAxis> units,
                   InitRule init) {
      out_.push_back(in_block(decoder, layer, local, std::move(shape), comp, std::move(units), std::move(init)));
      return &out_.back();
    };
    auto unit = [&](UnitKind kind, int axis, int64_t group) { return UnitAxis{kind, axis, stack, layer, group, false}; };
    auto attention = [&](bool cross) {
      const std::string p = t5_attention_prefix(cross) + ".";
      const Component comp = cross ? Component::kDecoderCrossAttention
                                   : (decoder ? Component::kDecoderSelfAttention : Component::kEncoderAttention);
      const UnitKind head = cross ? UnitKind::kCrossHead : UnitKind::kSelfHead;
      add(p + "q.weight", {a, d}, comp, {unit(head, 0, kv), hidden_axis(1)},
          normal(std::pow(dd * static_cast<double>(kv), -0.5)));
      add(p + "k.weight", {a, d}, comp, {unit(head, 0, kv), hidden_axis(1)}, normal(std::pow(dd, -0.5)));
      add(p + "v.weight", {a, d}, comp, {unit(head, 0, kv), hidden_axis(1)}, normal(std::pow(dd, -0.5)));
      add(p + "o.weight", {d, a}, comp, {hidden_axis(0), unit(head, 1, kv)},
          normal(std::pow(static_cast<double>(a), -0.5), true));
      if (!cross && layer == 0) {
        TensorSpec* table = add(kT5RelativeBiasLocalName, {c_.relative_attention_num_buckets, c_.num_heads}, comp,
                                {unit(head, 1, 1)}, normal(std::pow(dd, -0.5)));
        table->stack_table = true;
      }
      add(layer_norm_local(cross ? 1 : 0), {d}, norms, {hidden_axis(0)}, ones());
    };
    attention(false);
    if (decoder) attention(true);
    const std::string p = t5_ffn_prefix(decoder) + ".";
    const Component mlp = decoder ? Component::kDecoderMlp : Component::kEncoderMlp;
    for (const char* in : c_.ffn_gated ? std::vector<const char*>{"wi_0", "wi_1"} : std::vector<const char*>{"wi"}) {
      add(p + in + ".weight", {f, d}, mlp, {unit(UnitKind::kFfn, 0, 1), hidden_axis(1)}, normal(std::pow(dd, -0.5)));
    }
    add(p + "wo.weight", {d, f}, mlp, {hidden_axis(0), unit(UnitKind::kFfn, 1, 1)},
        normal(std::pow(static_cast<double>(f), -0.5), true));
    add(layer_norm_local(decoder ? 2 : 1), {d}, norms, {hidden_axis(0)}, ones());
  }

 private:
  const ModelConfig& c_;
  std::vector<TensorSpec>& out_;
};

}  // namespace

std::string t5_embedding_name() { return "shared.weight"; }
std::string t5_final_norm_name(bool decoder) {
  return std::string(decoder ? "decoder" : "encoder") + ".final_layer_norm.weight";
}
std::string t5_attention_prefix(bool cross) { return cross ? "layer.1.EncDecAttention" : "layer.0.SelfAttention"; }
std::string t5_ffn_prefix(bool decoder) { return decoder ? "layer.2.DenseReluDense" : "layer.1.DenseReluDense"; }

std::string t5_ffn_width_tensor(const ModelConfig& c) {
  return block_tensor_name(false, 0, t5_ffn_prefix(false) + (c.ffn_gated ? ".wi_0.weight" : ".wi.weight"));
}

bool is_t5_ignored_tensor_name(const std::string& name, const ModelConfig& c) {
  if (name == "encoder.embed_tokens.weight" || name == "decoder.embed_tokens.weight") return true;
  if (name == kLmHeadWeightName && c.tie_word_embeddings) return true;
  // Written by old transformers versions; never read (cross-attention has no position bias).
  return name == "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight";
}

std::vector<TensorSpec> t5_block_tensor_specs(const ModelConfig& c, bool decoder, int64_t layer) {
  std::vector<TensorSpec> specs;
  T5SpecBuilder(c, specs).block(decoder, layer);
  return specs;
}

std::vector<TensorSpec> t5_embedding_specs(const ModelConfig& c) {
  std::vector<TensorSpec> specs;
  T5SpecBuilder(c, specs).embedding();
  return specs;
}

std::vector<TensorSpec> t5_final_norm_specs(const ModelConfig& c, bool decoder) {
  std::vector<TensorSpec> specs;
  T5SpecBuilder(c, specs).final_norm(decoder);
  return specs;
}

std::vector<TensorSpec> t5_lm_head_specs(const ModelConfig& c) {
  std::vector<TensorSpec> specs;
  T5SpecBuilder(c, specs).lm_head();
  return specs;
}

}  // namespace openba

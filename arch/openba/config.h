// ModelConfig: every dimension of an OpenBA encoder-decoder, explicit.
//
// Two sources: our YAML (configs/models/*.yaml, strict: unknown keys are
// errors with their line) and OpenBA's Hugging Face config.json (OpenBA key
// names; unknown keys are kept verbatim and written back). The widths that a
// checkpoint's tensors determine (FFN width, vocabulary rows) are reconciled
// against the tensors by reconcile_with_tensor_shapes().
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "formats/dtype.h"
#include "ops/activation.h"

namespace openba {

// The architecture family a config describes: its descriptor
// (arch/<family>/layout), its forward (arch/<family>/*_model) and its
// config.json keys.
//   kOpenBA  OpenBA (shared/reference/openba.md): LayerNorm, rotary, SwiGLU.
//   kT5      T5, mT5, Flan-T5, UL2 (arch/t5/): RMS norm, relative position
//            bias, ReLU / gated-GELU / gated-SiLU MLPs.
enum class ModelFamily { kOpenBA, kT5 };
const char* model_family_name(ModelFamily family);


struct ModelConfig {
  ModelFamily family = ModelFamily::kOpenBA;
  // config.json's model_type, written back ("openba", "t5", "mt5").
  std::string model_type = "openba";
  int64_t encoder_layers = 0;
  int64_t decoder_layers = 0;
  int64_t d_model = 0;
  int64_t num_heads = 0;
  int64_t kv_channels = 0;     // per-head width; attention width = heads * kv_channels
  int64_t ffn_hidden = 0;      // MLP width (OpenBA: fc_in has 2*ffn_hidden rows, gate first)
  FfnActivation ffn_activation = FfnActivation::kSilu;  // act(gate) * up when gated, act(in) otherwise
  bool ffn_gated = true;       // OpenBA always; T5 v1.0 relu is not
  // T5's relative position buckets (OpenBA uses rotary and ignores these).
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  int64_t vocab_size = 0;      // embedding rows (pieces padded to a multiple of 128)
  int64_t max_seq_length = 1024;
  int64_t decoder_max_seq_length = 256;
  bool add_qkv_bias = true;    // also governs o and cross-attention q/kv/o biases
  bool add_ffn_bias = false;
  bool add_lm_head_bias = true;
  // The HF flag: when true the reference scales decoder output by d_model^-0.5
  // before lm_head. Released OpenBA configs say false (weights still shared).
  // For T5 it also decides the storage: true = lm_head is the embedding.
  bool tie_word_embeddings = false;
  double layernorm_eps = 1e-5;
  double rope_base = 10000.0;
  double hidden_dropout = 0.0;
  double attention_dropout = 0.0;
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
  int64_t decoder_start_token_id = 0;
  DType dtype = DType::F32;    // storage dtype of the weights on disk

  // config.json keys we do not interpret (auto_map, tokenizer_class, ...),
  // as serialized JSON values, written back unchanged.
  std::map<std::string, std::string> extra_hf_keys;

  int64_t attention_width() const { return num_heads * kv_channels; }

  // Throws Error (prefixed with `source`) if any dimension is invalid.
  void validate(const std::string& source) const;
  bool same_architecture(const ModelConfig& other) const;
  // One line: "enc 12 / dec 36, d 4096, 40x128 heads, ffn 11008, vocab 250368".
  std::string summary() const;
};

// Our YAML model description (see configs/models/). Unknown keys, wrong
// types and invalid values are errors naming the file and line.
ModelConfig load_model_config_yaml(const std::string& path);

// OpenBA's config.json. `source` names the file in errors.
ModelConfig parse_hf_config_json(const std::string& text, const std::string& source);
ModelConfig load_hf_config(const std::string& path);
// A model config file of either kind: a path ending in .json is a Hugging
// Face config.json (OpenBA or the T5 family), anything else our YAML.
ModelConfig load_model_config_file(const std::string& path);
// config.json text in OpenBA's key names (with extra_hf_keys carried over).
std::string to_hf_config_json(const ModelConfig& config);

// OpenBA-15B's config.json says ffn_hidden_size 16384 while its modeling code
// uses int(2/3 * 16384) rounded up to a multiple of 256 (= 11008).
int64_t openba_v1_derived_ffn(int64_t declared);

// Sets ffn_hidden and vocab_size from the checkpoint's tensor shapes, which are
// the truth. A width that matches neither the declared value nor (for the FFN)
// the V1 derivation is an Error naming both numbers.
void reconcile_with_tensor_shapes(ModelConfig& config, int64_t ffn_width_in_tensors,
                                  int64_t vocab_rows_in_tensors, const std::string& source);

}  // namespace openba

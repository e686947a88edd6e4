#include "model/init.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "model/checkpoint.h"
#include "model/checkpoint_writer.h"
#include "model/openba_model.h"
#include "util/progress.h"
#include "util/error.h"

namespace openba {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// splitmix64 over FNV-1a of the name: a stable per-tensor seed.
uint64_t tensor_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (h | 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

InitScheme parse_init_scheme(const std::string& text, const std::string& flag) {
  if (text == "megatron") return InitScheme::kMegatron;
  if (text == "hf") return InitScheme::kHf;
  throw Error(flag + ": unknown init scheme '" + text + "' (expected megatron or hf)");
}

torch::Tensor initial_tensor(const TensorSpec& spec, const ModelConfig& c, uint64_t seed,
                             InitScheme scheme) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  const std::string& name = spec.name;
  if (ends_with(name, ".bias")) return torch::zeros(spec.shape, f32);
  if (name.find("layernorm") != std::string::npos) return torch::ones(spec.shape, f32);
  // The tied output weight is the embedding.
  const std::string source = name == kLmHeadWeightName ? std::string(kEmbeddingName) : name;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(tensor_seed(seed, source));
  auto normal = [&](std::vector<int64_t> shape, double std) {
    return at::normal(0.0, std, shape, gen, f32);
  };
  const double d = static_cast<double>(c.d_model);
  const double kv = static_cast<double>(c.kv_channels);
  const int64_t a = c.attention_width();
  if (scheme == InitScheme::kMegatron) {
    constexpr double kStd = 0.02;
    const bool output_projection = ends_with(name, ".o.weight") || ends_with(name, "mlp.fc_out.weight");
    if (!output_projection) return normal(spec.shape, kStd);
    const bool decoder = name.rfind("decoder.", 0) == 0;
    const double layers = static_cast<double>(decoder ? c.decoder_layers : c.encoder_layers);
    return normal(spec.shape, kStd / std::sqrt(2.0 * layers));
  }
  if (source == kEmbeddingName) return normal(spec.shape, 1.0);
  if (ends_with(name, "self_attn.qkv.weight")) {
    // As the reference: the first H*kv rows get std (d*kv)^-0.5, the rest d^-0.5.
    auto first = normal({a, c.d_model}, std::pow(d * kv, -0.5));
    auto rest = normal({2 * a, c.d_model}, std::pow(d, -0.5));
    return torch::cat({first, rest}, 0);
  }
  if (ends_with(name, "inter_attn.q.weight")) return normal(spec.shape, std::pow(d * kv, -0.5));
  if (ends_with(name, "inter_attn.kv.weight")) return normal(spec.shape, std::pow(d, -0.5));
  if (ends_with(name, ".o.weight")) return normal(spec.shape, std::pow(static_cast<double>(a), -0.5));
  if (ends_with(name, "mlp.fc_in.weight")) return normal(spec.shape, std::pow(d, -0.5));
  if (ends_with(name, "mlp.fc_out.weight")) {
    return normal(spec.shape, std::pow(static_cast<double>(c.ffn_hidden), -0.5));
  }
  throw Error("no initialization rule for tensor '" + name + "'");
}

WrittenCheckpoint write_initialized_checkpoint(const ModelConfig& config, const std::string& out_dir, uint64_t seed,
                                         InitScheme scheme, const WriterOptions& writer_options,
                                         const std::vector<std::string>& tokenizer_files, bool show_progress) {
  WriterOptions options = writer_options;
  options.metadata[kTiedMetadataKey] = "tied";  // lm_head.weight is the embedding
  CheckpointWriter writer(out_dir, config, options);
  const auto specs = openba_tensor_specs(config);
  std::vector<PlannedTensor> plan;
  uint64_t total = 0;
  for (const auto& spec : specs) {
    plan.push_back({spec.name, spec.shape});
    total += static_cast<uint64_t>(spec.numel()) * dtype_size(config.dtype);
  }
  writer.plan(plan);
  Progress progress("init", total, "bytes", show_progress);
  for (const auto& spec : specs) {
    writer.write(spec.name, initial_tensor(spec, config, seed, scheme));
    progress.advance(static_cast<uint64_t>(spec.numel()) * dtype_size(config.dtype));
  }
  for (const std::string& file : tokenizer_files) writer.copy_file(file);
  WrittenCheckpoint out;
  out.path = writer.commit();
  out.bytes = writer.bytes_written();
  progress.finish();
  return out;
}

void initialize_weights(OpenBAModelImpl& model, uint64_t seed, InitScheme scheme) {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters(true);
  for (const TensorSpec& spec : openba_tensor_specs(model.config)) {
    if (spec.name == kLmHeadWeightName && model.lm_head_tied()) continue;
    torch::Tensor* param = params.find(spec.name);
    if (!param) throw Error("model has no parameter '" + spec.name + "'");
    param->copy_(initial_tensor(spec, model.config, seed, scheme));
  }
}

}  // namespace openba

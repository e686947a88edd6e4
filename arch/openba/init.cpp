#include "arch/openba/init.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "arch/seq2seq_model.h"
#include "util/error.h"

namespace openba {
namespace {

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
  const InitRule& rule = spec.init;
  if (rule.kind == InitRule::Kind::kZeros) return torch::zeros(spec.shape, f32);
  if (rule.kind == InitRule::Kind::kOnes) return torch::ones(spec.shape, f32);
  const std::string& source = rule.same_as.empty() ? spec.name : rule.same_as;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(tensor_seed(seed, source));
  auto normal = [&](std::vector<int64_t> shape, double std) {
    return at::normal(0.0, std, shape, gen, f32);
  };
  if (scheme == InitScheme::kMegatron) {
    constexpr double kStd = 0.02;
    if (!rule.residual_output) return normal(spec.shape, kStd);
    const double layers = static_cast<double>(spec.stack == 1 ? c.decoder_layers : c.encoder_layers);
    return normal(spec.shape, kStd / std::sqrt(2.0 * layers));
  }
  if (rule.split_rows > 0) {
    std::vector<int64_t> first = spec.shape, rest = spec.shape;
    first[0] = rule.split_rows;
    rest[0] -= rule.split_rows;
    auto head = normal(first, rule.hf_std);
    auto tail = normal(rest, rule.hf_std_rest);
    return torch::cat({head, tail}, 0);
  }
  return normal(spec.shape, rule.hf_std);
}

void initialize_weights(Seq2SeqModelImpl& model, uint64_t seed, InitScheme scheme) {
  fill_parameters(model, [&](const TensorSpec& spec) { return initial_tensor(spec, model.config, seed, scheme); });
}

}  // namespace openba

#include "runtime/model_speed.h"

#include <c10/core/CachingDeviceAllocator.h>

#include "arch/seq2seq_model.h"
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "ops/gemm_yardstick.h"
#include "runtime/generation.h"
#include "util/error.h"
#include "util/resources.h"

namespace openba {
namespace {

std::vector<std::vector<int64_t>> random_inputs(int64_t n, int64_t length, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  // Ordinary ids: above the specials, below the vocabulary's padded tail.
  std::uniform_int_distribution<int64_t> id(3, std::max<int64_t>(4, vocab - 200));
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(n));
  for (auto& ids : out) {
    for (int64_t j = 0; j < length; ++j) ids.push_back(id(rng));
  }
  return out;
}

c10::DeviceIndex cuda_index(const torch::Device& device) { return device.has_index() ? device.index() : 0; }

}  // namespace

void check_speed_options(const SpeedOptions& o) {
  if (o.batches.empty()) throw Error("speed batches: at least one batch size");
  for (int64_t b : o.batches) {
    if (b < 1) throw Error("speed batches: " + std::to_string(b) + " is not a positive batch size");
  }
  if (o.new_tokens < 1) throw Error("speed new_tokens must be at least 1 (got " + std::to_string(o.new_tokens) + ")");
  if (o.input_length < 1) {
    throw Error("speed input_length must be at least 1 (got " + std::to_string(o.input_length) + ")");
  }
  if (o.encoder_batch < 1) {
    throw Error("speed encoder_batch must be at least 1 (got " + std::to_string(o.encoder_batch) + ")");
  }
  if (o.repeats < 1) throw Error("speed repeats must be at least 1 (got " + std::to_string(o.repeats) + ")");
}

nlohmann::ordered_json speed_options_json(const SpeedOptions& o) {
  nlohmann::ordered_json j;
  j["batches"] = o.batches;
  j["new_tokens"] = o.new_tokens;
  j["input_length"] = o.input_length;
  j["encoder_batch"] = o.encoder_batch;
  j["repeats"] = o.repeats;
  return j;
}

nlohmann::ordered_json measure_model_speed(Seq2SeqModelImpl& model, const std::string& where,
                                           const SpeedOptions& o,
                                           const std::function<void(const std::string&)>& progress) {
  check_speed_options(o);
  torch::NoGradGuard no_grad;
  const auto& config = model.config;
  const torch::Device device(where);
  if (device.is_cuda()) c10::getDeviceAllocator(c10::DeviceType::CUDA)->resetPeakStats(cuda_index(device));

  // The encoder.
  std::vector<int64_t> flat;
  for (const auto& ids : random_inputs(o.encoder_batch, o.input_length, config.vocab_size, 1)) {
    flat.insert(flat.end(), ids.begin(), ids.end());
  }
  const auto ids = torch::tensor(flat, torch::kLong).view({o.encoder_batch, o.input_length}).to(device);
  model.encode(ids, {});  // warm-up
  synchronize_device(where);
  double encoder_seconds = 1e30;
  for (int r = 0; r < o.repeats; ++r) {
    Stopwatch clock;
    model.encode(ids, {});
    synchronize_device(where);
    encoder_seconds = std::min(encoder_seconds, clock.seconds());
  }
  nlohmann::ordered_json out;
  out["input_length"] = o.input_length;
  out["encoder_batch"] = o.encoder_batch;
  out["encoder_tokens_per_s"] = static_cast<double>(o.encoder_batch * o.input_length) / encoder_seconds;
  if (progress) {
    char line[128];
    std::snprintf(line, sizeof(line), "encoder: %.1f tokens/s", out["encoder_tokens_per_s"].get<double>());
    progress(line);
  }

  // Greedy decoding, exactly new_tokens per input.
  GenerationOptions g;
  g.max_new_tokens = g.min_new_tokens = o.new_tokens;
  auto decode = nlohmann::ordered_json::array();
  for (int64_t batch : o.batches) {
    const auto inputs = random_inputs(batch, o.input_length, config.vocab_size, 2 + static_cast<uint64_t>(batch));
    GenerationOptions warm = g;
    warm.max_new_tokens = warm.min_new_tokens = std::min<int64_t>(4, o.new_tokens);
    generate(model, inputs, warm, device);
    double best = 1e30;
    for (int r = 0; r < o.repeats; ++r) {
      Stopwatch clock;
      generate(model, inputs, g, device);
      synchronize_device(where);
      best = std::min(best, clock.seconds());
    }
    nlohmann::ordered_json row;
    row["batch"] = batch;
    row["new_tokens"] = o.new_tokens;
    row["seconds"] = best;
    row["tokens_per_s"] = static_cast<double>(batch * o.new_tokens) / best;
    row["ms_per_step"] = 1000.0 * best / static_cast<double>(o.new_tokens);
    if (progress) {
      char line[128];
      std::snprintf(line, sizeof(line), "decode batch %lld: %.1f tokens/s (%.2f ms per step)",
                    static_cast<long long>(batch), row["tokens_per_s"].get<double>(), row["ms_per_step"].get<double>());
      progress(line);
    }
    decode.push_back(row);
  }
  out["decode"] = decode;
  if (device.is_cuda()) {
    const auto stats = c10::getDeviceAllocator(c10::DeviceType::CUDA)->getDeviceStats(cuda_index(device));
    out["peak_memory_bytes"] =
        stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
    out["peak_memory_kind"] = "cuda allocated";
  } else {
    out["peak_memory_bytes"] = peak_rss_bytes();
    out["peak_memory_kind"] = "process peak RSS";
  }
  return out;
}

}  // namespace openba

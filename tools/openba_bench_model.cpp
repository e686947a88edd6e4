// openba-bench-model: the measured speed of a checkpoint on the machine it
// runs on, the figure to put beside a compression's parameter ratio:
//
//   encoder tokens/s    the encoder over --encoder-batch inputs of
//                       --input-length random ids (the best of --repeats)
//   decode tokens/s     greedy generation (runtime/generation.h, the key/value
//                       cache) of exactly --new-tokens tokens per input (</s>
//                       forbidden until then) at each --batches size, new
//                       tokens / the generation's wall time (its one encoder
//                       pass included), the best of --repeats
//   peak memory         the process' peak RSS on CPU; the caching
//                       allocator's peak allocated bytes on CUDA
//
// Prints one JSON object (and a table on stderr unless --quiet). Random ids
// from a fixed seed: the same work on every model of one vocabulary.
#include <CLI/CLI.hpp>
#include <c10/core/CachingDeviceAllocator.h>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <torch/torch.h>

#include "ops/autocast.h"
#include "ops/gemm_yardstick.h"
#include "runtime/checkpoint.h"
#include "runtime/generation.h"
#include "runtime/model_io.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "util/error.h"
#include "util/resources.h"

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

std::vector<int64_t> parse_sizes(const std::string& text) {
  std::vector<int64_t> sizes;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || value < 1) {
      throw openba::Error("--batches: '" + item + "' is not a positive batch size (expected e.g. 1,8,32)");
    }
    sizes.push_back(value);
    begin = end + 1;
  }
  return sizes;
}

}  // namespace

int main(int argc, char** argv) {
  return openba::run_torch_tool("openba-bench-model", [&] {
    CLI::App app{"Measured speed of a checkpoint: encoder tokens/s, greedy decode tokens/s per batch, peak memory."};
    std::string model_dir, device_name = "cpu", batches_text = "1,8,32", precision = "fp32";
    int64_t new_tokens = 128, input_length = 128, encoder_batch = 8;
    int repeats = 2, threads = 0;
    bool quiet = false;
    app.add_option("--model", model_dir, "checkpoint directory")->required();
    app.add_option("--batches", batches_text, "greedy decode batch sizes (default 1,8,32)");
    app.add_option("--new-tokens", new_tokens, "tokens generated per input (default 128)")->check(CLI::PositiveNumber);
    app.add_option("--input-length", input_length, "encoder ids per input (default 128)")->check(CLI::PositiveNumber);
    app.add_option("--encoder-batch", encoder_batch, "inputs per encoder pass (default 8)")->check(CLI::PositiveNumber);
    app.add_option("--repeats", repeats, "timed runs of each measurement; the best counts (default 2)")
        ->check(CLI::PositiveNumber);
    app.add_option("--device", device_name, "cpu or cuda[:N] (default cpu)");
    app.add_option("--precision", precision, "fp32 (default), or bf16: CUDA autocast over fp32 weights")
        ->check(CLI::IsMember({"fp32", "bf16"}));
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    app.add_flag("--quiet", quiet, "no table on stderr");
    openba::parse_command_line(app, argc, argv);
    openba::configure_threads(threads);
    const auto batches = parse_sizes(batches_text);
    const torch::Device device(device_name);
    if (precision == "bf16" && !device.is_cuda()) {
      throw openba::Error("--precision bf16 needs --device cuda (bf16 autocast runs on CUDA; CPU computes in fp32)");
    }
    openba::AutocastScope autocast(openba::training_autocast(precision == "bf16"));

    const openba::Checkpoint checkpoint = openba::Checkpoint::open(model_dir);
    openba::Seq2SeqModel model = openba::load_model(checkpoint, device);
    model->eval();
    const auto& config = model->config;
    torch::NoGradGuard no_grad;
    if (device.is_cuda()) c10::getDeviceAllocator(c10::DeviceType::CUDA)->resetPeakStats(device.index() < 0 ? 0 : device.index());

    // The encoder.
    const auto enc_inputs = random_inputs(encoder_batch, input_length, config.vocab_size, 1);
    std::vector<int64_t> flat;
    for (const auto& ids : enc_inputs) flat.insert(flat.end(), ids.begin(), ids.end());
    const auto ids = torch::tensor(flat, torch::kLong).view({encoder_batch, input_length}).to(device);
    model->encode(ids, {});  // warm-up
    openba::synchronize_device(device_name);
    double encoder_seconds = 1e30;
    for (int r = 0; r < repeats; ++r) {
      openba::Stopwatch clock;
      model->encode(ids, {});
      openba::synchronize_device(device_name);
      encoder_seconds = std::min(encoder_seconds, clock.seconds());
    }
    nlohmann::ordered_json out;
    out["model"] = model_dir;
    out["family"] = openba::model_family_name(config.family);
    out["device"] = device_name;
    out["precision"] = precision;
    out["threads"] = threads;
    out["input_length"] = input_length;
    out["encoder_tokens_per_s"] = static_cast<double>(encoder_batch * input_length) / encoder_seconds;

    // Greedy decode at each batch size, exactly new_tokens per input.
    openba::GenerationOptions o;
    o.max_new_tokens = new_tokens;
    o.min_new_tokens = new_tokens;
    nlohmann::ordered_json decode = nlohmann::ordered_json::array();
    for (int64_t batch : batches) {
      const auto inputs = random_inputs(batch, input_length, config.vocab_size, 2 + static_cast<uint64_t>(batch));
      openba::GenerationOptions warm = o;
      warm.max_new_tokens = warm.min_new_tokens = std::min<int64_t>(4, new_tokens);
      openba::generate(*model, inputs, warm, device);
      double best = 1e30;
      for (int r = 0; r < repeats; ++r) {
        openba::Stopwatch clock;
        openba::generate(*model, inputs, o, device);
        openba::synchronize_device(device_name);
        best = std::min(best, clock.seconds());
      }
      nlohmann::ordered_json row;
      row["batch"] = batch;
      row["new_tokens"] = new_tokens;
      row["seconds"] = best;
      row["tokens_per_s"] = static_cast<double>(batch * new_tokens) / best;
      row["ms_per_step"] = 1000.0 * best / static_cast<double>(new_tokens);
      decode.push_back(row);
      if (!quiet) {
        std::fprintf(stderr, "openba-bench-model: batch %3lld: %9.1f tokens/s (%.1f ms per step)\n",
                     static_cast<long long>(batch), row["tokens_per_s"].get<double>(), row["ms_per_step"].get<double>());
      }
    }
    out["decode"] = decode;
    if (device.is_cuda()) {
      const auto stats = c10::getDeviceAllocator(c10::DeviceType::CUDA)->getDeviceStats(device.index() < 0 ? 0 : device.index());
      out["peak_memory_bytes"] = stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
      out["peak_memory_kind"] = "cuda allocated";
    } else {
      out["peak_memory_bytes"] = openba::peak_rss_bytes();
      out["peak_memory_kind"] = "process peak RSS";
    }
    if (!quiet) {
      std::fprintf(stderr, "openba-bench-model: encoder %.1f tokens/s; peak memory %.1f MiB\n",
                   out["encoder_tokens_per_s"].get<double>(),
                   static_cast<double>(out["peak_memory_bytes"].get<uint64_t>()) / (1 << 20));
    }
    std::printf("%s\n", out.dump().c_str());
    return 0;
  });
}

// bench_train: training throughput (forward, backward, AdamW step) of the
// openba-pretrain code path on fixed-size batches, in tokens/s and as a
// fraction of the same process's GEMM FLOP/s (training FLOPs = 3 x forward,
// counted as in the reference): on CPU a 4096^3 fp32 GEMM; on CUDA
// (--device cuda) an 8192^3 bf16 GEMM, with the forward under bf16 autocast
// and fp32 master weights as openba-pretrain runs it, and MFU against
// --peak-tflops (default 989, H100/H200 dense bf16), peak GPU memory.
// --modes plain,checkpointing measures both in one process (one model init).
// With --distill a teacher (the
// --teacher-config shape, default the student's, other weights) runs
// forward on every batch and the loss gains the distillation term, as
// openba-pretrain's distill: section does; the teacher's forward is timed
// apart, giving its share of the step. Prints one JSON line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <sstream>
#if __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define OPENBA_HAVE_CUDA_ALLOCATOR_STATS 1
#endif
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "ops/autocast.h"
#include "arch/openba/config.h"
#include "ops/cpu_runtime.h"
#include "runtime/evaluation.h"
#include "arch/openba/flops.h"
#include "ops/blas.h"
#include "ops/gemm_yardstick.h"
#include "arch/openba/init.h"
#include "arch/openba/openba_model.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "train/adamw.h"
#include "train/distillation.h"
#include "train/ul2_batch.h"
#include "util/error.h"
#include "util/resources.h"

namespace {

// Peak bytes the CUDA caching allocator handed out since the last reset (-1 without CUDA).
int64_t cuda_peak_bytes(const torch::Device& device, bool reset) {
#ifdef OPENBA_HAVE_CUDA_ALLOCATOR_STATS
  if (!device.is_cuda()) return -1;
  const auto index = device.has_index() ? device.index() : 0;
  auto* allocator = c10::cuda::CUDACachingAllocator::get();
  const auto stats = allocator->getDeviceStats(index);
  const int64_t peak =
      stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  if (reset) allocator->resetPeakStats(index);
  return peak;
#else
  (void)device;
  (void)reset;
  return -1;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  return openba::run_torch_tool("bench_train", [&] {
    CLI::App app{"Training-step throughput against the GEMM rate."};
    std::string config_path;
    int64_t batch = 8, enc = 256, dec = 128;
    int iters = 3, threads = 0;
    bool checkpointing = false, distill = false;
    std::string teacher_config_path;
    int64_t top_k = 0;
    std::string device_name = "cpu", modes = "";
    double peak_tflops = 989.0;
    app.add_option("--config", config_path, "model config: YAML, or a config.json (OpenBA, T5 family)")->required();
    app.add_option("--batch", batch, "sequences per step");
    app.add_option("--enc", enc, "encoder tokens per sequence");
    app.add_option("--dec", dec, "decoder tokens per sequence");
    app.add_option("--iters", iters, "timed steps");
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    app.add_flag("--activation-checkpointing", checkpointing, "recompute blocks in backward");
    app.add_flag("--distill", distill, "add a teacher forward and the distillation term (alpha 0.5, T 1)");
    app.add_option("--teacher-config", teacher_config_path, "the teacher's model config (default: --config)");
    app.add_option("--top-k", top_k, "teacher logits kept per token (0 = all)");
    app.add_option("--device", device_name, "cpu or cuda[:N] (default cpu)");
    app.add_option("--modes", modes,
                   "comma-separated modes measured in this process: plain, checkpointing (default: the "
                   "--activation-checkpointing flag's one)");
    app.add_option("--peak-tflops", peak_tflops, "CUDA: the accelerator's dense bf16 peak for MFU (default 989)");
    openba::parse_command_line(app, argc, argv);
    openba::configure_threads(threads);

    const torch::Device device(device_name);
    if (device.is_cuda() && !torch::cuda::is_available()) throw openba::Error("--device " + device_name + ": no CUDA device");
    const bool cuda = device.is_cuda();
    std::vector<bool> mode_list;
    std::vector<std::string> mode_names;
    {
      std::stringstream list(modes.empty() ? (checkpointing ? "checkpointing" : "plain") : modes);
      for (std::string m; std::getline(list, m, ',');) mode_names.push_back(m);
    }
    for (const auto& m : mode_names) {
      if (m != "plain" && m != "checkpointing") throw openba::Error("--modes: '" + m + "' is not plain or checkpointing");
      mode_list.push_back(m == "checkpointing");
    }
    const double gemm = cuda ? openba::measure_gemm_flops_on(device_name, "bf16", 8192, 5) : openba::measure_gemm_flops();
    const openba::ModelConfig config = openba::load_model_config_file(config_path);
    openba::Stopwatch init_clock;
    openba::Seq2SeqModel model = openba::make_model(config);
    if (cuda) {
      // Values do not change the arithmetic: draw them on the GPU (the
      // checkpoint initializer's per-tensor CPU streams take minutes at 3.4B).
      model->to(device);
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) {
        if (p.dim() >= 2) p.normal_(0.0, 0.02);
      }
    } else {
      openba::initialize_weights(*model, 0);
    }
    const double init_seconds = init_clock.seconds();
    model->train();
    const auto named = openba::unique_named_parameters(*model);
    openba::AdamW adam(openba::AdamW::default_groups(named), {});
    const openba::AutocastState precision = openba::training_autocast(cuda);

    openba::Seq2SeqModel teacher;
    if (distill) {
      teacher = openba::make_model(
          openba::load_model_config_file(teacher_config_path.empty() ? config_path : teacher_config_path));
      openba::initialize_weights(*teacher, 1);
      teacher->to(device);
      teacher->eval();
    }
    double teacher_seconds = 0;

    torch::manual_seed(0);
    std::vector<openba::Example> examples(batch);
    for (auto& e : examples) {
      auto in = torch::randint(3, config.vocab_size, {enc}, torch::kLong);
      auto out = torch::randint(3, config.vocab_size, {dec}, torch::kLong);
      e.input_ids.assign(in.data_ptr<int64_t>(), in.data_ptr<int64_t>() + enc);
      e.labels.assign(out.data_ptr<int64_t>(), out.data_ptr<int64_t>() + dec);
    }
    std::vector<const openba::Example*> members;
    for (const auto& e : examples) members.push_back(&e);
    const auto data = openba::collate(members, config, device);
    auto step = [&] {
      for (const auto& [name, p] : named) {
        if (p.grad().defined()) p.mutable_grad().zero_();
      }
      openba::TeacherTargets targets;
      openba::DistillationInputs kd;
      if (distill) {
        // Teacher::targets without the checks of a checkpoint directory.
        openba::Stopwatch teacher_clock;
        {
          torch::NoGradGuard no_grad;
          openba::AutocastScope autocast(precision);
          const auto logits = teacher->forward(data);
          targets = openba::teacher_targets_from_logits(logits.reshape({batch * dec, config.vocab_size}),
                                                        data.labels.reshape({batch * dec}), 1.0, top_k);
        }
        if (cuda) openba::synchronize_device(device_name);
        teacher_seconds += teacher_clock.seconds();
        kd = {&targets, 0.5, 1.0};
      }
      openba::LossParts parts;
      {
        openba::AutocastScope autocast(precision);
        parts = openba::seq2seq_loss(*model, data, distill ? &kd : nullptr);
      }
      (parts.objective / static_cast<double>(batch * dec)).backward();
      adam.step(1e-4);
      openba::synchronize_device(device_name);
    };
    for (const bool recompute : mode_list) {
      openba::set_activation_checkpointing(*model, recompute);
      cuda_peak_bytes(device, /*reset=*/true);
      double best = 1e30, total = 0;
      try {
        step();  // warm-up
        teacher_seconds = 0;
        for (int i = 0; i < iters; ++i) {
          openba::Stopwatch clock;
          step();
          const double s = clock.seconds();
          best = std::min(best, s);
          total += s;
        }
      } catch (const c10::OutOfMemoryError& e) {
        // One mode too big for the device: say so and measure the next one.
        nlohmann::ordered_json out;
        out["config"] = config_path;
        out["device"] = device_name;
        out["batch"] = batch;
        out["activation_checkpointing"] = recompute;
        out["error"] = std::string("out of memory: ") + e.what_without_backtrace();
        std::printf("%s\n", out.dump().c_str());
        std::fflush(stdout);
        for (const auto& item : named) item.second.mutable_grad() = torch::Tensor();
        continue;
      }
      const double flops = 3.0 * openba::forward_flops_per_sequence(config, enc, dec) * batch;
      const double mean = total / iters;
      nlohmann::ordered_json out;
      out["impl"] = std::string("openba-pretrain (C++") + (cuda ? ", CUDA bf16 autocast" : "") + ")" +
                    (recompute ? " + checkpointing" : "");
      out["config"] = config_path;
      out["device"] = device_name;
      out["threads"] = openba::cpu_threads();
      out["batch"] = batch;
      out["encoder_tokens"] = enc;
      out["decoder_tokens"] = dec;
      int64_t parameters = 0;
      for (const auto& item : named) parameters += item.second.numel();
      out["parameters"] = parameters;
      out["init_seconds"] = init_seconds;
      out["activation_checkpointing"] = recompute;
      out["distill"] = distill;
      if (distill) {
        out["teacher_config"] = teacher_config_path.empty() ? config_path : teacher_config_path;
        out["top_k"] = top_k;
        out["teacher_seconds_per_step"] = teacher_seconds / iters;
        out["teacher_share"] = teacher_seconds / total;
      }
      out["gemm_gflops"] = gemm / 1e9;
      out["gemm"] = cuda ? "8192^3 bf16 (cuBLAS)" : "4096^3 f32 (" + openba::direct_blas_description() + ")";
      out["seconds_per_step"] = mean;
      out["tokens_per_s"] = static_cast<double>(batch * (enc + dec)) / mean;
      out["model_gflops"] = flops / mean / 1e9;
      out["fraction_of_gemm"] = flops / mean / gemm;
      out["best_fraction_of_gemm"] = flops / best / gemm;
      if (cuda) {
        out["peak_tflops"] = peak_tflops;
        out["mfu"] = flops / mean / (peak_tflops * 1e12);
        out["peak_gpu_memory_bytes"] = cuda_peak_bytes(device, false);
      }
      out["peak_rss_bytes"] = openba::peak_rss_bytes();
      std::printf("%s\n", out.dump().c_str());
      std::fflush(stdout);
    }
    return 0;
  });
}

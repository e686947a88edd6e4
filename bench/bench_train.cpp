// bench_train: training throughput (forward, backward, AdamW step) of the
// openba-pretrain code path on fixed-size batches, in tokens/s and as a
// fraction of the same process's 4096^3 fp32 GEMM FLOP/s (training FLOPs =
// 3 x forward, counted as in the reference). With --distill a teacher (the
// --teacher-config shape, default the student's, other weights) runs
// forward on every batch and the loss gains the distillation term, as
// openba-pretrain's distill: section does; the teacher's forward is timed
// apart, giving its share of the step. Prints one JSON line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/config.h"
#include "model/cpu_runtime.h"
#include "model/evaluation.h"
#include "model/flops.h"
#include "model/gemm_yardstick.h"
#include "model/init.h"
#include "model/openba_model.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "train/adamw.h"
#include "train/distillation.h"
#include "train/ul2_batch.h"
#include "util/resources.h"

int main(int argc, char** argv) {
  return openba::run_torch_tool("bench_train", [&] {
    CLI::App app{"Training-step throughput against the GEMM rate."};
    std::string config_path;
    int64_t batch = 8, enc = 256, dec = 128;
    int iters = 3, threads = 0;
    bool checkpointing = false, distill = false;
    std::string teacher_config_path;
    int64_t top_k = 0;
    app.add_option("--config", config_path, "model config YAML")->required();
    app.add_option("--batch", batch, "sequences per step");
    app.add_option("--enc", enc, "encoder tokens per sequence");
    app.add_option("--dec", dec, "decoder tokens per sequence");
    app.add_option("--iters", iters, "timed steps");
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    app.add_flag("--activation-checkpointing", checkpointing, "recompute blocks in backward");
    app.add_flag("--distill", distill, "add a teacher forward and the distillation term (alpha 0.5, T 1)");
    app.add_option("--teacher-config", teacher_config_path, "the teacher's model config (default: --config)");
    app.add_option("--top-k", top_k, "teacher logits kept per token (0 = all)");
    openba::parse_command_line(app, argc, argv);
    openba::configure_threads(threads);

    const double gemm = openba::measure_gemm_flops();
    const openba::ModelConfig config = openba::load_model_config_yaml(config_path);
    openba::OpenBAModel model(config);
    openba::initialize_weights(*model, 0);
    model->train();
    openba::set_activation_checkpointing(*model, checkpointing);
    const auto named = openba::unique_named_parameters(*model);
    openba::AdamW adam(openba::AdamW::default_groups(named), {});

    openba::OpenBAModel teacher{nullptr};
    if (distill) {
      teacher = openba::OpenBAModel(
          openba::load_model_config_yaml(teacher_config_path.empty() ? config_path : teacher_config_path));
      openba::initialize_weights(*teacher, 1);
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
    const auto data = openba::collate(members, config, torch::kCPU);
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
          const auto logits = teacher->forward(data);
          targets = openba::teacher_targets_from_logits(logits.reshape({batch * dec, config.vocab_size}),
                                                        data.labels.reshape({batch * dec}), 1.0, top_k);
        }
        teacher_seconds += teacher_clock.seconds();
        kd = {&targets, 0.5, 1.0};
      }
      auto parts = openba::seq2seq_loss(*model, data, distill ? &kd : nullptr);
      (parts.objective / static_cast<double>(batch * dec)).backward();
      adam.step(1e-4);
    };
    step();  // warm-up
    teacher_seconds = 0;
    double best = 1e30, total = 0;
    for (int i = 0; i < iters; ++i) {
      openba::Stopwatch clock;
      step();
      const double s = clock.seconds();
      best = std::min(best, s);
      total += s;
    }
    const double flops = 3.0 * openba::forward_flops_per_sequence(config, enc, dec) * batch;
    const double mean = total / iters;
    nlohmann::ordered_json out;
    out["impl"] = "openba-pretrain (C++)";
    out["config"] = config_path;
    out["threads"] = openba::cpu_threads();
    out["activation_checkpointing"] = checkpointing;
    out["distill"] = distill;
    if (distill) {
      out["teacher_config"] = teacher_config_path.empty() ? config_path : teacher_config_path;
      out["top_k"] = top_k;
      out["teacher_seconds_per_step"] = teacher_seconds / iters;
      out["teacher_share"] = teacher_seconds / total;
    }
    out["gemm_gflops"] = gemm / 1e9;
    out["seconds_per_step"] = mean;
    out["tokens_per_s"] = static_cast<double>(batch * (enc + dec)) / mean;
    out["model_gflops"] = flops / mean / 1e9;
    out["fraction_of_gemm"] = flops / mean / gemm;
    out["best_fraction_of_gemm"] = flops / best / gemm;
    out["peak_rss_bytes"] = openba::peak_rss_bytes();
    std::printf("%s\n", out.dump().c_str());
    return 0;
  });
}

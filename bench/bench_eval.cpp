// bench_eval: forward throughput of the openba-eval code path (encode,
// decode, chunked lm_head + loss) on fixed-size batches, in tokens/s and as
// a fraction of the same process's 4096^3 fp32 GEMM FLOP/s. Prints one JSON
// line; bench/run_eval_bench.py runs it next to the PyTorch-eager peer.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "arch/openba/config.h"
#include "ops/blas.h"
#include "ops/cpu_runtime.h"
#include "runtime/evaluation.h"
#include "arch/openba/flops.h"
#include "ops/gemm_yardstick.h"
#include "arch/openba/init.h"
#include "arch/openba/openba_model.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "util/resources.h"

int main(int argc, char** argv) {
  return openba::run_torch_tool("bench_eval", [&] {
    CLI::App app{"Forward (eval) throughput against the GEMM rate."};
    std::string config_path;
    int64_t batch = 8, enc = 256, dec = 128;
    int iters = 5, threads = 0;
    app.add_option("--config", config_path, "model config: YAML, or a config.json (OpenBA, T5 family)")->required();
    app.add_option("--batch", batch, "sequences per batch");
    app.add_option("--enc", enc, "encoder tokens per sequence");
    app.add_option("--dec", dec, "decoder tokens per sequence");
    app.add_option("--iters", iters, "timed iterations");
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    openba::parse_command_line(app, argc, argv);
    openba::configure_threads(threads);

    const double gemm = openba::measure_gemm_flops();
    const openba::ModelConfig config = openba::load_model_config_file(config_path);
    openba::Seq2SeqModel model = openba::make_model(config);
    openba::initialize_weights(*model, 0);
    model->eval();

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
    const auto batch_data = openba::collate(members, config, torch::kCPU);
    openba::example_losses(*model, batch_data);  // warm-up

    double best = 1e30, total = 0;
    for (int i = 0; i < iters; ++i) {
      openba::Stopwatch clock;
      openba::example_losses(*model, batch_data);
      const double s = clock.seconds();
      best = std::min(best, s);
      total += s;
    }
    const double flops = openba::forward_flops_per_sequence(config, enc, dec) * batch;
    const double mean = total / iters;
    nlohmann::ordered_json out;
    out["impl"] = "openba-eval (C++)";
    out["config"] = config_path;
    out["threads"] = openba::cpu_threads();
    out["batch"] = batch;
    out["enc"] = enc;
    out["dec"] = dec;
    out["gemm_gflops"] = gemm / 1e9;
    out["gemm"] = "4096^3 f32 (" + openba::direct_blas_description() + ")";
    out["seconds_per_batch"] = mean;
    out["tokens_per_s"] = static_cast<double>(batch * (enc + dec)) / mean;
    out["decoder_tokens_per_s"] = static_cast<double>(batch * dec) / mean;
    out["model_gflops"] = flops / mean / 1e9;
    out["fraction_of_gemm"] = flops / mean / gemm;
    out["best_fraction_of_gemm"] = flops / best / gemm;
    std::printf("%s\n", out.dump().c_str());
    return 0;
  });
}

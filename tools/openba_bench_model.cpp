// openba-bench-model: the measured speed of a checkpoint on this machine
// (runtime/model_speed.h): encoder tokens/s, greedy decode tokens/s at each
// batch size, peak memory. Prints one JSON object; a line per measurement
// goes to stderr unless --quiet.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "ops/autocast.h"
#include "runtime/checkpoint.h"
#include "runtime/model_io.h"
#include "runtime/model_speed.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "util/error.h"

int main(int argc, char** argv) {
  return openba::run_torch_tool("openba-bench-model", [&] {
    CLI::App app{"Measured speed of a checkpoint: encoder tokens/s, greedy decode tokens/s per batch, peak memory."};
    std::string model_dir, device_name = "cpu", batches_text = "1,8,32", precision = "fp32";
    openba::SpeedOptions o;
    int threads = 0;
    bool quiet = false;
    app.add_option("--model", model_dir, "checkpoint directory")->required();
    app.add_option("--batches", batches_text, "greedy decode batch sizes (default 1,8,32)");
    app.add_option("--new-tokens", o.new_tokens, "tokens generated per input (default 128)");
    app.add_option("--input-length", o.input_length, "encoder ids per input (default 128)");
    app.add_option("--encoder-batch", o.encoder_batch, "inputs per encoder pass (default 8)");
    app.add_option("--repeats", o.repeats, "timed runs of each measurement; the best counts (default 2)");
    app.add_option("--device", device_name, "cpu or cuda[:N] (default cpu)");
    openba::add_precision_option(app, precision);
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    app.add_flag("--quiet", quiet, "no progress lines on stderr");
    openba::parse_command_line(app, argc, argv);
    openba::configure_threads(threads);
    o.batches = openba::parse_int_list(batches_text, "--batches", 1);
    openba::check_speed_options(o);
    const torch::Device device(device_name);
    openba::AutocastScope autocast(openba::precision_autocast(precision, device_name));
    const openba::Checkpoint checkpoint = openba::Checkpoint::open(model_dir);
    openba::Seq2SeqModel model = openba::load_model(checkpoint, device);
    model->eval();
    nlohmann::ordered_json out;
    out["model"] = model_dir;
    out["family"] = openba::model_family_name(model->config.family);
    out["device"] = device_name;
    out["precision"] = precision;
    out["threads"] = threads;
    const auto speed = openba::measure_model_speed(*model, device_name, o, [&](const std::string& line) {
      if (!quiet) std::fprintf(stderr, "openba-bench-model: %s\n", line.c_str());
    });
    for (const auto& [key, value] : speed.items()) out[key] = value;
    std::printf("%s\n", out.dump().c_str());
    return 0;
  });
}

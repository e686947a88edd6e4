// openba-generate: generation from a checkpoint (runtime/generation.h) on a
// JSONL file of inputs {"input_ids": [...]}. Prints one JSON line per input,
// in input order: {"output_ids": [...], "tokens": n, "finished": bool} (the
// ids after the decoder prefix, up to and including </s>; "finished" when it
// came before --max-new-tokens ran out), and "score" under beam search.
// Inputs are batched by similar length; the rate goes to stderr.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <torch/torch.h>

#include "ops/autocast.h"
#include "runtime/checkpoint.h"
#include "runtime/generation.h"
#include "runtime/jsonl_input.h"
#include "runtime/model_io.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "util/error.h"
#include "util/progress.h"

namespace {

std::vector<std::vector<int64_t>> read_inputs(const std::string& path, int64_t vocab_size) {
  std::ifstream in(path);
  if (!in) throw openba::Error(path + ": cannot open");
  std::vector<std::vector<int64_t>> inputs;
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_number);
    const auto root = openba::parse_jsonl_object(line, where, "an object {\"input_ids\": [...]}");
    if (root.contains("text") && !root.contains("input_ids")) {
      throw openba::Error(where + ": text inputs are not read yet: give \"input_ids\" (the model directory's "
                          "tokenizer, e.g. openba-tokenize or transformers' tokenizer, makes them)");
    }
    inputs.push_back(openba::read_token_ids(openba::required_field(root, "input_ids", where), "input_ids",
                                            vocab_size, /*allow_ignore=*/false, where));
  }
  if (in.bad()) throw openba::Error(path + ": read error");
  if (inputs.empty()) throw openba::Error(path + ": no inputs");
  return inputs;
}

}  // namespace

int main(int argc, char** argv) {
  return openba::run_torch_tool("openba-generate", [&] {
    CLI::App app{"Generation from a checkpoint: greedy, beam search or sampling, with a key/value cache."};
    std::string model_dir, input_path, device_name = "cpu", strategy = "greedy", early_stopping = "false";
    std::string decoder_prefix, precision = "fp32";
    size_t batch_size = 8;
    int threads = 0;
    bool quiet = false, no_cache = false;
    openba::GenerationOptions o;
    app.add_option("--model", model_dir, "checkpoint directory")->required();
    app.add_option("--input", input_path, "JSONL: {\"input_ids\": [...]} per line")->required();
    app.add_option("--max-new-tokens", o.max_new_tokens, "most tokens generated per input (default 128)");
    app.add_option("--min-new-tokens", o.min_new_tokens, "no </s> before this many new tokens (default 0)");
    app.add_option("--strategy", strategy, "greedy (default), beam or sample")
        ->check(CLI::IsMember({"greedy", "beam", "sample"}));
    app.add_option("--beams", o.beams, "beam search: beams per input (default 4)");
    app.add_option("--length-penalty", o.length_penalty,
                   "beam search: finished scores are sum log p / length^this (default 1.0, as transformers)");
    app.add_option("--early-stopping", early_stopping,
                   "beam search: false (default: stop when no running beam can win, as transformers), true "
                   "(when K are finished) or never")
        ->check(CLI::IsMember({"false", "true", "never"}));
    app.add_option("--temperature", o.temperature, "sampling: logits are divided by this (default 1.0)");
    app.add_option("--top-p", o.top_p, "sampling: the smallest set of tokens reaching this probability (default 1.0)");
    app.add_option("--top-k", o.top_k, "sampling: only the k most likely tokens (default 0: off)");
    app.add_option("--seed", o.seed, "sampling: each input draws from a generator seeded by (seed, its index)");
    app.add_option("--decoder-prefix", decoder_prefix,
                   "the decoder's first ids, comma-separated (default: decoder_start_token_id; OpenBA's "
                   "templates: 0,<extra_id_0>'s id)");
    app.add_flag("--no-cache", no_cache, "rerun the decoder over the whole prefix every step (for checking)");
    app.add_option("--batch-size", batch_size, "inputs per batch (default 8)")->check(CLI::PositiveNumber);
    app.add_option("--device", device_name, "cpu or cuda[:N] (default cpu)");
    openba::add_precision_option(app, precision);
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    app.add_flag("--quiet", quiet, "no progress output");
    openba::parse_command_line(app, argc, argv);
    openba::configure_threads(threads);

    o.strategy = strategy == "beam"     ? openba::DecodeStrategy::kBeam
                 : strategy == "sample" ? openba::DecodeStrategy::kSample
                                        : openba::DecodeStrategy::kGreedy;
    o.early_stopping = early_stopping == "true"    ? openba::BeamEarlyStopping::kWhenFull
                       : early_stopping == "never" ? openba::BeamEarlyStopping::kNever
                                                   : openba::BeamEarlyStopping::kHeuristic;
    o.use_cache = !no_cache;
    if (!decoder_prefix.empty()) o.decoder_prefix = openba::parse_int_list(decoder_prefix, "--decoder-prefix", 0);
    openba::check_generation_options(o);
    const torch::Device device(device_name);
    const openba::AutocastState autocast_state = openba::precision_autocast(precision, device_name);

    const openba::Checkpoint checkpoint = openba::Checkpoint::open(model_dir);
    const auto inputs = read_inputs(input_path, checkpoint.config().vocab_size);
    openba::Seq2SeqModel model = openba::load_model(checkpoint, device);
    model->eval();

    // Batches of similar length (less padding); outputs in input order.
    std::vector<size_t> order(inputs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return inputs[a].size() < inputs[b].size(); });
    std::vector<openba::Generated> outputs(inputs.size());
    openba::Progress progress("generate", inputs.size(), "inputs", !quiet);
    const auto start = std::chrono::steady_clock::now();
    int64_t new_tokens = 0;
    for (size_t begin = 0; begin < order.size(); begin += batch_size) {
      const size_t end = std::min(order.size(), begin + batch_size);
      // Each input samples from its own generator, seeded by its index in
      // the file, whatever batch it falls in.
      std::vector<std::vector<int64_t>> batch;
      std::vector<uint64_t> indices;
      for (size_t i = begin; i < end; ++i) {
        batch.push_back(inputs[order[i]]);
        indices.push_back(order[i]);
      }
      std::vector<openba::Generated> generated;
      {
        openba::AutocastScope autocast(autocast_state);
        generated = openba::generate(*model, batch, o, device, indices);
      }
      for (size_t i = begin; i < end; ++i) {
        new_tokens += static_cast<int64_t>(generated[i - begin].ids.size());
        outputs[order[i]] = std::move(generated[i - begin]);
      }
      progress.advance(end - begin);
    }
    progress.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const auto& g : outputs) {
      nlohmann::ordered_json line;
      line["output_ids"] = g.ids;
      line["tokens"] = g.ids.size();
      line["finished"] = g.finished;
      if (o.strategy == openba::DecodeStrategy::kBeam) line["score"] = g.score;
      std::printf("%s\n", line.dump().c_str());
    }
    if (!quiet) {
      std::fprintf(stderr, "openba-generate: %zu inputs, %lld new tokens in %.2f s (%.1f tokens/s)\n", inputs.size(),
                   static_cast<long long>(new_tokens), seconds, seconds > 0 ? new_tokens / seconds : 0.0);
    }
    return 0;
  });
}

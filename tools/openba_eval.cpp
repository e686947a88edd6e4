// openba-eval: held-out loss of a checkpoint on a JSONL file of examples
// {"input_ids": [...], "labels": [...]} (labels -100 = ignored). Prints one
// JSON line per example, {"loss": mean NLL over counted tokens, "tokens": n},
// in input order, then a summary line with the token-weighted mean loss and
// perplexity. Examples are batched by similar length to limit padding.
//
// --task FILE instead scores a multiple-choice task (runtime/task_scoring.h):
// lines {"context_ids": [...], "choice_ids": [[...], ...], "answer": k} (and
// optionally "decoder_prefix_ids": the decoder's unscored first ids); one
// JSON line per item {"pred", "pred_mean_token", "scores", "tokens",
// "correct", "correct_mean_token"} in input order, then a summary with the
// accuracy by summed and by per-token mean log-likelihood, their standard
// errors and the chance level.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "ops/autocast.h"
#include "runtime/checkpoint.h"
#include "runtime/evaluation.h"
#include "formats/mapped_file.h"
#include "runtime/model_io.h"
#include "runtime/task_scoring.h"
#include "tools/cli_common.h"
#include "tools/torch_tool.h"
#include "util/error.h"
#include "util/progress.h"

namespace {

// Lines in a file (a memchr scan), for the progress total.
uint64_t count_lines(const std::string& path) {
  auto file = openba::MappedFile::open(path);
  uint64_t lines = 0;
  const uint8_t* p = file->data();
  const uint8_t* end = p + file->size();
  while (p < end) {
    const void* nl = std::memchr(p, '\n', static_cast<size_t>(end - p));
    ++lines;
    if (!nl) break;
    p = static_cast<const uint8_t*>(nl) + 1;
  }
  return lines;
}

std::string json_loss(const openba::ExampleLoss& loss) {
  nlohmann::ordered_json line;
  if (loss.tokens > 0) {
    line["loss"] = loss.mean();
  } else {
    line["loss"] = nullptr;  // nothing to score
  }
  line["tokens"] = loss.tokens;
  return line.dump();
}

int score_task(const std::string& path, openba::Seq2SeqModelImpl& model, const torch::Device& device,
               const openba::AutocastState& autocast_state, size_t batch_size, size_t max_batch_tokens, bool quiet) {
  const auto items = openba::read_task_file(path, model.config.vocab_size);
  size_t choices = 0;
  for (const auto& item : items) choices += item.choice_ids.size();
  openba::Progress progress("task", choices, "choices", !quiet);
  std::vector<openba::ItemScore> scores;
  {
    openba::AutocastScope autocast(autocast_state);
    scores = openba::score_task_items(model, items, device, batch_size, max_batch_tokens,
                                      [&](size_t n) { progress.advance(n); });
  }
  progress.finish();
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& s = scores[i];
    nlohmann::ordered_json out;
    out["pred"] = s.pred_sum;
    out["pred_mean_token"] = s.pred_mean;
    out["scores"] = s.loglik;
    out["tokens"] = s.tokens;
    out["correct"] = s.pred_sum == items[i].answer;
    out["correct_mean_token"] = s.pred_mean == items[i].answer;
    std::printf("%s\n", out.dump().c_str());
  }
  std::printf("%s\n", openba::task_summary(items, scores).dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return openba::run_torch_tool("openba-eval", [&] {
    CLI::App app{"Held-out loss of a checkpoint on JSONL examples, or its accuracy on a multiple-choice task."};
    std::string model_dir, data_path, device_name = "cpu";
    size_t batch_size = 8, max_batch_tokens = 32768, window = 1024;
    int threads = 0;
    bool quiet = false;
    app.add_option("--model", model_dir, "checkpoint directory")->required();
    std::string task_path;
    // Exactly one input: held-out examples or a task.
    auto* inputs = app.add_option_group("input", "--data or --task");
    inputs->add_option("--data", data_path, "JSONL: {\"input_ids\": [...], \"labels\": [...]} per line");
    inputs->add_option(
        "--task", task_path,
        "multiple-choice JSONL: {\"context_ids\": [...], \"choice_ids\": [[...], ...], \"answer\": k} per line");
    inputs->require_option(1);
    app.add_option("--batch-size", batch_size, "examples per batch (default 8)")->check(CLI::PositiveNumber);
    app.add_option("--max-batch-tokens", max_batch_tokens,
                   "padded encoder+decoder tokens per batch (default 32768)")->check(CLI::PositiveNumber);
    app.add_option("--window", window, "examples read ahead and sorted by length (default 1024)")
        ->check(CLI::PositiveNumber);
    app.add_option("--device", device_name, "cpu or cuda[:N] (default cpu)");
    std::string precision = "fp32";
    openba::add_precision_option(app, precision);
    app.add_option("--threads", threads, "CPU threads (default: all cores)");
    app.add_flag("--quiet", quiet, "no progress output");
    openba::parse_command_line(app, argc, argv);
    openba::configure_threads(threads);

    const torch::Device device(device_name);
    const openba::AutocastState autocast_state = openba::precision_autocast(precision, device_name);
    const std::string input_path = task_path.empty() ? data_path : task_path;
    std::ifstream in(input_path);
    if (!in) throw openba::Error(input_path + ": cannot open");
    const openba::Checkpoint checkpoint = openba::Checkpoint::open(model_dir);
    const openba::ModelConfig& config = checkpoint.config();
    openba::Seq2SeqModel model = openba::load_model(checkpoint, device);
    model->eval();
    if (!task_path.empty()) {
      return score_task(task_path, *model, device, autocast_state, batch_size, max_batch_tokens, quiet);
    }

    openba::Progress progress("eval", count_lines(data_path), "examples", !quiet);
    double total_nll = 0;
    int64_t total_tokens = 0, total_examples = 0;
    bool warned_length = false;
    std::string line;
    size_t line_number = 0;
    bool eof = false;
    while (!eof) {
      std::vector<openba::Example> examples;
      while (examples.size() < window) {
        if (!std::getline(in, line)) {
          eof = true;
          break;
        }
        ++line_number;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
        examples.push_back(openba::parse_example_json(
            line, config.vocab_size, data_path + ":" + std::to_string(line_number)));
        const auto& ex = examples.back();
        if (!warned_length && (static_cast<int64_t>(ex.input_ids.size()) > config.max_seq_length ||
                               static_cast<int64_t>(ex.labels.size()) > config.decoder_max_seq_length)) {
          std::fprintf(stderr,
                       "openba-eval: note: %s:%zu is longer than the model's max lengths (%lld/%lld);"
                       " positions extrapolate\n",
                       data_path.c_str(), line_number, (long long)config.max_seq_length,
                       (long long)config.decoder_max_seq_length);
          warned_length = true;
        }
      }
      if (in.bad()) throw openba::Error(data_path + ": read error");
      std::vector<openba::ExampleLoss> losses(examples.size());
      for (const auto& batch_indices : openba::plan_batches(examples, batch_size, max_batch_tokens)) {
        std::vector<const openba::Example*> members;
        for (size_t i : batch_indices) members.push_back(&examples[i]);
        const auto batch = openba::collate(members, config, device);
        std::vector<openba::ExampleLoss> batch_losses;
        {
          openba::AutocastScope autocast(autocast_state);
          batch_losses = openba::example_losses(*model, batch);
        }
        for (size_t k = 0; k < batch_indices.size(); ++k) losses[batch_indices[k]] = batch_losses[k];
        progress.advance(batch_indices.size());
      }
      for (const auto& loss : losses) {
        std::printf("%s\n", json_loss(loss).c_str());
        total_nll += loss.nll_sum;
        total_tokens += loss.tokens;
      }
      total_examples += static_cast<int64_t>(examples.size());
    }
    progress.finish();
    if (total_examples == 0) throw openba::Error(data_path + ": no examples");
    nlohmann::ordered_json summary;
    summary["summary"] = true;
    summary["examples"] = total_examples;
    summary["tokens"] = total_tokens;
    if (total_tokens > 0) {
      const double loss = total_nll / static_cast<double>(total_tokens);
      summary["loss"] = loss;
      summary["perplexity"] = std::exp(loss);
    } else {
      summary["loss"] = nullptr;
      summary["perplexity"] = nullptr;
    }
    std::printf("%s\n", summary.dump().c_str());
    return 0;
  });
}

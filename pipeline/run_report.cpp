#include "pipeline/run_report.h"

#include <filesystem>

#include "compress/report.h"
#include "runtime/checkpoint.h"
#include "report/report_html.h"
#include "pipeline/scratch_baseline.h"
#include "util/fs.h"

namespace openba {
namespace fs = std::filesystem;
namespace {

void add_shape(nlohmann::ordered_json& e, const ModelConfig& c, bool tied) {
  e["architecture"] = c.summary();
  e["encoder_layers"] = c.encoder_layers;
  e["decoder_layers"] = c.decoder_layers;
  e["d_model"] = c.d_model;
  e["num_heads"] = c.num_heads;
  e["ffn_hidden"] = c.ffn_hidden;
  e["vocab_size"] = c.vocab_size;
  e["parameters"] = parameters_json(c, tied)["total"];
}

nlohmann::ordered_json loss_of(const nlohmann::ordered_json& h) {
  return h.is_object() && h.contains("loss") ? h["loss"] : nlohmann::ordered_json();
}

}  // namespace

nlohmann::ordered_json done_step_entry(const PipelineStep& step, const std::string& input, const StepOutcome& outcome,
                                       double seconds, const std::string& run_dir, int64_t input_parameters) {
  nlohmann::ordered_json e;
  e["index"] = step.index;
  e["id"] = step.id;
  e["name"] = step.name;
  e["kind"] = step_kind_name(step.kind);
  e["status"] = "done";
  e["seconds"] = seconds;
  e["input"] = input;
  e["output"] = outcome.output;
  const Checkpoint out = Checkpoint::open(outcome.output);
  add_shape(e, out.config(), out.lm_head_is_tied());
  const double params = e["parameters"].get<double>();
  e["compression_ratio"] = static_cast<double>(input_parameters) / params;
  e["removed_fraction"] = 1.0 - params / static_cast<double>(input_parameters);
  e["heldout_before"] = loss_of(outcome.heldout_before);
  e["heldout_after"] = loss_of(outcome.heldout_after);
  e["heldout_after_by_denoiser"] =
      outcome.heldout_after.is_object() ? outcome.heldout_after["by_denoiser"] : nlohmann::ordered_json::object();
  e["summary"] = outcome.summary;
  e["report"] = path_relative_to(outcome.report, run_dir);
  if (!outcome.baseline.is_null()) {
    nlohmann::ordered_json b = outcome.baseline;
    for (const char* key : {"report", "dir", "metrics"}) {
      if (b.contains(key)) b[key] = path_relative_to(b[key].get<std::string>(), run_dir);
    }
    e["baseline"] = b;
  }
  if (!outcome.train.is_null()) {
    nlohmann::ordered_json t = outcome.train;
    t["metrics"] = path_relative_to(t["metrics"].get<std::string>(), run_dir);
    e["train"] = t;
  }
  return e;
}

nlohmann::ordered_json write_run_report(const PipelineConfig& p, const std::vector<ModelConfig>& shapes,
                                        const RunState& state, const std::string& run_dir,
                                        const nlohmann::ordered_json& heldout) {
  nlohmann::ordered_json r;
  r["format"] = "openba-pipeline-report/1";
  r["pipeline"] = {{"name", p.name}, {"description", p.description}, {"file", p.file}, {"sha256", p.sha256}};
  r["run_dir"] = run_dir;
  const Checkpoint in = Checkpoint::open(p.model);
  const bool tied = in.lm_head_is_tied();
  const int64_t input_parameters = parameters_json(in.config(), tied)["total"].get<int64_t>();
  nlohmann::ordered_json input;
  input["dir"] = p.model;
  input["architecture"] = in.config().summary();
  input["parameters"] = input_parameters;
  input["heldout_loss"] = nullptr;
  input["measured"] = state.input_measured;
  r["heldout"] = heldout;

  auto steps = nlohmann::ordered_json::array();
  double wall = 0;
  int done = 0;
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const PipelineStep& s = p.steps[i];
    const StepRecord* rec = i < state.steps.size() && state.steps[i].id == s.id ? &state.steps[i] : nullptr;
    if (rec && rec->status == "done" && rec->entry.is_object()) {
      steps.push_back(rec->entry);
      wall += rec->entry.value("seconds", 0.0);
      ++done;
      continue;
    }
    // Not run yet: the shape it is planned to give.
    nlohmann::ordered_json e;
    e["index"] = s.index;
    e["id"] = s.id;
    e["name"] = s.name;
    e["kind"] = step_kind_name(s.kind);
    e["status"] = "not run";
    e["seconds"] = nullptr;
    add_shape(e, shapes[i], tied);
    e["compression_ratio"] = static_cast<double>(input_parameters) / e["parameters"].get<double>();
    e["removed_fraction"] = 1.0 - e["parameters"].get<double>() / static_cast<double>(input_parameters);
    e["heldout_before"] = nullptr;
    e["heldout_after"] = nullptr;
    e["heldout_after_by_denoiser"] = nlohmann::ordered_json::object();
    e["summary"] = "";
    steps.push_back(e);
  }
  if (!steps.empty() && steps[0]["status"] == "done") input["heldout_loss"] = steps[0]["heldout_before"];
  r["input"] = input;
  r["steps"] = steps;

  // The base model is the one the first pruning step reads (after any
  // pretraining of it); the final model is the last step's output.
  size_t first_prune = steps.size();
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto kind = parse_step_kind(steps[i]["kind"].get<std::string>());
    if (kind && prunes(*kind)) {
      first_prune = i;
      break;
    }
  }
  nlohmann::ordered_json summary;
  std::string base_step = "input";
  nlohmann::ordered_json base_params = input_parameters, base_loss = input["heldout_loss"];
  for (size_t i = 0; i < first_prune && i < steps.size(); ++i) {
    if (steps[i]["status"] != "done") break;
    base_step = steps[i]["id"].get<std::string>();
    base_params = steps[i]["parameters"];
    base_loss = steps[i]["heldout_after"];
  }
  if (first_prune < steps.size() && steps[first_prune]["status"] == "done" && !steps[first_prune]["heldout_before"].is_null()) {
    base_loss = steps[first_prune]["heldout_before"];
  }
  nlohmann::ordered_json final_params = base_params, final_loss = base_loss;
  for (const auto& e : steps) {
    if (e["status"] != "done") break;
    final_params = e["parameters"];
    if (!e["heldout_after"].is_null()) final_loss = e["heldout_after"];
  }
  summary["base_step"] = base_step;
  summary["base_parameters"] = base_params;
  summary["final_parameters"] = final_params;
  summary["compression_ratio"] = base_params.get<double>() / final_params.get<double>();
  summary["removed_fraction"] = 1.0 - final_params.get<double>() / base_params.get<double>();
  summary["base_heldout_loss"] = base_loss;
  summary["final_heldout_loss"] = final_loss;
  // The measured speedup of the final model against the base, per batch.
  const nlohmann::ordered_json* base_measured = &input["measured"];
  const nlohmann::ordered_json* final_measured = nullptr;
  for (const auto& e : steps) {
    if (e["status"] != "done") break;
    if (e.contains("measured")) {
      if (e["id"] == base_step) base_measured = &e["measured"];
      final_measured = &e["measured"];
    }
  }
  summary["measured_speedup"] = nullptr;
  if (final_measured && base_measured->is_object() && (*base_measured)["speed"].is_object() &&
      (*final_measured)["speed"].is_object()) {
    auto speedup = nlohmann::ordered_json::array();
    const auto& before = (*base_measured)["speed"]["decode"];
    const auto& after = (*final_measured)["speed"]["decode"];
    for (size_t i = 0; i < before.size() && i < after.size(); ++i) {
      speedup.push_back({{"batch", after[i]["batch"]},
                         {"decode", after[i]["tokens_per_s"].get<double>() / before[i]["tokens_per_s"].get<double>()}});
    }
    summary["measured_speedup"] = {
        {"decode", speedup},
        {"encoder", (*final_measured)["speed"]["encoder_tokens_per_s"].get<double>() /
                        (*base_measured)["speed"]["encoder_tokens_per_s"].get<double>()}};
  }
  summary["wall_time_s"] = wall;
  summary["steps_done"] = done;
  summary["steps_total"] = steps.size();
  r["summary"] = summary;
  r["baselines"] = baselines_report(p, steps, state, run_dir);

  StagingDir::write_file_atomically((fs::path(run_dir) / "report.json").string(), r.dump(2) + "\n");
  StagingDir::write_file_atomically((fs::path(run_dir) / "report.html").string(), render_report_html(r, run_dir));
  return r;
}

}  // namespace openba

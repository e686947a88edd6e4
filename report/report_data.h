// What the pipeline report shows, read once from RUN_DIR/report.json into
// plain structs (so the renderers need no JSON error handling), and the files
// it refers to (step reports, metrics.jsonl), read relative to the run
// directory. Every error names the file and the field at fault.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/step_kind.h"

namespace openba {

// What `measure:` recorded of one model (pipeline/measure.h).
struct MeasuredTask {
  std::string file, skipped;  // skipped: why it was not scored ("" when scored)
  std::optional<double> accuracy, accuracy_stderr, accuracy_mean_token, chance;
  std::optional<int64_t> items;
};
struct Measured {
  std::optional<double> encoder_tokens_per_s, peak_memory_bytes;
  std::string peak_memory_kind;
  std::vector<std::pair<int64_t, double>> decode_tokens_per_s;  // (batch, new tokens/s)
  std::optional<int64_t> new_tokens;
  std::vector<MeasuredTask> tasks;
  bool has_speed() const { return encoder_tokens_per_s.has_value(); }
};

// One entry of report.json's "steps". Model fields are empty for a step that
// has not run and does not know them.
struct ReportStep {
  int index = 0;
  std::string id, name, status;
  StepKind kind = StepKind::kEval;
  std::optional<double> seconds;
  std::string architecture;
  std::optional<int64_t> encoder_layers, decoder_layers, d_model, num_heads, ffn_hidden, vocab_size;
  std::optional<double> parameters, compression_ratio, removed_fraction;
  std::optional<double> heldout_before, heldout_after;
  std::string summary;
  std::string report;  // the step's report.json, relative to the run dir ("" when none)
  // The baseline beside a step, when it has one: the random selection of a
  // pruning step ("random"), or a pretrain step trained without
  // distillation ("ul2").
  std::optional<double> baseline_heldout_after;
  std::string baseline_score;
  std::string baseline_kind;
  // Pretraining steps.
  std::string metrics;  // metrics.jsonl, relative to the run dir ("" when none)
  std::optional<int64_t> train_steps, train_tokens;
  std::optional<Measured> measured;  // with measure:

  bool done() const { return status == "done"; }
  bool prunes() const { return openba::prunes(kind); }
};

// One training run of the scratch baseline.
struct ScratchRun {
  double lr = 0;
  bool done = false;
  std::optional<double> tokens, heldout_loss;
};

// report.json's baselines.scratch (pipeline/scratch_baseline.h).
struct ScratchReport {
  std::string compared_step, architecture, verdict;
  std::optional<double> compared_loss, parameters, recovery_tokens, margin;
  std::optional<double> tokens_to_match, tokens_to_match_ratio, searched_tokens;
  std::optional<int64_t> steps, extend;
  std::vector<ScratchRun> sweep;
  std::optional<ScratchRun> best, extended;
  // (training tokens, held-out loss) points.
  std::vector<std::pair<double, double>> lineage_curve, scratch_curve, extended_curve;
};

struct ReportInfo {
  std::string source;  // RUN_DIR/report.json, for messages
  std::string name, description, file, sha256, run_dir;
  std::string input_dir, input_architecture;
  std::optional<double> input_parameters, input_heldout_loss;
  std::optional<Measured> input_measured;
  std::optional<int64_t> heldout_examples, heldout_encoder_tokens, heldout_decoder_tokens;
  std::string heldout_data;
  std::vector<ReportStep> steps;
  // The summary: the base model (before the first pruning step) against the final one.
  std::string base_step;
  std::optional<double> base_parameters, final_parameters, compression_ratio, removed_fraction;
  std::optional<double> base_heldout_loss, final_heldout_loss, wall_time_s;
  int steps_done = 0, steps_total = 0;
  std::optional<ScratchReport> scratch;  // when the pipeline has baselines.scratch
};

// Reads report.json's content; Error naming `source` and the field when a
// field has the wrong type or a required one is missing.
ReportInfo read_report_info(const nlohmann::ordered_json& report, const std::string& source);

// One line of a metrics.jsonl file.
struct MetricsLine {
  int64_t step = 0;
  std::optional<double> loss, eval_loss;
  std::optional<double> tokens;  // training tokens seen by then
};

// Files the report refers to, by path relative to the run directory, read
// once each.
class RunFiles {
 public:
  explicit RunFiles(std::string run_dir) : run_dir_(std::move(run_dir)) {}

  // The full path of `relative` (absolute paths are kept as they are).
  std::string path(const std::string& relative) const;
  // A JSON file; Error naming it when missing or malformed.
  const nlohmann::json& json(const std::string& relative);
  // metrics.jsonl lines with a step and a loss or eval_loss; Error naming
  // the file (and line) when missing or malformed.
  std::vector<MetricsLine> metrics(const std::string& relative);

 private:
  std::string run_dir_;
  std::map<std::string, nlohmann::json> cache_;
};

// Typed access into a referenced file; `source` names the file in errors.
// A JSON array of numbers (null elements read as NaN).
std::vector<double> json_numbers(const nlohmann::json& value, const std::string& source, const std::string& field);
// A JSON array of arrays of numbers.
std::vector<std::vector<double>> json_number_rows(const nlohmann::json& value, const std::string& source,
                                                  const std::string& field);
// `object[key]` when present; Error naming source and key when it is not an object.
const nlohmann::json* json_member(const nlohmann::json& object, const std::string& key, const std::string& source);

}  // namespace openba

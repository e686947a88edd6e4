// pipeline_table: the plain-text summary printed at the end of a run (and by
// openba-report), one row per step and the base-against-final lines.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "report/report_html.h"
#include "report/report_page.h"
#include "util/format.h"

namespace openba {
namespace {

std::string opt_int(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "?"; }

// "4/12 d128 h4 ffn352 v8192": the shape in one short cell.
std::string shape(const ReportStep& s) {
  if (!s.encoder_layers && !s.d_model) return "?";
  return opt_int(s.encoder_layers) + "/" + opt_int(s.decoder_layers) + " d" + opt_int(s.d_model) + " h" + opt_int(s.num_heads) +
         " ffn" + opt_int(s.ffn_hidden) + " v" + opt_int(s.vocab_size);
}

// Rows of cells printed in aligned columns; columns in `right` align right.
std::string columns(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line = " ";
    for (size_t i = 0; i < r.size(); ++i) {
      const std::string pad(width[i] - r[i].size(), ' ');
      line += "  " + (i < right.size() && right[i] ? pad + r[i] : r[i] + pad);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string rate(double tokens_per_s) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", tokens_per_s);
  return buffer;
}

// With measure:: each model's decode tokens/s per batch (and the speedup
// against the first measured model), encoder tokens/s and task accuracies.
std::string measured_lines(const ReportInfo& r) {
  std::vector<std::pair<std::string, const Measured*>> models;
  if (r.input_measured) models.push_back({"input", &*r.input_measured});
  for (const auto& s : r.steps) {
    if (s.done() && s.measured) models.push_back({s.id, &*s.measured});
  }
  if (models.empty()) return "";
  const Measured& base = *models.front().second;
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> right = {false};
  std::vector<std::string> header = {"model"};
  for (const auto& [batch, rate_] : base.decode_tokens_per_s) header.push_back("batch " + std::to_string(batch));
  header.push_back("encoder");
  for (const auto& t : base.tasks) header.push_back(std::filesystem::path(t.file).filename().string());
  right.resize(header.size(), true);
  rows.push_back(header);
  for (const auto& [name, m] : models) {
    std::vector<std::string> row = {name};
    for (size_t i = 0; i < base.decode_tokens_per_s.size(); ++i) {
      if (i >= m->decode_tokens_per_s.size()) {
        row.push_back("?");
        continue;
      }
      const double v = m->decode_tokens_per_s[i].second, b = base.decode_tokens_per_s[i].second;
      row.push_back(rate(v) + (m == &base ? "" : " (" + report::ratio_text(v / b) + ")"));
    }
    row.push_back(m->encoder_tokens_per_s ? rate(*m->encoder_tokens_per_s) : "?");
    for (const auto& t : base.tasks) {
      std::string cell = "?";
      for (const auto& own : m->tasks) {
        if (own.file == t.file) cell = own.skipped.empty() ? report::loss_text(own.accuracy, 3) : "skipped";
      }
      row.push_back(cell);
    }
    rows.push_back(row);
  }
  std::string chance;
  for (const auto& t : base.tasks) {
    if (t.chance) chance += (chance.empty() ? "" : ", ") + std::filesystem::path(t.file).filename().string() + " " +
                            report::loss_text(t.chance, 3);
  }
  return "measured (decode tokens/s by batch, speedup against " + models.front().first + "; encoder tokens/s; task accuracy" +
         (chance.empty() ? "" : ", chance: " + chance) + "):\n" + columns(rows, right);
}

}  // namespace

std::string pipeline_table(const nlohmann::ordered_json& report) {
  const std::string run_dir = report.contains("run_dir") && report["run_dir"].is_string() ? report["run_dir"].get<std::string>() : ".";
  const ReportInfo r = read_report_info(report, (std::filesystem::path(run_dir) / "report.json").string());
  std::string out = "pipeline " + (r.name.empty() ? std::string("(unnamed)") : r.name) + ": " + std::to_string(r.steps_done) +
                    " of " + std::to_string(r.steps_total) + " steps done\n";
  out += "  input: " + r.input_dir + (r.input_architecture.empty() ? "" : " (" + r.input_architecture + ")") + "\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"#", "step", "kind", "shape (enc/dec d_model heads ffn vocab)", "params", "vs input", "held-out loss", "time"});
  rows.push_back({"0", "input", "", "", report::count_text(r.input_parameters), "1.00x", report::loss_text(r.input_heldout_loss), ""});
  for (const auto& s : r.steps) {
    const std::string loss = s.done() ? report::loss_text(s.heldout_before) + " -> " + report::loss_text(s.heldout_after) : "";
    rows.push_back({std::to_string(s.index), s.id, step_kind_name(s.kind), shape(s), report::count_text(s.parameters),
                    report::ratio_text(s.compression_ratio), loss,
                    s.done() ? (s.seconds ? human_duration(*s.seconds) : "?") : "not run"});
  }
  out += columns(rows, {true, false, false, false, true, true, true, true});
  const std::string base = r.base_step.empty() || r.base_step == "input" ? "the input model" : r.base_step;
  char line[256];
  std::snprintf(line, sizeof(line), "compression: %s -> %s parameters, %s, %s fewer (base: %s)\n",
                report::count_text(r.base_parameters).c_str(), report::count_text(r.final_parameters).c_str(),
                report::ratio_text(r.compression_ratio).c_str(), report::percent_text(r.removed_fraction, 1).c_str(), base.c_str());
  out += line;
  out += "held-out loss: " + report::loss_text(r.base_heldout_loss) + " -> " + report::loss_text(r.final_heldout_loss) +
         " (base -> final)\n";
  out += "wall time: " + (r.wall_time_s ? human_duration(*r.wall_time_s) : std::string("?")) + "\n";
  out += measured_lines(r);
  std::vector<std::string> comparisons;
  for (const auto& s : r.steps) {
    if (!s.done() || !s.baseline_heldout_after || !s.heldout_after) continue;
    const double gain = *s.baseline_heldout_after - *s.heldout_after;
    if (s.baseline_kind == "ul2") {
      comparisons.push_back(s.id + ": distilled " + report::loss_text(s.heldout_after) + " vs UL2 only " +
                            report::loss_text(s.baseline_heldout_after) + " after recovery (" +
                            (gain > 0 ? "distillation better by " : "distillation worse by ") + report::loss_text(std::fabs(gain)) + ")");
    } else {
      comparisons.push_back(s.id + ": scored " + report::loss_text(s.heldout_after) + " vs random selection " +
                            report::loss_text(s.baseline_heldout_after) + " after pruning (" +
                            (gain > 0 ? "scores better by " : "scores worse by ") + report::loss_text(std::fabs(gain)) + ")");
    }
  }
  if (r.scratch) comparisons.push_back("from scratch: " + r.scratch->verdict);
  if (!comparisons.empty()) {
    out += "baselines:\n";
    for (const auto& c : comparisons) out += "  " + c + "\n";
  }
  return out;
}

}  // namespace openba

// The report sections that read the steps' own files: training curves from
// metrics.jsonl, layer scores, width-importance distributions and vocabulary
// coverage from the step reports.
#include <algorithm>
#include <cmath>

#include "report/report_page.h"
#include "report/svg_chart.h"
#include "util/error.h"
#include "util/format.h"

namespace openba::report {
namespace {

using svg::escape;

// Steps of `kind`: those that ran, and the ids of those that did not.
std::vector<const ReportStep*> done_steps(const ReportInfo& r, StepKind kind, std::vector<std::string>* not_run) {
  std::vector<const ReportStep*> out;
  for (const auto& s : r.steps) {
    if (s.kind != kind) continue;
    if (s.done()) {
      out.push_back(&s);
    } else if (not_run) {
      not_run->push_back(s.id);
    }
  }
  return out;
}

std::string not_run_note(const std::vector<std::string>& ids) {
  return ids.empty() ? "" : note("Not run yet: " + join(ids, ", ") + ".");
}

// The step report of a pruning step that ran.
const nlohmann::json& step_report(const ReportStep& s, const ReportInfo& r, RunFiles& files) {
  if (s.report.empty()) throw Error(r.source + ": step " + s.id + " has no 'report'");
  return files.json(s.report);
}

// --- e. Training loss curves ------------------------------------------------------

// Keeps long curves light: beyond `limit` points, each bucket of points is
// replaced by its minimum and maximum (in step order), which keeps spikes.
std::vector<svg::Point> decimate(const std::vector<svg::Point>& points, size_t limit) {
  if (points.size() <= limit) return points;
  const size_t bucket = (points.size() + limit / 2 - 1) / (limit / 2);
  std::vector<svg::Point> out;
  for (size_t start = 0; start < points.size(); start += bucket) {
    const size_t end = std::min(points.size(), start + bucket);
    size_t lo = start, hi = start;
    for (size_t i = start; i < end; ++i) {
      if (!std::isfinite(points[i].y)) continue;
      if (!std::isfinite(points[lo].y) || points[i].y < points[lo].y) lo = i;
      if (!std::isfinite(points[hi].y) || points[i].y > points[hi].y) hi = i;
    }
    out.push_back(points[std::min(lo, hi)]);
    if (lo != hi) out.push_back(points[std::max(lo, hi)]);
  }
  return out;
}

// Means of consecutive runs of `n` points (NaN losses left out), at their mean step.
std::vector<svg::Point> bucket_means(const std::vector<svg::Point>& points, size_t n) {
  std::vector<svg::Point> out;
  for (size_t start = 0; start < points.size(); start += n) {
    double x = 0, y = 0;
    size_t count = 0;
    for (size_t i = start; i < std::min(points.size(), start + n); ++i) {
      if (!std::isfinite(points[i].y)) continue;
      x += points[i].x;
      y += points[i].y;
      ++count;
    }
    if (count) out.push_back({x / count, y / count, "", ""});
  }
  return out;
}

}  // namespace

Section training_section(const ReportInfo& r, RunFiles& files) {
  Section s{"training", "Training loss of the pretraining steps", ""};
  std::vector<std::string> not_run;
  const auto steps = done_steps(r, StepKind::kPretrain, &not_run);
  if (steps.empty()) {
    s.body = note(not_run.empty() ? "The pipeline has no pretraining step." : "No pretraining step has run yet.") + not_run_note(not_run);
    return s;
  }
  for (const ReportStep* st : steps) {
    if (st->metrics.empty()) {
      s.body += "<h3>" + escape(st->id) + "</h3>\n" + note("This step recorded no metrics file.");
      continue;
    }
    const auto lines = files.metrics(st->metrics);
    svg::Series train{"training loss", svg::colour::blue, {}, true, false, svg::Marker::none};
    svg::Series eval{"held-out loss (evaluation)", svg::colour::orange, {}, true, false, svg::Marker::circle};
    for (const auto& m : lines) {
      if (m.loss) train.points.push_back({static_cast<double>(m.step), *m.loss, "", ""});
      if (m.eval_loss) {
        eval.points.push_back({static_cast<double>(m.step), *m.eval_loss,
                               "step " + std::to_string(m.step) + ": held-out loss " + loss_text(*m.eval_loss), ""});
      }
    }
    const size_t logged = train.points.size();
    std::vector<svg::Series> series;
    if (logged > 200) {
      // Many noisy log lines: draw them faintly with a running mean on top,
      // as TensorBoard does, so the trend stays readable.
      svg::Series raw = train;
      raw.name = "training loss (each log line)";
      raw.colour = "#b6c8de";
      raw.points = decimate(raw.points, 1200);
      train.name = "training loss (mean of " + std::to_string(logged / 100) + " log lines)";
      train.points = bucket_means(train.points, logged / 100);
      series.push_back(raw);
    }
    series.push_back(train);
    series.push_back(eval);
    svg::LineChart c;
    c.frame.id = "chart-train-" + anchor(st->id);
    c.frame.title = st->id + ": loss during recovery pretraining";
    c.frame.x_label = "training step";
    c.frame.y_label = "loss (nats per token)";
    c.frame.height = 300;
    c.series = series;
    s.body += "<h3>" + escape(st->id) + (st->name.empty() || st->name == st->id ? "" : " " + escape(st->name)) + "</h3>\n";
    if (logged == 0 && eval.points.empty()) {
      s.body += note(files.path(st->metrics) + " holds no loss records.");
      continue;
    }
    s.body += svg::line_chart(c);
    std::string text = std::to_string(logged) + " training log lines, " + std::to_string(eval.points.size()) + " held-out evaluations";
    if (st->train_steps) text += "; " + std::to_string(*st->train_steps) + " optimizer steps";
    if (st->train_tokens) text += ", " + human_count(static_cast<uint64_t>(*st->train_tokens)) + " tokens";
    text += "; held-out loss " + loss_text(st->heldout_before) + " \xE2\x86\x92 " + loss_text(st->heldout_after) + ".";
    s.body += note(text);
  }
  s.body += not_run_note(not_run);
  return s;
}

// --- f. Layer scores ----------------------------------------------------------------

Section layer_section(const ReportInfo& r, RunFiles& files) {
  Section s{"layers", "Layer pruning", ""};
  std::vector<std::string> not_run;
  const auto steps = done_steps(r, StepKind::kLayer, &not_run);
  if (steps.empty()) {
    s.body = note(not_run.empty() ? "The pipeline has no layer step." : "No layer step has run yet.") + not_run_note(not_run);
    return s;
  }
  for (const ReportStep* st : steps) {
    const nlohmann::json& rep = step_report(*st, r, files);
    const std::string source = files.path(st->report);
    // The dropped layers of each stack, from "removed".
    std::vector<int64_t> dropped[2];
    const char* stacks[2] = {"encoder", "decoder"};
    std::string reason;
    if (const auto* removed = json_member(rep, "removed", source)) {
      for (int d = 0; d < 2; ++d) {
        const std::string key = std::string(stacks[d]) + "_layers";
        if (!removed->contains(key)) continue;
        for (const auto& e : (*removed)[key]) {
          if (!e.is_object() || !e.contains("layer") || !e["layer"].is_number_integer()) {
            throw Error(source + ": 'removed." + key + "' entries need an integer 'layer'");
          }
          dropped[d].push_back(e["layer"].get<int64_t>());
        }
      }
      if (removed->contains("reason") && (*removed)["reason"].is_string()) reason = (*removed)["reason"].get<std::string>();
    }
    auto is_dropped = [&](int d, size_t i) {
      return std::find(dropped[d].begin(), dropped[d].end(), static_cast<int64_t>(i)) != dropped[d].end();
    };
    s.body += "<h3>" + escape(st->id) + "</h3>\n";
    const auto* scores = json_member(rep, "scores", source);
    if (scores) {
      const std::string method = scores->contains("method") && (*scores)["method"].is_string() ? (*scores)["method"].get<std::string>() : "score";
      s.body += "<div class=\"grid2\">\n";
      for (int d = 0; d < 2; ++d) {
        const auto values = json_numbers(scores->contains(stacks[d]) ? (*scores)[stacks[d]] : nlohmann::json(), source,
                                         std::string("scores.") + stacks[d]);
        svg::BarChart c;
        c.frame.id = "chart-layers-" + anchor(st->id) + "-" + stacks[d];
        c.frame.title = std::string(d ? "Decoder" : "Encoder") + " layer scores (" + method + ")";
        c.frame.x_label = std::string(stacks[d]) + " layer";
        c.frame.y_label = method + " score";
        c.frame.width = 540;
        c.frame.height = 260;
        c.legend = {{"kept", svg::colour::blue}, {"dropped", svg::colour::red}};
        for (size_t i = 0; i < values.size(); ++i) {
          const bool gone = is_dropped(d, i);
          c.groups.push_back({std::to_string(i),
                              {{values[i], gone ? svg::colour::red : svg::colour::blue, "",
                                std::string(stacks[d]) + " layer " + std::to_string(i) + ": " + svg::number(values[i]) +
                                    (gone ? " (dropped)" : " (kept)"),
                                std::string(stacks[d]) + " " + std::to_string(i)}}});
        }
        s.body += svg::bar_chart(c);
      }
      s.body += "</div>\n";
    } else {
      // Explicit drop lists (no scores): which layers were kept.
      svg::Strip c;
      c.frame.id = "chart-layers-" + anchor(st->id);
      c.frame.title = "Kept and dropped layers (explicit lists, no scores)";
      c.frame.width = 1100;
      const auto* input = json_member(rep, "input", source);
      for (int d = 0; d < 2; ++d) {
        const std::string key = std::string(stacks[d]) + "_layers";
        int64_t n = 0;
        if (input && input->contains(key) && (*input)[key].is_number_integer()) {
          n = (*input)[key].get<int64_t>();
        } else {
          // No input shape in the step report: the kept count plus the dropped ones.
          n = (d ? st->decoder_layers : st->encoder_layers).value_or(0) + static_cast<int64_t>(dropped[d].size());
        }
        svg::StripRow row{stacks[d], {}};
        for (int64_t i = 0; i < n; ++i) row.dropped.push_back(is_dropped(d, static_cast<size_t>(i)));
        c.rows.push_back(row);
      }
      s.body += svg::strip(c);
    }
    std::string text = "Dropped: ";
    for (int d = 0; d < 2; ++d) {
      std::vector<std::string> ids;
      for (int64_t i : dropped[d]) ids.push_back(std::to_string(i));
      text += std::string(d ? "; decoder " : "encoder ") + (ids.empty() ? "none" : "[" + join(ids, ", ") + "]");
    }
    text += (reason.empty() ? std::string() : " (" + reason + ")") + ". Held-out loss " + loss_text(st->heldout_before) +
            " \xE2\x86\x92 " + loss_text(st->heldout_after) + ".";
    if (scores) text += " Bars are each layer's importance score; the lowest-scored layers are the ones dropped.";
    s.body += note(text);
  }
  s.body += not_run_note(not_run);
  return s;
}

// --- g. Width-importance distributions --------------------------------------------

namespace {

// Scores of one kind of unit pooled over layers, split by kept and removed.
struct Pool {
  std::vector<double> kept, removed;
};

// Adds the scores of `field` (rows per layer, or one row when `flat`) to
// `pool`, classed by the kept indices of the same field.
void pool_scores(Pool& pool, const nlohmann::json& scores, const nlohmann::json& kept, const std::string& field, bool flat,
                 const std::string& source) {
  if (!scores.contains(field)) return;
  std::vector<std::vector<double>> rows, keep;
  if (flat) {
    rows.push_back(json_numbers(scores[field], source, "scores." + field));
    keep.push_back(json_numbers(kept.contains(field) ? kept[field] : nlohmann::json(), source, "kept." + field));
  } else {
    rows = json_number_rows(scores[field], source, "scores." + field);
    keep = json_number_rows(kept.contains(field) ? kept[field] : nlohmann::json(), source, "kept." + field);
  }
  if (keep.size() != rows.size()) throw Error(source + ": 'kept." + field + "' has " + std::to_string(keep.size()) +
                                              " layers but 'scores." + field + "' has " + std::to_string(rows.size()));
  for (size_t l = 0; l < rows.size(); ++l) {
    std::vector<char> is_kept(rows[l].size(), 0);
    for (double k : keep[l]) {
      if (!(k >= 0 && k < static_cast<double>(rows[l].size()))) {
        throw Error(source + ": 'kept." + field + "' has index " + svg::number(k, 15) + " outside the " +
                    std::to_string(rows[l].size()) + " scored units");
      }
      is_kept[static_cast<size_t>(k)] = 1;
    }
    for (size_t i = 0; i < rows[l].size(); ++i) (is_kept[i] ? pool.kept : pool.removed).push_back(rows[l][i]);
  }
}

// A histogram of log10 of the positive scores, with a note counting the
// rest (zero, negative or missing scores have no place on a log axis).
std::string score_histogram(const Pool& pool, const std::string& id, const std::string& title, const std::string& unit) {
  double lo = INFINITY, hi = -INFINITY;
  size_t off_axis[2] = {0, 0};
  for (int g = 0; g < 2; ++g) {
    for (double v : g ? pool.removed : pool.kept) {
      if (v > 0 && std::isfinite(v)) {
        lo = std::min(lo, std::log10(v));
        hi = std::max(hi, std::log10(v));
      } else {
        ++off_axis[g];
      }
    }
  }
  const size_t total = pool.kept.size() + pool.removed.size();
  if (total == 0) return "";
  std::string text = std::to_string(total) + " " + unit + ": " + std::to_string(pool.kept.size()) + " kept, " +
                     std::to_string(pool.removed.size()) + " removed.";
  if (off_axis[0] + off_axis[1]) {
    text += " " + std::to_string(off_axis[0] + off_axis[1]) + " scores are zero, negative or missing and not on the log axis (" +
            std::to_string(off_axis[0]) + " kept, " + std::to_string(off_axis[1]) + " removed).";
  }
  if (!std::isfinite(lo)) return note(title + ": " + text + " No positive scores to plot.");
  if (hi - lo < 1e-6) lo -= 0.5, hi += 0.5;
  const size_t positive = total - off_axis[0] - off_axis[1];
  const size_t bins = std::clamp<size_t>(static_cast<size_t>(std::sqrt(static_cast<double>(positive))), 8, 40);
  svg::Histogram c;
  c.frame.id = id;
  c.frame.title = title;
  c.frame.x_label = "score (log scale; positive scores only)";
  c.frame.y_label = "count";
  c.frame.width = 540;
  c.frame.height = 260;
  c.frame.x_format = [](double v) { return svg::number(std::pow(10.0, v), 2); };
  for (size_t i = 0; i <= bins; ++i) c.edges.push_back(lo + (hi - lo) * i / bins);
  c.groups = {{"kept", svg::colour::blue, std::vector<double>(bins, 0.0)}, {"removed", svg::colour::red, std::vector<double>(bins, 0.0)}};
  for (int g = 0; g < 2; ++g) {
    for (double v : g ? pool.removed : pool.kept) {
      if (!(v > 0 && std::isfinite(v))) continue;
      const size_t b = std::min(bins - 1, static_cast<size_t>((std::log10(v) - lo) / (hi - lo) * bins));
      c.groups[g].counts[b] += 1;
    }
  }
  return "<div>" + svg::histogram(c) + note(text) + "</div>\n";
}

}  // namespace

Section width_section(const ReportInfo& r, RunFiles& files) {
  Section s{"width", "Width pruning: importance distributions", ""};
  std::vector<std::string> not_run;
  const auto steps = done_steps(r, StepKind::kNeuron, &not_run);
  if (steps.empty()) {
    s.body = note(not_run.empty() ? "The pipeline has no neuron (width) step." : "No neuron (width) step has run yet.") +
             not_run_note(not_run);
    return s;
  }
  for (const ReportStep* st : steps) {
    const nlohmann::json& rep = step_report(*st, r, files);
    const std::string source = files.path(st->report);
    s.body += "<h3>" + escape(st->id) + "</h3>\n";
    const auto* scores = json_member(rep, "scores", source);
    const auto* kept = json_member(rep, "kept", source);
    if (!scores || !kept) {
      s.body += note(source + " has no " + (scores ? "'kept'" : "'scores'") + ": nothing to plot.");
      continue;
    }
    const std::string method = scores->contains("method") && (*scores)["method"].is_string() ? (*scores)["method"].get<std::string>() : "";
    Pool ffn, self_heads, cross_heads, hidden;
    pool_scores(ffn, *scores, *kept, "encoder_ffn", false, source);
    pool_scores(ffn, *scores, *kept, "decoder_ffn", false, source);
    pool_scores(self_heads, *scores, *kept, "encoder_heads", false, source);
    pool_scores(self_heads, *scores, *kept, "decoder_heads", false, source);
    pool_scores(cross_heads, *scores, *kept, "decoder_cross_heads", false, source);
    pool_scores(hidden, *scores, *kept, "hidden", true, source);
    const std::string prefix = "chart-width-" + anchor(st->id) + "-";
    const std::string by = method.empty() ? "" : " (" + method + ")";
    s.body += "<div class=\"grid2\">\n";
    s.body += score_histogram(ffn, prefix + "ffn", "FFN neuron scores" + by + ", all layers", "FFN neurons");
    s.body += score_histogram(self_heads, prefix + "heads", "Self-attention head scores" + by + ", all layers", "self-attention heads");
    s.body += score_histogram(cross_heads, prefix + "cross-heads", "Cross-attention head scores" + by + ", all layers",
                              "cross-attention heads");
    s.body += score_histogram(hidden, prefix + "hidden", "Hidden-channel scores" + by, "hidden channels");
    s.body += "</div>\n";
    s.body += note((st->summary.empty() ? std::string() : st->summary + ". ") + "Held-out loss " + loss_text(st->heldout_before) +
                   " \xE2\x86\x92 " + loss_text(st->heldout_after) + ".");
  }
  s.body += not_run_note(not_run);
  return s;
}

// --- h. Vocabulary coverage ----------------------------------------------------------

Section vocab_section(const ReportInfo& r, RunFiles& files) {
  Section s{"vocab", "Vocabulary pruning: coverage", ""};
  std::vector<std::string> not_run;
  const auto steps = done_steps(r, StepKind::kVocab, &not_run);
  if (steps.empty()) {
    s.body = note(not_run.empty() ? "The pipeline has no vocabulary step." : "No vocabulary step has run yet.") + not_run_note(not_run);
    return s;
  }
  for (const ReportStep* st : steps) {
    const nlohmann::json& rep = step_report(*st, r, files);
    const std::string source = files.path(st->report);
    s.body += "<h3>" + escape(st->id) + "</h3>\n";
    const auto* tok = json_member(rep, "tokenizer", source);
    if (!tok) {
      s.body += note(source + " has no 'tokenizer' section: nothing to show.");
      continue;
    }
    auto num = [&](const char* key) -> std::optional<double> {
      if (!tok->contains(key) || (*tok)[key].is_null()) return std::nullopt;
      if (!(*tok)[key].is_number()) throw Error(source + ": 'tokenizer." + key + "' is not a number");
      return (*tok)[key].get<double>();
    };
    const auto before = num("pieces_before"), after = num("pieces_after");
    const auto dropped = num("corpus_tokens_dropped_share");
    const std::optional<double> covered = dropped ? std::optional<double>(1 - *dropped) : std::nullopt;
    if (tok->contains("coverage_curve") && !(*tok)["coverage_curve"].is_null()) {
      const auto curve = json_number_rows((*tok)["coverage_curve"], source, "tokenizer.coverage_curve");
      svg::LineChart c;
      c.frame.id = "chart-vocab-" + anchor(st->id);
      c.frame.title = "Share of corpus tokens covered by the most frequent pieces";
      c.frame.x_label = "pieces kept (most frequent first)";
      c.frame.y_label = "corpus tokens covered";
      c.frame.height = 300;
      c.frame.x_format = [](double v) { return v <= 0 ? std::string("0") : human_count(static_cast<uint64_t>(v + 0.5)); };
      c.frame.y_format = [](double v) { return svg::number(100 * v, 3) + "%"; };
      c.y_min = 0;
      c.y_max = 1;
      svg::Series line{"coverage", svg::colour::blue, {}, true, false, svg::Marker::none};
      for (size_t i = 0; i < curve.size(); ++i) {
        if (curve[i].size() != 2) throw Error(source + ": 'tokenizer.coverage_curve[" + std::to_string(i) + "]' is not a [pieces, share] pair");
        line.points.push_back({curve[i][0], curve[i][1], "", ""});
      }
      c.series.push_back(line);
      if (after && covered) {
        c.series.push_back({"chosen size", svg::colour::dark, {{*after, 0, "", ""}, {*after, 1, "", ""}}, true, true, svg::Marker::none, false});
        c.series.push_back({"chosen size", svg::colour::red,
                            {{*after, *covered,
                              svg::number(*after, 12) + " pieces kept: " + percent_text(covered) + " of corpus tokens covered",
                              svg::number(*after, 12) + " pieces: " + percent_text(covered)}},
                            false, false, svg::Marker::diamond});
      }
      s.body += svg::line_chart(c);
    } else {
      s.body += note(source + " has no coverage curve (tokenizer.coverage_curve): only the numbers below.");
    }
    s.body += "<table>\n";
    auto row = [&](const std::string& k, const std::string& v) { s.body += "<tr><th>" + escape(k) + "</th><td class=\"num\">" + escape(v) + "</td></tr>\n"; };
    row("pieces before \xE2\x86\x92 after", (before ? svg::number(*before, 12) : "n/a") + " \xE2\x86\x92 " + (after ? svg::number(*after, 12) : "n/a"));
    row("corpus tokens covered by the kept pieces", percent_text(covered, 3));
    row("held-out tokens encoded differently", percent_text(num("changed_token_share"), 3));
    row("held-out tokens mapped to unk", tok->contains("heldout_tokens_mapped_to_unk_share") ? percent_text(num("heldout_tokens_mapped_to_unk_share"), 3)
                                                                                            : std::string("not recorded"));
    row("held-out loss before \xE2\x86\x92 after", loss_text(st->heldout_before) + " \xE2\x86\x92 " + loss_text(st->heldout_after));
    s.body += "</table>\n";
  }
  s.body += not_run_note(not_run);
  return s;
}

}  // namespace openba::report

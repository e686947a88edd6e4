// The report's "measured" section (pipeline `measure:`): each model's
// measured decoding and encoder speed beside its parameter ratio, its peak
// memory, and its accuracy on the run's tasks against the chance level.
#include <cmath>
#include <cstdio>

#include "report/report_page.h"
#include "report/svg_chart.h"
#include "util/format.h"

namespace openba::report {
namespace {

using svg::escape;

struct MeasuredRow {
  std::string id, label;
  StepKind kind = StepKind::kEval;
  bool input = false;
  std::optional<double> parameters, compression_ratio;
  const Measured* measured = nullptr;
};

std::optional<double> decode_rate(const Measured& m, int64_t batch) {
  for (const auto& [b, rate] : m.decode_tokens_per_s) {
    if (b == batch) return rate;
  }
  return std::nullopt;
}

std::string rate_text(std::optional<double> rate) {
  if (!rate) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", *rate);
  return buffer;
}

std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return std::nullopt;
  return *a / *b;
}

std::string accuracy_text(const MeasuredTask& t) {
  if (!t.skipped.empty()) return "skipped";
  if (!t.accuracy) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.3f \xC2\xB1 %.3f", *t.accuracy, t.accuracy_stderr.value_or(0.0));
  return buffer;
}

}  // namespace

Section measured_section(const ReportInfo& r) {
  Section s{"measured", "Measured speed and task accuracy", ""};
  std::vector<MeasuredRow> rows;
  if (r.input_measured) {
    rows.push_back({"input", "input", StepKind::kEval, true, r.input_parameters, 1.0, &*r.input_measured});
  }
  for (const auto& st : r.steps) {
    if (st.done() && st.measured) rows.push_back({st.id, st.id, st.kind, false, st.parameters, st.compression_ratio, &*st.measured});
  }
  if (rows.empty()) {
    s.body = note("Nothing was measured: the pipeline has no measure: section (measure: speed: {...} and tasks: [...] "
                  "measure the input model and every step's output).");
    return s;
  }
  // The batch sizes and tasks of the first measurement that has them (one
  // measure: section made them all).
  std::vector<int64_t> batches;
  std::vector<std::string> tasks;
  const Measured* reference = nullptr;
  for (const auto& row : rows) {
    if (batches.empty()) {
      for (const auto& [b, rate] : row.measured->decode_tokens_per_s) batches.push_back(b);
    }
    if (tasks.empty()) {
      for (const auto& t : row.measured->tasks) tasks.push_back(t.file);
    }
    if (!reference && row.measured->has_speed()) reference = row.measured;
  }
  const Measured* base = rows.front().measured;  // the input model's, or the first measured step's

  std::string& b = s.body;
  b += "<div class=\"scroll\"><table class=\"wide\">\n<tr><th>model</th><th class=\"num\">parameters</th>"
       "<th class=\"num\">smaller than input</th><th class=\"num\">encoder tokens/s</th>";
  for (int64_t batch : batches) {
    b += "<th class=\"num\">decode tokens/s, batch " + std::to_string(batch) + "</th><th class=\"num\">speedup</th>";
  }
  b += "<th class=\"num\">peak memory</th>";
  for (const auto& t : tasks) b += "<th class=\"num\">" + escape(t) + " accuracy</th>";
  b += "</tr>\n";
  for (const auto& row : rows) {
    const Measured& m = *row.measured;
    b += "<tr>" + td(row.label) + td(count_text(row.parameters), true) + td(ratio_text(row.compression_ratio), true) +
         td(rate_text(m.encoder_tokens_per_s), true);
    for (int64_t batch : batches) {
      b += td(rate_text(decode_rate(m, batch)), true) + td(ratio_text(ratio(decode_rate(m, batch), decode_rate(*base, batch))), true);
    }
    // A CPU figure is the process' peak RSS, which only grows over a run:
    // per model only on CUDA (the allocator's peak, reset per measurement).
    const bool per_model = m.peak_memory_kind == "cuda allocated";
    b += td(m.peak_memory_bytes && per_model ? human_bytes(static_cast<uint64_t>(*m.peak_memory_bytes)) : "n/a", true,
            per_model ? m.peak_memory_kind
                      : "on CPU the process' peak RSS accumulates over the run; openba-bench-model measures one model");
    for (const auto& file : tasks) {
      const MeasuredTask* task = nullptr;
      for (const auto& t : m.tasks) {
        if (t.file == file) task = &t;
      }
      if (!task) {
        b += td("n/a", true);
      } else {
        b += td(accuracy_text(*task), true,
                task->skipped.empty() ? "chance " + loss_text(task->chance, 3) + ", " + std::to_string(task->items.value_or(0)) + " items"
                                      : task->skipped);
      }
    }
    b += "</tr>\n";
  }
  b += "</table></div>\n";

  // Measured speedup beside the parameter ratio, per model.
  if (reference && !batches.empty()) {
    svg::BarChart c;
    c.frame.id = "chart-measured-speedup";
    c.frame.title = "Measured decoding speedup against the parameter ratio (both against " + rows.front().label + ")";
    c.frame.x_label = "model";
    c.frame.y_label = "x " + rows.front().label;
    c.frame.height = 340;
    const char* palette[] = {svg::colour::blue, svg::colour::orange, svg::colour::teal, svg::colour::purple};
    c.legend.push_back({"parameter ratio", svg::colour::dark});
    for (size_t i = 0; i < batches.size(); ++i) {
      c.legend.push_back({"decode speedup, batch " + std::to_string(batches[i]), palette[i % 4]});
    }
    const std::optional<double> base_parameters = rows.front().parameters;
    for (const auto& row : rows) {
      svg::BarGroup g{row.label, {}};
      const auto params = ratio(base_parameters, row.parameters);
      svg::Bar p;
      p.value = params.value_or(0);
      p.colour = svg::colour::dark;
      p.annotation = ratio_text(params);
      p.hover = row.label + ": " + ratio_text(params) + " fewer parameters";
      p.key = row.id + "-parameters";
      g.bars.push_back(p);
      for (size_t i = 0; i < batches.size(); ++i) {
        const auto speedup = ratio(decode_rate(*row.measured, batches[i]), decode_rate(*base, batches[i]));
        svg::Bar d;
        d.value = speedup.value_or(0);
        d.colour = palette[i % 4];
        d.annotation = ratio_text(speedup);
        d.hover = row.label + ": decoding at batch " + std::to_string(batches[i]) + " " + ratio_text(speedup) +
                  " as fast (" + rate_text(decode_rate(*row.measured, batches[i])) + " tokens/s)";
        d.key = row.id + "-decode-" + std::to_string(batches[i]);
        g.bars.push_back(d);
      }
      c.groups.push_back(g);
    }
    b += svg::bar_chart(c);
  }

  // Task accuracy along the run, with the chance level.
  for (const auto& file : tasks) {
    svg::LineChart c;
    c.frame.id = "chart-task-" + anchor(file);
    c.frame.title = "Accuracy on " + file + " (summed log-likelihood), with its chance level";
    c.frame.x_label = "model";
    c.frame.y_label = "accuracy";
    c.frame.height = 300;
    c.y_min = 0;
    c.y_max = 1;
    svg::Series accuracy{"accuracy", svg::colour::blue, {}, true, false, svg::Marker::circle};
    svg::Series chance{"chance", svg::colour::dark, {}, true, true, svg::Marker::none};
    for (size_t i = 0; i < rows.size(); ++i) {
      c.x_categories.push_back({static_cast<double>(i), rows[i].label});
      for (const auto& t : rows[i].measured->tasks) {
        if (t.file != file || !t.skipped.empty() || !t.accuracy) continue;
        accuracy.points.push_back({static_cast<double>(i), *t.accuracy, rows[i].label + ": " + accuracy_text(t), ""});
        if (t.chance) chance.points.push_back({static_cast<double>(i), *t.chance, "chance " + loss_text(t.chance, 3), ""});
      }
    }
    if (accuracy.points.empty()) continue;
    c.series = {chance, accuracy};
    b += svg::line_chart(c);
  }
  b += note("Speed is measured on the machine the pipeline ran on (openba-bench-model's measurement: greedy decoding of a "
            "fixed number of tokens per input with the key/value cache, random ids); speedups are against the first row. "
            "Accuracy is a multiple-choice task's, by summed log-likelihood, \xC2\xB1 its standard error; a task is skipped "
            "for a model whose vocabulary is not the input model's (its ids would not match).");
  return s;
}

}  // namespace openba::report

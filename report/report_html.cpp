// The page: its shell and style, the overview sections drawn from report.json
// alone (header, step table, parameters, held-out loss), the sections that
// read the steps' own files (report_sections.cpp) and those comparing the run
// with its baselines (report_baselines.cpp).
#include "report/report_html.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include "report/report_page.h"
#include "report/svg_chart.h"
#include "util/format.h"

namespace openba {
namespace {

using report::Section;
using report::td;
using svg::escape;

// Readable on screen and in a full-page screenshot; no web fonts (offline).
constexpr const char* kStyle = R"(
body { margin: 0; background: #f3f4f6; color: #1f2937;
  font-family: "DejaVu Sans", Verdana, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; font-size: 14px; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
p.description { margin: 0 0 14px; color: #374151; }
section { background: #ffffff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 16px 20px; margin: 18px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { flex: 1 1 200px; background: #ffffff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 14px; }
.card .label { font-size: 12px; color: #6b7280; text-transform: uppercase; letter-spacing: 0.04em; }
.card .value { font-size: 20px; font-weight: bold; margin: 2px 0; }
.card .sub { font-size: 12px; color: #6b7280; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 13px; margin: 8px 0 0; }
dl.meta dt { color: #6b7280; }
dl.meta dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; font-size: 13px; }
table.wide { width: 100%; }
th, td { padding: 5px 8px; border-bottom: 1px solid #e5e7eb; text-align: left; white-space: nowrap; vertical-align: top; }
th { background: #f9fafb; font-weight: bold; color: #374151; white-space: normal; }
td.wrap { white-space: normal; }
td .sub { font-size: 12px; color: #6b7280; }
div.scroll { overflow-x: auto; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.not-run td { color: #9ca3af; font-style: italic; }
.kind { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 8px 0; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 0 16px; }
p.note { font-size: 13px; color: #4b5563; margin: 4px 0 8px; }
)";

// --- a. Header ---------------------------------------------------------------

std::string card(const std::string& label, const std::string& value, const std::string& sub) {
  return "<div class=\"card\"><div class=\"label\">" + escape(label) + "</div><div class=\"value\">" + escape(value) +
         "</div><div class=\"sub\">" + escape(sub) + "</div></div>\n";
}

std::string header(const ReportInfo& r) {
  std::string h = "<header>\n<h1>" + escape(r.name.empty() ? "pipeline" : r.name) + "</h1>\n";
  if (!r.description.empty()) h += "<p class=\"description\">" + escape(r.description) + "</p>\n";
  const std::string base = r.base_step.empty() || r.base_step == "input" ? "the input model" : r.base_step;
  h += "<div class=\"cards\">\n";
  h += card("parameters", report::count_text(r.base_parameters) + " \xE2\x86\x92 " + report::count_text(r.final_parameters),
            "base (" + base + ") \xE2\x86\x92 final");
  h += card("compression", report::ratio_text(r.compression_ratio),
            report::percent_text(r.removed_fraction, 1) + " fewer parameters");
  h += card("held-out loss", report::loss_text(r.base_heldout_loss) + " \xE2\x86\x92 " + report::loss_text(r.final_heldout_loss),
            "base \xE2\x86\x92 final");
  h += card("wall time", r.wall_time_s ? human_duration(*r.wall_time_s) : "n/a",
            std::to_string(r.steps_done) + " of " + std::to_string(r.steps_total) + " steps done");
  h += "</div>\n<dl class=\"meta\">\n";
  auto item = [&](const std::string& k, const std::string& v) {
    if (!v.empty()) h += "<dt>" + escape(k) + "</dt><dd>" + escape(v) + "</dd>\n";
  };
  item("run directory", r.run_dir);
  item("pipeline file", r.file + (r.sha256.empty() ? "" : " (sha256 " + r.sha256.substr(0, 16) + "\xE2\x80\xA6)"));
  item("input model", r.input_dir + (r.input_architecture.empty() ? "" : ": " + r.input_architecture) +
                          (r.input_parameters ? ", " + report::count_text(r.input_parameters) + " parameters" : ""));
  if (!r.heldout_data.empty()) {
    std::string held = r.heldout_data;
    if (r.heldout_examples) held += ": " + std::to_string(*r.heldout_examples) + " examples";
    if (r.heldout_encoder_tokens && r.heldout_decoder_tokens) {
      held += ", " + std::to_string(*r.heldout_encoder_tokens) + " encoder / " + std::to_string(*r.heldout_decoder_tokens) +
              " decoder tokens";
    }
    item("held-out data", held);
  }
  return h + "</dl>\n</header>\n";
}

// --- b. The step table (as OpenBA-V2 published its stages) --------------------

std::string opt_int(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "n/a"; }

Section step_table(const ReportInfo& r) {
  Section s{"steps", "Steps", ""};
  std::string& b = s.body;
  b += "<div class=\"scroll\"><table class=\"wide\">\n<tr><th class=\"num\">#</th><th>step</th><th>kind</th><th class=\"num\">parameters</th>"
       "<th class=\"num\">vs input</th><th class=\"num\">enc / dec layers</th><th class=\"num\">hidden / FFN / heads</th>"
       "<th class=\"num\">vocab</th><th class=\"num\">held-out loss before \xE2\x86\x92 after</th>"
       "<th class=\"num\">after prune \xE2\x86\x92 after recovery</th><th class=\"num\">time</th></tr>\n";
  b += "<tr>" + td("0", true) + td("input") + td("") + td(report::count_text(r.input_parameters), true) + td("1.00x", true) +
       "<td colspan=\"3\" class=\"wrap\">" + escape(r.input_architecture) + "</td>" + td(report::loss_text(r.input_heldout_loss), true) +
       td("") + td("") + "</tr>\n";
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const ReportStep& st = r.steps[i];
    std::string recovery;
    if (st.prunes() && st.done()) {
      recovery = report::loss_text(st.heldout_after) + " \xE2\x86\x92 ";
      const bool next_recovers = i + 1 < r.steps.size() && r.steps[i + 1].kind == StepKind::kPretrain;
      if (!next_recovers) {
        recovery += "(no recovery step)";
      } else {
        recovery += r.steps[i + 1].done() ? report::loss_text(r.steps[i + 1].heldout_after) : "(not run yet)";
      }
    }
    const std::string loss = st.done() ? report::loss_text(st.heldout_before) + " \xE2\x86\x92 " + report::loss_text(st.heldout_after) : "";
    const std::string time = st.done() ? (st.seconds ? human_duration(*st.seconds) : "n/a") : "not run";
    b += std::string("<tr") + (st.done() ? "" : " class=\"not-run\"") + ">" + td(std::to_string(st.index), true) +
         "<td title=\"" + escape(st.summary.empty() ? st.name : st.summary) + "\"><span class=\"kind\" style=\"background:" +
         report::kind_colour(st.kind) + "\"></span>" + escape(st.id) +
         (st.name.empty() || st.name == st.id ? "" : "<div class=\"sub\">" + escape(st.name) + "</div>") + "</td>" + td(step_kind_name(st.kind)) + td(report::count_text(st.parameters), true) + td(report::ratio_text(st.compression_ratio), true) +
         td(opt_int(st.encoder_layers) + " / " + opt_int(st.decoder_layers), true) +
         td(opt_int(st.d_model) + " / " + opt_int(st.ffn_hidden) + " / " + opt_int(st.num_heads), true) +
         td(opt_int(st.vocab_size), true) + td(loss, true) + td(recovery, true) +
         td(time, true, st.seconds ? svg::number(*st.seconds, 6) + " s" : "") + "</tr>\n";
  }
  b += "</table></div>\n";
  b += report::note("Parameters and \"vs input\" are cumulative against the pipeline's input model. Greyed rows have not "
                    "run yet (their shape is the planned one). \"After prune \xE2\x86\x92 after recovery\" pairs a pruning "
                    "step's held-out loss with that of the pretraining step right after it.");
  return s;
}

// --- c. Parameters per step ---------------------------------------------------

Section parameters_section(const ReportInfo& r) {
  Section s{"parameters", "Parameters per step", ""};
  svg::BarChart c;
  c.frame.id = "chart-parameters";
  c.frame.title = "Parameters after each step (cumulative compression against the input model)";
  c.frame.x_label = "step";
  c.frame.y_label = "parameters";
  c.frame.height = 340;
  c.frame.y_format = [](double v) { return v <= 0 ? std::string("0") : human_count(static_cast<uint64_t>(v + 0.5)); };
  if (r.input_parameters) {
    c.groups.push_back({"input", {{*r.input_parameters, svg::colour::dark, report::count_text(r.input_parameters) + "\n1.00x",
                                   "input model: " + report::count_text(r.input_parameters) + " parameters", "input"}}});
  }
  bool planned = false;
  std::vector<std::string> kinds;
  for (const auto& st : r.steps) {
    svg::BarGroup g{st.id, {}};
    if (st.parameters) {
      svg::Bar b;
      b.value = *st.parameters;
      b.colour = st.done() ? report::kind_colour(st.kind) : svg::colour::light;
      b.annotation = report::count_text(st.parameters) + "\n" + (st.done() ? report::ratio_text(st.compression_ratio) : "planned");
      b.hover = st.id + " (" + step_kind_name(st.kind) + (st.done() ? "" : ", not run") + "): " + report::count_text(st.parameters) +
                " parameters, " + report::ratio_text(st.compression_ratio) + " smaller than the input";
      b.key = st.id;
      g.bars.push_back(b);
    }
    c.groups.push_back(g);
    planned |= !st.done();
    if (st.done() && std::find(kinds.begin(), kinds.end(), report::kind_group(st.kind)) == kinds.end()) {
      kinds.push_back(report::kind_group(st.kind));
      c.legend.push_back({kinds.back(), report::kind_colour(st.kind)});
    }
  }
  c.legend.insert(c.legend.begin(), {"input model", svg::colour::dark});
  if (planned) c.legend.push_back({"not run (planned shape)", svg::colour::light});
  if (c.groups.empty()) {
    s.body = report::note("The report has no parameter counts.");
    return s;
  }
  s.body = svg::bar_chart(c);
  s.body += report::note("Bar heights are parameter counts (a tied lm_head counted once); labels give the count and the "
                         "compression ratio against the input model.");
  return s;
}

// --- d. Held-out loss along the run -------------------------------------------

Section heldout_section(const ReportInfo& r) {
  Section s{"heldout", "Held-out loss along the run", ""};
  svg::LineChart c;
  c.frame.id = "chart-heldout";
  c.frame.title = "Held-out loss before and after each step";
  c.frame.x_label = "step";
  c.frame.y_label = "held-out loss";
  c.frame.height = 360;
  c.x_categories.push_back({0, "input"});
  for (const auto& st : r.steps) c.x_categories.push_back({static_cast<double>(st.index), st.id});
  bool any = false;
  std::vector<svg::Series> segments, before_marks, after_marks;
  if (r.input_heldout_loss) {
    after_marks.push_back({"input model", svg::colour::dark, {{0, *r.input_heldout_loss, "input model: " + report::loss_text(r.input_heldout_loss), ""}},
                        false, false, svg::Marker::circle});
    any = true;
  }
  // Each step is a segment from its loss before (at the previous position)
  // to its loss after (a filled marker at its own). The loss before usually
  // is the previous step's after; where it is not (an earlier step without a
  // loss, or different data) it gets a hollow marker of its own.
  svg::Series baseline{"random selection (after prune)", svg::colour::orange, {}, false, false, svg::Marker::diamond};
  svg::Series ul2{"recovery without distillation", svg::colour::purple, {}, false, false, svg::Marker::square};
  std::optional<double> previous = r.input_heldout_loss;
  for (const auto& st : r.steps) {
    if (!st.done()) {
      previous.reset();
      continue;
    }
    const double x = st.index;
    const std::string group = report::kind_group(st.kind);
    const std::string colour = report::kind_colour(st.kind);
    const std::string hover = st.id + " (" + step_kind_name(st.kind) + "): " + report::loss_text(st.heldout_before) + " \xE2\x86\x92 " +
                              report::loss_text(st.heldout_after);
    if (st.heldout_before && st.heldout_after) {
      segments.push_back({group, colour, {{x - 1, *st.heldout_before, "", ""}, {x, *st.heldout_after, "", ""}}, true, false,
                          svg::Marker::none});
    }
    if (st.heldout_before && !(previous && std::abs(*previous - *st.heldout_before) < 1e-9)) {
      before_marks.push_back({group, colour, {{x - 1, *st.heldout_before, st.id + " before: " + report::loss_text(st.heldout_before), ""}},
                              false, false, svg::Marker::hollow_circle, false});
      any = true;
    }
    if (st.heldout_after) {
      after_marks.push_back({group, colour, {{x, *st.heldout_after, hover, ""}}, false, false, svg::Marker::circle});
      any = true;
    }
    previous = st.heldout_after;
    if (st.baseline_heldout_after && st.baseline_kind == "ul2") {
      ul2.points.push_back({x, *st.baseline_heldout_after,
                            st.id + ": without distillation " + report::loss_text(st.baseline_heldout_after) +
                                " vs distilled " + report::loss_text(st.heldout_after),
                            ""});
    } else if (st.baseline_heldout_after) {
      baseline.points.push_back({x, *st.baseline_heldout_after,
                                 st.id + ": " + (st.baseline_score.empty() ? "random" : st.baseline_score) + " selection " +
                                     report::loss_text(st.baseline_heldout_after) + " vs scored " + report::loss_text(st.heldout_after),
                                 ""});
    }
  }
  for (auto* group : {&segments, &before_marks, &after_marks}) c.series.insert(c.series.end(), group->begin(), group->end());
  if (!baseline.points.empty()) c.series.push_back(baseline);
  if (!ul2.points.empty()) c.series.push_back(ul2);
  if (!any) {
    s.body = report::note("No step has a held-out loss yet (no step has run, or the pipeline has no held-out data).");
    return s;
  }
  s.body = svg::line_chart(c);
  s.body += report::note("Held-out loss in nats per token. Each step is a segment from its loss before to its loss after "
                         "(filled marker); a hollow marker shows a loss before that differs from the previous step's "
                         "after. Pruning steps raise the loss; recovery pretraining brings it back down.");
  return s;
}

}  // namespace

std::string render_report_html(const nlohmann::ordered_json& report, const std::string& run_dir) {
  const std::string source = (std::filesystem::path(run_dir) / "report.json").string();
  const ReportInfo info = read_report_info(report, source);
  RunFiles files(run_dir);
  std::vector<Section> sections;
  sections.push_back(step_table(info));
  sections.push_back(parameters_section(info));
  sections.push_back(heldout_section(info));
  sections.push_back(report::measured_section(info));
  sections.push_back(report::training_section(info, files));
  sections.push_back(report::layer_section(info, files));
  sections.push_back(report::width_section(info, files));
  sections.push_back(report::vocab_section(info, files));
  sections.push_back(report::selection_section(info));
  sections.push_back(report::distillation_section(info));
  sections.push_back(report::scratch_section(info));

  std::string page =
      "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>" +
      escape((info.name.empty() ? std::string("pipeline") : info.name) + " \xE2\x80\x94 openba-compress pipeline report") +
      "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  page += header(info);
  if (info.scratch) page += report::verdict_banner(*info.scratch);
  for (const auto& s : sections) page += report::render_section(s);
  page += "<p class=\"note\">Rendered from " + escape(source) + ".</p>\n</main>\n</body>\n</html>\n";
  return page;
}

}  // namespace openba

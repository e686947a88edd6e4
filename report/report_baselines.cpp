// The report sections that compare a run with its baselines: scored pruning
// against random selection, distilled recovery against the same step trained
// without distillation, and the compressed lineage against the same shape
// trained from scratch.
#include <cmath>
#include <cstdio>

#include "report/report_page.h"
#include "report/svg_chart.h"
#include "util/format.h"

namespace openba::report {
namespace {

using svg::escape;

std::string tokens_text(std::optional<double> tokens) {
  return tokens ? human_count(static_cast<uint64_t>(*tokens + 0.5)) : "n/a";
}

std::string lr_text(double lr) { return svg::number(lr, 3); }

svg::Series curve_series(const std::string& name, const char* colour, const std::vector<std::pair<double, double>>& curve,
                         bool dashed, svg::Marker marker, const std::string& what) {
  svg::Series s{name, colour, {}, true, dashed, marker};
  for (const auto& [t, l] : curve) {
    s.points.push_back({t, l, what + ": held-out loss " + loss_text(l) + " after " + tokens_text(t) + " tokens", ""});
  }
  return s;
}

std::string cell(const std::string& text, bool numeric = false) {
  return std::string("<td") + (numeric ? " class=\"num\"" : "") + ">" + escape(text) + "</td>";
}

// A step and its baseline side by side: one pair of bars per step of the
// baseline's kind, and a table of both losses and their difference.
struct Pairing {
  std::string kind;                  // ReportStep::baseline_kind
  std::string id, title, x_label, y_label;
  std::string ours, theirs;          // the two bars' names
  const char* our_colour;
  const char* their_colour;
  bool with_before = false;          // a "before" column (the step's input loss)
  std::string none, explanation;     // notes: without pairs / under the table
};

Section paired_section(const ReportInfo& r, const Pairing& p, Section s) {
  svg::BarChart c;
  c.frame.id = p.id;
  c.frame.title = p.title;
  c.frame.x_label = p.x_label;
  c.frame.y_label = p.y_label;
  c.frame.width = 720;
  c.frame.height = 300;
  c.legend = {{p.ours, p.our_colour}, {p.theirs, p.their_colour}};
  std::string rows;
  for (const auto& st : r.steps) {
    if (!st.done() || st.baseline_kind != p.kind || !st.baseline_heldout_after || !st.heldout_after) continue;
    c.groups.push_back({st.id,
                        {{*st.heldout_after, p.our_colour, loss_text(st.heldout_after, 3),
                          st.id + " " + p.ours + ": " + loss_text(st.heldout_after), st.id + "/" + p.ours},
                         {*st.baseline_heldout_after, p.their_colour, loss_text(st.baseline_heldout_after, 3),
                          st.id + " " + p.theirs + ": " + loss_text(st.baseline_heldout_after), st.id + "/" + p.theirs}}});
    rows += "<tr>" + cell(st.id) + (p.with_before ? cell(loss_text(st.heldout_before), true) : "") +
            cell(loss_text(st.heldout_after), true) + cell(loss_text(st.baseline_heldout_after), true) +
            cell(loss_text(*st.baseline_heldout_after - *st.heldout_after), true) + "</tr>\n";
  }
  if (c.groups.empty()) {
    s.body = note(p.none);
    return s;
  }
  s.body = svg::bar_chart(c);
  s.body += "<table>\n<tr><th>step</th>" + std::string(p.with_before ? "<th class=\"num\">before</th>" : "") +
            "<th class=\"num\">" + escape(p.ours) + "</th><th class=\"num\">" + escape(p.theirs) + "</th><th class=\"num\">" +
            escape(p.theirs) + " \xE2\x88\x92 " + escape(p.ours) + "</th></tr>\n" + rows + "</table>\n";
  s.body += note(p.explanation);
  return s;
}

}  // namespace

Section selection_section(const ReportInfo& r) {
  Pairing p;
  p.kind = "random";
  p.id = "chart-baseline";
  p.title = "Held-out loss right after pruning: scored against random selection";
  p.x_label = "pruning step";
  p.y_label = "held-out loss after prune";
  p.ours = "scored";
  p.theirs = "random";
  p.our_colour = svg::colour::blue;
  p.their_colour = svg::colour::orange;
  p.none = "No pruning step ran a random-selection baseline.";
  p.explanation = "The same step, pruning to the same shape, once by importance scores and once by a seeded random "
                  "selection; both evaluated on the same held-out data before any recovery training.";
  return paired_section(r, p, {"baseline", "Scored against random selection", ""});
}

Section distillation_section(const ReportInfo& r) {
  Pairing p;
  p.kind = "ul2";
  p.id = "chart-distillation";
  p.title = "Held-out loss after recovery: distilled against UL2 only";
  p.x_label = "recovery step";
  p.y_label = "held-out loss after recovery";
  p.ours = "distilled";
  p.theirs = "UL2 only";
  p.our_colour = svg::colour::green;
  p.their_colour = svg::colour::purple;
  p.with_before = true;
  p.none = "No recovery step trained a plain-UL2 baseline beside its distillation (baseline: ul2 on a pretrain "
           "step with distill:).";
  p.explanation = "The same recovery step from the same pruned model, on the same examples and tokens, once with the "
                  "distillation term and once with the UL2 cross-entropy alone; a positive difference is what the "
                  "teacher bought.";
  return paired_section(r, p, {"distillation", "Distillation against plain UL2 recovery", ""});
}

std::string verdict_banner(const ScratchReport& x) {
  const bool measured = x.margin.has_value();
  const char* colour = !measured ? "#6b7280" : *x.margin > 0 ? "#166534" : "#991b1b";
  return "<section id=\"verdict\" style=\"border-left: 6px solid " + std::string(colour) +
         "\"><h2>Was it worth it?</h2>\n<p class=\"note\">" + escape(x.verdict) + "</p>\n</section>\n";
}

Section scratch_section(const ReportInfo& r) {
  Section s{"scratch", "Value of compression: against the same shape trained from scratch", ""};
  if (!r.scratch) {
    s.body = note("The pipeline has no from-scratch baseline (baselines: scratch: in the pipeline file).");
    return s;
  }
  const ScratchReport& x = *r.scratch;
  svg::LineChart c;
  c.frame.id = "chart-scratch";
  c.frame.title = "Held-out loss against training tokens: compressed + recovered against trained from scratch";
  c.frame.x_label = "training tokens (the compressed model: recovery tokens since the first pruning step)";
  c.frame.y_label = "held-out loss";
  c.frame.height = 380;
  c.frame.x_format = [](double v) { return v <= 0 ? std::string("0") : human_count(static_cast<uint64_t>(v + 0.5)); };
  if (!x.lineage_curve.empty()) {
    c.series.push_back(curve_series("compressed lineage (prune, recover)", svg::colour::blue, x.lineage_curve, false,
                                    svg::Marker::circle, "compressed"));
  }
  if (!x.scratch_curve.empty()) {
    c.series.push_back(curve_series("from scratch, best lr" + (x.best ? " (" + lr_text(x.best->lr) + ")" : std::string()),
                                    svg::colour::orange, x.scratch_curve, false, svg::Marker::square, "scratch"));
  }
  if (!x.extended_curve.empty()) {
    c.series.push_back(curve_series("from scratch, longer run" + (x.extend ? " (" + std::to_string(*x.extend) + "x)" : std::string()),
                                    svg::colour::orange, x.extended_curve, true, svg::Marker::none, "scratch, longer"));
  }
  double right = 0;
  for (const auto* curve : {&x.lineage_curve, &x.scratch_curve, &x.extended_curve}) {
    if (!curve->empty()) right = std::max(right, curve->back().first);
  }
  if (x.compared_loss && right > 0) {
    c.series.push_back({"compressed model's final loss", svg::colour::dark, {{0, *x.compared_loss, "", ""}, {right, *x.compared_loss, "", ""}},
                        true, true, svg::Marker::none});
  }
  if (x.tokens_to_match && x.compared_loss) {
    c.series.push_back({"scratch matches it here", svg::colour::red,
                        {{*x.tokens_to_match, *x.compared_loss,
                          "scratch reaches " + loss_text(x.compared_loss) + " after " + tokens_text(x.tokens_to_match) + " tokens",
                          tokens_text(x.tokens_to_match)}},
                        false, false, svg::Marker::diamond});
  }
  if (c.series.empty()) {
    s.body = note("Not measured yet: " + x.verdict);
    return s;
  }
  s.body = svg::line_chart(c);
  std::string rows;
  for (const auto& run : x.sweep) {
    const bool best = x.best && run.done && std::fabs(run.lr - x.best->lr) < 1e-15;
    rows += std::string("<tr") + (run.done ? "" : " class=\"not-run\"") + ">" + cell("scratch, lr " + lr_text(run.lr) + (best ? " (best)" : "")) +
            cell(run.done ? tokens_text(run.tokens) : "not run", true) + cell(loss_text(run.heldout_loss), true) +
            cell(run.done && run.heldout_loss && x.compared_loss ? loss_text(*run.heldout_loss - *x.compared_loss) : "", true) + "</tr>\n";
  }
  if (x.extended) {
    rows += "<tr>" + cell("scratch, lr " + lr_text(x.extended->lr) + ", longer run") + cell(tokens_text(x.extended->tokens), true) +
            cell(loss_text(x.extended->heldout_loss), true) +
            cell(x.extended->heldout_loss && x.compared_loss ? loss_text(*x.extended->heldout_loss - *x.compared_loss) : "", true) +
            "</tr>\n";
  }
  s.body += "<table>\n<tr><th>model</th><th class=\"num\">training tokens</th><th class=\"num\">held-out loss</th>"
            "<th class=\"num\">\xE2\x88\x92 compressed</th></tr>\n<tr>" +
            cell("compressed + recovered (" + x.compared_step + ")") + cell(tokens_text(x.recovery_tokens), true) +
            cell(loss_text(x.compared_loss), true) + cell("", true) + "</tr>\n" + rows + "</table>\n";
  std::string text = x.verdict + " The scratch model is the compared step's shape (" + x.architecture + ", " +
                     count_text(x.parameters) + " parameters) from random initialization, trained on the run's data " +
                     "for as many examples as the recovery steps together and measured on the same held-out examples; " +
                     "each learning rate decays to a tenth of itself. ";
  if (x.tokens_to_match) {
    text += "Tokens to match: " + tokens_text(x.tokens_to_match) + " (" + ratio_text(x.tokens_to_match_ratio) +
            " the recovery tokens), where the scratch curve first reaches the compressed model's loss (linear between "
            "evaluations of one longer run, whose learning rate there is still above where a run of that length "
            "would end, so it may overstate what scratch needs).";
  } else if (x.searched_tokens) {
    text += "Scratch did not reach the compressed model's loss within " + tokens_text(x.searched_tokens) + " tokens.";
  }
  s.body += note(text);
  return s;
}

}  // namespace openba::report

// Internal to the HTML report (report_html.cpp): what its section renderers
// share. The sections that read the step reports and metrics files live in
// report_sections.cpp; the overview sections in report_html.cpp.
#pragma once

#include <optional>
#include <string>

#include "report/report_data.h"

namespace openba::report {

// One <section> of the page: a heading, then either content or a sentence
// saying why there is none.
struct Section {
  std::string id, title;
  std::string body;  // HTML
};

std::string render_section(const Section& s);

// `text` made safe for an id attribute (letters, digits, '-' and '_').
std::string anchor(const std::string& text);

// A paragraph of explanatory text (escaped).
std::string note(const std::string& text);
// A table cell of escaped text; numeric right-aligns it; title: its hover text.
std::string td(const std::string& text, bool numeric = false, const std::string& title = "");

// Colours by step kind, the same in every chart.
const char* kind_colour(StepKind kind);
// "pruning", "recovery pretraining", "evaluation".
std::string kind_group(StepKind kind);

// "6.0123" or "n/a".
std::string loss_text(std::optional<double> loss, int decimals = 4);
// "5.10M" or "n/a".
std::string count_text(std::optional<double> count);
// "3.89x" or "n/a".
std::string ratio_text(std::optional<double> ratio);
// "12.34%" of a share in [0, 1], or "n/a".
std::string percent_text(std::optional<double> share, int decimals = 2);

// Sections reading the files that steps refer to.
Section training_section(const ReportInfo& info, RunFiles& files);
Section layer_section(const ReportInfo& info, RunFiles& files);
Section width_section(const ReportInfo& info, RunFiles& files);
Section vocab_section(const ReportInfo& info, RunFiles& files);

// Sections comparing the run with its baselines (report_baselines.cpp):
// scored pruning against random selection of the same shape, distilled
// recovery against the same step without distillation, and the
// compressed lineage against the same shape trained from scratch ("value
// of compression": held-out loss against training tokens, the learning-rate
// sweep, tokens to match). The banner states the verdict under the header.
Section selection_section(const ReportInfo& info);
// The measured speed and task accuracy of each model (report_measured.cpp).
Section measured_section(const ReportInfo& info);
Section distillation_section(const ReportInfo& info);
Section scratch_section(const ReportInfo& info);
std::string verdict_banner(const ScratchReport& scratch);

}  // namespace openba::report

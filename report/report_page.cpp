#include "report/report_page.h"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "report/svg_chart.h"
#include "util/format.h"

namespace openba::report {

std::string render_section(const Section& s) {
  return "<section id=\"" + svg::escape(s.id) + "\">\n<h2>" + svg::escape(s.title) + "</h2>\n" + s.body + "</section>\n";
}

std::string anchor(const std::string& text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
  return out;
}

std::string note(const std::string& text) { return "<p class=\"note\">" + svg::escape(text) + "</p>\n"; }

std::string td(const std::string& text, bool numeric, const std::string& title) {
  return std::string("<td") + (numeric ? " class=\"num\"" : "") +
         (title.empty() ? "" : " title=\"" + svg::escape(title) + "\"") + ">" + svg::escape(text) + "</td>";
}

const char* kind_colour(StepKind kind) {
  if (prunes(kind)) return svg::colour::red;
  if (kind == StepKind::kPretrain) return svg::colour::green;
  if (kind == StepKind::kEval) return svg::colour::blue;
  return svg::colour::dark;
}

std::string kind_group(StepKind kind) {
  if (prunes(kind)) return "pruning";
  if (kind == StepKind::kPretrain) return "recovery pretraining";
  return "evaluation";
}

std::string loss_text(std::optional<double> loss, int decimals) {
  if (!loss || !std::isfinite(*loss)) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, *loss);
  return buffer;
}

std::string count_text(std::optional<double> count) {
  if (!count || !std::isfinite(*count) || *count < 0) return "n/a";
  return human_count(static_cast<uint64_t>(std::llround(*count)));
}

std::string ratio_text(std::optional<double> ratio) {
  if (!ratio || !std::isfinite(*ratio)) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2fx", *ratio);
  return buffer;
}

std::string percent_text(std::optional<double> share, int decimals) {
  if (!share || !std::isfinite(*share)) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*f%%", decimals, 100 * *share);
  return buffer;
}

}  // namespace openba::report

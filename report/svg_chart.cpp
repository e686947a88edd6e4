#include "report/svg_chart.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace openba::svg {
namespace {

constexpr double kTitleSize = 15, kLabelSize = 12, kTickSize = 11;
constexpr double kLegendRow = 18;

// Coordinates with at most two decimals: crisp enough, short markup.
std::string px(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2f", v);
  std::string s = buffer;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string attr(const char* name, const std::string& value) { return std::string(" ") + name + "=\"" + escape(value) + "\""; }
std::string attr(const char* name, double value) { return std::string(" ") + name + "=\"" + px(value) + "\""; }

// Maps a data interval onto a pixel interval (linear).
struct Scale {
  double d0, d1, r0, r1;
  double operator()(double v) const { return d1 == d0 ? (r0 + r1) / 2 : r0 + (v - d0) * (r1 - r0) / (d1 - d0); }
};

struct Area {
  double left, top, right, bottom;
  double width() const { return right - left; }
  double height() const { return bottom - top; }
};

std::string format_with(const Formatter& f, double v) { return f ? f(v) : number(v); }

std::string text(double x, double y, const std::string& s, double size, const char* anchor = "start",
                 const std::string& extra = "") {
  return "<text" + attr("x", x) + attr("y", y) + attr("font-size", size) + attr("text-anchor", anchor) + extra + ">" +
         escape(s) + "</text>";
}

std::string hover(const std::string& s) { return "<title>" + escape(s) + "</title>"; }

// Splits legend entries into rows that fit `width`.
std::vector<std::vector<LegendEntry>> legend_rows(const std::vector<LegendEntry>& entries, double width) {
  std::vector<std::vector<LegendEntry>> rows;
  double used = 0;
  for (const auto& e : entries) {
    const double w = 12 + 6 + text_width(e.name, kTickSize) + 18;
    if (rows.empty() || (used + w > width && !rows.back().empty())) {
      rows.emplace_back();
      used = 0;
    }
    rows.back().push_back(e);
    used += w;
  }
  return rows;
}

// The chart's <svg> element with its title and legend; the plot area is what
// remains after room for the title, legend, tick labels and axis labels.
class Canvas {
 public:
  Canvas(const Frame& f, int height, const std::vector<LegendEntry>& legend, double y_tick_width, bool x_ticks)
      : f_(f), height_(height) {
    const auto rows = legend_rows(legend, f.width - 20);
    out_ = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\"" + attr("id", f.id) + attr("width", f.width) +
           attr("height", height) + " viewBox=\"0 0 " + px(f.width) + " " + px(height) + "\" role=\"img\"" +
           attr("aria-label", f.title) + " font-family=\"DejaVu Sans, Verdana, sans-serif\">" + hover(f.title);
    out_ += "<rect x=\"0\" y=\"0\"" + attr("width", f.width) + attr("height", height) + " fill=\"#ffffff\"/>";
    out_ += text(10, 20, f.title, kTitleSize, "start", " font-weight=\"bold\" fill=\"#1f2937\"");
    double y = 30;
    for (const auto& row : rows) {
      double x = 10;
      for (const auto& e : row) {
        out_ += "<rect" + attr("x", x) + attr("y", y + 2) + " width=\"12\" height=\"12\" rx=\"2\"" + attr("fill", e.colour) + "/>";
        out_ += text(x + 18, y + 12.5, e.name, kTickSize, "start", " fill=\"#374151\"");
        x += 12 + 6 + text_width(e.name, kTickSize) + 18;
      }
      y += kLegendRow;
    }
    area_.top = y + 12;
    area_.left = 10 + (f.y_label.empty() ? 0 : kLabelSize + 8) + y_tick_width + 8;
    area_.right = f.width - 24;  // room for half of the last x tick label
    area_.bottom = height - 8 - (x_ticks ? kTickSize + 8 : 0) - (f.x_label.empty() ? 0 : kLabelSize + 10);
  }

  const Area& area() const { return area_; }
  void add(const std::string& markup) { out_ += markup; }

  // Horizontal grid lines with labels at `ticks`, and the y axis label.
  void y_axis(const Scale& y, const std::vector<double>& ticks) {
    for (double t : ticks) {
      const double py = y(t);
      out_ += "<line" + attr("x1", area_.left) + attr("x2", area_.right) + attr("y1", py) + attr("y2", py) +
              " stroke=\"#e5e7eb\" stroke-width=\"1\"/>";
      out_ += text(area_.left - 6, py + 4, format_with(f_.y_format, t), kTickSize, "end", " fill=\"#4b5563\"");
    }
    if (!f_.y_label.empty()) {
      const double cx = 10 + kLabelSize, cy = (area_.top + area_.bottom) / 2;
      out_ += text(cx, cy, f_.y_label, kLabelSize, "middle",
                   " fill=\"#374151\" transform=\"rotate(-90 " + px(cx) + " " + px(cy) + ")\"");
    }
  }

  // Tick labels under the plot at (position, label), thinned so that none
  // overlap; then the x axis line and label.
  void x_axis(const std::vector<std::pair<double, std::string>>& ticks, bool tick_marks) {
    double widest = 0;
    for (const auto& t : ticks) widest = std::max(widest, text_width(t.second, kTickSize));
    double spacing = area_.width();
    for (size_t i = 1; i < ticks.size(); ++i) spacing = std::min(spacing, std::abs(ticks[i].first - ticks[i - 1].first));
    const size_t every = ticks.size() < 2 ? 1 : static_cast<size_t>(std::ceil((widest + 8) / std::max(spacing, 1.0)));
    for (size_t i = 0; i < ticks.size(); ++i) {
      const double x = ticks[i].first;
      if (tick_marks) {
        out_ += "<line" + attr("x1", x) + attr("x2", x) + attr("y1", area_.bottom) + attr("y2", area_.bottom + 4) +
                " stroke=\"#9ca3af\"/>";
      }
      if (i % every == 0) out_ += text(x, area_.bottom + 6 + kTickSize, ticks[i].second, kTickSize, "middle", " fill=\"#4b5563\"");
    }
    out_ += "<line" + attr("x1", area_.left) + attr("x2", area_.right) + attr("y1", area_.bottom) + attr("y2", area_.bottom) +
            " stroke=\"#9ca3af\" stroke-width=\"1\"/>";
    if (!f_.x_label.empty()) {
      out_ += text((area_.left + area_.right) / 2, height_ - 8, f_.x_label, kLabelSize, "middle", " fill=\"#374151\"");
    }
  }

  std::string finish() { return out_ + "</svg>"; }

 private:
  const Frame& f_;
  int height_;
  Area area_{};
  std::string out_;
};

double widest_label(const std::vector<double>& ticks, const Formatter& f) {
  double w = 0;
  for (double t : ticks) w = std::max(w, text_width(format_with(f, t), kTickSize));
  return w;
}

// Extends [lo, hi] to a non-empty interval.
void widen(double& lo, double& hi) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
}

std::string marker(Marker m, double x, double y, const std::string& colour, const std::string& title) {
  const std::string t = hover(title);
  switch (m) {
    case Marker::none:
      return "";
    case Marker::circle:
      return "<circle class=\"marker\"" + attr("cx", x) + attr("cy", y) + " r=\"4.5\"" + attr("fill", colour) +
             " stroke=\"#ffffff\" stroke-width=\"1\">" + t + "</circle>";
    case Marker::hollow_circle:
      return "<circle class=\"marker\"" + attr("cx", x) + attr("cy", y) + " r=\"4\" fill=\"#ffffff\"" + attr("stroke", colour) +
             " stroke-width=\"2\">" + t + "</circle>";
    case Marker::square:
      return "<rect class=\"marker\"" + attr("x", x - 4) + attr("y", y - 4) + " width=\"8\" height=\"8\"" + attr("fill", colour) +
             ">" + t + "</rect>";
    case Marker::diamond:
      return "<path class=\"marker\" d=\"M" + px(x) + " " + px(y - 6) + "L" + px(x + 6) + " " + px(y) + "L" + px(x) + " " +
             px(y + 6) + "L" + px(x - 6) + " " + px(y) + "Z\"" + attr("fill", colour) + " stroke=\"#ffffff\" stroke-width=\"1\">" +
             t + "</path>";
  }
  return "";
}

}  // namespace

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if (c < 0x20 && ch != '\n' && ch != '\t' && ch != '\r') break;  // not allowed in XML 1.0
        out += ch;
    }
  }
  return out;
}

std::string number(double v, int significant) {
  if (!std::isfinite(v)) return "n/a";
  if (v == 0) return "0";
  char buffer[48];
  const double magnitude = std::abs(v);
  if (magnitude >= 1 && magnitude < 1e7) {
    // Plain digits for everyday magnitudes ("60000", not "6e+04").
    const int digits = static_cast<int>(std::floor(std::log10(magnitude))) + 1;
    std::snprintf(buffer, sizeof(buffer), "%.*f", std::max(0, significant - digits), v);
    std::string s = buffer;
    if (s.find('.') != std::string::npos) {
      while (s.back() == '0') s.pop_back();
      if (s.back() == '.') s.pop_back();
    }
    return s;
  }
  std::snprintf(buffer, sizeof(buffer), "%.*g", significant, v);
  std::string s = buffer;
  // "1.5e-05" -> "1.5e-5", "2e+06" -> "2e6"
  const size_t e = s.find('e');
  if (e != std::string::npos) {
    std::string mant = s.substr(0, e), exp = s.substr(e + 1);
    const bool negative = exp[0] == '-';
    exp = exp.substr(1);
    while (exp.size() > 1 && exp[0] == '0') exp.erase(0, 1);
    s = mant + "e" + (negative ? "-" : "") + exp;
  }
  return s;
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  widen(lo, hi);
  max_ticks = std::max(max_ticks, 2);
  const double raw = (hi - lo) / (max_ticks - 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  const double start = std::floor(lo / step + 1e-9) * step;
  for (int i = 0; i < 1000; ++i) {
    double t = start + i * step;
    if (std::abs(t) < step * 1e-9) t = 0;  // no "-1.4e-17" tick
    ticks.push_back(t);
    if (t >= hi - step * 1e-9) break;
  }
  return ticks;
}

double text_width(const std::string& s, double font_size) {
  double em = 0;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    em += len >= 3 ? 1.0 : (c == ' ' || c == '.' || c == ',' || c == 'i' || c == 'l' || c == '1') ? 0.4 : 0.64;
    i += static_cast<size_t>(len);
  }
  return em * font_size;
}

std::string bar_chart(const BarChart& c) {
  const Frame& f = c.frame;
  double lo = 0, hi = 0;
  size_t annotation_lines = 0;
  for (const auto& g : c.groups) {
    for (const auto& b : g.bars) {
      if (std::isfinite(b.value)) {
        lo = std::min(lo, b.value);
        hi = std::max(hi, b.value);
      }
      if (!b.annotation.empty()) {
        annotation_lines = std::max(annotation_lines, 1 + static_cast<size_t>(std::count(b.annotation.begin(), b.annotation.end(), '\n')));
      }
    }
  }
  if (hi == lo) hi = 1;
  const auto ticks = nice_ticks(lo, hi, 6);
  lo = std::min(lo, ticks.front());
  hi = std::max(hi, ticks.back());
  Canvas canvas(f, f.height, c.legend, widest_label(ticks, f.y_format), true);
  const Area& a = canvas.area();
  // Room above the tallest bar for its annotation.
  const double room = annotation_lines ? annotation_lines * 13.0 + 4 : 0;
  const Scale y{lo, hi, a.bottom, a.top + room};
  canvas.y_axis(y, ticks);
  const double slot = a.width() / std::max<size_t>(c.groups.size(), 1);
  std::vector<std::pair<double, std::string>> labels;
  for (size_t g = 0; g < c.groups.size(); ++g) {
    const auto& group = c.groups[g];
    const double centre = a.left + slot * (g + 0.5);
    // Bars no wider than 90 px: a lone pair of bars should not fill the chart.
    const double inner = std::min(slot * 0.72, 90.0 * group.bars.size());
    const double width = inner / std::max<size_t>(group.bars.size(), 1);
    std::string label = group.label;
    if (label.size() > 28) label = label.substr(0, 26) + "\xE2\x80\xA6";
    labels.emplace_back(centre, label);
    for (size_t i = 0; i < group.bars.size(); ++i) {
      const Bar& b = group.bars[i];
      if (!std::isfinite(b.value)) continue;
      const double x = centre - inner / 2 + width * (i + 0.06);
      const double top = y(std::max(b.value, 0.0)), bottom = y(std::min(b.value, 0.0));
      canvas.add("<rect class=\"bar\"" + attr("x", x) + attr("y", top) + attr("width", width * 0.88) +
                 attr("height", bottom - top) + attr("fill", b.colour) + attr("data-value", number(b.value, 12)) +
                 (b.key.empty() ? "" : attr("data-key", b.key)) + ">" + hover(b.hover.empty() ? number(b.value) : b.hover) +
                 "</rect>");
      if (b.annotation.empty()) continue;
      // Annotations only where they fit the slot; the hover text has them anyway.
      std::vector<std::string> lines;
      size_t start = 0;
      for (size_t nl; (nl = b.annotation.find('\n', start)) != std::string::npos; start = nl + 1) {
        lines.push_back(b.annotation.substr(start, nl - start));
      }
      lines.push_back(b.annotation.substr(start));
      double widest = 0;
      for (const auto& l : lines) widest = std::max(widest, text_width(l, kTickSize));
      if (widest > slot / group.bars.size() + 4) continue;
      const double cx = x + width * 0.44;
      const bool below = b.value < 0;
      for (size_t l = 0; l < lines.size(); ++l) {
        const double ly = below ? bottom + 12 + 13.0 * l : top - 4 - 13.0 * (lines.size() - 1 - l);
        canvas.add(text(cx, ly, lines[l], kTickSize, "middle", " fill=\"#1f2937\""));
      }
    }
  }
  if (lo < 0) {
    canvas.add("<line" + attr("x1", a.left) + attr("x2", a.right) + attr("y1", y(0)) + attr("y2", y(0)) +
               " stroke=\"#6b7280\" stroke-width=\"1\"/>");
  }
  canvas.x_axis(labels, false);
  return canvas.finish();
}

std::string line_chart(const LineChart& c) {
  const Frame& f = c.frame;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : c.series) {
    for (const auto& p : s.points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
      y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
    }
  }
  for (const auto& cat : c.x_categories) x0 = std::min(x0, cat.first - 0.5), x1 = std::max(x1, cat.first + 0.5);
  if (!std::isfinite(x0)) x0 = 0, x1 = 1;
  if (!std::isfinite(y0)) y0 = 0, y1 = 1;
  if (std::isfinite(c.x_min)) x0 = c.x_min;
  if (std::isfinite(c.x_max)) x1 = c.x_max;
  if (std::isfinite(c.y_min)) y0 = c.y_min;
  if (std::isfinite(c.y_max)) y1 = c.y_max;
  widen(x0, x1);
  widen(y0, y1);
  const auto y_ticks = nice_ticks(y0, y1, 6);
  if (!std::isfinite(c.y_min)) y0 = std::min(y0, y_ticks.front());
  if (!std::isfinite(c.y_max)) y1 = std::max(y1, y_ticks.back());
  std::vector<double> x_ticks;
  if (c.x_categories.empty()) {
    x_ticks = nice_ticks(x0, x1, std::max(3, f.width / 110));
    if (!std::isfinite(c.x_min)) x0 = std::min(x0, x_ticks.front());
    if (!std::isfinite(c.x_max)) x1 = std::max(x1, x_ticks.back());
  }
  std::vector<LegendEntry> legend;
  std::set<std::string> named;
  for (const auto& s : c.series) {
    if (s.in_legend && !s.name.empty() && named.insert(s.name).second) legend.push_back({s.name, s.colour});
  }
  Canvas canvas(f, f.height, legend, widest_label(y_ticks, f.y_format), true);
  const Area& a = canvas.area();
  const Scale x{x0, x1, a.left, a.right}, y{y0, y1, a.bottom, a.top};
  std::vector<double> inside;
  for (double t : y_ticks) if (t >= y0 - 1e-12 && t <= y1 + 1e-12) inside.push_back(t);
  canvas.y_axis(y, inside);
  std::vector<std::pair<double, std::string>> x_labels;
  if (c.x_categories.empty()) {
    for (double t : x_ticks) if (t >= x0 - 1e-12 && t <= x1 + 1e-12) x_labels.emplace_back(x(t), format_with(f.x_format, t));
  } else {
    for (const auto& cat : c.x_categories) x_labels.emplace_back(x(cat.first), cat.second);
  }
  canvas.x_axis(x_labels, true);
  // Lines first, markers on top of every line.
  for (const auto& s : c.series) {
    if (!s.line) continue;
    std::string d;
    bool pen_down = false;
    for (const auto& p : s.points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) {
        pen_down = false;
        continue;
      }
      d += (pen_down ? "L" : "M") + px(x(p.x)) + " " + px(y(p.y));
      pen_down = true;
    }
    if (d.empty()) continue;
    canvas.add("<path class=\"series\"" + attr("d", d) + " fill=\"none\"" + attr("stroke", s.colour) +
               " stroke-width=\"2\" stroke-linejoin=\"round\"" + (s.dashed ? " stroke-dasharray=\"5 4\"" : "") +
               (s.name.empty() ? "" : attr("data-key", s.name)) + ">" + hover(s.name) + "</path>");
  }
  for (const auto& s : c.series) {
    for (const auto& p : s.points) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      const double px_ = x(p.x), py = y(p.y);
      if (s.marker != Marker::none) {
        std::string m = marker(s.marker, px_, py, s.colour, p.hover.empty() ? s.name + ": " + number(p.y) : p.hover);
        // data-* attributes on the mark: its data values, for tools and tests.
        const size_t close = m.find('>');
        m.insert(close, attr("data-key", s.name) + attr("data-x", number(p.x, 12)) + attr("data-y", number(p.y, 12)));
        canvas.add(m);
      }
      if (!p.label.empty()) {
        const bool left = px_ + 8 + text_width(p.label, kTickSize) > a.right;
        canvas.add(text(left ? px_ - 8 : px_ + 8, py - 8, p.label, kTickSize, left ? "end" : "start",
                        " fill=\"#1f2937\" font-weight=\"bold\""));
      }
    }
  }
  return canvas.finish();
}

std::string histogram(const Histogram& c) {
  const Frame& f = c.frame;
  const size_t bins = c.edges.size() > 1 ? c.edges.size() - 1 : 0;
  std::vector<double> totals(bins, 0.0);
  for (const auto& g : c.groups) {
    for (size_t i = 0; i < bins && i < g.counts.size(); ++i) totals[i] += g.counts[i];
  }
  const double top_count = totals.empty() ? 1 : std::max(1.0, *std::max_element(totals.begin(), totals.end()));
  const auto y_ticks = nice_ticks(0, std::max(top_count, 5.0), 5);  // whole counts
  std::vector<LegendEntry> legend;
  for (const auto& g : c.groups) legend.push_back({g.name, g.colour});
  Canvas canvas(f, f.height, legend, widest_label(y_ticks, f.y_format), true);
  const Area& a = canvas.area();
  const double e0 = bins ? c.edges.front() : 0, e1 = bins ? c.edges.back() : 1;
  const Scale x{e0, e1, a.left, a.right}, y{0, y_ticks.back(), a.bottom, a.top};
  canvas.y_axis(y, y_ticks);
  std::vector<std::pair<double, std::string>> x_labels;
  for (double t : nice_ticks(e0, e1, std::max(3, f.width / 90))) {
    if (t >= e0 - 1e-9 && t <= e1 + 1e-9) x_labels.emplace_back(x(t), format_with(f.x_format, t));
  }
  std::vector<double> stacked(bins, 0.0);
  for (const auto& g : c.groups) {
    for (size_t i = 0; i < bins && i < g.counts.size(); ++i) {
      if (g.counts[i] <= 0) continue;
      const double left = x(c.edges[i]), right = x(c.edges[i + 1]);
      const double top = y(stacked[i] + g.counts[i]), bottom = y(stacked[i]);
      stacked[i] += g.counts[i];
      const std::string range = format_with(f.x_format, c.edges[i]) + " to " + format_with(f.x_format, c.edges[i + 1]);
      canvas.add("<rect class=\"bin\"" + attr("x", left + 0.5) + attr("y", top) + attr("width", std::max(right - left - 1, 0.5)) +
                 attr("height", bottom - top) + attr("fill", g.colour) + attr("data-key", g.name) +
                 attr("data-value", number(g.counts[i], 12)) + ">" +
                 hover(g.name + ": " + number(g.counts[i], 12) + " in " + range) + "</rect>");
    }
  }
  canvas.x_axis(x_labels, true);
  return canvas.finish();
}

std::string strip(const Strip& c) {
  Frame f = c.frame;
  double label_w = 0;
  size_t most = 1;
  for (const auto& r : c.rows) {
    label_w = std::max(label_w, text_width(r.label, kLabelSize));
    most = std::max(most, r.dropped.size());
  }
  const double left = 10 + label_w + 12;
  const double cell = std::min(26.0, (f.width - left - 16) / most);
  const double row_h = cell + (cell >= 16 ? 10 : 22);
  const std::vector<LegendEntry> legend{{"kept", c.kept_colour}, {"dropped", c.dropped_colour}};
  const double top = 30 + kLegendRow + 14;
  const int height = static_cast<int>(top + row_h * c.rows.size() + 6);
  Canvas canvas(f, height, legend, 0, false);
  for (size_t r = 0; r < c.rows.size(); ++r) {
    const double y = top + row_h * r;
    canvas.add(text(10, y + cell / 2 + 4, c.rows[r].label, kLabelSize, "start", " fill=\"#374151\""));
    for (size_t i = 0; i < c.rows[r].dropped.size(); ++i) {
      const bool dropped = c.rows[r].dropped[i];
      const double x = left + cell * i;
      canvas.add("<rect class=\"cell\"" + attr("x", x) + attr("y", y) + attr("width", cell - 2) + attr("height", cell - 2) +
                 " rx=\"2\"" + attr("fill", dropped ? c.dropped_colour : c.kept_colour) +
                 attr("data-key", c.rows[r].label + " " + std::to_string(i)) + attr("data-value", dropped ? "dropped" : "kept") +
                 ">" + hover(c.rows[r].label + " " + std::to_string(i) + ": " + (dropped ? "dropped" : "kept")) + "</rect>");
      if (cell >= 16) {
        canvas.add(text(x + (cell - 2) / 2, y + cell / 2 + 3, std::to_string(i), 10, "middle", " fill=\"#ffffff\""));
      } else if (i % 5 == 0) {
        canvas.add(text(x + (cell - 2) / 2, y + cell + 10, std::to_string(i), 10, "middle", " fill=\"#4b5563\""));
      }
    }
  }
  return canvas.finish();
}

}  // namespace openba::svg

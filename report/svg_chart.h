// Small SVG building blocks for the pipeline report (report/report_html.h).
//
// Every chart is one self-contained <svg> string: no scripts, no external
// references, sizes in pixels with a viewBox so the page may scale it. Each
// chart has a title and axis labels, and every mark (bar, marker, cell)
// carries an SVG <title> with its values, which browsers show on hover. The
// markup is XML-clean (every tag closed, attributes quoted, text escaped) so
// the page also parses as XHTML.
//
// Text width is estimated from the character count (no font metrics without
// a browser), generously enough for DejaVu Sans, the font Debian's Chromium
// falls back to; labels that would collide are thinned out instead.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace openba::svg {

// Colours shared by every chart (a colour-blind-friendly set).
namespace colour {
inline constexpr const char* blue = "#4c78a8";
inline constexpr const char* orange = "#f58518";
inline constexpr const char* red = "#e45756";
inline constexpr const char* teal = "#72b7b2";
inline constexpr const char* green = "#54a24b";
inline constexpr const char* purple = "#b279a2";
inline constexpr const char* dark = "#4b5563";
inline constexpr const char* light = "#cfd4dc";  // planned / not run
}  // namespace colour

// Escapes &, <, >, " and ' for XML text and attribute values; drops control
// characters that XML 1.0 forbids.
std::string escape(const std::string& text);

// A readable number with `significant` digits: "0.25", "1200", "3.1e-5".
std::string number(double value, int significant = 4);

// Round, evenly spaced tick values covering [lo, hi] ("nice numbers": steps
// of 1, 2 or 5 times a power of ten), at most about `max_ticks` of them.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks = 6);

// Estimated width in pixels of `text` at `font_size` (CJK counts double).
double text_width(const std::string& text, double font_size);

using Formatter = std::function<std::string(double)>;

// What every chart has: its id (an anchor for links and tests), title, axis
// labels, size and tick label formats (number() when unset).
struct Frame {
  std::string id;
  std::string title;
  std::string x_label, y_label;
  int width = 1100, height = 320;
  Formatter x_format, y_format;
};

struct LegendEntry {
  std::string name, colour;
};

// --- Bar chart: groups of bars along x, values on a linear y axis from 0 ----

struct Bar {
  double value = 0;
  std::string colour = colour::blue;
  std::string annotation;  // drawn above the bar; '\n' separates lines
  std::string hover;       // the <title>; defaults to the value
  std::string key;         // data-key attribute (to find the bar again)
};

struct BarGroup {
  std::string label;  // under the group on the x axis
  std::vector<Bar> bars;
};

struct BarChart {
  Frame frame;
  std::vector<BarGroup> groups;
  std::vector<LegendEntry> legend;
};

// Bars start at 0 so their heights are proportional to their values
// (negative values hang below the zero line).
std::string bar_chart(const BarChart& chart);

// --- Line chart: series of points, lines and/or markers ---------------------

enum class Marker { none, circle, hollow_circle, square, diamond };

struct Point {
  double x = 0, y = 0;  // a NaN y breaks the line
  std::string hover;    // the marker's <title>
  std::string label;    // drawn beside the marker
};

struct Series {
  std::string name, colour = colour::blue;
  std::vector<Point> points;
  bool line = true;
  bool dashed = false;
  Marker marker = Marker::none;
  bool in_legend = true;  // series with the same name share one legend entry
};

struct LineChart {
  Frame frame;
  std::vector<Series> series;
  // When set, x ticks sit at these positions with these labels (categories
  // such as pipeline steps) instead of numeric ticks.
  std::vector<std::pair<double, std::string>> x_categories;
  // Fixed axis bounds; NaN = from the data.
  double x_min = NAN, x_max = NAN, y_min = NAN, y_max = NAN;
};

std::string line_chart(const LineChart& chart);

// --- Histogram: bins along x, groups stacked in each bin --------------------

struct HistogramGroup {
  std::string name, colour;
  std::vector<double> counts;  // one per bin
};

struct Histogram {
  Frame frame;
  std::vector<double> edges;  // bins + 1 ascending bin edges
  std::vector<HistogramGroup> groups;
};

std::string histogram(const Histogram& chart);

// --- Strip: a row of cells per item, kept or dropped ------------------------

struct StripRow {
  std::string label;
  std::vector<bool> dropped;
};

struct Strip {
  Frame frame;  // height is computed from the rows; axis labels unused
  std::vector<StripRow> rows;
  std::string kept_colour = colour::blue, dropped_colour = colour::red;
};

std::string strip(const Strip& chart);

}  // namespace openba::svg

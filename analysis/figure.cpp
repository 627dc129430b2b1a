// Figure layout and drawing with Cairo, and the description's JSON and CSV
// forms. Layout runs once per render on a measuring context whose text
// metrics match every output surface, so all formats place things alike.
#include "analysis/figure.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <memory>
#include <set>
#include <utility>

#include "model/errors.h"
#include "model/file_util.h"

namespace superpose {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------
// Colours

constexpr Rgb hex(unsigned v) { return Rgb{((v >> 16) & 255) / 255.0, ((v >> 8) & 255) / 255.0, (v & 255) / 255.0}; }

// Okabe & Ito, "Color Universal Design" (2008).
constexpr Rgb kOkabeIto[8] = {hex(0x000000), hex(0xE69F00), hex(0x56B4E9), hex(0x009E73),
                              hex(0xF0E442), hex(0x0072B2), hex(0xD55E00), hex(0xCC79A7)};
// viridis (van der Walt & Smith, public domain) at 33 equally spaced points
// of its 256-entry table; linear interpolation between them stays within
// 2/255 of the table.
constexpr Rgb kViridis[33] = {
    hex(0x440154), hex(0x470D60), hex(0x48186A), hex(0x482374), hex(0x472D7B), hex(0x453681), hex(0x424086),
    hex(0x3F4989), hex(0x3B528B), hex(0x375A8D), hex(0x33638D), hex(0x2F6A8E), hex(0x2C728E), hex(0x297A8E),
    hex(0x26818E), hex(0x23898E), hex(0x21908C), hex(0x1F988B), hex(0x1F9F88), hex(0x21A685), hex(0x28AE80),
    hex(0x31B57B), hex(0x3EBC74), hex(0x4CC26C), hex(0x5DC963), hex(0x6ECE58), hex(0x82D34C), hex(0x96D83F),
    hex(0xABDC32), hex(0xC0DF24), hex(0xD5E21A), hex(0xEAE51A), hex(0xFDE725)};
// ColorBrewer RdBu (11 classes), reversed so that negative values are blue.
constexpr Rgb kDiverging[11] = {hex(0x053061), hex(0x2166AC), hex(0x4393C3), hex(0x92C5DE),
                                hex(0xD1E5F0), hex(0xF7F7F7), hex(0xFDDBC7), hex(0xF4A582),
                                hex(0xD6604D), hex(0xB2182B), hex(0x67001F)};

const Rgb kInk{0.13, 0.13, 0.13};        // axes, ticks and text
const Rgb kReferenceGrey{0.45, 0.45, 0.45};
const Rgb kGridGrey{0.88, 0.88, 0.88};
const Rgb kMissingCell{0.82, 0.82, 0.82};  // non-finite heat-map cells

template <size_t N>
Rgb interpolate(const Rgb (&table)[N], double t) {
  t = std::isfinite(t) ? std::clamp(t, 0.0, 1.0) : 0.0;
  const double at = t * (N - 1);
  const size_t i = std::min(static_cast<size_t>(at), N - 2);
  const double f = at - static_cast<double>(i);
  const Rgb& a = table[i];
  const Rgb& b = table[i + 1];
  return Rgb{a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f};
}

// ---------------------------------------------------------------------------
// Names of enum values in JSON

template <typename E>
struct Named {
  E value;
  const char* name;
};

const Named<SeriesKind> kSeriesKinds[] = {{SeriesKind::kLine, "line"},
                                          {SeriesKind::kScatter, "scatter"},
                                          {SeriesKind::kBar, "bar"},
                                          {SeriesKind::kLineMarkers, "line_markers"}};
const Named<MarkerShape> kMarkers[] = {{MarkerShape::kCircle, "circle"},     {MarkerShape::kSquare, "square"},
                                       {MarkerShape::kTriangle, "triangle"}, {MarkerShape::kDiamond, "diamond"},
                                       {MarkerShape::kCross, "cross"},       {MarkerShape::kPlus, "plus"}};
const Named<LineStyle> kLineStyles[] = {
    {LineStyle::kSolid, "solid"}, {LineStyle::kDashed, "dashed"}, {LineStyle::kDotted, "dotted"}};
const Named<LegendPosition> kLegendPositions[] = {{LegendPosition::kBest, "best"},
                                                  {LegendPosition::kUpperRight, "upper_right"},
                                                  {LegendPosition::kUpperLeft, "upper_left"},
                                                  {LegendPosition::kLowerLeft, "lower_left"},
                                                  {LegendPosition::kLowerRight, "lower_right"},
                                                  {LegendPosition::kOutsideRight, "outside_right"},
                                                  {LegendPosition::kOutsideTop, "outside_top"}};
const Named<PanelKind> kPanelKinds[] = {{PanelKind::kPlot, "plot"}, {PanelKind::kHeatMap, "heat_map"}};
const Named<ColourMap> kColourMaps[] = {{ColourMap::kViridis, "viridis"}, {ColourMap::kDiverging, "diverging"}};
const Named<Annotation::Align> kAligns[] = {
    {Annotation::Align::kLeft, "left"}, {Annotation::Align::kCentre, "centre"}, {Annotation::Align::kRight, "right"}};

template <typename E, size_t N>
const char* name_of(E value, const Named<E> (&table)[N]) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

// ---------------------------------------------------------------------------
// Validation

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string panel_where(const Panel& panel, size_t index) {
  std::string s = "panel " + std::to_string(index + 1);
  if (!panel.title.empty()) s += " " + quoted(panel.title);
  return s;
}

std::string series_where(const Panel& panel, size_t panel_index, const Series& series, size_t index) {
  return panel_where(panel, panel_index) + ", series " +
         (series.name.empty() ? std::to_string(index + 1) : quoted(series.name));
}

std::string number_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

// The x position of point i of a series: bars without x stand at their index.
double point_x(const Series& s, size_t i) { return s.x.empty() ? static_cast<double>(i) : s.x[i]; }

void check_range(const Axis& axis, const std::string& at, const std::string& where) {
  for (const auto* end : {&axis.min, &axis.max}) {
    if (*end && !std::isfinite(**end)) throw Error(where, at + ": fixed range end is not finite");
    if (*end && axis.log_scale && **end <= 0) {
      throw Error(where, at + ": fixed range end " + number_text(**end) + " is not positive on a log axis");
    }
  }
  if (axis.min && axis.max && !(*axis.min < *axis.max)) {
    throw Error(where, at + ": fixed range min " + number_text(*axis.min) + " is not below max " +
                           number_text(*axis.max));
  }
}

void check_colour(const std::optional<Rgb>& c, const std::string& at, const std::string& where) {
  if (!c) return;
  for (double v : {c->r, c->g, c->b}) {
    if (!(v >= 0 && v <= 1)) throw Error(where, at + ": colour components must lie in [0, 1]");
  }
}

void validate_series(const Series& s, const std::string& at, const std::string& where) {
  const size_t n = s.y.size();
  const bool bar = s.kind == SeriesKind::kBar;
  if (!s.categories.empty()) {
    if (!bar) throw Error(where, at + ": categories are for bar series");
    if (!s.x.empty()) throw Error(where, at + ": has both x values and categories");
    if (s.categories.size() != n) {
      throw Error(where, at + ": " + std::to_string(s.categories.size()) + " categories for " + std::to_string(n) +
                             " y values");
    }
  } else if (!(bar && s.x.empty()) && s.x.size() != n) {
    throw Error(where, at + ": x has " + std::to_string(s.x.size()) + " values, y has " + std::to_string(n));
  }
  if (s.error_lo.size() != s.error_hi.size()) {
    throw Error(where, at + ": error_lo has " + std::to_string(s.error_lo.size()) + " values, error_hi has " +
                           std::to_string(s.error_hi.size()));
  }
  if (!s.error_lo.empty() && s.error_lo.size() != n) {
    throw Error(where, at + ": error bounds have " + std::to_string(s.error_lo.size()) + " values, y has " +
                           std::to_string(n));
  }
  if (!s.point_categories.empty()) {
    if (s.kind != SeriesKind::kScatter) throw Error(where, at + ": point_categories are for scatter series");
    if (s.point_categories.size() != n) {
      throw Error(where, at + ": " + std::to_string(s.point_categories.size()) + " point categories for " +
                             std::to_string(n) + " points");
    }
    for (int c : s.point_categories) {
      if (c < 0 || (!s.category_names.empty() && static_cast<size_t>(c) >= s.category_names.size())) {
        throw Error(where, at + ": point category " + std::to_string(c) + " outside [0, " +
                               std::to_string(s.category_names.empty() ? 0 : s.category_names.size()) +
                               (s.category_names.empty() ? ")" : ") of category_names"));
      }
    }
  } else if (!s.category_names.empty()) {
    throw Error(where, at + ": category_names without point_categories");
  }
  if (!s.category_colours.empty()) {
    if (s.category_colours.size() != s.category_names.size()) {
      throw Error(where, at + ": " + std::to_string(s.category_colours.size()) + " category colours for " +
                             std::to_string(s.category_names.size()) + " category names");
    }
    for (const Rgb& c : s.category_colours) check_colour(c, at, where);
  }
  if (!(std::isfinite(s.marker_size) && s.marker_size >= 0)) throw Error(where, at + ": marker_size must be >= 0");
  if (!(std::isfinite(s.line_width) && s.line_width >= 0)) throw Error(where, at + ": line_width must be >= 0");
  if (!(s.opacity >= 0 && s.opacity <= 1)) throw Error(where, at + ": opacity must lie in [0, 1]");
  check_colour(s.colour, at, where);
  size_t finite = 0;
  for (size_t i = 0; i < n; ++i) finite += std::isfinite(point_x(s, i)) && std::isfinite(s.y[i]);
  if (finite == 0) throw Error(where, at + (n == 0 ? ": has no points" : ": has no finite points"));
}

void validate_heat_map(const HeatMap& h, const std::string& at, const std::string& where) {
  if (h.rows <= 0 || h.cols <= 0) {
    throw Error(where, at + ": heat map of " + std::to_string(h.rows) + " x " + std::to_string(h.cols) + " cells");
  }
  // Cairo's image surfaces (which hold the cells) are limited to 32767 pixels a side.
  if (h.rows > 32767 || h.cols > 32767) throw Error(where, at + ": heat map larger than 32767 cells a side");
  if (static_cast<int64_t>(h.values.size()) != h.rows * h.cols) {
    throw Error(where, at + ": heat map has " + std::to_string(h.values.size()) + " values for " +
                           std::to_string(h.rows) + " x " + std::to_string(h.cols) + " cells");
  }
  if (std::none_of(h.values.begin(), h.values.end(), [](double v) { return std::isfinite(v); })) {
    throw Error(where, at + ": heat map has no finite values");
  }
  if (!h.row_labels.empty() && static_cast<int64_t>(h.row_labels.size()) != h.rows) {
    throw Error(where, at + ": " + std::to_string(h.row_labels.size()) + " row labels for " +
                           std::to_string(h.rows) + " rows");
  }
  if (!h.col_labels.empty() && static_cast<int64_t>(h.col_labels.size()) != h.cols) {
    throw Error(where, at + ": " + std::to_string(h.col_labels.size()) + " column labels for " +
                           std::to_string(h.cols) + " columns");
  }
  for (const auto* end : {&h.min, &h.max}) {
    if (*end && !std::isfinite(**end)) throw Error(where, at + ": colour range end is not finite");
  }
  if (h.min && h.max && !(*h.min < *h.max)) {
    throw Error(where, at + ": colour range min " + number_text(*h.min) + " is not below max " + number_text(*h.max));
  }
}

// The grid's column count (cols = 0 resolved).
int grid_cols(const Figure& f) {
  if (f.cols > 0) return f.cols;
  const int n = static_cast<int>(f.panels.size());
  return std::max(1, (n + f.rows - 1) / std::max(1, f.rows));
}

// ---------------------------------------------------------------------------
// Text

enum class VAlign { kTop, kMiddle, kBaseline, kBottom };

// Text drawing and measuring in one font family on one Cairo context.
class Pen {
 public:
  Pen(cairo_t* cr, std::string family) : cr_(cr), family_(std::move(family)) {
    // Unhinted metrics make text widths independent of the surface and its
    // scale, so layout (measured on a separate surface) matches every output.
    cairo_font_options_t* options = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY);
    cairo_set_font_options(cr_, options);
    cairo_font_options_destroy(options);
  }

  cairo_t* cr() const { return cr_; }

  void font(double size, bool bold = false) const {
    cairo_select_font_face(cr_, family_.c_str(), CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, size);
  }
  double width(const std::string& s, double size, bool bold = false) const {
    font(size, bold);
    cairo_text_extents_t e;
    cairo_text_extents(cr_, s.c_str(), &e);
    return e.x_advance;
  }
  double widest(const std::vector<std::string>& labels, double size) const {
    double w = 0;
    for (const auto& s : labels) w = std::max(w, width(s, size));
    return w;
  }
  double line_height(double size, bool bold = false) const {
    font(size, bold);
    cairo_font_extents_t e;
    cairo_font_extents(cr_, &e);
    return e.ascent + e.descent;
  }

  // Draws s with its anchor at (x, y): halign 0 left, 0.5 centre, 1 right;
  // valign against the font's ascent/descent (kMiddle: the digits' middle).
  // angle in radians, clockwise as Cairo's y points down.
  void text(const std::string& s, double x, double y, double size, double halign, VAlign valign,
            double angle = 0, bool bold = false) const {
    if (s.empty()) return;
    font(size, bold);
    cairo_text_extents_t te;
    cairo_text_extents(cr_, s.c_str(), &te);
    cairo_font_extents_t fe;
    cairo_font_extents(cr_, &fe);
    double dy = 0;
    switch (valign) {
      case VAlign::kTop: dy = fe.ascent; break;
      case VAlign::kMiddle: {
        cairo_text_extents_t digit;
        cairo_text_extents(cr_, "0", &digit);
        dy = -digit.y_bearing / 2;
        break;
      }
      case VAlign::kBaseline: break;
      case VAlign::kBottom: dy = -fe.descent; break;
    }
    cairo_save(cr_);
    cairo_translate(cr_, x, y);
    cairo_rotate(cr_, angle);
    cairo_move_to(cr_, -halign * te.x_advance, dy);
    cairo_show_text(cr_, s.c_str());
    cairo_new_path(cr_);
    cairo_restore(cr_);
  }

 private:
  cairo_t* cr_;
  std::string family_;
};

// Type sizes relative to the figure's font size.
constexpr double kTickScale = 0.875;
constexpr double kTitleScale = 1.125;

// Spacing in points.
constexpr double kOuterPad = 3;     // figure edge to content
constexpr double kPanelGap = 6;     // between grid cells
constexpr double kInnerPad = 1;     // cell edge to a panel's outermost text
constexpr double kTickLength = 3;
constexpr double kTickGap = 2;      // tick to its label
constexpr double kLabelGap = 3;     // tick labels to the axis label
constexpr double kTitleGap = 3;     // panel title to the plot area
constexpr double kLegendInset = 4;  // plot edge to an inside legend
constexpr double kLegendPad = 3;
constexpr double kLegendSwatch = 14;
constexpr double kLegendColumnGap = 8;  // between columns of a legend above the plot
constexpr double kColourBarGap = 6;
constexpr double kColourBarWidth = 7;
constexpr double kAxisLineWidth = 0.6;
constexpr double kDataMargin = 0.04;  // share of the data range added on free sides

// ---------------------------------------------------------------------------
// Numbers on axes

struct Scale {
  double lo = 0, hi = 1;  // the values at the low (left/bottom) and high ends; lo > hi flips the axis
  bool log = false;
  double unit(double v) const {
    if (log) return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return (v - lo) / (hi - lo);
  }
  bool contains(double v) const {
    if (!std::isfinite(v) || (log && v <= 0)) return false;
    const double u = unit(v);
    return u >= -1e-9 && u <= 1 + 1e-9;
  }
};

std::string utf8_minus(std::string s) {
  if (!s.empty() && s[0] == '-') s.replace(0, 1, "\u2212");
  return s;
}

std::string superscript(int e) {
  static const char* const kDigits[] = {"\u2070", "\u00B9", "\u00B2", "\u00B3", "\u2074",
                                        "\u2075", "\u2076", "\u2077", "\u2078", "\u2079"};
  std::string digits = std::to_string(std::abs(e));
  std::string out = e < 0 ? "\u207B" : "";
  for (char c : digits) out += kDigits[c - '0'];
  return out;
}

// A tick label for v on an axis whose ticks are `step` apart: as many
// decimals as the step needs; "m×10ⁿ" for very large or small numbers.
std::string format_tick(double v, double step) {
  if (v == 0) return "0";
  const int step_exp = static_cast<int>(std::floor(std::log10(step) + 1e-9));
  char buf[64];
  if (std::fabs(v) >= 1e5 || step_exp <= -5) {
    const int e = static_cast<int>(std::floor(std::log10(std::fabs(v)) + 1e-9));
    const double mantissa = v / std::pow(10.0, e);
    std::snprintf(buf, sizeof(buf), "%.*f", std::clamp(e - step_exp, 0, 6), mantissa);
    const std::string m = buf;
    if (m == "1") return "10" + superscript(e);
    if (m == "-1") return "\u221210" + superscript(e);
    return utf8_minus(m) + "\u00D710" + superscript(e);
  }
  std::snprintf(buf, sizeof(buf), "%.*f", std::max(0, -step_exp), v);
  return utf8_minus(buf);
}

// A label for a tick on a log axis: "10ⁿ" for powers of ten when `powers`,
// else a plain decimal (or "m×10ⁿ" when very large or small).
std::string format_log_tick(double v, bool powers) {
  const int e = static_cast<int>(std::floor(std::log10(v) + 1e-9));
  if (powers) return "10" + superscript(e);
  if (e < -4 || e > 4) return format_tick(v, std::pow(10.0, e));
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", std::max(0, -e), v);
  return buf;
}

struct TickMark {
  double value;
  std::string label;
};

std::vector<TickMark> linear_ticks(double lo, double hi, int max_ticks) {
  const auto values = nice_ticks(std::min(lo, hi), std::max(lo, hi), max_ticks);
  const double step = values.size() >= 2 ? values[1] - values[0] : std::fabs(hi - lo);
  std::vector<TickMark> ticks;
  for (double v : values) ticks.push_back({v, format_tick(v, step)});
  return ticks;
}

// Major ticks on a log axis: powers of ten (every k-th when there are many
// decades), else 1-2-5 multiples within the decade, else linear ticks.
// Minor ticks (unlabelled) at 2..9 times each power of ten when every decade
// is labelled.
std::vector<TickMark> log_ticks(double lo, double hi, int max_ticks, std::vector<double>* minor) {
  const int a = static_cast<int>(std::ceil(std::log10(lo) - 1e-9));
  const int b = static_cast<int>(std::floor(std::log10(hi) + 1e-9));
  std::vector<TickMark> ticks;
  if (b - a + 1 >= 2) {
    int stride = 1;
    while ((b - a) / stride + 1 > max_ticks) stride = stride == 1 ? 2 : stride == 2 ? 5 : stride * 2;
    for (int e = a; e <= b; ++e) {
      if (e % stride == 0) ticks.push_back({std::pow(10.0, e), ""});
    }
    if (ticks.size() < 2) {  // the stride skipped all but one: label the ends' decades instead
      ticks = {{std::pow(10.0, a), ""}, {std::pow(10.0, b), ""}};
    }
    if (stride == 1 && b - a <= 8) {
      for (int e = a - 1; e <= b; ++e) {
        for (int m = 2; m <= 9; ++m) {
          const double v = m * std::pow(10.0, e);
          if (v >= lo && v <= hi) minor->push_back(v);
        }
      }
    }
  } else {
    for (int e = a - 1; e <= b + 1; ++e) {
      for (double m : {1.0, 2.0, 5.0}) {
        const double v = m * std::pow(10.0, e);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back({v, ""});
      }
    }
    if (ticks.size() < 2 || static_cast<int>(ticks.size()) > max_ticks) {
      ticks.clear();
      for (double v : nice_ticks(lo, hi, max_ticks)) {
        if (v > 0) ticks.push_back({v, ""});
      }
    }
  }
  // One style per axis: powers of ten beyond 0.01..1000 are all written 10ⁿ.
  const bool powers = b - a + 1 >= 2 && ticks.size() >= 2 && (ticks.front().value < 0.01 || ticks.back().value > 1000);
  for (auto& t : ticks) t.label = format_log_tick(t.value, powers);
  return ticks;
}

std::vector<TickMark> axis_ticks(const Scale& s, int max_ticks, std::vector<double>* minor) {
  minor->clear();
  if (s.log) return log_ticks(std::min(s.lo, s.hi), std::max(s.lo, s.hi), max_ticks, minor);
  return linear_ticks(s.lo, s.hi, max_ticks);
}

// At most max_ticks of the indices 0..n-1, 1-2-5 apart (never fractional).
std::vector<int64_t> index_ticks(int64_t n, int max_ticks) {
  std::vector<int64_t> out;
  if (n <= max_ticks) {
    for (int64_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (double v : nice_ticks(0, static_cast<double>(n - 1), max_ticks)) out.push_back(std::llround(v));
  return out;
}

// ---------------------------------------------------------------------------
// Layout

struct Rect {
  double x = 0, y = 0, w = 0, h = 0;
  double right() const { return x + w; }
  double bottom() const { return y + h; }
  bool contains(double px, double py) const { return px >= x && px <= right() && py >= y && py <= bottom(); }
};

struct LegendEntry {
  std::string label;
  Rgb colour;
  const Series* series;  // for its kind, marker, line style and opacity
};

struct PanelLayout {
  Rect cell, plot;
  Scale xs, ys;
  std::vector<TickMark> x_ticks, y_ticks;
  std::vector<double> x_minor, y_minor;
  bool rotate_x_labels = false;
  // Bars: the labels on x (from the series' categories), the spacing of bar
  // positions in data units, and how many bar series share each position.
  std::vector<std::string> categories;
  double bar_slot = 1;
  int bar_series = 0;
  std::vector<LegendEntry> legend;
  // Where the legend goes: the panel's choice, with kBest resolved to an
  // outside position when no inside corner is free (kBest otherwise).
  LegendPosition legend_place = LegendPosition::kBest;
  Rect legend_box;
  double legend_row = 0;    // height of one entry
  int legend_cols = 1;
  double legend_col_w = 0;  // width of one column, swatch to the end of the widest label
  // Heat maps: the colour bar, its scale, and the width of the bar with its
  // labels (an outside-right legend goes beyond it).
  Rect colour_bar;
  double colour_block_w = 0;
  double colour_lo = 0, colour_hi = 1;
  std::vector<TickMark> colour_ticks;
  // Margins around the plot area within the cell.
  double left = 0, right = 0, top = 0, bottom = 0;
};

struct Layout {
  std::vector<PanelLayout> panels;
  double title_top = 0;
};

// Defaults start at palette index 1 (orange): black, the palette's first
// colour, is heavy as a fill and reads as an axis; it comes last.
Rgb series_colour(const Series& s, size_t index) {
  if (s.colour) return *s.colour;
  return palette_colour(s.colour_index ? *s.colour_index : static_cast<int>(index) + 1);
}

Rgb category_colour(const Series& s, int category) {
  if (static_cast<size_t>(category) < s.category_colours.size()) return s.category_colours[category];
  return palette_colour(s.colour_index.value_or(1) + category);
}

// Range of the data along one axis, with the margins and fixed ends applied.
struct Extent {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v, bool log) {
    if (!std::isfinite(v) || (log && v <= 0)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

// lo_tight/hi_tight: no margin on that side (a bar baseline, a bar slot edge).
Scale make_scale(Extent e, const Axis& axis, bool lo_tight, bool hi_tight, const std::string& axis_name,
                 const std::string& at, const std::string& where) {
  Scale s;
  s.log = axis.log_scale;
  if (e.empty()) {
    if (axis.min && axis.max) {
      e.lo = *axis.min;
      e.hi = *axis.max;
    } else if (s.log) {
      throw Error(where, at + ": " + axis_name + " axis is logarithmic but no value on it is positive");
    } else {
      throw Error(where, at + ": no finite " + axis_name + " values");
    }
  }
  auto forward = [&](double v) { return s.log ? std::log10(v) : v; };
  auto back = [&](double v) { return s.log ? std::pow(10.0, v) : v; };
  double lo = forward(e.lo), hi = forward(e.hi);
  if (hi - lo <= 0) {  // a single value: give it room either side
    const double d = s.log ? 0.5 : (lo == 0 ? 1 : std::fabs(lo) * 0.1);
    lo -= d;
    hi += d;
    lo_tight = hi_tight = false;
  }
  const double span = hi - lo;
  if (!lo_tight) lo -= kDataMargin * span;
  if (!hi_tight) hi += kDataMargin * span;
  s.lo = back(lo);
  s.hi = back(hi);
  if (axis.min) s.lo = *axis.min;
  if (axis.max) s.hi = *axis.max;
  if (!(s.lo < s.hi)) {  // one fixed end lies beyond all the data
    const double fixed_span = s.log ? 1 : std::max(1.0, std::fabs(axis.min ? s.lo : s.hi));
    if (axis.min) {
      s.hi = back(forward(s.lo) + fixed_span);
    } else {
      s.lo = back(forward(s.hi) - fixed_span);
    }
  }
  return s;
}

// Everything about a panel that does not depend on its size: scales,
// categories, legend entries, colour range.
void measure_data(const Panel& panel, PanelLayout& pl, const std::string& at, const std::string& where) {
  if (panel.kind == PanelKind::kHeatMap) {
    const HeatMap& h = panel.heat_map;
    pl.xs = Scale{-0.5, static_cast<double>(h.cols) - 0.5, false};
    pl.ys = h.first_row_at_top ? Scale{static_cast<double>(h.rows) - 0.5, -0.5, false}
                               : Scale{-0.5, static_cast<double>(h.rows) - 0.5, false};
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (double v : h.values) {
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
    if (h.colour_map == ColourMap::kDiverging) {
      const double m = std::max(std::fabs(lo), std::fabs(hi));
      lo = -m;
      hi = m;
    }
    if (!(lo < hi)) {
      const double d = lo == 0 ? 1 : std::fabs(lo) * 0.1;
      lo -= d;
      hi += d;
    }
    if (h.min) lo = *h.min;
    if (h.max) hi = *h.max;
    if (h.colour_map == ColourMap::kDiverging && h.min.has_value() != h.max.has_value()) {
      // One end given: mirror it, so that 0 keeps the neutral colour.
      if (h.min) hi = -*h.min;
      if (h.max) lo = -*h.max;
    }
    if (!(lo < hi)) {
      throw Error(where, at + ": colour range [" + number_text(lo) + ", " + number_text(hi) + "] is empty");
    }
    pl.colour_lo = lo;
    pl.colour_hi = hi;
  }

  // Bar positions, their spacing and the category labels.
  std::vector<double> positions;
  const Series* labelled = nullptr;
  for (const Series& s : panel.series) {
    if (s.kind != SeriesKind::kBar) continue;
    ++pl.bar_series;
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (std::isfinite(point_x(s, i))) positions.push_back(point_x(s, i));
    }
    if (!s.categories.empty()) {
      if (labelled && labelled->categories != s.categories) {
        throw Error(where, at + ", series " + quoted(s.name) + ": categories differ from those of series " +
                               quoted(labelled->name));
      }
      labelled = &s;
    }
  }
  if (labelled) pl.categories = labelled->categories;
  std::sort(positions.begin(), positions.end());
  double slot = std::numeric_limits<double>::infinity();
  for (size_t i = 1; i < positions.size(); ++i) {
    if (positions[i] > positions[i - 1]) slot = std::min(slot, positions[i] - positions[i - 1]);
  }
  pl.bar_slot = std::isfinite(slot) ? slot : 1;

  if (panel.kind == PanelKind::kPlot) {
    Extent ex, ey;
    bool x_lo_tight = false, x_hi_tight = false, y_lo_tight = false, y_hi_tight = false;
    const bool xlog = panel.x_axis.log_scale, ylog = panel.y_axis.log_scale;
    bool bars_only = pl.bar_series > 0;
    for (const Series& s : panel.series) {
      const bool bar = s.kind == SeriesKind::kBar;
      bars_only = bars_only && bar;
      for (size_t i = 0; i < s.y.size(); ++i) {
        const double x = point_x(s, i);
        if (!std::isfinite(x) || !std::isfinite(s.y[i])) continue;
        if (bar) {
          ex.add(x - pl.bar_slot / 2, xlog);
          ex.add(x + pl.bar_slot / 2, xlog);
          if (!ylog) ey.add(0, false);
        } else {
          ex.add(x, xlog);
        }
        ey.add(s.y[i], ylog);
        if (!s.error_lo.empty()) {
          ey.add(s.error_lo[i], ylog);
          ey.add(s.error_hi[i], ylog);
        }
      }
    }
    for (const auto& r : panel.reference_lines) (r.vertical ? ex : ey).add(r.value, r.vertical ? xlog : ylog);
    for (const auto& a : panel.annotations) {
      ex.add(a.x, xlog);
      ey.add(a.y, ylog);
    }
    if (bars_only) x_lo_tight = x_hi_tight = true;
    if (pl.bar_series > 0 && !ylog) {  // bars grow from 0: no margin below (or above, for negative bars)
      if (ey.lo == 0) y_lo_tight = true;
      if (ey.hi == 0) y_hi_tight = true;
    }
    pl.xs = make_scale(ex, panel.x_axis, x_lo_tight, x_hi_tight, "x", at, where);
    pl.ys = make_scale(ey, panel.y_axis, y_lo_tight, y_hi_tight, "y", at, where);
  }

  // Legend entries, without repeats.
  for (size_t k = 0; k < panel.series.size(); ++k) {
    const Series& s = panel.series[k];
    std::vector<LegendEntry> entries;
    if (!s.point_categories.empty()) {
      const std::set<int> present(s.point_categories.begin(), s.point_categories.end());
      for (int c : present) {
        if (static_cast<size_t>(c) < s.category_names.size()) {
          entries.push_back({s.category_names[c], category_colour(s, c), &s});
        }
      }
    } else if (!s.name.empty()) {
      entries.push_back({s.name, series_colour(s, k), &s});
    }
    for (auto& e : entries) {
      const bool repeated = std::any_of(pl.legend.begin(), pl.legend.end(), [&](const LegendEntry& o) {
        return o.label == e.label && o.colour == e.colour && o.series->kind == e.series->kind &&
               o.series->marker == e.series->marker;
      });
      if (!repeated) pl.legend.push_back(e);
    }
  }
  if (!panel.legend) pl.legend.clear();
  pl.legend_place = panel.legend_position;
}

// Sets the legend's columns for a plot area plot_w wide: one column inside
// or beside the plot, as many as fit above it.
void shape_legend(PanelLayout& pl, const Pen& pen, double tick_size, double plot_w) {
  double w = 0;
  for (const auto& e : pl.legend) w = std::max(w, pen.width(e.label, tick_size));
  pl.legend_col_w = kLegendSwatch + kLegendPad + w;
  pl.legend_row = pen.line_height(tick_size) + 1;
  pl.legend_cols = 1;
  if (pl.legend_place == LegendPosition::kOutsideTop) {
    const int fit = static_cast<int>((plot_w + kLegendColumnGap) / (pl.legend_col_w + kLegendColumnGap));
    const int n = std::max(1, static_cast<int>(pl.legend.size()));
    pl.legend_cols = std::clamp(fit, 1, n);
    // As few columns as the same number of rows needs, so the last row is not left nearly empty.
    const int rows = (n + pl.legend_cols - 1) / pl.legend_cols;
    pl.legend_cols = (n + rows - 1) / rows;
  }
}

int legend_rows(const PanelLayout& pl) {
  return (static_cast<int>(pl.legend.size()) + pl.legend_cols - 1) / pl.legend_cols;
}

// The legend's size: framed with padding inside the plot, bare outside it.
std::array<double, 2> legend_size(const PanelLayout& pl) {
  const double pad = pl.legend_place == LegendPosition::kOutsideTop || pl.legend_place == LegendPosition::kOutsideRight
                         ? 0
                         : kLegendPad;
  return {2 * pad + pl.legend_cols * pl.legend_col_w + (pl.legend_cols - 1) * kLegendColumnGap,
          2 * pad + legend_rows(pl) * pl.legend_row};
}

// Ticks for a plot area of the given size, and the margins they need.
void measure_geometry(const Figure& figure, const Panel& panel, PanelLayout& pl, const Pen& pen, double plot_w,
                      double plot_h) {
  const double size = figure.font_size_pt;
  const double tick_size = size * kTickScale;
  const double tick_lh = pen.line_height(tick_size);
  const double lh = pen.line_height(size);
  const bool heat = panel.kind == PanelKind::kHeatMap;

  // y ticks: about one per 22 pt; rows of a heat map need a line each.
  if (heat) {
    const HeatMap& h = panel.heat_map;
    const int max_ticks = std::max(1, static_cast<int>(plot_h / (tick_lh + 1)));
    pl.y_ticks.clear();
    pl.y_minor.clear();
    for (int64_t i : index_ticks(h.rows, max_ticks)) {
      pl.y_ticks.push_back({static_cast<double>(i), h.row_labels.empty() ? std::to_string(i) : h.row_labels[i]});
    }
  } else {
    pl.y_ticks = axis_ticks(pl.ys, std::max(2, static_cast<int>(plot_h / 22)), &pl.y_minor);
  }

  // x ticks: as many as fit with their labels side by side.
  const double pt_per_unit = plot_w / std::fabs(pl.xs.hi - pl.xs.lo);
  pl.rotate_x_labels = false;
  if (!pl.categories.empty()) {
    pl.x_ticks.clear();
    pl.x_minor.clear();
    for (size_t i = 0; i < pl.categories.size(); ++i) pl.x_ticks.push_back({static_cast<double>(i), pl.categories[i]});
    pl.rotate_x_labels = pen.widest(pl.categories, tick_size) + 3 > pl.bar_slot * pt_per_unit;
  } else {
    // Numbers: about one tick per 36 pt. Heat-map columns: as many labels as
    // fit, from one per column down.
    const int start = heat ? static_cast<int>(std::min<double>(panel.heat_map.cols, std::max(2.0, plot_w / 10)))
                           : std::max(2, static_cast<int>(plot_w / 36));
    for (int max_ticks = start; max_ticks >= 1; --max_ticks) {
      if (heat) {
        const HeatMap& h = panel.heat_map;
        pl.x_ticks.clear();
        pl.x_minor.clear();
        for (int64_t j : index_ticks(h.cols, max_ticks)) {
          pl.x_ticks.push_back({static_cast<double>(j), h.col_labels.empty() ? std::to_string(j) : h.col_labels[j]});
        }
      } else {
        pl.x_ticks = axis_ticks(pl.xs, std::max(2, max_ticks), &pl.x_minor);
      }
      double crowded = 0;  // how far the tightest pair of labels overlaps (with a 4 pt gap)
      for (size_t i = 1; i < pl.x_ticks.size(); ++i) {
        const double gap = std::fabs(pl.xs.unit(pl.x_ticks[i].value) - pl.xs.unit(pl.x_ticks[i - 1].value)) * plot_w;
        const double need =
            (pen.width(pl.x_ticks[i].label, tick_size) + pen.width(pl.x_ticks[i - 1].label, tick_size)) / 2 + 4;
        crowded = std::max(crowded, need - gap);
      }
      if (crowded <= 0 || max_ticks <= 2) break;
    }
  }

  std::vector<std::string> y_labels, x_labels;
  for (const auto& t : pl.y_ticks) y_labels.push_back(t.label);
  for (const auto& t : pl.x_ticks) x_labels.push_back(t.label);
  const double y_label_w = pen.widest(y_labels, tick_size);

  pl.top = kInnerPad + tick_lh / 2;
  if (!panel.title.empty()) pl.top = kInnerPad + lh + kTitleGap;
  if (!pl.legend.empty()) shape_legend(pl, pen, tick_size, plot_w);
  if (!pl.legend.empty() && pl.legend_place == LegendPosition::kOutsideTop) {
    pl.top = std::max(pl.top, kInnerPad + (panel.title.empty() ? 0 : lh + kTitleGap) + legend_size(pl)[1] +
                                  kTitleGap);
  }

  // Rotated labels hang down-left from their tick at 45°.
  const double diag = std::sqrt(0.5);
  double x_labels_h = tick_lh;
  if (pl.rotate_x_labels) x_labels_h = (pen.widest(x_labels, tick_size) + tick_lh) * diag;
  pl.bottom = kTickLength + kTickGap + x_labels_h + kInnerPad;
  if (!panel.x_axis.label.empty()) pl.bottom += kLabelGap + lh;

  pl.left = kInnerPad + y_label_w + kTickGap + kTickLength;
  if (!panel.y_axis.label.empty()) pl.left += lh + kLabelGap;

  // Labels reaching past the plot's left or right edge.
  double over_left = 0, over_right = 0;
  for (const auto& t : pl.x_ticks) {
    const double at = pl.xs.unit(t.value) * plot_w;
    const double w = pen.width(t.label, tick_size);
    if (pl.rotate_x_labels) {
      over_left = std::max(over_left, w * diag - at);
    } else {
      over_left = std::max(over_left, w / 2 - at);
      over_right = std::max(over_right, at + w / 2 - plot_w);
    }
  }
  pl.left = std::max(pl.left, kInnerPad + over_left);
  pl.right = kInnerPad + std::max(over_right, 2.0);

  pl.colour_block_w = 0;
  if (heat) {
    const HeatMap& h = panel.heat_map;
    pl.colour_ticks = linear_ticks(pl.colour_lo, pl.colour_hi, std::max(2, static_cast<int>(plot_h / 22)));
    std::vector<std::string> labels;
    for (const auto& t : pl.colour_ticks) labels.push_back(t.label);
    pl.colour_block_w = kColourBarGap + kColourBarWidth + kTickLength + kTickGap + pen.widest(labels, tick_size);
    if (!h.colour_label.empty()) pl.colour_block_w += kLabelGap + lh;
    pl.right = kInnerPad + pl.colour_block_w;
    pl.top = std::max(pl.top, kInnerPad + tick_lh / 2);
  }
  if (!pl.legend.empty() && pl.legend_place == LegendPosition::kOutsideRight) {
    pl.right = std::max(pl.right, kInnerPad + pl.colour_block_w + kLegendInset + legend_size(pl)[0]);
  }
}

// The corner rectangles an inside legend may take, best first on ties.
std::vector<Rect> legend_corners(const Rect& plot, double w, double h) {
  const double l = plot.x + kLegendInset, r = plot.right() - kLegendInset - w;
  const double t = plot.y + kLegendInset, b = plot.bottom() - kLegendInset - h;
  return {{r, t, w, h}, {l, t, w, h}, {r, b, w, h}, {l, b, w, h}};
}

std::array<double, 2> to_figure(const PanelLayout& pl, double x, double y) {
  return {pl.plot.x + pl.xs.unit(x) * pl.plot.w, pl.plot.y + (1 - pl.ys.unit(y)) * pl.plot.h};
}

using Footprint = std::vector<std::array<double, 2>>;

// Points of the plot covered by data or text, for choosing where the legend
// and reference-line labels go: markers, error-bar ends, samples every 2 pt
// along lines, and 2 pt grids over bars and annotation texts.
Footprint data_footprint(const Figure& figure, const Panel& panel, const PanelLayout& pl, const Pen& pen) {
  Footprint points;
  auto cover = [&points](double x0, double y0, double x1, double y1) {
    for (double fy = y0; fy <= y1; fy += 2) {
      for (double fx = x0; fx <= x1; fx += 2) points.push_back({fx, fy});
    }
  };
  for (const Series& s : panel.series) {
    std::array<double, 2> prev{};
    bool have_prev = false;
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = point_x(s, i), y = s.y[i];
      if (!pl.xs.contains(x) || !pl.ys.contains(y)) {
        have_prev = false;
        continue;
      }
      const auto p = to_figure(pl, x, y);
      if (s.kind == SeriesKind::kBar) {
        // The whole group at this position, whichever series the bar belongs to.
        const double base = pl.ys.log ? pl.plot.bottom() : to_figure(pl, x, 0)[1];
        const double half = pl.bar_slot * 0.4 * pl.plot.w / std::fabs(pl.xs.hi - pl.xs.lo);
        cover(p[0] - half, std::min(base, p[1]), p[0] + half, std::max(base, p[1]));
      } else {
        points.push_back(p);
      }
      if (!s.error_lo.empty()) {
        for (double e : {s.error_lo[i], s.error_hi[i]}) {
          if (pl.ys.contains(e)) points.push_back(to_figure(pl, x, e));
        }
      }
      if ((s.kind == SeriesKind::kLine || s.kind == SeriesKind::kLineMarkers) && have_prev) {
        const double len = std::hypot(p[0] - prev[0], p[1] - prev[1]);
        const int steps = static_cast<int>(len / 2);
        for (int k = 1; k < steps; ++k) {
          const double f = static_cast<double>(k) / steps;
          points.push_back({prev[0] + (p[0] - prev[0]) * f, prev[1] + (p[1] - prev[1]) * f});
        }
      }
      prev = p;
      have_prev = true;
    }
  }
  const double tick_size = figure.font_size_pt * kTickScale;
  const double lh = pen.line_height(tick_size);
  for (const auto& a : panel.annotations) {
    if (!pl.xs.contains(a.x) || !pl.ys.contains(a.y)) continue;
    const auto p = to_figure(pl, a.x, a.y);
    const double w = pen.width(a.text, tick_size);
    const double halign = a.align == Annotation::Align::kLeft ? 0 : a.align == Annotation::Align::kCentre ? 0.5 : 1;
    cover(p[0] - halign * w, p[1] - lh / 2, p[0] + (1 - halign) * w, p[1] + lh / 2);
  }
  return points;
}

size_t count_inside(const Footprint& footprint, const Rect& r) {
  return static_cast<size_t>(std::count_if(footprint.begin(), footprint.end(),
                                           [&](const std::array<double, 2>& p) { return r.contains(p[0], p[1]); }));
}

// Puts the legend box in place for the final plot area. Returns how many
// footprint points an inside legend covers (0 outside the plot).
size_t place_legend(const Figure& figure, const Panel& panel, PanelLayout& pl, const Pen& pen) {
  if (pl.legend.empty()) return 0;
  const auto [w, h] = legend_size(pl);
  const auto corners = legend_corners(pl.plot, w, h);
  switch (pl.legend_place) {
    case LegendPosition::kUpperRight: pl.legend_box = corners[0]; return 0;
    case LegendPosition::kUpperLeft: pl.legend_box = corners[1]; return 0;
    case LegendPosition::kLowerRight: pl.legend_box = corners[2]; return 0;
    case LegendPosition::kLowerLeft: pl.legend_box = corners[3]; return 0;
    case LegendPosition::kOutsideRight:
      pl.legend_box = Rect{pl.plot.right() + pl.colour_block_w + kLegendInset, pl.plot.y, w, h};
      return 0;
    case LegendPosition::kOutsideTop:
      pl.legend_box = Rect{pl.plot.x + (pl.plot.w - w) / 2, pl.plot.y - kTitleGap - h, w, h};
      return 0;
    case LegendPosition::kBest: break;
  }
  const auto footprint = data_footprint(figure, panel, pl, pen);
  size_t best_count = std::numeric_limits<size_t>::max();
  for (const Rect& r : corners) {
    const size_t count = count_inside(footprint, r);
    if (count < best_count) {
      best_count = count;
      pl.legend_box = r;
    }
  }
  return best_count;
}

// kBest with no free corner: the outside place that costs the plot less area.
void resolve_best_legend(const Figure& figure, const Panel& panel, PanelLayout& pl, const Pen& pen) {
  if (pl.legend.empty() || pl.legend_place != LegendPosition::kBest) return;
  if (place_legend(figure, panel, pl, pen) == 0) return;
  const double tick_size = figure.font_size_pt * kTickScale;
  pl.legend_place = LegendPosition::kOutsideRight;
  shape_legend(pl, pen, tick_size, pl.plot.w);
  const double right_cost = (legend_size(pl)[0] + kLegendInset) * pl.plot.h;
  pl.legend_place = LegendPosition::kOutsideTop;
  shape_legend(pl, pen, tick_size, pl.plot.w);
  const double top_cost = (legend_size(pl)[1] + kTitleGap) * pl.plot.w;
  if (right_cost < top_cost) pl.legend_place = LegendPosition::kOutsideRight;
}

Layout layout_figure(const Figure& figure, const std::string& where) {
  // Text is measured on a 1x1 image surface with the same font options as
  // the outputs (see Pen).
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t* cr = cairo_create(surface);
  std::unique_ptr<cairo_t, void (*)(cairo_t*)> cr_owner(cr, cairo_destroy);
  std::unique_ptr<cairo_surface_t, void (*)(cairo_surface_t*)> surface_owner(surface, cairo_surface_destroy);
  const Pen pen(cr, figure.font_family);

  Layout layout;
  const int cols = grid_cols(figure);
  const int rows = figure.rows;
  const double size = figure.font_size_pt;
  double top = kOuterPad;
  if (!figure.title.empty()) {
    layout.title_top = top;
    top += pen.line_height(size * kTitleScale, true) + 3;
  }
  const double cell_w = (figure.width_pt - 2 * kOuterPad - (cols - 1) * kPanelGap) / cols;
  const double cell_h = (figure.height_pt - top - kOuterPad - (rows - 1) * kPanelGap) / rows;

  const size_t n = figure.panels.size();
  layout.panels.resize(n);
  for (size_t p = 0; p < n; ++p) {
    PanelLayout& pl = layout.panels[p];
    const int r = static_cast<int>(p) / cols, c = static_cast<int>(p) % cols;
    pl.cell = Rect{kOuterPad + c * (cell_w + kPanelGap), top + r * (cell_h + kPanelGap), cell_w, cell_h};
    measure_data(figure.panels[p], pl, panel_where(figure.panels[p], p), where);
    pl.plot = Rect{pl.cell.x + 30, pl.cell.y + 10, cell_w - 40, cell_h - 30};
  }
  // Ticks depend on the plot's size and margins on the ticks: a few rounds
  // settle it. Plot areas line up: shared top and bottom margins along a
  // row, shared left margins down a column. After the first round, a legend
  // placed "best" that would cover data moves outside.
  for (int round = 0; round < 4; ++round) {
    if (round == 1) {
      for (size_t p = 0; p < n; ++p) resolve_best_legend(figure, figure.panels[p], layout.panels[p], pen);
    }
    for (size_t p = 0; p < n; ++p) {
      auto& pl = layout.panels[p];
      measure_geometry(figure, figure.panels[p], pl, pen, std::max(pl.plot.w, 1.0), std::max(pl.plot.h, 1.0));
    }
    std::vector<double> row_top(rows, 0), row_bottom(rows, 0), col_left(cols, 0);
    for (size_t p = 0; p < n; ++p) {
      const auto& pl = layout.panels[p];
      const int r = static_cast<int>(p) / cols, c = static_cast<int>(p) % cols;
      row_top[r] = std::max(row_top[r], pl.top);
      row_bottom[r] = std::max(row_bottom[r], pl.bottom);
      col_left[c] = std::max(col_left[c], pl.left);
    }
    for (size_t p = 0; p < n; ++p) {
      auto& pl = layout.panels[p];
      const int r = static_cast<int>(p) / cols, c = static_cast<int>(p) % cols;
      pl.plot = Rect{pl.cell.x + col_left[c], pl.cell.y + row_top[r], pl.cell.w - col_left[c] - pl.right,
                     pl.cell.h - row_top[r] - row_bottom[r]};
    }
  }
  for (size_t p = 0; p < n; ++p) {
    auto& pl = layout.panels[p];
    if (pl.plot.w < 10 || pl.plot.h < 10) {
      throw Error(where, panel_where(figure.panels[p], p) + ": no room for the plot area (" +
                             number_text(std::round(pl.plot.w)) + " x " + number_text(std::round(pl.plot.h)) +
                             " pt); make the figure larger or the font smaller");
    }
    place_legend(figure, figure.panels[p], pl, pen);
    if (figure.panels[p].kind == PanelKind::kHeatMap) {
      pl.colour_bar = Rect{pl.plot.right() + kColourBarGap, pl.plot.y, kColourBarWidth, pl.plot.h};
    }
  }
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
    throw Error(where, std::string("cannot lay out the text: ") + cairo_status_to_string(cairo_status(cr)));
  }
  return layout;
}

// ---------------------------------------------------------------------------
// Drawing

void set_colour(cairo_t* cr, const Rgb& c, double alpha = 1) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha); }

void set_line_style(cairo_t* cr, LineStyle style, double width) {
  cairo_set_line_width(cr, width);
  switch (style) {
    case LineStyle::kSolid: cairo_set_dash(cr, nullptr, 0, 0); break;
    case LineStyle::kDashed: {
      const double dash[] = {3.5 * std::max(width, 0.8), 2 * std::max(width, 0.8)};
      cairo_set_dash(cr, dash, 2, 0);
      break;
    }
    case LineStyle::kDotted: {
      const double dash[] = {std::max(width, 0.8), 1.5 * std::max(width, 0.8)};
      cairo_set_dash(cr, dash, 2, 0);
      break;
    }
  }
}

// Draws one marker of `diameter` points centred at (x, y).
void draw_marker(cairo_t* cr, MarkerShape shape, double x, double y, double diameter) {
  const double r = diameter / 2;
  switch (shape) {
    case MarkerShape::kCircle:
      cairo_new_sub_path(cr);
      cairo_arc(cr, x, y, r, 0, 2 * M_PI);
      cairo_fill(cr);
      return;
    case MarkerShape::kSquare: {
      const double a = r * 0.886;  // the circle's area
      cairo_rectangle(cr, x - a, y - a, 2 * a, 2 * a);
      cairo_fill(cr);
      return;
    }
    case MarkerShape::kTriangle: {
      const double a = r * 1.2;
      cairo_move_to(cr, x, y - a);
      cairo_line_to(cr, x + a * 0.866, y + a * 0.5);
      cairo_line_to(cr, x - a * 0.866, y + a * 0.5);
      cairo_close_path(cr);
      cairo_fill(cr);
      return;
    }
    case MarkerShape::kDiamond: {
      const double a = r * 1.15;
      cairo_move_to(cr, x, y - a);
      cairo_line_to(cr, x + a * 0.8, y);
      cairo_line_to(cr, x, y + a);
      cairo_line_to(cr, x - a * 0.8, y);
      cairo_close_path(cr);
      cairo_fill(cr);
      return;
    }
    case MarkerShape::kCross:
    case MarkerShape::kPlus: {
      cairo_save(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
      cairo_set_line_width(cr, std::max(0.6, diameter * 0.18));
      cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
      const double a = shape == MarkerShape::kCross ? r * 0.8 : r;
      if (shape == MarkerShape::kCross) {
        cairo_move_to(cr, x - a, y - a);
        cairo_line_to(cr, x + a, y + a);
        cairo_move_to(cr, x - a, y + a);
        cairo_line_to(cr, x + a, y - a);
      } else {
        cairo_move_to(cr, x - a, y);
        cairo_line_to(cr, x + a, y);
        cairo_move_to(cr, x, y - a);
        cairo_line_to(cr, x, y + a);
      }
      cairo_stroke(cr);
      cairo_restore(cr);
      return;
    }
  }
}

bool has_markers(SeriesKind kind) { return kind == SeriesKind::kScatter || kind == SeriesKind::kLineMarkers; }

// Draws the series' error bars (or band), line, bars and markers.
void draw_series(cairo_t* cr, const PanelLayout& pl, const Series& s, size_t index, int bar_index) {
  const Rgb colour = series_colour(s, index);
  const size_t n = s.y.size();
  auto visible = [&](size_t i) {
    return std::isfinite(point_x(s, i)) && std::isfinite(s.y[i]) && !(pl.xs.log && point_x(s, i) <= 0) &&
           !(pl.ys.log && s.y[i] <= 0);
  };
  auto point_colour = [&](size_t i) {
    return s.point_categories.empty() ? colour : category_colour(s, s.point_categories[i]);
  };
  const double units_to_pt = pl.plot.w / (pl.xs.hi - pl.xs.lo);  // bars need linear x
  const double bar_w = pl.bar_slot * 0.8 / std::max(1, pl.bar_series);
  const double bar_shift = (bar_index - (pl.bar_series - 1) / 2.0) * bar_w;
  auto centre_x = [&](size_t i) {
    const double x = point_x(s, i);
    if (s.kind != SeriesKind::kBar) return to_figure(pl, x, pl.ys.lo)[0];
    return to_figure(pl, x, pl.ys.lo)[0] + bar_shift * units_to_pt;
  };
  auto fy = [&](double y) { return to_figure(pl, pl.xs.lo, y)[1]; };
  auto bound_visible = [&](double v) { return std::isfinite(v) && !(pl.ys.log && v <= 0); };

  // Error band under the line, broken where a bound is missing.
  if (!s.error_lo.empty() && s.error_band && s.kind != SeriesKind::kBar) {
    set_colour(cr, colour, 0.22 * s.opacity);
    size_t i = 0;
    while (i < n) {
      size_t j = i;
      while (j < n && visible(j) && bound_visible(s.error_lo[j]) && bound_visible(s.error_hi[j])) ++j;
      if (j > i + 1) {
        cairo_move_to(cr, centre_x(i), fy(s.error_lo[i]));
        for (size_t k = i + 1; k < j; ++k) cairo_line_to(cr, centre_x(k), fy(s.error_lo[k]));
        for (size_t k = j; k-- > i;) cairo_line_to(cr, centre_x(k), fy(s.error_hi[k]));
        cairo_close_path(cr);
        cairo_fill(cr);
      }
      i = std::max(j, i + 1);
    }
  }

  if (s.kind == SeriesKind::kBar) {
    const double base = pl.ys.log ? pl.plot.bottom() : fy(0);
    const double w_pt = bar_w * units_to_pt;
    set_colour(cr, colour, s.opacity);
    for (size_t i = 0; i < n; ++i) {
      if (!visible(i)) continue;
      const double top = fy(s.y[i]);
      cairo_rectangle(cr, centre_x(i) - w_pt / 2, std::min(top, base), w_pt, std::fabs(base - top));
    }
    cairo_fill(cr);
  }

  if (s.kind == SeriesKind::kLine || s.kind == SeriesKind::kLineMarkers) {
    set_colour(cr, colour, s.opacity);
    set_line_style(cr, s.line_style, s.line_width);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, s.line_style == LineStyle::kDotted ? CAIRO_LINE_CAP_ROUND : CAIRO_LINE_CAP_BUTT);
    bool pen_down = false;
    for (size_t i = 0; i < n; ++i) {
      if (!visible(i)) {
        pen_down = false;
        continue;
      }
      const double x = centre_x(i), y = fy(s.y[i]);
      if (pen_down) {
        cairo_line_to(cr, x, y);
      } else {
        cairo_move_to(cr, x, y);
      }
      pen_down = true;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
  }

  // Error bars: bars' in ink, others in the point's colour.
  if (!s.error_lo.empty() && !(s.error_band && s.kind != SeriesKind::kBar)) {
    const double cap = s.kind == SeriesKind::kBar ? std::min(bar_w * units_to_pt * 0.5, 4.0)
                                                  : std::max(2.5, s.marker_size * 0.9);
    cairo_set_line_width(cr, std::max(0.5, std::min(s.line_width, 1.0) * 0.8));
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(point_x(s, i)) || !bound_visible(s.error_lo[i]) || !bound_visible(s.error_hi[i])) continue;
      if (pl.xs.log && point_x(s, i) <= 0) continue;
      set_colour(cr, s.kind == SeriesKind::kBar ? kInk : point_colour(i), s.opacity);
      const double x = centre_x(i), lo = fy(s.error_lo[i]), hi = fy(s.error_hi[i]);
      cairo_move_to(cr, x, lo);
      cairo_line_to(cr, x, hi);
      cairo_move_to(cr, x - cap / 2, lo);
      cairo_line_to(cr, x + cap / 2, lo);
      cairo_move_to(cr, x - cap / 2, hi);
      cairo_line_to(cr, x + cap / 2, hi);
      cairo_stroke(cr);
    }
  }

  if (has_markers(s.kind) && s.marker_size > 0) {
    for (size_t i = 0; i < n; ++i) {
      if (!visible(i)) continue;
      set_colour(cr, point_colour(i), s.opacity);
      draw_marker(cr, s.marker, centre_x(i), fy(s.y[i]), s.marker_size);
    }
  }
}

void draw_heat_map(cairo_t* cr, const PanelLayout& pl, const HeatMap& h) {
  const int w = static_cast<int>(h.cols), hh = static_cast<int>(h.rows);
  cairo_surface_t* cells = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, hh);
  std::unique_ptr<cairo_surface_t, void (*)(cairo_surface_t*)> owner(cells, cairo_surface_destroy);
  if (cairo_surface_status(cells) != CAIRO_STATUS_SUCCESS) return;  // reported through the context's status below
  cairo_surface_flush(cells);
  unsigned char* data = cairo_image_surface_get_data(cells);
  const int stride = cairo_image_surface_get_stride(cells);
  for (int i = 0; i < hh; ++i) {
    // Image row 0 is drawn at the top.
    const int row = h.first_row_at_top ? i : hh - 1 - i;
    auto* line = reinterpret_cast<uint32_t*>(data + static_cast<ptrdiff_t>(i) * stride);
    for (int j = 0; j < w; ++j) {
      const double v = h.values[static_cast<size_t>(row) * w + j];
      const Rgb c = std::isfinite(v) ? colour_map(h.colour_map, (v - pl.colour_lo) / (pl.colour_hi - pl.colour_lo))
                                     : kMissingCell;
      auto byte = [](double x) { return static_cast<uint32_t>(std::lround(std::clamp(x, 0.0, 1.0) * 255)); };
      line[j] = 0xFF000000u | (byte(c.r) << 16) | (byte(c.g) << 8) | byte(c.b);
    }
  }
  cairo_surface_mark_dirty(cells);
  cairo_save(cr);
  cairo_rectangle(cr, pl.plot.x, pl.plot.y, pl.plot.w, pl.plot.h);
  cairo_clip(cr);
  cairo_translate(cr, pl.plot.x, pl.plot.y);
  cairo_scale(cr, pl.plot.w / w, pl.plot.h / hh);
  cairo_set_source_surface(cr, cells, 0, 0);
  // Cells are data: sharp edges, no smoothing between neighbours.
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_rectangle(cr, 0, 0, w, hh);
  cairo_fill(cr);
  cairo_restore(cr);
}

void draw_colour_bar(const Pen& pen, const PanelLayout& pl, const HeatMap& h, double size) {
  cairo_t* cr = pen.cr();
  const Rect& bar = pl.colour_bar;
  cairo_pattern_t* gradient = cairo_pattern_create_linear(0, bar.bottom(), 0, bar.y);
  for (int k = 0; k <= 32; ++k) {
    const double t = k / 32.0;
    const Rgb c = colour_map(h.colour_map, t);
    cairo_pattern_add_color_stop_rgb(gradient, t, c.r, c.g, c.b);
  }
  cairo_rectangle(cr, bar.x, bar.y, bar.w, bar.h);
  cairo_set_source(cr, gradient);
  cairo_fill(cr);
  cairo_pattern_destroy(gradient);
  set_colour(cr, kInk);
  cairo_set_line_width(cr, kAxisLineWidth * 0.8);
  cairo_rectangle(cr, bar.x, bar.y, bar.w, bar.h);
  cairo_stroke(cr);
  const double tick_size = size * kTickScale;
  double label_right = bar.right() + kTickLength + kTickGap;
  for (const auto& t : pl.colour_ticks) {
    const double y = bar.bottom() - (t.value - pl.colour_lo) / (pl.colour_hi - pl.colour_lo) * bar.h;
    cairo_move_to(cr, bar.right(), y);
    cairo_line_to(cr, bar.right() + kTickLength, y);
    cairo_stroke(cr);
    pen.text(t.label, bar.right() + kTickLength + kTickGap, y, tick_size, 0, VAlign::kMiddle);
    label_right = std::max(label_right, bar.right() + kTickLength + kTickGap + pen.width(t.label, tick_size));
  }
  set_colour(cr, kInk);
  // Read bottom to top like the y axis label; rotated by -90° the text's top faces left.
  pen.text(h.colour_label, label_right + kLabelGap, bar.y + bar.h / 2, size, 0.5, VAlign::kTop, -M_PI / 2);
}

void draw_legend(const Pen& pen, const PanelLayout& pl, double size) {
  if (pl.legend.empty()) return;
  cairo_t* cr = pen.cr();
  const Rect& box = pl.legend_box;
  const bool outside =
      pl.legend_place == LegendPosition::kOutsideRight || pl.legend_place == LegendPosition::kOutsideTop;
  const double pad = outside ? 0 : kLegendPad;
  if (!outside) {  // a translucent white backing keeps entries readable over grid lines
    cairo_rectangle(cr, box.x, box.y, box.w, box.h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_fill_preserve(cr);
    set_colour(cr, Rgb{0.8, 0.8, 0.8});
    cairo_set_line_width(cr, 0.5);
    cairo_stroke(cr);
  }
  const double tick_size = size * kTickScale;
  for (size_t k = 0; k < pl.legend.size(); ++k) {
    const LegendEntry& e = pl.legend[k];
    const Series& s = *e.series;
    const int col = static_cast<int>(k) % pl.legend_cols, row = static_cast<int>(k) / pl.legend_cols;
    const double y = box.y + pad + (row + 0.5) * pl.legend_row;
    const double x0 = box.x + pad + col * (pl.legend_col_w + kLegendColumnGap), x1 = x0 + kLegendSwatch;
    if (s.kind == SeriesKind::kBar) {
      set_colour(cr, e.colour, s.opacity);
      cairo_rectangle(cr, x0 + 2, y - 3.5, kLegendSwatch - 4, 7);
      cairo_fill(cr);
    }
    if (s.kind == SeriesKind::kLine || s.kind == SeriesKind::kLineMarkers) {
      set_colour(cr, e.colour, s.opacity);
      set_line_style(cr, s.line_style, s.line_width);
      cairo_move_to(cr, x0, y);
      cairo_line_to(cr, x1, y);
      cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
    }
    if (has_markers(s.kind)) {
      // Legend markers stay readable even when the plot's are tiny or faint.
      set_colour(cr, e.colour, std::max(s.opacity, 0.8));
      draw_marker(cr, s.marker, (x0 + x1) / 2, y, std::clamp(s.marker_size, 3.5, 6.0));
    }
    set_colour(cr, kInk);
    pen.text(e.label, x1 + kLegendPad, y, tick_size, 0, VAlign::kMiddle);
  }
}

void draw_panel(const Figure& figure, const Panel& panel, const PanelLayout& pl, const Pen& pen) {
  cairo_t* cr = pen.cr();
  const double size = figure.font_size_pt;
  const double tick_size = size * kTickScale;
  const bool heat = panel.kind == PanelKind::kHeatMap;
  const Rect& plot = pl.plot;
  auto fx = [&](double x) { return plot.x + pl.xs.unit(x) * plot.w; };
  auto fy = [&](double y) { return plot.y + (1 - pl.ys.unit(y)) * plot.h; };

  if (panel.grid && !heat) {
    set_colour(cr, kGridGrey);
    cairo_set_line_width(cr, 0.4);
    for (const auto& t : pl.x_ticks) {
      cairo_move_to(cr, fx(t.value), plot.y);
      cairo_line_to(cr, fx(t.value), plot.bottom());
    }
    for (const auto& t : pl.y_ticks) {
      cairo_move_to(cr, plot.x, fy(t.value));
      cairo_line_to(cr, plot.right(), fy(t.value));
    }
    cairo_stroke(cr);
  }
  if (heat) draw_heat_map(cr, pl, panel.heat_map);

  cairo_save(cr);
  cairo_rectangle(cr, plot.x, plot.y, plot.w, plot.h);
  cairo_clip(cr);
  std::optional<Footprint> footprint;
  for (const auto& r : panel.reference_lines) {
    if (!(r.vertical ? pl.xs : pl.ys).contains(r.value)) continue;
    set_colour(cr, r.colour ? *r.colour : kReferenceGrey);
    set_line_style(cr, r.line_style, 0.8);
    if (r.vertical) {
      cairo_move_to(cr, fx(r.value), plot.y);
      cairo_line_to(cr, fx(r.value), plot.bottom());
    } else {
      cairo_move_to(cr, plot.x, fy(r.value));
      cairo_line_to(cr, plot.right(), fy(r.value));
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    if (r.label.empty()) continue;
    // The label goes at the end of the line where it covers less data.
    if (!footprint) footprint = data_footprint(figure, panel, pl, pen);
    const double w = pen.width(r.label, tick_size), h = pen.line_height(tick_size);
    Rect ends[2];
    if (r.vertical) {
      const double x = fx(r.value) + 2 + w <= plot.right() ? fx(r.value) + 2 : fx(r.value) - 2 - w;
      ends[0] = Rect{x, plot.y + 2, w, h};
      ends[1] = Rect{x, plot.bottom() - 2 - h, w, h};
    } else {
      const double y = fy(r.value) - 1 - h >= plot.y ? fy(r.value) - 1 - h : fy(r.value) + 1;
      ends[0] = Rect{plot.right() - 2 - w, y, w, h};
      ends[1] = Rect{plot.x + 2, y, w, h};
    }
    const Rect& at = count_inside(*footprint, ends[1]) < count_inside(*footprint, ends[0]) ? ends[1] : ends[0];
    pen.text(r.label, at.x, at.y, tick_size, 0, VAlign::kTop);
  }
  int bar_index = 0;
  for (size_t k = 0; k < panel.series.size(); ++k) {
    const Series& s = panel.series[k];
    draw_series(cr, pl, s, k, s.kind == SeriesKind::kBar ? bar_index : 0);
    if (s.kind == SeriesKind::kBar) ++bar_index;
  }
  cairo_restore(cr);

  // Axes: left and bottom spines with outward ticks (heat maps: ticks only).
  set_colour(cr, kInk);
  cairo_set_line_width(cr, kAxisLineWidth);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_SQUARE);
  if (!heat) {
    cairo_move_to(cr, plot.x, plot.y);
    cairo_line_to(cr, plot.x, plot.bottom());
    cairo_line_to(cr, plot.right(), plot.bottom());
    cairo_stroke(cr);
  }
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
  for (const auto& t : pl.y_ticks) {
    cairo_move_to(cr, plot.x, fy(t.value));
    cairo_line_to(cr, plot.x - kTickLength, fy(t.value));
  }
  for (const auto& t : pl.x_ticks) {
    cairo_move_to(cr, fx(t.value), plot.bottom());
    cairo_line_to(cr, fx(t.value), plot.bottom() + kTickLength);
  }
  cairo_stroke(cr);
  cairo_set_line_width(cr, kAxisLineWidth * 0.7);
  for (double v : pl.y_minor) {
    cairo_move_to(cr, plot.x, fy(v));
    cairo_line_to(cr, plot.x - kTickLength * 0.6, fy(v));
  }
  for (double v : pl.x_minor) {
    cairo_move_to(cr, fx(v), plot.bottom());
    cairo_line_to(cr, fx(v), plot.bottom() + kTickLength * 0.6);
  }
  cairo_stroke(cr);

  double y_labels_left = plot.x - kTickLength - kTickGap;
  for (const auto& t : pl.y_ticks) {
    pen.text(t.label, plot.x - kTickLength - kTickGap, fy(t.value), tick_size, 1, VAlign::kMiddle);
    y_labels_left = std::min(y_labels_left, plot.x - kTickLength - kTickGap - pen.width(t.label, tick_size));
  }
  const double x_labels_top = plot.bottom() + kTickLength + kTickGap;
  double x_labels_bottom = x_labels_top + pen.line_height(tick_size);
  for (const auto& t : pl.x_ticks) {
    if (pl.rotate_x_labels) {
      pen.text(t.label, fx(t.value), x_labels_top, tick_size, 1, VAlign::kMiddle, -M_PI / 4);
    } else {
      pen.text(t.label, fx(t.value), x_labels_top, tick_size, 0.5, VAlign::kTop);
    }
  }
  if (pl.rotate_x_labels) {
    std::vector<std::string> labels;
    for (const auto& t : pl.x_ticks) labels.push_back(t.label);
    x_labels_bottom = x_labels_top + (pen.widest(labels, tick_size) + pen.line_height(tick_size)) * std::sqrt(0.5);
  }
  // The x label follows its own tick labels; the y label sits at the margin's
  // outer edge, so panels of a column (which share that margin) align theirs.
  pen.text(panel.x_axis.label, plot.x + plot.w / 2, x_labels_bottom + kLabelGap, size, 0.5, VAlign::kTop);
  pen.text(panel.y_axis.label, std::min(y_labels_left - kLabelGap, pl.cell.x + kInnerPad + pen.line_height(size)),
           plot.y + plot.h / 2, size, 0.5, VAlign::kBottom, -M_PI / 2);
  const bool legend_on_top = !pl.legend.empty() && pl.legend_place == LegendPosition::kOutsideTop;
  pen.text(panel.title, plot.x + plot.w / 2, legend_on_top ? pl.legend_box.y - kTitleGap : plot.y - kTitleGap, size,
           0.5, VAlign::kBottom);

  for (const auto& a : panel.annotations) {
    if (!std::isfinite(a.x) || !std::isfinite(a.y) || (pl.xs.log && a.x <= 0) || (pl.ys.log && a.y <= 0)) continue;
    set_colour(cr, a.colour ? *a.colour : kInk);
    const double halign = a.align == Annotation::Align::kLeft ? 0 : a.align == Annotation::Align::kCentre ? 0.5 : 1;
    pen.text(a.text, fx(a.x), fy(a.y), tick_size, halign, VAlign::kMiddle);
  }
  set_colour(cr, kInk);
  if (heat) draw_colour_bar(pen, pl, panel.heat_map, size);
  draw_legend(pen, pl, size);
}

void draw_figure(const Figure& figure, const Layout& layout, cairo_t* cr) {
  const Pen pen(cr, figure.font_family);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  set_colour(cr, kInk);
  pen.text(figure.title, figure.width_pt / 2, layout.title_top, figure.font_size_pt * kTitleScale, 0.5, VAlign::kTop,
           0, true);
  for (size_t p = 0; p < figure.panels.size(); ++p) {
    set_colour(cr, kInk);
    draw_panel(figure, figure.panels[p], layout.panels[p], pen);
  }
}

// ---------------------------------------------------------------------------
// Output

enum class Format { kPng, kSvg, kPdf, kCsv, kJson };

std::string lower_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

std::string render(const Figure& figure, Format format, const std::string& where) {
  validate_figure(figure, where);
  const Layout layout = layout_figure(figure, where);
  std::string bytes;
  cairo_surface_t* surface = nullptr;
  double scale = 1;
  if (format == Format::kPng) {
    scale = figure.dpi / 72;
    const double w = std::round(figure.width_pt * scale), h = std::round(figure.height_pt * scale);
    if (w < 1 || h < 1 || w > 32767 || h > 32767) {
      throw Error(where, "PNG of " + number_text(w) + " x " + number_text(h) +
                             " pixels is outside 1..32767 a side; change the size or dpi");
    }
    surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(w), static_cast<int>(h));
  } else if (format == Format::kSvg) {
    surface = cairo_svg_surface_create_for_stream(append_to_string, &bytes, figure.width_pt, figure.height_pt);
    cairo_svg_surface_set_document_unit(surface, CAIRO_SVG_UNIT_PT);
  } else {
    surface = cairo_pdf_surface_create_for_stream(append_to_string, &bytes, figure.width_pt, figure.height_pt);
    if (!figure.title.empty()) cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, figure.title.c_str());
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "superpose");
  }
  std::unique_ptr<cairo_surface_t, void (*)(cairo_surface_t*)> surface_owner(surface, cairo_surface_destroy);
  cairo_t* cr = cairo_create(surface);
  std::unique_ptr<cairo_t, void (*)(cairo_t*)> cr_owner(cr, cairo_destroy);
  cairo_scale(cr, scale, scale);
  draw_figure(figure, layout, cr);
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
    throw Error(where, std::string("drawing failed: ") + cairo_status_to_string(cairo_status(cr)));
  }
  cairo_show_page(cr);
  cr_owner.reset();
  if (format == Format::kPng) {
    cairo_surface_flush(surface);
    const cairo_status_t status = cairo_surface_write_to_png_stream(surface, append_to_string, &bytes);
    if (status != CAIRO_STATUS_SUCCESS) {
      throw Error(where, std::string("PNG encoding failed: ") + cairo_status_to_string(status));
    }
  } else {
    cairo_surface_finish(surface);
  }
  if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
    throw Error(where, std::string("rendering failed: ") + cairo_status_to_string(cairo_surface_status(surface)));
  }
  return bytes;
}

// ---------------------------------------------------------------------------
// JSON

json number_json(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json numbers_json(const std::vector<double>& values) {
  json a = json::array();
  for (double v : values) a.push_back(number_json(v));
  return a;
}

std::string colour_hex(const Rgb& c) {
  auto byte = [](double x) { return static_cast<int>(std::lround(std::clamp(x, 0.0, 1.0) * 255)); };
  char buf[8];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return buf;
}

json axis_json(const Axis& a) {
  json j = {{"label", a.label}, {"log_scale", a.log_scale}};
  if (a.min) j["min"] = *a.min;
  if (a.max) j["max"] = *a.max;
  return j;
}

json series_json(const Series& s) {
  json j = {{"name", s.name},
            {"kind", name_of(s.kind, kSeriesKinds)},
            {"x", numbers_json(s.x)},
            {"y", numbers_json(s.y)},
            {"marker", name_of(s.marker, kMarkers)},
            {"marker_size", s.marker_size},
            {"line_width", s.line_width},
            {"line_style", name_of(s.line_style, kLineStyles)},
            {"opacity", s.opacity}};
  if (!s.categories.empty()) j["categories"] = s.categories;
  if (!s.error_lo.empty() || !s.error_hi.empty()) {
    j["error_lo"] = numbers_json(s.error_lo);
    j["error_hi"] = numbers_json(s.error_hi);
  }
  if (s.error_band) j["error_band"] = true;
  if (s.colour) j["colour"] = colour_hex(*s.colour);
  if (s.colour_index) j["colour_index"] = *s.colour_index;
  if (!s.point_categories.empty()) j["point_categories"] = s.point_categories;
  if (!s.category_names.empty()) j["category_names"] = s.category_names;
  if (!s.category_colours.empty()) {
    json colours = json::array();
    for (const Rgb& c : s.category_colours) colours.push_back(colour_hex(c));
    j["category_colours"] = colours;
  }
  return j;
}

json panel_json(const Panel& p) {
  json j = {{"title", p.title},
            {"kind", name_of(p.kind, kPanelKinds)},
            {"x_axis", axis_json(p.x_axis)},
            {"y_axis", axis_json(p.y_axis)},
            {"legend", p.legend},
            {"legend_position", name_of(p.legend_position, kLegendPositions)},
            {"grid", p.grid},
            {"series", json::array()},
            {"annotations", json::array()},
            {"reference_lines", json::array()}};
  for (const auto& s : p.series) j["series"].push_back(series_json(s));
  for (const auto& a : p.annotations) {
    json aj = {{"x", number_json(a.x)},
               {"y", number_json(a.y)},
               {"text", a.text},
               {"align", name_of(a.align, kAligns)}};
    if (a.colour) aj["colour"] = colour_hex(*a.colour);
    j["annotations"].push_back(aj);
  }
  for (const auto& r : p.reference_lines) {
    json rj = {{"vertical", r.vertical},
               {"value", number_json(r.value)},
               {"label", r.label},
               {"line_style", name_of(r.line_style, kLineStyles)}};
    if (r.colour) rj["colour"] = colour_hex(*r.colour);
    j["reference_lines"].push_back(rj);
  }
  if (p.kind == PanelKind::kHeatMap) {
    const HeatMap& h = p.heat_map;
    json hj = {{"rows", h.rows},
               {"cols", h.cols},
               {"values", numbers_json(h.values)},
               {"colour_map", name_of(h.colour_map, kColourMaps)},
               {"colour_label", h.colour_label},
               {"first_row_at_top", h.first_row_at_top}};
    if (h.min) hj["min"] = *h.min;
    if (h.max) hj["max"] = *h.max;
    if (!h.row_labels.empty()) hj["row_labels"] = h.row_labels;
    if (!h.col_labels.empty()) hj["col_labels"] = h.col_labels;
    j["heat_map"] = hj;
  }
  return j;
}

// Reads JSON objects field by field, naming the path of anything wrong.
class JsonReader {
 public:
  explicit JsonReader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& at, const std::string& what) const {
    throw Error(where_, at + ": " + what);
  }

  // Refuses a non-object and keys outside `allowed`.
  void object(const json& j, const std::string& at, std::initializer_list<const char*> allowed) const {
    if (!j.is_object()) fail(at.empty() ? "(top level)" : at, "expected an object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const bool known = std::any_of(allowed.begin(), allowed.end(), [&](const char* k) { return it.key() == k; });
      if (!known) fail(join(at, it.key()), "unknown key");
    }
  }

  static std::string join(const std::string& at, const std::string& key) { return at.empty() ? key : at + "." + key; }
  static std::string index(const std::string& at, size_t i) { return at + "[" + std::to_string(i) + "]"; }

  double number(const json& v, const std::string& at) const {
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number()) fail(at, "expected a number");
    return v.get<double>();
  }
  int64_t integer(const json& v, const std::string& at, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer()) fail(at, "expected an integer");
    const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                                 : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (!in_range) fail(at, "integer out of range");
    return v.get<int64_t>();
  }
  std::string text(const json& v, const std::string& at) const {
    if (!v.is_string()) fail(at, "expected a string");
    return v.get<std::string>();
  }
  Rgb colour(const json& v, const std::string& at) const {
    const std::string s = text(v, at);
    if (s.size() != 7 || s[0] != '#' ||
        !std::all_of(s.begin() + 1, s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
      fail(at, "expected a colour \"#rrggbb\", got \"" + s + "\"");
    }
    return hex(static_cast<unsigned>(std::strtoul(s.c_str() + 1, nullptr, 16)));
  }
  const json& array(const json& v, const std::string& at) const {
    if (!v.is_array()) fail(at, "expected an array");
    return v;
  }

  // Field readers: leave `out` as it is when the key is absent.
  void get(const json& j, const std::string& at, const char* key, std::string& out) const {
    if (auto it = j.find(key); it != j.end()) out = text(*it, join(at, key));
  }
  void get(const json& j, const std::string& at, const char* key, double& out) const {
    if (auto it = j.find(key); it != j.end()) out = number(*it, join(at, key));
  }
  void get(const json& j, const std::string& at, const char* key, bool& out) const {
    if (auto it = j.find(key); it != j.end()) {
      if (!it->is_boolean()) fail(join(at, key), "expected true or false");
      out = it->get<bool>();
    }
  }
  void get(const json& j, const std::string& at, const char* key, int& out) const {
    if (auto it = j.find(key); it != j.end()) {
      out = static_cast<int>(
          integer(*it, join(at, key), std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
    }
  }
  void get(const json& j, const std::string& at, const char* key, int64_t& out) const {
    if (auto it = j.find(key); it != j.end()) {
      out = integer(*it, join(at, key), std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
    }
  }
  void get(const json& j, const std::string& at, const char* key, std::optional<double>& out) const {
    if (auto it = j.find(key); it != j.end() && !it->is_null()) out = number(*it, join(at, key));
  }
  void get(const json& j, const std::string& at, const char* key, std::optional<int>& out) const {
    if (auto it = j.find(key); it != j.end() && !it->is_null()) {
      int v = 0;
      get(j, at, key, v);
      out = v;
    }
  }
  void get(const json& j, const std::string& at, const char* key, std::optional<Rgb>& out) const {
    if (auto it = j.find(key); it != j.end() && !it->is_null()) out = colour(*it, join(at, key));
  }
  void get(const json& j, const std::string& at, const char* key, std::vector<Rgb>& out) const {
    if (auto it = j.find(key); it != j.end()) {
      const std::string here = join(at, key);
      out.clear();
      for (size_t i = 0; i < array(*it, here).size(); ++i) out.push_back(colour((*it)[i], index(here, i)));
    }
  }
  void get(const json& j, const std::string& at, const char* key, std::vector<double>& out) const {
    if (auto it = j.find(key); it != j.end()) {
      const std::string here = join(at, key);
      out.clear();
      for (size_t i = 0; i < array(*it, here).size(); ++i) out.push_back(number((*it)[i], index(here, i)));
    }
  }
  void get(const json& j, const std::string& at, const char* key, std::vector<std::string>& out) const {
    if (auto it = j.find(key); it != j.end()) {
      const std::string here = join(at, key);
      out.clear();
      for (size_t i = 0; i < array(*it, here).size(); ++i) out.push_back(text((*it)[i], index(here, i)));
    }
  }
  void get(const json& j, const std::string& at, const char* key, std::vector<int>& out) const {
    if (auto it = j.find(key); it != j.end()) {
      const std::string here = join(at, key);
      out.clear();
      for (size_t i = 0; i < array(*it, here).size(); ++i) {
        out.push_back(static_cast<int>(integer((*it)[i], index(here, i), std::numeric_limits<int>::min(),
                                               std::numeric_limits<int>::max())));
      }
    }
  }
  template <typename E, size_t N>
  void get(const json& j, const std::string& at, const char* key, E& out, const Named<E> (&table)[N]) const {
    if (auto it = j.find(key); it != j.end()) {
      const std::string name = text(*it, join(at, key));
      for (const auto& entry : table) {
        if (name == entry.name) {
          out = entry.value;
          return;
        }
      }
      std::string names;
      for (const auto& entry : table) names += std::string(names.empty() ? "" : ", ") + entry.name;
      fail(join(at, key), "unknown value \"" + name + "\"; expected one of " + names);
    }
  }

 private:
  std::string where_;
};

Axis axis_from_json(const JsonReader& r, const json& j, const std::string& at) {
  r.object(j, at, {"label", "min", "max", "log_scale"});
  Axis a;
  r.get(j, at, "label", a.label);
  r.get(j, at, "min", a.min);
  r.get(j, at, "max", a.max);
  r.get(j, at, "log_scale", a.log_scale);
  return a;
}

Series series_from_json(const JsonReader& r, const json& j, const std::string& at) {
  r.object(j, at,
           {"name", "kind", "x", "y", "categories", "error_lo", "error_hi", "error_band", "marker", "marker_size",
            "line_width", "line_style", "opacity", "colour", "colour_index", "point_categories", "category_names",
            "category_colours"});
  Series s;
  r.get(j, at, "name", s.name);
  r.get(j, at, "kind", s.kind, kSeriesKinds);
  r.get(j, at, "x", s.x);
  r.get(j, at, "y", s.y);
  r.get(j, at, "categories", s.categories);
  r.get(j, at, "error_lo", s.error_lo);
  r.get(j, at, "error_hi", s.error_hi);
  r.get(j, at, "error_band", s.error_band);
  r.get(j, at, "marker", s.marker, kMarkers);
  r.get(j, at, "marker_size", s.marker_size);
  r.get(j, at, "line_width", s.line_width);
  r.get(j, at, "line_style", s.line_style, kLineStyles);
  r.get(j, at, "opacity", s.opacity);
  r.get(j, at, "colour", s.colour);
  r.get(j, at, "colour_index", s.colour_index);
  r.get(j, at, "point_categories", s.point_categories);
  r.get(j, at, "category_names", s.category_names);
  r.get(j, at, "category_colours", s.category_colours);
  return s;
}

Panel panel_from_json(const JsonReader& r, const json& j, const std::string& at) {
  r.object(j, at,
           {"title", "kind", "x_axis", "y_axis", "legend", "legend_position", "grid", "series", "annotations",
            "reference_lines", "heat_map"});
  Panel p;
  r.get(j, at, "title", p.title);
  r.get(j, at, "kind", p.kind, kPanelKinds);
  if (auto it = j.find("x_axis"); it != j.end()) p.x_axis = axis_from_json(r, *it, JsonReader::join(at, "x_axis"));
  if (auto it = j.find("y_axis"); it != j.end()) p.y_axis = axis_from_json(r, *it, JsonReader::join(at, "y_axis"));
  r.get(j, at, "legend", p.legend);
  r.get(j, at, "legend_position", p.legend_position, kLegendPositions);
  r.get(j, at, "grid", p.grid);
  if (auto it = j.find("series"); it != j.end()) {
    const std::string here = JsonReader::join(at, "series");
    for (size_t i = 0; i < r.array(*it, here).size(); ++i) {
      p.series.push_back(series_from_json(r, (*it)[i], JsonReader::index(here, i)));
    }
  }
  if (auto it = j.find("annotations"); it != j.end()) {
    const std::string here = JsonReader::join(at, "annotations");
    for (size_t i = 0; i < r.array(*it, here).size(); ++i) {
      const json& aj = (*it)[i];
      const std::string ai = JsonReader::index(here, i);
      r.object(aj, ai, {"x", "y", "text", "align", "colour"});
      Annotation a;
      r.get(aj, ai, "x", a.x);
      r.get(aj, ai, "y", a.y);
      r.get(aj, ai, "text", a.text);
      r.get(aj, ai, "align", a.align, kAligns);
      r.get(aj, ai, "colour", a.colour);
      p.annotations.push_back(a);
    }
  }
  if (auto it = j.find("reference_lines"); it != j.end()) {
    const std::string here = JsonReader::join(at, "reference_lines");
    for (size_t i = 0; i < r.array(*it, here).size(); ++i) {
      const json& rj = (*it)[i];
      const std::string ri = JsonReader::index(here, i);
      r.object(rj, ri, {"vertical", "value", "label", "colour", "line_style"});
      ReferenceLine line;
      r.get(rj, ri, "vertical", line.vertical);
      r.get(rj, ri, "value", line.value);
      r.get(rj, ri, "label", line.label);
      r.get(rj, ri, "colour", line.colour);
      r.get(rj, ri, "line_style", line.line_style, kLineStyles);
      p.reference_lines.push_back(line);
    }
  }
  if (auto it = j.find("heat_map"); it != j.end()) {
    const std::string here = JsonReader::join(at, "heat_map");
    r.object(*it, here,
             {"rows", "cols", "values", "colour_map", "min", "max", "colour_label", "row_labels", "col_labels",
              "first_row_at_top"});
    HeatMap& h = p.heat_map;
    r.get(*it, here, "rows", h.rows);
    r.get(*it, here, "cols", h.cols);
    r.get(*it, here, "values", h.values);
    r.get(*it, here, "colour_map", h.colour_map, kColourMaps);
    r.get(*it, here, "min", h.min);
    r.get(*it, here, "max", h.max);
    r.get(*it, here, "colour_label", h.colour_label);
    r.get(*it, here, "row_labels", h.row_labels);
    r.get(*it, here, "col_labels", h.col_labels);
    r.get(*it, here, "first_row_at_top", h.first_row_at_top);
  }
  return p;
}

// ---------------------------------------------------------------------------
// CSV

std::string csv_field(const std::string& s) {
  const bool plain = s.find_first_of(",\"\r\n") == std::string::npos &&
                     (s.empty() || (s.front() != ' ' && s.back() != ' '));
  if (plain) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// The shortest decimal that reads back as the same double (plain or
// exponent notation, whichever is shorter); empty when not finite.
std::string csv_number(double v) {
  if (!std::isfinite(v)) return "";
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, result.ptr);
}

std::string figure_csv(const Figure& figure) {
  std::string out = "panel,series,x,y,lo,hi,category,value\n";
  auto row = [&out](std::initializer_list<std::string> fields) {
    bool first = true;
    for (const auto& f : fields) {
      if (!first) out += ',';
      out += f;
      first = false;
    }
    out += '\n';
  };
  for (size_t p = 0; p < figure.panels.size(); ++p) {
    const Panel& panel = figure.panels[p];
    const std::string panel_name = csv_field(panel.title.empty() ? "panel " + std::to_string(p + 1) : panel.title);
    for (size_t k = 0; k < panel.series.size(); ++k) {
      const Series& s = panel.series[k];
      const std::string name = csv_field(s.name.empty() ? "series " + std::to_string(k + 1) : s.name);
      for (size_t i = 0; i < s.y.size(); ++i) {
        const std::string x = s.categories.empty() ? csv_number(point_x(s, i)) : csv_field(s.categories[i]);
        std::string category;
        if (!s.point_categories.empty()) {
          const int c = s.point_categories[i];
          category = s.category_names.empty() ? std::to_string(c) : csv_field(s.category_names[c]);
        }
        row({panel_name, name, x, csv_number(s.y[i]), s.error_lo.empty() ? "" : csv_number(s.error_lo[i]),
             s.error_hi.empty() ? "" : csv_number(s.error_hi[i]), category, ""});
      }
    }
    if (panel.kind == PanelKind::kHeatMap) {
      const HeatMap& h = panel.heat_map;
      const std::string name = csv_field(h.colour_label.empty() ? "heat map" : h.colour_label);
      for (int64_t i = 0; i < h.rows; ++i) {
        const std::string y = h.row_labels.empty() ? std::to_string(i) : csv_field(h.row_labels[i]);
        for (int64_t j = 0; j < h.cols; ++j) {
          const std::string x = h.col_labels.empty() ? std::to_string(j) : csv_field(h.col_labels[j]);
          row({panel_name, name, x, y, "", "", "", csv_number(h.values[i * h.cols + j])});
        }
      }
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions

Rgb palette_colour(int index) { return kOkabeIto[((index % 8) + 8) % 8]; }

Rgb colour_map(ColourMap map, double t) {
  return map == ColourMap::kViridis ? interpolate(kViridis, t) : interpolate(kDiverging, t);
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  std::vector<double> ticks;
  if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi) || max_ticks < 2) return ticks;
  const double span = hi - lo;
  // Start below the smallest step that could fit and walk up the 1-2-5 ladder.
  int e = static_cast<int>(std::floor(std::log10(span / max_ticks))) - 1;
  for (;; ++e) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double step = m * std::pow(10.0, e);
      const double first = std::ceil(lo / step - 1e-9), last = std::floor(hi / step + 1e-9);
      if (last - first + 1 > max_ticks) continue;
      for (double k = first; k <= last; ++k) {
        const double v = k * step;
        ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
      }
      return ticks;
    }
  }
}

void validate_figure(const Figure& f, const std::string& where) {
  if (!(std::isfinite(f.width_pt) && f.width_pt > 0 && std::isfinite(f.height_pt) && f.height_pt > 0)) {
    throw Error(where, "figure size " + number_text(f.width_pt) + " x " + number_text(f.height_pt) +
                           " pt is not positive");
  }
  if (!(std::isfinite(f.font_size_pt) && f.font_size_pt > 0)) throw Error(where, "font size must be positive");
  if (!(std::isfinite(f.dpi) && f.dpi > 0)) throw Error(where, "dpi must be positive");
  if (f.panels.empty()) throw Error(where, "figure has no panels");
  if (f.rows < 1 || f.cols < 0) {
    throw Error(where, "grid of " + std::to_string(f.rows) + " x " + std::to_string(f.cols) + " panels");
  }
  if (static_cast<size_t>(f.rows) * static_cast<size_t>(grid_cols(f)) < f.panels.size()) {
    throw Error(where, std::to_string(f.panels.size()) + " panels do not fit a grid of " + std::to_string(f.rows) +
                           " x " + std::to_string(grid_cols(f)));
  }
  for (size_t p = 0; p < f.panels.size(); ++p) {
    const Panel& panel = f.panels[p];
    const std::string at = panel_where(panel, p);
    check_range(panel.x_axis, at + ", x axis", where);
    check_range(panel.y_axis, at + ", y axis", where);
    if (panel.kind == PanelKind::kHeatMap) {
      validate_heat_map(panel.heat_map, at, where);
    } else if (panel.series.empty()) {
      throw Error(where, at + ": no series to draw");
    }
    for (size_t k = 0; k < panel.series.size(); ++k) {
      validate_series(panel.series[k], series_where(panel, p, panel.series[k], k), where);
    }
    for (const auto& a : panel.annotations) check_colour(a.colour, at + ", annotation " + quoted(a.text), where);
    for (const auto& r : panel.reference_lines) check_colour(r.colour, at + ", reference line", where);
  }
}

std::vector<PanelFrame> figure_frames(const Figure& figure) {
  validate_figure(figure, "figure");
  const Layout layout = layout_figure(figure, "figure");
  std::vector<PanelFrame> frames;
  for (const auto& pl : layout.panels) {
    frames.push_back(PanelFrame{pl.plot.x, pl.plot.y, pl.plot.w, pl.plot.h, pl.xs.lo, pl.xs.hi, pl.ys.lo, pl.ys.hi,
                                pl.xs.log, pl.ys.log});
  }
  return frames;
}

std::array<double, 2> data_to_figure(const PanelFrame& f, double x, double y) {
  const Scale xs{f.x_min, f.x_max, f.x_log}, ys{f.y_min, f.y_max, f.y_log};
  return {f.left + xs.unit(x) * f.width, f.top + (1 - ys.unit(y)) * f.height};
}

std::string render_figure_to_string(const Figure& figure, const std::string& format) {
  if (format == "png") return render(figure, Format::kPng, "figure");
  if (format == "svg") return render(figure, Format::kSvg, "figure");
  if (format == "pdf") return render(figure, Format::kPdf, "figure");
  throw Error("figure", "unknown format \"" + format + "\"; expected png, svg or pdf");
}

void render_figure(const Figure& figure, const std::filesystem::path& out) {
  const std::string ext = lower_extension(out);
  Format format;
  if (ext == ".png") {
    format = Format::kPng;
  } else if (ext == ".svg") {
    format = Format::kSvg;
  } else if (ext == ".pdf") {
    format = Format::kPdf;
  } else {
    throw Error(out.string(), "unknown figure format \"" + ext + "\"; expected .png, .svg or .pdf");
  }
  write_file_atomic(out, render(figure, format, out.string()));
}

void write_figure_data(const Figure& figure, const std::filesystem::path& out) {
  const std::string ext = lower_extension(out);
  if (ext != ".csv" && ext != ".json") {
    throw Error(out.string(), "unknown data format \"" + ext + "\"; expected .csv or .json");
  }
  validate_figure(figure, out.string());
  write_file_atomic(out, ext == ".csv" ? figure_csv(figure) : figure_to_json(figure).dump(2) + "\n");
}

nlohmann::json figure_to_json(const Figure& f) {
  json j = {{"title", f.title},
            {"width_pt", f.width_pt},
            {"height_pt", f.height_pt},
            {"font_family", f.font_family},
            {"font_size_pt", f.font_size_pt},
            {"dpi", f.dpi},
            {"rows", f.rows},
            {"cols", f.cols},
            {"panels", json::array()}};
  for (const auto& p : f.panels) j["panels"].push_back(panel_json(p));
  return j;
}

Figure figure_from_json(const nlohmann::json& j, const std::string& where) {
  const JsonReader r(where);
  r.object(j, "", {"title", "width_pt", "height_pt", "font_family", "font_size_pt", "dpi", "rows", "cols", "panels"});
  Figure f;
  r.get(j, "", "title", f.title);
  r.get(j, "", "width_pt", f.width_pt);
  r.get(j, "", "height_pt", f.height_pt);
  r.get(j, "", "font_family", f.font_family);
  r.get(j, "", "font_size_pt", f.font_size_pt);
  r.get(j, "", "dpi", f.dpi);
  r.get(j, "", "rows", f.rows);
  r.get(j, "", "cols", f.cols);
  if (auto it = j.find("panels"); it != j.end()) {
    for (size_t i = 0; i < r.array(*it, "panels").size(); ++i) {
      f.panels.push_back(panel_from_json(r, (*it)[i], JsonReader::index("panels", i)));
    }
  }
  validate_figure(f, where);
  return f;
}

}  // namespace superpose

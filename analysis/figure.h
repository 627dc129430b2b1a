// Publication figures: a plain description (panels of line, scatter and bar
// series, or heat maps) rendered with Cairo to PNG, SVG or PDF, and its data
// exported to CSV or JSON.
//
// Units are typographic points (1/72 inch) throughout; the default size is a
// one-column paper figure. Text uses the font family through Cairo's toy font
// API (fontconfig picks the file); PDF and SVG embed the glyphs they use.
// Layout is deterministic and identical for every format: text is measured
// with unhinted metrics, so a PNG matches the PDF rasterised at `dpi`.
//
// Colours: series without an explicit colour take the Okabe–Ito palette
// (colour-blind safe, 8 colours, repeating) by index; heat maps use viridis
// (sequential) or a blue–white–red map (diverging, ColorBrewer RdBu).
//
// Errors: everything a user or a data file can get wrong (mismatched lengths,
// series without a finite point, an unknown format, an unwritable path, a bad
// JSON description) throws Error with one line naming the file, the panel and
// the series. Output files are written atomically (write_file_atomic): a
// failure leaves no file behind. Functions are thread-safe on distinct
// figures.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace superpose {

// sRGB components in [0, 1].
struct Rgb {
  double r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
};

// The Okabe–Ito palette in its published order: black, orange, sky blue,
// bluish green, yellow, blue, vermillion, reddish purple. Any index is valid;
// indices wrap around (negative ones too).
Rgb palette_colour(int index);

enum class ColourMap { kViridis, kDiverging };
// The colour of t in [0, 1] (clamped): viridis from dark purple (0) to yellow
// (1); diverging from dark blue (0) through near-white (0.5) to dark red (1).
Rgb colour_map(ColourMap map, double t);

enum class SeriesKind { kLine, kScatter, kBar, kLineMarkers };
enum class MarkerShape { kCircle, kSquare, kTriangle, kDiamond, kCross, kPlus };
enum class LineStyle { kSolid, kDashed, kDotted };

struct Series {
  std::string name;  // legend entry; an empty name has none
  SeriesKind kind = SeriesKind::kLine;
  // One value per point, equal lengths. Non-finite x or y leave the point out
  // (a line breaks there). Bars: x may be empty, then bar i stands at x = i.
  std::vector<double> x;
  std::vector<double> y;
  // Bars only: a label per bar (as many as y), shown as the x tick labels;
  // the bars then stand at x = 0, 1, ... and x must be empty. All labelled
  // bar series of a panel share the same labels. Bars grow from 0 (from the
  // bottom edge on a log axis); several bar series in a panel stand side by
  // side at each position, in series order.
  std::vector<std::string> categories;
  // Error bars: absolute lower and upper y per point (not offsets), as many
  // as y, or both empty. As a shaded band instead of bars when error_band
  // (lines); non-finite bounds draw nothing for that point.
  std::vector<double> error_lo;
  std::vector<double> error_hi;
  bool error_band = false;

  MarkerShape marker = MarkerShape::kCircle;
  double marker_size = 4.0;  // diameter in points
  double line_width = 1.2;   // points
  LineStyle line_style = LineStyle::kSolid;
  double opacity = 1.0;  // [0, 1]; below 1 for dense scatter plots
  // Explicit colour, else palette_colour(colour_index), else
  // palette_colour(position in the panel + 1): orange, sky blue, bluish
  // green, ..., black last.
  std::optional<Rgb> colour;
  std::optional<int> colour_index;

  // Scatter only: a category per point (as many as x, each >= 0) that
  // colours the points (e.g. model × domain in a t-SNE map): category c has
  // palette_colour(colour_index + c), colour_index 1 (orange) when absent;
  // `colour` is unused.
  // The legend then lists category_names[c] of the categories present instead
  // of the series name. With names given, every category must index them.
  std::vector<int> point_categories;
  std::vector<std::string> category_names;
  // Explicit category colours (e.g. a sequential map for ordered categories
  // such as layers), as many as category_names; empty = the palette.
  std::vector<Rgb> category_colours;
};

struct Axis {
  std::string label;
  // A fixed end of the range; an absent end follows the data (with a 4%
  // margin; bar charts start at 0).
  std::optional<double> min;
  std::optional<double> max;
  bool log_scale = false;  // base 10; points with a value <= 0 are left out
};

// Text at data coordinates, vertically centred on y.
struct Annotation {
  double x = 0, y = 0;
  std::string text;
  enum class Align { kLeft, kCentre, kRight } align = Align::kLeft;  // which part of the text sits at x
  std::optional<Rgb> colour;                                           // default near-black
};

// A line across the plot area at a data value, e.g. a baseline.
struct ReferenceLine {
  bool vertical = false;  // false: y = value; true: x = value
  double value = 0;
  std::string label;  // along the line, at whichever end covers less data
  std::optional<Rgb> colour;  // default grey
  LineStyle line_style = LineStyle::kDashed;
};

// A matrix of values drawn as coloured cells with a colour bar, e.g. layer ×
// neuron. Data coordinates: column j spans x in [j - 0.5, j + 0.5], row i
// spans y in [i - 0.5, i + 0.5]; series, annotations and reference lines of the
// panel are drawn in these coordinates over the cells.
struct HeatMap {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<double> values;  // row-major, rows * cols; non-finite cells are grey
  ColourMap colour_map = ColourMap::kViridis;
  // The values at the ends of the colour bar. Absent: the finite data's
  // range; for the diverging map ±max|value|, or the given end mirrored, so
  // that 0 is the neutral colour.
  std::optional<double> min;
  std::optional<double> max;
  std::string colour_label;              // beside the colour bar
  std::vector<std::string> row_labels;   // empty or one per row
  std::vector<std::string> col_labels;   // empty or one per column
  bool first_row_at_top = true;          // as a matrix is printed; false puts row 0 at the bottom
};

enum class LegendPosition { kBest, kUpperRight, kUpperLeft, kLowerLeft, kLowerRight, kOutsideRight, kOutsideTop };
enum class PanelKind { kPlot, kHeatMap };

struct Panel {
  std::string title;
  PanelKind kind = PanelKind::kPlot;
  Axis x_axis;  // heat maps: the columns (range and log scale are ignored)
  Axis y_axis;  // heat maps: the rows
  bool legend = true;  // shown when some series has a name or category names
  // Inside corners: a framed box. kOutsideRight: one column beside the plot
  // (beyond a heat map's colour bar). kOutsideTop: above the plot, below the
  // panel title, in as many columns as fit. kBest: an inside corner free of
  // data (points, lines, bars, annotations), else whichever outside place
  // takes less of the plot's area.
  LegendPosition legend_position = LegendPosition::kBest;
  bool grid = false;  // light lines at the major ticks
  std::vector<Series> series;
  std::vector<Annotation> annotations;
  std::vector<ReferenceLine> reference_lines;
  HeatMap heat_map;  // used when kind == kHeatMap
};

struct Figure {
  std::string title;
  double width_pt = 252;  // 3.5 in: one column of a two-column paper
  double height_pt = 180;
  std::string font_family = "DejaVu Sans";
  double font_size_pt = 8;  // labels and titles; tick labels and legend are 7/8 of it
  double dpi = 300;         // PNG only: pixels = points * dpi / 72, rounded
  // The grid the panels fill row by row. cols = 0: as many columns as the
  // panels need in `rows` rows. rows * cols must hold every panel.
  int rows = 1;
  int cols = 0;
  std::vector<Panel> panels;
};

// Renders the figure; the format follows the extension (.png, .svg, .pdf,
// case-insensitive). Throws Error naming `out` for an unknown extension, an
// invalid figure (naming panel and series) or a failed write.
void render_figure(const Figure& figure, const std::filesystem::path& out);

// The bytes render_figure would write for `format` ("png", "svg", "pdf").
// Errors name "figure" instead of a path.
std::string render_figure_to_string(const Figure& figure, const std::string& format);

// Writes the figure's data: ".json" the whole description (figure_to_json);
// ".csv" long format, one row per point and per heat-map cell, with header
//   panel,series,x,y,lo,hi,category,value
// panel is the panel's title or "panel N" (1-based) when it has none. Series
// rows: x (bars with labels: the label), y, lo/hi (error bounds, if any),
// category (the category's name, else its index, if any); value empty. Heat-map
// rows: series is the colour label (or "heat map"), x the column (label or
// index), y the row, value the cell. Non-finite numbers are empty fields.
// Throws Error like render_figure.
void write_figure_data(const Figure& figure, const std::filesystem::path& out);

// The description as JSON, and back. Enum values are snake_case strings
// ("line_markers", "upper_right", "heat_map"), colours "#rrggbb", non-finite
// numbers null. figure_from_json takes missing keys as defaults, refuses
// unknown keys and wrong types with Error("<where>: panels[0].series[1].kind: …"),
// and validates the result. figure_to_json(figure_from_json(j)) == j for any j
// that figure_to_json wrote.
nlohmann::json figure_to_json(const Figure& figure);
Figure figure_from_json(const nlohmann::json& json, const std::string& where = "figure");

// Throws Error("<where>: panel 2 'Loss', series 'train': …") for the first
// problem in the figure; render_figure and write_figure_data call it.
void validate_figure(const Figure& figure, const std::string& where);

// Where render_figure puts a panel's plot area and which data ranges its axes
// span, for callers that place things on a rendered figure (and for tests).
struct PanelFrame {
  // The plot area in points from the figure's top-left corner.
  double left = 0, top = 0, width = 0, height = 0;
  // Data values at the left/right and bottom/top edges. For heat maps with
  // the first row at the top, y_min (bottom) is rows - 0.5 and y_max is -0.5.
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  bool x_log = false, y_log = false;
};

// One frame per panel, in order. Validates the figure (Error as above, naming
// "figure").
std::vector<PanelFrame> figure_frames(const Figure& figure);

// Where the data point (x, y) lands, in points from the figure's top-left
// corner (y downwards). Multiply by dpi / 72 for PNG pixel coordinates.
std::array<double, 2> data_to_figure(const PanelFrame& frame, double x, double y);

// Tick values for an axis from lo to hi: multiples of a 1-2-5 step (1, 2 or
// 5 times a power of ten), at most max_ticks of them and as many as that
// allows, all within [lo, hi] (1e-9 of a step of slack). Empty unless
// lo < hi (both finite) and max_ticks >= 2.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks);

}  // namespace superpose

// Figures: rendered files decoded and parsed back (PNG pixels, SVG elements,
// PDF structure), data exports, the JSON round trip and refused inputs.
#include <cairo.h>
#include <dirent.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/figure.h"
#include "model/errors.h"
#include "model/file_util.h"
#include "tests/support/temp_dir.h"

namespace superpose {
namespace {

using testing::TempDir;

// Runs `action`, expecting Error whose message holds every fragment.
void expect_error(const std::function<void()>& action, std::initializer_list<std::string> fragments) {
  try {
    action();
  } catch (const Error& e) {
    for (const auto& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "message '" << e.what() << "' lacks '" << fragment << "'";
    }
    return;
  }
  ADD_FAILURE() << "no superpose::Error thrown";
}

// Directory entries other than "." and "..", temporaries included.
std::vector<std::string> entries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    }
    ::closedir(d);
  }
  return names;
}

Series scatter(const std::string& name, std::vector<double> x, std::vector<double> y, int colour_index) {
  Series s;
  s.name = name;
  s.kind = SeriesKind::kScatter;
  s.x = std::move(x);
  s.y = std::move(y);
  s.colour_index = colour_index;
  s.marker_size = 6;
  return s;
}

// One panel, one orange scatter series of five points, no legend.
Figure scatter_figure() {
  Figure f;
  Panel p;
  p.x_axis.label = "x";
  p.y_axis.label = "y";
  p.legend = false;
  p.series.push_back(scatter("points", {0, 1, 2, 3, 4}, {0.5, 3, 1.5, 4, 2}, 1));
  f.panels.push_back(p);
  return f;
}

// Every feature of the description at least once.
Figure full_figure() {
  Figure f;
  f.title = "All kinds";
  f.width_pt = 504;
  f.height_pt = 360;
  f.rows = 2;
  f.cols = 2;
  f.font_size_pt = 7.5;
  f.dpi = 150;

  Panel line;
  line.title = "Loss";
  line.x_axis.label = "step";
  line.y_axis = Axis{"loss", 0.1, 10.0, true};
  line.grid = true;
  line.legend_position = LegendPosition::kUpperRight;
  Series train;
  train.name = "train, smoothed";
  train.kind = SeriesKind::kLineMarkers;
  train.x = {0, 100, 200, 300};
  train.y = {5, 2, std::nan(""), 0.5};
  train.error_lo = {4, 1.5, std::nan(""), 0.4};
  train.error_hi = {6, 2.5, std::nan(""), 0.6};
  train.error_band = true;
  train.marker = MarkerShape::kDiamond;
  train.line_style = LineStyle::kDashed;
  train.colour = Rgb{0.2, 0.4, 0.6};
  line.series.push_back(train);
  line.annotations.push_back({100, 2, "knee", Annotation::Align::kRight, Rgb{1, 0, 0}});
  line.reference_lines.push_back({false, 1.0, "target", std::nullopt, LineStyle::kDotted});
  line.reference_lines.push_back({true, 250, "", Rgb{0, 0, 0}, LineStyle::kSolid});

  Panel tsne;
  tsne.title = "t-SNE";
  tsne.legend_position = LegendPosition::kOutsideRight;
  Series points = scatter("", {1, 2, 3, 4}, {4, 3, 2, 1}, 0);
  points.point_categories = {0, 1, 1, 2};
  points.category_names = {"base EN", "base FR", "fine FR"};
  points.marker = MarkerShape::kCross;
  points.opacity = 0.5;
  tsne.series.push_back(points);

  Panel bars;
  bars.title = "Accuracy";
  bars.legend_position = LegendPosition::kOutsideTop;
  for (int m = 0; m < 2; ++m) {
    Series s;
    s.name = m == 0 ? "base" : "superposed";
    s.kind = SeriesKind::kBar;
    s.categories = {"English", "French"};
    s.y = m == 0 ? std::vector<double>{0.4, 0.3} : std::vector<double>{0.5, 0.3};
    s.error_lo = m == 0 ? std::vector<double>{0.38, 0.29} : std::vector<double>{0.48, 0.29};
    s.error_hi = m == 0 ? std::vector<double>{0.42, 0.31} : std::vector<double>{0.52, 0.31};
    bars.series.push_back(s);
  }

  Panel heat;
  heat.title = "Δ activation";
  heat.kind = PanelKind::kHeatMap;
  heat.x_axis.label = "neuron";
  heat.y_axis.label = "layer";
  heat.heat_map.rows = 2;
  heat.heat_map.cols = 3;
  heat.heat_map.values = {-1, 0, 1, 0.5, std::nan(""), -0.25};
  heat.heat_map.colour_map = ColourMap::kDiverging;
  heat.heat_map.max = 2.0;
  heat.heat_map.colour_label = "difference";
  heat.heat_map.row_labels = {"L0", "L1"};
  heat.heat_map.first_row_at_top = false;
  f.panels = {line, tsne, bars, heat};
  return f;
}

// ---------------------------------------------------------------------------
// Colours and ticks

TEST(FigureColours, OkabeItoPaletteWrapsAround) {
  const Rgb orange = palette_colour(1);  // #E69F00
  EXPECT_EQ(std::lround(orange.r * 255), 0xE6);
  EXPECT_EQ(std::lround(orange.g * 255), 0x9F);
  EXPECT_EQ(std::lround(orange.b * 255), 0x00);
  EXPECT_EQ(palette_colour(9), orange);
  EXPECT_EQ(palette_colour(-7), orange);
  EXPECT_EQ(palette_colour(0), (Rgb{0, 0, 0}));
}

TEST(FigureColours, ColourMapsMatchReferenceValues) {
  // Entries 0, 16, 128, 239 and 255 (t = i / 255) of viridis's 256-entry
  // table; 239 is where its blue channel bends most. The interpolation from
  // 33 points stays within 2/255 per channel.
  const double tolerance = 2.0 / 255;
  const struct {
    double t, r, g, b;
  } viridis[] = {{0, 0.267004, 0.004874, 0.329415},
                 {16.0 / 255, 0.282327, 0.094955, 0.417331},
                 {128.0 / 255, 0.127568, 0.566949, 0.550556},
                 {239.0 / 255, 0.835270, 0.886029, 0.102646},
                 {1, 0.993248, 0.906157, 0.143936}};
  for (const auto& ref : viridis) {
    const Rgb c = colour_map(ColourMap::kViridis, ref.t);
    EXPECT_NEAR(c.r, ref.r, tolerance) << "t = " << ref.t;
    EXPECT_NEAR(c.g, ref.g, tolerance) << "t = " << ref.t;
    EXPECT_NEAR(c.b, ref.b, tolerance) << "t = " << ref.t;
  }
  // Diverging: blue below the middle, near-white at it, red above.
  const Rgb low = colour_map(ColourMap::kDiverging, 0.1), mid = colour_map(ColourMap::kDiverging, 0.5),
            high = colour_map(ColourMap::kDiverging, 0.9);
  EXPECT_GT(low.b, low.r);
  EXPECT_GT(high.r, high.b);
  EXPECT_GT(std::min({mid.r, mid.g, mid.b}), 0.95);
  // Out of range clamps.
  EXPECT_EQ(colour_map(ColourMap::kViridis, -3), colour_map(ColourMap::kViridis, 0));
  EXPECT_EQ(colour_map(ColourMap::kViridis, 7), colour_map(ColourMap::kViridis, 1));
}

TEST(FigureTicks, NiceTicksAreOneTwoFiveStepsWithinRange) {
  EXPECT_EQ(nice_ticks(0, 1, 6), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_EQ(nice_ticks(0, 97, 6), (std::vector<double>{0, 20, 40, 60, 80}));
  EXPECT_EQ(nice_ticks(-3.2, 7.9, 6), (std::vector<double>{-2, 0, 2, 4, 6}));
  // Properties over random ranges: 2..max ticks, inside [lo, hi], evenly
  // spaced by 1, 2 or 5 times a power of ten, and the next smaller 1-2-5 step
  // would give too many ticks. Spacing compared with a relative 1e-9.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> exponent(-6, 6), unit(-1, 1);
  for (int trial = 0; trial < 500; ++trial) {
    const double scale = std::pow(10.0, exponent(rng));
    double lo = unit(rng) * scale, hi = unit(rng) * scale;
    if (lo > hi) std::swap(lo, hi);
    if (hi - lo < scale * 1e-3) continue;
    const int max_ticks = 2 + trial % 8;
    const auto ticks = nice_ticks(lo, hi, max_ticks);
    ASSERT_LE(static_cast<int>(ticks.size()), max_ticks) << lo << " " << hi;
    ASSERT_GE(ticks.size(), 1u) << lo << " " << hi;
    for (double t : ticks) {
      EXPECT_GE(t, lo - (hi - lo) * 1e-9);
      EXPECT_LE(t, hi + (hi - lo) * 1e-9);
    }
    if (ticks.size() < 2) continue;
    const double step = ticks[1] - ticks[0];
    const double e = std::floor(std::log10(step) + 1e-9);
    const double m = step / std::pow(10.0, e);
    EXPECT_TRUE(std::fabs(m - 1) < 1e-9 || std::fabs(m - 2) < 1e-9 || std::fabs(m - 5) < 1e-9) << "step " << step;
    for (size_t i = 1; i < ticks.size(); ++i) EXPECT_NEAR(ticks[i] - ticks[i - 1], step, step * 1e-9);
    const double smaller = std::fabs(m - 1) < 1e-9 ? 0.5 * step : std::fabs(m - 2) < 1e-9 ? step / 2 : step * 0.4;
    const double count = std::floor(hi / smaller + 1e-9) - std::ceil(lo / smaller - 1e-9) + 1;
    EXPECT_GT(count, max_ticks) << "step " << step << " is not the smallest for [" << lo << ", " << hi << "]";
  }
}

// ---------------------------------------------------------------------------
// PNG

struct Pixel {
  int r, g, b;
};

class Png {
 public:
  explicit Png(const std::filesystem::path& path)
      : surface_(cairo_image_surface_create_from_png(path.c_str()), cairo_surface_destroy) {}
  bool ok() const { return cairo_surface_status(surface_.get()) == CAIRO_STATUS_SUCCESS; }
  int width() const { return cairo_image_surface_get_width(surface_.get()); }
  int height() const { return cairo_image_surface_get_height(surface_.get()); }
  // RGB24 and ARGB32 both keep a pixel in a native-endian uint32 as 0xAARRGGBB.
  Pixel at(int x, int y) const {
    cairo_surface_flush(surface_.get());
    const int stride = cairo_image_surface_get_stride(surface_.get());
    const unsigned char* row = cairo_image_surface_get_data(surface_.get()) + static_cast<ptrdiff_t>(y) * stride;
    uint32_t v;
    std::memcpy(&v, row + 4 * x, 4);
    return {static_cast<int>((v >> 16) & 255), static_cast<int>((v >> 8) & 255), static_cast<int>(v & 255)};
  }
  // The pixel under a point given in points from the top-left corner.
  Pixel at_point(const std::array<double, 2>& p, double dpi) const {
    return at(static_cast<int>(std::floor(p[0] * dpi / 72)), static_cast<int>(std::floor(p[1] * dpi / 72)));
  }

 private:
  std::unique_ptr<cairo_surface_t, void (*)(cairo_surface_t*)> surface_;
};

// Within `tolerance` of the colour in every channel (0..255).
::testing::AssertionResult same_colour(const Pixel& p, const Rgb& c, int tolerance) {
  const int r = static_cast<int>(std::lround(c.r * 255)), g = static_cast<int>(std::lround(c.g * 255)),
            b = static_cast<int>(std::lround(c.b * 255));
  if (std::abs(p.r - r) <= tolerance && std::abs(p.g - g) <= tolerance && std::abs(p.b - b) <= tolerance) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "pixel (" << p.r << "," << p.g << "," << p.b << ") expected (" << r << ","
                                       << g << "," << b << ") within " << tolerance;
}

bool is_white(const Pixel& p) { return p.r == 255 && p.g == 255 && p.b == 255; }

TEST(FigurePng, HasTheSizeForDpiAndPointsLandWhereTheFrameSays) {
  TempDir dir;
  const Figure figure = scatter_figure();
  render_figure(figure, dir / "scatter.png");
  const Png png(dir / "scatter.png");
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png.width(), 1050);  // 252 pt * 300 dpi / 72
  EXPECT_EQ(png.height(), 750);  // 180 pt * 300 dpi / 72
  size_t ink = 0;
  for (int y = 0; y < png.height(); ++y) {
    for (int x = 0; x < png.width(); ++x) ink += !is_white(png.at(x, y));
  }
  EXPECT_GT(ink, 5000u) << "the image is (nearly) blank";

  const auto frames = figure_frames(figure);
  ASSERT_EQ(frames.size(), 1u);
  const Rgb orange = palette_colour(1);
  const Series& s = figure.panels[0].series[0];
  for (size_t i = 0; i < s.x.size(); ++i) {
    // A 6 pt marker is 25 px wide at 300 dpi: its centre pixel is fully
    // covered, so it has the series' colour exactly (1/255 for rounding).
    EXPECT_TRUE(same_colour(png.at_point(data_to_figure(frames[0], s.x[i], s.y[i]), figure.dpi), orange, 1))
        << "point " << i;
  }
  // Empty data space (between the points, away from text) stays white.
  EXPECT_TRUE(is_white(png.at_point(data_to_figure(frames[0], 0.5, 3.8), figure.dpi)));

  // The frame's axis ranges hold all the data, with margins.
  EXPECT_LT(frames[0].x_min, 0);
  EXPECT_GT(frames[0].x_max, 4);
  EXPECT_LT(frames[0].y_min, 0.5);
  EXPECT_GT(frames[0].y_max, 4);

  Figure small = figure;
  small.dpi = 150;
  render_figure(small, dir / "small.PNG");  // extensions are case-insensitive
  const Png half(dir / "small.PNG");
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half.width(), 525);
  EXPECT_EQ(half.height(), 375);
}

TEST(FigurePng, GridPanelsLineAndHeatMapCellsHaveTheirColours) {
  TempDir dir;
  Figure f;
  f.width_pt = 504;
  f.title = "Two panels";
  Panel line;
  line.legend = false;
  Series s;
  s.kind = SeriesKind::kLine;
  s.x = {0, 10};
  s.y = {0, 10};
  s.line_width = 2;
  s.colour = Rgb{0, 114 / 255.0, 178 / 255.0};
  line.series.push_back(s);
  Panel heat;
  heat.kind = PanelKind::kHeatMap;
  heat.heat_map.rows = 3;
  heat.heat_map.cols = 4;
  heat.heat_map.values = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  heat.heat_map.colour_label = "value";
  f.panels = {line, heat};
  render_figure(f, dir / "grid.png");
  const Png png(dir / "grid.png");
  ASSERT_TRUE(png.ok());
  const auto frames = figure_frames(f);
  ASSERT_EQ(frames.size(), 2u);
  // Side by side, plot tops aligned, both inside the figure.
  EXPECT_LT(frames[0].left + frames[0].width, frames[1].left);
  EXPECT_DOUBLE_EQ(frames[0].top, frames[1].top);
  EXPECT_LE(frames[1].left + frames[1].width, f.width_pt);
  EXPECT_LE(frames[1].top + frames[1].height, f.height_pt);

  // The middle of a 2 pt line (8 px at 300 dpi) is its colour.
  EXPECT_TRUE(same_colour(png.at_point(data_to_figure(frames[0], 5, 5), f.dpi), *s.colour, 1));
  // Each cell's centre has viridis of its value over the data range [0, 11];
  // row 0 is at the top. 2/255: the cell colour is quantised to bytes once.
  EXPECT_GT(frames[1].y_min, frames[1].y_max);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 4; ++j) {
      const double v = heat.heat_map.values[i * 4 + j];
      EXPECT_TRUE(same_colour(png.at_point(data_to_figure(frames[1], j, i), f.dpi),
                              colour_map(ColourMap::kViridis, v / 11), 2))
          << "cell " << i << "," << j;
    }
  }
}

TEST(FigurePng, NothingTouchesTheEdgesAndTheLegendLeavesDataUncovered) {
  TempDir dir;
  // Four clusters fill every corner, so no inside corner is free for the
  // legend; long labels and a title test the margins.
  Figure f;
  f.title = "Hidden states of two models";
  Panel p;
  p.x_axis.label = "first component (arbitrary units)";
  p.y_axis.label = "second component";
  Series s = scatter("", {}, {}, 1);  // categories 0..3 take palette colours 1..4
  s.category_names = {"base · English", "base · French", "fine · English", "fine · French"};
  const double cx[] = {-10, 10, -10, 10}, cy[] = {10, 10, -10, -10};
  for (int c = 0; c < 4; ++c) {
    for (int k = 0; k < 9; ++k) {
      s.x.push_back(cx[c] + (k % 3 - 1) * 2.5);
      s.y.push_back(cy[c] + (k / 3 - 1) * 2.5);
      s.point_categories.push_back(c);
    }
  }
  p.series.push_back(s);
  f.panels.push_back(p);
  render_figure(f, dir / "crowded.png");
  const Png png(dir / "crowded.png");
  ASSERT_TRUE(png.ok());
  // A band of 3 px (0.7 pt) along every edge stays white: labels, legend and
  // title all fit inside the figure.
  for (int x = 0; x < png.width(); ++x) {
    for (int y : {0, 1, 2, png.height() - 3, png.height() - 2, png.height() - 1}) {
      ASSERT_TRUE(is_white(png.at(x, y))) << "ink at the edge, pixel " << x << "," << y;
    }
  }
  for (int y = 0; y < png.height(); ++y) {
    for (int x : {0, 1, 2, png.width() - 3, png.width() - 2, png.width() - 1}) {
      ASSERT_TRUE(is_white(png.at(x, y))) << "ink at the edge, pixel " << x << "," << y;
    }
  }
  // Every point keeps its category's colour: the legend went outside the plot.
  const auto frame = figure_frames(f)[0];
  for (size_t i = 0; i < s.x.size(); ++i) {
    EXPECT_TRUE(same_colour(png.at_point(data_to_figure(frame, s.x[i], s.y[i]), f.dpi),
                            palette_colour(1 + s.point_categories[i]), 1))
        << "point " << i;
  }
  // And the legend does take room: the plot is smaller than without one.
  Figure bare = f;
  bare.panels[0].legend = false;
  const auto bare_frame = figure_frames(bare)[0];
  EXPECT_LT(frame.width * frame.height, bare_frame.width * bare_frame.height);
}

TEST(FigurePng, ExplicitCategoryColoursReplaceThePalette) {
  TempDir dir;
  Figure f;
  Panel p;
  Series s = scatter("", {0, 10, 0, 10}, {0, 0, 10, 10}, 1);
  s.point_categories = {0, 1, 2, 3};
  s.category_names = {"state 0", "state 4", "state 8", "state 12"};
  for (int c = 0; c < 4; ++c) s.category_colours.push_back(colour_map(ColourMap::kViridis, 0.8 * c / 3));
  s.opacity = 1.0;
  p.series.push_back(s);
  p.legend = false;
  f.panels.push_back(p);
  render_figure(f, dir / "states.png");
  const Png png(dir / "states.png");
  ASSERT_TRUE(png.ok());
  const auto frame = figure_frames(f)[0];
  for (size_t i = 0; i < s.x.size(); ++i) {
    EXPECT_TRUE(same_colour(png.at_point(data_to_figure(frame, s.x[i], s.y[i]), f.dpi), s.category_colours[i], 1))
        << "point " << i;
  }
  // They travel through the figure's JSON.
  const nlohmann::json j = figure_to_json(f);
  EXPECT_EQ(j["panels"][0]["series"][0]["category_colours"][0], "#440154");
  EXPECT_EQ(figure_to_json(figure_from_json(j)), j);
  // One colour per category name, each a colour.
  Figure short_list = f;
  short_list.panels[0].series[0].category_colours.pop_back();
  expect_error([&] { render_figure_to_string(short_list, "png"); }, {"3 category colours for 4 category names"});
  nlohmann::json bad = j;
  bad["panels"][0]["series"][0]["category_colours"][1] = "green";
  expect_error([&] { figure_from_json(bad); }, {"category_colours[1]", "expected a colour"});
}

// ---------------------------------------------------------------------------
// SVG

// The numbers of every "rgb(r%,g%,b%)" after `property` (e.g. "fill:"), and
// the first move-to of the path element it belongs to.
struct SvgPaint {
  double r, g, b;
  double move_x, move_y;
};

std::vector<SvgPaint> svg_paints(const std::string& svg, const std::string& property) {
  std::vector<SvgPaint> out;
  for (size_t at = svg.find(property + "rgb("); at != std::string::npos; at = svg.find(property + "rgb(", at + 1)) {
    const char* p = svg.c_str() + at + property.size() + 4;
    SvgPaint paint{};
    double* channel[] = {&paint.r, &paint.g, &paint.b};
    for (double* c : channel) {
      char* end = nullptr;
      *c = std::strtod(p, &end) / 100;
      p = end;
      while (*p == '%' || *p == ',' || *p == ' ') ++p;
    }
    const size_t element_end = svg.find('>', at);
    const size_t d = svg.find(" d=\"M ", at);
    if (d == std::string::npos || d > element_end) continue;
    char* end = nullptr;
    paint.move_x = std::strtod(svg.c_str() + d + 6, &end);
    paint.move_y = std::strtod(end, nullptr);
    out.push_back(paint);
  }
  return out;
}

TEST(FigureSvg, HasTheSizeTheMarkersAndTheTitleGlyphs) {
  TempDir dir;
  Figure figure = scatter_figure();
  figure.title = "Perplexity";
  render_figure(figure, dir / "scatter.svg");
  const std::string svg = read_file(dir / "scatter.svg");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  ASSERT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("width=\"252pt\""), std::string::npos);
  EXPECT_NE(svg.find("height=\"180pt\""), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);

  // One filled path per point in the series' colour, starting where Cairo
  // starts a circle: (centre x + radius, centre y). Colours within 0.1%,
  // positions within 0.01 pt (SVG numbers carry 6 decimals).
  const Rgb orange = palette_colour(1);
  std::vector<SvgPaint> markers;
  for (const auto& paint : svg_paints(svg, "fill:")) {
    if (std::fabs(paint.r - orange.r) < 1e-3 && std::fabs(paint.g - orange.g) < 1e-3 &&
        std::fabs(paint.b - orange.b) < 1e-3) {
      markers.push_back(paint);
    }
  }
  const Series& s = figure.panels[0].series[0];
  ASSERT_EQ(markers.size(), s.x.size());
  const auto frame = figure_frames(figure)[0];
  for (size_t i = 0; i < s.x.size(); ++i) {
    const auto p = data_to_figure(frame, s.x[i], s.y[i]);
    const bool found = std::any_of(markers.begin(), markers.end(), [&](const SvgPaint& m) {
      return std::fabs(m.move_x - (p[0] + s.marker_size / 2)) < 0.01 && std::fabs(m.move_y - p[1]) < 0.01;
    });
    EXPECT_TRUE(found) << "no marker at " << p[0] << "," << p[1] << " for point " << i;
  }

  // Cairo draws text as <use> references to glyph <symbol>s. The title is the
  // only text above the plot area (no panel title, legend off): one <use> per
  // character, each referring to a symbol with an outline, 9 distinct glyphs
  // for "Perplexity".
  std::set<std::string> glyphs;
  size_t uses = 0;
  const std::string use = "<use xlink:href=\"#";
  for (size_t at = svg.find(use); at != std::string::npos; at = svg.find(use, at + 1)) {
    const size_t id_end = svg.find('"', at + use.size());
    const std::string id = svg.substr(at + use.size(), id_end - at - use.size());
    const size_t y_at = svg.find(" y=\"", id_end);
    ASSERT_NE(y_at, std::string::npos);
    if (std::strtod(svg.c_str() + y_at + 4, nullptr) < frame.top - 4) {
      ++uses;
      glyphs.insert(id);
    }
  }
  EXPECT_EQ(uses, std::string("Perplexity").size());
  EXPECT_EQ(glyphs.size(), 9u);
  for (const auto& id : glyphs) {
    const size_t symbol = svg.find("<symbol overflow=\"visible\" id=\"" + id + "\"");
    ASSERT_NE(symbol, std::string::npos) << id;
    const size_t d = svg.find(" d=\"", symbol);
    ASSERT_NE(d, std::string::npos) << id;
    EXPECT_NE(svg[d + 4], '"') << "glyph " << id << " has no outline";
  }
}

// ---------------------------------------------------------------------------
// PDF

TEST(FigurePdf, ParsesWithOnePageAndAnEmbeddedFont) {
  TempDir dir;
  Figure figure = full_figure();
  render_figure(figure, dir / "all.pdf");
  const std::string pdf = read_file(dir / "all.pdf");
  EXPECT_EQ(pdf.rfind("%PDF-", 0), 0u);
  // %%EOF closes the file, followed by at most an end-of-line.
  const size_t eof = pdf.rfind("%%EOF");
  ASSERT_NE(eof, std::string::npos);
  EXPECT_LE(pdf.size() - (eof + 5), 2u);
  // startxref gives the byte offset of the cross-reference section: a
  // classic "xref" table or an object holding an /XRef stream.
  const size_t startxref = pdf.rfind("startxref");
  ASSERT_NE(startxref, std::string::npos);
  const size_t offset = std::strtoull(pdf.c_str() + startxref + 9, nullptr, 10);
  ASSERT_LT(offset, pdf.size());
  const bool table = pdf.compare(offset, 4, "xref") == 0;
  bool stream = false;
  if (!table) {
    int number = 0, generation = 0;
    stream = std::sscanf(pdf.c_str() + offset, "%d %d obj", &number, &generation) == 2 &&
             pdf.find("/XRef", offset) < pdf.find("endobj", offset);
  }
  EXPECT_TRUE(table || stream) << "startxref " << offset << " points at '" << pdf.substr(offset, 20) << "'";
  // One page: "/Type /Page" not followed by "s" (that is the /Pages tree).
  size_t pages = 0;
  for (size_t at = pdf.find("/Type /Page"); at != std::string::npos; at = pdf.find("/Type /Page", at + 1)) {
    pages += pdf.compare(at + 11, 1, "s") != 0;
  }
  EXPECT_EQ(pages, 1u);
  EXPECT_NE(pdf.find("/Count 1"), std::string::npos);
  EXPECT_TRUE(pdf.find("/FontFile2") != std::string::npos || pdf.find("/FontFile3") != std::string::npos)
      << "no embedded font program";
  EXPECT_NE(pdf.find("DejaVuSans"), std::string::npos);
  // The page has the figure's size in points.
  EXPECT_NE(pdf.find("/MediaBox [ 0 0 504 360 ]"), std::string::npos);
}

TEST(FigureOutput, EveryFormatRendersTheFullFigure) {
  const Figure figure = full_figure();
  for (const char* format : {"png", "svg", "pdf"}) {
    const std::string bytes = render_figure_to_string(figure, format);
    EXPECT_GT(bytes.size(), 1000u) << format;
  }
  expect_error([&] { render_figure_to_string(figure, "gif"); }, {"unknown format \"gif\""});
}

// ---------------------------------------------------------------------------
// Data: JSON and CSV

TEST(FigureData, JsonRoundTripsThroughFigureAndFile) {
  TempDir dir;
  const Figure figure = full_figure();
  const nlohmann::json first = figure_to_json(figure);
  const nlohmann::json second = figure_to_json(figure_from_json(first));
  EXPECT_EQ(first, second) << first.dump(1) << "\nvs\n" << second.dump(1);
  // Non-finite numbers are null and come back as NaN.
  EXPECT_TRUE(first["panels"][0]["series"][0]["y"][2].is_null());
  EXPECT_TRUE(std::isnan(figure_from_json(first).panels[0].series[0].y[2]));
  EXPECT_EQ(first["panels"][0]["series"][0]["colour"], "#336699");
  EXPECT_EQ(first["panels"][2]["legend_position"], "outside_top");

  write_figure_data(figure, dir / "all.json");
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "all.json")), first);

  // Missing keys take the defaults.
  const Figure minimal =
      figure_from_json(nlohmann::json::parse(R"({"panels": [{"series": [{"x": [1, 2], "y": [3, 4]}]}]})"));
  EXPECT_EQ(minimal.width_pt, 252);
  EXPECT_EQ(minimal.height_pt, 180);
  EXPECT_EQ(minimal.font_family, "DejaVu Sans");
  EXPECT_EQ(minimal.dpi, 300);
  ASSERT_EQ(minimal.panels.size(), 1u);
  EXPECT_EQ(minimal.panels[0].series[0].kind, SeriesKind::kLine);
  EXPECT_FALSE(minimal.panels[0].series[0].colour.has_value());
}

TEST(FigureData, CsvHasAHeaderAndOneRowPerPointAndCell) {
  TempDir dir;
  const Figure figure = full_figure();
  write_figure_data(figure, dir / "all.csv");
  const std::string csv = read_file(dir / "all.csv");
  std::vector<std::string> lines;
  std::istringstream in(csv);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "panel,series,x,y,lo,hi,category,value");
  // 4 line points + 4 scatter points + 2 * 2 bars + 2 * 3 heat-map cells.
  EXPECT_EQ(lines.size(), 1u + 4 + 4 + 4 + 6);
  const std::set<std::string> rows(lines.begin() + 1, lines.end());
  // A name with a comma is quoted; a missing value is an empty field.
  EXPECT_TRUE(rows.count("Loss,\"train, smoothed\",0,5,4,6,,")) << csv;
  EXPECT_TRUE(rows.count("Loss,\"train, smoothed\",200,,,,,")) << csv;
  EXPECT_TRUE(rows.count("t-SNE,series 1,2,3,,,base FR,")) << csv;
  EXPECT_TRUE(rows.count("Accuracy,superposed,English,0.5,0.48,0.52,,")) << csv;
  EXPECT_TRUE(rows.count("Δ activation,difference,2,L1,,,,-0.25")) << csv;
  EXPECT_TRUE(rows.count("Δ activation,difference,1,L1,,,,")) << csv;
}

// ---------------------------------------------------------------------------
// Refused inputs

TEST(FigureErrors, BadInputsThrowAndLeaveNoFile) {
  TempDir dir;
  const Figure good = scatter_figure();

  expect_error([&] { render_figure(good, dir / "out.bmp"); }, {"out.bmp", "unknown figure format \".bmp\""});
  expect_error([&] { write_figure_data(good, dir / "out.txt"); }, {"out.txt", "unknown data format"});

  Figure lengths = good;
  lengths.panels[0].series[0].name = "train";
  lengths.panels[0].series[0].y.pop_back();
  expect_error([&] { render_figure(lengths, dir / "lengths.pdf"); },
               {"lengths.pdf", "panel 1, series 'train'", "x has 5 values, y has 4"});
  expect_error([&] { write_figure_data(lengths, dir / "lengths.csv"); }, {"lengths.csv", "series 'train'"});

  Figure nan = good;
  nan.panels[0].title = "Loss";
  nan.panels[0].series[0].name = "empty";
  for (double& y : nan.panels[0].series[0].y) y = std::nan("");
  expect_error([&] { render_figure(nan, dir / "nan.png"); },
               {"nan.png", "panel 1 'Loss', series 'empty'", "has no finite points"});

  Figure log = good;
  log.panels[0].y_axis.log_scale = true;
  for (double& y : log.panels[0].series[0].y) y = -y;
  expect_error([&] { render_figure(log, dir / "log.svg"); }, {"log.svg", "y axis is logarithmic", "positive"});

  Figure heat;
  Panel panel;
  panel.kind = PanelKind::kHeatMap;
  panel.heat_map.rows = 2;
  panel.heat_map.cols = 3;
  panel.heat_map.values = {1, 2, 3};
  heat.panels.push_back(panel);
  expect_error([&] { render_figure(heat, dir / "heat.png"); }, {"heat.png", "3 values for 2 x 3 cells"});

  Figure huge = good;
  huge.dpi = 10000;
  expect_error([&] { render_figure(huge, dir / "huge.png"); }, {"huge.png", "35000 x 25000 pixels"});

  Figure crowded = good;
  crowded.width_pt = 40;
  expect_error([&] { render_figure(crowded, dir / "crowded.png"); }, {"crowded.png", "no room for the plot area"});

  // An unwritable path: the parent is a file, not a directory.
  write_file_atomic(dir / "file", "x");
  expect_error([&] { render_figure(good, dir / "file" / "out.png"); }, {"file/out.png", "Not a directory"});

  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"file"}) << "a failed write left a file behind";

  // A failed render keeps the previous file as it was.
  render_figure(good, dir / "kept.png");
  const std::string before = read_file(dir / "kept.png");
  expect_error([&] { render_figure(lengths, dir / "kept.png"); }, {"kept.png"});
  EXPECT_EQ(read_file(dir / "kept.png"), before);
  EXPECT_EQ(entries(dir.path()).size(), 2u);
}

TEST(FigureErrors, JsonMistakesAreNamedByPath) {
  const nlohmann::json good = figure_to_json(scatter_figure());
  nlohmann::json j = good;
  j["panels"][0]["series"][0]["colr"] = "#ff0000";
  expect_error([&] { figure_from_json(j, "plot.json"); }, {"plot.json", "panels[0].series[0].colr: unknown key"});
  j = good;
  j["panels"][0]["series"][0]["kind"] = "pie";
  expect_error([&] { figure_from_json(j, "plot.json"); },
               {"panels[0].series[0].kind", "unknown value \"pie\"", "line, scatter, bar, line_markers"});
  j = good;
  j["panels"][0]["series"][0]["y"][1] = "three";
  expect_error([&] { figure_from_json(j, "plot.json"); }, {"panels[0].series[0].y[1]: expected a number"});
  j = good;
  j["panels"][0]["series"][0]["colour"] = "orange";
  expect_error([&] { figure_from_json(j, "plot.json"); }, {"colour: expected a colour \"#rrggbb\""});
  j = good;
  j["rows"] = 1.5;
  expect_error([&] { figure_from_json(j, "plot.json"); }, {"rows: expected an integer"});
  j = good;
  j["panels"][0]["series"][0]["x"].push_back(9);
  expect_error([&] { figure_from_json(j, "plot.json"); }, {"plot.json", "x has 6 values, y has 5"});
  expect_error([&] { figure_from_json(nlohmann::json::array(), "plot.json"); }, {"expected an object"});
}

}  // namespace
}  // namespace superpose

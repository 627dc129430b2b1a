// α figure: lines over layers, plus a heat map for 2D α.
#include "app/studio/alpha_export.h"

#include "app/studio/app_state.h"

#include "model/errors.h"

namespace superpose::studio {

std::vector<float> alpha_per_layer(const std::vector<float>& alpha, const std::vector<int64_t>& shape) {
  if (shape.size() != 2) return alpha;
  const int64_t layers = shape[0], dims = shape[1];
  std::vector<float> mean(static_cast<size_t>(layers), 0.0f);
  if (dims <= 0 || static_cast<int64_t>(alpha.size()) != layers * dims) return mean;
  for (int64_t l = 0; l < layers; ++l) {
    double sum = 0.0;
    for (int64_t d = 0; d < dims; ++d) sum += alpha[static_cast<size_t>(l * dims + d)];
    mean[static_cast<size_t>(l)] = static_cast<float>(sum / static_cast<double>(dims));
  }
  return mean;
}

Figure alpha_figure(const SuperpositionInfo& info) {
  Figure figure;
  const std::string suffix = info.causal ? "" : " (non-causal)";
  figure.title = "α per layer" + suffix;
  Panel lines;
  lines.title = info.variant == "2d" ? "mean over dimensions" : "";
  lines.x_axis.label = "layer";
  lines.y_axis.label = "α (0 = base, 1 = fine)";
  lines.y_axis.min = 0.0;
  lines.y_axis.max = 1.0;
  lines.grid = true;
  const std::vector<float> learned = alpha_per_layer(info.alpha_learned, info.alpha_shape);
  const std::vector<float> in_force = alpha_per_layer(info.alpha_in_force, info.alpha_shape);
  auto add = [&](const std::string& name, const std::vector<float>& values, int colour, LineStyle style) {
    Series s;
    s.name = name;
    s.kind = SeriesKind::kLineMarkers;
    s.colour_index = colour;
    s.line_style = style;
    for (size_t l = 0; l < values.size(); ++l) {
      s.x.push_back(static_cast<double>(l));
      s.y.push_back(values[l]);
    }
    lines.series.push_back(std::move(s));
  };
  add("learned", learned, 5, LineStyle::kDashed);
  add("in force", in_force, 1, LineStyle::kSolid);
  figure.panels.push_back(std::move(lines));
  if (info.alpha_shape.size() == 2) {
    Panel map;
    map.title = "α in force" + suffix;
    map.kind = PanelKind::kHeatMap;
    map.x_axis.label = "dimension";
    map.y_axis.label = "layer";
    map.heat_map.rows = info.alpha_shape[0];
    map.heat_map.cols = info.alpha_shape[1];
    map.heat_map.values.assign(info.alpha_in_force.begin(), info.alpha_in_force.end());
    map.heat_map.min = 0.0;
    map.heat_map.max = 1.0;
    map.heat_map.colour_label = "α";
    figure.panels.push_back(std::move(map));
    figure.width_pt = 504;
  }
  return figure;
}

std::vector<std::filesystem::path> export_figure(const Figure& figure, const std::filesystem::path& base) {
  if (base.empty() || base.filename().empty()) throw Error("export", "give a file name for the figure");
  std::vector<std::filesystem::path> written;
  for (const char* extension : {".pdf", ".png", ".csv"}) {
    std::filesystem::path out = base;
    out.replace_extension(extension);
    if (out.extension() == ".csv") {
      write_figure_data(figure, out);
    } else {
      render_figure(figure, out);
    }
    written.push_back(out);
  }
  return written;
}

std::vector<std::filesystem::path> export_alpha_figure(const SuperpositionInfo& info,
                                                       const std::filesystem::path& base) {
  if (base.empty() || base.filename().empty()) throw Error("export", "give a file name for the α figure");
  return export_figure(alpha_figure(info), base);
}

bool report_export(AppState& state, const std::function<std::vector<std::filesystem::path>()>& write) {
  try {
    const auto written = write();
    state.app_message = "Exported " + written[0].string() + ", .png and .csv";
    state.app_error = false;
    return true;
  } catch (const std::exception& e) {
    state.app_message = e.what();
    state.app_error = true;
    return false;
  }
}

}  // namespace superpose::studio

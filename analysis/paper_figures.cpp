// Builders of the paper's figures from eval reports, trajectories, t-SNE
// maps and neuron reports.
#include "analysis/paper_figures.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <torch/torch.h>

namespace superpose {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<std::string> domains_of(const EvalReport& report) {
  std::vector<std::string> domains;
  for (const auto& row : report.rows) {
    if (std::find(domains.begin(), domains.end(), row.domain) == domains.end()) domains.push_back(row.domain);
  }
  return domains;
}

std::vector<std::string> models_of(const EvalReport& report) {
  std::vector<std::string> models;
  for (const auto& row : report.rows) {
    if (std::find(models.begin(), models.end(), row.model) == models.end()) models.push_back(row.model);
  }
  return models;
}

std::vector<double> to_doubles(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// The per-layer series of one statistic, one line per model.
Panel layer_panel(const NeuronReport& report, const std::string& title, const std::string& y_label,
                  double NeuronLayerRow::*field, double scale) {
  Panel panel;
  panel.title = title;
  panel.x_axis.label = report.options.site == NeuronSite::kResidual ? "state" : "block";
  panel.y_axis.label = y_label;
  panel.grid = true;
  std::map<std::string, size_t> index;
  for (const auto& row : report.rows) {
    if (!index.count(row.model)) {
      index[row.model] = panel.series.size();
      Series s;
      s.name = row.model;
      s.kind = SeriesKind::kLineMarkers;
      s.marker = static_cast<MarkerShape>(panel.series.size() % 6);
      s.colour_index = static_cast<int>(panel.series.size()) + 1;
      panel.series.push_back(s);
    }
    auto& s = panel.series[index[row.model]];
    s.x.push_back(static_cast<double>(row.layer));
    s.y.push_back(row.*field * scale);
  }
  return panel;
}

}  // namespace

Figure perplexity_figure(const EvalReport& report) {
  Figure figure;
  figure.title = "Perplexity per domain";
  figure.width_pt = 360;
  figure.height_pt = 200;
  Panel panel;
  panel.y_axis.label = "perplexity";
  panel.y_axis.log_scale = true;
  panel.grid = true;
  const auto models = models_of(report);
  int colour = 1;
  for (const auto& domain : domains_of(report)) {
    Series s;
    s.name = domain;
    s.kind = SeriesKind::kBar;
    s.colour_index = colour++;
    s.categories = models;
    for (const auto& model : models) {
      double ppl = kNaN, lo = kNaN, hi = kNaN;
      for (const auto& row : report.rows) {
        if (row.model == model && row.domain == domain) std::tie(ppl, lo, hi) = std::tuple(row.ppl, row.ppl_lo, row.ppl_hi);
      }
      s.y.push_back(ppl);
      s.error_lo.push_back(lo);
      s.error_hi.push_back(hi);
    }
    panel.series.push_back(std::move(s));
  }
  figure.panels.push_back(std::move(panel));
  if (!report.causal) mark_non_causal(figure);
  return figure;
}

Figure l2_distance_figure(const EvalReport& report, const std::string& model) {
  Figure figure;
  figure.title = "Mean L2 distance of hidden states per layer";
  figure.width_pt = 360;
  figure.height_pt = 170;
  for (const auto& domain : domains_of(report)) {
    Panel panel;
    panel.title = domain;
    panel.x_axis.label = "hidden state";
    panel.y_axis.label = "mean L2 distance";
    panel.grid = true;
    Series to_base, to_fine, base_fine;
    to_base.name = model + " – base";
    to_fine.name = model + " – fine";
    base_fine.name = "base – fine";
    to_base.colour_index = 1;
    to_fine.colour_index = 2;
    base_fine.colour = palette_colour(0);
    base_fine.line_style = LineStyle::kDashed;
    for (auto* s : {&to_base, &to_fine, &base_fine}) s->kind = SeriesKind::kLineMarkers;
    to_fine.marker = MarkerShape::kSquare;
    base_fine.marker = MarkerShape::kTriangle;
    for (const auto& row : report.layers) {
      if (row.model != model || row.domain != domain) continue;
      for (auto* s : {&to_base, &to_fine, &base_fine}) s->x.push_back(static_cast<double>(row.layer));
      to_base.y.push_back(row.l2_base);
      to_fine.y.push_back(row.l2_fine);
      base_fine.y.push_back(row.l2_base_fine);
    }
    panel.series = {to_base, to_fine, base_fine};
    figure.panels.push_back(std::move(panel));
  }
  if (!report.causal) mark_non_causal(figure);
  return figure;
}

Figure trajectory_figure(const TrajectoryMap& map) {
  Figure figure;
  figure.title = "Mean hidden-state trajectories across layers";
  figure.width_pt = 300;
  figure.height_pt = 240;
  Panel panel;
  const auto share = [&](int64_t k) {
    return map.pca.total_variance > 0 ? 100.0 * map.pca.explained_variance[k].item<double>() / map.pca.total_variance
                                      : kNaN;
  };
  char label[64];
  std::snprintf(label, sizeof label, "PC1 (%.0f%% of variance)", share(0));
  panel.x_axis.label = label;
  std::snprintf(label, sizeof label, "PC2 (%.0f%%)", share(1));
  panel.y_axis.label = label;
  panel.legend_position = LegendPosition::kOutsideRight;
  std::map<std::string, int> model_colour;
  for (const auto& line : map.lines) {
    if (!model_colour.count(line.model)) model_colour[line.model] = static_cast<int>(model_colour.size()) + 1;
    Series s;
    s.name = line.model + " · " + line.domain;
    s.kind = SeriesKind::kLineMarkers;
    s.colour_index = model_colour[line.model];
    s.line_style = line.label == 0 ? LineStyle::kSolid : LineStyle::kDashed;
    s.marker = line.label == 0 ? MarkerShape::kCircle : MarkerShape::kSquare;
    const auto points = line.points.to(torch::kFloat64);
    s.x = to_doubles(points.select(1, 0));
    s.y = to_doubles(points.select(1, 1));
    // The first and last layers, so the direction of travel reads at a glance.
    for (size_t j : {size_t{0}, s.x.size() - 1}) {
      panel.annotations.push_back({s.x[j], s.y[j], " " + std::to_string(map.layers[j]), Annotation::Align::kLeft,
                                   palette_colour(s.colour_index.value())});
    }
    panel.series.push_back(std::move(s));
  }
  figure.panels.push_back(std::move(panel));
  return figure;
}

Figure tsne_figure(const torch::Tensor& embedding, const std::vector<int>& categories,
                   const std::vector<std::string>& category_names, const std::string& title,
                   const std::vector<Rgb>& category_colours) {
  Figure figure;
  figure.title = title;
  figure.width_pt = 300;
  figure.height_pt = 240;
  Panel panel;
  panel.x_axis.label = "t-SNE 1";
  panel.y_axis.label = "t-SNE 2";
  panel.legend_position = LegendPosition::kOutsideRight;
  Series s;
  s.kind = SeriesKind::kScatter;
  const auto y = embedding.to(torch::kFloat64);
  s.x = to_doubles(y.select(1, 0));
  s.y = to_doubles(y.select(1, 1));
  s.point_categories = categories;
  s.category_names = category_names;
  s.category_colours = category_colours;
  s.marker_size = s.x.size() > 5000 ? 1.2 : 2.0;
  s.opacity = 0.6;
  panel.series.push_back(std::move(s));
  figure.panels.push_back(std::move(panel));
  return figure;
}

Figure neuron_figure(const NeuronReport& report) {
  Figure figure;
  const bool mlp = report.options.site == NeuronSite::kMlp;
  figure.title = std::string("Neurons per layer (") + (mlp ? "MLP activations" : "residual stream") + ")";
  figure.width_pt = 500;
  figure.height_pt = 170;
  char threshold[64];
  std::snprintf(threshold, sizeof threshold, "polysemantic (< %g), %%", report.options.threshold);
  figure.panels.push_back(layer_panel(report, "Polysemantic share", threshold, &NeuronLayerRow::polysemantic_share, 100));
  figure.panels.push_back(layer_panel(report, "Sparsity", "activations ~ 0, %", &NeuronLayerRow::sparsity, 100));
  figure.panels.push_back(layer_panel(report, "Mean activation", "mean |activation|", &NeuronLayerRow::mean_activation, 1));
  if (report.options.diversity) {
    figure.panels.push_back(layer_panel(report, "Diversity", "entropy, nats", &NeuronLayerRow::diversity, 1));
  }
  for (size_t p = 1; p < figure.panels.size(); ++p) figure.panels[p].legend = false;
  figure.panels[0].legend_position = LegendPosition::kBest;
  return figure;
}

Figure neuron_map_figure(const torch::Tensor& map, const std::vector<int64_t>& layers, const std::string& statistic,
                         const std::string& title, bool difference) {
  Figure figure;
  figure.title = title;
  figure.width_pt = 500;
  figure.height_pt = 40 + 14.0 * static_cast<double>(layers.size());
  Panel panel;
  panel.kind = PanelKind::kHeatMap;
  panel.x_axis.label = "neuron";
  panel.y_axis.label = "layer";
  panel.heat_map.rows = map.size(0);
  panel.heat_map.cols = map.size(1);
  panel.heat_map.values = to_doubles(map);
  panel.heat_map.colour_map = difference ? ColourMap::kDiverging : ColourMap::kViridis;
  panel.heat_map.colour_label = statistic;
  for (int64_t l : layers) panel.heat_map.row_labels.push_back(std::to_string(l));
  panel.heat_map.first_row_at_top = false;
  figure.panels.push_back(std::move(panel));
  return figure;
}

void mark_non_causal(Figure& figure) { figure.title += " (non-causal)"; }

}  // namespace superpose

// The paper's figure builders: the descriptions carry the analysis numbers
// they are built from, and render.
#include "analysis/paper_figures.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace superpose {
namespace {

EvalReport hand_report() {
  EvalReport r;
  r.rows = {{"base", "en", 50, 45, 56, 0.3, 0, 1, 0, 100, 4, true},
            {"base", "fr", 80, 70, 90, 0.2, 0, 1, 0, 100, 4, true},
            {"superposition", "en", 60, 55, 66, 0.3, 0.01, 0.99, 0.1, 100, 4, true},
            {"superposition", "fr", 40, 35, 46, 0.3, 0.01, 0.99, 0.1, 100, 4, true}};
  for (const char* domain : {"en", "fr"}) {
    for (int64_t i = 0; i <= 2; ++i) r.layers.push_back({"superposition", domain, i, 1.0 + i, 2.0 + i, 3.0 + i, true});
  }
  return r;
}

TEST(PaperFigures, PerplexityBarsHoldEveryModelDomainAndInterval) {
  const Figure f = perplexity_figure(hand_report());
  ASSERT_EQ(f.panels.size(), 1u);
  const auto& series = f.panels[0].series;
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].name, "en");
  EXPECT_EQ(series[0].categories, (std::vector<std::string>{"base", "superposition"}));
  EXPECT_EQ(series[1].y, (std::vector<double>{80, 40}));
  EXPECT_EQ(series[1].error_lo, (std::vector<double>{70, 35}));
  EXPECT_EQ(series[1].error_hi, (std::vector<double>{90, 46}));
  EXPECT_TRUE(f.panels[0].y_axis.log_scale);
  EXPECT_NE(render_figure_to_string(f, "svg").find("<svg"), std::string::npos);
}

TEST(PaperFigures, DistancesHaveOnePanelPerDomainAndNonCausalResultsSaySo) {
  EvalReport r = hand_report();
  r.causal = false;
  const Figure f = l2_distance_figure(r);
  ASSERT_EQ(f.panels.size(), 2u);
  EXPECT_EQ(f.panels[1].title, "fr");
  EXPECT_EQ(f.panels[1].series[1].y, (std::vector<double>{2, 3, 4}));
  EXPECT_EQ(f.panels[1].series[2].x, (std::vector<double>{0, 1, 2}));
  EXPECT_NE(f.title.find("(non-causal)"), std::string::npos);
  EXPECT_EQ(render_figure_to_string(f, "pdf").substr(0, 5), "%PDF-");
}

TEST(PaperFigures, TsneAndNeuronMapsCarryTheirData) {
  const auto y = torch::tensor({0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f}).reshape({3, 2});
  const Figure t = tsne_figure(y, {0, 1, 1}, {"base · en", "base · fr"}, "t-SNE");
  EXPECT_EQ(t.panels[0].series[0].x, (std::vector<double>{0, 2, 4}));
  EXPECT_EQ(t.panels[0].series[0].point_categories, (std::vector<int>{0, 1, 1}));
  const auto map = torch::tensor({1.0f, -2.0f, 3.0f, 0.5f}).reshape({2, 2});
  const Figure m = neuron_map_figure(map, {1, 2}, "Δ", "map", true);
  EXPECT_EQ(m.panels[0].heat_map.values, (std::vector<double>{1, -2, 3, 0.5}));
  EXPECT_EQ(m.panels[0].heat_map.row_labels, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(m.panels[0].heat_map.colour_map, ColourMap::kDiverging);
  EXPECT_EQ(render_figure_to_string(m, "png").substr(1, 3), "PNG");
}

TEST(PaperFigures, NeuronFigureHasOneLinePerModelInEachPanel) {
  NeuronReport r;
  r.options.threshold = 0.05;
  const double nan = std::nan("");
  r.rows = {{"base", 0, 4, 0.25, 0.1, 1.5, nan}, {"base", 1, 4, 0.5, 0.2, 2.5, nan},
            {"fine", 0, 4, 0.0, 0.0, 1.0, nan}, {"fine", 1, 4, 0.75, 0.3, 3.0, nan}};
  r.options.diversity = false;
  const Figure f = neuron_figure(r);
  ASSERT_EQ(f.panels.size(), 3u);  // no diversity panel without diversity
  ASSERT_EQ(f.panels[0].series.size(), 2u);
  EXPECT_EQ(f.panels[0].series[1].y, (std::vector<double>{0, 75}));  // percent
  EXPECT_EQ(f.panels[2].series[0].y, (std::vector<double>{1.5, 2.5}));
}

}  // namespace
}  // namespace superpose

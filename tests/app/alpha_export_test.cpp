// The α figure: per-layer means, a heat map for 2D α, the non-causal label,
// and the three files Export writes.
#include <fstream>

#include <gtest/gtest.h>

#include "app/studio/alpha_export.h"
#include "model/errors.h"
#include "tests/support/temp_dir.h"

namespace superpose::studio {
namespace {

SuperpositionInfo two_d_info() {
  SuperpositionInfo info;
  info.variant = "2d";
  info.causal = false;
  info.n_layer = 2;
  info.alpha_shape = {2, 3};
  info.alpha_learned = {0.0f, 0.5f, 1.0f, 0.25f, 0.25f, 0.25f};
  info.alpha_in_force = {1.0f, 1.0f, 1.0f, 0.0f, 0.0f, 0.0f};
  return info;
}

TEST(AlphaExport, MeansOverDimensionsAndAHeatMapFor2D) {
  const SuperpositionInfo info = two_d_info();
  EXPECT_EQ(alpha_per_layer(info.alpha_learned, info.alpha_shape), (std::vector<float>{0.5f, 0.25f}));
  EXPECT_EQ(alpha_per_layer({0.1f, 0.2f}, {2}), (std::vector<float>{0.1f, 0.2f}));
  const Figure figure = alpha_figure(info);
  ASSERT_EQ(figure.panels.size(), 2u);
  EXPECT_NE(figure.title.find("non-causal"), std::string::npos) << figure.title;
  ASSERT_EQ(figure.panels[0].series.size(), 2u);
  EXPECT_EQ(figure.panels[0].series[1].y, (std::vector<double>{1.0, 0.0}));
  EXPECT_EQ(figure.panels[1].kind, PanelKind::kHeatMap);
  EXPECT_EQ(figure.panels[1].heat_map.values.size(), 6u);
}

TEST(AlphaExport, WritesPdfPngAndCsvAndNamesBadPaths) {
  superpose::testing::TempDir temp;
  const auto written = export_alpha_figure(two_d_info(), temp / "alpha.anything");
  ASSERT_EQ(written.size(), 3u);
  EXPECT_EQ(written[0], temp / "alpha.pdf");
  for (const auto& path : written) EXPECT_GT(std::filesystem::file_size(path), 100u) << path;
  try {
    export_alpha_figure(two_d_info(), temp / "no" / "such" / "dir" / "alpha");
    FAIL() << "no error for a missing directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("alpha.pdf"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace superpose::studio

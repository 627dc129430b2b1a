// A t-SNE map's points: the stacked states in the map's point order, and the
// colourings by model × domain, model, domain and state.
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "app/studio/tsne_colouring.h"
#include "app/studio/tsne_map.h"
#include "model/errors.h"

namespace superpose::studio {
namespace {

// Two models, states 0..3 of width 5, six rows in two domains.
Capture synthetic_capture() {
  Capture capture;
  capture.models = {"base", "fine"};
  capture.domains = {"en", "fr"};
  capture.residual_layers = {0, 1, 2, 3};
  capture.labels = torch::tensor({0, 1, 1, 0, 1, 0}, torch::kInt64);
  torch::manual_seed(3);
  for (const auto& model : capture.models) {
    for (int64_t layer : capture.residual_layers) capture.tensors[Capture::residual_name(model, layer)] = torch::randn({6, 5});
  }
  return capture;
}

TEST(TsnePoints, StackModelsThenStatesThenRows) {
  const Capture capture = synthetic_capture();
  TsneMap map;
  const std::vector<int64_t> layers = {1, 3};
  const torch::Tensor points = tsne_points(capture, layers, map);
  ASSERT_EQ(points.sizes(), (std::vector<int64_t>{2 * 2 * 6, 5}));
  map.embedding.assign(static_cast<size_t>(2 * points.size(0)), 0.0f);
  EXPECT_EQ(map.rows, 6);
  EXPECT_EQ(map.models, capture.models);
  EXPECT_EQ(map.layers, layers);
  EXPECT_EQ(map.domains, capture.domains);
  EXPECT_EQ(map.row_domains, (std::vector<int>{0, 1, 1, 0, 1, 0}));
  for (int64_t p = 0; p < map.points(); ++p) {
    const std::string& model = map.models[static_cast<size_t>(map.model_of(p))];
    const int64_t layer = map.layers[static_cast<size_t>(map.layer_of(p))];
    const torch::Tensor expected = capture.tensor(Capture::residual_name(model, layer))[p % map.rows];
    EXPECT_TRUE(torch::equal(points[p], expected)) << "point " << p << " = " << model << " state " << layer;
    EXPECT_EQ(map.domain_of(p), capture.labels[p % map.rows].item<int64_t>());
  }
}

TEST(TsnePoints, AStateTheCaptureLacksIsAnErrorNamingIt) {
  const Capture capture = synthetic_capture();
  TsneMap map;
  try {
    tsne_points(capture, {1, 7}, map);
    FAIL() << "no error for state 7";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("base.residual.7"), std::string::npos) << e.what();
  }
}

TEST(TsneColouring, EachChoiceCategorisesEveryPointByItsOrigin) {
  const Capture capture = synthetic_capture();
  TsneMap map;
  tsne_points(capture, {0, 2, 3}, map);
  map.embedding.assign(static_cast<size_t>(2 * 2 * 3 * map.rows), 0.0f);

  const TsneColouring both = tsne_colouring(map, TsneColour::kModelDomain);
  EXPECT_EQ(both.names, (std::vector<std::string>{"base / en", "base / fr", "fine / en", "fine / fr"}));
  const TsneColouring model = tsne_colouring(map, TsneColour::kModel);
  EXPECT_EQ(model.names, (std::vector<std::string>{"base", "fine"}));
  const TsneColouring domain = tsne_colouring(map, TsneColour::kDomain);
  EXPECT_EQ(domain.names, (std::vector<std::string>{"en", "fr"}));
  const TsneColouring state = tsne_colouring(map, TsneColour::kLayer);
  EXPECT_EQ(state.names, (std::vector<std::string>{"state 0", "state 2", "state 3"}));

  // The expected categories from the point order alone: models, then states, then rows.
  const std::vector<int> row_domain = {0, 1, 1, 0, 1, 0};
  int64_t p = 0;
  for (int m = 0; m < 2; ++m) {
    for (int l = 0; l < 3; ++l) {
      for (int r = 0; r < 6; ++r, ++p) {
        const auto i = static_cast<size_t>(p);
        EXPECT_EQ(both.categories[i], 2 * m + row_domain[r]) << p;
        EXPECT_EQ(model.categories[i], m) << p;
        EXPECT_EQ(domain.categories[i], row_domain[r]) << p;
        EXPECT_EQ(state.categories[i], l) << p;
      }
    }
  }
  EXPECT_EQ(p, map.points());
  EXPECT_EQ(tsne_point_label(map, 3 * 6 + 2 * 6 + 1), "fine / fr / state 3");
  EXPECT_EQ(tsne_point_label(map, 0), "base / en / state 0");

  // One colour per name, all distinct; the palette's order for models (the
  // figures' series colours), a dark-to-light ramp for the ordered states.
  for (const TsneColouring* c : {&both, &model, &domain, &state}) {
    ASSERT_EQ(c->colours.size(), c->names.size());
    std::set<std::vector<double>> distinct;
    for (const Rgb& rgb : c->colours) distinct.insert({rgb.r, rgb.g, rgb.b});
    EXPECT_EQ(distinct.size(), c->colours.size());
  }
  EXPECT_EQ(model.colours[0], palette_colour(1));
  EXPECT_EQ(model.colours[1], palette_colour(2));
  auto luminance = [](const Rgb& c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; };
  EXPECT_LT(luminance(state.colours[0]), luminance(state.colours[1]));
  EXPECT_LT(luminance(state.colours[1]), luminance(state.colours[2]));
  EXPECT_EQ(state.colours[0], colour_map(ColourMap::kViridis, 0.0));
}

TEST(TsneColouring, AMapWithoutPointsHasNoCategories) {
  TsneMap map;  // still capturing: no rows, no points
  map.models = {"base"};
  map.domains = {"en"};
  map.layers = {4};
  const TsneColouring c = tsne_colouring(map, TsneColour::kLayer);
  EXPECT_TRUE(c.categories.empty());
  EXPECT_EQ(c.names, std::vector<std::string>{"state 4"});
}

}  // namespace
}  // namespace superpose::studio

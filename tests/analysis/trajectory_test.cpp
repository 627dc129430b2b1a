// Trajectories and the per-layer neuron report on hand-made captures.
#include "analysis/neuron_report.h"
#include "analysis/trajectory.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model/errors.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

using testing::all_close;

// A capture of `models` with states 0..L (L = 3) of width C for N rows: two
// documents per label, 3 tokens each, positions "all".
Capture hand_capture(const std::vector<std::string>& models, int64_t C, uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  Capture c;
  c.models = models;
  c.n_layer = 3;
  c.residual_layers = {0, 1, 2, 3};
  c.domains = {"en", "fr"};
  c.sources = {"a", "b", "c", "d"};
  c.labels = torch::tensor({0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}, torch::kInt64);
  c.documents = torch::tensor({0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3}, torch::kInt64);
  c.positions = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}, torch::kInt64);
  c.token_ids = torch::tensor({5, 6, 7, 5, 6, 8, 9, 10, 11, 9, 12, 11}, torch::kInt64);
  c.document_tokens = c.token_ids.clone();
  c.document_starts = torch::tensor({0, 3, 6, 9, 12}, torch::kInt64);
  for (const auto& m : models) {
    for (int64_t i = 0; i <= 3; ++i) c.tensors[Capture::residual_name(m, i)] = torch::randn({12, C});
  }
  return c;
}

TEST(Trajectories, LinesAreTheProjectedMeansOfEachModelAndDomain) {
  const Capture c = hand_capture({"base", "fine", "superposition"}, 6, 1);
  const TrajectoryMap map = mean_trajectories(c, 2);
  EXPECT_EQ(map.layers, (std::vector<int64_t>{0, 1, 2}));  // state L left out by default
  ASSERT_EQ(map.lines.size(), 6u);
  EXPECT_EQ(map.lines[3].model, "fine");
  EXPECT_EQ(map.lines[3].domain, "fr");
  EXPECT_EQ(map.lines[3].rows, 6);
  for (const auto& line : map.lines) {
    const auto rows = c.labels.eq(line.label).nonzero().squeeze(1);
    for (size_t s = 0; s < map.layers.size(); ++s) {
      const auto mean = c.tensor(Capture::residual_name(line.model, map.layers[s])).index_select(0, rows).mean(0);
      // float32 projection of a float64 mean: 1e-5.
      EXPECT_TRUE(all_close(line.points[static_cast<int64_t>(s)], map.pca.project(mean.unsqueeze(0))[0], 1e-5));
    }
  }
}

TEST(Trajectories, MeansInAPlaneKeepTheirDistances) {
  // Every state lies in a 2-D plane of a 6-D space, so the mean states do too
  // and a 2-component PCA keeps all their pairwise distances.
  Capture c = hand_capture({"base", "fine"}, 6, 2);
  const auto basis = std::get<0>(torch::linalg_qr(torch::randn({6, 2}))).t();  // (2,6) orthonormal rows
  for (auto& [name, value] : c.tensors) value = torch::randn({12, 2}).matmul(basis) + 3.0;
  const TrajectoryMap map = mean_trajectories(c, 2, {}, {0, 1, 2, 3});
  std::vector<torch::Tensor> means, points;
  for (const auto& line : map.lines) {
    const auto rows = c.labels.eq(line.label).nonzero().squeeze(1);
    for (int64_t i : map.layers) means.push_back(c.tensor(Capture::residual_name(line.model, i)).index_select(0, rows).mean(0));
    points.push_back(line.points);
  }
  const auto m = torch::stack(means), p = torch::cat(points);
  EXPECT_TRUE(all_close(torch::cdist(p, p), torch::cdist(m, m), 1e-4));
  // Token trajectories use the same plane: the means themselves land on the lines' points.
  const auto projected = project_trajectories(map, m.reshape({4, 4, 6}));
  EXPECT_TRUE(all_close(projected.reshape({16, 2}), p, 1e-5));
}

TEST(Trajectories, BadRequestsNameTheProblem) {
  const Capture c = hand_capture({"base"}, 6, 3);
  SUPERPOSE_EXPECT_THROW_WITH(mean_trajectories(c, 4), Error, "dims", "2 or 3");
  SUPERPOSE_EXPECT_THROW_WITH(mean_trajectories(c, 2, {"fine"}), Error, "'fine' is not in the capture");
  SUPERPOSE_EXPECT_THROW_WITH(mean_trajectories(c, 2, {}, {7}), Error, "base.residual.7", "not in the capture");
  SUPERPOSE_EXPECT_THROW_WITH(mean_trajectories(c, 3, {}, {0}), Error, "at least 4 mean states, got 2");
}

TEST(NeuronReport, RowsAndMapsAgreeWithTheLayerStatistics) {
  const Capture c = hand_capture({"base", "superposition"}, 4, 4);
  NeuronReportOptions o;
  o.threshold = 0.5;
  o.diversity_options.top = 6;
  o.diversity_options.clusters = 2;
  o.diversity_options.context = 1;
  const NeuronReport r = neuron_report(c, o);
  EXPECT_EQ(r.layers, (std::vector<int64_t>{0, 1, 2}));
  ASSERT_EQ(r.rows.size(), 6u);
  EXPECT_EQ(r.rows[0].model, "base");
  EXPECT_EQ(r.rows[3].model, "superposition");
  const auto contexts = context_windows(c.token_ids, c.documents, 1);
  for (const auto& row : r.rows) {
    const auto& acts = c.tensor(Capture::residual_name(row.model, row.layer));
    const NeuronStats stats = neuron_stats(acts, c.labels);
    EXPECT_DOUBLE_EQ(row.polysemantic_share, polysemantic_share(stats, 0.5));
    EXPECT_DOUBLE_EQ(row.sparsity, sparsity_share(stats));
    EXPECT_NEAR(row.mean_activation, acts.abs().to(torch::kFloat64).mean().item<double>(), 1e-6);
    const auto diversity = neuron_diversity(acts, contexts, o.diversity_options);
    EXPECT_NEAR(row.diversity, diversity.to(torch::kFloat64).mean().item<double>(), 1e-6);
    EXPECT_TRUE(all_close(r.normalized_difference.at(row.model)[row.layer], stats.normalized_difference, 0));
    EXPECT_TRUE(all_close(r.diversity.at(row.model)[row.layer], diversity, 0));
  }
  const std::string csv = neuron_report_csv(r);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "model,layer,neurons,polysemantic_share,sparsity,mean_activation,diversity");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  EXPECT_NE(neuron_report_markdown(r).find("| superposition | 2 | 4 |"), std::string::npos);
}

TEST(NeuronReport, RefusesWhatTheCaptureCannotGive) {
  Capture c = hand_capture({"base"}, 4, 5);
  NeuronReportOptions o;
  o.site = NeuronSite::kMlp;
  SUPERPOSE_EXPECT_THROW_WITH(neuron_report(c, o), Error, "--site", "no MLP activations");
  c.positions_mode = parse_positions("mean");
  SUPERPOSE_EXPECT_THROW_WITH(neuron_report(c, NeuronReportOptions{}), Error, "diversity", "'mean'");
  NeuronReportOptions without;
  without.diversity = false;
  const auto r = neuron_report(c, without);
  EXPECT_TRUE(std::isnan(r.rows[0].diversity));
  EXPECT_TRUE(r.diversity.empty());
}

}  // namespace
}  // namespace superpose

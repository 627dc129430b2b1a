// Nearest neighbours and state recording against direct computation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "analysis/knn.h"
#include "analysis/state_recorder.h"
#include "model/errors.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

TEST(Knn, MatchesBruteForceDistances) {
  torch::manual_seed(3);
  auto points = torch::randn({500, 24});
  auto queries = torch::randn({40, 24});
  const auto result = knn_search(points, queries, 7);
  ASSERT_EQ(result.indices.sizes(), (std::vector<int64_t>{40, 7}));
  // Reference: all squared distances in double precision, sorted.
  auto d = torch::cdist(queries.to(torch::kFloat64), points.to(torch::kFloat64)).pow(2);  // (40,500)
  auto expected = std::get<0>(d.topk(7, 1, /*largest=*/false, /*sorted=*/true));
  // Distances of the returned neighbours equal the 7 smallest (ties may reorder indices).
  EXPECT_TRUE(testing::all_close(result.distances, expected, 1e-3));
  auto picked = d.gather(1, result.indices);
  EXPECT_TRUE(testing::all_close(picked, expected, 1e-3));
  // A point is its own nearest neighbour at distance 0.
  const auto self = knn_search(points, points.narrow(0, 0, 10), 1);
  EXPECT_TRUE(torch::equal(self.indices.flatten(), torch::arange(10)));
}

TEST(Knn, RefusesBadArguments) {
  auto points = torch::randn({5, 3});
  SUPERPOSE_EXPECT_THROW_WITH(knn_search(points, torch::randn({2, 4}), 1), Error, "width 3", "queries 4");
  SUPERPOSE_EXPECT_THROW_WITH(knn_search(points, torch::randn({2, 3}), 6), Error, "k = 6", "[1, 5]");
  SUPERPOSE_EXPECT_THROW_WITH(knn_search(points, torch::randn({2, 3}), 0), Error, "k = 0");
}

TEST(StateRecorder, KeepsDetachedCpuCopiesOfWantedSites) {
  StateRecorder recorder({Site::kResidual});
  EXPECT_TRUE(recorder.wants(Site::kResidual, 3));
  EXPECT_FALSE(recorder.wants(Site::kMlpActivation, 0));
  auto state = torch::ones({1, 2, 3}, torch::kFloat64);
  recorder.observe(Site::kResidual, 3, state);
  state.fill_(5.0);  // the recording is a copy
  EXPECT_EQ(recorder.at(Site::kResidual, 3).scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(recorder.at(Site::kResidual, 3), torch::ones({1, 2, 3})));
}

}  // namespace
}  // namespace superpose

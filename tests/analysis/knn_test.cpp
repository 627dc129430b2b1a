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

TEST(Knn, ApproximateSearchFindsNearlyEveryTrueNeighbour) {
  if (!knn_uses_faiss()) GTEST_SKIP() << "this build has no FAISS: every search is exact";
  torch::manual_seed(4);
  const auto centres = torch::randn({8, 16}) * 4;
  const auto points = centres.index_select(0, torch::arange(8).repeat_interleave(500)) + torch::randn({4000, 16});
  KnnOptions approximate;
  approximate.approximate_above = 0;  // HNSW even for this small set
  const int64_t k = 10;
  const auto fast = knn_search(points, points, k, approximate);
  const auto exact = knn_search(points, points, k);
  // Recall@10: the share of true neighbours found. HNSW with efSearch 128 on
  // 4,000 points finds nearly all of them; 0.95 leaves room for its
  // graph-building order, not for a broken index (which scores near 0).
  const auto found = fast.indices.unsqueeze(2).eq(exact.indices.unsqueeze(1)).any(1);  // (N,k)
  EXPECT_GT(found.to(torch::kFloat64).mean().item<double>(), 0.95);
  // Nearest first, and the distances are those of the returned points.
  EXPECT_TRUE(torch::all(fast.distances.narrow(1, 1, k - 1) >= fast.distances.narrow(1, 0, k - 1)).item<bool>());
  const auto direct = (points.unsqueeze(1) - points.index_select(0, fast.indices.flatten()).view({4000, k, 16})).pow(2).sum(2);
  EXPECT_TRUE(testing::all_close(fast.distances, direct, 1e-3));
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

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

// Clustered points, where a broken approximate index loses most neighbours.
torch::Tensor clustered_points() {
  torch::manual_seed(4);
  const auto centres = torch::randn({8, 16}) * 4;
  return centres.index_select(0, torch::arange(8).repeat_interleave(500)) + torch::randn({4000, 16});
}

// Recall@k of an approximate search against the exact one (the share of true
// neighbours found), and the invariants of any result: nearest first, and the
// distances are those of the returned points.
double recall_checked(const KnnResult& fast, const torch::Tensor& points, int64_t k) {
  const auto exact = knn_search(points, points, k);
  const auto found = fast.indices.unsqueeze(2).eq(exact.indices.unsqueeze(1)).any(1);  // (N,k)
  EXPECT_TRUE(torch::all(fast.distances.narrow(1, 1, k - 1) >= fast.distances.narrow(1, 0, k - 1)).item<bool>());
  const int64_t n = points.size(0), c = points.size(1);
  const auto direct = (points.unsqueeze(1) - points.index_select(0, fast.indices.flatten()).view({n, k, c})).pow(2).sum(2);
  EXPECT_TRUE(testing::all_close(fast.distances, direct, 1e-3));
  return found.to(torch::kFloat64).mean().item<double>();
}

TEST(Knn, ApproximateSearchFindsNearlyEveryTrueNeighbour) {
  if (!knn_uses_faiss()) GTEST_SKIP() << "this build has no FAISS: every search is exact";
  const auto points = clustered_points();
  KnnOptions approximate;
  approximate.approximate_above = 0;  // HNSW even for this small set
  // HNSW with efSearch 128 on 4,000 points finds nearly all of them; 0.95
  // leaves room for its graph-building order, not for a broken index (which
  // scores near 0).
  EXPECT_GT(recall_checked(knn_search(points, points, 10, approximate), points, 10), 0.95);
}

TEST(Knn, InvertedFileFindsNearlyEveryTrueNeighbourAndRepeats) {
  const auto points = clustered_points();
  const auto fast = knn_ivf(points, points, 10);
  // 126 cells, 24 probed per query cell: the true neighbours lie almost all
  // in the probed cells; 0.95 leaves room for points at cell borders.
  EXPECT_GT(recall_checked(fast, points, 10), 0.95);
  // Every point finds itself (distance 0) first.
  EXPECT_TRUE(torch::equal(fast.indices.select(1, 0), torch::arange(4000)));
  // Deterministic for a seed.
  EXPECT_TRUE(torch::equal(knn_ivf(points, points, 10).indices, fast.indices));
  // Few probes still return k neighbours (cells are added until k points).
  IvfOptions narrow;
  narrow.lists = 400;
  narrow.probes = 1;
  const auto sparse = knn_ivf(points, points, 30, narrow);
  EXPECT_EQ(sparse.indices.sizes(), (std::vector<int64_t>{4000, 30}));
  EXPECT_GT(recall_checked(sparse, points, 30), 0.3);
  SUPERPOSE_EXPECT_THROW_WITH(knn_ivf(points, torch::randn({2, 4}), 1), Error, "width 16", "queries 4");
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

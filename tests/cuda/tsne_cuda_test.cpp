// t-SNE on CUDA: the same affinities and exact gradient as the CPU, the FFT
// gradient close to the exact one, and a map that separates clusters.
// Skips (with the reason printed) where there is no CUDA device.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "analysis/knn.h"
#include "analysis/tsne.h"

namespace superpose {
namespace {

TEST(TsneCuda, MatchesTheCpuAndSeparatesClusters) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  torch::manual_seed(21);
  const auto centres = torch::randn({4, 32}) * 5;
  const auto labels = torch::arange(4).repeat_interleave(250);
  const auto x = centres.index_select(0, labels) + torch::randn({1000, 32});
  TsneOptions options;
  options.iterations = 500;
  options.gradient = TsneGradient::kExact;
  Tsne cpu(x, options);
  options.device = torch::Device(torch::kCUDA, 0);
  Tsne gpu(x, options);
  // Same neighbours and precisions (float32 distances from two searches).
  EXPECT_LT((cpu.betas() - gpu.betas().cpu()).abs().max().item<double>(), 1e-3 * cpu.betas().abs().max().item<double>());
  // The exact gradient at one layout, on either device.
  const auto y = torch::randn({1000, 2}) * 10;
  const auto g_cpu = cpu.gradient(y, 1.0, TsneGradient::kExact);
  const auto g_gpu = gpu.gradient(y.cuda(), 1.0, TsneGradient::kExact).cpu();
  EXPECT_LT(((g_gpu - g_cpu).norm() / g_cpu.norm()).item<double>(), 1e-3);
  // The FFT repulsion on the GPU against the exact one (as on the CPU: a few percent).
  const auto rep_exact = gpu.gradient(y.cuda(), 0.0, TsneGradient::kExact);
  const auto rep_fft = gpu.gradient(y.cuda(), 0.0, TsneGradient::kFft);
  EXPECT_LT(((rep_fft - rep_exact).norm() / rep_exact.norm()).item<double>(), 0.03);
  // A whole run with the FFT gradient on the GPU.
  options.gradient = TsneGradient::kFft;
  Tsne fft(x, options);
  fft.step(500);
  const auto e = fft.embedding();
  auto d = torch::cdist(e, e);
  d.fill_diagonal_(INFINITY);
  EXPECT_GT(labels.index_select(0, d.argmin(1)).eq(labels).to(torch::kFloat64).mean().item<double>(), 0.97);
  EXPECT_GT(trustworthiness(x, e, 10), 0.9);
  EXPECT_GT(fft.kl_divergence(), 0.0);
}

// The fused CUDA kernels against the LibTorch operations they replace: one
// step from the same state, then whole runs of the same quality.
TEST(TsneCuda, FusedKernelsMatchTheLibTorchStep) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  if (!tsne_has_cuda_kernels()) GTEST_SKIP() << "this build has no CUDA kernels (no nvcc when it was configured)";
  torch::manual_seed(22);
  const auto centres = torch::randn({5, 24}) * 5;
  const auto labels = torch::arange(5).repeat_interleave(600);
  const auto x = centres.index_select(0, labels) + torch::randn({3000, 24});
  for (const int64_t dims : {2, 3}) {
    TsneOptions options;
    options.dims = dims;
    options.iterations = 600;
    options.device = torch::Device(torch::kCUDA, 0);
    Tsne fused(x, options);
    options.fused_cuda = false;
    Tsne reference(x, options);
    ASSERT_TRUE(fused.fused());
    ASSERT_FALSE(reference.fused());
    EXPECT_EQ(fused.method(), TsneGradient::kExact);  // 3,000 points: exact on CUDA
    // The repulsion kernel's gradient at a spread-out layout.
    const auto y = (torch::randn({3000, dims}) * 10).cuda();
    const auto g_fused = fused.gradient(y, 1.0, TsneGradient::kExact);
    const auto g_reference = reference.gradient(y, 1.0, TsneGradient::kExact);
    EXPECT_LT(((g_fused - g_reference).norm() / g_reference.norm()).item<double>(), 1e-4) << dims << "D";
    // One step from the same initial layout (float32 sums in another order: 1e-4 relative).
    fused.step(1);
    reference.step(1);
    const auto moved_fused = fused.embedding(), moved_reference = reference.embedding();
    const double scale = moved_reference.abs().max().item<double>();
    EXPECT_LT((moved_fused - moved_reference).abs().max().item<double>(), 1e-4 * scale) << dims << "D";
    // Whole runs: the same KL within 2% (sign flips of tiny gains make the
    // layouts drift apart, not their quality) and the clusters kept.
    fused.step(600);
    reference.step(600);
    EXPECT_NEAR(fused.kl_divergence(), reference.kl_divergence(), 0.02 * reference.kl_divergence()) << dims << "D";
    EXPECT_GT(trustworthiness(x, fused.embedding(), 10), 0.9) << dims << "D";
  }
}

TEST(KnnCuda, InvertedFileOnTheGpuFindsNearlyEveryNeighbour) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  torch::manual_seed(23);
  const auto centres = torch::randn({16, 32}) * 4;
  const auto points = (centres.index_select(0, torch::arange(16).repeat_interleave(1000)) + torch::randn({16000, 32})).cuda();
  const int64_t k = 20;
  const auto fast = knn_ivf(points, points, k);
  const auto exact = knn_search(points, points, k);
  const auto found = fast.indices.unsqueeze(2).eq(exact.indices.unsqueeze(1)).any(1);
  // 252 cells, 24 probed per query cell; 0.95 leaves room for cell borders.
  EXPECT_GT(found.to(torch::kFloat64).mean().item<double>(), 0.95);
  EXPECT_TRUE(fast.indices.is_cuda());
  // Through knn_search: CUDA searches above approximate_above use it.
  KnnOptions approximate;
  approximate.approximate_above = 1000;
  EXPECT_TRUE(torch::equal(knn_search(points, points, k, approximate).indices, fast.indices));
}

}  // namespace
}  // namespace superpose

// t-SNE on CUDA: the same affinities and exact gradient as the CPU, the FFT
// gradient close to the exact one, and a map that separates clusters.
// Skips (with the reason printed) where there is no CUDA device.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

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

}  // namespace
}  // namespace superpose

// PCA against an SVD computed directly; t-SNE's affinities, gradients and
// embeddings against direct computations and quality thresholds.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "analysis/pca.h"
#include "analysis/tsne.h"
#include "model/errors.h"

namespace superpose {
namespace {

// `clusters` Gaussian blobs of `per` points in `dim` dimensions, centres
// `spread` apart on average; returns (points (N,dim), labels (N)).
std::pair<torch::Tensor, torch::Tensor> blobs(int64_t clusters, int64_t per, int64_t dim, double spread,
                                              uint64_t seed) {
  torch::manual_seed(seed);
  const auto centres = torch::randn({clusters, dim}, torch::kFloat64) * spread;
  const auto labels = torch::arange(clusters).repeat_interleave(per);
  const auto points = centres.index_select(0, labels) + torch::randn({clusters * per, dim}, torch::kFloat64);
  return {points.to(torch::kFloat32), labels};
}

TEST(Pca, MatchesTheSvdOfTheCentredData) {
  torch::manual_seed(1);
  // Anisotropic data so that the components are well separated.
  const auto x = torch::randn({200, 12}, torch::kFloat64) * torch::linspace(5, 0.5, 12, torch::kFloat64);
  const auto pca = fit_pca(x, 4);
  const auto xc = x - x.mean(0);
  const auto [u, s, v] = torch::svd(xc);
  const auto variance = s.pow(2) / 199.0;
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(pca.explained_variance[i].item<double>(), variance[i].item<double>(), 1e-9 * variance[0].item<double>());
    // Same direction up to sign: |cos| = 1 within float32 rounding.
    const double cosine = torch::dot(pca.components[i].to(torch::kFloat64), v.select(1, i)).item<double>();
    EXPECT_NEAR(std::abs(cosine), 1.0, 1e-5) << "component " << i;
  }
  EXPECT_NEAR(pca.total_variance, variance.sum().item<double>(), 1e-9 * pca.total_variance);
  // Projections are the SVD's scores up to the same signs.
  const auto scores = pca.project(x.to(torch::kFloat32)).to(torch::kFloat64);
  const auto expected = (u.narrow(1, 0, 4) * s.narrow(0, 0, 4));
  const auto signs = (scores * expected).sum(0).sign();
  EXPECT_LT((scores - expected * signs).abs().max().item<double>(), 1e-4 * expected.abs().max().item<double>());
}

TEST(Pca, WideDataGoThroughTheGramMatrix) {
  torch::manual_seed(2);
  const auto x = torch::randn({10, 40}, torch::kFloat64);
  const auto pca = fit_pca(x, 3);
  const auto [u, s, v] = torch::svd(x - x.mean(0));
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(pca.explained_variance[i].item<double>(), s[i].item<double>() * s[i].item<double>() / 9.0, 1e-9);
    EXPECT_NEAR(std::abs(torch::dot(pca.components[i].to(torch::kFloat64), v.select(1, i)).item<double>()), 1.0, 1e-5);
  }
}

TEST(Pca, BadInputsThrow) {
  EXPECT_THROW(fit_pca(torch::zeros({1, 3}), 1), Error);
  EXPECT_THROW(fit_pca(torch::zeros({5, 3}), 4), Error);
  auto x = torch::randn({5, 3});
  x[2][1] = NAN;
  try {
    fit_pca(x, 2);
    FAIL() << "no error for NaN";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
}

TEST(Tsne, EveryPointReachesThePerplexity) {
  const auto [x, labels] = blobs(4, 40, 10, 6.0, 3);
  TsneOptions options;
  options.perplexity = 15;
  Tsne tsne(x, options);
  // Recompute each row's conditional distribution from the β found and the
  // exact distances to its neighbours, then its perplexity 2^H.
  const auto d = torch::cdist(x.to(torch::kFloat64), x.to(torch::kFloat64)).pow(2);
  const int64_t k = 46;  // 3·15 + 1
  const auto sorted = std::get<0>(d.sort(1)).narrow(1, 1, k);  // self excluded
  const auto p_raw = torch::exp(-(sorted - sorted.select(1, 0).unsqueeze(1)) * tsne.betas().unsqueeze(1));
  const auto p = p_raw / p_raw.sum(1, true);
  const auto perplexity = torch::exp(-(p * p.clamp_min(1e-300).log()).sum(1));
  // The search works on the kNN's float32 distances; recomputed here in
  // float64, each row's perplexity is within 1e-4 relative.
  EXPECT_LT((perplexity - 15.0).abs().max().item<double>(), 15.0 * 1e-4);
  // On the distances it is given, the search itself reaches 1e-6.
  const auto [q, betas] = conditional_affinities(sorted, 15.0);
  const auto reached = torch::exp(-(q * q.clamp_min(1e-300).log()).sum(1));
  EXPECT_LT((reached - 15.0).abs().max().item<double>(), 15.0 * 1e-6);
  EXPECT_NEAR(q.sum(1).min().item<double>(), 1.0, 1e-12);
  // The joint P is symmetric and sums to 1.
  const auto dense = tsne.affinities().to_dense().to(torch::kFloat64);
  EXPECT_NEAR(dense.sum().item<double>(), 1.0, 1e-6);
  EXPECT_LT((dense - dense.t()).abs().max().item<double>(), 1e-9);
}

TEST(Tsne, ExactGradientIsTheDerivativeOfTheKl) {
  // KL(P‖Q) by finite differences (float64 central differences of the
  // direct formula) against the analytic exact gradient.
  const auto [x, labels] = blobs(3, 10, 5, 4.0, 4);
  TsneOptions options;
  options.perplexity = 5;
  options.gradient = TsneGradient::kExact;
  Tsne tsne(x, options);
  torch::manual_seed(5);
  const auto y = torch::randn({30, 2}, torch::kFloat64) * 2;
  const auto p = tsne.affinities().to_dense().to(torch::kFloat64);
  auto kl = [&](const torch::Tensor& yy) {
    auto w = 1 / (1 + torch::cdist(yy, yy).pow(2));
    w.fill_diagonal_(0);
    const auto q = w / w.sum();
    const auto mask = p > 0;
    return (p.masked_select(mask) * (p.masked_select(mask) / q.masked_select(mask)).log()).sum().item<double>();
  };
  const auto grad = tsne.gradient(y.to(torch::kFloat32), 1.0, TsneGradient::kExact).to(torch::kFloat64);
  double worst = 0;
  for (int64_t i = 0; i < 30; ++i) {
    for (int64_t c = 0; c < 2; ++c) {
      auto plus = y.clone(), minus = y.clone();
      plus[i][c] += 1e-5;
      minus[i][c] -= 1e-5;
      const double numeric = (kl(plus) - kl(minus)) / 2e-5;
      worst = std::max(worst, std::abs(numeric - grad[i][c].item<double>()));
    }
  }
  // float32 gradient of terms O(1e-2): 1e-5 absolute.
  EXPECT_LT(worst, 1e-5) << "largest |numeric − analytic|";
}

TEST(Tsne, FftGradientIsCloseToTheExactOne) {
  // A layout of realistic extent (a finished t-SNE of 2,000 points spans
  // tens of units): the particle-mesh repulsion against the exact sums.
  const auto [x, labels] = blobs(4, 150, 20, 5.0, 6);
  for (const int64_t dims : {2, 3}) {
    SCOPED_TRACE(dims);
    TsneOptions options;
    options.dims = dims;
    options.iterations = 300;
    options.gradient = TsneGradient::kExact;
    Tsne tsne(x, options);
    tsne.step(300);
    const auto y = tsne.embedding();
    // Exaggeration 0 leaves the repulsive part, the one the grid
    // approximates (the attraction is summed over P's entries either way;
    // near convergence the two nearly cancel, so compare this part alone).
    const auto exact = tsne.gradient(y, 0.0, TsneGradient::kExact);
    const auto fft = tsne.gradient(y, 0.0, TsneGradient::kFft);
    const double relative = ((fft - exact).norm() / exact.norm()).item<double>();
    // The grid's (cloud-in-cell) interpolation error with cells of 0.25
    // units: a few percent of the repulsion's norm.
    EXPECT_LT(relative, 0.03);
    // And the whole gradient, attraction included, per point: the largest
    // error is small against the typical size of the repulsion.
    const auto whole_exact = tsne.gradient(y, 1.0, TsneGradient::kExact);
    const auto whole_fft = tsne.gradient(y, 1.0, TsneGradient::kFft);
    EXPECT_LT((whole_fft - whole_exact).norm(2, {1}).max().item<double>(),
              0.1 * exact.norm(2, {1}).mean().item<double>());
  }
}

TEST(Tsne, SeparatesClustersAndKeepsNeighbours) {
  const auto [x, labels] = blobs(5, 60, 30, 4.0, 7);
  TsneOptions options;
  options.perplexity = 20;
  options.iterations = 600;
  for (const auto method : {TsneGradient::kExact, TsneGradient::kFft}) {
    options.gradient = method;
    Tsne tsne(x, options);
    tsne.step(600);
    const auto e = tsne.embedding();
    ASSERT_TRUE(torch::isfinite(e).all().item<bool>());
    const double trust = trustworthiness(x, e, 10);
    const double kept = knn_preservation(x, e, 10);
    // Blobs of unit noise: a good map keeps most of each point's 10
    // neighbours within its cluster and almost none from far away.
    EXPECT_GT(trust, 0.90) << (method == TsneGradient::kExact ? "exact" : "fft");
    EXPECT_GT(kept, 0.30) << (method == TsneGradient::kExact ? "exact" : "fft");
    // Nearest neighbour in the map from the same cluster for ≥ 97% of points.
    const auto d = torch::cdist(e, e);
    d.fill_diagonal_(INFINITY);
    const auto nearest = d.argmin(1);
    const double same = labels.index_select(0, nearest).eq(labels).to(torch::kFloat64).mean().item<double>();
    EXPECT_GT(same, 0.97);
    EXPECT_GT(tsne.kl_divergence(), 0.0);
    EXPECT_LT(tsne.kl_divergence(), 2.0);
  }
}

TEST(Tsne, SameSeedSameMapAndStepsCompose) {
  const auto [x, labels] = blobs(3, 30, 8, 4.0, 8);
  TsneOptions options;
  options.perplexity = 10;
  options.iterations = 200;
  options.pca_init = false;
  options.seed = 42;
  Tsne whole(x, options), parts(x, options);
  whole.step(200);
  parts.step(70);
  EXPECT_EQ(parts.iteration(), 70);
  parts.step(1000);  // capped at options.iterations
  EXPECT_EQ(parts.iteration(), 200);
  EXPECT_TRUE(parts.done());
  EXPECT_TRUE(torch::equal(whole.embedding(), parts.embedding()));
  options.seed = 43;
  Tsne other(x, options);
  other.step(200);
  EXPECT_FALSE(torch::equal(whole.embedding(), other.embedding()));
  // Stopping from the callback.
  Tsne stopped(x, options);
  EXPECT_EQ(stopped.step(50, [](int64_t it) { return it < 10; }), 10);
}

TEST(Tsne, KlMatchesADirectComputation) {
  const auto [x, labels] = blobs(3, 20, 6, 4.0, 9);
  TsneOptions options;
  options.perplexity = 8;
  options.iterations = 100;
  Tsne tsne(x, options);
  tsne.step(100);
  const auto y = tsne.embedding().to(torch::kFloat64);
  const auto p = tsne.affinities().to_dense().to(torch::kFloat64);
  auto w = 1 / (1 + torch::cdist(y, y).pow(2));
  w.fill_diagonal_(0);
  const auto q = w / w.sum();
  const auto mask = p > 0;
  const double direct = (p.masked_select(mask) * (p.masked_select(mask) / q.masked_select(mask)).log()).sum().item<double>();
  EXPECT_NEAR(tsne.kl_divergence(), direct, 1e-5 * std::abs(direct));
}

TEST(Tsne, ThreeDimensionalMaps) {
  const auto [x, labels] = blobs(3, 30, 8, 4.0, 10);
  TsneOptions options;
  options.dims = 3;
  options.perplexity = 10;
  options.iterations = 300;
  Tsne tsne(x, options);
  tsne.step(300);
  const auto e = tsne.embedding();
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{90, 3}));
  // A third dimension keeps neighbourhoods at least as well as two.
  options.dims = 2;
  Tsne flat(x, options);
  flat.step(300);
  EXPECT_GT(trustworthiness(x, e, 5), trustworthiness(x, flat.embedding(), 5) - 0.01);
  EXPECT_GT(trustworthiness(x, e, 5), 0.85);
}

TEST(Tsne, BadOptionsThrowNamingTheOption) {
  const auto x = torch::randn({20, 4});
  auto expect_error = [&](TsneOptions options, const std::string& needle, torch::Tensor data) {
    try {
      Tsne tsne(data, options);
      ADD_FAILURE() << "no error; expected one naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  TsneOptions options;
  options.perplexity = 19;
  expect_error(options, "--perplexity", x);
  options = {};
  options.perplexity = 5;
  options.dims = 4;
  expect_error(options, "--dims", x);
  options.dims = 2;
  options.iterations = 0;
  expect_error(options, "--iterations", x);
  options.iterations = 10;
  auto bad = x.clone();
  bad[3][2] = INFINITY;
  expect_error(options, "NaN or infinite", bad);
  expect_error(options, "at least 3 points", x.narrow(0, 0, 2));
}

}  // namespace
}  // namespace superpose

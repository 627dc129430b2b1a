// Neuron analyses against hand-made activations, a straightforward Lloyd
// k-means on explicit vectors, dense bag-of-token vectors, and (where there
// is a GPU) the CPU results.
#include "analysis/neurons.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "model/errors.h"

namespace superpose {
namespace {

template <typename F>
void expect_error(F&& f, const std::string& substring) {
  EXPECT_THROW(
      {
        try {
          f();
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)
              << "message: " << e.what() << "\nexpected to contain: " << substring;
          throw;
        }
      },
      Error);
}

std::vector<float> values(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU, torch::kFloat32).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

std::vector<int64_t> longs(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU, torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// ---- A straightforward Lloyd k-means on explicit vectors ----

struct Lloyd {
  std::vector<int64_t> assignments;
  double inertia = 0;
  int64_t iterations = 0;
};

// Points x (P,dim) float64; the conventions of neurons.h: start from the
// centre points, ties to the lowest cluster, empty clusters stay empty.
Lloyd reference_lloyd(const torch::Tensor& x, const std::vector<int64_t>& centres, int64_t max_iterations) {
  const auto a = x.accessor<double, 2>();
  const int64_t points = x.size(0), dim = x.size(1), k = static_cast<int64_t>(centres.size());
  using Means = std::vector<std::vector<double>>;
  const auto distance = [&](int64_t i, const std::vector<double>& m) {
    double s = 0;
    for (int64_t e = 0; e < dim; ++e) s += (a[i][e] - m[e]) * (a[i][e] - m[e]);
    return s;
  };
  const auto assign = [&](const Means& means, const std::vector<bool>& empty) {
    std::vector<int64_t> out(points);
    for (int64_t i = 0; i < points; ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < k; ++j) {
        if (empty[j]) continue;
        const double d = distance(i, means[j]);
        if (d < best) best = d, out[i] = j;
      }
    }
    return out;
  };
  const auto means_of = [&](const std::vector<int64_t>& assignment, std::vector<bool>& empty) {
    Means means(k, std::vector<double>(dim, 0));
    std::vector<int64_t> count(k, 0);
    for (int64_t i = 0; i < points; ++i) {
      ++count[assignment[i]];
      for (int64_t e = 0; e < dim; ++e) means[assignment[i]][e] += a[i][e];
    }
    for (int64_t j = 0; j < k; ++j) {
      empty[j] = count[j] == 0;
      for (auto& v : means[j]) v /= std::max<int64_t>(count[j], 1);
    }
    return means;
  };
  Means initial;
  for (int64_t c : centres) initial.push_back({&a[c][0], &a[c][0] + dim});
  Lloyd result;
  std::vector<bool> empty(k, false);
  result.assignments = assign(initial, empty);
  for (int64_t it = 0; it < max_iterations; ++it) {
    const auto next = assign(means_of(result.assignments, empty), empty);
    ++result.iterations;
    const bool changed = next != result.assignments;
    result.assignments = next;
    if (!changed) break;
  }
  const auto means = means_of(result.assignments, empty);
  for (int64_t i = 0; i < points; ++i) result.inertia += distance(i, means[result.assignments[i]]);
  return result;
}

// `groups` problems of `points` points in `dim` dimensions around `blobs`
// random centres: (G,P,dim) float64.
torch::Tensor blob_points(int64_t groups, int64_t points, int64_t dim, int64_t blobs, uint64_t seed) {
  torch::manual_seed(seed);
  const auto centres = torch::randn({groups, blobs, dim}, torch::kFloat64) * 4;
  const auto which = torch::randint(0, blobs, {groups, points, 1}, torch::kLong).expand({groups, points, dim});
  return centres.gather(1, which) + torch::randn({groups, points, dim}, torch::kFloat64);
}

// Compares the batched k-means with the reference, group by group.
void expect_matches_reference(const torch::Tensor& x, const torch::Tensor& centres, int64_t max_iterations) {
  const auto gram = torch::bmm(x, x.transpose(1, 2));  // (G,P,P)
  const auto result = batched_kmeans_gram_from(gram, centres, max_iterations);
  for (int64_t g = 0; g < x.size(0); ++g) {
    const auto expected = reference_lloyd(x[g], longs(centres[g]), max_iterations);
    EXPECT_EQ(longs(result.assignments[g]), expected.assignments) << "group " << g;
    EXPECT_EQ(result.iterations[g].item<int64_t>(), expected.iterations) << "group " << g;
    EXPECT_NEAR(result.inertia[g].item<double>(), expected.inertia, 1e-9 * expected.inertia) << "group " << g;
  }
}

// Dense bag-of-token vectors of windows (G,P,W), ids < vocab, −1 ignored: (G,P,V).
torch::Tensor dense_bags(const torch::Tensor& windows, int64_t vocab) {
  auto bags = torch::zeros({windows.size(0), windows.size(1), vocab}, torch::kFloat64);
  const auto w = windows.accessor<int64_t, 3>();
  auto b = bags.accessor<double, 3>();
  for (int64_t g = 0; g < windows.size(0); ++g)
    for (int64_t i = 0; i < windows.size(1); ++i)
      for (int64_t a = 0; a < windows.size(2); ++a)
        if (w[g][i][a] >= 0) b[g][i][w[g][i][a]] += 1;
  return bags;
}

// ---- NeuronStats ----

TEST(NeuronStats, HandMadeMeansDifferencesAndSparsity) {
  // Rows 0-2 domain A, rows 3-5 domain B; columns:
  //   0: A mean 2, B mean 2            -> difference 0
  //   1: A mean 4, B mean 2            -> |4-2|/4 = 0.5
  //   2: all zero                      -> 0 by definition, sparsity 1
  //   3: A mean -1, B mean 1 (signs)   -> |-1-1|/1 = 2
  const auto acts = torch::tensor({{0.0f, 4.0f, 0.0f, -1.0f},
                                   {3.0f, 4.0f, 0.0f, -0.5f},
                                   {3.0f, 4.0f, 0.0f, -1.5f},
                                   {2.0f, 2.0f, 0.0f, 0.25f},
                                   {2.0f, 2.0f, 0.0f, 1.75f},
                                   {2.0f, 2.0f, 0.0f, 1.0f}});
  const auto labels = torch::tensor({0, 0, 0, 1, 1, 1}, torch::kLong);
  const auto stats = neuron_stats(acts, labels);
  EXPECT_EQ(values(stats.mean_a), (std::vector<float>{2, 4, 0, -1}));
  EXPECT_EQ(values(stats.mean_b), (std::vector<float>{2, 2, 0, 1}));
  EXPECT_EQ(values(stats.normalized_difference), (std::vector<float>{0, 0.5f, 0, 2}));
  EXPECT_EQ(values(stats.sparsity), (std::vector<float>{1.0f / 6, 0, 1, 0}));
  EXPECT_EQ(stats.mean_a.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(stats.sparsity.device().is_cpu());

  EXPECT_EQ(polysemantic_share(stats, 0.0), 0.0);  // strictly below
  EXPECT_EQ(polysemantic_share(stats, 0.05), 0.5);
  EXPECT_EQ(polysemantic_share(stats, 0.5), 0.5);
  EXPECT_EQ(polysemantic_share(stats, 0.6), 0.75);
  EXPECT_EQ(polysemantic_share(stats, 3.0), 1.0);
  EXPECT_NEAR(sparsity_share(stats), (1.0 / 6 + 1) / 4, 1e-7);  // from the float32 per-neuron shares

  // |a| < ε is strict: with ε = 0.5, column 3's -0.5 does not count, 0.25 does.
  const auto wide = neuron_stats(acts, labels, 0.5);
  EXPECT_EQ(values(wide.sparsity), (std::vector<float>{1.0f / 6, 0, 1, 1.0f / 6}));
}

TEST(NeuronStats, ChunkedRowsMatchADirectComputation) {
  // Enough rows for several row chunks.
  torch::manual_seed(3);
  const int64_t n = 6000, d = 2048;
  auto acts = torch::randn({n, d}) + torch::linspace(-1, 1, d);
  acts.index_put_({acts.abs() < 0.01}, 0.0f);
  const auto labels = torch::randint(0, 2, {n}, torch::kLong);
  const auto stats = neuron_stats(acts, labels, 1e-4);
  const auto x = acts.to(torch::kFloat64);
  const auto b = labels.eq(1);
  const auto mean_a = x.index({b.logical_not()}).mean(0), mean_b = x.index({b}).mean(0);
  const auto difference = (mean_a - mean_b).abs() / torch::maximum(mean_a.abs(), mean_b.abs());
  const auto sparsity = x.abs().lt(1e-4).to(torch::kFloat64).mean(0);
  const auto worst = [](const torch::Tensor& got, const torch::Tensor& want) {
    return (got.to(torch::kFloat64) - want).abs().max().item<double>();
  };
  EXPECT_LT(worst(stats.mean_a, mean_a), 1e-6);
  EXPECT_LT(worst(stats.mean_b, mean_b), 1e-6);
  const auto error = (stats.normalized_difference.to(torch::kFloat64) - difference).abs();
  EXPECT_LT((error / difference.clamp_min(1e-3)).max().item<double>(), 1e-6);  // relative
  EXPECT_LT(worst(stats.sparsity, sparsity), 1e-7);
}

TEST(NeuronStats, BadInputsNameTheirArgument) {
  const auto acts = torch::ones({4, 3});
  const auto labels = torch::tensor({0, 1, 0, 1}, torch::kLong);
  expect_error([&] { neuron_stats(torch::ones({4}), labels); }, "acts: expected (N,D) activations, got (4)");
  expect_error([&] { neuron_stats(torch::ones({0, 3}), torch::zeros({0}, torch::kLong)); }, "acts: no rows (N = 0)");
  expect_error([&] { neuron_stats(acts, torch::tensor({0, 1, 0}, torch::kLong)); }, "labels: expected (N) = (4)");
  expect_error([&] { neuron_stats(acts, torch::tensor({0, 1, 2, 1}, torch::kLong)); },
               "labels: a label is neither 0 nor 1");
  expect_error([&] { neuron_stats(acts, torch::zeros({4}, torch::kLong)); }, "labels: domain B (label 1) has no rows");
  expect_error([&] { neuron_stats(acts, torch::ones({4}, torch::kLong)); }, "labels: domain A (label 0) has no rows");
  expect_error([&] { neuron_stats(acts, labels.to(torch::kFloat32)); }, "labels: expected integer labels");
  auto with_nan = acts.clone();
  with_nan[2][1] = NAN;
  expect_error([&] { neuron_stats(with_nan, labels); }, "acts: holds a NaN");
  const auto stats = neuron_stats(acts, labels);
  expect_error([&] { polysemantic_share(stats, -0.05); }, "threshold: must be at least 0, got -0.05");
  expect_error([&] { polysemantic_share(NeuronStats{}, 0.05); }, "stats: no neurons");
}

TEST(NeuronStats, StackLayerMap) {
  const auto map = stack_layer_map({torch::tensor({1.0, 2.0, 3.0}), torch::tensor({4.0f, 5.0f, 6.0f})});
  ASSERT_EQ(map.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(map.scalar_type(), torch::kFloat32);
  EXPECT_EQ(values(map), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  expect_error([] { stack_layer_map({}); }, "per_layer: no layers");
  expect_error([] { stack_layer_map({torch::ones({3}), torch::ones({4})}); },
               "per_layer: layer 1 has 4 neurons, layer 0 has 3");
  expect_error([] { stack_layer_map({torch::ones({3, 1})}); }, "per_layer: layer 0 is not (D), got (3,1)");
}

// ---- Kmeans ----

TEST(Kmeans, MatchesAStraightforwardLloydFromTheSameCentres) {
  const auto x = blob_points(/*groups=*/8, /*points=*/60, /*dim=*/4, /*blobs=*/4, 11);
  const auto gram = torch::bmm(x, x.transpose(1, 2));
  for (int64_t k : {1, 4, 7}) {
    SCOPED_TRACE("k = " + std::to_string(k));
    expect_matches_reference(x, kmeanspp_init(gram, k, 5), 100);
  }
  // Arbitrary centres, with a repeat in group 0 (its second copy stays empty),
  // and a cap on the iterations.
  torch::manual_seed(12);
  auto centres = torch::randint(0, 60, {8, 5}, torch::kLong);
  centres[0][3] = centres[0][1].item<int64_t>();
  expect_matches_reference(x, centres, 100);
  expect_matches_reference(x, centres, 1);
  expect_matches_reference(x, centres, 0);
  const auto repeated = batched_kmeans_gram_from(gram, centres, 100);
  EXPECT_EQ(repeated.assignments[0].eq(3).sum().item<int64_t>(), 0);
}

TEST(Kmeans, KmeansppIsRepeatableAndNeverRepeatsAPoint) {
  const auto x = blob_points(4, 50, 3, 3, 21);
  const auto gram = torch::bmm(x, x.transpose(1, 2)).to(torch::kFloat32);
  const auto a = batched_kmeans_gram(gram, 5, 42), b = batched_kmeans_gram(gram, 5, 42);
  EXPECT_TRUE(torch::equal(kmeanspp_init(gram, 5, 42), kmeanspp_init(gram, 5, 42)));
  EXPECT_TRUE(torch::equal(a.assignments, b.assignments));
  EXPECT_TRUE(torch::equal(a.inertia, b.inertia));
  EXPECT_FALSE(torch::equal(kmeanspp_init(gram, 5, 42), kmeanspp_init(gram, 5, 43)));
  EXPECT_EQ(a.assignments.scalar_type(), torch::kLong);
  EXPECT_EQ(a.inertia.scalar_type(), torch::kFloat64);
  EXPECT_EQ(a.iterations.scalar_type(), torch::kLong);
  EXPECT_TRUE((a.iterations >= 1).all().item<bool>());

  // All points identical: after the uniform first centre, every distance is
  // 0 and the lowest unchosen points follow; all points go to cluster 0.
  const auto same = torch::ones({5, 6, 6}) * 3;
  const auto chosen = kmeanspp_init(same, 3, 7);
  for (int64_t g = 0; g < 5; ++g) {
    const auto c = longs(chosen[g]);
    std::vector<int64_t> expected = {c[0]};
    for (int64_t i = 0; static_cast<int64_t>(expected.size()) < 3; ++i)
      if (i != c[0]) expected.push_back(i);
    EXPECT_EQ(c, expected) << "group " << g;
  }
  const auto same_result = batched_kmeans_gram(same, 3, 7);
  EXPECT_EQ(same_result.assignments.abs().sum().item<int64_t>(), 0);
  EXPECT_EQ(same_result.inertia.abs().max().item<double>(), 0.0);
}

TEST(Kmeans, FindsTwoWellSeparatedBlobsForEverySeed) {
  torch::manual_seed(31);
  // 15 points near (0,0) and 15 near (100,100), interleaved.
  const auto side = torch::arange(30).remainder(2);  // (P) blob of each point
  const auto x = (side.unsqueeze(1).to(torch::kFloat64) * 100 + torch::randn({30, 2}, torch::kFloat64)).unsqueeze(0);
  const auto gram = torch::bmm(x, x.transpose(1, 2));
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto result = batched_kmeans_gram(gram, 2, seed);
    const auto a = result.assignments[0];
    const bool same = torch::equal(a, side), flipped = torch::equal(a, 1 - side);
    EXPECT_TRUE(same || flipped) << "seed " << seed;
  }
}

TEST(Kmeans, WindowGramMatchesDenseBags) {
  torch::manual_seed(41);
  const auto windows = torch::randint(-1, 10, {3, 7, 5}, torch::kLong);  // −1 is padding
  const auto bags = dense_bags(windows, 10);
  const auto expected = torch::bmm(bags, bags.transpose(1, 2));
  const auto gram = window_gram(windows);
  EXPECT_EQ(gram.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::equal(gram, expected)) << "worst " << (gram - expected).abs().max().item<double>();
  expect_error([] { window_gram(torch::zeros({3, 4})); }, "windows: expected (G,P,W)");
}

TEST(Kmeans, BadInputsNameTheirArgument) {
  const auto gram = torch::eye(4).unsqueeze(0);
  expect_error([&] { batched_kmeans_gram(gram, 0, 1); }, "k: 0 is outside [1, 4]");
  expect_error([&] { batched_kmeans_gram(gram, 5, 1); }, "k: 5 is outside [1, 4]");
  expect_error([&] { kmeanspp_init(torch::ones({1, 4, 3}), 2, 1); }, "gram: expected (G,P,P), got (1,4,3)");
  expect_error([&] { kmeanspp_init(gram * NAN, 2, 1); }, "gram: holds a NaN or infinite value");
  expect_error([&] { batched_kmeans_gram_from(gram, torch::tensor({{0, 4}}, torch::kLong), 10); },
               "initial_centres: an index is outside [0, 4)");
  expect_error([&] { batched_kmeans_gram_from(gram, torch::tensor({0, 1}, torch::kLong), 10); },
               "initial_centres: expected (G,k) = (1,k)");
  expect_error([&] { batched_kmeans_gram_from(gram, torch::tensor({{0, 1}}, torch::kLong), -1); },
               "max_iterations: must be at least 0, got -1");
}

// ---- NeuronDiversity ----

// N = 300 rows of windows of 5 tokens (context 2):
//   rows 0-99: five groups by row % 5, group g the window 10g+1 .. 10g+5;
//   rows 100-199: all the window 100 .. 104;
//   rows 200-299: random tokens 0..49 with padding.
torch::Tensor constructed_contexts() {
  torch::manual_seed(51);
  auto contexts = torch::randint(-1, 50, {300, 5}, torch::kLong);
  for (int64_t row = 0; row < 100; ++row)
    contexts[row] = torch::arange(1, 6, torch::kLong) + 10 * (row % 5);
  contexts.narrow(0, 100, 100).copy_(torch::arange(100, 105, torch::kLong).expand({100, 5}));
  return contexts;
}

TEST(NeuronDiversity, DistinctGroupsGiveLnKAndIdenticalContextsZero) {
  const auto contexts = constructed_contexts();
  torch::manual_seed(52);
  auto acts = torch::rand({300, 4});                    // background in [0, 1)
  acts.select(1, 0).narrow(0, 0, 100).add_(10);         // neuron 0: the five groups on top
  acts.select(1, 1).narrow(0, 100, 100).add_(10);       // neuron 1: one window on top
  acts.select(1, 3).fill_(1);                           // neuron 3: all tied: the lowest rows, 0-99
  NeuronDiversityOptions options;
  options.context = 2;
  for (uint64_t seed : {0, 1, 2}) {
    options.seed = seed;
    const auto diversity = neuron_diversity(acts, contexts, options);
    ASSERT_EQ(diversity.sizes(), (std::vector<int64_t>{4}));
    EXPECT_EQ(diversity.scalar_type(), torch::kFloat32);
    EXPECT_NEAR(diversity[0].item<double>(), std::log(5.0), 1e-6) << "seed " << seed;
    EXPECT_NEAR(diversity[1].item<double>(), 0.0, 1e-6) << "seed " << seed;
    EXPECT_GE(diversity[2].item<double>(), 0.0);
    EXPECT_LE(diversity[2].item<double>(), std::log(5.0) + 1e-6);
    EXPECT_NEAR(diversity[3].item<double>(), std::log(5.0), 1e-6) << "seed " << seed;
  }
}

TEST(NeuronDiversity, MatchesAStraightforwardComputation) {
  torch::manual_seed(61);
  const int64_t n = 150, d = 6, top = 40, k = 4, vocab = 20;
  const auto acts = torch::randn({n, d});
  const auto contexts = torch::randint(-1, vocab, {n, 5}, torch::kLong);
  NeuronDiversityOptions options;
  options.top = top;
  options.clusters = k;
  options.context = 2;
  options.seed = 7;

  // Per neuron: top rows by (activation desc, row asc), then ascending rows;
  // dense bags; Gram; the k-means++ draws of group d; Lloyd; entropy.
  std::vector<torch::Tensor> points, grams;
  for (int64_t j = 0; j < d; ++j) {
    const auto column = acts.select(1, j).contiguous();
    std::vector<int64_t> rows(n);
    std::iota(rows.begin(), rows.end(), 0);
    const float* v = column.data_ptr<float>();
    std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
    rows.resize(top);
    std::sort(rows.begin(), rows.end());
    const auto windows = contexts.index_select(0, torch::tensor(rows, torch::kLong)).unsqueeze(0);  // (1,t,W)
    const auto bags = dense_bags(windows, vocab)[0];                                                // (t,V)
    points.push_back(bags);
    grams.push_back(torch::matmul(bags, bags.t()));
  }
  const auto centres = kmeanspp_init(torch::stack(grams), k, options.seed);  // group j = neuron j
  std::vector<float> expected;
  for (int64_t j = 0; j < d; ++j) {
    const auto result = reference_lloyd(points[j], longs(centres[j]), options.max_iterations);
    std::vector<double> sizes(k, 0);
    for (int64_t c : result.assignments) sizes[c] += 1;
    double entropy = 0;
    for (double s : sizes)
      if (s > 0) entropy -= s / top * std::log(s / top);
    expected.push_back(static_cast<float>(entropy));
  }
  const auto diversity = neuron_diversity(acts, contexts, options);
  const auto got = values(diversity);
  for (int64_t j = 0; j < d; ++j) EXPECT_NEAR(got[j], expected[j], 1e-6) << "neuron " << j;
  // Batching neurons differently changes nothing: neuron j always draws as group j.
  for (int64_t batch : {1, 4}) {
    options.neuron_batch = batch;
    EXPECT_TRUE(torch::equal(neuron_diversity(acts, contexts, options), diversity)) << "neuron_batch " << batch;
  }
  // Fewer rows than `top`: all of them.
  options.top = 1000;
  options.neuron_batch = 0;
  const auto all_rows = neuron_diversity(acts.narrow(0, 0, 30), contexts.narrow(0, 0, 30), options);
  EXPECT_EQ(all_rows.size(0), d);
}

TEST(NeuronDiversity, BadOptionsNameTheirField) {
  const auto acts = torch::randn({10, 2});
  const auto contexts = torch::zeros({10, 5}, torch::kLong);
  NeuronDiversityOptions options;
  options.context = 2;
  options.top = 4;
  expect_error([&] { neuron_diversity(acts, contexts, options); }, "clusters: 5 is outside [1, 4]");
  options.top = 0;
  expect_error([&] { neuron_diversity(acts, contexts, options); }, "top: must be at least 1, got 0");
  options.top = 100;
  options.context = 3;
  expect_error([&] { neuron_diversity(acts, contexts, options); }, "contexts: expected (N,W) = (10,7)");
  options.context = 2;
  options.neuron_batch = -1;
  expect_error([&] { neuron_diversity(acts, contexts, options); }, "neuron_batch: must be at least 0, got -1");
  options.neuron_batch = 0;
  auto with_nan = acts.clone();
  with_nan[3][0] = NAN;
  expect_error([&] { neuron_diversity(with_nan, contexts, options); }, "acts: holds a NaN");
}

TEST(NeuronDiversity, ContextWindowsStopAtDocumentBoundaries) {
  const auto ids = torch::tensor({10, 11, 12, 13, 14, 15, 16}, torch::kLong);
  const auto docs = torch::tensor({7, 7, 7, 3, 3, 9, 9}, torch::kLong);
  const auto windows = context_windows(ids, docs, 2);
  const auto expected = torch::tensor({{-1, -1, 10, 11, 12},
                                       {-1, 10, 11, 12, -1},
                                       {10, 11, 12, -1, -1},
                                       {-1, -1, 13, 14, -1},
                                       {-1, 13, 14, -1, -1},
                                       {-1, -1, 15, 16, -1},
                                       {-1, 15, 16, -1, -1}},
                                      torch::kLong);
  EXPECT_TRUE(torch::equal(windows, expected)) << windows;
  EXPECT_TRUE(torch::equal(context_windows(ids, docs, 0), ids.unsqueeze(1)));
  expect_error([&] { context_windows(ids, torch::tensor({0, 0, 1, 1, 0, 2, 2}, torch::kLong), 2); },
               "documents: the rows of a document are not contiguous");
  expect_error([&] { context_windows(torch::tensor({1, -2}, torch::kLong), torch::zeros({2}, torch::kLong), 1); },
               "token_ids: a token id is negative");
  expect_error([&] { context_windows(ids, docs.narrow(0, 0, 3), 1); }, "documents: expected (N) = (7)");
  expect_error([&] { context_windows(ids, docs, -1); }, "context: must be at least 0, got -1");
}

TEST(NeuronDiversity, TopActivationsHighestFirstTiesByRow) {
  const auto acts = torch::tensor({{0.0f, 1.0f}, {0.0f, 3.0f}, {0.0f, 3.0f}, {0.0f, 2.0f}, {0.0f, 3.0f}});
  const auto top = top_activations(acts, 1, 4);
  ASSERT_EQ(top.size(), 4u);
  const std::vector<int64_t> rows = {1, 2, 4, 3};
  const std::vector<double> activations = {3, 3, 3, 2};
  for (size_t i = 0; i < top.size(); ++i) {
    EXPECT_EQ(top[i].row, rows[i]);
    EXPECT_EQ(top[i].activation, activations[i]);
  }
  EXPECT_EQ(top_activations(acts, 0, 10).size(), 5u);
  EXPECT_TRUE(top_activations(acts, 0, 0).empty());
  expect_error([&] { top_activations(acts, 2, 1); }, "neuron: 2 is outside [0, 2)");
  expect_error([&] { top_activations(acts, 0, -1); }, "k: must be at least 0, got -1");
}

TEST(NeuronDiversity, CudaMatchesTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  const torch::Device cuda(torch::kCUDA, 0);
  // Statistics.
  torch::manual_seed(71);
  const auto acts = torch::randn({3000, 64});
  const auto labels = torch::randint(0, 2, {3000}, torch::kLong);
  const auto cpu_stats = neuron_stats(acts, labels), gpu_stats = neuron_stats(acts.to(cuda), labels.to(cuda));
  EXPECT_TRUE(gpu_stats.mean_a.device().is_cpu());
  EXPECT_LT((cpu_stats.mean_a - gpu_stats.mean_a).abs().max().item<double>(), 1e-6);
  EXPECT_LT((cpu_stats.mean_b - gpu_stats.mean_b).abs().max().item<double>(), 1e-6);
  EXPECT_TRUE(torch::equal(cpu_stats.sparsity, gpu_stats.sparsity));
  // k-means on float Grams (no near-ties in random blobs).
  const auto x = blob_points(16, 80, 5, 4, 72);
  const auto gram = torch::bmm(x, x.transpose(1, 2));
  const auto cpu_kmeans = batched_kmeans_gram(gram, 4, 3), gpu_kmeans = batched_kmeans_gram(gram.to(cuda), 4, 3);
  EXPECT_TRUE(torch::equal(kmeanspp_init(gram, 4, 3), kmeanspp_init(gram.to(cuda), 4, 3)));
  EXPECT_TRUE(torch::equal(cpu_kmeans.assignments, gpu_kmeans.assignments));
  EXPECT_TRUE(torch::equal(cpu_kmeans.iterations, gpu_kmeans.iterations));
  EXPECT_LT((cpu_kmeans.inertia - gpu_kmeans.inertia).abs().max().item<double>(),
            1e-9 * cpu_kmeans.inertia.max().item<double>());
  // Diversity (integer Grams: identical), windows and the token Gram.
  const auto contexts = constructed_contexts();
  const auto div_acts = torch::randn({300, 40});
  NeuronDiversityOptions options;
  options.context = 2;
  options.neuron_batch = 7;
  EXPECT_TRUE(torch::equal(neuron_diversity(div_acts, contexts, options),
                           neuron_diversity(div_acts.to(cuda), contexts.to(cuda), options)));
  EXPECT_TRUE(torch::equal(window_gram(contexts.view({3, 100, 5})), window_gram(contexts.view({3, 100, 5}).to(cuda))));
  const auto ids = torch::randint(0, 100, {50}, torch::kLong);
  const auto docs = torch::arange(50).div(7, "floor").to(torch::kLong);
  EXPECT_TRUE(torch::equal(context_windows(ids, docs, 3), context_windows(ids.to(cuda), docs.to(cuda), 3)));
}

}  // namespace
}  // namespace superpose

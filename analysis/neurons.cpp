// Neuron statistics, batched Gram-matrix k-means and neuron diversity, in
// LibTorch so the same code runs on CPU and CUDA.
#include "analysis/neurons.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {
namespace {

constexpr int64_t kStatsChunkElements = int64_t{1} << 22;  // elements per row chunk of neuron_stats (32 MiB in float64)

std::string shape_of(const torch::Tensor& t) {
  std::string s = "(";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + ")";
}

// A double as a short decimal ("0.05", not to_string's "0.050000").
std::string number(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

bool is_integer(const torch::Tensor& t) { return at::isIntegralType(t.scalar_type(), /*includeBool=*/false); }

// (N,D) with N, D ≥ 1, float.
void check_acts(const torch::Tensor& acts) {
  if (acts.dim() != 2) throw Error("acts", "expected (N,D) activations, got " + shape_of(acts));
  if (acts.size(0) == 0) throw Error("acts", "no rows (N = 0)");
  if (acts.size(1) == 0) throw Error("acts", "no neurons (D = 0)");
  if (!acts.is_floating_point()) throw Error("acts", "expected floating-point activations");
}

// (G,P,P) with P ≥ 1, finite.
void check_gram(const torch::Tensor& gram) {
  if (gram.dim() != 3 || gram.size(1) != gram.size(2)) throw Error("gram", "expected (G,P,P), got " + shape_of(gram));
  if (gram.size(1) == 0) throw Error("gram", "no points (P = 0)");
  if (!torch::isfinite(gram).all().item<bool>()) throw Error("gram", "holds a NaN or infinite value");
}

// A uniform double in [0, 1) from 53 random bits: portable, unlike
// std::uniform_real_distribution, whose algorithm the standard leaves open.
double canonical(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// k-means++ on `gram` (G,P,P) float64 (checked), group g seeded by
// (seed, first_group + g). Returns (G,k) int64 point indices, CPU.
torch::Tensor kmeanspp(const torch::Tensor& gram, int64_t k, uint64_t seed, int64_t first_group) {
  const int64_t groups = gram.size(0), points = gram.size(1);
  // Every draw up front, on the CPU: u[g][s] for step s of group g.
  std::vector<std::vector<double>> u(groups, std::vector<double>(k));
  for (int64_t g = 0; g < groups; ++g) {
    const uint64_t group = static_cast<uint64_t>(first_group + g);
    std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                           static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32)};
    std::mt19937_64 rng(sequence);
    for (auto& x : u[g]) x = canonical(rng);
  }
  auto centres = torch::empty({groups, k}, torch::kLong);  // (G,k) CPU
  auto c = centres.accessor<int64_t, 2>();
  for (int64_t g = 0; g < groups; ++g) c[g][0] = std::min(points - 1, static_cast<int64_t>(u[g][0] * points));

  const auto diag = gram.diagonal(0, 1, 2);  // (G,P): G_ii
  auto nearest = torch::full({groups, points}, std::numeric_limits<double>::infinity(), gram.options());  // (G,P)
  for (int64_t s = 1; s < k; ++s) {
    // Squared distance of every point to the centre chosen last:
    // G_ii − 2 G_ic + G_cc.
    const auto last = centres.select(1, s - 1).to(gram.device());                           // (G)
    const auto g_ic = gram.gather(2, last.view({groups, 1, 1}).expand({groups, points, 1})).squeeze(2);  // (G,P)
    const auto g_cc = diag.gather(1, last.view({groups, 1}));                               // (G,1)
    nearest = torch::minimum(nearest, (diag - 2 * g_ic + g_cc).clamp_min(0));
    const auto weights = nearest.cpu().contiguous();  // (G,P) float64
    const auto w = weights.accessor<double, 2>();
    for (int64_t g = 0; g < groups; ++g) {
      const auto chosen = [&](int64_t i) {
        for (int64_t t = 0; t < s; ++t)
          if (c[g][t] == i) return true;
        return false;
      };
      // Sequential sums in a fixed order, so every device draws alike.
      double total = 0;
      for (int64_t i = 0; i < points; ++i)
        if (!chosen(i)) total += w[g][i];
      int64_t pick = -1;
      if (total > 0) {
        const double target = u[g][s] * total;
        double sum = 0;
        for (int64_t i = 0; i < points; ++i) {
          if (chosen(i) || !(w[g][i] > 0)) continue;
          pick = i;  // the last positive weight, should rounding leave sum ≤ target
          sum += w[g][i];
          if (sum > target) break;
        }
      } else {
        // All remaining points coincide with a centre: the lowest unchosen.
        for (pick = 0; chosen(pick); ++pick) {
        }
      }
      c[g][s] = pick;
    }
  }
  return centres;
}

// Assignment step: each point to the cluster of least squared distance given
// cluster memberships `members` (G,P,k) float64 0/1, on gram's device.
// G_ii is the same for every cluster, so the argmin needs only
// intra_j/n_j² − 2 Σ_{m∈S_j} G_im / n_j. With integer Grams every operation
// is exact or correctly rounded, hence device-independent. Returns (G,P).
torch::Tensor assign(const torch::Tensor& gram, const torch::Tensor& members) {
  const auto count = members.sum(1);                  // (G,k) n_j
  const auto to_members = torch::bmm(gram, members);  // (G,P,k) Σ_{m∈S_j} G_im
  const auto intra = (members * to_members).sum(1);   // (G,k) Σ_{m,n∈S_j} G_mn
  auto score = (intra / (count * count)).unsqueeze(1) - 2 * to_members / count.unsqueeze(1);  // (G,P,k)
  score.masked_fill_(count.eq(0).unsqueeze(1), std::numeric_limits<double>::infinity());
  return score.argmin(2);  // first minimum: ties to the lowest cluster
}

// (G,P) cluster ids -> (G,P,k) float64 one-hot memberships.
torch::Tensor memberships(const torch::Tensor& assignments, int64_t k) {
  return torch::zeros({assignments.size(0), assignments.size(1), k}, assignments.options().dtype(torch::kFloat64))
      .scatter_(2, assignments.unsqueeze(2), 1.0);
}

// Lloyd iterations on `gram` (G,P,P) float64 from centre points (G,k), both
// on one device; results stay on that device.
KmeansResult lloyd(const torch::Tensor& gram, const torch::Tensor& centres, int64_t max_iterations) {
  const int64_t groups = gram.size(0), points = gram.size(1), k = centres.size(1);
  // Initial memberships: cluster j holds its centre point alone. (G,P,k)
  const auto initial = torch::zeros({groups, points, k}, gram.options()).scatter_(1, centres.unsqueeze(1), 1.0);
  auto assignments = assign(gram, initial);  // (G,P)
  auto iterations = torch::zeros({groups}, centres.options());
  auto active = torch::ones({groups}, centres.options().dtype(torch::kBool));
  for (int64_t it = 0; it < max_iterations && active.any().item<bool>(); ++it) {
    const auto next = assign(gram, memberships(assignments, k));
    iterations += active;
    active &= next.ne(assignments).any(1);
    // A group that has converged reproduces its assignments, so taking
    // `next` for every group changes none of them.
    assignments = next;
  }
  // Inertia of the final assignments: Σ_j (Σ_{i∈S_j} G_ii − intra_j / n_j).
  const auto members = memberships(assignments, k);
  const auto count = members.sum(1);                                            // (G,k)
  const auto intra = (members * torch::bmm(gram, members)).sum(1);              // (G,k)
  const auto own = (members * gram.diagonal(0, 1, 2).unsqueeze(2)).sum(1);      // (G,k)
  const auto per_cluster = torch::where(count.gt(0), own - intra / count.clamp_min(1), torch::zeros_like(own));
  return {assignments, per_cluster.clamp_min(0).sum(1), iterations};
}

void check_k(int64_t k, int64_t points) {
  if (k < 1 || k > points) {
    throw Error("k", std::to_string(k) + " is outside [1, " + std::to_string(points) + "]");
  }
}

// Bag-of-tokens Gram of `windows` (G,P,W) int64 on its device: (G,P,P)
// float64. Each group's tokens get local ids (their rank among the group's
// distinct tokens, at most P·W of them), so the bags are (G,P,P·W) count
// vectors rather than vocabulary-sized ones, and one batched product gives
// every Σ_a Σ_b [t_ia = t_mb].
torch::Tensor gram_of_windows(const torch::Tensor& windows) {
  const int64_t groups = windows.size(0), points = windows.size(1), width = windows.size(2), places = points * width;
  const auto flat = windows.reshape({groups, places});  // (G,PW)
  const auto [sorted, order] = flat.sort(1);             // (G,PW)
  // A new local id wherever the sorted token changes.
  auto starts = torch::ones_like(sorted);  // (G,PW)
  if (places > 1) {
    starts.narrow(1, 1, places - 1).copy_(sorted.narrow(1, 1, places - 1).ne(sorted.narrow(1, 0, places - 1)));
  }
  const auto local = torch::empty_like(starts).scatter_(1, order, starts.cumsum(1) - 1);  // (G,PW) id of each place
  // Counts and their products are integers up to W²: exact in float32 while
  // W² < 2^24, which is twice as fast on the CPU. CUDA may run float32
  // products in TF32, so it gets float64.
  const auto dtype = windows.is_cuda() || width > 4096 ? torch::kFloat64 : torch::kFloat32;
  const auto weight = flat.ge(0).to(dtype);  // (G,PW): padding weighs 0
  const auto bags = torch::zeros({groups, points, places}, weight.options())  // (G,P,PW)
                        .scatter_add_(2, local.view({groups, points, width}), weight.view({groups, points, width}));
  return torch::bmm(bags, bags.transpose(1, 2)).to(torch::kFloat64);  // (G,P,P)
}

// Rows of the top-t activations of each column of `x` (N,B), ties to the
// lower row: (B,t) int64, each row list ascending. topk gives the t-th
// largest value v; all rows above v are taken, then the lowest rows equal
// to v until there are t.
torch::Tensor top_rows(const torch::Tensor& x, int64_t t) {
  const int64_t width = x.size(1);
  const auto kth = std::get<0>(x.topk(t, 0)).select(0, t - 1);      // (B)
  const auto above = x.gt(kth);                                       // (N,B)
  const auto at = x.eq(kth);                                          // (N,B)
  const auto room = t - above.sum(0);                                 // (B) ties to take
  const auto take = above.logical_or(at.logical_and(at.cumsum(0).le(room)));  // (N,B), t per column
  return take.t().nonzero().select(1, 1).view({width, t});            // row-major order: rows ascending
}

}  // namespace

// ---- Per-neuron domain statistics ----

NeuronStats neuron_stats(const torch::Tensor& acts, const torch::Tensor& labels, double sparsity_epsilon) {
  check_acts(acts);
  const int64_t n = acts.size(0), d = acts.size(1);
  if (labels.dim() != 1 || labels.size(0) != n) {
    throw Error("labels", "expected (N) = (" + std::to_string(n) + ") labels, got " + shape_of(labels));
  }
  if (!is_integer(labels)) throw Error("labels", "expected integer labels 0 or 1");
  if (!(sparsity_epsilon >= 0)) throw Error("sparsity_epsilon", "must be at least 0, got " + number(sparsity_epsilon));
  torch::NoGradGuard no_grad;
  const auto domain = labels.to(acts.device(), torch::kLong);  // (N)
  if (!domain.eq(0).logical_or(domain.eq(1)).all().item<bool>()) throw Error("labels", "a label is neither 0 nor 1");
  const int64_t rows_b = domain.sum().item<int64_t>(), rows_a = n - rows_b;
  if (rows_a == 0) throw Error("labels", "domain A (label 0) has no rows");
  if (rows_b == 0) throw Error("labels", "domain B (label 1) has no rows");

  // Per-domain sums and near-zero counts, accumulated in float64 over row
  // chunks: only a chunk is ever converted.
  const auto f64 = acts.options().dtype(torch::kFloat64);
  auto sums = torch::zeros({2, d}, f64);    // (2,D): Σ over domain A, B
  auto small = torch::zeros({d}, f64);      // (D): rows with |a| < ε
  auto has_nan = torch::zeros({}, acts.options().dtype(torch::kBool));
  const int64_t chunk = std::max<int64_t>(1, kStatsChunkElements / d);
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t b = std::min(chunk, n - start);
    const auto x = acts.narrow(0, start, b).to(torch::kFloat64);                          // (b,D)
    const auto in_domain = torch::zeros({b, 2}, f64).scatter_(1, domain.narrow(0, start, b).unsqueeze(1), 1.0);  // (b,2)
    sums += torch::matmul(in_domain.t(), x);                                              // (2,D)
    small += x.abs().lt(sparsity_epsilon).sum(0);
    has_nan.logical_or_(x.isnan().any());
  }
  if (has_nan.item<bool>()) throw Error("acts", "holds a NaN");
  const auto mean_a = sums[0] / static_cast<double>(rows_a), mean_b = sums[1] / static_cast<double>(rows_b);  // (D)
  const auto scale = torch::maximum(mean_a.abs(), mean_b.abs());                                           // (D)
  const auto difference = torch::where(scale.gt(0), (mean_a - mean_b).abs() / scale, torch::zeros_like(scale));

  const auto out = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCPU);
  return {mean_a.to(out), mean_b.to(out), difference.to(out), (small / static_cast<double>(n)).to(out)};
}

double polysemantic_share(const NeuronStats& stats, double threshold) {
  if (!(threshold >= 0)) throw Error("threshold", "must be at least 0, got " + number(threshold));
  if (!stats.normalized_difference.defined() || stats.normalized_difference.numel() == 0) {
    throw Error("stats", "no neurons");
  }
  // In float64: a float32 comparison would round the threshold.
  return stats.normalized_difference.to(torch::kFloat64).lt(threshold).to(torch::kFloat64).mean().item<double>();
}

double sparsity_share(const NeuronStats& stats) {
  if (!stats.sparsity.defined() || stats.sparsity.numel() == 0) throw Error("stats", "no neurons");
  return stats.sparsity.to(torch::kFloat64).mean().item<double>();
}

// ---- Batched k-means on Gram matrices ----

torch::Tensor kmeanspp_init(const torch::Tensor& gram, int64_t k, uint64_t seed) {
  check_gram(gram);
  check_k(k, gram.size(1));
  torch::NoGradGuard no_grad;
  return kmeanspp(gram.to(torch::kFloat64), k, seed, 0);
}

KmeansResult batched_kmeans_gram_from(const torch::Tensor& gram, const torch::Tensor& initial_centres,
                                      int64_t max_iterations) {
  check_gram(gram);
  const int64_t groups = gram.size(0), points = gram.size(1);
  if (initial_centres.dim() != 2 || initial_centres.size(0) != groups || initial_centres.size(1) < 1 ||
      !is_integer(initial_centres)) {
    throw Error("initial_centres", "expected (G,k) = (" + std::to_string(groups) +
                                       ",k) point indices with k >= 1, got " + shape_of(initial_centres));
  }
  if (initial_centres.numel() > 0 &&
      (initial_centres.min().item<int64_t>() < 0 || initial_centres.max().item<int64_t>() >= points)) {
    throw Error("initial_centres", "an index is outside [0, " + std::to_string(points) + ")");
  }
  if (max_iterations < 0) throw Error("max_iterations", "must be at least 0, got " + std::to_string(max_iterations));
  torch::NoGradGuard no_grad;
  const auto result = lloyd(gram.to(torch::kFloat64), initial_centres.to(gram.device(), torch::kLong), max_iterations);
  return {result.assignments.cpu(), result.inertia.cpu(), result.iterations.cpu()};
}

KmeansResult batched_kmeans_gram(const torch::Tensor& gram, int64_t k, uint64_t seed, int64_t max_iterations) {
  return batched_kmeans_gram_from(gram, kmeanspp_init(gram, k, seed), max_iterations);
}

// ---- Neuron diversity ----

torch::Tensor context_windows(const torch::Tensor& token_ids, const torch::Tensor& documents, int64_t context) {
  if (token_ids.dim() != 1 || !is_integer(token_ids)) {
    throw Error("token_ids", "expected (N) integer token ids, got " + shape_of(token_ids));
  }
  const int64_t n = token_ids.size(0);
  if (documents.dim() != 1 || documents.size(0) != n || !is_integer(documents)) {
    throw Error("documents",
                "expected (N) = (" + std::to_string(n) + ") integer document ids, got " + shape_of(documents));
  }
  if (context < 0) throw Error("context", "must be at least 0, got " + std::to_string(context));
  torch::NoGradGuard no_grad;
  const auto ids = token_ids.to(torch::kLong);
  const auto docs = documents.to(ids.device(), torch::kLong);
  if (n > 0 && ids.min().item<int64_t>() < 0) throw Error("token_ids", "a token id is negative");
  if (n > 1) {
    // Contiguous documents: as many runs of equal ids as distinct ids.
    const auto sorted = std::get<0>(docs.sort());
    const int64_t runs = docs.narrow(0, 1, n - 1).ne(docs.narrow(0, 0, n - 1)).sum().item<int64_t>();
    const int64_t distinct = sorted.narrow(0, 1, n - 1).ne(sorted.narrow(0, 0, n - 1)).sum().item<int64_t>();
    if (runs != distinct) throw Error("documents", "the rows of a document are not contiguous");
  }
  const int64_t width = 2 * context + 1;
  // Pad both ends by `context`; window i is padded[i .. i+W). (N,W)
  const auto windows = torch::constant_pad_nd(ids, {context, context}, -1).unfold(0, width, 1);
  const auto window_docs = torch::constant_pad_nd(docs, {context, context}, 0).unfold(0, width, 1);
  const auto inside =
      torch::constant_pad_nd(torch::ones_like(ids, torch::kBool), {context, context}, 0).unfold(0, width, 1);
  const auto same = inside.logical_and(window_docs.eq(docs.unsqueeze(1)));  // (N,W)
  return windows.masked_fill(same.logical_not(), -1).contiguous().cpu();
}

torch::Tensor window_gram(const torch::Tensor& windows) {
  if (windows.dim() != 3 || !is_integer(windows)) {
    throw Error("windows", "expected (G,P,W) integer token ids, got " + shape_of(windows));
  }
  torch::NoGradGuard no_grad;
  return gram_of_windows(windows.to(torch::kLong).contiguous()).cpu();
}

torch::Tensor neuron_diversity(const torch::Tensor& acts, const torch::Tensor& contexts,
                               const NeuronDiversityOptions& options) {
  check_acts(acts);
  const int64_t n = acts.size(0), d = acts.size(1), width = 2 * options.context + 1;
  if (options.top < 1) throw Error("top", "must be at least 1, got " + std::to_string(options.top));
  if (options.context < 0) throw Error("context", "must be at least 0, got " + std::to_string(options.context));
  if (options.max_iterations < 0) {
    throw Error("max_iterations", "must be at least 0, got " + std::to_string(options.max_iterations));
  }
  if (options.neuron_batch < 0) {
    throw Error("neuron_batch", "must be at least 0, got " + std::to_string(options.neuron_batch));
  }
  const int64_t t = std::min(options.top, n), k = options.clusters;
  if (k < 1 || k > t) {
    throw Error("clusters", std::to_string(k) + " is outside [1, " + std::to_string(t) + "] (top " +
                                std::to_string(options.top) + ", N = " + std::to_string(n) + ")");
  }
  if (contexts.dim() != 2 || contexts.size(0) != n || contexts.size(1) != width || !is_integer(contexts)) {
    throw Error("contexts", "expected (N,W) = (" + std::to_string(n) + "," + std::to_string(width) +
                                ") integer token windows (W = 2*context + 1), got " + shape_of(contexts));
  }
  torch::NoGradGuard no_grad;
  const auto windows_all = contexts.to(acts.device(), torch::kLong).contiguous();  // (N,W)

  int64_t batch = options.neuron_batch;
  if (batch == 0) {
    // Temporaries per neuron: top_rows' (N) masks and cumulative sum, the
    // float64 bags (P,P·W) and Gram (P,P), the k-means (P,k).
    const int64_t per_neuron = 16 * n + 8 * t * t * (width + 4) + 64 * t * width + 64 * t * k;
    const int64_t budget = acts.is_cuda() ? (int64_t{1} << 30) : (int64_t{1} << 28);
    batch = std::max<int64_t>(1, budget / per_neuron);
  }
  batch = std::min(batch, d);

  auto diversity = torch::empty({d}, torch::kFloat64);  // (D) CPU
  for (int64_t first = 0; first < d; first += batch) {
    const int64_t b = std::min(batch, d - first);
    const auto x = acts.narrow(1, first, b);                                            // (N,B)
    if (x.isnan().any().item<bool>()) throw Error("acts", "holds a NaN");
    const auto rows = top_rows(x, t);                                                   // (B,t)
    const auto windows = windows_all.index_select(0, rows.reshape(-1)).view({b, t, width});  // (B,t,W)
    const auto gram = gram_of_windows(windows);                                         // (B,t,t) float64
    const auto centres = kmeanspp(gram, k, options.seed, first).to(gram.device());      // (B,k)
    const auto clusters = lloyd(gram, centres, options.max_iterations).assignments;     // (B,t)
    const auto p = memberships(clusters, k).sum(1) / static_cast<double>(t);            // (B,k) cluster shares
    const auto terms = torch::where(p.gt(0), p * p.log(), torch::zeros_like(p));        // 0 ln 0 = 0
    diversity.narrow(0, first, b).copy_(-terms.sum(1));
  }
  return diversity.to(torch::kFloat32);
}

// ---- Top contexts and layer maps ----

std::vector<NeuronContext> top_activations(const torch::Tensor& acts, int64_t neuron, int64_t k) {
  if (acts.dim() != 2) throw Error("acts", "expected (N,D) activations, got " + shape_of(acts));
  if (neuron < 0 || neuron >= acts.size(1)) {
    throw Error("neuron", std::to_string(neuron) + " is outside [0, " + std::to_string(acts.size(1)) + ")");
  }
  if (k < 0) throw Error("k", "must be at least 0, got " + std::to_string(k));
  torch::NoGradGuard no_grad;
  const auto column = acts.select(1, neuron).to(torch::kCPU, torch::kFloat64).contiguous();  // (N)
  if (column.isnan().any().item<bool>()) throw Error("acts", "neuron " + std::to_string(neuron) + " holds a NaN");
  // A stable descending sort keeps equal activations in row order.
  const auto [values, order] = column.sort(/*stable=*/true, 0, /*descending=*/true);
  const auto row = order.accessor<int64_t, 1>();
  const auto activation = values.accessor<double, 1>();
  std::vector<NeuronContext> top(std::min(k, column.size(0)));
  for (size_t i = 0; i < top.size(); ++i) top[i] = {row[i], activation[i]};
  return top;
}

torch::Tensor stack_layer_map(const std::vector<torch::Tensor>& per_layer) {
  if (per_layer.empty()) throw Error("per_layer", "no layers");
  std::vector<torch::Tensor> rows;
  for (size_t l = 0; l < per_layer.size(); ++l) {
    const auto& layer = per_layer[l];
    if (!layer.defined() || layer.dim() != 1) {
      throw Error("per_layer", "layer " + std::to_string(l) + " is not (D), got " +
                                   (layer.defined() ? shape_of(layer) : std::string("an undefined tensor")));
    }
    if (layer.size(0) != per_layer[0].size(0)) {
      throw Error("per_layer", "layer " + std::to_string(l) + " has " + std::to_string(layer.size(0)) +
                                   " neurons, layer 0 has " + std::to_string(per_layer[0].size(0)));
    }
    rows.push_back(layer.to(torch::kCPU, torch::kFloat32));
  }
  return torch::stack(rows);  // (L,D)
}

}  // namespace superpose

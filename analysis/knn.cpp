// k nearest neighbours: FAISS on the CPU (flat, or HNSW for large N), blocked torch matmul elsewhere.
#include "analysis/knn.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>

#include <torch/torch.h>

#ifdef SUPERPOSE_HAVE_FAISS
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#endif

#include "model/errors.h"

namespace superpose {
namespace {

// ||q - p||² = ||q||² - 2 q·p + ||p||², in blocks of queries to bound memory.
KnnResult knn_torch(const torch::Tensor& points, const torch::Tensor& queries, int64_t k) {
  auto p = points.to(torch::kFloat32);
  auto q = queries.to(torch::kFloat32);
  auto p_norm = p.pow(2).sum(1);  // (N)
  // Query blocks of about 2^29 distances (2 GiB) on a GPU, 2^25 on the CPU,
  // built in place: one (b,N) temporary besides topk's, whatever N is.
  const int64_t N = p.size(0);
  const int64_t budget = p.is_cuda() ? int64_t{1} << 29 : int64_t{1} << 25;
  const int64_t block = std::clamp<int64_t>(budget / std::max<int64_t>(N, 1), 1, 8192);
  std::vector<torch::Tensor> indices, distances;
  for (int64_t start = 0; start < q.size(0); start += block) {
    auto qb = q.narrow(0, start, std::min(block, q.size(0) - start));  // (b,C)
    auto d = torch::matmul(qb, p.t());                                   // (b,N)
    d.mul_(-2).add_(p_norm).add_(qb.pow(2).sum(1, true)).clamp_min_(0);
    auto top = d.topk(k, 1, /*largest=*/false, /*sorted=*/true);
    distances.push_back(std::get<0>(top));
    indices.push_back(std::get<1>(top));
  }
  return {torch::cat(indices), torch::cat(distances)};
}


// Index of the nearest row of `centroids` (L,C) for each row of x (N,C), in
// blocks of rows.
torch::Tensor nearest_centroid(const torch::Tensor& x, const torch::Tensor& centroids) {
  const auto c_norm = centroids.pow(2).sum(1);  // (L)
  const int64_t block = std::clamp<int64_t>((int64_t{1} << 26) / std::max<int64_t>(centroids.size(0), 1), 1, 65536);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < x.size(0); start += block) {
    const auto xb = x.narrow(0, start, std::min(block, x.size(0) - start));
    parts.push_back(std::get<1>((c_norm - 2 * torch::matmul(xb, centroids.t())).min(1)));
  }
  return torch::cat(parts);
}

// k-means (Lloyd) from `lists` distinct sample points chosen by `seed`; an
// emptied cell keeps its centroid.
torch::Tensor train_centroids(const torch::Tensor& points, int64_t lists, const IvfOptions& options) {
  auto generator = at::detail::createCPUGenerator(options.seed);
  const int64_t n = points.size(0);
  const int64_t sample_size =
      std::min(n, options.train_points > 0 ? std::max(options.train_points, lists) : 64 * lists);
  const auto sample_rows = torch::randperm(n, generator, torch::kLong).narrow(0, 0, sample_size).to(points.device());
  const auto sample = points.index_select(0, sample_rows);
  auto centroids = sample.narrow(0, 0, lists).clone();
  for (int64_t it = 0; it < options.kmeans_iterations; ++it) {
    // Cell sums as differences of a float64 running sum over the sample
    // sorted by cell: unlike atomic index_add_, the same on every run.
    const auto assign = nearest_centroid(sample, centroids);
    const auto order = std::get<1>(assign.sort(/*stable=*/true, 0, false));
    const auto running = torch::cat({torch::zeros({1, sample.size(1)}, sample.options().dtype(torch::kFloat64)),
                                     sample.index_select(0, order).to(torch::kFloat64).cumsum(0)});
    const auto ends = torch::bincount(assign, {}, lists).cumsum(0);  // (lists)
    const auto starts = ends - torch::bincount(assign, {}, lists);
    const auto sums = running.index_select(0, ends) - running.index_select(0, starts);
    const auto counts = (ends - starts).to(torch::kFloat64).unsqueeze(1);
    centroids = torch::where(counts > 0, sums / counts.clamp_min(1), centroids.to(torch::kFloat64)).to(torch::kFloat32);
  }
  return centroids;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU, torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

void check_search(const torch::Tensor& points, const torch::Tensor& queries, int64_t k) {
  TORCH_CHECK(points.dim() == 2 && queries.dim() == 2, "knn_search: expected (N,C) points and (Q,C) queries, got ",
              points.sizes(), " and ", queries.sizes());
  if (points.size(1) != queries.size(1)) {
    throw Error("knn", "points have width " + std::to_string(points.size(1)) + " but queries " +
                           std::to_string(queries.size(1)));
  }
  if (k < 1 || k > points.size(0)) {
    throw Error("knn", "k = " + std::to_string(k) + " is outside [1, " + std::to_string(points.size(0)) + "]");
  }
}

}  // namespace

KnnResult knn_ivf(const torch::Tensor& points, const torch::Tensor& queries, int64_t k, const IvfOptions& options) {
  check_search(points, queries, k);
  torch::NoGradGuard no_grad;
  const auto p = points.to(torch::kFloat32).contiguous();
  const auto q = queries.to(p.device(), torch::kFloat32).contiguous();
  const int64_t n = p.size(0);
  const int64_t lists = std::min(
      n, options.lists > 0 ? options.lists
                           : std::clamp<int64_t>(static_cast<int64_t>(2 * std::sqrt(static_cast<double>(n))), 16, 8192));
  const auto centroids = train_centroids(p, lists, options);

  // Points sorted by cell: cell c holds order[start[c] .. start[c] + count[c]).
  const auto point_cell = nearest_centroid(p, centroids);
  const auto order = to_vector(std::get<1>(point_cell.sort(/*stable=*/true, 0, false)));
  const auto count = to_vector(torch::bincount(point_cell, {}, lists));
  std::vector<int64_t> start(static_cast<size_t>(lists) + 1, 0);
  for (int64_t c = 0; c < lists; ++c) start[static_cast<size_t>(c) + 1] = start[static_cast<size_t>(c)] + count[static_cast<size_t>(c)];
  // Queries by cell, and each cell's nearest cells (itself first).
  const auto query_cell = nearest_centroid(q, centroids);
  const auto query_order = std::get<1>(query_cell.sort(/*stable=*/true, 0, false));
  const auto query_count = to_vector(torch::bincount(query_cell, {}, lists));
  const int64_t ranked = std::min<int64_t>(lists, std::max<int64_t>(4 * options.probes, 64));
  const auto c_norm = centroids.pow(2).sum(1);
  const auto cell_d = (c_norm.unsqueeze(1) + c_norm - 2 * torch::matmul(centroids, centroids.t()));
  const auto near_cells = to_vector(std::get<1>(cell_d.topk(ranked, 1, /*largest=*/false)));

  const auto p_norm = p.pow(2).sum(1);
  auto indices = torch::empty({q.size(0), k}, torch::TensorOptions().dtype(torch::kLong).device(p.device()));
  auto distances = torch::empty({q.size(0), k}, p.options());
  std::vector<int64_t> candidates;
  int64_t query_start = 0;
  for (int64_t c = 0; c < lists; ++c) {
    const int64_t group = query_count[static_cast<size_t>(c)];
    if (group == 0) continue;
    candidates.clear();
    for (int64_t r = 0; r < ranked; ++r) {
      if (r >= options.probes && static_cast<int64_t>(candidates.size()) >= k) break;
      const auto cell = static_cast<size_t>(near_cells[static_cast<size_t>(c * ranked + r)]);
      candidates.insert(candidates.end(), order.begin() + start[cell], order.begin() + start[cell + 1]);
    }
    if (static_cast<int64_t>(candidates.size()) < k) candidates = order;  // too few nearby: all points
    const auto cand = torch::tensor(candidates, torch::kLong).to(p.device());
    const auto cand_points = p.index_select(0, cand);  // (M,C)
    const auto cand_norm = p_norm.index_select(0, cand);
    // Queries of the cell in blocks of at most about 2^27 distances.
    const int64_t block = std::max<int64_t>(1, (int64_t{1} << 27) / cand.size(0));
    for (int64_t b = 0; b < group; b += block) {
      const int64_t size = std::min(block, group - b);
      const auto rows = query_order.narrow(0, query_start + b, size);
      const auto qg = q.index_select(0, rows);                 // (G,C)
      auto d = torch::matmul(qg, cand_points.t());             // (G,M)
      d.mul_(-2).add_(cand_norm).add_(qg.pow(2).sum(1, true)).clamp_min_(0);
      const auto top = d.topk(k, 1, /*largest=*/false, /*sorted=*/true);
      indices.index_copy_(0, rows, cand.index_select(0, std::get<1>(top).reshape(-1)).view({size, k}));
      distances.index_copy_(0, rows, std::get<0>(top));
    }
    query_start += group;
  }
  return {indices, distances};
}

bool knn_uses_faiss() {
#ifdef SUPERPOSE_HAVE_FAISS
  return true;
#else
  return false;
#endif
}

KnnResult knn_search(const torch::Tensor& points, const torch::Tensor& queries, int64_t k, const KnnOptions& options) {
  check_search(points, queries, k);
#ifdef SUPERPOSE_HAVE_FAISS
  if (points.device().is_cpu() && queries.device().is_cpu()) {
    auto p = points.to(torch::kFloat32).contiguous();
    auto q = queries.to(torch::kFloat32).contiguous();
    std::unique_ptr<faiss::Index> index;
    if (p.size(0) > options.approximate_above) {
      auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(p.size(1), 32);
      hnsw->hnsw.efConstruction = 80;
      hnsw->hnsw.efSearch = static_cast<int>(std::max<int64_t>(2 * k, 128));
      index = std::move(hnsw);
    } else {
      index = std::make_unique<faiss::IndexFlatL2>(p.size(1));
    }
    index->add(p.size(0), p.data_ptr<float>());
    KnnResult result{torch::empty({q.size(0), k}, torch::kLong), torch::empty({q.size(0), k}, torch::kFloat32)};
    static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t), "faiss ids are 64-bit");
    index->search(q.size(0), q.data_ptr<float>(), k, result.distances.data_ptr<float>(),
                  reinterpret_cast<faiss::Index::idx_t*>(result.indices.data_ptr<int64_t>()));
    return result;
  }
#endif
  if (points.size(0) > options.approximate_above) return knn_ivf(points, queries, k);
  return knn_torch(points, queries, k);
}

}  // namespace superpose

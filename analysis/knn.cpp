// k nearest neighbours: FAISS on the CPU (flat, or HNSW for large N), blocked torch matmul elsewhere.
#include "analysis/knn.h"

#include <algorithm>
#include <memory>
#include <string>

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

}  // namespace

bool knn_uses_faiss() {
#ifdef SUPERPOSE_HAVE_FAISS
  return true;
#else
  return false;
#endif
}

KnnResult knn_search(const torch::Tensor& points, const torch::Tensor& queries, int64_t k, const KnnOptions& options) {
  TORCH_CHECK(points.dim() == 2 && queries.dim() == 2, "knn_search: expected (N,C) points and (Q,C) queries, got ",
              points.sizes(), " and ", queries.sizes());
  if (points.size(1) != queries.size(1)) {
    throw Error("knn", "points have width " + std::to_string(points.size(1)) + " but queries " +
                           std::to_string(queries.size(1)));
  }
  if (k < 1 || k > points.size(0)) {
    throw Error("knn", "k = " + std::to_string(k) + " is outside [1, " + std::to_string(points.size(0)) + "]");
  }
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
  (void)options;
  return knn_torch(points, queries, k);
}

}  // namespace superpose

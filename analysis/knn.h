// Exact k-nearest-neighbour search over rows of a float matrix.
#pragma once

#include <torch/types.h>

namespace superpose {

struct KnnResult {
  torch::Tensor indices;    // (Q,k) int64, nearest first
  torch::Tensor distances;  // (Q,k) float, squared L2 distances
};

struct KnnOptions {
  // CPU searches over more points than this use an approximate FAISS HNSW
  // graph (M = 32, efConstruction 80, efSearch max(2k, 128)) instead of the
  // exact flat index: building and searching it grows as N log N, not N².
  // Builds without FAISS and CUDA tensors are always exact.
  int64_t approximate_above = 100000;
};

// For each row of `queries` (Q,C) the k nearest rows of `points` (N,C) by
// squared Euclidean distance, nearest first. CPU tensors go through a FAISS
// flat index (HNSW above options.approximate_above points) where the build
// has FAISS; CUDA tensors (and builds without FAISS) use a blocked
// matrix-product search in LibTorch. Exact searches break ties by the lower
// index. Throws Error when k is outside [1, N] or the widths differ.
KnnResult knn_search(const torch::Tensor& points, const torch::Tensor& queries, int64_t k,
                     const KnnOptions& options = {});

// Whether knn_search uses FAISS for CPU tensors in this build.
bool knn_uses_faiss();

}  // namespace superpose

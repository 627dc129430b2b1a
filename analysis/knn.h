// Exact k-nearest-neighbour search over rows of a float matrix.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace superpose {

struct KnnResult {
  torch::Tensor indices;    // (Q,k) int64, nearest first
  torch::Tensor distances;  // (Q,k) float, squared L2 distances
};

struct KnnOptions {
  // Searches over more points than this are approximate: on the CPU a FAISS
  // HNSW graph (M = 32, efConstruction 80, efSearch max(2k, 128)) instead of
  // the exact flat index; on CUDA (and CPU builds without FAISS) the
  // inverted file of knn_ivf. Their cost grows about as N√N or N log N, not N².
  int64_t approximate_above = 100000;
};

struct IvfOptions {
  int64_t lists = 0;         // k-means cells; 0: 2√N, within [16, 8192]
  int64_t probes = 24;       // cells searched per query cell (more if they hold fewer than k points)
  int64_t kmeans_iterations = 12;
  int64_t train_points = 0;  // k-means sample; 0: min(N, 64 · lists)
  uint64_t seed = 0;
};

// For each row of `queries` (Q,C) the k nearest rows of `points` (N,C) by
// squared Euclidean distance, nearest first. CPU tensors go through a FAISS
// flat index (HNSW above options.approximate_above points) where the build
// has FAISS; CUDA tensors (and builds without FAISS) use a blocked
// matrix-product search in LibTorch (knn_ivf above approximate_above).
// Exact searches break ties by the lower index. Throws Error when k is outside [1, N] or the widths differ.
KnnResult knn_search(const torch::Tensor& points, const torch::Tensor& queries, int64_t k,
                     const KnnOptions& options = {});

// Approximate k nearest neighbours by an inverted file in LibTorch (any
// device): the points are clustered by k-means; the queries whose nearest
// centroid is c are compared with the points of the `probes` cells whose
// centroids are nearest to c (c included), by one matrix product and one
// top-k per cell. Deterministic for a seed. Same result layout as
// knn_search; throws Error as it does.
KnnResult knn_ivf(const torch::Tensor& points, const torch::Tensor& queries, int64_t k, const IvfOptions& options = {});

// Whether knn_search uses FAISS for CPU tensors in this build.
bool knn_uses_faiss();

}  // namespace superpose

// Exact k-nearest-neighbour search over rows of a float matrix.
#pragma once

#include <torch/types.h>

namespace superpose {

struct KnnResult {
  torch::Tensor indices;    // (Q,k) int64, nearest first
  torch::Tensor distances;  // (Q,k) float, squared L2 distances
};

// For each row of `queries` (Q,C) the k nearest rows of `points` (N,C) by
// squared Euclidean distance, ties broken by the lower index. CPU tensors go
// through a FAISS flat index where the build has FAISS; CUDA tensors (and
// builds without FAISS) use a blocked matrix-product search in LibTorch.
// Throws Error when k is outside [1, N] or the widths differ.
KnnResult knn_search(const torch::Tensor& points, const torch::Tensor& queries, int64_t k);

// Whether knn_search uses FAISS for CPU tensors in this build.
bool knn_uses_faiss();

}  // namespace superpose

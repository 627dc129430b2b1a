// Principal component analysis of the rows of a matrix, on the rows' device.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace superpose {

struct Pca {
  torch::Tensor mean;                // (D) float32: subtracted before projecting
  torch::Tensor components;          // (k,D) float32: orthonormal rows, by decreasing variance
  torch::Tensor explained_variance;  // (k) float64: variance along each component (divisor N-1)
  double total_variance = 0;         // sum of the per-feature variances (divisor N-1)

  // (N,D) -> (N,k): the rows' coordinates on the components.
  torch::Tensor project(const torch::Tensor& x) const;
};

// The top-k principal components of `x` (N,D), any float dtype, CPU or CUDA;
// computed in float64 from the D×D covariance (or the N×N Gram matrix when
// N < D). Signs are fixed so that each component's largest-magnitude loading
// is positive, which makes results repeatable across devices. Throws Error
// when x is not 2-D, has fewer than 2 rows, holds a non-finite value, or k is
// outside [1, min(N, D)].
Pca fit_pca(const torch::Tensor& x, int64_t k);

}  // namespace superpose

// PCA by an eigendecomposition of the covariance (or Gram) matrix in float64.
#include "analysis/pca.h"

#include <string>

#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {

torch::Tensor Pca::project(const torch::Tensor& x) const {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == mean.size(0), "Pca::project: expected (N,", mean.size(0), "), got ",
              x.sizes());
  // (N,D) -> (N,k)
  return torch::matmul(x.to(mean.device(), torch::kFloat32) - mean, components.t());
}

Pca fit_pca(const torch::Tensor& x, int64_t k) {
  if (x.dim() != 2) throw Error("pca", "expected a matrix (rows, features), got " + std::to_string(x.dim()) + " dimensions");
  const int64_t n = x.size(0), d = x.size(1);
  if (n < 2) throw Error("pca", "needs at least 2 rows, got " + std::to_string(n));
  if (k < 1 || k > std::min(n, d)) {
    throw Error("pca", "k = " + std::to_string(k) + " is outside [1, " + std::to_string(std::min(n, d)) + "]");
  }
  torch::NoGradGuard no_grad;
  const auto x64 = x.to(torch::kFloat64);
  if (!torch::isfinite(x64).all().item<bool>()) throw Error("pca", "the data hold a NaN or infinite value");
  const auto mean = x64.mean(0);  // (D)
  const auto xc = x64 - mean;     // (N,D)
  torch::Tensor values, vectors;  // ascending eigenvalues; components as rows after selection
  if (d <= n) {
    const auto cov = torch::matmul(xc.t(), xc) / static_cast<double>(n - 1);  // (D,D)
    std::tie(values, vectors) = torch::linalg_eigh(cov, "L");
    values = values.flip(0).slice(0, 0, k);
    vectors = vectors.flip(1).slice(1, 0, k).t();  // (k,D)
  } else {
    // Fewer rows than features: the Gram matrix has the same non-zero
    // spectrum, and X^T u / |X^T u| recovers the components.
    const auto gram = torch::matmul(xc, xc.t()) / static_cast<double>(n - 1);  // (N,N)
    std::tie(values, vectors) = torch::linalg_eigh(gram, "L");
    values = values.flip(0).slice(0, 0, k);
    auto loadings = torch::matmul(xc.t(), vectors.flip(1).slice(1, 0, k));  // (D,k)
    loadings = loadings / loadings.norm(2, {0}, true).clamp_min(1e-300);
    vectors = loadings.t();  // (k,D)
  }
  // Each component's largest-magnitude loading positive: eigenvectors are
  // only defined up to sign, and solvers on different devices pick differently.
  const auto biggest = vectors.abs().argmax(1, true);                     // (k,1)
  const auto signs = vectors.gather(1, biggest).sign().clamp_min(0) * 2 - 1;  // (k,1) in {-1, 1}
  vectors = vectors * signs;

  Pca pca;
  pca.mean = mean.to(torch::kFloat32);
  pca.components = vectors.to(torch::kFloat32).contiguous();
  pca.explained_variance = values.clamp_min(0).contiguous();
  pca.total_variance = xc.pow(2).sum().item<double>() / static_cast<double>(n - 1);
  return pca;
}

}  // namespace superpose

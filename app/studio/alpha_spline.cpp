// Control points that give the α in force: the reference when it does, else
// its nearest correction, solved in float64 on the small side of the basis.
#include "app/studio/alpha_spline.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace superpose::studio {
namespace {

// Solves (M + λI) x = rhs for a symmetric positive semi-definite n×n M
// (row-major) by Cholesky. λ starts negligible and grows only where M is
// singular (a basis of lower rank than its small side), which picks the
// minimum-norm solution in the limit. Zeros when M is not finite.
std::vector<double> solve_regularised(const std::vector<double>& m, const std::vector<double>& rhs, size_t n) {
  double scale = 0.0;
  for (size_t i = 0; i < n; ++i) scale = std::max(scale, m[i * n + i]);
  double lambda = 1e-12 * std::max(scale, 1e-30);
  for (int attempt = 0; attempt < 8; ++attempt, lambda *= 1e3) {
    std::vector<double> l(n * n, 0.0);  // lower triangle of M + λI = L Lᵀ
    bool positive = true;
    for (size_t i = 0; i < n && positive; ++i) {
      for (size_t j = 0; j <= i; ++j) {
        double sum = m[i * n + j] + (i == j ? lambda : 0.0);
        for (size_t k = 0; k < j; ++k) sum -= l[i * n + k] * l[j * n + k];
        if (i == j) {
          if (!(sum > 0.0)) {
            positive = false;
            break;
          }
          l[i * n + i] = std::sqrt(sum);
        } else {
          l[i * n + j] = sum / l[j * n + j];
        }
      }
    }
    if (!positive) continue;
    std::vector<double> x(rhs);
    for (size_t i = 0; i < n; ++i) {  // L y = rhs
      for (size_t k = 0; k < i; ++k) x[i] -= l[i * n + k] * x[k];
      x[i] /= l[i * n + i];
    }
    for (size_t i = n; i-- > 0;) {  // Lᵀ x = y
      for (size_t k = i + 1; k < n; ++k) x[i] -= l[k * n + i] * x[k];
      x[i] /= l[i * n + i];
    }
    return x;
  }
  return std::vector<double>(n, 0.0);
}

SplineControls measured(const SuperpositionInfo& info, std::vector<float> points) {
  SplineControls out;
  const std::vector<float> alpha = alpha_from_control_points(info.alpha_basis, points, info.layer_bias);
  for (size_t l = 0; l < alpha.size(); ++l) {
    const float difference = std::abs(alpha[l] - info.alpha_in_force[l]);
    if (difference > out.worst) {
      out.worst = difference;
      out.worst_layer = static_cast<int64_t>(l);
    }
  }
  out.exact = out.worst <= kSplineTolerance;
  out.points = std::move(points);
  return out;
}

}  // namespace

SplineControls spline_controls_in_force(const SuperpositionInfo& info, const std::vector<float>& reference) {
  const auto n_control = static_cast<size_t>(info.n_control), layers = info.layer_bias.size();
  assert(n_control > 0 && info.alpha_basis.size() == layers * n_control && info.alpha_in_force.size() == layers);
  if (!info.alpha_overridden) return measured(info, info.control_points);
  const std::vector<float>& start = reference.size() == n_control ? reference : info.control_points;
  SplineControls kept = measured(info, start);
  if (kept.exact) return kept;

  // The residual each layer needs, from the unclamped spline of `start`.
  const std::vector<float>& basis = info.alpha_basis;
  std::vector<double> residual(layers);
  for (size_t l = 0; l < layers; ++l) {
    double spline = 0.1 * static_cast<double>(info.layer_bias[l]);
    for (size_t j = 0; j < n_control; ++j) spline += static_cast<double>(basis[l * n_control + j]) * start[j];
    const double target = info.alpha_in_force[l];
    const bool clamped_alike = (target <= 0.0 && spline <= 0.0) || (target >= 1.0 && spline >= 1.0);
    residual[l] = clamped_alike ? 0.0 : target - spline;
  }
  // The change d of the control points: the minimum-norm solution of B d = r
  // (L <= K) or the least-squares one (L > K); both are (BᵀB + λI)⁻¹Bᵀr as λ -> 0.
  std::vector<double> change(n_control, 0.0);
  if (layers <= n_control) {
    std::vector<double> gram(layers * layers, 0.0);  // B Bᵀ
    for (size_t a = 0; a < layers; ++a) {
      for (size_t b = 0; b < layers; ++b) {
        for (size_t j = 0; j < n_control; ++j) {
          gram[a * layers + b] += static_cast<double>(basis[a * n_control + j]) * basis[b * n_control + j];
        }
      }
    }
    const std::vector<double> y = solve_regularised(gram, residual, layers);
    for (size_t l = 0; l < layers; ++l) {
      for (size_t j = 0; j < n_control; ++j) change[j] += static_cast<double>(basis[l * n_control + j]) * y[l];
    }
  } else {
    std::vector<double> gram(n_control * n_control, 0.0), rhs(n_control, 0.0);  // BᵀB, Bᵀr
    for (size_t l = 0; l < layers; ++l) {
      for (size_t i = 0; i < n_control; ++i) {
        const double bi = basis[l * n_control + i];
        rhs[i] += bi * residual[l];
        for (size_t j = 0; j < n_control; ++j) gram[i * n_control + j] += bi * basis[l * n_control + j];
      }
    }
    change = solve_regularised(gram, rhs, n_control);
  }
  std::vector<float> points(n_control);
  for (size_t j = 0; j < n_control; ++j) points[j] = static_cast<float>(start[j] + change[j]);
  return measured(info, std::move(points));
}

}  // namespace superpose::studio

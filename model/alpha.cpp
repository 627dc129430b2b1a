// B-spline basis (Cox–de Boor, evaluated span by span) and the α module.
#include "model/alpha.h"

#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {

std::string variant_name(AlphaVariant variant) { return variant == AlphaVariant::k1D ? "1d" : "2d"; }

AlphaVariant parse_variant(const std::string& name, const std::string& where) {
  if (name == "1d") return AlphaVariant::k1D;
  if (name == "2d") return AlphaVariant::k2D;
  throw Error(where, "unknown α variant '" + name + "'; expected 1d or 2d");
}

void validate(const AlphaConfig& config, const std::string& where) {
  if (config.n_layer < 1) throw Error(where, "n_layer must be at least 1, got " + std::to_string(config.n_layer));
  if (config.n_embd < 1) throw Error(where, "n_embd must be at least 1, got " + std::to_string(config.n_embd));
  if (config.degree < 0 || config.degree > 10) {
    throw Error(where, "spline degree must be in [0, 10], got " + std::to_string(config.degree));
  }
  if (config.n_control < config.degree + 1) {
    throw Error(where, "a degree-" + std::to_string(config.degree) + " spline needs at least " +
                           std::to_string(config.degree + 1) + " control points, got " +
                           std::to_string(config.n_control));
  }
}

torch::Tensor bspline_basis(int64_t n_control, int64_t degree, int64_t n_points) {
  const int64_t K = n_control, k = degree;
  TORCH_CHECK(k >= 0 && K >= k + 1 && n_points >= 1, "bspline_basis: need K >= k + 1 and n_points >= 1");
  // Knots t[0..K+k]: k zeros, K - k + 1 uniform values on [0, 1], k ones.
  std::vector<double> t;
  for (int64_t i = 0; i < k; ++i) t.push_back(0.0);
  const int64_t inner = K - k + 1;
  for (int64_t i = 0; i < inner; ++i) t.push_back(inner == 1 ? 0.0 : static_cast<double>(i) / (inner - 1));
  for (int64_t i = 0; i < k; ++i) t.push_back(1.0);

  auto basis = torch::zeros({n_points, K}, torch::kFloat64);
  auto out = basis.accessor<double, 2>();
  std::vector<double> N(k + 1), left(k + 1), right(k + 1);
  for (int64_t p = 0; p < n_points; ++p) {
    const double x = n_points == 1 ? 0.0 : static_cast<double>(p) / (n_points - 1);
    // Span l in [k, K-1] with t[l] <= x < t[l+1]; x at the right end uses the
    // last non-empty span, which closes the interval on the right.
    int64_t l = k;
    while (l < K - 1 && x >= t[l + 1]) ++l;
    // Non-zero basis functions of degree k on span l: N[r] = B_{l-k+r}(x).
    N[0] = 1.0;
    for (int64_t j = 1; j <= k; ++j) {
      left[j] = x - t[l + 1 - j];
      right[j] = t[l + j] - x;
      double saved = 0.0;
      for (int64_t r = 0; r < j; ++r) {
        const double temp = N[r] / (right[r + 1] + left[j - r]);
        N[r] = saved + right[r + 1] * temp;
        saved = left[j - r] * temp;
      }
      N[j] = saved;
    }
    for (int64_t r = 0; r <= k; ++r) out[p][l - k + r] = N[r];
  }
  return basis;
}

torch::Tensor quantize_straight_through(const torch::Tensor& a) {
  const auto rounded = torch::round(a * 10.0) / 10.0;
  return a + (rounded - a).detach();
}

AlphaImpl::AlphaImpl(const AlphaConfig& config) : config_(config) {
  validate(config, "alpha");
  const int64_t K = config.n_control, L = config.n_layer, C = config.n_embd;
  torch::NoGradGuard no_grad;
  if (config.variant == AlphaVariant::k1D) {
    control_points = register_parameter("control_points", torch::empty({K}).uniform_(0.45, 0.55));
    layer_bias = register_parameter("layer_bias", torch::zeros({L}));
  } else {
    control_points = register_parameter("control_points", torch::randn({K, C}) * 0.1);
    layer_bias = register_parameter("layer_bias", torch::randn({L, C}));
  }
  basis = register_buffer("basis", bspline_basis(K, config.degree, L).to(torch::kFloat32));
}

torch::Tensor AlphaImpl::forward() {
  if (config_.variant == AlphaVariant::k1D) {
    return torch::clamp(torch::mv(basis, control_points) + 0.1 * layer_bias, 0.0, 1.0);  // (L)
  }
  const auto a = torch::sigmoid(torch::mm(basis, control_points) + 0.01 * layer_bias) * 0.9 + 0.1;  // (L,C)
  return quantize_straight_through(a);
}

torch::Tensor AlphaImpl::regularizer() {
  if (config_.variant == AlphaVariant::k1D) return torch::zeros({}, control_points.options());
  auto smooth = config_.n_control > 1
                    ? (control_points.slice(0, 1) - control_points.slice(0, 0, -1)).pow(2).mean()
                    : torch::zeros({}, control_points.options());
  const auto magnitude = control_points.pow(2).mean();
  const auto bias_mean = layer_bias.mean();
  const auto bias_var = layer_bias.numel() > 1 ? layer_bias.var(/*unbiased=*/true) : torch::zeros({});
  return 0.1 * smooth + 0.1 * magnitude + 0.05 * (0.75 * bias_mean.pow(2) + 0.25 * (bias_var - 0.02).pow(2));
}

std::vector<int64_t> AlphaImpl::shape() const {
  if (config_.variant == AlphaVariant::k1D) return {config_.n_layer};
  return {config_.n_layer, config_.n_embd};
}

}  // namespace superpose

// Blending coefficients α: a clamped B-spline over the layers, 1D (one α per
// layer) or 2D (one α per layer and hidden dimension).
#pragma once

#include <cstdint>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace superpose {

enum class AlphaVariant { k1D, k2D };

// "1d" / "2d".
std::string variant_name(AlphaVariant variant);
// Throws Error(where, ...) for anything but "1d" or "2d".
AlphaVariant parse_variant(const std::string& name, const std::string& where);

struct AlphaConfig {
  AlphaVariant variant = AlphaVariant::k1D;
  int64_t n_layer = 12;    // L: one α per block
  int64_t n_embd = 768;    // C: the 2D variant's second dimension
  int64_t n_control = 16;  // K control points
  int64_t degree = 3;      // spline degree k (3 = cubic)
};

// Throws Error(where, ...) unless L >= 1, C >= 1, 0 <= k <= 10 and K >= k + 1.
void validate(const AlphaConfig& config, const std::string& where);

// (n_points, K) float64 B-spline basis on the clamped uniform knot vector
// [0]*k ++ linspace(0, 1, K - k + 1) ++ [1]*k, evaluated at
// linspace(0, 1, n_points). Right end closed: at x = 1 the last basis
// function is 1, as SciPy's BSpline evaluates it. Rows sum to 1.
torch::Tensor bspline_basis(int64_t n_control, int64_t degree, int64_t n_points);

// Rounds to one decimal in the forward pass; the gradient passes straight
// through (d out / d a = 1).
torch::Tensor quantize_straight_through(const torch::Tensor& a);

// The learned α (SPEC §2). Parameters (float32):
//   1D: control_points (K) init U[0.45, 0.55]; layer_bias (L) init 0;
//       α = clamp(basis · c + 0.1 b, 0, 1)                     -> (L)
//   2D: control_points (K,C) init N(0, 0.1²); layer_bias (L,C) init N(0, 1);
//       α = quantize(sigmoid(basis · C + 0.01 b) · 0.9 + 0.1)  -> (L,C)
// Initialisation draws from LibTorch's default generator (seed it with
// torch::manual_seed for repeatable runs).
class AlphaImpl : public torch::nn::Module {
 public:
  explicit AlphaImpl(const AlphaConfig& config);

  // The learned α: (L) for 1D, (L,C) for 2D, float32, differentiable.
  torch::Tensor forward();
  // The 2D regulariser of SPEC §2 (a scalar); 0 for 1D.
  torch::Tensor regularizer();
  // α's shape: {L} or {L, C}.
  std::vector<int64_t> shape() const;

  const AlphaConfig& config() const { return config_; }

  torch::Tensor control_points;  // (K) or (K,C)
  torch::Tensor layer_bias;      // (L) or (L,C)
  torch::Tensor basis;           // buffer (L,K), float32

 private:
  AlphaConfig config_;
};
TORCH_MODULE(Alpha);

}  // namespace superpose

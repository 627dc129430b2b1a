// t-SNE on the GPU or the CPU: perplexity-calibrated affinities over k nearest
// neighbours, an exact gradient for small N and an FFT-accelerated one for
// large N, run in steps so that a caller can watch it converge.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <torch/types.h>

namespace superpose {

enum class TsneGradient { kAuto, kExact, kFft };

struct TsneOptions {
  int64_t dims = 2;                    // 2 or 3
  double perplexity = 30.0;            // must be below N
  int64_t iterations = 1000;           // total, exaggeration phase included
  double learning_rate = 0.0;          // 0: max(N / early_exaggeration / 4, 50), as scikit-learn's "auto"
  double early_exaggeration = 12.0;
  int64_t exaggeration_iterations = 250;
  double initial_momentum = 0.5;       // during the exaggeration phase
  double final_momentum = 0.8;
  double min_gain = 0.01;
  bool pca_init = true;                // else N(0, 1e-4²) from `seed`
  uint64_t seed = 0;
  // Inputs wider than this are first reduced to it by PCA (0: never), as
  // most t-SNE tools do: the neighbours hardly change, the kNN gets cheaper.
  int64_t pca_dims = 50;
  // Neighbours per point for the affinities: 0 = min(N-1, 3·perplexity + 1).
  int64_t neighbors = 0;
  TsneGradient gradient = TsneGradient::kAuto;
  int64_t exact_max_points = 5000;     // kAuto: exact up to here, FFT above
  // kAuto on a CUDA device where the build has the fused kernels
  // (tsne_has_cuda_kernels()): the fused exact step costs about as much as
  // an FFT step up to here, and it is exact.
  int64_t exact_max_points_cuda = 40000;
  // Run the exact gradient on CUDA through the fused kernels where the build
  // has them (two launches per step instead of dozens of LibTorch
  // operations); false keeps the LibTorch path, the reference.
  bool fused_cuda = true;
  // FFT gradient: the most interpolation grid cells per embedding axis
  // (0: 1024 in 2D, 160 in 3D). Cells are 0.25 units wide (the kernel's
  // width is 1) until the layout outgrows the cap; then they widen and the
  // gradient gets coarser.
  int64_t grid = 0;
  torch::Device device = torch::kCPU;
};

// One t-SNE run. Construction computes the affinities and the initial
// layout; step() advances the optimisation; embedding() may be read between
// steps. Not thread-safe: one thread drives a Tsne (the app's worker does),
// others read the embeddings it copies out.
class Tsne {
 public:
  // `data` (N,D), any float dtype and device; it is copied to options.device.
  // Throws Error (one line, naming the option) for N < 3, non-finite data,
  // perplexity outside (0, N-1), dims other than 2 or 3, or non-positive
  // iteration counts and rates.
  Tsne(const torch::Tensor& data, TsneOptions options);

  // Runs up to `iterations` more steps (never beyond options.iterations);
  // returns the number run. `on_step(iteration)` is called after each step
  // and may return false to stop early.
  int64_t step(int64_t iterations, const std::function<bool(int64_t)>& on_step = {});
  bool done() const { return iteration_ >= options_.iterations; }
  int64_t iteration() const { return iteration_; }

  // (N,dims) float32 on the CPU, a copy of the current layout.
  torch::Tensor embedding() const;
  // KL(P || Q) of the current layout without exaggeration: exact (O(N²),
  // in blocks) with the exact gradient, else with Z from the FFT.
  double kl_divergence() const;

  // The symmetric joint affinities P (N,N) as a sparse COO tensor on the
  // device, summing to 1; for inspection and tests.
  const torch::Tensor& affinities() const { return p_; }
  // The per-point precisions β_i = 1/(2σ_i²) found by the binary search (N), float64.
  const torch::Tensor& betas() const { return betas_; }
  // The gradient of KL(P || Q) at `y` (N,dims) with P scaled by
  // `exaggeration`, by the method in use or the one named; for tests.
  torch::Tensor gradient(const torch::Tensor& y, double exaggeration, TsneGradient method) const;
  TsneGradient method() const { return method_; }
  // Whether steps run through the fused CUDA kernels.
  bool fused() const { return fused_; }
  const TsneOptions& options() const { return options_; }

 private:
  TsneOptions options_;
  TsneGradient method_;
  int64_t n_ = 0;
  torch::Tensor p_;          // sparse (N,N) float32, coalesced
  torch::Tensor rows_, cols_, vals_;  // its entries (E) int64, int64, float32
  torch::Tensor betas_;      // (N) float64
  torch::Tensor y_;          // (N,dims) float32
  torch::Tensor velocity_;   // (N,dims)
  torch::Tensor gains_;      // (N,dims)
  int64_t iteration_ = 0;
  double learning_rate_ = 0;
  // The fused CUDA path: P's row offsets (N+1), the layout being written,
  // and scratch for the repulsion and the per-row Z.
  bool fused_ = false;
  torch::Tensor row_ptr_, y_next_, repulsion_, z_rows_;
};

// Whether this build has the fused CUDA t-SNE kernels (LibTorch with CUDA
// and nvcc at build time).
bool tsne_has_cuda_kernels();

// Conditional affinities p_{j|i} ∝ exp(-β_i d²_ij) over each row's
// neighbours, with β_i found by binary search so that the row's perplexity
// 2^H(P_i) equals `perplexity` (to 1e-5 relative, or the search's bounds).
// `sq_distances` (N,k) are squared distances to the k neighbours (self
// excluded). Returns (probabilities (N,k) float64 rows summing to 1, β (N)).
std::pair<torch::Tensor, torch::Tensor> conditional_affinities(const torch::Tensor& sq_distances, double perplexity);

// Trustworthiness (Venna & Kaski) of an embedding for k neighbours, in
// [0, 1]: 1 when no point's k nearest neighbours in the embedding are
// strangers in the input. O(N²) memory in blocks; CPU or CUDA.
double trustworthiness(const torch::Tensor& input, const torch::Tensor& embedding, int64_t k);

// Share of each point's k nearest input neighbours that are among its k
// nearest embedding neighbours, averaged over points, in [0, 1].
double knn_preservation(const torch::Tensor& input, const torch::Tensor& embedding, int64_t k);

}  // namespace superpose

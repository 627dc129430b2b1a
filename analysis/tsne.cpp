// t-SNE: kNN affinities, exact and FFT (particle-mesh) gradients, and the
// optimiser of van der Maaten's reference implementation (momentum, gains,
// early exaggeration), all in LibTorch so the same code runs on CPU and CUDA.
#include "analysis/tsne.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#ifdef SUPERPOSE_HAVE_CUDA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "analysis/tsne_cuda.h"
#endif

#include "analysis/knn.h"
#include "analysis/pca.h"
#include "model/errors.h"

namespace superpose {
namespace {

constexpr int64_t kBlock = 1024;  // rows per block of the O(N²) passes

// Rows of a (N,k+1) neighbour list with each row's own index removed (or
// its last entry, when duplicates pushed the row itself out): (N,k).
std::pair<torch::Tensor, torch::Tensor> drop_self(const KnnResult& knn) {
  const int64_t n = knn.indices.size(0), k1 = knn.indices.size(1);
  const auto rows = torch::arange(n, knn.indices.options()).unsqueeze(1);
  auto self = knn.indices.eq(rows);                                         // (N,k+1)
  const auto missing = self.any(1).logical_not();                           // (N)
  self.select(1, k1 - 1).logical_or_(missing);
  const auto keep = self.logical_not();
  return {knn.indices.masked_select(keep).view({n, k1 - 1}), knn.distances.masked_select(keep).view({n, k1 - 1})};
}

// Sparse-edge sums: for each edge (i, j, p), p·w·(y_i − y_j) with
// w = 1/(1 + |y_i − y_j|²), added into row i. (E) -> (N,dims)
torch::Tensor attraction(const torch::Tensor& y, const torch::Tensor& rows, const torch::Tensor& cols,
                         const torch::Tensor& vals) {
  const auto diff = y.index_select(0, rows) - y.index_select(0, cols);  // (E,dims)
  const auto w = vals / (1 + diff.pow(2).sum(1));                       // (E)
  return torch::zeros_like(y).index_add_(0, rows, diff * w.unsqueeze(1));
}

// The repulsive sums of the exact gradient over all pairs, in row blocks:
// R_i = Σ_j w_ij² (y_i − y_j) = y_i Σ_j w_ij² − Σ_j w_ij² y_j and
// Z = Σ_{i≠j} w_ij, with w = 1/(1 + |y_i − y_j|²). Distances come from one
// matrix product per block; Z accumulates in float64.
std::pair<torch::Tensor, double> exact_repulsion(const torch::Tensor& y) {
  const int64_t n = y.size(0);
  const auto long_options = y.options().dtype(torch::kLong);
  const auto norms = y.pow(2).sum(1);  // (N)
  auto r = torch::empty_like(y);
  double z = 0;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t b = std::min(kBlock, n - start);
    const auto yb = y.narrow(0, start, b);                                                          // (b,dims)
    const auto d2 = (norms.narrow(0, start, b).unsqueeze(1) + norms - 2 * torch::matmul(yb, y.t())).clamp_min(0);  // (b,N)
    auto w = 1 / (1 + d2);
    // No self-pairs: row i of the block is point start + i.
    w.index_put_({torch::arange(b, long_options), torch::arange(start, start + b, long_options)}, 0);
    z += w.sum(torch::kFloat64).item<double>();
    const auto w2 = w.pow(2);
    r.narrow(0, start, b).copy_(yb * w2.sum(1, true) - torch::matmul(w2, y));
  }
  return {r, z};
}

// Interpolation weights of points onto a regular grid (cloud-in-cell): for
// each point its 2^dims surrounding nodes (flat indices into the grid) and
// their weights. y (N,dims) in grid units, already inside [0, g-1).
std::pair<torch::Tensor, torch::Tensor> cic_weights(const torch::Tensor& u, int64_t g) {
  const int64_t n = u.size(0), dims = u.size(1);
  const auto base = u.floor().clamp(0, static_cast<double>(g - 2));  // (N,dims)
  const auto frac = u - base;                                         // (N,dims) in [0, 1]
  const auto base_i = base.to(torch::kLong);
  const int64_t corners = int64_t{1} << dims;
  auto index = torch::zeros({n, corners}, base_i.options());
  auto weight = torch::ones({n, corners}, u.options());
  for (int64_t c = 0; c < corners; ++c) {
    for (int64_t d = 0; d < dims; ++d) {
      const bool upper = (c >> d) & 1;
      const auto coord = base_i.select(1, d) + (upper ? 1 : 0);
      index.select(1, c).add_(coord * static_cast<int64_t>(std::pow(g, dims - 1 - d)));
      weight.select(1, c).mul_(upper ? frac.select(1, d) : 1 - frac.select(1, d));
    }
  }
  return {index, weight};
}

// Grid cells per axis for a layout spanning `span` units: cells of at most
// kCell units (the kernel's width is 1), capped at `max_cells`.
constexpr double kCell = 0.25;
// The count is rounded up to a multiple of 8, 32 or 128 (as it grows), so a
// layout that expands step by step reuses a few FFT sizes: every new size
// costs a cuFFT plan (about 0.2 s), and a plan per step dominated the run.
int64_t grid_for(double span, int64_t max_cells) {
  const auto needed = static_cast<int64_t>(std::ceil(span / kCell)) + 1;
  const int64_t step = needed <= 64 ? 8 : needed <= 256 ? 32 : 128;
  return std::clamp<int64_t>((needed + step - 1) / step * step, 8, max_cells);
}

// Σ_j K(y_i, y_j)·q_j for the kernels K1 = 1/(1+r²) and K2 = K1² and the
// charges q = [1, y_1..y_dims], by spreading charges on a grid, convolving
// with the kernel by FFT (zero-padded: no wrap-around) and interpolating
// back. Returns (S1 (N), S2 (N,1+dims)), each point's own charge excluded.
std::pair<torch::Tensor, torch::Tensor> fft_sums(const torch::Tensor& y, int64_t max_cells) {
  const int64_t n = y.size(0), dims = y.size(1);
  const auto lo = std::get<0>(y.min(0)), hi = std::get<0>(y.max(0));
  const double span = std::max((hi - lo).max().item<double>(), 1e-6);
  const int64_t grid = grid_for(span, max_cells);
  const double h = span / static_cast<double>(grid - 1);
  const auto u = (y - lo) / h;  // (N,dims) grid units in [0, grid-1]
  const auto [index, weight] = cic_weights(u, grid);

  // Charges per point: 1 and its coordinates. (N,1+dims)
  const auto charges = torch::cat({torch::ones({n, 1}, y.options()), y}, 1);
  int64_t cells = 1;
  for (int64_t d = 0; d < dims; ++d) cells *= grid;
  const int64_t q = 1 + dims;
  // Spread: grid (cells, q)
  const auto contrib = weight.unsqueeze(2) * charges.unsqueeze(1);  // (N,corners,q)
  auto mesh = torch::zeros({cells, q}, y.options()).index_add_(0, index.reshape(-1), contrib.reshape({-1, q}));

  // Kernels on the padded grid of 2·grid per axis, indexed by offset with
  // wrap-around (offset −k at 2g − k), so circular convolution = linear.
  const int64_t pad = 2 * grid;
  std::vector<int64_t> shape(static_cast<size_t>(dims), pad);
  auto offsets = torch::arange(pad, y.options());
  offsets = torch::where(offsets < grid, offsets, offsets - pad) * h;  // (pad) signed distances
  torch::Tensor r2 = torch::zeros(shape, y.options());
  for (int64_t d = 0; d < dims; ++d) {
    std::vector<int64_t> view(static_cast<size_t>(dims), 1);
    view[static_cast<size_t>(d)] = pad;
    r2 = r2 + offsets.pow(2).view(view);
  }
  const auto k1 = 1 / (1 + r2);
  const auto k2 = k1.pow(2);

  std::vector<int64_t> fft_dims(static_cast<size_t>(dims));
  for (int64_t d = 0; d < dims; ++d) fft_dims[static_cast<size_t>(d)] = d + 1;  // after the charge axis
  std::vector<int64_t> grid_shape{q};
  for (int64_t d = 0; d < dims; ++d) grid_shape.push_back(grid);
  const auto m = mesh.t().reshape(grid_shape);  // (q, g, g[, g])
  std::vector<int64_t> sizes(shape);
  const auto m_hat = torch::fft_rfftn(m, sizes, fft_dims);  // padded to 2g per axis
  std::vector<int64_t> kernel_dims(static_cast<size_t>(dims));
  for (int64_t d = 0; d < dims; ++d) kernel_dims[static_cast<size_t>(d)] = d;
  const auto k1_hat = torch::fft_rfftn(k1, c10::nullopt, kernel_dims);
  const auto k2_hat = torch::fft_rfftn(k2, c10::nullopt, kernel_dims);
  // Potential of charge 0 under K1; of every charge under K2.
  auto pot1 = torch::fft_irfftn(m_hat.select(0, 0) * k1_hat, sizes, kernel_dims);  // (2g,..)
  auto pot2 = torch::fft_irfftn(m_hat * k2_hat.unsqueeze(0), sizes, fft_dims);    // (q,2g,..)
  for (int64_t d = 0; d < dims; ++d) {
    pot1 = pot1.narrow(d, 0, grid);
    pot2 = pot2.narrow(d + 1, 0, grid);
  }
  const auto flat1 = pot1.reshape({cells});
  const auto flat2 = pot2.reshape({q, cells}).t();  // (cells,q)
  // Gather with the same weights.
  auto s1 = (flat1.index_select(0, index.reshape(-1)).view(index.sizes()) * weight).sum(1);  // (N)
  auto s2 = (flat2.index_select(0, index.reshape(-1)).view({n, -1, q}) * weight.unsqueeze(2)).sum(1);  // (N,q)
  // Each point's interaction with itself through the grid is not K(0) = 1
  // but Σ_ab w_a w_b K(node_a − node_b) over its own corners: remove exactly that.
  // Σ_ab w_a w_b K(node_a − node_b) = wᵀ K w with K the corners' (2^dims)²
  // kernel matrix; corners a and c differ by 0 or 1 cell per axis.
  const int64_t corners = index.size(1);
  std::vector<float> k1_corners(static_cast<size_t>(corners * corners)), k2_corners(k1_corners.size());
  for (int64_t a = 0; a < corners; ++a) {
    for (int64_t c = 0; c < corners; ++c) {
      double dist2 = 0;
      for (int64_t d = 0; d < dims; ++d) dist2 += (((a >> d) & 1) != ((c >> d) & 1)) ? h * h : 0.0;
      k1_corners[static_cast<size_t>(a * corners + c)] = static_cast<float>(1 / (1 + dist2));
      k2_corners[static_cast<size_t>(a * corners + c)] = static_cast<float>(1 / ((1 + dist2) * (1 + dist2)));
    }
  }
  const auto corner_kernels =
      torch::cat({torch::tensor(k1_corners), torch::tensor(k2_corners)}).view({2, corners, corners}).to(y.device());
  const auto self = (torch::matmul(weight.unsqueeze(0), corner_kernels) * weight.unsqueeze(0)).sum(2);  // (2,N)
  const auto self1 = self.select(0, 0), self2 = self.select(0, 1);
  s1 = s1 - self1;
  s2 = s2 - self2.unsqueeze(1) * charges;
  return {s1, s2};
}

void check_positive(const char* option, double value) {
  if (!(value > 0) || !std::isfinite(value)) throw Error(option, "must be a positive number, got " + std::to_string(value));
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> conditional_affinities(const torch::Tensor& sq_distances, double perplexity) {
  TORCH_CHECK(sq_distances.dim() == 2, "conditional_affinities: expected (N,k) distances, got ", sq_distances.sizes());
  const auto d = sq_distances.to(torch::kFloat64);
  // Shift each row by its smallest distance: the probabilities do not change
  // and exp() cannot underflow to an all-zero row.
  const auto shifted = d - std::get<0>(d.min(1, true));  // (N,k)
  const double target = std::log(perplexity);             // entropy in nats
  const int64_t n = d.size(0);
  auto beta = torch::ones({n}, d.options());
  auto lo = torch::zeros({n}, d.options());
  auto hi = torch::full({n}, INFINITY, d.options());
  torch::Tensor p;
  for (int step = 0; step < 200; ++step) {
    p = torch::exp(-shifted * beta.unsqueeze(1));  // (N,k)
    const auto sum = p.sum(1);
    const auto entropy = torch::log(sum) + beta * (shifted * p).sum(1) / sum;  // H of the normalised row
    const auto error = entropy - target;
    if (error.abs().max().item<double>() < 1e-7) break;
    // Entropy falls as β grows: too high → raise β.
    const auto up = error > 0;
    lo = torch::where(up, beta, lo);
    hi = torch::where(up, hi, beta);
    beta = torch::where(hi.isinf(), beta * 2, (lo + hi) / 2);
  }
  p = torch::exp(-shifted * beta.unsqueeze(1));
  return {p / p.sum(1, true), beta};
}

Tsne::Tsne(const torch::Tensor& data, TsneOptions options) : options_(options) {
  if (data.dim() != 2) throw Error("tsne", "expected a matrix (points, features), got " + std::to_string(data.dim()) + " dimensions");
  n_ = data.size(0);
  if (n_ < 3) throw Error("tsne", "needs at least 3 points, got " + std::to_string(n_));
  if (options_.dims != 2 && options_.dims != 3) throw Error("--dims", "must be 2 or 3, got " + std::to_string(options_.dims));
  if (!(options_.perplexity > 0) || options_.perplexity >= static_cast<double>(n_ - 1)) {
    throw Error("--perplexity", "must be in (0, " + std::to_string(n_ - 1) + ") for " + std::to_string(n_) +
                                    " points, got " + std::to_string(options_.perplexity));
  }
  if (options_.iterations < 1) throw Error("--iterations", "must be at least 1, got " + std::to_string(options_.iterations));
  check_positive("--early-exaggeration", options_.early_exaggeration);
  if (options_.learning_rate != 0) check_positive("--learning-rate", options_.learning_rate);
  torch::NoGradGuard no_grad;
  auto x = data.to(options_.device, torch::kFloat32);
  if (!torch::isfinite(x).all().item<bool>()) throw Error("tsne", "the data hold a NaN or infinite value");

  if (options_.pca_dims > 0 && x.size(1) > options_.pca_dims) {
    x = fit_pca(x, std::min(options_.pca_dims, n_)).project(x);
  }
  method_ = options_.gradient;
  const bool fusable = x.is_cuda() && options_.fused_cuda && tsne_has_cuda_kernels();
  if (method_ == TsneGradient::kAuto) {
    const int64_t exact_limit = fusable ? options_.exact_max_points_cuda : options_.exact_max_points;
    method_ = n_ <= exact_limit ? TsneGradient::kExact : TsneGradient::kFft;
  }
  if (options_.grid == 0) options_.grid = options_.dims == 2 ? 1024 : 160;

  // Affinities over k neighbours (self excluded).
  int64_t k = options_.neighbors > 0 ? options_.neighbors
                                     : static_cast<int64_t>(std::floor(3 * options_.perplexity + 1));
  k = std::min(k, n_ - 1);
  const auto [neighbours, sq_distances] = drop_self(knn_search(x, x, k + 1));
  auto [conditional, betas] = conditional_affinities(sq_distances, options_.perplexity);
  betas_ = betas;
  const auto rows = torch::arange(n_, neighbours.options()).unsqueeze(1).expand({n_, k}).reshape(-1);
  const auto cols = neighbours.reshape(-1);
  // P = (P_cond + P_condᵀ) / 2N, assembled as a sparse matrix.
  auto indices = torch::stack({torch::cat({rows, cols}), torch::cat({cols, rows})});
  auto values = torch::cat({conditional.reshape(-1), conditional.reshape(-1)});
  auto p = torch::sparse_coo_tensor(indices, values, {n_, n_}).coalesce();
  const auto total = p.values().sum();
  p = torch::sparse_coo_tensor(p.indices(), (p.values() / total).to(torch::kFloat32), {n_, n_}).coalesce();
  p_ = p;
  rows_ = p.indices()[0].contiguous();
  cols_ = p.indices()[1].contiguous();
  vals_ = p.values().contiguous();

  // Initial layout: the first principal components scaled to std 1e-4 (as
  // scikit-learn does), or seeded Gaussian noise of that scale.
  if (options_.pca_init && x.size(1) >= options_.dims) {
    y_ = fit_pca(x, options_.dims).project(x);
    y_ = y_ / y_.select(1, 0).std() * 1e-4;
  } else {
    auto generator = at::detail::createCPUGenerator(options_.seed);
    y_ = (torch::randn({n_, options_.dims}, generator, torch::kFloat32) * 1e-4).to(options_.device);
  }
  y_ = y_.contiguous();
  velocity_ = torch::zeros_like(y_);
  gains_ = torch::ones_like(y_);
  learning_rate_ = options_.learning_rate > 0
                       ? options_.learning_rate
                       : std::max(static_cast<double>(n_) / options_.early_exaggeration / 4.0, 50.0);
  fused_ = fusable && method_ == TsneGradient::kExact;
  if (fused_) {
    // P's entries are sorted by row (coalesced): row i spans row_ptr[i]..row_ptr[i+1].
    row_ptr_ = torch::cat({torch::zeros({1}, rows_.options()), torch::bincount(rows_, {}, n_).cumsum(0)});
    y_next_ = torch::empty_like(y_);
    repulsion_ = torch::empty_like(y_);
    z_rows_ = torch::empty({n_}, y_.options());
  }
}

bool tsne_has_cuda_kernels() {
#ifdef SUPERPOSE_HAVE_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

torch::Tensor Tsne::gradient(const torch::Tensor& y, double exaggeration, TsneGradient method) const {
  torch::NoGradGuard no_grad;
  const auto attract = attraction(y, rows_, cols_, vals_ * exaggeration);  // (N,dims)
  if (method == TsneGradient::kExact) {
#ifdef SUPERPOSE_HAVE_CUDA_KERNELS
    if (y.is_cuda() && options_.fused_cuda) {
      const c10::cuda::CUDAGuard guard(y.device());
      const auto yc = y.to(torch::kFloat32).contiguous();
      auto repel = torch::empty_like(yc);
      auto z_rows = torch::empty({yc.size(0)}, yc.options());
      tsne_cuda::exact_repulsion(yc.data_ptr<float>(), yc.size(0), static_cast<int>(yc.size(1)), repel.data_ptr<float>(),
                                 z_rows.data_ptr<float>(), c10::cuda::getCurrentCUDAStream(y.device().index()).stream());
      return 4 * (attract - repel / z_rows.sum(torch::kFloat64).to(torch::kFloat32));
    }
#endif
    const auto [repel, z] = exact_repulsion(y);
    return 4 * (attract - repel / z);
  }
  const auto [s1, s2] = fft_sums(y, options_.grid);  // self-terms removed
  const double z = s1.sum(torch::kFloat64).item<double>();
  const auto own2 = s2.select(1, 0);                                  // Σ_{j≠i} w²
  const auto moment = s2.narrow(1, 1, y.size(1));                     // Σ_{j≠i} w² y_j
  const auto repel = y * own2.unsqueeze(1) - moment;                  // Σ_j w² (y_i − y_j)
  return 4 * (attract - repel / z);
}

int64_t Tsne::step(int64_t iterations, const std::function<bool(int64_t)>& on_step) {
  torch::NoGradGuard no_grad;
  int64_t run = 0;
  while (run < iterations && iteration_ < options_.iterations) {
    const bool early = iteration_ < options_.exaggeration_iterations;
    const double exaggeration = early ? options_.early_exaggeration : 1.0;
    const double momentum = early ? options_.initial_momentum : options_.final_momentum;
    if (fused_) {
#ifdef SUPERPOSE_HAVE_CUDA_KERNELS
      const c10::cuda::CUDAGuard guard(y_.device());
      tsne_cuda::ExactStep s;
      s.n = n_;
      s.dims = static_cast<int>(options_.dims);
      s.y = y_.data_ptr<float>();
      s.y_next = y_next_.data_ptr<float>();
      s.velocity = velocity_.data_ptr<float>();
      s.gains = gains_.data_ptr<float>();
      s.row_ptr = row_ptr_.data_ptr<int64_t>();
      s.cols = cols_.data_ptr<int64_t>();
      s.vals = vals_.data_ptr<float>();
      s.repulsion = repulsion_.data_ptr<float>();
      s.z_rows = z_rows_.data_ptr<float>();
      s.exaggeration = static_cast<float>(exaggeration);
      s.momentum = static_cast<float>(momentum);
      s.learning_rate = static_cast<float>(learning_rate_);
      s.min_gain = static_cast<float>(options_.min_gain);
      s.stream = c10::cuda::getCurrentCUDAStream(y_.device().index()).stream();
      tsne_cuda::exact_step(s);
      std::swap(y_, y_next_);
#endif
      ++iteration_;
      ++run;
      if (on_step && !on_step(iteration_)) break;
      continue;
    }
    auto grad = gradient(y_, exaggeration, method_);
    // Gains grow where the gradient changed sign against the last update.
    const auto flipped = (velocity_ * grad) < 0;
    gains_ = torch::where(flipped, gains_ + 0.2, gains_ * 0.8).clamp_min(options_.min_gain);
    velocity_ = momentum * velocity_ - learning_rate_ * (gains_ * grad);
    y_ += velocity_;
    ++iteration_;
    ++run;
    if (on_step && !on_step(iteration_)) break;
  }
  return run;
}

torch::Tensor Tsne::embedding() const { return y_.to(torch::kCPU).clone(); }

double Tsne::kl_divergence() const {
  torch::NoGradGuard no_grad;
  double z;
  if (method_ == TsneGradient::kExact) {
    z = exact_repulsion(y_).second;
  } else {
    z = fft_sums(y_, options_.grid).first.sum(torch::kFloat64).item<double>();
  }
  // KL = Σ p log p − Σ p log w + log Z, over P's entries (Σ p = 1).
  const auto p = vals_.to(torch::kFloat64).clamp_min(1e-300);
  const auto diff = y_.index_select(0, rows_) - y_.index_select(0, cols_);
  const auto log_w = -torch::log1p(diff.pow(2).sum(1).to(torch::kFloat64));
  return ((p * (p.log() - log_w)).sum().item<double>()) + std::log(z);
}

namespace {

// Rank of every point j in i's input neighbourhood (0 = nearest other point)
// for the embedding's k nearest neighbours of each i; (N,k) int64.
torch::Tensor input_ranks_of_embedding_neighbours(const torch::Tensor& input, const torch::Tensor& embedding, int64_t k) {
  const auto x = input.to(torch::kFloat32);
  const auto e = embedding.to(x.device(), torch::kFloat32);
  const int64_t n = x.size(0);
  const auto [emb_nn, emb_d] = drop_self(knn_search(e, e, k + 1));
  auto ranks = torch::empty({n, k}, emb_nn.options());
  const auto x_norm = x.pow(2).sum(1);
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t b = std::min(kBlock, n - start);
    const auto xb = x.narrow(0, start, b);
    auto d = (xb.pow(2).sum(1, true) - 2 * torch::matmul(xb, x.t()) + x_norm).clamp_min(0);  // (b,N)
    // Self first: its distance is forced below every other.
    d.index_put_({torch::arange(b, emb_nn.options()), torch::arange(start, start + b, emb_nn.options())}, -1.0);
    const auto order = std::get<1>(d.sort(1));                // (b,N) nearest first
    auto rank = torch::empty_like(order);
    rank.scatter_(1, order, torch::arange(n, order.options()).expand({b, n}).contiguous());  // rank[i][j]
    ranks.narrow(0, start, b).copy_(rank.gather(1, emb_nn.narrow(0, start, b)) - 1);        // self has rank 0
  }
  return ranks;
}

void check_same_rows(const torch::Tensor& input, const torch::Tensor& embedding, int64_t k) {
  TORCH_CHECK(input.dim() == 2 && embedding.dim() == 2 && input.size(0) == embedding.size(0),
              "expected (N,D) input and (N,d) embedding, got ", input.sizes(), " and ", embedding.sizes());
  if (k < 1 || 2 * k >= input.size(0)) {
    throw Error("k", "must be in [1, N/2) for N = " + std::to_string(input.size(0)) + ", got " + std::to_string(k));
  }
}

}  // namespace

double trustworthiness(const torch::Tensor& input, const torch::Tensor& embedding, int64_t k) {
  check_same_rows(input, embedding, k);
  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(input.size(0)), kk = static_cast<double>(k);
  // Ranks are 0-based here; the definition's are 1-based: penalty r − k for r > k.
  const auto ranks = input_ranks_of_embedding_neighbours(input, embedding, k).to(torch::kFloat64) + 1;
  const double penalty = (ranks - kk).clamp_min(0).sum().item<double>();
  return 1.0 - 2.0 / (n * kk * (2.0 * n - 3.0 * kk - 1.0)) * penalty;
}

double knn_preservation(const torch::Tensor& input, const torch::Tensor& embedding, int64_t k) {
  check_same_rows(input, embedding, k);
  torch::NoGradGuard no_grad;
  const auto ranks = input_ranks_of_embedding_neighbours(input, embedding, k);
  return ranks.lt(k).to(torch::kFloat64).mean().item<double>();
}

}  // namespace superpose

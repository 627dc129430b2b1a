// Temperature / top-k / top-p sampling with a portable random stream.
#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {

void validate(const SamplingOptions& o) {
  if (!(o.temperature >= 0.0) || !std::isfinite(o.temperature)) {
    throw Error("--temperature", "must be a finite number >= 0 (0 = greedy), got " + std::to_string(o.temperature));
  }
  if (o.top_k < 0) throw Error("--top-k", "must be >= 0 (0 = no limit), got " + std::to_string(o.top_k));
  if (!(o.top_p > 0.0 && o.top_p <= 1.0)) {
    throw Error("--top-p", "must be in (0, 1], got " + std::to_string(o.top_p));
  }
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) { validate(options); }

int64_t Sampler::sample(const torch::Tensor& logits) {
  TORCH_CHECK(logits.dim() == 1, "Sampler: expected (V) logits, got ", logits.sizes());
  auto cpu = logits.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double* z = cpu.data_ptr<double>();
  const int64_t V = cpu.numel();
  if (options_.temperature == 0.0) return std::max_element(z, z + V) - z;

  // Candidate ids, most likely first when a cut-off needs the order.
  std::vector<int64_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  auto more_likely = [z](int64_t a, int64_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
  if (options_.top_k > 0 && options_.top_k < V) {
    std::partial_sort(ids.begin(), ids.begin() + options_.top_k, ids.end(), more_likely);
    ids.resize(static_cast<size_t>(options_.top_k));
  } else if (options_.top_p < 1.0) {
    std::sort(ids.begin(), ids.end(), more_likely);
  }

  const double z_max = *std::max_element(z, z + V);
  std::vector<double> weight(ids.size());
  double total = 0.0;
  for (size_t i = 0; i < ids.size(); ++i) {
    weight[i] = std::exp((z[ids[i]] - z_max) / options_.temperature);
    total += weight[i];
  }
  if (options_.top_p < 1.0) {
    double cumulative = 0.0;
    size_t keep = 0;
    while (keep < weight.size()) {
      cumulative += weight[keep++] / total;
      if (cumulative >= options_.top_p) break;
    }
    weight.resize(keep);
    total = std::accumulate(weight.begin(), weight.end(), 0.0);
  }
  // u in [0, 1) from the top 53 bits: the same stream on every platform.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < weight.size(); ++i) {
    cumulative += weight[i];
    if (u < cumulative) return ids[i];
  }
  return ids[weight.size() - 1];
}

}  // namespace superpose

// KL divergences of next-token distributions, from log-softmax in float32.
#include "analysis/expert_affinity.h"

namespace superpose {

float fine_affinity(const torch::Tensor& superposed_logits, const torch::Tensor& base_logits,
                    const torch::Tensor& fine_logits) {
  const auto log_s = torch::log_softmax(superposed_logits.to(torch::kFloat32), -1);
  const auto log_b = torch::log_softmax(base_logits.to(torch::kFloat32), -1);
  const auto log_f = torch::log_softmax(fine_logits.to(torch::kFloat32), -1);
  const auto p_s = log_s.exp();
  // KL ≥ 0 in exact arithmetic; rounding can leave a tiny negative.
  const auto to_base = (p_s * (log_s - log_b)).sum().clamp_min(0.0);
  const auto to_fine = (p_s * (log_s - log_f)).sum().clamp_min(0.0);
  const auto both = torch::stack({to_base, to_fine}).to(torch::kCPU);
  const double kl_base = both[0].item<double>(), kl_fine = both[1].item<double>();
  const double total = kl_base + kl_fine;
  return total > 1e-12 ? static_cast<float>(kl_base / total) : 0.5f;
}

}  // namespace superpose

// fine_affinity against a double-precision reference, and its invariants:
// 0 at the base, 1 at the fine expert, 0.5 when the experts agree, and
// swapping the experts gives one minus the value.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "analysis/expert_affinity.h"

namespace superpose {
namespace {

// KL(p‖q) of logits, in double, one term at a time.
double kl(const torch::Tensor& p_logits, const torch::Tensor& q_logits) {
  const auto p = torch::log_softmax(p_logits.to(torch::kFloat64), 0);
  const auto q = torch::log_softmax(q_logits.to(torch::kFloat64), 0);
  double sum = 0.0;
  for (int64_t i = 0; i < p.size(0); ++i) {
    const double lp = p[i].item<double>(), lq = q[i].item<double>();
    sum += std::exp(lp) * (lp - lq);
  }
  return sum;
}

TEST(FineAffinity, MatchesTheDefinitionAndItsEnds) {
  torch::manual_seed(3);
  const int64_t vocab = 257;
  const auto base = torch::randn({vocab}) * 3.0;
  const auto fine = torch::randn({vocab}) * 3.0;
  EXPECT_EQ(fine_affinity(base, base, fine), 0.0f);
  EXPECT_EQ(fine_affinity(fine, base, fine), 1.0f);
  EXPECT_EQ(fine_affinity(base, base, base), 0.5f);
  for (const double w : {0.1, 0.5, 0.9}) {
    SCOPED_TRACE(w);
    const auto mixed = (1.0 - w) * base + w * fine;
    const double to_base = kl(mixed, base), to_fine = kl(mixed, fine);
    const float got = fine_affinity(mixed, base, fine);
    EXPECT_NEAR(got, to_base / (to_base + to_fine), 1e-5);  // float32 sums over 257 terms
    EXPECT_NEAR(got + fine_affinity(mixed, fine, base), 1.0, 1e-6);
    // bf16 logits give the same answer to bf16's precision.
    EXPECT_NEAR(fine_affinity(mixed.to(torch::kBFloat16), base.to(torch::kBFloat16), fine.to(torch::kBFloat16)), got,
                0.05);
  }
  // Closer to the fine expert the more of it is mixed in.
  EXPECT_LT(fine_affinity(0.8 * base + 0.2 * fine, base, fine), fine_affinity(0.2 * base + 0.8 * fine, base, fine));
}

}  // namespace
}  // namespace superpose

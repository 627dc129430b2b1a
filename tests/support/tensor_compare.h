// Test helpers: tensor comparison that reports the worst element, and error-message checks.
#pragma once

#include <cmath>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace superpose::testing {

// Passes when |actual - expected| <= atol everywhere; on failure names the
// worst element, its index and both values.
inline ::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected, double atol) {
  if (actual.sizes() != expected.sizes()) {
    std::ostringstream out;
    out << "shape " << actual.sizes() << " != expected " << expected.sizes();
    return ::testing::AssertionFailure() << out.str();
  }
  auto a = actual.to(torch::kCPU, torch::kFloat64).contiguous();
  auto e = expected.to(torch::kCPU, torch::kFloat64).contiguous();
  if (a.numel() == 0) return ::testing::AssertionSuccess();
  auto diff = (a - e).abs().flatten();
  const int64_t worst = diff.argmax().item<int64_t>();
  const double worst_diff = diff[worst].item<double>();
  if (std::isfinite(worst_diff) && worst_diff <= atol && !a.isnan().any().item<bool>()) {
    return ::testing::AssertionSuccess();
  }
  std::ostringstream out;
  out << "max |diff| " << worst_diff << " > " << atol << " at flat index " << worst << ": got "
      << a.flatten()[worst].item<double>() << ", expected " << e.flatten()[worst].item<double>();
  return ::testing::AssertionFailure() << out.str();
}

// EXPECT_THROW with the message checked: `statement` must throw ExceptionType
// whose what() contains every one of the given fragments.
#define SUPERPOSE_EXPECT_THROW_WITH(statement, ExceptionType, ...)                              \
  do {                                                                                          \
    bool superpose_thrown = false;                                                              \
    try {                                                                                       \
      statement;                                                                                \
    } catch (const ExceptionType& e) {                                                          \
      superpose_thrown = true;                                                                  \
      for (const std::string& fragment : std::initializer_list<std::string>{__VA_ARGS__}) {     \
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)                      \
            << "message '" << e.what() << "' lacks '" << fragment << "'";                       \
      }                                                                                         \
    }                                                                                           \
    EXPECT_TRUE(superpose_thrown) << #statement " did not throw " #ExceptionType;              \
  } while (0)

}  // namespace superpose::testing

// The CUDA path against the CPU path and the HF reference: F32 within 1e-4,
// BF16/F16 within their precision, cached generation identical. Skips (with
// the reason printed) where there is no CUDA device.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "model/generate.h"
#include "model/model_dir.h"
#include "model/safetensors.h"
#include "tests/support/tensor_compare.h"

namespace fs = std::filesystem;
using superpose::testing::all_close;

namespace superpose {
namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
    std::ifstream in(kFixtures / "reference/reference.json");
    reference_ = nlohmann::json::parse(in);
  }
  nlohmann::json reference_;
};

TEST_F(Cuda, F32MatchesTransformers) {
  auto loaded = load_model(kFixtures / "gpt2-tiny", torch::kCUDA, torch::kFloat32);
  torch::NoGradGuard no_grad;
  for (const auto& prompt : reference_["prompts"]) {
    const SafetensorsFile expected(kFixtures / "reference" / prompt["file"].get<std::string>());
    auto ids = torch::tensor(prompt["ids"].get<std::vector<int64_t>>(), torch::kLong).view({1, -1}).cuda();
    auto logits = loaded.model->forward(ids);
    EXPECT_TRUE(all_close(logits[0].cpu(), expected.load("logits"), 1e-4)) << prompt["prompt"];
  }
}

TEST_F(Cuda, HalfPrecisionStaysCloseToF32) {
  const auto& prompt = reference_["prompts"][0];
  const SafetensorsFile expected(kFixtures / "reference" / prompt["file"].get<std::string>());
  const auto reference_logits = expected.load("logits");
  const double scale = reference_logits.abs().max().item<double>();
  for (auto dtype : {torch::kBFloat16, torch::kFloat16}) {
    auto loaded = load_model(kFixtures / "gpt2-tiny", torch::kCUDA, dtype);
    torch::NoGradGuard no_grad;
    auto ids = torch::tensor(prompt["ids"].get<std::vector<int64_t>>(), torch::kLong).view({1, -1}).cuda();
    auto logits = loaded.model->forward(ids)[0].to(torch::kCPU, torch::kFloat32);
    // bf16 keeps 8 bits of mantissa: 5% of the logit range over 3 layers.
    EXPECT_TRUE(all_close(logits, reference_logits, (dtype == torch::kBFloat16 ? 0.05 : 0.01) * scale))
        << c10::toString(dtype);
  }
}

TEST_F(Cuda, CachedGreedyGenerationMatchesTransformers) {
  auto loaded = load_model(kFixtures / "gpt2-tiny", torch::kCUDA, torch::kFloat32);
  const auto& greedy = reference_["greedy"];
  GenerateOptions options;
  options.max_new_tokens = static_cast<int64_t>(greedy["new_ids"].size());
  Sampler sampler(SamplingOptions{0.0, 0, 1.0, 0});
  const auto result = generate(loaded.model, greedy["prompt_ids"].get<std::vector<int64_t>>(), options, sampler);
  EXPECT_EQ(result.tokens, greedy["new_ids"].get<std::vector<int64_t>>());
}

TEST_F(Cuda, SampledGenerationEqualsTheCpuWithTheSameSeed) {
  auto gpu = load_model(kFixtures / "gpt2-tiny", torch::kCUDA, torch::kFloat32);
  auto cpu = load_model(kFixtures / "gpt2-tiny");
  GenerateOptions options;
  options.max_new_tokens = 24;
  const SamplingOptions sampling{0.8, 40, 0.9, 11};
  Sampler a(sampling), b(sampling);
  const std::vector<int64_t> prompt = {464, 2068, 7586};
  EXPECT_EQ(generate(gpu.model, prompt, options, a).tokens, generate(cpu.model, prompt, options, b).tokens);
}

}  // namespace
}  // namespace superpose

// Evaluation on CUDA against the same evaluation on the CPU: F32 alike, bf16 close.
// Skips (with the reason printed) where there is no CUDA device.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "analysis/eval.h"
#include "model/superposition_io.h"

namespace fs = std::filesystem;

namespace superpose {
namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;

const std::vector<Document> kDocuments = {
    {"The cat sat on the mat and looked at the rain for a while.", 0, "en", ""},
    {"A dog barked twice.", 0, "en", ""},
    {"Le chat dort sur le tapis depuis ce matin.", 1, "fr", ""},
    {"Il pleut sur la ville.", 1, "fr", ""},
};

EvalReport evaluate_on(torch::Device device, torch::Dtype dtype) {
  auto experts = load_experts(kFixtures / "gpt2-tiny", kFixtures / "gpt2-tiny-fine", device, dtype);
  torch::manual_seed(5);  // the same random superposition on either device (built on the CPU, then moved)
  SuperposedModel superposition(experts.first.model, experts.second.model,
                                SuperposedConfig::defaults(AlphaVariant::k2D, experts.first.config));
  static const Tokenizer tokenizer = Tokenizer::from_dir(default_tokenizer_dir());
  EvalOptions options;
  options.seq_len = 6;
  options.batch_size = 4;
  return evaluate(experts.first, experts.second, superposition, kDocuments, tokenizer, options);
}

void expect_close(const EvalReport& got, const EvalReport& want, double rtol) {
  ASSERT_EQ(got.rows.size(), want.rows.size());
  for (size_t i = 0; i < want.rows.size(); ++i) {
    const auto &g = got.rows[i], &w = want.rows[i];
    SCOPED_TRACE(w.model + " / " + w.domain);
    EXPECT_EQ(g.model, w.model);
    EXPECT_EQ(g.tokens, w.tokens);
    for (auto [a, b] : {std::pair{g.ppl, w.ppl}, {g.ppl_lo, w.ppl_lo}, {g.ppl_hi, w.ppl_hi}, {g.cosine, w.cosine},
                        {g.jsd, w.jsd}, {g.mse, w.mse}}) {
      EXPECT_NEAR(a, b, rtol * std::abs(b) + 1e-7);
    }
    // A near-tie in the logits may flip one argmax.
    EXPECT_NEAR(g.acc, w.acc, 1.0 / static_cast<double>(w.tokens) + 1e-12);
  }
  ASSERT_EQ(got.layers.size(), want.layers.size());
  for (size_t i = 0; i < want.layers.size(); ++i) {
    const auto &g = got.layers[i], &w = want.layers[i];
    EXPECT_NEAR(g.l2_base, w.l2_base, rtol * std::abs(w.l2_base) + 1e-6);
    EXPECT_NEAR(g.l2_fine, w.l2_fine, rtol * std::abs(w.l2_fine) + 1e-6);
    EXPECT_NEAR(g.l2_base_fine, w.l2_base_fine, rtol * std::abs(w.l2_base_fine) + 1e-6);
  }
}

TEST(CudaEval, MatchesTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  const auto cpu = evaluate_on(torch::kCPU, torch::kFloat32);
  // F32 on the GPU, with cuDNN's TF32 convolutions (its default) off for the
  // autoencoders: only summation order differs from the CPU.
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(false);
  const auto gpu = evaluate_on(torch::kCUDA, torch::kFloat32);
  at::globalContext().setAllowTF32CuDNN(tf32);
  expect_close(gpu, cpu, 1e-4);
}

TEST(CudaEval, Bf16ModelsGiveFiniteNearbyScores) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  const auto cpu = evaluate_on(torch::kCPU, torch::kFloat32);
  const auto bf16 = evaluate_on(torch::kCUDA, torch::kBFloat16);
  ASSERT_EQ(bf16.rows.size(), cpu.rows.size());
  for (size_t i = 0; i < cpu.rows.size(); ++i) {
    const auto &g = bf16.rows[i], &w = cpu.rows[i];
    SCOPED_TRACE(w.model + " / " + w.domain);
    // bf16 logits carry about 3 significant digits; the metrics are float64 all the same.
    for (double v : {g.ppl, g.ppl_lo, g.ppl_hi, g.acc, g.jsd, g.cosine, g.mse}) EXPECT_TRUE(std::isfinite(v));
    EXPECT_NEAR(std::log(g.ppl), std::log(w.ppl), 0.2);
    EXPECT_EQ(g.tokens, w.tokens);
  }
}

}  // namespace
}  // namespace superpose

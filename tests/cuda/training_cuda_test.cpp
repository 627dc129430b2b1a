// Training on CUDA: the F32 loop gives the CPU's losses, bf16 autocast stays
// close and lowers the loss, and an interrupted bf16 run resumes exactly.
// Skips (with the reason printed) where there is no CUDA device.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "model/superposition_io.h"
#include "model/superposition_training.h"
#include "model/training.h"
#include "tests/support/interrupting_objective.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;

namespace superpose {
namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;

std::vector<Document> corpus() {
  std::vector<Document> docs;
  for (int repeat = 0; repeat < 3; ++repeat) {
    docs.push_back({"The cat sat on the mat and looked at the rain outside the window.", 0, "en", ""});
    docs.push_back({"A package manager installs, upgrades and removes software on the system.", 0, "en", ""});
    docs.push_back({"Le chat est assis sur le tapis et regarde la pluie par la fenêtre.", 1, "fr", ""});
    docs.push_back({"Un gestionnaire de paquets installe et supprime les logiciels du système.", 1, "fr", ""});
  }
  return docs;
}

// 12 steps of the 1D superposition objective (free chain) on `device`.
TrainingResult run(torch::Device device, bool bf16, const fs::path& out, int64_t interrupt_at = -1,
                   bool resume = false) {
  // The frozen experts live on `device`; the trainable parts are built on the
  // CPU from one seed (the same superposition on either device), then moved.
  auto experts = load_experts(kFixtures / "gpt2-tiny", kFixtures / "gpt2-tiny-fine", device, torch::kFloat32);
  torch::manual_seed(3);
  SuperposedModel model(experts.first.model, experts.second.model,
                        SuperposedConfig::defaults(AlphaVariant::k1D, experts.first.config));
  model->to_device(device, torch::kFloat32);
  SuperpositionTrainingSettings settings;
  settings.chain = Chain::kFree;
  settings.lr_alpha = 2e-2;
  settings.lr_autoencoders = 1e-2;
  settings.weights = SuperpositionLossWeights::defaults(AlphaVariant::k1D);
  SuperpositionObjective objective(model, kFixtures / "gpt2-tiny", kFixtures / "gpt2-tiny-fine", settings);

  static const Tokenizer tokenizer = Tokenizer::from_dir(default_tokenizer_dir());
  static const TokenDataset data = TokenDataset::build(corpus(), tokenizer, 12);
  TrainingOptions options;
  options.max_steps = 12;
  options.batch_size = 4;
  options.seed = 7;
  options.log_every = 1;
  options.progress = false;
  options.device = device;
  options.bf16 = bf16;
  if (interrupt_at < 0) return train(objective, data, nullptr, {"en", "fr"}, options, out, resume, {});
  testing::InterruptingObjective interrupting(objective, static_cast<int>(interrupt_at));
  return train(interrupting, data, nullptr, {"en", "fr"}, options, out, resume, {});
}

TEST(TrainingCuda, F32MatchesTheCpuAndBf16StaysCloseAndLearns) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  testing::TempDir tmp;
  const auto cpu = run(torch::kCPU, false, tmp / "cpu");
  const auto gpu = run(torch::Device(torch::kCUDA, 0), false, tmp / "gpu");
  const auto half = run(torch::Device(torch::kCUDA, 0), true, tmp / "bf16");
  ASSERT_EQ(gpu.losses.size(), cpu.losses.size());
  // F32 on either device: the same batches and masks, sums in another order.
  for (size_t i = 0; i < cpu.losses.size(); ++i) EXPECT_NEAR(gpu.losses[i], cpu.losses[i], 1e-3 * cpu.losses[i]) << i;
  // bf16 autocast: the first loss within 2% (8-bit mantissas), then it must learn as F32 does.
  EXPECT_NEAR(half.losses[0], cpu.losses[0], 0.02 * cpu.losses[0]);
  for (double loss : half.losses) EXPECT_TRUE(std::isfinite(loss));
  EXPECT_LT(half.losses[10] + half.losses[11], half.losses[0] + half.losses[1] - 3.5);
}

TEST(TrainingCuda, Bf16ResumeRepeatsTheUninterruptedLosses) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  testing::TempDir tmp;
  const torch::Device cuda(torch::kCUDA, 0);
  const auto whole = run(cuda, true, tmp / "whole");
  const auto part = run(cuda, true, tmp / "part", 5);
  ASSERT_TRUE(part.interrupted);
  const auto rest = run(cuda, true, tmp / "part", -1, true);
  ASSERT_EQ(rest.losses.size(), whole.losses.size() - 5);
  // Same kernels, same inputs, same order: equal on one GPU (1e-6 relative
  // leaves room for a kernel that accumulates with atomics).
  for (size_t i = 0; i < rest.losses.size(); ++i) {
    EXPECT_NEAR(rest.losses[i], whole.losses[5 + i], 1e-6 * whole.losses[5 + i]) << "step " << 6 + i;
  }
}

}  // namespace
}  // namespace superpose

// Weight-space merges computed on CUDA against the same merges on the CPU.
// Skips (with the reason printed) where there is no CUDA device.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "model/merge.h"
#include "model/model_dir.h"
#include "tests/support/model_edit.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace fs = std::filesystem;
using superpose::testing::all_close;

namespace superpose {
namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;

TEST(CudaMerge, EveryMethodMatchesTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  superpose::testing::TempDir temp;
  const fs::path fine_dir = temp / "fine";
  superpose::testing::write_perturbed_model(kFixtures / "gpt2-tiny", fine_dir);
  const auto base_cpu = load_model(kFixtures / "gpt2-tiny"), fine_cpu = load_model(fine_dir);
  const auto base_gpu = load_model(kFixtures / "gpt2-tiny", torch::kCUDA), fine_gpu = load_model(fine_dir, torch::kCUDA);
  for (const char* name : {"linear", "task-arithmetic", "alpha-hard", "slerp", "ties", "dare"}) {
    MergeOptions o;
    o.method = parse_merge_method(name);
    o.t = 0.35;
    o.density = 0.4;
    o.seed = 3;
    o.layer_alpha = {0.1, 0.6, 0.8};
    const auto cpu = merge_experts(base_cpu, fine_cpu, o), gpu = merge_experts(base_gpu, fine_gpu, o);
    ASSERT_EQ(cpu.size(), gpu.size());
    for (size_t i = 0; i < cpu.size(); ++i) {
      ASSERT_EQ(cpu[i].first, gpu[i].first);
      EXPECT_TRUE(gpu[i].second.device().is_cpu());
      // Elementwise F32 on either device: at most an ulp or two apart (fused multiply-adds).
      EXPECT_TRUE(all_close(gpu[i].second, cpu[i].second, 1e-6)) << name << " " << cpu[i].first;
    }
  }
}

}  // namespace
}  // namespace superpose

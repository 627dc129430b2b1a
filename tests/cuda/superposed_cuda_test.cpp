// The superposed model on CUDA: notebook parity in F32, cached generation
// identical to the CPU, the causality audit, bf16 close to F32. Skips where
// there is no CUDA device.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "model/audit.h"
#include "model/file_util.h"
#include "model/safetensors.h"
#include "model/seed_import.h"
#include "model/superposed_generate.h"
#include "model/superposition_io.h"
#include "tests/support/tensor_compare.h"

namespace fs = std::filesystem;
using superpose::testing::all_close;

namespace superpose {
namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const fs::path kSeeds = kFixtures / "superposition";

class SuperposedCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
    reference_ = nlohmann::json::parse(read_file(kSeeds / "reference.json"));
  }
  SuperposedModel imported(const std::string& seed, torch::Device device, torch::Dtype dtype) {
    auto pair = load_experts(kFixtures / "gpt2-tiny", kFixtures / "gpt2-tiny-fine", device, dtype);
    auto model = superposition_from_seed(read_seed_checkpoint(kSeeds / seed), pair.first.model, pair.second.model, {});
    model->eval();
    return model;
  }
  // A 1D α here: the 2D α's initial values sit at 0.55, exactly between two
  // quantisation steps, where the last bit of a sigmoid decides the rounding
  // and CPU and CUDA may differ.
  SuperposedModel causal(torch::Device device, AlphaVariant variant = AlphaVariant::k1D) {
    auto pair = load_experts(kFixtures / "gpt2-tiny", kFixtures / "gpt2-tiny-fine", torch::kCPU, torch::kFloat32);
    torch::manual_seed(11);
    SuperposedModel model(pair.first.model, pair.second.model,
                          SuperposedConfig::defaults(variant, pair.first.config));
    pair.first.model->to(device);
    pair.second.model->to(device);
    model->to_device(device, torch::kFloat32);
    model->eval();
    return model;
  }
  std::vector<int64_t> ids(size_t k) { return reference_["ids"][k].get<std::vector<int64_t>>(); }
  nlohmann::json reference_;
};

TEST_F(SuperposedCuda, NotebookParityInF32) {
  const std::pair<const char*, const char*> cases[] = {{"seed_1d.pt", "ref_1d.safetensors"},
                                                       {"seed_2d.pt", "ref_2d.safetensors"}};
  size_t k = 0;
  for (const auto& [seed, ref] : cases) {
    auto model = imported(seed, torch::kCUDA, torch::kFloat32);
    c10::InferenceMode guard;
    const auto logits = model->forward(torch::tensor(ids(k++), torch::kLong).view({1, -1}).cuda());
    const SafetensorsFile expected(kSeeds / ref);
    EXPECT_TRUE(all_close(logits[0].cpu(), expected.load("logits"), 1e-4)) << seed;
  }
}

TEST_F(SuperposedCuda, Bf16StaysCloseToF32) {
  auto model = imported("seed_2d.pt", torch::kCUDA, torch::kBFloat16);
  c10::InferenceMode guard;
  const auto logits = model->forward(torch::tensor(ids(1), torch::kLong).view({1, -1}).cuda())[0];
  const auto expected = SafetensorsFile(kSeeds / "ref_2d.safetensors").load("logits");
  // 8 bits of mantissa through 3 blended layers and 2 autoencoders: 5% of the logit range.
  EXPECT_TRUE(all_close(logits.to(torch::kCPU, torch::kFloat32), expected, 0.05 * expected.abs().max().item<double>()));
}

TEST_F(SuperposedCuda, CachedGenerationWithAnAlphaSwitchEqualsTheCpu) {
  auto run = [&](torch::Device device) {
    auto model = causal(device);
    GenerateOptions options;
    options.max_new_tokens = 16;
    Sampler sampler(SamplingOptions{0.8, 0, 0.95, 5});
    return generate(model, ids(0), options, sampler, {}, [&](int64_t, SuperposedGenerator& g) {
             if (g.sequence().size() == ids(0).size() + 6) model->set_alpha(0.9);
             return true;
           })
        .tokens;
  };
  EXPECT_EQ(run(torch::kCUDA), run(torch::kCPU));
}

TEST_F(SuperposedCuda, AuditFlagsCenteredAndPassesCausal) {
  auto centered = imported("seed_1d.pt", torch::kCUDA, torch::kFloat32);
  EXPECT_FALSE(audit_causality(centered).causal);
  auto model = causal(torch::kCUDA, AlphaVariant::k2D);
  const auto result = audit_causality(model);
  EXPECT_TRUE(result.causal) << result.max_deviation << " at " << result.state;
}

}  // namespace
}  // namespace superpose

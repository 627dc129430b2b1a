// Activation capture on CUDA: the same rows as on the CPU, and device memory
// that stays flat across repeated captures. Skips where there is no CUDA device.
#include <iostream>

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "analysis/capture.h"
#include "model/memory.h"
#include "model/superposition_io.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;
using testing::all_close;

const fs::path kFixtures = SUPERPOSE_FIXTURES;

std::vector<Document> documents() {
  return {{"The cat sleeps on the mat near the door.", 0, "en", ""},
          {"Le chat dort sur le tapis.", 1, "fr", ""},
          {"A dog barked twice at the moon.", 0, "en", ""},
          {"Il pleut sur la ville depuis ce matin.", 1, "fr", ""}};
}

struct Models {
  LoadedModel base, fine;
  SuperposedModel superposition{nullptr};
};

Models make(torch::Device device) {
  Models s;
  std::tie(s.base, s.fine) = load_experts(kFixtures / "gpt2-tiny", kFixtures / "gpt2-tiny-fine", device, torch::kFloat32);
  torch::manual_seed(5);
  s.superposition = SuperposedModel(s.base.model, s.fine.model,
                                    SuperposedConfig::defaults(AlphaVariant::k1D, s.base.config, ConvMode::kCausal));
  s.superposition->to_device(device, torch::kFloat32);
  return s;
}

TEST(CaptureCuda, MatchesTheCpuAndKeepsDeviceMemoryFlat) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  const Tokenizer tokenizer = Tokenizer::from_dir(default_tokenizer_dir());
  Models cpu = make(torch::kCPU), gpu = make(torch::Device(torch::kCUDA, 0));
  for (const std::string positions : {"all", "mean"}) {
    SCOPED_TRACE(positions);
    CaptureOptions o;
    o.seq_len = 6;
    o.batch_size = 3;
    o.mlp_layers = {0, 2};
    o.positions = parse_positions(positions);
    const Capture a = capture_states(cpu.base, cpu.fine, cpu.superposition, documents(), tokenizer, o);
    const Capture b = capture_states(gpu.base, gpu.fine, gpu.superposition, documents(), tokenizer, o);
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    EXPECT_TRUE(torch::equal(a.token_ids, b.token_ids));
    for (const auto& [name, value] : a.tensors) {
      ASSERT_TRUE(b.tensor(name).device().is_cpu());
      // float32 on two devices (TF32 off by default for matmuls in LibTorch): 1e-4.
      EXPECT_TRUE(all_close(b.tensor(name), value, 1e-4)) << name;
    }
  }
  const torch::Device cuda(torch::kCUDA, 0);
  if (!memory_use(cuda).device_known) {
    std::cout << "[ NOTE ] device memory not measured: this build cannot read the caching allocator\n";
    return;
  }
  CaptureOptions o;
  o.mlp_layers = {1};
  capture_states(gpu.base, gpu.fine, gpu.superposition, documents(), tokenizer, o);  // warm-up
  const int64_t before = memory_use(cuda).device_allocated;
  for (int i = 0; i < 5; ++i) {
    const Capture c = capture_states(gpu.base, gpu.fine, gpu.superposition, documents(), tokenizer, o);
    EXPECT_EQ(memory_use(cuda).device_allocated, before) << "capture " << i << " left device memory allocated";
  }
}

}  // namespace
}  // namespace superpose

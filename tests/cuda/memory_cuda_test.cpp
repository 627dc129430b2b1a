// memory_use on a CUDA device follows LibTorch's caching allocator exactly.
// Skips where there is no CUDA device or the build's LibTorch lacks c10_cuda.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "model/memory.h"

namespace superpose {
namespace {

TEST(MemoryUseCuda, FollowsTheCachingAllocator) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  const torch::Device gpu(torch::kCUDA, 0);
  const MemoryUse before = memory_use(gpu);
  if (!before.device_known) GTEST_SKIP() << "this LibTorch has no c10_cuda";
  constexpr int64_t kBytes = int64_t{256} << 20;  // a multiple of the allocator's 2 MiB blocks: counted exactly
  torch::Tensor block = torch::empty({kBytes}, torch::TensorOptions().dtype(torch::kUInt8).device(gpu));
  const MemoryUse during = memory_use(gpu);
  EXPECT_EQ(during.device_allocated - before.device_allocated, kBytes);
  EXPECT_GE(during.device_reserved, during.device_allocated);
  EXPECT_GT(during.host_resident, 0);
  block = torch::Tensor();
  EXPECT_EQ(memory_use(gpu).device_allocated, before.device_allocated);
}

}  // namespace
}  // namespace superpose

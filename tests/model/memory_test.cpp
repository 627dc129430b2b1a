// memory_use: resident host memory follows what the process writes; device
// numbers come only for a CUDA device (see tests/cuda for those).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/memory.h"

namespace superpose {
namespace {

TEST(MemoryUse, HostResidentGrowsByATensorWrittenInFull) {
  const MemoryUse before = memory_use(torch::kCPU);
  ASSERT_GT(before.host_resident, 0);
  EXPECT_FALSE(before.device_known);
  // 256 MiB, every page written; other threads may free meanwhile, so at least 240 MiB more.
  const torch::Tensor ones = torch::ones({64, 1024, 1024}, torch::kFloat32);
  const MemoryUse after = memory_use(torch::kCPU);
  EXPECT_GE(after.host_resident - before.host_resident, int64_t{240} << 20);
  EXPECT_EQ(ones.sum().item<double>(), 64.0 * 1024 * 1024);
}

}  // namespace
}  // namespace superpose

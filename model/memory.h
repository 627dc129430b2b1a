// Memory the process holds: resident host memory and, on a CUDA device, what
// LibTorch's caching allocator has handed out and keeps reserved.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace superpose {

struct MemoryUse {
  int64_t host_resident = 0;  // bytes in RAM (/proc/self/statm); 0 where unknown
  bool device_known = false;  // the device numbers below are a CUDA device's
  int64_t device_allocated = 0;  // bytes in live tensors on `device`
  int64_t device_reserved = 0;   // bytes the caching allocator holds (allocated included)
};

// The host's numbers always; the device's for a CUDA device in a build whose
// LibTorch has CUDA (else device_known stays false).
MemoryUse memory_use(const torch::Device& device);

}  // namespace superpose

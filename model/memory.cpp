// Host memory from /proc; device memory from LibTorch's CUDA caching allocator.
#include "model/memory.h"

#include <unistd.h>

#include <fstream>

#include <torch/cuda.h>

#if defined(SUPERPOSE_HAVE_C10_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace superpose {

MemoryUse memory_use(const torch::Device& device) {
  MemoryUse use;
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) use.host_resident = resident_pages * sysconf(_SC_PAGESIZE);
#if defined(SUPERPOSE_HAVE_C10_CUDA)
  const auto index = device.has_index() ? device.index() : c10::DeviceIndex(0);
  if (device.is_cuda() && torch::cuda::is_available() && index < static_cast<int64_t>(torch::cuda::device_count())) {
    use.device_known = true;
    try {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
      use.device_allocated = stats.allocated_bytes[0].current;  // [0]: all pools
      use.device_reserved = stats.reserved_bytes[0].current;
    } catch (const c10::Error&) {
      // The allocator sets a device up at its first allocation: until then it holds nothing.
    }
  }
#else
  (void)device;
#endif
  return use;
}

}  // namespace superpose

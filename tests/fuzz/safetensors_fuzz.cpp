// libFuzzer entry point for the safetensors reader: any bytes either open and
// load cleanly or throw superpose::Error; never a crash, hang or other exception.
// Not part of the CMake build. By hand, with clang:
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     -isystem /usr/include/torch/csrc/api/include tests/fuzz/safetensors_fuzz.cpp \
//     model/safetensors.cpp model/file_util.cpp -ltorch -ltorch_cpu -lc10 -o safetensors_fuzz
//   ./safetensors_fuzz -max_len=4096 corpus/   (seed corpus: tests/fixtures/**/*.safetensors)
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include <torch/torch.h>

#include "model/errors.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An anonymous in-memory file, opened by path through /proc like a real one.
  const int fd = ::memfd_create("safetensors_fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fd, data + written, size - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    const superpose::SafetensorsFile file(path);
    for (const auto& info : file.tensors()) {
      const torch::Tensor stored = file.load(info.name);
      if (stored.numel() != static_cast<int64_t>((info.end - info.begin) / stored.element_size())) __builtin_trap();
      for (const torch::Dtype dtype : {torch::kFloat32, torch::kBFloat16, torch::kInt8, torch::kInt64, torch::kBool}) {
        try {
          (void)file.load(info.name, dtype);
        } catch (const superpose::Error&) {
        }
      }
    }
  } catch (const superpose::Error&) {
  }
  ::close(fd);
  return 0;
}

// Device and dtype choice: parse, check availability, explain refusals.
#include "model/device.h"

#include <malloc.h>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {

torch::Device parse_device(const std::string& text) {
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text.rfind("cuda", 0) != 0) throw Error("--device", "'" + text + "' is not a device (cpu, cuda or cuda:N)");
  int index = 0;
  if (text.size() > 4) {
    const std::string number = text.substr(text.size() > 5 && text[4] == ':' ? 5 : 4);
    if (text[4] != ':' || number.empty() || number.find_first_not_of("0123456789") != std::string::npos) {
      throw Error("--device", "'" + text + "' is not a device (cpu, cuda or cuda:N)");
    }
    index = std::stoi(number);
  }
  if (!torch::cuda::is_available()) {
    throw Error("--device", "CUDA was asked for but is not available (no CUDA build of LibTorch or no GPU); use --device cpu");
  }
  if (index >= static_cast<int>(torch::cuda::device_count())) {
    throw Error("--device", "'" + text + "': only " + std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

torch::Dtype parse_dtype(const std::string& text, const torch::Device& device) {
  torch::Dtype dtype;
  if (text == "f32" || text == "float32") {
    dtype = torch::kFloat32;
  } else if (text == "bf16" || text == "bfloat16") {
    dtype = torch::kBFloat16;
  } else if (text == "f16" || text == "float16") {
    dtype = torch::kFloat16;
  } else {
    throw Error("--dtype", "'" + text + "' is not a dtype (f32, bf16 or f16)");
  }
  if (dtype != torch::kFloat32 && !device.is_cuda()) {
    throw Error("--dtype", text + " runs on CUDA only; use f32 on " + device_name(device));
  }
  return dtype;
}

std::string device_name(const torch::Device& device) { return device.str(); }

std::string dtype_name(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "f32";
    case torch::kBFloat16: return "bf16";
    case torch::kFloat16: return "f16";
    case torch::kFloat64: return "f64";
    case torch::kInt64: return "i64";
    default: return std::string(c10::toString(dtype));
  }
}

void tune_cpu_allocator() {
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
  ::mallopt(M_TOP_PAD, 256 << 20);
}

}  // namespace superpose

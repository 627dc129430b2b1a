// Choosing where and in what precision a model runs, with user-facing errors.
#pragma once

#include <string>

#include <torch/types.h>

namespace superpose {

// "cpu", "cuda" or "cuda:N". Throws Error("--device", ...) for anything else,
// or when CUDA is asked for and this build or machine has none.
torch::Device parse_device(const std::string& text);

// "f32", "bf16" or "f16" (also "float32", "bfloat16", "float16"). Half
// precision runs on CUDA only: asking for it on CPU throws Error("--dtype", ...).
torch::Dtype parse_dtype(const std::string& text, const torch::Device& device);

// "cpu", "cuda:0", ...
std::string device_name(const torch::Device& device);
// "f32", "bf16", "f16", ...
std::string dtype_name(torch::Dtype dtype);

// Tunes glibc's allocator for LibTorch on the CPU, where every large tensor
// is a fresh allocation: blocks up to 32 MiB come from the heap instead of
// their own mmap, and freed heap memory is kept rather than returned and
// faulted in again (evaluation on the CPU ran about 1.4x faster, with a third of the
// system time). Call once at the start of a program.
void tune_cpu_allocator();

}  // namespace superpose

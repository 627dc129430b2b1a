// Choosing the next token from logits: temperature, top-k, top-p, seeded.
#pragma once

#include <cstdint>
#include <random>

#include <torch/types.h>

namespace superpose {

struct SamplingOptions {
  double temperature = 1.0;  // 0 = greedy (argmax)
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
  double top_p = 1.0;        // keep the smallest set whose probability reaches p
  uint64_t seed = 0;
};

// Throws Error("--temperature" / "--top-k" / "--top-p", ...) for values out of range.
void validate(const SamplingOptions& options);

// Samples on the CPU in double precision with its own 64-bit Mersenne
// Twister, so a seed gives the same tokens whatever device or LibTorch
// version produced the logits. Not thread-safe (holds the generator state).
class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  // (V) logits, any device and dtype -> token id.
  int64_t sample(const torch::Tensor& logits);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace superpose

// What the benchmarks read from the environment.
#pragma once

#include <cstdlib>
#include <string>

#include "model/gpt2.h"

namespace superpose::bench {

// The variable's value, or `fallback` when it is unset or empty.
inline std::string env(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value ? value : fallback;
}

// SUPERPOSE_BENCH_SHAPE: small (6 layers, width 384, 6 heads; the default)
// or gpt2-small (GPT-2 small's 12 layers, 768, 12 heads).
inline GPT2Config shape() {
  GPT2Config config;
  if (env("SUPERPOSE_BENCH_SHAPE", "small") == "small") {
    config.n_layer = 6;
    config.n_embd = 384;
    config.n_head = 6;
  }
  return config;
}

}  // namespace superpose::bench

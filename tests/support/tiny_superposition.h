// A causal 1D superposition over the tiny test pair, saved for the CLI tests.
#pragma once

#include <filesystem>
#include <string>

#include <torch/torch.h>

#include "model/superposition_io.h"

namespace superpose::testing {

inline const std::string kTinyBase = (std::filesystem::path(SUPERPOSE_FIXTURES) / "gpt2-tiny").string();
inline const std::string kTinyFine = (std::filesystem::path(SUPERPOSE_FIXTURES) / "gpt2-tiny-fine").string();

// Seeded random α and autoencoders over gpt2-tiny / gpt2-tiny-fine, saved to `dir`.
inline std::string save_tiny_superposition(const std::filesystem::path& dir) {
  auto experts = load_experts(kTinyBase, kTinyFine, torch::kCPU, torch::kFloat32);
  torch::manual_seed(5);
  SuperposedModel model(experts.first.model, experts.second.model,
                        SuperposedConfig::defaults(AlphaVariant::k1D, experts.first.config));
  const SuperpositionSpec spec;
  save_superposition(dir, model, spec, kTinyBase, kTinyFine);
  return dir.string();
}

}  // namespace superpose::testing

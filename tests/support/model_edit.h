// Variants of a model directory for tests: another config, perturbed or
// dropped tensors — a "fine" expert, or one that does not match.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/safetensors.h"
#include "tests/support/temp_dir.h"

namespace superpose::testing {

// Returns a new tensor for one file tensor, or an undefined one to drop it.
using TensorEdit = std::function<torch::Tensor(const std::string& name, const torch::Tensor& value)>;

// Writes the directory `to` (made here): `from`'s config.json with
// `config_patch` applied (RFC 7386 merge patch), and `from`'s tensors in file
// order under their own names and metadata, each passed through `edit`.
inline void write_edited_model(const std::filesystem::path& from, const std::filesystem::path& to,
                               const nlohmann::json& config_patch, const TensorEdit& edit) {
  ::mkdir(to.c_str(), 0755);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(from / "config.json"));
  config.merge_patch(config_patch);
  std::ofstream(to / "config.json") << config.dump(2);
  const SafetensorsFile weights(from / "model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& info : weights.tensors()) {
    torch::Tensor value = edit(info.name, weights.load(info.name));
    if (value.defined()) tensors.emplace_back(info.name, value);
  }
  save_safetensors(to / "model.safetensors", tensors, weights.metadata());
}

// A deterministic, tensor-specific perturbation: value + scale·sin(0.7·i + phase),
// i the flat index, computed in F32 and stored back in value's dtype.
inline torch::Tensor perturbed(const std::string& name, const torch::Tensor& value, double scale) {
  if (!value.is_floating_point()) return value;
  unsigned phase_code = 0;
  for (unsigned char c : name) phase_code = (phase_code * 31 + c) % 1000;
  const double phase = phase_code / 100.0;
  auto wave = torch::sin(torch::arange(value.numel(), torch::kFloat64) * 0.7 + phase).to(torch::kFloat32);
  return (value.to(torch::kFloat32) + wave.view(value.sizes()) * scale).to(value.scalar_type());
}

// `from` with every tensor perturbed: a "fine" expert with the same config.
inline void write_perturbed_model(const std::filesystem::path& from, const std::filesystem::path& to,
                                  double scale = 0.05) {
  write_edited_model(from, to, nlohmann::json::object(),
                     [scale](const std::string& name, const torch::Tensor& v) { return perturbed(name, v, scale); });
}

}  // namespace superpose::testing

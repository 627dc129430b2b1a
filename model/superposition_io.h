// The project's superposition checkpoint: a directory holding
// superposition.json (structure, expert paths, provenance) and
// superposition.safetensors (α and autoencoder weights, F32).
//
// superposition.json:
//   {"format": "superpose-superposition", "version": 1,
//    "variant": "1d" | "2d", "n_layer": L, "n_embd": C,
//    "control_points": K, "degree": k,
//    "embedding_blend": "mean-alpha" | "base",
//    "autoencoders": {"layers": [0, 1, ...], "convolution": "causal" | "centered",
//                     "bottleneck": Z, "local": Ze, "adapter_rank": r},   (local, adapter_rank: 2D only)
//    "experts": {"base": "PATH", "fine": "PATH"},     (relative to the directory, or absolute)
//    "provenance": {...}}                              (free-form: data, steps, metrics, source)
// Tensors: alpha.control_points (K) | (K,C), alpha.layer_bias (L) | (L,C),
// ae.{l}.* for each autoencoder layer l (AutoencoderImpl's parameter names).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "model/model_dir.h"
#include "model/superposed.h"

namespace superpose {

inline constexpr const char* kSuperpositionJson = "superposition.json";
inline constexpr const char* kSuperpositionWeights = "superposition.safetensors";

struct SuperpositionSpec {
  SuperposedConfig config;
  std::string base_path, fine_path;  // as written in the file
  nlohmann::json provenance = nlohmann::json::object();
};

// Parses and validates superposition.json's content; `where` names the file.
SuperpositionSpec parse_superposition_spec(const nlohmann::json& json, const std::string& where);
nlohmann::json to_json(const SuperpositionSpec& spec);
// Reads DIR/superposition.json. Throws Error naming the file.
SuperpositionSpec read_superposition_spec(const std::filesystem::path& dir);
// True when DIR holds superposition.json.
bool is_superposition_dir(const std::filesystem::path& dir);

// Two experts that can be superposed, loaded onto device/dtype. Throws
// Error naming the directories when they differ in shape.
std::pair<LoadedModel, LoadedModel> load_experts(const std::filesystem::path& base_dir,
                                                 const std::filesystem::path& fine_dir, torch::Device device,
                                                 torch::Dtype dtype);

struct LoadedSuperposition {
  std::filesystem::path dir;
  SuperpositionSpec spec;
  LoadedModel base, fine;
  SuperposedModel model{nullptr};
};

// Loads a checkpoint and its experts (from the paths in the file unless
// base_dir / fine_dir are given), validating everything against the
// experts: layer count, width, tensor names and shapes. Eval mode.
LoadedSuperposition load_superposition(const std::filesystem::path& dir,
                                       const std::optional<std::filesystem::path>& base_dir = std::nullopt,
                                       const std::optional<std::filesystem::path>& fine_dir = std::nullopt,
                                       torch::Device device = torch::kCPU, torch::Dtype dtype = torch::kFloat32);

// Copies named tensors into `model`'s parameters, strictly: every parameter
// present with its shape, finite, nothing else. Throws Error(where, ...).
void assign_superposition_parameters(SuperposedModel& model, const std::map<std::string, torch::Tensor>& tensors,
                                     const std::string& where);

// Copies weights from a superposition.safetensors into `model`, strictly
// (every parameter present once with its shape, nothing else). Throws Error.
void load_superposition_weights(SuperposedModel& model, const std::filesystem::path& path);

// Writes `model` and `spec` (with expert paths written relative to `dir`)
// to `dir`. A new or empty `dir` appears complete or not at all; with
// `replace`, the two files are written into an existing directory (a
// checkpoint, or a training run's output folder), each atomically, weights
// first. Without it, anything at `dir` is refused with an Error. The
// autoencoders are stored as `storage`; α's parameters always as F32 (they
// are tiny, and a 2D α is rounded to one decimal, which F16 could flip).
void save_superposition(const std::filesystem::path& dir, SuperposedModel& model, SuperpositionSpec spec,
                        const std::filesystem::path& base_dir, const std::filesystem::path& fine_dir,
                        bool replace = false, torch::Dtype storage = torch::kFloat32);

// `target` as seen from directory `from` ("../base"), by path arithmetic on
// absolute, normalised paths.
std::string relative_path(const std::filesystem::path& target, const std::filesystem::path& from);

}  // namespace superpose

// Importing the companion notebooks' checkpoints: torch.save files holding
// {"alpha_module_state_dict": ..., "autoencoders_state_dict": ...} (SPEC §7).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "model/superposed.h"

namespace superpose {

struct SeedCheckpoint {
  std::filesystem::path path;
  AlphaVariant variant = AlphaVariant::k1D;  // from control_points' rank
  std::map<std::string, torch::Tensor> alpha;         // the α module's state dict
  std::map<std::string, torch::Tensor> autoencoders;  // the autoencoders' state dict
};

// Reads a torch.save file with LibTorch's unpickler. Throws Error naming the
// file when it is not a torch.save zip archive, or does not hold the two
// state dicts of tensors.
SeedCheckpoint read_seed_checkpoint(const std::filesystem::path& path);

struct SeedImportOptions {
  std::optional<std::vector<int64_t>> ae_layers;  // default: every layer the file holds
  EmbeddingBlend embedding_blend = EmbeddingBlend::kMeanAlpha;
};

// Builds the superposition a seed checkpoint describes over two experts:
// variant, K and autoencoder sizes from the tensor shapes (cubic spline,
// centered convolution, as the notebooks). Throws Error naming the file when
// the shapes do not fit the experts or a key is not one the notebooks write.
SuperposedModel superposition_from_seed(const SeedCheckpoint& seed, GPT2 base, GPT2 fine,
                                        const SeedImportOptions& options);

}  // namespace superpose

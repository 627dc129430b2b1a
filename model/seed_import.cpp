// Notebook checkpoints -> SuperposedModel.
#include "model/seed_import.h"

#include <regex>
#include <set>

#include <torch/torch.h>

#include "model/errors.h"
#include "model/superposition_io.h"
#include "model/torch_pickle.h"

namespace superpose {
namespace {

// A state dict (string -> tensor) from an unpickled value.
std::map<std::string, torch::Tensor> state_dict(const c10::IValue& value, const std::string& key,
                                                const std::string& where) {
  if (!value.isGenericDict()) throw Error(where, "\"" + key + "\" is not a state dict");
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      throw Error(where, "\"" + key + "\" must map names to tensors");
    }
    out.emplace(item.key().toStringRef(), item.value().toTensor().to(torch::kCPU, torch::kFloat32).contiguous());
  }
  return out;
}

const torch::Tensor& require(const std::map<std::string, torch::Tensor>& dict, const std::string& key,
                             const std::string& where) {
  const auto found = dict.find(key);
  if (found == dict.end()) throw Error(where, "missing tensor " + key);
  return found->second;
}

}  // namespace

SeedCheckpoint read_seed_checkpoint(const std::filesystem::path& path) {
  const std::string where = path.string();
  const c10::IValue root = load_torch_save(path);
  if (!root.isGenericDict()) throw Error(where, "expected a dict at the top level, found " + root.tagKind());
  SeedCheckpoint seed;
  seed.path = path;
  const auto dict = root.toGenericDict();
  for (const char* key : {"alpha_module_state_dict", "autoencoders_state_dict"}) {
    if (!dict.contains(key)) {
      throw Error(where, std::string("missing \"") + key + "\": not a superposition notebook checkpoint");
    }
  }
  seed.alpha = state_dict(dict.at("alpha_module_state_dict"), "alpha_module_state_dict", where);
  seed.autoencoders = state_dict(dict.at("autoencoders_state_dict"), "autoencoders_state_dict", where);
  const auto& c = require(seed.alpha, "control_points", where);
  if (c.dim() == 1) {
    seed.variant = AlphaVariant::k1D;
  } else if (c.dim() == 2) {
    seed.variant = AlphaVariant::k2D;
  } else {
    throw Error(where, "control_points has " + std::to_string(c.dim()) + " dimensions; expected 1 (1D) or 2 (2D)");
  }
  return seed;
}

SuperposedModel superposition_from_seed(const SeedCheckpoint& seed, GPT2 base, GPT2 fine,
                                        const SeedImportOptions& options) {
  const std::string where = seed.path.string();
  const auto& experts = base->config();
  const int64_t L = experts.n_layer, C = experts.n_embd;
  const bool two_d = seed.variant == AlphaVariant::k2D;
  const auto& control = require(seed.alpha, "control_points", where);
  const auto& bias = require(seed.alpha, two_d ? "layer_bias" : "layer_biases", where);

  SuperposedConfig config;
  config.alpha.variant = seed.variant;
  config.alpha.n_layer = L;
  config.alpha.n_embd = C;
  config.alpha.n_control = control.size(0);
  config.alpha.degree = 3;
  config.embedding_blend = options.embedding_blend;
  if (bias.size(0) != L || (two_d && (bias.dim() != 2 || bias.size(1) != C || control.size(1) != C))) {
    throw Error(where, std::string("α was trained for ") + std::to_string(bias.size(0)) + " layers" +
                           (two_d ? " of width " + std::to_string(bias.dim() == 2 ? bias.size(1) : 0) : "") +
                           ", but the experts have " + std::to_string(L) + " layers of width " + std::to_string(C));
  }

  // Autoencoder keys: "layer_{i}.rest" (1D) or "{i}.rest" (2D).
  const std::regex pattern(two_d ? R"(^(\d+)\.(.+)$)" : R"(^layer_(\d+)\.(.+)$)");
  std::map<int64_t, std::map<std::string, torch::Tensor>> by_layer;
  for (const auto& item : seed.autoencoders) {
    std::smatch m;
    if (!std::regex_match(item.first, m, pattern)) {
      throw Error(where, "unexpected autoencoder tensor " + item.first + " for a " + variant_name(seed.variant) +
                             " checkpoint");
    }
    const int64_t layer = std::stoll(m[1].str());
    if (layer >= L) {
      throw Error(where, "autoencoder for layer " + std::to_string(layer) + ", but the experts have " +
                             std::to_string(L) + " layers");
    }
    by_layer[layer].emplace(m[2].str(), item.second);
  }
  if (by_layer.empty()) throw Error(where, "the checkpoint holds no autoencoders");
  const auto& first = by_layer.begin()->second;
  const std::string first_where = where + ": autoencoder " + std::to_string(by_layer.begin()->first);
  config.autoencoder.variant = seed.variant;
  config.autoencoder.n_embd = C;
  config.autoencoder.conv = ConvMode::kCentered;
  if (!two_d) {
    config.autoencoder.bottleneck = require(first, "encoder.0.weight", first_where).size(0);
  } else {
    config.autoencoder.local = require(first, "encoder.0.conv.weight", first_where).size(0);
    config.autoencoder.adapter_rank = require(first, "residual_adapter.0.weight", first_where).size(0);
    config.autoencoder.bottleneck =
        config.autoencoder.local + require(first, "residual_adapter.2.weight", first_where).size(0);
  }

  if (options.ae_layers) {
    std::set<int64_t> chosen(options.ae_layers->begin(), options.ae_layers->end());
    for (int64_t l : chosen) {
      if (!by_layer.count(l)) throw Error("--ae-layers", "layer " + std::to_string(l) + " has no autoencoder in " + where);
    }
    config.ae_layers.assign(chosen.begin(), chosen.end());
  } else {
    for (const auto& item : by_layer) config.ae_layers.push_back(item.first);
  }
  validate(config, where);

  std::map<std::string, torch::Tensor> tensors = {{"alpha.control_points", control}, {"alpha.layer_bias", bias}};
  for (int64_t l : config.ae_layers) {
    for (const auto& item : by_layer.at(l)) tensors.emplace("ae." + std::to_string(l) + "." + item.first, item.second);
  }
  SuperposedModel model(std::move(base), std::move(fine), config);
  const auto device = model->alpha->control_points.device();
  model->to_device(torch::kCPU, torch::kFloat32);
  assign_superposition_parameters(model, tensors, where);
  model->to_device(device, model->base()->wte->weight.scalar_type());
  return model;
}

}  // namespace superpose

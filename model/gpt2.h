// GPT-2 language model in LibTorch, loadable from Hugging Face checkpoints.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "model/block.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/observer.h"

namespace superpose {

class SafetensorsFile;

// Parameters are registered under the checkpoint's own names (wte, wpe,
// h.{i}.attn.c_attn, ln_f, ...), so named_parameters() is the loading table.
// Not thread-safe: one thread runs a model at a time.
class GPT2Impl : public torch::nn::Module {
 public:
  explicit GPT2Impl(const GPT2Config& config);

  // (B,T) token ids -> (B,T,V) logits. With a cache, ids are the T positions
  // that follow the cached ones and their keys/values are appended.
  // The observer receives the residual stream (Site::kResidual, i = 0..L, HF
  // hidden_states convention) and any per-block sites it wants.
  torch::Tensor forward(const torch::Tensor& ids, KVCache* cache = nullptr,
                        ForwardObserver* observer = nullptr);

  // Pieces for callers that run blocks themselves (the superposed model).
  // (B,T) -> (B,T,C): token + position embeddings for positions past..past+T-1.
  torch::Tensor embed(const torch::Tensor& ids, int64_t past = 0);
  // (B,T,C) -> (B,T,V): the tied (or separate) head; applies no ln_f.
  torch::Tensor head(const torch::Tensor& h);

  const GPT2Config& config() const { return config_; }
  KVCache make_cache() const { return KVCache(config_.n_layer); }

  torch::nn::Embedding wte{nullptr};  // (V,C)
  torch::nn::Embedding wpe{nullptr};  // (n_positions,C)
  torch::nn::ModuleList h{nullptr};   // L Blocks
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear lm_head{nullptr};  // (V,C), no bias; only when the head is not tied to wte

  Block block(int64_t i) { return h->ptr<BlockImpl>(static_cast<size_t>(i)); }

 private:
  GPT2Config config_;
};
TORCH_MODULE(GPT2);

// One row of the loading table: a file tensor and the parameter it fills.
struct LoadedTensor {
  std::string file_name;    // as written in the file (with or without "transformer.")
  std::string module_name;  // the parameter it fills, as named by named_parameters()
  std::string dtype;        // as stored
  std::vector<int64_t> shape;
};

// The loading table: every parameter of a GPT-2 with this config and its
// shape, under the checkpoint's own names (equal to GPT2Impl's named_parameters()).
std::map<std::string, std::vector<int64_t>> gpt2_parameter_shapes(const GPT2Config& config);
// Total number of parameters in that table.
int64_t gpt2_parameter_count(const GPT2Config& config);

// Matches a file's tensors against the table, strictly: every parameter must
// be present once (with or without the "transformer." prefix) with the
// expected shape; attn.bias / attn.masked_bias buffers are ignored;
// lm_head.weight is used only when the config unties the head; any other
// tensor is an error. Throws Error naming the file, the tensor, expected and got.
std::vector<LoadedTensor> match_gpt2_tensors(const SafetensorsFile& file, const GPT2Config& config);

// Matches, then copies the weights into `model`, converting F16/BF16 to the
// model's dtype. Throws Error as match_gpt2_tensors does.
std::vector<LoadedTensor> load_gpt2_weights(GPT2& model, const std::filesystem::path& safetensors_path);

}  // namespace superpose
